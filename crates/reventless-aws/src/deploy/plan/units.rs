//! A plugin's function units under a consolidation, and what each follows.
use reventless_core::plugin::ComponentKind;
use reventless_core::{Manifest, TopicLayout};
use serde::Serialize;
use serde_json::{Value, json};

use crate::deploy::config::Consolidation;
/// One function of a plugin stack: a handler group, or part of one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionUnit {
    /// Its handler group (`Api`, `Heartbeat`, `StateChanges`, `AllReadModels`, `AllAutomationSlices`).
    pub group: &'static str,
    /// Its name in the stack: the function is `{project}-{stage}-{stack}-{name}`,
    /// and it is the `reventless:component` tag and a tuning key.
    pub name: String,
    /// The components it runs when only some of its group's (micro); empty: all.
    pub components: Vec<String>,
    /// The command topic it drains (command functions).
    pub topic: Option<String>,
}

impl FunctionUnit {
    pub(super) fn whole(group: &'static str, name: String) -> Self {
        Self { group, name, components: Vec::new(), topic: None }
    }

    /// Whether it follows the events table's stream.
    pub fn follows_stream(&self) -> bool {
        self.group.starts_with("All")
    }
}

/// The events-table log keys (`log` attribute) a stream function's followers
/// read: its stream mapping passes only new events of these logs (fence and
/// counter items, and other followers' logs, never wake it).
pub(super) fn followed_log_keys(manifest: &Manifest, unit: &FunctionUnit, extended: &[String]) -> Vec<String> {
    let point_sources = |point: &str| -> Vec<reventless_core::plugin::LogRef> {
        let published = manifest.components.iter().find(|c| c.kind == ComponentKind::ExtensionPoint && c.name == point);
        published.map(|c| c.sources.clone()).unwrap_or_default()
    };
    let selected = |name: &str| unit.components.is_empty() || unit.components.iter().any(|c| c == name);
    let mut logs = Vec::new();
    for component in stream_followers(manifest, unit.group, extended).filter(|c| selected(&c.name)) {
        if component.kind == ComponentKind::Extension {
            // A point of this plugin: its extension reads the point's own sources.
            logs.extend(followed_point(component).map(point_sources).unwrap_or_default());
        } else {
            logs.extend(component.sources.clone());
        }
    }
    let mut keys: Vec<String> = logs.iter().map(|log| crate::lambda::stream_log_key(log.kind, &log.name)).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The event types a stream function's followers consume, for its mapping's
/// filter (a plugin's log holds every component's events, so a read model is
/// not woken by events it never reads). `None` when a follower takes every
/// type (an extension point publishing its internal events) or none is known.
pub(super) fn followed_types(manifest: &Manifest, unit: &FunctionUnit, extended: &[String]) -> Option<Vec<String>> {
    let selected = |name: &str| unit.components.is_empty() || unit.components.iter().any(|c| c == name);
    let mut types = Vec::new();
    for component in stream_followers(manifest, unit.group, extended).filter(|c| selected(&c.name)) {
        if !(PROJECTIONS.contains(&component.kind) || AUTOMATIONS.contains(&component.kind)) {
            return None;
        }
        types.extend(component.consumes.iter().cloned());
    }
    types.sort();
    types.dedup();
    (!types.is_empty()).then_some(types)
}

/// The longest filter pattern Lambda accepts (characters).
pub const FILTER_PATTERN_MAX: usize = 4096;

/// A stream mapping's filter pattern: new events of `logs` only, and of
/// `types` when given
/// (`{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"log": {"S": [...]}, "type": {"S": [...]}}}}`).
pub fn stream_filter_pattern(logs: &Value, types: Option<&Value>) -> String {
    let mut image = json!({"log": {"S": logs}});
    if let Some(types) = types {
        image["type"] = json!({"S": types});
    }
    json!({"eventName": ["INSERT"], "dynamodb": {"NewImage": image}}).to_string()
}

/// How a consolidation spreads async commands over queues.
pub fn topic_layout(consolidation: Consolidation) -> TopicLayout {
    match consolidation {
        Consolidation::Single => TopicLayout::PerPlugin,
        Consolidation::PerAggregate => TopicLayout::PerLog,
        Consolidation::Micro => TopicLayout::PerComponent,
    }
}

const PROJECTIONS: [ComponentKind; 2] = [ComponentKind::ReadModel, ComponentKind::StateViewSlice];
const AUTOMATIONS: [ComponentKind; 2] = [ComponentKind::AutomationSlice, ComponentKind::OutboundTranslationSlice];

/// The components a stream group runs on AWS: `AllReadModels` its
/// projections; `AllAutomationSlices` its automations, its extensions of its
/// own points, and its points in `extended` (publishing to other stacks).
fn stream_followers<'a>(
    manifest: &'a Manifest,
    group: &'a str,
    extended: &'a [String],
) -> impl Iterator<Item = &'a reventless_core::plugin::ComponentManifest> + 'a {
    manifest.components.iter().filter(move |c| match group {
        "AllReadModels" => PROJECTIONS.contains(&c.kind),
        "AllAutomationSlices" => {
            AUTOMATIONS.contains(&c.kind)
                || (c.kind == ComponentKind::Extension && !is_remote_extension(manifest, c))
                || (c.kind == ComponentKind::ExtensionPoint && extended.contains(&c.name))
        }
        _ => false,
    })
}

/// The extension point (`<Plugin>.<Point>`) an extension component follows.
pub(super) fn followed_point(component: &reventless_core::plugin::ComponentManifest) -> Option<&str> {
    let source = component.sources.iter().find(|log| log.kind == reventless_core::plugin::LogKind::ExtensionPoint)?;
    Some(source.name.as_str())
}

/// Whether an extension follows a point of another plugin (which, on AWS,
/// runs in that plugin's stack and hands its events to this one's inbox).
pub(super) fn is_remote_extension(manifest: &Manifest, component: &reventless_core::plugin::ComponentManifest) -> bool {
    component.kind == ComponentKind::Extension
        && followed_point(component).is_some_and(|point| !point.starts_with(&format!("{}.", manifest.plugin)))
}

/// The functions a plugin needs under a consolidation (DESIGN §6):
/// `single` — `<Plugin>Api`, `<Plugin>Heartbeat`, `<Plugin>StateChanges`
/// (one queue), `AllReadModels`, `AllAutomationSlices`; `per-aggregate` —
/// one command function and queue per log (each aggregate; a plugin's DCB
/// slices share theirs), followers as `single`; `micro` — one command
/// function and queue per async component and one function per follower.
///
/// Extensions of other plugins' points get `<Plugin>Extensions`, draining the
/// plugin's inbox; the points in `extended` (those other stacks extend)
/// publish from `AllAutomationSlices` (`micro`: `<Point>Publisher` each).
pub fn function_units(manifest: &Manifest, consolidation: Consolidation, extended: &[String]) -> Vec<FunctionUnit> {
    let plugin = &manifest.plugin;
    let mut units = vec![
        FunctionUnit::whole("Api", format!("{plugin}Api")),
        FunctionUnit::whole("Heartbeat", format!("{plugin}Heartbeat")),
    ];
    if manifest.components.iter().any(|c| is_remote_extension(manifest, c)) {
        let unit = FunctionUnit::whole("Extensions", format!("{plugin}Extensions"));
        units.push(FunctionUnit { topic: Some(reventless_core::inbox_topic(plugin)), ..unit });
    }
    let layout = topic_layout(consolidation);
    for (topic, components) in layout.topics(manifest) {
        let name = match layout {
            TopicLayout::PerPlugin => format!("{plugin}StateChanges"),
            // `{plugin}_{log or component}_Commands` → `{LogOrComponent}Commands`
            // (an extension point taking commands, `Catalog.Products`, without its dot).
            _ => topic.strip_prefix(&format!("{plugin}_")).unwrap_or(&topic).replace(['_', '.'], ""),
        };
        units.push(FunctionUnit { group: "StateChanges", name, components, topic: Some(topic) });
    }
    for group in ["AllReadModels", "AllAutomationSlices"] {
        // (function name under `micro`, component)
        let followers: Vec<(String, String)> = stream_followers(manifest, group, extended)
            .map(|c| match c.kind {
                ComponentKind::ExtensionPoint => {
                    let point = c.name.rsplit('.').next().unwrap_or(&c.name);
                    (format!("{point}Publisher"), c.name.clone())
                }
                _ => (c.name.clone(), c.name.clone()),
            })
            .collect();
        if followers.is_empty() {
            continue;
        }
        if consolidation == Consolidation::Micro {
            units.extend(followers.into_iter().map(|(name, component)| FunctionUnit {
                group,
                name,
                components: vec![component],
                topic: None,
            }));
        } else {
            units.push(FunctionUnit::whole(group, group.to_string()));
        }
    }
    units
}

/// The handler groups a plugin needs, from its manifest (`single`).
pub fn handler_groups(manifest: &Manifest) -> Vec<&'static str> {
    function_units(manifest, Consolidation::Single, &[]).into_iter().map(|unit| unit.group).collect()
}

/// DynamoDB advises at most two readers per stream shard (more are throttled).
pub const STREAM_READERS_ADVISED: usize = 2;
