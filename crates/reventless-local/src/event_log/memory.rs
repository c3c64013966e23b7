use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use reventless_core::store::{Appended, EventLog, StoreError, StreamRef, position_marker, require_events};
use reventless_spec::{AppendCondition, EventEnvelope, NewEvent, Query, QueryItem, StreamPosition, Tag, Timestamp};

use crate::memory_lock;

/// One plugin's log: events in position order (`events[i].position == i + 1`,
/// gapless) plus indexes by tag, by type and by aggregate stream, as the
/// SQLite tables have.
#[derive(Default)]
struct Log {
    events: Vec<EventEnvelope>,
    by_tag: HashMap<Tag, Vec<usize>>,
    by_type: HashMap<String, Vec<usize>>,
    /// (aggregate, entity id) → indexes in version order.
    streams: HashMap<String, HashMap<String, Vec<usize>>>,
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
            return vec![self.by_tag.get(first).map(Vec::as_slice).unwrap_or_default()];
        }
        item.types.iter().map(|t| self.by_type.get(t).map(Vec::as_slice).unwrap_or_default()).collect()
    }

    fn push(&mut self, event: NewEvent, stream: Option<StreamPosition>, recorded_at: Timestamp) {
        let index = self.events.len();
        for tag in &event.tags {
            // Looked up by reference: a key is cloned only for a new tag.
            let list = match self.by_tag.get_mut(tag) {
                Some(list) => list,
                None => self.by_tag.entry(tag.clone()).or_default(),
            };
            if list.last() != Some(&index) {
                list.push(index);
            }
        }
        match self.by_type.get_mut(&event.event_type) {
            Some(list) => list.push(index),
            None => {
                self.by_type.insert(event.event_type.clone(), vec![index]);
            }
        }
        self.events.push(EventEnvelope::recorded(event, index as u64 + 1, stream, recorded_at));
    }
}

/// Plugins' event logs held in memory.
#[derive(Default)]
pub struct MemoryEventLog {
    logs: Mutex<HashMap<String, Log>>,
}

#[async_trait]
impl EventLog for MemoryEventLog {
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
            log.push(event, None, recorded_at);
        }
        Ok(Appended { first_position, last_position: log.events.len() as u64 })
    }

    async fn append_to_stream(
        &self,
        log: &str,
        stream: StreamRef<'_>,
        expected_version: u64,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        require_events(&events)?;
        let mut logs = memory_lock(&self.logs)?;
        let log = match logs.get_mut(log) {
            Some(existing) => existing,
            None => logs.entry(log.to_string()).or_default(),
        };
        let version =
            log.streams.get(stream.aggregate).and_then(|ids| ids.get(stream.id)).map_or(0, |s| s.len() as u64);
        if version != expected_version {
            return Err(StoreError::Conflict(format!(
                "stream {} {} is at version {version}, expected {expected_version}",
                stream.aggregate, stream.id
            )));
        }
        let first_position = log.events.len() as u64 + 1;
        let recorded_at = Timestamp::now();
        let ids = match log.streams.get_mut(stream.aggregate) {
            Some(ids) => ids,
            None => log.streams.entry(stream.aggregate.to_string()).or_default(),
        };
        let versions = match ids.get_mut(stream.id) {
            Some(versions) => versions,
            None => ids.entry(stream.id.to_string()).or_default(),
        };
        let first_index = log.events.len();
        versions.extend(first_index..first_index + events.len());
        for (offset, event) in events.into_iter().enumerate() {
            let position = StreamPosition { id: stream.id.to_string(), version: version + 1 + offset as u64 };
            log.push(event, Some(position), recorded_at);
        }
        Ok(Appended { first_position, last_position: log.events.len() as u64 })
    }

    async fn read_stream(
        &self,
        log: &str,
        stream: StreamRef<'_>,
        after_version: u64,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        let logs = memory_lock(&self.logs)?;
        let Some(log) = logs.get(log) else { return Ok(Vec::new()) };
        let indexes = log.streams.get(stream.aggregate).and_then(|ids| ids.get(stream.id));
        let indexes = indexes.map(Vec::as_slice).unwrap_or_default();
        let skip = usize::try_from(after_version).unwrap_or(usize::MAX);
        Ok(indexes.iter().skip(skip).map(|&i| log.events[i].clone()).collect())
    }

    async fn read_all_of(
        &self,
        log: &str,
        after: u64,
        limit: usize,
        types: &[&str],
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        let logs = memory_lock(&self.logs)?;
        let Some(log) = logs.get(log) else { return Ok(Vec::new()) };
        let skip = usize::try_from(after).unwrap_or(usize::MAX);
        let read = log.events.iter().skip(skip).take(limit);
        Ok(read.map(|e| if types.contains(&e.event_type.as_str()) { e.clone() } else { position_marker(e) }).collect())
    }

    async fn read_all(&self, log: &str, after: u64, limit: usize) -> Result<Vec<EventEnvelope>, StoreError> {
        let logs = memory_lock(&self.logs)?;
        let Some(log) = logs.get(log) else { return Ok(Vec::new()) };
        let skip = usize::try_from(after).unwrap_or(usize::MAX);
        Ok(log.events.iter().skip(skip).take(limit).cloned().collect())
    }

    async fn head(&self, log: &str) -> Result<u64, StoreError> {
        Ok(memory_lock(&self.logs)?.get(log).map_or(0, |log| log.events.len() as u64))
    }
}
