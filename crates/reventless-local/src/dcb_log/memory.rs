use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use reventless_core::store::{Appended, DcbEventLog, StoreError};
use reventless_spec::{AppendCondition, EventEnvelope, NewEvent, Query, Timestamp};

use crate::memory_lock;

/// DCB logs held in memory; `events[i].position == i + 1` (gapless).
#[derive(Default)]
pub struct MemoryDcbLog {
    logs: Mutex<HashMap<String, Vec<EventEnvelope>>>,
}

fn after_index(after: Option<u64>) -> usize {
    after.map_or(0, |a| usize::try_from(a).unwrap_or(usize::MAX))
}

#[async_trait]
impl DcbEventLog for MemoryDcbLog {
    async fn read(
        &self,
        log: &str,
        query: &Query,
        after: Option<u64>,
        limit: Option<usize>,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        let logs = memory_lock(&self.logs)?;
        let Some(events) = logs.get(log) else { return Ok(Vec::new()) };
        Ok(events
            .iter()
            .skip(after_index(after))
            .filter(|e| query.matches(&e.event_type, &e.tags))
            .take(limit.unwrap_or(usize::MAX))
            .cloned()
            .collect())
    }

    async fn append(
        &self,
        log: &str,
        new_events: Vec<NewEvent>,
        condition: Option<&AppendCondition>,
    ) -> Result<Appended, StoreError> {
        if new_events.is_empty() {
            return Err(StoreError::Invalid("an append needs at least one event".into()));
        }
        let mut logs = memory_lock(&self.logs)?;
        let events = logs.entry(log.to_string()).or_default();
        if let Some(condition) = condition {
            let violation = events
                .iter()
                .skip(after_index(condition.after))
                .find(|e| condition.fail_if_events_match.matches(&e.event_type, &e.tags));
            if let Some(event) = violation {
                return Err(StoreError::Conflict(format!(
                    "event {} at position {} matches the append condition",
                    event.event_type, event.position
                )));
            }
        }
        let first_position = events.len() as u64 + 1;
        let recorded_at = Timestamp::now();
        for event in new_events {
            let position = events.len() as u64 + 1;
            events.push(EventEnvelope::recorded(event, position, None, recorded_at));
        }
        Ok(Appended { first_position, last_position: events.len() as u64 })
    }

    async fn head(&self, log: &str) -> Result<u64, StoreError> {
        Ok(memory_lock(&self.logs)?.get(log).map_or(0, |events| events.len() as u64))
    }
}
