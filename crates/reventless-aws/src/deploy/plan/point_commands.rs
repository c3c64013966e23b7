//! Commands a plugin sends to another plugin's extension point
//! (`Plugin::sends_to`): they go to the publisher stack's command queue, so
//! the sender's functions get `sqs:SendMessage` on exactly that queue and
//! know its name by topic. The queues are not KMS-encrypted (see
//! `storage`), so no key grant is needed.
use std::collections::BTreeMap;

use reventless_core::Manifest;
use reventless_core::plugin::{ComponentKind, ComponentManifest};
use serde_json::{Value, json};

use super::names::{Arns, stack_names};
use super::units::{FunctionUnit, topic_layout};
use crate::deploy::config::ProjectConfig;

/// The groups whose functions run the components that send commands
/// (automations and outbound translations, extensions, inbound translations).
const SENDING_GROUPS: &[&str] = &["Api", "Extensions", "AllAutomationSlices"];

/// The queues of the points `manifest` sends commands to: the topic the
/// sender's runtime addresses (`<Publisher>_Commands`) → the publisher
/// stack's queue (as its consolidation lays out its topics), and warnings
/// for publishers that are not a stack of the file.
pub(super) fn point_queues(config: &ProjectConfig, manifest: &Manifest) -> (BTreeMap<String, String>, Vec<String>) {
    let mut queues = BTreeMap::new();
    let mut warnings = Vec::new();
    for target in manifest.components.iter().filter(|c| c.kind == ComponentKind::SendsToExtensionPoint) {
        let Some((publisher, _)) = target.name.split_once('.') else { continue };
        let stack = config.plugins.keys().find(|stack| config.plugin_name(stack) == publisher);
        let Some(stack) = stack else {
            warnings.push(format!(
                "{}: sends commands to `{}`, whose plugin is no stack of this project file: not granted",
                manifest.plugin, target.name
            ));
            continue;
        };
        // The point as its publisher's manifest lists it (an async component).
        let point = ComponentManifest { kind: ComponentKind::ExtensionPoint, is_async: true, ..target.clone() };
        let topic = topic_layout(config.consolidation).topic(publisher, &point);
        let prefix = stack_names(config, stack).stores.queue_prefix;
        queues.insert(
            reventless_core::plugin::command_topic(publisher),
            crate::command_topic::queue_name(&prefix, &topic),
        );
    }
    (queues, warnings)
}

/// Whether `unit` runs components that may send commands to other plugins' points.
pub(super) fn sends(unit: &FunctionUnit) -> bool {
    SENDING_GROUPS.contains(&unit.group)
}

/// The statement letting a sending unit send to exactly those queues.
pub(super) fn send_statement(arns: &Arns, queues: &BTreeMap<String, String>) -> Option<Value> {
    if queues.is_empty() {
        return None;
    }
    let resources: Vec<String> = queues.values().map(|queue| arns.queue(queue)).collect();
    Some(json!({"Effect": "Allow", "Action": ["sqs:SendMessage", "sqs:GetQueueUrl"], "Resource": resources}))
}
