//! A plugin stack's storage: its events and rows tables, each drained
//! topic's FIFO queue with its dead-letter queue, and the stream-failure queue.
use serde_json::json;

use super::names::StackNames;
use super::units::FunctionUnit;
use super::{Resource, ResourceKind, tags};
use crate::deploy::config::ProjectConfig;

/// A drained topic: the unit draining it, its queue, its dead-letter queue.
pub(super) type DrainedQueue<'a> = (&'a FunctionUnit, String, String);

/// The tables and queues of plugin stack `stack`; the stream-failure queue
/// only when a function follows the events stream.
pub(super) fn stack_storage(
    config: &ProjectConfig,
    stack: &str,
    names: &StackNames,
    queues: &[DrainedQueue],
    follows_stream: bool,
) -> Vec<Resource> {
    let mut resources = Vec::new();
    resources.push(Resource {
        kind: ResourceKind::Table,
        name: names.stores.events_table.clone(),
        stack: stack.to_string(),
        component: "events".into(),
        tags: tags(config, stack, "events"),
        spec: json!({"layout": "events", "stream": true}),
    });
    resources.push(Resource {
        kind: ResourceKind::Table,
        name: names.stores.rows_table.clone(),
        stack: stack.to_string(),
        component: "rows".into(),
        tags: tags(config, stack, "rows"),
        spec: json!({"layout": "rows", "stream": false}),
    });
    for (unit, queue, dead_letters) in queues {
        resources.push(Resource {
            kind: ResourceKind::Queue,
            name: dead_letters.clone(),
            stack: stack.to_string(),
            component: unit.name.clone(),
            tags: tags(config, stack, &unit.name),
            spec: json!({"fifo": true, "visibilityTimeout": 30, "redriveTo": null, "maxReceiveCount": null}),
        });
        let visibility = config.tuning(stack, &[unit.group, &unit.name]).timeout * 6;
        resources.push(Resource {
                kind: ResourceKind::Queue,
                name: queue.clone(),
                stack: stack.to_string(),
                component: unit.name.clone(),
                tags: tags(config, stack, &unit.name),
                spec: json!({"fifo": true, "visibilityTimeout": visibility, "redriveTo": dead_letters, "maxReceiveCount": 5}),
            });
    }
    if follows_stream {
        resources.push(Resource {
            kind: ResourceKind::Queue,
            name: names.stream_failures.clone(),
            stack: stack.to_string(),
            component: "stream-failures".into(),
            tags: tags(config, stack, "stream-failures"),
            spec: json!({"fifo": false, "visibilityTimeout": 30, "redriveTo": null, "maxReceiveCount": null}),
        });
    }
    resources
}
