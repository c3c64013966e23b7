use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use reventless_core::store::{Appended, DcbEventLog, StoreError, require_events};
use reventless_spec::{AppendCondition, EventEnvelope, NewEvent, Query, QueryItem, Timestamp};

use crate::memory_lock;

/// One DCB log: events in position order (`events[i].position == i + 1`,
/// gapless) plus indexes by tag and by type, as the SQLite tables have.
#[derive(Default)]
struct Log {
    events: Vec<EventEnvelope>,
    by_tag: HashMap<String, Vec<usize>>,
    by_type: HashMap<String, Vec<usize>>,
}

impl Log {
    /// Indexes of the events matching `query` after `after`, ascending, at most `limit`.
    fn matching(&self, query: &Query, after: Option<u64>, limit: usize) -> Vec<usize> {
        let start = after.map_or(0, |a| usize::try_from(a).unwrap_or(usize::MAX)).min(self.events.len());
        let matches = |i: &usize| query.matches(&self.events[*i].event_type, &self.events[*i].tags);
        if query.items.iter().any(|item| item.tags.is_empty() && item.types.is_empty()) {
            return (start..self.events.len()).filter(matches).take(limit).collect();
        }
        let mut found: Vec<usize> = Vec::new();
        for item in &query.items {
            for list in self.candidates(item) {
                let from = list.partition_point(|&i| i < start);
                found.extend(
                    list[from..]
                        .iter()
                        .copied()
                        .filter(|i| item.matches(&self.events[*i].event_type, &self.events[*i].tags)),
                );
            }
        }
        found.sort_unstable();
        found.dedup();
        found.truncate(limit);
        found
    }

    /// The index lists that hold every event an item can match.
    fn candidates(&self, item: &QueryItem) -> Vec<&[usize]> {
        if let Some(first) = item.tags.first() {
            return vec![self.by_tag.get(&first.to_string()).map(Vec::as_slice).unwrap_or_default()];
        }
        item.types.iter().map(|t| self.by_type.get(t).map(Vec::as_slice).unwrap_or_default()).collect()
    }

    fn push(&mut self, event: NewEvent, recorded_at: Timestamp) {
        let index = self.events.len();
        for tag in &event.tags {
            let list = self.by_tag.entry(tag.to_string()).or_default();
            if list.last() != Some(&index) {
                list.push(index);
            }
        }
        self.by_type.entry(event.event_type.clone()).or_default().push(index);
        self.events.push(EventEnvelope::recorded(event, index as u64 + 1, None, recorded_at));
    }
}

/// DCB logs held in memory.
#[derive(Default)]
pub struct MemoryDcbLog {
    logs: Mutex<HashMap<String, Log>>,
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
        let Some(log) = logs.get(log) else { return Ok(Vec::new()) };
        let found = log.matching(query, after, limit.unwrap_or(usize::MAX));
        Ok(found.into_iter().map(|i| log.events[i].clone()).collect())
    }

    async fn append(
        &self,
        log: &str,
        new_events: Vec<NewEvent>,
        condition: Option<&AppendCondition>,
    ) -> Result<Appended, StoreError> {
        require_events(&new_events)?;
        let mut logs = memory_lock(&self.logs)?;
        let log = logs.entry(log.to_string()).or_default();
        if let Some(condition) = condition
            && let Some(&index) = log.matching(&condition.fail_if_events_match, condition.after, 1).first()
        {
            let event = &log.events[index];
            return Err(StoreError::Conflict(format!(
                "event {} at position {} matches the append condition",
                event.event_type, event.position
            )));
        }
        let first_position = log.events.len() as u64 + 1;
        let recorded_at = Timestamp::now();
        for event in new_events {
            log.push(event, recorded_at);
        }
        Ok(Appended { first_position, last_position: log.events.len() as u64 })
    }

    async fn head(&self, log: &str) -> Result<u64, StoreError> {
        Ok(memory_lock(&self.logs)?.get(log).map_or(0, |log| log.events.len() as u64))
    }
}
