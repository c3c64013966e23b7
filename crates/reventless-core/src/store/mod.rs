//! Adapter traits: what a platform provides to run plugins. Each has an
//! in-memory implementation in `reventless-local` and is checked by the one
//! contract suite (`testing::contract`).
mod bus;
mod lease;
mod list;
pub mod relayout;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reventless_spec::{AppendCondition, EventEnvelope, NewEvent, Query};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use bus::InProcessBus;
pub use lease::{InProcessLeases, LeaseGuard, Leases, ProcessLeases, SharedLeases};
pub use list::{Cursor, Filter, FilterOp, ListRequest, OrderBy, Page, compare_values, evaluate_list};

/// Why a store call failed. `Conflict` is expected under concurrency; the
/// others are infrastructure failures.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// A condition failed (append condition, stream version, checkpoint): decide again.
    #[error("concurrency conflict: {0}")]
    Conflict(String),
    /// The request cannot be stored or answered as asked (nothing written).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Stored data does not decode.
    #[error("corrupt data in {location}: {message}")]
    Corrupt {
        /// Where: table and key, log and position.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// The store could not be reached or failed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// More changes than the store takes at once (DynamoDB: 100 items per
    /// transaction); the caller retries with a smaller batch.
    #[error("too many changes at once: {0}")]
    TooLarge(String),
}

/// Refuses an append without events (every event log does).
pub fn require_events(events: &[NewEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Err(StoreError::Invalid("an append needs at least one event".into()));
    }
    Ok(())
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appended {
    /// Log position of the first appended event.
    pub first_position: u64,
    /// Log position of the last appended event.
    pub last_position: u64,
}

/// One aggregate entity's stream inside its plugin's log: the events the
/// aggregate appended for entity `id`, versioned 1, 2, 3…
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamRef<'a> {
    /// The aggregate's name (`Member`).
    pub aggregate: &'a str,
    /// The entity id (`m1`).
    pub id: &'a str,
}

/// A plugin's event log: one log-wide position order, read by DCB queries,
/// appended under an [`AppendCondition`] (DCB slices) or an expected stream
/// version (aggregates). An aggregate's events join the same log with their
/// tags (the entity tag included), so DCB queries see them; the stream is
/// the aggregate's own consistency boundary.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Events matching `query` with position > `after`, in position order, at most `limit`.
    async fn read(
        &self,
        log: &str,
        query: &Query,
        after: Option<u64>,
        limit: Option<usize>,
    ) -> Result<Vec<EventEnvelope>, StoreError>;

    /// Appends atomically unless `condition` is violated (`StoreError::Conflict`).
    async fn append(
        &self,
        log: &str,
        events: Vec<NewEvent>,
        condition: Option<&AppendCondition>,
    ) -> Result<Appended, StoreError>;

    /// Appends `events` to `stream` if its current version is
    /// `expected_version` (0 for a new stream); otherwise `StoreError::Conflict`.
    /// The events also get log positions, like any append.
    async fn append_to_stream(
        &self,
        log: &str,
        stream: StreamRef<'_>,
        expected_version: u64,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError>;

    /// The stream's events with version > `after_version`, in version order.
    async fn read_stream(
        &self,
        log: &str,
        stream: StreamRef<'_>,
        after_version: u64,
    ) -> Result<Vec<EventEnvelope>, StoreError>;

    /// Up to `limit` events of the whole log with position > `after`, in position order.
    async fn read_all(&self, log: &str, after: u64, limit: usize) -> Result<Vec<EventEnvelope>, StoreError> {
        self.read(log, &Query::all(), Some(after), Some(limit)).await
    }

    /// As [`EventLog::read_all`], for a reader that uses only events of
    /// `types`: events of other types may come back as position markers
    /// (type, position, stream and time; no tags, data or meta), which
    /// spares copying and decoding them. Followers read this way: a plugin's
    /// log holds every component's events.
    async fn read_all_of(
        &self,
        log: &str,
        after: u64,
        limit: usize,
        _types: &[&str],
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        self.read_all(log, after, limit).await
    }

    /// The last position of the log (0 when empty).
    async fn head(&self, log: &str) -> Result<u64, StoreError>;
}

/// An event reduced to its place in the log (see [`EventLog::read_all_of`]).
pub fn position_marker(event: &EventEnvelope) -> EventEnvelope {
    EventEnvelope {
        event_id: event.event_id,
        event_type: event.event_type.clone(),
        tags: Vec::new(),
        data: Value::Null,
        position: event.position,
        stream: event.stream.clone(),
        recorded_at: event.recorded_at,
        meta: Default::default(),
    }
}

/// One change of a query table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RowOp {
    /// Write the row `id`.
    Put {
        /// The row's id.
        id: String,
        /// The row.
        row: Value,
    },
    /// Remove the row `id`.
    Delete {
        /// The row's id.
        id: String,
    },
}

/// A projection's progress: the last log position applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The follower and log (`<table>@<log>`).
    pub name: String,
    /// The last position applied.
    pub position: u64,
}

/// Query tables (JSON rows by id) plus projection checkpoints. `commit`
/// writes rows and a checkpoint atomically, which is what makes projections
/// apply each event exactly once in effect.
#[async_trait]
pub trait QueryStore: Send + Sync {
    /// The row `id` of `table`, if any.
    async fn get(&self, table: &str, id: &str) -> Result<Option<Value>, StoreError>;

    /// The rows that exist among `ids` (one round trip where the store can).
    async fn get_many(&self, table: &str, ids: &[String]) -> Result<Vec<(String, Value)>, StoreError> {
        let mut found = Vec::new();
        for id in ids {
            if let Some(row) = self.get(table, id).await? {
                found.push((id.clone(), row));
            }
        }
        Ok(found)
    }

    /// Filtered, ordered, cursor-paginated rows.
    async fn list(&self, table: &str, request: &ListRequest) -> Result<Page, StoreError>;

    /// Applies `ops` in order and advances `checkpoint`, all or nothing. A
    /// checkpoint never moves backwards: a commit whose checkpoint is at or
    /// behind the stored one is refused with `StoreError::Conflict`.
    async fn commit(&self, table: &str, ops: Vec<RowOp>, checkpoint: Option<Checkpoint>) -> Result<(), StoreError>;

    /// The stored position of a checkpoint (0 when never committed).
    async fn checkpoint(&self, name: &str) -> Result<u64, StoreError>;

    /// Writes one row outside any projection (no checkpoint).
    async fn put(&self, table: &str, id: &str, row: Value) -> Result<(), StoreError> {
        self.commit(table, vec![RowOp::Put { id: id.to_string(), row }], None).await
    }

    /// Removes one row outside any projection (no checkpoint).
    async fn delete(&self, table: &str, id: &str) -> Result<(), StoreError> {
        self.commit(table, vec![RowOp::Delete { id: id.to_string() }], None).await
    }
}

/// A command queued for asynchronous execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandMessage {
    /// Messages of one group are delivered in order, one batch at a time (the entity id).
    pub group_id: String,
    /// A second message with the same id within the dedup window is dropped.
    pub dedup_id: String,
    /// The message (a command request).
    pub body: Value,
}

/// A received message; ack it when handled, release it to redeliver.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Names this delivery for `ack` and `release`.
    pub receipt: String,
    /// The message.
    pub message: CommandMessage,
    /// 1 on the first delivery.
    pub receive_count: u32,
}

/// A FIFO command queue with message groups (SQS FIFO semantics): within a
/// group, messages are delivered in send order and a group stays locked while
/// any of its messages is in flight; different groups are independent.
#[async_trait]
pub trait CommandTopic: Send + Sync {
    /// Queues `message` on `topic` (dropped when its dedup id was sent within the window).
    async fn send(&self, topic: &str, message: CommandMessage) -> Result<(), StoreError>;

    /// Up to `max` visible messages, waiting up to `wait` for the first one.
    /// Received messages stay invisible for `visibility`, then come back.
    async fn receive(
        &self,
        topic: &str,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Deletes a handled message.
    async fn ack(&self, topic: &str, receipt: &str) -> Result<(), StoreError>;

    /// Makes an in-flight message visible again at once (a failed attempt).
    async fn release(&self, topic: &str, receipt: &str) -> Result<(), StoreError>;
}

/// A log just advanced to `position` (a commit notice, not the events).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Published {
    /// The log that advanced.
    pub log: String,
    /// The last position of the append.
    pub position: u64,
    /// Its first position (0: unknown).
    pub first_position: u64,
    /// The types of its events: a follower that consumes none of them and
    /// had applied everything before `first_position` passes it unread.
    pub types: Vec<String>,
}

impl Published {
    /// The notice of an append of events of `types` at `appended`.
    pub fn of<'a>(log: &str, appended: &Appended, types: impl IntoIterator<Item = &'a str>) -> Self {
        let mut types: Vec<String> = types.into_iter().map(str::to_string).collect();
        types.sort_unstable();
        types.dedup();
        Self { log: log.to_string(), position: appended.last_position, first_position: appended.first_position, types }
    }
}

/// In-process fan-out after commit. Subscribers treat it as a wake-up and
/// catch up from the log, so a missed message delays, never loses, an event.
pub trait EventBus: Send + Sync {
    /// Tells every subscriber that a log advanced.
    fn publish(&self, published: Published);
    /// Receives the notices published from now on.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<Published>>;
}

/// Everything a platform hands to the engine.
#[derive(Clone)]
pub struct Stores {
    /// The plugins' event logs (one per plugin).
    pub events: Arc<dyn EventLog>,
    /// Read-model rows and checkpoints.
    pub queries: Arc<dyn QueryStore>,
    /// The async command topics.
    pub commands: Arc<dyn CommandTopic>,
    /// Commit notices that wake followers.
    pub bus: Arc<dyn EventBus>,
    /// Which process runs each follower (several processes on one database).
    pub leases: Arc<dyn Leases>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}
