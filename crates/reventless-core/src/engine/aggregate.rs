use reventless_spec::Aggregate;

use super::{CONFLICT_RETRIES, ExecutionContext, decode_event, encode_events, rejected};
use crate::outcome::{CommandOutcome, EngineError};
use crate::store::{Published, StoreError};

/// Replay → decide → append with the expected version; on a conflict, again
/// from a fresh replay, up to [`CONFLICT_RETRIES`] times.
pub async fn execute_aggregate<A: Aggregate>(
    ctx: &ExecutionContext,
    log: &str,
    entity_id: &str,
    command: &A::Command,
) -> Result<CommandOutcome, EngineError> {
    let log_store = &ctx.stores.aggregates;
    for _ in 0..=CONFLICT_RETRIES {
        let history = log_store.read_stream(log, entity_id, 0).await?;
        let version = history.last().and_then(|e| e.stream.as_ref()).map_or(0, |s| s.version);
        let mut state = A::State::default();
        for envelope in &history {
            state = A::evolve(state, &decode_event::<A::Event>(envelope)?);
        }
        let events = match A::decide(&state, command) {
            Ok(events) => events,
            Err(error) => return Ok(rejected(Some(entity_id.to_string()), &error)),
        };
        if events.is_empty() {
            return Ok(CommandOutcome::Accepted { entity_id: entity_id.to_string(), event_count: 0, position: None });
        }
        let new_events = encode_events(&events, &ctx.meta)?;
        match log_store.append(log, entity_id, version, new_events).await {
            Ok(appended) => {
                ctx.stores.bus.publish(Published { log: log.to_string(), position: appended.last_position });
                return Ok(CommandOutcome::Accepted {
                    entity_id: entity_id.to_string(),
                    event_count: events.len(),
                    position: Some(appended.last_position),
                });
            }
            Err(StoreError::Conflict(reason)) => {
                tracing::debug!(log, entity_id, reason, "aggregate append conflicted; replaying");
            }
            Err(other) => return Err(other.into()),
        }
    }
    Err(EngineError::Conflict { attempts: CONFLICT_RETRIES + 1 })
}
