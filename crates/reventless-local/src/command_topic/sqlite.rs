//! The async command topics in the SQLite file: a queued command is
//! committed (group commit) before `send` returns, so it outlives the process.
//!
//! Same semantics as the memory topic: FIFO per group, a group locked while
//! any of its messages is in flight, a dedup window, a visibility timeout and
//! releases that put messages back in send order. The visibility deadline is
//! stored (wall clock): a message received by a process that died comes back
//! once its visibility timeout passes, after a restart as in a live process —
//! as SQS does for a Lambda that died. Making every in-flight message visible
//! at open instead would deliver a message twice at once if a second process
//! opened the file while the first still runs it.
use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use reventless_core::store::{CommandMessage, CommandTopic, Delivery, StoreError};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::sqlite::{SqliteDatabase, json_text, sql_error};

/// How long a dedup id suppresses a second send (as SQS FIFO and the memory topic).
const DEDUP_WINDOW: Duration = Duration::from_secs(300);

/// The longest a waiting receive sleeps without looking again: sends by
/// another process (or another topic value on the same file) wake no one here.
const RECHECK: Duration = Duration::from_secs(1);

/// FIFO command queues with message groups, in the database file.
pub struct SqliteCommandTopic {
    db: SqliteDatabase,
    /// Woken by every send and release of this value.
    sent: Notify,
}

impl SqliteCommandTopic {
    pub fn new(db: SqliteDatabase) -> Self {
        Self { db, sent: Notify::new() }
    }
}

impl std::fmt::Debug for SqliteCommandTopic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteCommandTopic").field("path", &self.db.path()).finish_non_exhaustive()
    }
}

/// A message that may be delivered now.
struct Candidate {
    sequence: i64,
    group_id: String,
    dedup_id: String,
    body: String,
    receive_count: i64,
}

/// What `topic` could deliver at `now`: up to `max` messages in send order,
/// skipping groups in flight (a message past its visibility counts as
/// visible), and when the next in-flight message becomes visible.
fn plan(
    connection: &Connection,
    topic: &str,
    now: i64,
    max: usize,
) -> Result<(Vec<Candidate>, Option<i64>), StoreError> {
    let in_flight = "SELECT DISTINCT group_id FROM command_message \
                     WHERE topic = ?1 AND receipt IS NOT NULL AND visible_at > ?2";
    let mut statement = connection.prepare_cached(in_flight).map_err(sql_error)?;
    let locked: HashSet<String> =
        statement.query_map(params![topic, now], |row| row.get(0)).and_then(Iterator::collect).map_err(sql_error)?;
    let visible = "SELECT sequence, group_id, dedup_id, body, receive_count FROM command_message \
                   WHERE topic = ?1 AND (receipt IS NULL OR visible_at <= ?2) ORDER BY sequence";
    let mut statement = connection.prepare_cached(visible).map_err(sql_error)?;
    let mut rows = statement.query(params![topic, now]).map_err(sql_error)?;
    let mut taken = Vec::new();
    while taken.len() < max {
        let Some(row) = rows.next().map_err(sql_error)? else { break };
        let group_id: String = row.get(1).map_err(sql_error)?;
        if locked.contains(&group_id) {
            continue;
        }
        taken.push(Candidate {
            sequence: row.get(0).map_err(sql_error)?,
            group_id,
            dedup_id: row.get(2).map_err(sql_error)?,
            body: row.get(3).map_err(sql_error)?,
            receive_count: row.get(4).map_err(sql_error)?,
        });
    }
    let next = "SELECT MIN(visible_at) FROM command_message \
                WHERE topic = ?1 AND receipt IS NOT NULL AND visible_at > ?2";
    let next_expiry = connection
        .prepare_cached(next)
        .and_then(|mut s| s.query_row(params![topic, now], |row| row.get(0)))
        .map_err(sql_error)?;
    Ok((taken, next_expiry))
}

/// What a receive's write job found: deliveries, or a stored message that
/// does not parse (reported without failing the other jobs of the batch).
type Taken = Result<Vec<Delivery>, StoreError>;

/// Delivers up to `max` messages of `topic` (one write job: atomic with
/// every other receive, ack and release).
fn take(connection: &Connection, topic: &str, max: usize, visibility: Duration) -> Result<Taken, StoreError> {
    let now = now_millis();
    let (candidates, _) = plan(connection, topic, now, max)?;
    let corrupt = |sequence: i64, message: String| StoreError::Corrupt {
        location: format!("command_message {topic}#{sequence}"),
        message,
    };
    // Everything is parsed before the first write: a corrupt row changes nothing.
    let mut parsed = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        let body = match serde_json::from_str(&candidate.body) {
            Ok(body) => body,
            Err(error) => return Ok(Err(corrupt(candidate.sequence, error.to_string()))),
        };
        let Ok(receive_count) = u32::try_from(candidate.receive_count + 1) else {
            let count = format!("receive count {}", candidate.receive_count);
            return Ok(Err(corrupt(candidate.sequence, count)));
        };
        parsed.push((candidate, body, receive_count));
    }
    // Past their visibility, in-flight messages are back in the queue: their receipts are void.
    let expire = "UPDATE command_message SET receipt = NULL, visible_at = 0 \
                  WHERE topic = ?1 AND receipt IS NOT NULL AND visible_at <= ?2";
    connection.prepare_cached(expire).and_then(|mut s| s.execute(params![topic, now])).map_err(sql_error)?;
    let visible_at = now.saturating_add(i64::try_from(visibility.as_millis()).unwrap_or(i64::MAX));
    let deliver = "UPDATE command_message SET receipt = ?3, visible_at = ?4, receive_count = ?5 \
                   WHERE topic = ?1 AND sequence = ?2";
    let mut statement = connection.prepare_cached(deliver).map_err(sql_error)?;
    let mut taken = Vec::with_capacity(parsed.len());
    for (candidate, body, receive_count) in parsed {
        // A fresh nonce per delivery: a receipt from an earlier delivery (or
        // an earlier process) never acknowledges this one.
        let receipt = format!("{}:{}", candidate.sequence, uuid::Uuid::now_v7().simple());
        statement.execute(params![topic, candidate.sequence, receipt, visible_at, receive_count]).map_err(sql_error)?;
        taken.push(Delivery {
            receipt,
            message: CommandMessage { group_id: candidate.group_id, dedup_id: candidate.dedup_id, body },
            receive_count,
        });
    }
    Ok(Ok(taken))
}

/// Queues `message` unless its dedup id was sent within the window; `true` when queued.
fn enqueue(connection: &Connection, topic: &str, message: &CommandMessage, body: &str) -> Result<bool, StoreError> {
    let now = now_millis();
    let window = i64::try_from(DEDUP_WINDOW.as_millis()).unwrap_or(i64::MAX);
    let forget = "DELETE FROM command_dedup WHERE topic = ?1 AND sent_at <= ?2";
    connection.prepare_cached(forget).and_then(|mut s| s.execute(params![topic, now - window])).map_err(sql_error)?;
    let seen = "SELECT 1 FROM command_dedup WHERE topic = ?1 AND dedup_id = ?2";
    let duplicate = connection
        .prepare_cached(seen)
        .and_then(|mut s| s.query_row(params![topic, message.dedup_id], |_| Ok(())).optional())
        .map_err(sql_error)?;
    if duplicate.is_some() {
        return Ok(false);
    }
    let remember = "INSERT INTO command_dedup (topic, dedup_id, sent_at) VALUES (?1, ?2, ?3)";
    connection
        .prepare_cached(remember)
        .and_then(|mut s| s.execute(params![topic, message.dedup_id, now]))
        .map_err(sql_error)?;
    let next = "SELECT COALESCE(MAX(sequence), 0) + 1 FROM command_message WHERE topic = ?1";
    let sequence: i64 =
        connection.prepare_cached(next).and_then(|mut s| s.query_row([topic], |row| row.get(0))).map_err(sql_error)?;
    let insert = "INSERT INTO command_message (topic, sequence, group_id, dedup_id, body) VALUES (?1, ?2, ?3, ?4, ?5)";
    connection
        .prepare_cached(insert)
        .and_then(|mut s| s.execute(params![topic, sequence, message.group_id, message.dedup_id, body]))
        .map_err(sql_error)?;
    Ok(true)
}

/// The message sequence a receipt names, or why it names none.
fn receipt_sequence(topic: &str, receipt: &str) -> Result<i64, StoreError> {
    receipt
        .split_once(':')
        .and_then(|(sequence, _)| sequence.parse().ok())
        .ok_or_else(|| StoreError::Invalid(format!("receipt {receipt} is not in flight on {topic}")))
}

/// Runs `sql` (parameters: topic, sequence, receipt) on the message the
/// receipt names; refuses a receipt that is not in flight (acked, released,
/// expired and delivered again, or never issued).
async fn settle(db: &SqliteDatabase, sql: &'static str, topic: &str, receipt: &str) -> Result<(), StoreError> {
    let sequence = receipt_sequence(topic, receipt)?;
    let (topic, receipt) = (topic.to_string(), receipt.to_string());
    db.write(move |connection| {
        let changed = connection
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(params![topic, sequence, receipt]))
            .map_err(sql_error)?;
        if changed == 0 {
            return Err(StoreError::Invalid(format!("receipt {receipt} is not in flight on {topic}")));
        }
        Ok(())
    })
    .await
}

fn now_millis() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl CommandTopic for SqliteCommandTopic {
    async fn send(&self, topic: &str, message: CommandMessage) -> Result<(), StoreError> {
        let body = json_text(&message.body)?;
        let topic = topic.to_string();
        let queued = self.db.write(move |connection| enqueue(connection, &topic, &message, &body)).await?;
        if queued {
            self.sent.notify_waiters();
        }
        Ok(())
    }

    async fn receive(
        &self,
        topic: &str,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Delivery>, StoreError> {
        let deadline = Instant::now() + wait;
        loop {
            let notified = self.sent.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // A read first: an idle topic costs no write transaction.
            let now = now_millis();
            let (ready, next_expiry) = self
                .db
                .read(|connection| plan(connection, topic, now, 1).map(|(ready, next)| (!ready.is_empty(), next)))
                .await?;
            if ready {
                let name = topic.to_string();
                let taken = self.db.write(move |connection| take(connection, &name, max, visibility)).await??;
                if !taken.is_empty() {
                    return Ok(taken);
                }
            }
            let at_now = Instant::now();
            if at_now >= deadline {
                return Ok(Vec::new());
            }
            // Wake for a send, a release, an in-flight message becoming visible, or a recheck.
            let mut wake_at = deadline.min(at_now + RECHECK);
            if let Some(expiry) = next_expiry {
                let until = u64::try_from(expiry.saturating_sub(now)).unwrap_or(0);
                wake_at = wake_at.min(at_now + Duration::from_millis(until));
            }
            let _ = tokio::time::timeout_at(wake_at, notified).await;
        }
    }

    async fn ack(&self, topic: &str, receipt: &str) -> Result<(), StoreError> {
        let delete = "DELETE FROM command_message WHERE topic = ?1 AND sequence = ?2 AND receipt = ?3";
        settle(&self.db, delete, topic, receipt).await
    }

    async fn release(&self, topic: &str, receipt: &str) -> Result<(), StoreError> {
        let release = "UPDATE command_message SET receipt = NULL, visible_at = 0 \
                       WHERE topic = ?1 AND sequence = ?2 AND receipt = ?3";
        settle(&self.db, release, topic, receipt).await?;
        self.sent.notify_waiters();
        Ok(())
    }
}
