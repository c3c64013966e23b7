//! The function side of `reventless replay --stage S Plugin.ReadModel`: the
//! read-model function of the plugin (it has the projection's code and the
//! rights on the stage's events and rows tables) runs one slice of the
//! replay per invocation, its state kept in the rows table (see
//! `reventless_core::runtime::replay`), so every invocation stays within
//! the function's timeout and an interrupted replay can be told apart.
use std::time::Duration;

use reventless_core::Runtime;
use reventless_core::runtime::replay::{self, Replay, ReplayError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::config::HandlerGroup;

/// The `reventless` value of a replay invocation's payload.
pub const REPLAY_EVENT: &str = "replay";
/// The longest slice an invocation folds when the request names none.
const DEFAULT_BUDGET: Duration = Duration::from_secs(10);

/// What the operator's CLI asks of the function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayRequest {
    /// Always [`REPLAY_EVENT`].
    pub reventless: String,
    /// `Plugin.ReadModel`.
    pub read_model: String,
    pub action: ReplayAction,
    /// The generation being filled (`step`).
    #[serde(default)]
    pub generation: Option<u64>,
    /// How long a `step` may fold (milliseconds).
    #[serde(default)]
    pub budget_ms: Option<u64>,
    /// Events per batch (`step`).
    #[serde(default)]
    pub batch: Option<usize>,
}

impl ReplayRequest {
    pub fn new(read_model: &str, action: ReplayAction) -> Self {
        Self {
            reventless: REPLAY_EVENT.into(),
            read_model: read_model.into(),
            action,
            generation: None,
            budget_ms: None,
            batch: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ReplayAction {
    /// Claim a new generation (the answer's `generation`).
    Begin,
    /// Fold for up to the budget; switch when caught up.
    Step,
    /// Delete the rows of the generation the switch retired.
    Finish,
}

/// Answers a replay invocation: the progress (`begin`, `step`), the rows
/// deleted (`finish`), or `{"error": …}` with the reason (an unknown read
/// model, another replay took over, a store failure). Only the function
/// that runs the read model's projection takes it.
pub(super) async fn handle(group: HandlerGroup, components: &[String], runtime: &Runtime, payload: &Value) -> Value {
    let request: ReplayRequest = match serde_json::from_value(payload.clone()) {
        Ok(request) => request,
        Err(error) => return json!({ "error": format!("not a replay request: {error}") }),
    };
    let component = request.read_model.rsplit('.').next().unwrap_or_default();
    let runs_it = components.is_empty() || components.iter().any(|c| c == component);
    if group != HandlerGroup::AllReadModels || !runs_it {
        let reason = format!("this function ({group:?}) does not run the read model {}", request.read_model);
        return json!({ "error": reason });
    }
    match answer(runtime, &request).await {
        Ok(value) => value,
        Err(error) => {
            tracing::error!(read_model = request.read_model, %error, "replay failed");
            json!({ "error": error.to_string() })
        }
    }
}

async fn answer(runtime: &Runtime, request: &ReplayRequest) -> Result<Value, ReplayError> {
    let progress = |replay: &Replay| serde_json::to_value(replay.progress()).unwrap_or_default();
    match request.action {
        ReplayAction::Begin => {
            let replay = Replay::begin(runtime, &request.read_model).await?;
            Ok(progress(&replay))
        }
        ReplayAction::Step => {
            let generation = request.generation.ok_or_else(|| {
                ReplayError::Store(reventless_core::StoreError::Invalid("a replay step needs its generation".into()))
            })?;
            let mut replay = Replay::resume(runtime, &request.read_model, generation).await?;
            if let Some(batch) = request.batch {
                replay = replay.with_batch(batch);
            }
            let budget = request.budget_ms.map_or(DEFAULT_BUDGET, Duration::from_millis);
            let done = replay.step(budget).await?;
            Ok(serde_json::to_value(done).unwrap_or_default())
        }
        ReplayAction::Finish => {
            let table = replay::table_of(runtime, &request.read_model)?;
            let deleted = replay::retire(runtime, &table).await?;
            Ok(json!({ "readModel": request.read_model, "deleted": deleted }))
        }
    }
}
