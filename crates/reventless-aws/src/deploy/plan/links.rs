//! Extension links: which stacks extend which extension points.
use std::collections::BTreeMap;

use reventless_core::Manifest;
use reventless_core::plugin::ComponentKind;

use super::PlanError;
use super::units::{followed_point, is_remote_extension};
use crate::deploy::config::ProjectConfig;

/// Who extends whose extension points across the stage's stacks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtensionLinks {
    /// Point (`Catalog.Products`) → subscriber stacks.
    pub subscribers: BTreeMap<String, Vec<String>>,
}

impl ExtensionLinks {
    /// From every stack's manifest; an extension of a point no stack of the
    /// stage publishes is an error naming both.
    pub fn of(config: &ProjectConfig, manifests: &BTreeMap<String, Manifest>) -> Result<Self, PlanError> {
        let published: std::collections::BTreeSet<&str> = manifests
            .values()
            .flat_map(|manifest| manifest.components.iter())
            .filter(|c| c.kind == ComponentKind::ExtensionPoint)
            .map(|c| c.name.as_str())
            .collect();
        let mut links = Self::default();
        for (stack, manifest) in manifests.iter().filter(|(stack, _)| config.plugins.contains_key(*stack)) {
            for extension in manifest.components.iter().filter(|c| is_remote_extension(manifest, c)) {
                let point = followed_point(extension).unwrap_or_default();
                if !published.contains(point) {
                    return Err(PlanError::MissingExtensionPoint {
                        stack: stack.clone(),
                        extension: extension.name.clone(),
                        point: point.to_string(),
                    });
                }
                let subscribers = links.subscribers.entry(point.to_string()).or_default();
                if !subscribers.contains(stack) {
                    subscribers.push(stack.clone());
                }
            }
        }
        Ok(links)
    }

    /// The points of `plugin` that other stacks extend.
    pub(super) fn points_of(&self, plugin: &str) -> Vec<String> {
        self.subscribers.keys().filter(|point| point.starts_with(&format!("{plugin}."))).cloned().collect()
    }
}
