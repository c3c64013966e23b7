//! Durable FIFO command topics on PostgreSQL, with the semantics of SQS FIFO
//! queues (as the memory topic): FIFO per message group, a group locked while
//! any of its messages is in flight, a 5-minute dedup window per dedup id,
//! redelivery after the visibility timeout, release visible at once.
//!
//! A message is a row of `command_message`, committed before `send` returns,
//! so it survives any crash of the processes. Any number of processes
//! receive from one topic: a receiver locks the rows of the groups it takes
//! (`FOR UPDATE SKIP LOCKED`), so two receivers never hold one group. A
//! waiting receiver sleeps until a NOTIFY says its topic changed
//! (`wakeups.rs`), re-checking at least every second for expired
//! visibility timeouts.
mod wakeups;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use reventless_core::store::{CommandMessage, CommandTopic, Delivery, StoreError};
use serde_json::Value;
use tokio::time::Instant;
use uuid::Uuid;

use crate::PgDatabase;
use crate::database::pg_error;
use crate::query_store::refuse_nul;
use wakeups::Listener;

const SEND: &str = include_str!("send.sql");
const RECEIVE: &str = include_str!("receive.sql");
const ACK: &str = include_str!("ack.sql");
const RELEASE: &str = include_str!("release.sql");
const PURGE: &str = include_str!("purge.sql");
const NOTIFY: &str = include_str!("notify.sql");

/// How long a dedup id suppresses a second send (as SQS FIFO).
pub const DEDUP_WINDOW: Duration = Duration::from_secs(300);

/// The longest a waiting receiver sleeps without a notice before it looks
/// again (a visibility timeout may have run out; a notice may have been lost
/// with a connection).
pub const RECHECK_INTERVAL: Duration = Duration::from_secs(1);

/// How often a process purges expired dedup ids and empty groups.
const PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// Command topics in one database. Clones share one LISTEN connection.
#[derive(Clone)]
pub struct PgCommandTopic {
    db: PgDatabase,
    listener: Arc<Listener>,
    last_purge: Arc<Mutex<Option<Instant>>>,
}

impl std::fmt::Debug for PgCommandTopic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgCommandTopic").field("db", &self.db).finish_non_exhaustive()
    }
}

impl PgCommandTopic {
    pub fn new(db: PgDatabase) -> Self {
        Self { db, listener: Arc::new(Listener::new()), last_purge: Arc::default() }
    }

    /// Up to `max` messages taken now (none waiting).
    async fn take(&self, topic: &str, max: i64, visibility_ms: i64) -> Result<Vec<Delivery>, StoreError> {
        let client = self.db.client().await?;
        let statement = client.prepare_cached(RECEIVE).await.map_err(pg_error)?;
        let rows = client.query(&statement, &[&topic, &max, &visibility_ms]).await.map_err(pg_error)?;
        rows.iter()
            .map(|row| {
                let corrupt = |e: tokio_postgres::Error| StoreError::Corrupt {
                    location: format!("command_message on topic {topic}"),
                    message: e.to_string(),
                };
                let receipt: Uuid = row.try_get(0).map_err(corrupt)?;
                let receive_count: i32 = row.try_get(4).map_err(corrupt)?;
                Ok(Delivery {
                    receipt: receipt.to_string(),
                    message: CommandMessage {
                        group_id: row.try_get(1).map_err(corrupt)?,
                        dedup_id: row.try_get(2).map_err(corrupt)?,
                        body: row.try_get::<_, Value>(3).map_err(corrupt)?,
                    },
                    receive_count: u32::try_from(receive_count).unwrap_or(0),
                })
            })
            .collect()
    }

    /// Runs ack.sql or release.sql for `receipt`; a receipt that is not in
    /// flight on `topic` (acked, or its visibility ran out and the message
    /// was taken again) is `Invalid`.
    async fn settle(&self, sql: &str, topic: &str, receipt: &str) -> Result<(), StoreError> {
        let not_in_flight = || StoreError::Invalid(format!("receipt {receipt} is not in flight on {topic}"));
        let receipt_id = Uuid::parse_str(receipt).map_err(|_| not_in_flight())?;
        let client = self.db.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(pg_error)?;
        let row = client.query_opt(&statement, &[&topic, &receipt_id]).await.map_err(pg_error)?;
        let Some(row) = row else { return Err(not_in_flight()) };
        let freed: bool = row.try_get(0).map_err(pg_error)?;
        if freed {
            self.tell_receivers(&client, topic).await;
        }
        Ok(())
    }

    /// Wakes the receivers of `topic`: this process's at once, the others'
    /// through NOTIFY. A lost notice only delays them to their re-check.
    async fn tell_receivers(&self, client: &deadpool_postgres::Object, topic: &str) {
        self.listener.wakers.wake(topic);
        let notified = match client.prepare_cached(NOTIFY).await {
            Ok(statement) => client.execute(&statement, &[&topic]).await.map(drop),
            Err(error) => Err(error),
        };
        if let Err(error) = notified {
            tracing::warn!(%error, topic, "command topic: NOTIFY failed; receivers elsewhere find the message on their re-check");
        }
    }

    /// Purges expired dedup ids and empty groups if a minute has passed
    /// since this process last did, in the background.
    fn maybe_purge(&self) {
        {
            let mut last = self.last_purge.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            if last.is_some_and(|at| now.duration_since(at) < PURGE_INTERVAL) {
                return;
            }
            *last = Some(now);
        }
        let db = self.db.clone();
        tokio::spawn(async move {
            let window = millis(DEDUP_WINDOW);
            let result = async {
                let client = db.client().await?;
                client.execute(PURGE, &[&window]).await.map_err(pg_error)
            }
            .await;
            if let Err(error) = result {
                tracing::warn!(%error, "command topic: purging expired dedup ids failed (retried in a minute)");
            }
        });
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl CommandTopic for PgCommandTopic {
    async fn send(&self, topic: &str, message: CommandMessage) -> Result<(), StoreError> {
        let names = [topic, &message.group_id, &message.dedup_id];
        if names.iter().any(|name| name.contains('\0')) {
            return Err(StoreError::Invalid("a topic, group or dedup id holds a NUL character".into()));
        }
        refuse_nul(&message.dedup_id, &message.body)?;
        let client = self.db.client().await?;
        let statement = client.prepare_cached(SEND).await.map_err(pg_error)?;
        let window = millis(DEDUP_WINDOW);
        let queued = client
            .query(&statement, &[&topic, &message.group_id, &message.dedup_id, &message.body, &window])
            .await
            .map_err(pg_error)?;
        if !queued.is_empty() {
            self.tell_receivers(&client, topic).await;
        }
        drop(client);
        self.maybe_purge();
        Ok(())
    }

    async fn receive(
        &self,
        topic: &str,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Delivery>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + wait;
        let (max, visibility_ms) = (i64::try_from(max).unwrap_or(i64::MAX), millis(visibility));
        if !wait.is_zero() {
            self.listener.ensure(&self.db).await;
        }
        let waker = self.listener.wakers.of(topic);
        loop {
            // Registered before looking, so a notice during the look is not lost.
            let notified = waker.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let taken = self.take(topic, max, visibility_ms).await?;
            let now = Instant::now();
            if !taken.is_empty() || now >= deadline {
                return Ok(taken);
            }
            let wake_at = deadline.min(now + RECHECK_INTERVAL);
            let _ = tokio::time::timeout_at(wake_at, notified).await;
        }
    }

    async fn ack(&self, topic: &str, receipt: &str) -> Result<(), StoreError> {
        self.settle(ACK, topic, receipt).await
    }

    async fn release(&self, topic: &str, receipt: &str) -> Result<(), StoreError> {
        self.settle(RELEASE, topic, receipt).await
    }
}
