//! Extension links: which stacks extend which extension points, from the
//! manifests at hand and, for stacks deployed from elsewhere (another
//! project directory, or a `deploy --plugin` of another stack), from the
//! stage's published outputs.
use std::collections::{BTreeMap, BTreeSet};

use reventless_core::Manifest;
use reventless_core::plugin::ComponentKind;

use super::PlanError;
use super::units::{followed_point, is_remote_extension};
use crate::deploy::config::ProjectConfig;

/// The output listing the extension points a stack publishes (`Catalog.Products,…`).
pub const EXTENSION_POINTS_OUTPUT: &str = "extension-points";
/// The output listing the extension points a stack extends.
pub const EXTENDS_OUTPUT: &str = "extends";

/// The stage's published outputs, per stack (`/reventless/{project}/{stage}/{stack}/{key}`),
/// and which of the file's stacks a plan covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageOutputs {
    pub stacks: BTreeMap<String, BTreeMap<String, String>>,
    /// The plugin stacks planned (`deploy --plugin`: one); None: every stack
    /// of the file. The file's other stacks are known by their outputs.
    pub planned: Option<BTreeSet<String>>,
}

impl StageOutputs {
    /// From the parameters under the stage's path (full names → values).
    pub fn from_parameters(config: &ProjectConfig, parameters: &BTreeMap<String, String>) -> Self {
        let prefix = format!("/reventless/{}/{}/", config.project, config.stage);
        let mut stacks: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (name, value) in parameters {
            let Some((stack, key)) = name.strip_prefix(&prefix).and_then(|rest| rest.split_once('/')) else { continue };
            stacks.entry(stack.to_string()).or_default().insert(key.to_string(), value.clone());
        }
        Self { stacks, planned: None }
    }

    /// Whether the plan covers plugin stack `stack` of the file.
    pub fn plans(&self, stack: &str) -> bool {
        self.planned.as_ref().is_none_or(|planned| planned.contains(stack))
    }

    /// The points each deployed stack publishes: point → stack.
    fn published_points(&self) -> BTreeMap<String, String> {
        self.stacks
            .iter()
            .flat_map(|(stack, outputs)| list(outputs.get(EXTENSION_POINTS_OUTPUT)).map(move |p| (p, stack.clone())))
            .collect()
    }
}

/// A comma-separated output as its items.
fn list(value: Option<&String>) -> impl Iterator<Item = String> + '_ {
    value.into_iter().flat_map(|v| v.split(',')).map(str::trim).filter(|p| !p.is_empty()).map(str::to_string)
}

/// Who extends whose extension points across the stage's stacks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtensionLinks {
    /// Point (`Catalog.Products`) → subscriber stacks whose manifests are at hand.
    pub subscribers: BTreeMap<String, Vec<String>>,
    /// Plugin → the extension points its manifest publishes.
    pub points: BTreeMap<String, Vec<String>>,
    /// Extensions of points of plugins the stage does not know yet.
    pub warnings: Vec<String>,
}

impl ExtensionLinks {
    /// From the stacks' manifests at hand. An extension of a point of a
    /// plugin known here (a manifest at hand, or a deployed stack's
    /// `extension-points` output) that does not publish it is an error naming
    /// both; of a plugin not known at all, a warning: it may be deployed
    /// later from another project file (its publisher then finds this
    /// stack's inbox in the registry).
    pub fn of(
        config: &ProjectConfig,
        manifests: &BTreeMap<String, Manifest>,
        stage: &StageOutputs,
    ) -> Result<Self, PlanError> {
        let mut links = Self::default();
        for manifest in manifests.values() {
            let points = manifest.components.iter().filter(|c| c.kind == ComponentKind::ExtensionPoint);
            links.points.insert(manifest.plugin.clone(), points.map(|c| c.name.clone()).collect());
        }
        let mut published: BTreeSet<String> = links.points.values().flatten().cloned().collect();
        published.extend(stage.published_points().into_keys());
        let mut known: BTreeSet<String> = links.points.keys().cloned().collect();
        known.extend(config.plugins.keys().map(|stack| config.plugin_name(stack)));
        known.extend(published.iter().filter_map(|point| point.split_once('.')).map(|(plugin, _)| plugin.to_string()));
        for (stack, manifest) in manifests.iter().filter(|(stack, _)| config.plugins.contains_key(*stack)) {
            for extension in manifest.components.iter().filter(|c| is_remote_extension(manifest, c)) {
                let point = followed_point(extension).unwrap_or_default();
                let plugin = point.split_once('.').map(|(plugin, _)| plugin).unwrap_or(point);
                if !published.contains(point) && !known.contains(plugin) {
                    links.warnings.push(format!(
                        "{stack}: extension `{}` follows `{point}`, whose plugin is not deployed to the stage yet: \
                         its events arrive once it is",
                        extension.name
                    ));
                } else if !published.contains(point) {
                    return Err(PlanError::MissingExtensionPoint {
                        stack: stack.clone(),
                        extension: extension.name.clone(),
                        point: point.to_string(),
                    });
                }
                links.subscribe(point, stack);
            }
        }
        // The file's stacks not planned now (`deploy --plugin` of another):
        // as deployed, so that a plan of one stack equals its part of the
        // whole file's plan.
        for (stack, outputs) in stage.stacks.iter().filter(|(stack, _)| !manifests.contains_key(*stack)) {
            if config.plugins.contains_key(stack) && !stage.plans(stack) {
                for point in list(outputs.get(EXTENDS_OUTPUT)) {
                    links.subscribe(&point, stack);
                }
            }
        }
        Ok(links)
    }

    fn subscribe(&mut self, point: &str, stack: &str) {
        let subscribers = self.subscribers.entry(point.to_string()).or_default();
        if !subscribers.iter().any(|s| s == stack) {
            subscribers.push(stack.to_string());
        }
    }

    /// Every extension point of `plugin`: each gets a publisher whether or
    /// not a subscriber exists yet (one deployed later, from anywhere, is
    /// found at runtime in the registry).
    pub(super) fn points_of(&self, plugin: &str) -> Vec<String> {
        self.points.get(plugin).cloned().unwrap_or_default()
    }

    /// The points of another plugin that `manifest` extends.
    pub fn extended_by(manifest: &Manifest) -> Vec<String> {
        let mut points: Vec<String> = manifest
            .components
            .iter()
            .filter(|c| is_remote_extension(manifest, c))
            .filter_map(|c| followed_point(c).map(str::to_string))
            .collect();
        points.sort();
        points.dedup();
        points
    }
}
