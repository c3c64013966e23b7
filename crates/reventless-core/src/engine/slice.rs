use reventless_spec::{AppendCondition, EventEnvelope, Message, Query, StateChangeSlice};

use super::{CONFLICT_RETRIES, ExecutionContext, check_produced, decode_event, encode_events, rejected};
use crate::outcome::{CommandOutcome, EngineError};
use crate::store::{Published, StoreError};

/// Folds the events a decision read into the slice's state.
pub fn fold_slice<S: StateChangeSlice>(events: &[EventEnvelope]) -> Result<S::State, EngineError> {
    let mut state = S::State::default();
    for envelope in events {
        state = S::evolve(state, &decode_event::<S::Event>(envelope)?);
    }
    Ok(state)
}

/// The append condition of a decision: nothing matching the query may have
/// been appended after the last event the decision saw.
pub fn decision_condition(query: Query, seen: &[EventEnvelope]) -> AppendCondition {
    AppendCondition::new(query, seen.last().map(|e| e.position))
}

/// The entity a DCB command is about, for its outcome: its first scalar tag
/// value, else its first tag value, else the command name.
pub fn slice_entity_id<C: Message>(command: &C) -> String {
    let tags = command.tag_set();
    tags.scalar.first().or(tags.many.first()).map_or_else(|| command.name().to_string(), |t| t.value().to_string())
}

/// The DCB decision loop: read by the command's query → fold → decide →
/// append with the condition; on a conflict, again from a fresh read.
pub async fn execute_slice<S: StateChangeSlice>(
    ctx: &ExecutionContext,
    log: &str,
    command: &S::Command,
) -> Result<CommandOutcome, EngineError> {
    let entity_id = slice_entity_id(command);
    let query = S::query(command);
    for _ in 0..=CONFLICT_RETRIES {
        let seen = ctx.stores.events.read(log, &query, None, None).await?;
        let state = fold_slice::<S>(&seen)?;
        let events = match S::decide(&state, command) {
            Ok(events) => events,
            Err(error) => return Ok(rejected(Some(entity_id), &error)),
        };
        if events.is_empty() {
            return Ok(CommandOutcome::Accepted { entity_id, event_count: 0, position: None });
        }
        check_produced(S::NAME, &events, S::PRODUCES)?;
        let condition = decision_condition(query.clone(), &seen);
        let new_events = encode_events(&events, &ctx.meta)?;
        match ctx.stores.events.append(log, new_events, Some(&condition)).await {
            Ok(appended) => {
                ctx.stores.bus.publish(Published::of(log, &appended, events.iter().map(|e| e.name())));
                return Ok(CommandOutcome::Accepted {
                    entity_id,
                    event_count: events.len(),
                    position: Some(appended.last_position),
                });
            }
            Err(StoreError::Conflict(reason)) => {
                tracing::debug!(log, slice = S::NAME, reason, "DCB append conflicted; deciding again");
            }
            Err(other) => return Err(other.into()),
        }
    }
    Err(EngineError::Conflict { attempts: CONFLICT_RETRIES + 1 })
}
