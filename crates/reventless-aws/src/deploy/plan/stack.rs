//! A plugin stack's resources: tables, queues, and per function unit its
//! role, log group, function, mapping, schedule and URL.
use std::collections::BTreeMap;

use reventless_core::Manifest;
use serde_json::json;

use super::checks::check_tuning_keys;
use super::functions::function_resources;
use super::links::{EXTENDS_OUTPUT, EXTENSION_POINTS_OUTPUT, ExtensionLinks};
use super::names::{Arns, FUNCTION_NAME_MAX, ROLE_NAME_MAX, api_function, resource_name, stack_names};
use super::units::{
    FILTER_PATTERN_MAX, FunctionUnit, STREAM_READERS_ADVISED, followed_log_keys, followed_types, function_units,
    stream_filter_pattern, topic_layout,
};
use super::{PlanError, Resource, ResourceKind, parameter, tags};
use super::{policies, storage};
use crate::deploy::config::ProjectConfig;
use crate::lambda::FunctionConfig;
use crate::shorten;

/// What every plugin stack of the plan shares.
pub(super) struct StackContext<'a> {
    pub config: &'a ProjectConfig,
    pub arns: &'a Arns<'a>,
    pub links: &'a ExtensionLinks,
    pub registry: &'a str,
}

/// One plugin stack's planned resources and warnings.
#[derive(Default)]
pub(super) struct PlannedStack {
    pub resources: Vec<Resource>,
    pub warnings: Vec<String>,
}

/// Plans plugin stack `stack` from its manifest.
pub(super) fn plugin_stack(
    context: &StackContext,
    stack: &str,
    manifest: &Manifest,
) -> Result<PlannedStack, PlanError> {
    let StackContext { config, arns, links, registry } = *context;
    let registry = registry.to_string();
    let mut out = PlannedStack::default();
    let plugin = config.plugin_name(stack);
    if manifest.plugin != plugin {
        return Err(PlanError::WrongPlugin {
            stack: stack.to_string(),
            found: manifest.plugin.clone(),
            expected: plugin,
        });
    }
    let names = stack_names(config, stack);
    let extended = links.points_of(&plugin);
    let units = function_units(manifest, config.consolidation, &extended);
    // Where this plugin's published events go: each subscriber's inbox queue.
    let mut subscribers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut inboxes: BTreeMap<String, String> = BTreeMap::new();
    for point in &extended {
        for subscriber_stack in links.subscribers.get(point).into_iter().flatten() {
            let subscriber = config.plugin_name(subscriber_stack);
            let prefix = stack_names(config, subscriber_stack).stores.queue_prefix;
            let topic = reventless_core::inbox_topic(&subscriber);
            inboxes.insert(topic.clone(), crate::command_topic::queue_name(&prefix, &topic));
            subscribers.entry(point.clone()).or_default().push(subscriber);
        }
    }
    // Other plugins' extension points it sends commands to: their command queues.
    let (point_queues, point_warnings) = super::point_commands::point_queues(config, manifest);
    out.warnings.extend(point_warnings);
    let task_unit = super::tasks::task_unit(manifest);
    let keys: Vec<&str> =
        units.iter().chain(task_unit.iter()).flat_map(|unit| [unit.group, unit.name.as_str()]).collect();
    check_tuning_keys(config, stack, &keys)?;
    // Each drained topic: its FIFO queue and dead-letter queue.
    let queues: Vec<(&FunctionUnit, String, String)> = units
        .iter()
        .filter_map(|unit| {
            let topic = unit.topic.as_ref()?;
            let queue = crate::command_topic::queue_name(&names.stores.queue_prefix, topic);
            let dead_letters = crate::command_topic::queue_name(&names.stores.queue_prefix, &format!("{topic}-dlq"));
            Some((unit, queue, dead_letters))
        })
        .collect();
    // Async commands may be sent from any function; the inbox only receives from publishers.
    let queue_arns: Vec<String> = queues
        .iter()
        .filter(|(unit, _, _)| unit.group == "StateChanges")
        .map(|(_, queue, _)| arns.queue(queue))
        .collect();
    let stream_readers = units.iter().filter(|unit| unit.follows_stream()).count();
    if stream_readers > STREAM_READERS_ADVISED {
        out.warnings.push(format!(
            "{stack}: {stream_readers} functions read the events stream (DynamoDB advises at most \
                 {STREAM_READERS_ADVISED} per shard; more are throttled): `micro` suits plugins with few followers"
        ));
    }
    out.resources.extend(storage::stack_storage(config, stack, &names, &queues, stream_readers > 0));
    out.resources.extend(super::tasks::task_resources(&super::tasks::TaskStack {
        config,
        arns,
        stack,
        manifest,
        names: &names,
        queue_arns: &queue_arns,
    }));
    for unit in &units {
        let group = unit.group;
        let function = resource_name(config, stack, &unit.name, FUNCTION_NAME_MAX);
        let tuning = config.tuning(stack, &[group, &unit.name]);
        let own_queue = queues.iter().find(|(drained, _, _)| drained.name == unit.name);
        // It publishes the points it runs: to the subscribers in this plan,
        // and to those the registry names at runtime (deployed from elsewhere).
        let publishes = group == "AllAutomationSlices"
            && !extended.is_empty()
            && (unit.components.is_empty() || unit.components.iter().any(|c| extended.contains(c)));
        let heartbeat = group == "Heartbeat";
        let mut statements = policies::unit_statements(&policies::UnitAccess {
            config,
            arns,
            stack,
            unit,
            names: &names,
            queue_arns: &queue_arns,
            own_queue: own_queue.map(|(_, queue, _)| queue.as_str()),
            inboxes: if publishes { Some(&inboxes) } else { None },
            registry: heartbeat.then_some(registry.as_str()),
            discovers_in: publishes.then_some(registry.as_str()),
        });
        let sends_to_points = super::point_commands::sends(unit);
        if sends_to_points {
            statements.extend(super::point_commands::send_statement(arns, &point_queues));
        }
        let role = if unit.follows_stream() { group.to_string() } else { format!("{plugin}{group}") };
        let function_config = FunctionConfig {
            registry: (heartbeat || publishes).then(|| registry.clone()),
            api_function: heartbeat.then(|| api_function(config, stack)),
            topics: topic_layout(config.consolidation),
            components: if unit.follows_stream() { unit.components.clone() } else { Vec::new() },
            subscribers: if publishes { subscribers.clone() } else { BTreeMap::new() },
            queue_names: {
                let mut names = if publishes { inboxes.clone() } else { BTreeMap::new() };
                if sends_to_points {
                    names.extend(point_queues.clone());
                }
                names
            },
            ..FunctionConfig::new(role, &plugin, names.stores.clone())
        };
        let mut environment = BTreeMap::new();
        environment
            .insert(crate::lambda::CONFIG_ENV.into(), serde_json::to_string(&function_config).unwrap_or_default());
        environment.extend(crate::deploy::secrets::environment(config, stack));
        environment.extend(super::gateway::push_environment(config, unit));
        out.resources.extend(function_resources(config, arns, stack, unit, &function, statements, environment));
        let mapping = match own_queue {
            // Both handlers answer `batchItemFailures`: without
            // ReportBatchItemFailures Lambda ignores it and retries (or
            // drops) the whole batch.
            Some((_, queue, _)) => Some(json!({
                "function": function, "queue": queue, "batchSize": tuning.sqs_batch_size,
                "functionResponseTypes": ["ReportBatchItemFailures"],
            })),
            None if unit.follows_stream() => {
                let logs = json!(followed_log_keys(manifest, unit, &extended));
                let mut types = followed_types(manifest, unit, &extended).map(|types| json!(types));
                let length = stream_filter_pattern(&logs, types.as_ref()).chars().count();
                if types.is_some() && length > FILTER_PATTERN_MAX {
                    // Lambda refuses the mapping; the log filter alone still
                    // spares the function fence and counter items, and it
                    // skips the events no follower consumes.
                    types = None;
                    out.warnings.push(format!(
                        "{stack}: the stream filter of {function} would take {length} characters with its \
                             event types, more than Lambda's {FILTER_PATTERN_MAX} per pattern: it filters by log \
                             only, so events of other types also wake it (and are skipped)"
                    ));
                }
                Some(json!({
                    "function": function, "table": names.stores.events_table, "batchSize": 100,
                    "bisectOnError": true, "maximumRetryAttempts": 10, "onFailure": names.stream_failures,
                    "logs": logs, "types": types,
                    "functionResponseTypes": ["ReportBatchItemFailures"],
                }))
            }
            None => None,
        };
        if let Some(spec) = mapping {
            out.resources.push(Resource {
                kind: ResourceKind::EventSourceMapping,
                name: format!("{function}:{}", if own_queue.is_some() { "commands" } else { "events" }),
                stack: stack.to_string(),
                component: unit.name.clone(),
                tags: tags(config, stack, &unit.name),
                spec,
            });
        }
        if heartbeat {
            // The schedule invokes the function with its own role (allowed exactly that).
            let scheduler_role = shorten(&format!("{function}-schedule"), ROLE_NAME_MAX);
            out.resources.push(Resource {
                kind: ResourceKind::Role,
                name: scheduler_role.clone(),
                stack: stack.to_string(),
                component: "HeartbeatSchedule".into(),
                tags: tags(config, stack, "HeartbeatSchedule"),
                spec: json!({"trust": "scheduler.amazonaws.com", "policy": {"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": [arns.function(&function)]}
                ]}}),
            });
            out.resources.push(Resource {
                kind: ResourceKind::Schedule,
                name: function.clone(),
                stack: stack.to_string(),
                component: unit.name.clone(),
                tags: tags(config, stack, &unit.name),
                spec: json!({"function": function, "expression": "rate(1 minute)", "role": scheduler_role}),
            });
            // The plugin's schedules fire through the heartbeat, under the same role.
            out.resources.extend(super::schedules::schedule_resources(
                config,
                stack,
                manifest,
                &function,
                &scheduler_role,
            ));
        }
        if group == "Api" {
            out.resources.push(Resource {
                kind: ResourceKind::FunctionUrl,
                name: function.clone(),
                stack: stack.to_string(),
                component: unit.name.clone(),
                tags: tags(config, stack, &unit.name),
                spec: json!({"authType": "AWS_IAM", "public": false}),
            });
        }
    }
    out.resources.push(parameter(config, stack, "events-table", &names.stores.events_table));
    out.resources.push(parameter(config, stack, "rows-table", &names.stores.rows_table));
    // Who deployed it: a deploy prunes only removed stacks of its own source.
    out.resources.push(parameter(config, stack, crate::deploy::config::DEPLOYED_FROM, &config.source));
    let command_queues: Vec<&str> =
        queues.iter().filter(|(unit, _, _)| unit.group == "StateChanges").map(|(_, queue, _)| queue.as_str()).collect();
    if !command_queues.is_empty() {
        out.resources.push(parameter(config, stack, "command-queues", &command_queues.join(",")));
    }
    if let Some((_, inbox, _)) = queues.iter().find(|(unit, _, _)| unit.group == "Extensions") {
        out.resources.push(parameter(config, stack, "inbox-queue", inbox));
    }
    // What plans of other stacks read instead of this one's manifest.
    if !extended.is_empty() {
        out.resources.push(parameter(config, stack, EXTENSION_POINTS_OUTPUT, &extended.join(",")));
    }
    let extends = ExtensionLinks::extended_by(manifest);
    if !extends.is_empty() {
        out.resources.push(parameter(config, stack, EXTENDS_OUTPUT, &extends.join(",")));
    }
    Ok(out)
}
