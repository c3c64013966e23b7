//! Commit notices across processes: every append is NOTIFYed on one channel
//! and every process LISTENs on a connection of its own, feeding what it
//! hears to its workers. Notices are wake-ups: a worker catches up from the
//! log, so a notice lost with a connection delays, never loses, an event.
//! After the listening connection was lost and is back, every subscriber is
//! woken (a notice without a log: anything may have changed meanwhile).
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reventless_core::StoreError;
use reventless_core::store::{EventBus, Published};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::database::PgDatabase;

/// The channel all commit notices of a database go through.
pub const CHANNEL: &str = "reventless_events";
/// PostgreSQL refuses a NOTIFY payload of 8000 bytes or more; a larger
/// notice goes without its event types (it then wakes every follower of its log).
const PAYLOAD_LIMIT: usize = 7900;
/// Notices a slow subscriber may fall behind by before it is told it lagged.
const CAPACITY: usize = 4096;
/// Longest wait before connecting the listener again.
const RECONNECT_LIMIT: Duration = Duration::from_secs(2);

/// A notice as sent through NOTIFY.
#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    /// The process that sent it (it already told its own workers).
    o: u64,
    l: String,
    p: u64,
    f: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    t: Vec<String>,
}

/// The event bus of one process among several on one database.
pub struct PgBus {
    local: broadcast::Sender<Arc<Published>>,
    outgoing: mpsc::UnboundedSender<Published>,
    origin: u64,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for PgBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgBus").field("origin", &self.origin).finish_non_exhaustive()
    }
}

impl Drop for PgBus {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl PgBus {
    /// Listens on `db` (returns once listening) and sends this process's
    /// notices through it.
    pub async fn start(db: PgDatabase) -> Result<Self, StoreError> {
        let local = broadcast::channel(CAPACITY).0;
        // The random half of a v7 id: distinct per process.
        let origin = uuid::Uuid::now_v7().as_u64_pair().1;
        let listening = Listener::connect(&db).await?;
        let listener = tokio::spawn(listen(db.clone(), listening, local.clone(), origin));
        let (outgoing, queue) = mpsc::unbounded_channel();
        let notifier = tokio::spawn(notify(db, queue, origin));
        Ok(Self { local, outgoing, origin, tasks: vec![listener, notifier] })
    }
}

impl EventBus for PgBus {
    fn publish(&self, published: Published) {
        // This process's workers at once; the others through the database.
        let _ = self.local.send(Arc::new(published.clone()));
        let _ = self.outgoing.send(published);
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Published>> {
        self.local.subscribe()
    }
}

/// The payload of a notice: with its event types when they fit, else without.
fn payload(published: &Published, origin: u64) -> String {
    let mut wire = Wire {
        o: origin,
        l: published.log.clone(),
        p: published.position,
        f: published.first_position,
        t: published.types.clone(),
    };
    let text = serde_json::to_string(&wire).unwrap_or_default();
    if text.len() < PAYLOAD_LIMIT {
        return text;
    }
    wire.t.clear();
    serde_json::to_string(&wire).unwrap_or_default()
}

/// A notice received, unless it came from this process.
fn decode(payload: &str, origin: u64) -> Option<Published> {
    match serde_json::from_str::<Wire>(payload) {
        Ok(wire) if wire.o == origin => None,
        Ok(wire) => Some(Published { log: wire.l, position: wire.p, first_position: wire.f, types: wire.t }),
        Err(error) => {
            tracing::warn!(%error, "unreadable commit notice; waking every follower");
            Some(Published::default())
        }
    }
}

/// Sends queued notices, several per round trip; a failed send is retried
/// (a missed notice would leave another process's follower asleep).
async fn notify(db: PgDatabase, mut queue: mpsc::UnboundedReceiver<Published>, origin: u64) {
    let mut backoff = Duration::from_millis(50);
    while let Some(first) = queue.recv().await {
        let mut batch = vec![payload(&first, origin)];
        while batch.len() < 64 {
            match queue.try_recv() {
                Ok(next) => batch.push(payload(&next, origin)),
                Err(_) => break,
            }
        }
        loop {
            match send(&db, &batch).await {
                Ok(()) => {
                    backoff = Duration::from_millis(50);
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, notices = batch.len(), "cannot send commit notices; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(RECONNECT_LIMIT);
                }
            }
        }
    }
}

/// One statement, one transaction for the batch, committed without waiting
/// for the disk: PostgreSQL serializes the commits of notifying
/// transactions, and a notice is a wake-up, not data.
const NOTIFY: &str = "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, payload) \
                      FROM unnest($2::text[]) WITH ORDINALITY AS notice(payload, n) ORDER BY n";

async fn send(db: &PgDatabase, payloads: &[String]) -> Result<(), StoreError> {
    let client = db.client().await?;
    let statement = client.prepare_cached(NOTIFY).await.map_err(crate::database::pg_error)?;
    client.execute(&statement, &[&CHANNEL, &payloads]).await.map_err(crate::database::pg_error)?;
    Ok(())
}

/// A listening connection: its notifications arrive on `notices`; the
/// channel closes when the connection is lost.
struct Listener {
    _client: tokio_postgres::Client,
    notices: mpsc::UnboundedReceiver<String>,
    driver: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Listener {
    async fn connect(db: &PgDatabase) -> Result<Self, StoreError> {
        let (client, mut connection) = db.dedicated().await?;
        let (sender, notices) = mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(tokio_postgres::AsyncMessage::Notification(notice)) => {
                        if sender.send(notice.payload().to_string()).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%error, "commit notice connection lost; reconnecting");
                        return;
                    }
                }
            }
        });
        let listener = Self { _client: client, notices, driver };
        listener._client.batch_execute(&format!("LISTEN {CHANNEL}")).await.map_err(crate::database::pg_error)?;
        Ok(listener)
    }
}

/// Feeds what the listener hears to this process's subscribers, connecting
/// again after a loss (and then waking every subscriber).
async fn listen(db: PgDatabase, mut listener: Listener, local: broadcast::Sender<Arc<Published>>, origin: u64) {
    loop {
        while let Some(payload) = listener.notices.recv().await {
            if let Some(published) = decode(&payload, origin) {
                let _ = local.send(Arc::new(published));
            }
        }
        let mut backoff = Duration::from_millis(50);
        listener = loop {
            tokio::time::sleep(backoff).await;
            match Listener::connect(&db).await {
                Ok(listener) => break listener,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for commit notices yet; retrying");
                    backoff = (backoff * 2).min(RECONNECT_LIMIT);
                }
            }
        };
        tracing::info!("listening for commit notices again; waking every follower");
        let _ = local.send(Arc::new(Published::default()));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_notice_too_large_for_notify_goes_without_its_types() {
        let small = Published { log: "Shop".into(), position: 9, first_position: 8, types: vec!["A".into()] };
        assert_eq!(decode(&payload(&small, 1), 2), Some(small.clone()));
        assert_eq!(decode(&payload(&small, 1), 1), None, "its own notice is not heard twice");
        let types = (0..2000).map(|i| format!("Type{i}")).collect();
        let large = Published { types, ..small };
        let text = payload(&large, 1);
        assert!(text.len() < PAYLOAD_LIMIT);
        assert_eq!(decode(&text, 2), Some(Published { types: vec![], ..large }));
        assert_eq!(decode("not json", 2), Some(Published::default()), "unreadable: wake everyone");
    }
}
