//! A plugin stack's storage: its events and rows tables, each drained
//! topic's FIFO queue with its dead-letter queue, and the stream-failure queue.
//! The tables carry the stage's `[tables]` settings (billing, point-in-time
//! recovery, deletion protection), the FIFO queues its `[queues]` settings.
use serde_json::{Value, json};

use super::names::StackNames;
use super::units::FunctionUnit;
use super::{Resource, ResourceKind, tags};
use crate::deploy::config::{Billing, ProjectConfig, QueueSettings, TableSettings};

/// A plugin table's spec: its layout and the stage's table settings.
fn table_spec(layout: &str, stream: bool, settings: &TableSettings) -> Value {
    let mut spec = json!({
        "layout": layout,
        "stream": stream,
        "pointInTimeRecovery": settings.point_in_time_recovery,
        "deletionProtection": settings.deletion_protection,
    });
    match settings.billing {
        Billing::PayPerRequest => spec["billingMode"] = json!("PAY_PER_REQUEST"),
        // The table's indexes get the same capacity.
        Billing::Provisioned { read, write } => {
            spec["billingMode"] = json!("PROVISIONED");
            spec["readCapacity"] = json!(read);
            spec["writeCapacity"] = json!(write);
        }
    }
    spec
}

/// A FIFO queue's spec: its settings and the stage's throughput mode.
fn fifo_queue_spec(
    visibility: i64,
    redrive_to: Option<&str>,
    max_receives: Option<i64>,
    settings: &QueueSettings,
) -> Value {
    let (scope, limit) = settings.fifo_attributes();
    json!({"fifo": true, "visibilityTimeout": visibility, "redriveTo": redrive_to, "maxReceiveCount": max_receives,
           "deduplicationScope": scope, "fifoThroughputLimit": limit})
}

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
        spec: table_spec("events", true, &config.tables),
    });
    resources.push(Resource {
        kind: ResourceKind::Table,
        name: names.stores.rows_table.clone(),
        stack: stack.to_string(),
        component: "rows".into(),
        tags: tags(config, stack, "rows"),
        spec: table_spec("rows", false, &config.tables),
    });
    for (unit, queue, dead_letters) in queues {
        resources.push(Resource {
            kind: ResourceKind::Queue,
            name: dead_letters.clone(),
            stack: stack.to_string(),
            component: unit.name.clone(),
            tags: tags(config, stack, &unit.name),
            spec: fifo_queue_spec(30, None, None, &config.queues),
        });
        let visibility = config.tuning(stack, &[unit.group, &unit.name]).timeout * 6;
        resources.push(Resource {
            kind: ResourceKind::Queue,
            name: queue.clone(),
            stack: stack.to_string(),
            component: unit.name.clone(),
            tags: tags(config, stack, &unit.name),
            spec: fifo_queue_spec(visibility, Some(dead_letters), Some(5), &config.queues),
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
