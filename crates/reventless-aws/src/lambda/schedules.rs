//! The function side of schedules (`Plugin::schedule`): each schedule's
//! EventBridge Scheduler entry invokes the plugin's `Heartbeat` function with
//! `{"reventless": "schedule", "schedule": "<Name>"}`, and the function fires
//! it on its on-demand runtime. The heartbeat serves schedules because it is
//! already the plugin's Scheduler-invoked clock, and its role already runs
//! the plugin's commands (automation retries): no further function or rights.
use reventless_core::Runtime;
use serde_json::{Value, json};

use super::config::HandlerGroup;

/// The `reventless` value of a schedule invocation's payload.
pub const SCHEDULE_EVENT: &str = "schedule";

/// The input a schedule's Scheduler entry sends.
pub fn schedule_input(schedule: &str) -> Value {
    json!({ "reventless": SCHEDULE_EVENT, "schedule": schedule })
}

/// Fires the schedule the payload names at the time of the invocation
/// (the entry has no flexible window: Scheduler invokes at its times).
/// Rejections and failures are in the answer (`DEGRADED`) and the log; the
/// invocation itself succeeds, so Lambda does not fire the schedule twice.
pub async fn handle(group: HandlerGroup, runtime: &Runtime, payload: &Value) -> Result<Value, String> {
    if group != HandlerGroup::Heartbeat {
        return Err(format!("this function ({group:?}) does not fire schedules; the Heartbeat function does"));
    }
    let Some(name) = payload.get("schedule").and_then(Value::as_str) else {
        return Err("a schedule invocation names its schedule in `schedule`".into());
    };
    let Some(plugin) = runtime.manifests().first().map(|m| m.plugin.clone()) else {
        return Err("no plugin is hosted".into());
    };
    let at = reventless_spec::Timestamp::now();
    let firing = runtime.fire_schedule(&plugin, name, at).await.map_err(|e| e.to_string())?;
    let rejected = firing
        .outcomes
        .iter()
        .filter(|outcome| matches!(outcome, reventless_core::CommandOutcome::Rejected { .. }))
        .count();
    let status = if firing.errors.is_empty() { "FIRED" } else { "DEGRADED" };
    Ok(json!({
        "schedule": firing.schedule,
        "at": firing.at.0,
        "status": status,
        "sent": firing.outcomes.len(),
        "rejected": rejected,
        "errors": firing.errors,
    }))
}
