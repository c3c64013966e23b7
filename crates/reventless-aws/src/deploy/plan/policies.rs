//! What a plugin stack's function may do: the statements of its role
//! (besides writing its own logs, see [`super::functions`]).
use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::names::{Arns, StackNames};
use super::units::FunctionUnit;
use crate::deploy::config::ProjectConfig;

/// What a function unit reaches, as the plan derived it.
pub(super) struct UnitAccess<'a> {
    pub config: &'a ProjectConfig,
    pub arns: &'a Arns<'a>,
    pub stack: &'a str,
    pub unit: &'a FunctionUnit,
    pub names: &'a StackNames,
    /// The plugin's async command queues (any function may send to them).
    pub queue_arns: &'a [String],
    /// The queue this unit drains.
    pub own_queue: Option<&'a str>,
    /// Subscribers' inboxes (topic → queue), when this unit publishes to them.
    pub inboxes: Option<&'a BTreeMap<String, String>>,
    /// The platform registry, when this unit is the heartbeat.
    pub registry: Option<&'a str>,
    /// The platform registry, when this unit publishes extension points: it
    /// finds subscribers deployed later (from anywhere) there.
    pub discovers_in: Option<&'a str>,
}

/// The statements of a function unit's role.
pub(super) fn unit_statements(access: &UnitAccess) -> Vec<Value> {
    let UnitAccess { config, arns, stack, unit, names, queue_arns, own_queue, inboxes, registry, discovers_in } =
        *access;
    let mut statements = vec![
        json!({
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:PutItem",
                       "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"],
            "Resource": [arns.table(&names.stores.events_table), arns.table(&names.stores.rows_table)],
        }),
        // A Query through an index is authorized on the index's own ARN:
        // without these, reading a log and every indexed list
        // (automations list their todos by status) is refused.
        json!({"Effect": "Allow", "Action": ["dynamodb:Query"], "Resource": arns.indexes(&names.stores)}),
    ];
    // Any function may send the plugin's async commands; only a
    // command function receives, and only from its own queue.
    if !queue_arns.is_empty() {
        statements.push(json!({
            "Effect": "Allow",
            "Action": ["sqs:SendMessage", "sqs:GetQueueUrl"],
            "Resource": queue_arns,
        }));
    }
    if let Some(queue) = own_queue {
        statements.push(json!({
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                       "sqs:GetQueueAttributes"],
            "Resource": [arns.queue(queue)],
        }));
    }
    if let Some(inboxes) = inboxes.filter(|inboxes| !inboxes.is_empty()) {
        statements.push(json!({
            "Effect": "Allow",
            "Action": ["sqs:SendMessage", "sqs:GetQueueUrl"],
            "Resource": inboxes.values().map(|queue| arns.queue(queue)).collect::<Vec<_>>(),
        }));
    }
    if unit.follows_stream() {
        statements.push(json!({
                    "Effect": "Allow",
                    "Action": ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"],
                    "Resource": [format!("{}/stream/*", arns.table(&names.stores.events_table))],
                }));
        statements.push(json!({
            "Effect": "Allow",
            "Action": ["sqs:SendMessage"],
            "Resource": [arns.queue(&names.stream_failures)],
        }));
    }
    // Exactly the stack's own secrets (and their key, through SSM only).
    let parameters = crate::deploy::secrets::stack_secrets(config, stack).values().map(|p| arns.parameter(p)).collect();
    statements.extend(crate::deploy::secrets::read_statements(config, arns.account, parameters));
    if let Some(registry) = registry {
        statements.push(json!({"Effect": "Allow", "Action": ["dynamodb:PutItem"], "Resource": [arns.table(registry)]}));
    }
    if let Some(registry) = discovers_in {
        // Subscribers joining later are read from the registry and reached
        // by the stage's inbox naming (`{project}-{stage}-{stack}-{Plugin}_Extensions.fifo`):
        // a named pattern, never `*`.
        let inboxes = arns.queue(&format!("{}-{}-*_Extensions.fifo", config.project, config.stage));
        statements.push(json!({"Effect": "Allow", "Action": ["dynamodb:Query"], "Resource": [arns.table(registry)]}));
        statements
            .push(json!({"Effect": "Allow", "Action": ["sqs:SendMessage", "sqs:GetQueueUrl"], "Resource": [inboxes]}));
    }
    statements.extend(super::gateway::push_statements(config, arns, unit));
    statements
}
