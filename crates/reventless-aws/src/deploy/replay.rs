//! The operator side of `reventless replay --stage S Plugin.ReadModel`.
//! The CLI holds no plugin code, so it cannot fold events itself: it
//! invokes the plugin's read-model function (which has the projection and
//! the rights on the stage's tables) slice by slice — `begin`, `step` until
//! switched, `finish` — and reports progress between slices. The replay's
//! state is in the stage's rows table, so each invocation stays within the
//! function's timeout.
use std::time::Duration;

use reventless_core::runtime::replay::{POINTER_TTL, ReplayProgress};
use serde_json::Value;

use super::config::{Consolidation, ProjectConfig};
use super::plan::{FUNCTION_NAME_MAX, resource_name};
use crate::gateway::PluginApis;
use crate::lambda::replay::{ReplayAction, ReplayRequest};

/// How long one `step` invocation folds: well inside the default 30 s timeout.
pub const STEP_BUDGET: Duration = Duration::from_secs(10);

/// Why a replay on a stage failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReplayDriveError {
    #[error("`{0}` is not Plugin.ReadModel (e.g. Shop.Orders)")]
    BadName(String),
    #[error("no plugin `{plugin}` in this project (stacks: {})", stacks.join(", "))]
    UnknownPlugin { plugin: String, stacks: Vec<String> },
    #[error("invoking {function}: {message}")]
    Invoke { function: String, message: String },
    #[error("{function} refused the replay: {message}")]
    Refused { function: String, message: String },
}

/// The function that runs `read_model`'s projection on the stage: the
/// stack's `AllReadModels` (`single`, `per-aggregate`), or the read model's
/// own function (`micro`).
pub fn replay_function(config: &ProjectConfig, read_model: &str) -> Result<String, ReplayDriveError> {
    let Some((plugin, component)) = read_model.split_once('.').filter(|(p, c)| !p.is_empty() && !c.is_empty()) else {
        return Err(ReplayDriveError::BadName(read_model.to_string()));
    };
    let stack = config.plugins.keys().find(|stack| config.plugin_name(stack) == plugin).ok_or_else(|| {
        ReplayDriveError::UnknownPlugin { plugin: plugin.to_string(), stacks: config.plugins.keys().cloned().collect() }
    })?;
    let unit = match config.consolidation {
        Consolidation::Micro => component,
        Consolidation::Single | Consolidation::PerAggregate => "AllReadModels",
    };
    Ok(resource_name(config, stack, unit, FUNCTION_NAME_MAX))
}

/// How a replay on a stage ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayOutcome {
    pub function: String,
    pub progress: ReplayProgress,
    /// Old rows deleted after the switch.
    pub deleted: u64,
}

/// Runs the whole replay of `read_model` through `function`, calling
/// `on_progress` after each slice (events counted over all slices).
pub async fn drive(
    apis: &dyn PluginApis,
    function: &str,
    read_model: &str,
    budget: Duration,
    mut on_progress: impl FnMut(&ReplayProgress),
) -> Result<ReplayOutcome, ReplayDriveError> {
    let begun: ReplayProgress =
        decode(function, call(apis, function, ReplayRequest::new(read_model, ReplayAction::Begin)).await?)?;
    let mut events = 0;
    let progress = loop {
        let mut request = ReplayRequest::new(read_model, ReplayAction::Step);
        request.generation = Some(begun.generation);
        request.budget_ms = Some(u64::try_from(budget.as_millis()).unwrap_or(u64::MAX));
        let mut progress: ReplayProgress = decode(function, call(apis, function, request).await?)?;
        events += progress.events;
        progress.events = events;
        on_progress(&progress);
        if progress.switched {
            break progress;
        }
    };
    // Queries trust a pointer for POINTER_TTL: the old rows stay until none reads them.
    tokio::time::sleep(POINTER_TTL * 2).await;
    let finished = call(apis, function, ReplayRequest::new(read_model, ReplayAction::Finish)).await?;
    let deleted = finished.get("deleted").and_then(Value::as_u64).unwrap_or(0);
    Ok(ReplayOutcome { function: function.to_string(), progress, deleted })
}

async fn call(apis: &dyn PluginApis, function: &str, request: ReplayRequest) -> Result<Value, ReplayDriveError> {
    let payload = serde_json::to_value(&request)
        .map_err(|e| ReplayDriveError::Invoke { function: function.to_string(), message: e.to_string() })?;
    let answer = apis
        .call(function, payload)
        .await
        .map_err(|message| ReplayDriveError::Invoke { function: function.to_string(), message })?;
    if let Some(message) = answer.get("error").and_then(Value::as_str) {
        return Err(ReplayDriveError::Refused { function: function.to_string(), message: message.to_string() });
    }
    Ok(answer)
}

fn decode(function: &str, answer: Value) -> Result<ReplayProgress, ReplayDriveError> {
    serde_json::from_value(answer).map_err(|e| ReplayDriveError::Invoke {
        function: function.to_string(),
        message: format!("not replay progress: {e}"),
    })
}
