use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use reventless_core::store::{AggregateEventLog, Appended, StoreError, require_events};
use reventless_spec::{EventEnvelope, NewEvent, StreamPosition, Timestamp};

use crate::memory_lock;

#[derive(Default)]
struct Log {
    /// Every event in log order: `events[i].position == i + 1`.
    events: Vec<EventEnvelope>,
    /// Indexes into `events` per stream, in version order.
    streams: HashMap<String, Vec<usize>>,
}

/// Aggregate streams held in memory.
#[derive(Default)]
pub struct MemoryAggregateLog {
    logs: Mutex<HashMap<String, Log>>,
}

#[async_trait]
impl AggregateEventLog for MemoryAggregateLog {
    async fn append(
        &self,
        log: &str,
        stream_id: &str,
        expected_version: u64,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        require_events(&events)?;
        let mut logs = memory_lock(&self.logs)?;
        let log = logs.entry(log.to_string()).or_default();
        let version = log.streams.get(stream_id).map_or(0, |s| s.len() as u64);
        if version != expected_version {
            return Err(StoreError::Conflict(format!(
                "stream {stream_id} is at version {version}, expected {expected_version}"
            )));
        }
        let first_position = log.events.len() as u64 + 1;
        let recorded_at = Timestamp::now();
        for (offset, event) in events.into_iter().enumerate() {
            let position = first_position + offset as u64;
            let stream = StreamPosition { id: stream_id.to_string(), version: version + 1 + offset as u64 };
            log.streams.entry(stream_id.to_string()).or_default().push(log.events.len());
            log.events.push(EventEnvelope::recorded(event, position, Some(stream), recorded_at));
        }
        Ok(Appended { first_position, last_position: log.events.len() as u64 })
    }

    async fn read_stream(
        &self,
        log: &str,
        stream_id: &str,
        after_version: u64,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        let logs = memory_lock(&self.logs)?;
        let Some(log) = logs.get(log) else { return Ok(Vec::new()) };
        let indexes = log.streams.get(stream_id).map(Vec::as_slice).unwrap_or_default();
        let skip = usize::try_from(after_version).unwrap_or(usize::MAX);
        Ok(indexes.iter().skip(skip).map(|&i| log.events[i].clone()).collect())
    }

    async fn read_all(&self, log: &str, after: u64, limit: usize) -> Result<Vec<EventEnvelope>, StoreError> {
        let logs = memory_lock(&self.logs)?;
        let Some(log) = logs.get(log) else { return Ok(Vec::new()) };
        let skip = usize::try_from(after).unwrap_or(usize::MAX);
        Ok(log.events.iter().skip(skip).take(limit).cloned().collect())
    }

    async fn head(&self, log: &str) -> Result<u64, StoreError> {
        Ok(memory_lock(&self.logs)?.get(log).map_or(0, |l| l.events.len() as u64))
    }
}
