//! A plugin's schedules (`Plugin::schedule`): one EventBridge Scheduler entry
//! each, in the default group, invoking the plugin's `Heartbeat` function
//! with the schedule's name (see `crate::lambda::schedules`) under the
//! heartbeat schedule's role, which may invoke exactly that function.
//! Scheduler evaluates `cron(...)` in UTC (no timezone is set), as the local
//! platform does.
use reventless_core::Manifest;
use serde_json::json;

use super::names::resource_name;
use super::{Resource, ResourceKind, tags};
use crate::deploy::config::ProjectConfig;

/// Scheduler names: at most 64 characters.
pub const SCHEDULE_NAME_MAX: usize = 64;

/// The Scheduler entry name of `plugin`'s schedule `schedule` in `stack`.
pub fn schedule_entry_name(config: &ProjectConfig, stack: &str, plugin: &str, schedule: &str) -> String {
    resource_name(config, stack, &format!("{plugin}Schedule-{schedule}"), SCHEDULE_NAME_MAX)
}

/// The Scheduler entries of the manifest's schedules, each invoking
/// `function` (the plugin's heartbeat) with `role` (allowed to invoke exactly it).
pub(super) fn schedule_resources(
    config: &ProjectConfig,
    stack: &str,
    manifest: &Manifest,
    function: &str,
    role: &str,
) -> Vec<Resource> {
    manifest
        .schedules
        .iter()
        .map(|schedule| Resource {
            kind: ResourceKind::Schedule,
            name: schedule_entry_name(config, stack, &manifest.plugin, &schedule.name),
            stack: stack.to_string(),
            component: schedule.name.clone(),
            tags: tags(config, stack, &schedule.name),
            spec: json!({
                "function": function,
                "expression": schedule.expression,
                "role": role,
                "input": crate::lambda::schedules::schedule_input(&schedule.name),
            }),
        })
        .collect()
}
