//! Where a plugin's async commands are queued.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ComponentKind, ComponentManifest, Manifest};

/// The command queue of a plugin's async components (the default layout).
pub fn command_topic(plugin: &str) -> String {
    format!("{plugin}_Commands")
}

/// How a plugin's async commands are spread over command topics (one FIFO
/// queue each on AWS, each drained by its own function). Order holds per
/// entity within a topic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TopicLayout {
    /// One topic per plugin: [`command_topic`].
    #[default]
    PerPlugin,
    /// One topic per log commands append to: each aggregate its own, a
    /// plugin's DCB slices the one of their shared log.
    PerLog,
    /// One topic per command component.
    PerComponent,
}

impl TopicLayout {
    /// The topic of one command component of `plugin`.
    pub fn topic(self, plugin: &str, component: &ComponentManifest) -> String {
        match (self, component.kind) {
            (Self::PerPlugin, _) => command_topic(plugin),
            (Self::PerLog, ComponentKind::Aggregate) => format!("{plugin}_{}_Commands", component.name),
            (Self::PerLog, _) => format!("{plugin}_Dcb_Commands"),
            (Self::PerComponent, _) => format!("{plugin}_{}_Commands", component.name),
        }
    }

    /// The topics a plugin's async components need, each with the components it carries.
    pub fn topics(self, manifest: &Manifest) -> BTreeMap<String, Vec<String>> {
        let mut topics: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for component in manifest.components.iter().filter(|c| c.is_async) {
            topics.entry(self.topic(&manifest.plugin, component)).or_default().push(component.name.clone());
        }
        topics
    }
}
