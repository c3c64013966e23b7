//! The health of a deployed stage's plugins, as `reventless status` shows
//! it: messages parked in dead-letter queues and stream batches in the
//! stream-failure queue (work that will not happen by itself), the last
//! heartbeat in the platform registry (`STALE` after three missed one-minute
//! beats: the plugin's functions are not running), and automation to-do
//! items that failed (retrying) or exhausted their retries.
use std::collections::BTreeMap;
use std::time::Duration;

use reventless_core::Manifest;
use reventless_core::plugin::ComponentKind;
use reventless_core::store::{Filter, ListRequest, QueryStore};
use serde::Serialize;

use super::apply::Clients;
use super::config::ProjectConfig;
use super::plan::{Plan, ResourceKind, registry_table, stack_names};
use crate::gateway::HEARTBEAT_EVERY;
use crate::gateway::registry::Registry;
use crate::query_store::DynamoQueryStore;

/// A heartbeat older than this many beats is stale.
pub const MISSED_BEATS: u32 = 3;

/// Messages in a queue (visible and in flight).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueDepth {
    pub queue: String,
    pub messages: u64,
}

/// A plugin's last heartbeat in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    /// Milliseconds since the epoch; None: the plugin never registered.
    pub last: Option<u64>,
    pub age_seconds: Option<u64>,
    /// Older than [`MISSED_BEATS`] beats (or none at all).
    pub stale: bool,
}

/// An automation's (or outbound translation's) to-do items that need a look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AutomationHealth {
    pub automation: String,
    /// Failed, retries remaining.
    pub failed: u64,
    /// Every retry failed; `on_exhausted` ran.
    pub exhausted: u64,
    /// The error of one such item (errors never carry secret values).
    pub last_error: Option<String>,
}

/// One plugin stack's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginHealth {
    pub stack: String,
    pub plugin: String,
    pub healthy: bool,
    /// Why it is not healthy, one line each (empty when healthy).
    pub problems: Vec<String>,
    pub dead_letters: Vec<QueueDepth>,
    pub stream_failures: Option<QueueDepth>,
    pub heartbeat: Heartbeat,
    pub automations: Vec<AutomationHealth>,
}

impl PluginHealth {
    /// `ordering (Ordering): healthy` or `… UNHEALTHY: <problems>`.
    pub fn summary(&self) -> String {
        if self.healthy {
            format!("{} ({}): healthy", self.stack, self.plugin)
        } else {
            format!("{} ({}): UNHEALTHY: {}", self.stack, self.plugin, self.problems.join("; "))
        }
    }
}

/// The health of each plugin stack of `plan` (those of the project file).
/// What cannot be read is a problem of that plugin, never skipped.
pub async fn plugin_health(
    clients: &Clients,
    config: &ProjectConfig,
    plan: &Plan,
    manifests: &BTreeMap<String, Manifest>,
) -> Vec<PluginHealth> {
    let registry = Registry::with_client(clients.dynamodb.clone(), &registry_table(config)).list().await;
    let now = reventless_spec::Timestamp::now().0;
    let mut found = Vec::new();
    for stack in config.plugins.keys() {
        let plugin = config.plugin_name(stack);
        let mut problems = Vec::new();

        let mut dead_letters = Vec::new();
        let planned_queues = plan.resources.iter().filter(|r| r.kind == ResourceKind::Queue && &r.stack == stack);
        for queue in planned_queues {
            let is_dead_letter_queue =
                plan.resources.iter().any(|other| other.spec["redriveTo"] == queue.name.as_str());
            if is_dead_letter_queue {
                let depth = depth(clients, &queue.name, &mut problems).await;
                if depth.messages > 0 {
                    problems.push(format!("{} dead letter(s) in {}", depth.messages, depth.queue));
                }
                dead_letters.push(depth);
            }
        }
        let failures_queue = stack_names(config, stack).stream_failures;
        let stream_failures =
            if plan.resources.iter().any(|r| r.kind == ResourceKind::Queue && r.name == failures_queue) {
                let depth = depth(clients, &failures_queue, &mut problems).await;
                if depth.messages > 0 {
                    problems.push(format!("{} failed stream batch(es) in {}", depth.messages, depth.queue));
                }
                Some(depth)
            } else {
                None
            };

        let last = match &registry {
            Ok(registrations) => registrations.iter().find(|r| r.plugin == plugin).map(|r| r.last_heartbeat),
            Err(error) => {
                problems.push(format!("cannot read the registry: {error}"));
                None
            }
        };
        let heartbeat = heartbeat(last, now);
        match heartbeat.age_seconds {
            None if registry.is_ok() => problems.push("no heartbeat yet (the plugin never registered)".into()),
            Some(age) if heartbeat.stale => problems
                .push(format!("heartbeat STALE: last {age} s ago (expected every {} s)", HEARTBEAT_EVERY.as_secs())),
            _ => {}
        }

        let automations = match manifests.get(stack) {
            Some(manifest) => automation_health(clients, config, stack, manifest, &mut problems).await,
            None => Vec::new(),
        };
        found.push(PluginHealth {
            stack: stack.clone(),
            plugin,
            healthy: problems.is_empty(),
            problems,
            dead_letters,
            stream_failures,
            heartbeat,
            automations,
        });
    }
    found
}

/// The heartbeat's age at `now` (ms), stale after [`MISSED_BEATS`] beats.
pub fn heartbeat(last: Option<u64>, now: u64) -> Heartbeat {
    let stale_after = HEARTBEAT_EVERY * MISSED_BEATS;
    match last {
        None => Heartbeat { last: None, age_seconds: None, stale: true },
        Some(last) => {
            let age = Duration::from_millis(now.saturating_sub(last));
            Heartbeat { last: Some(last), age_seconds: Some(age.as_secs()), stale: age > stale_after }
        }
    }
}

/// Messages in `queue` (visible and in flight); a queue that cannot be read
/// is a problem.
async fn depth(clients: &Clients, queue: &str, problems: &mut Vec<String>) -> QueueDepth {
    match super::status::queue_depth(clients, queue).await {
        Ok((visible, in_flight)) => QueueDepth { queue: queue.to_string(), messages: visible + in_flight },
        Err(error) => {
            problems.push(format!("cannot read {queue}: {error}"));
            QueueDepth { queue: queue.to_string(), messages: 0 }
        }
    }
}

/// Each automation's failed and exhausted to-do items (rows of
/// `<Plugin>_<Name>Todos` in the stack's rows table, found by their
/// `status` index).
async fn automation_health(
    clients: &Clients,
    config: &ProjectConfig,
    stack: &str,
    manifest: &Manifest,
    problems: &mut Vec<String>,
) -> Vec<AutomationHealth> {
    let indexes = manifest.storage.tables.iter().map(|t| (t.name.clone(), t.indexes.clone())).collect();
    let rows = DynamoQueryStore::new(clients.dynamodb.clone(), stack_names(config, stack).stores.rows_table)
        .with_indexes(indexes);
    let mut found = Vec::new();
    let todo_lists = manifest
        .components
        .iter()
        .filter(|c| matches!(c.kind, ComponentKind::AutomationSlice | ComponentKind::OutboundTranslationSlice));
    for component in todo_lists {
        let Some(table) = &component.table else { continue };
        let mut health =
            AutomationHealth { automation: component.name.clone(), failed: 0, exhausted: 0, last_error: None };
        for status in ["FAILED", "EXHAUSTED"] {
            let request =
                ListRequest { filters: vec![Filter::eq("status", status)], first: 1, ..ListRequest::default() };
            match rows.list(table, &request).await {
                Ok(page) => {
                    if status == "FAILED" {
                        health.failed = page.total_count;
                    } else {
                        health.exhausted = page.total_count;
                    }
                    if let Some((_, row)) = page.rows.first() {
                        health.last_error = row["lastError"].as_str().map(str::to_string).or(health.last_error);
                    }
                }
                Err(error) => problems.push(format!("cannot read {table}: {error}")),
            }
        }
        if health.failed > 0 || health.exhausted > 0 {
            let error = health.last_error.as_deref().map(|e| format!(" (last error: {e})")).unwrap_or_default();
            problems.push(format!(
                "{}: {} failed (retrying), {} exhausted to-do item(s){error}",
                health.automation, health.failed, health.exhausted
            ));
        }
        found.push(health);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_is_stale_after_three_missed_beats() {
        let now = 10_000_000;
        assert_eq!(heartbeat(None, now), Heartbeat { last: None, age_seconds: None, stale: true });
        let fresh = heartbeat(Some(now - 61_000), now);
        assert_eq!((fresh.age_seconds, fresh.stale), (Some(61), false));
        assert!(!heartbeat(Some(now - 180_000), now).stale, "three beats is the limit");
        assert!(heartbeat(Some(now - 181_000), now).stale);
        assert!(!heartbeat(Some(now + 5_000), now).stale, "a clock ahead is not stale");
    }
}
