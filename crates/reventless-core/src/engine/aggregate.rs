use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use reventless_spec::Aggregate;

use reventless_spec::{EventMeta, Message, NewEvent};

use super::{CONFLICT_RETRIES, ExecutionContext, decode_event, encode_events, rejected};
use crate::outcome::{CommandOutcome, EngineError};
use crate::store::{Published, StoreError, StreamRef};

/// Entities whose decided state a warm instance keeps (the original system kept 100).
pub const STATE_CACHE_CAPACITY: usize = 1024;

/// Recently decided aggregate states by entity id, with the stream version
/// they reflect: the next command on a cached entity reads only the events
/// after that version (usually none) instead of the whole stream.
pub struct StateCache<S> {
    entries: Mutex<HashMap<String, CachedState<S>>>,
    capacity: usize,
    clock: AtomicU64,
}

struct CachedState<S> {
    version: u64,
    state: S,
    last_used: u64,
}

impl<S: Clone> StateCache<S> {
    /// A cache keeping at most `capacity` entity states (least recently used go first).
    pub fn new(capacity: usize) -> Self {
        Self { entries: Mutex::new(HashMap::new()), capacity, clock: AtomicU64::new(0) }
    }

    fn get(&self, id: &str) -> Option<(u64, S)> {
        let entries = self.entries.lock().ok()?;
        entries.get(id).map(|entry| (entry.version, entry.state.clone()))
    }

    fn put(&self, id: &str, version: u64, state: S) {
        let last_used = self.clock.fetch_add(1, Ordering::Relaxed);
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.len() >= self.capacity && !entries.contains_key(id) {
            let oldest = entries.iter().min_by_key(|(_, e)| e.last_used).map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(id.to_string(), CachedState { version, state, last_used });
    }
}

/// Encodes an aggregate's decided events for entity `id`: each carries the
/// entity tag (added when the event's own tags lack it). An event tagged
/// with the same key but another entity (a command field repeating the id
/// wrongly) is refused: it would show up in another entity's boundary.
pub fn encode_stream_events<A: Aggregate>(
    id: &str,
    events: &[A::Event],
    meta: &EventMeta,
) -> Result<Vec<NewEvent>, EngineError> {
    let entity = reventless_spec::entity_tag(A::NAME, id)
        .map_err(|e| EngineError::Contract(format!("aggregate {}: {e}", A::NAME)))?;
    let mut encoded = encode_events(events, meta)?;
    for event in &mut encoded {
        if let Some(other) = event.tags.iter().find(|t| t.key() == entity.key() && t.value() != entity.value()) {
            return Err(EngineError::Contract(format!(
                "aggregate {} decided `{}` for entity `{id}`, but the event is tagged `{other}`: \
                 take the entity id from decide's `id` instead of a command field",
                A::NAME,
                event.event_type
            )));
        }
        if !event.tags.contains(&entity) {
            event.tags.insert(0, entity.clone());
        }
    }
    Ok(encoded)
}

/// Folds the entity's events after `version` into `state`.
async fn catch_up<A: Aggregate>(
    ctx: &ExecutionContext,
    log: &str,
    entity_id: &str,
    mut state: A::State,
    mut version: u64,
) -> Result<(A::State, u64), EngineError> {
    let stream = StreamRef { aggregate: A::NAME, id: entity_id };
    for envelope in ctx.stores.events.read_stream(log, stream, version).await? {
        state = A::evolve(state, &decode_event::<A::Event>(&envelope)?);
        version = envelope.stream.as_ref().map_or(version + 1, |s| s.version);
    }
    Ok((state, version))
}

/// Replay → decide → append with the expected version; on a conflict, again
/// after reading the newer events, up to [`CONFLICT_RETRIES`] times.
///
/// A cached entity is first decided on its cached state without reading:
/// if the cache is stale, the append conflicts and the retry reads. A
/// refusal or a no-op cannot be checked that way, so it is confirmed by a
/// read before it is answered.
pub async fn execute_aggregate<A: Aggregate>(
    ctx: &ExecutionContext,
    cache: &StateCache<A::State>,
    log: &str,
    entity_id: &str,
    command: &A::Command,
) -> Result<CommandOutcome, EngineError> {
    let mut trust_cache = true;
    for _ in 0..=CONFLICT_RETRIES {
        let cached = cache.get(entity_id);
        let unread = trust_cache && cached.is_some();
        trust_cache = false;
        let (mut state, mut version) = match cached {
            Some((version, state)) if unread => (state, version),
            Some((version, state)) => catch_up::<A>(ctx, log, entity_id, state, version).await?,
            None => catch_up::<A>(ctx, log, entity_id, A::State::default(), 0).await?,
        };
        let mut decision = A::decide(entity_id, &state, command);
        if unread && !matches!(&decision, Ok(events) if !events.is_empty()) {
            let (current, current_version) = catch_up::<A>(ctx, log, entity_id, state.clone(), version).await?;
            if current_version != version {
                (state, version) = (current, current_version);
                decision = A::decide(entity_id, &state, command);
            }
        }
        let events = match decision {
            Ok(events) => events,
            Err(error) => {
                cache.put(entity_id, version, state);
                return Ok(rejected(Some(entity_id.to_string()), &error));
            }
        };
        if events.is_empty() {
            cache.put(entity_id, version, state);
            return Ok(CommandOutcome::Accepted { entity_id: entity_id.to_string(), event_count: 0, position: None });
        }
        let new_events = encode_stream_events::<A>(entity_id, &events, &ctx.meta)?;
        let stream = StreamRef { aggregate: A::NAME, id: entity_id };
        match ctx.stores.events.append_to_stream(log, stream, version, new_events).await {
            Ok(appended) => {
                let decided = events.iter().fold(state, |state, event| A::evolve(state, event));
                cache.put(entity_id, version + events.len() as u64, decided);
                ctx.stores.bus.publish(Published::of(log, &appended, events.iter().map(|e| e.name())));
                return Ok(CommandOutcome::Accepted {
                    entity_id: entity_id.to_string(),
                    event_count: events.len(),
                    position: Some(appended.last_position),
                });
            }
            Err(StoreError::Conflict(reason)) => {
                tracing::debug!(log, entity_id, reason, "aggregate append conflicted; replaying");
                // Still right as of `version`: the retry reads only what came after.
                cache.put(entity_id, version, state);
            }
            Err(other) => return Err(other.into()),
        }
    }
    Err(EngineError::Conflict { attempts: CONFLICT_RETRIES + 1 })
}

#[cfg(test)]
mod tests {
    use super::StateCache;

    #[test]
    fn the_least_recently_used_entity_is_evicted() {
        let cache = StateCache::new(2);
        cache.put("a", 1, "A1");
        cache.put("b", 1, "B1");
        cache.put("a", 2, "A2");
        cache.put("c", 1, "C1");
        assert_eq!(cache.get("a"), Some((2, "A2")));
        assert_eq!(cache.get("b"), None, "b was used least recently");
        assert_eq!(cache.get("c"), Some((1, "C1")));
    }
}
