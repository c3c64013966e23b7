//! Waking receivers when a message may have become available: a send, a
//! release or an ack that frees a group, in this process or another. Every
//! such statement NOTIFYs `reventless_commands` with the topic on commit;
//! one dedicated connection per [`super::PgCommandTopic`] LISTENs and wakes
//! the receivers of that topic. A lost connection is reopened by the next
//! receive; meanwhile receivers re-check on their bounded fallback.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_postgres::AsyncMessage;

use crate::PgDatabase;

/// The channel every topic's notices go through (the payload is the topic;
/// notify.sql names it too).
pub(super) const CHANNEL: &str = "reventless_commands";

/// How soon a failed LISTEN connection is tried again.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// One waker per topic, shared by the listener task and the receivers.
#[derive(Default)]
pub(super) struct Wakers {
    topics: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Wakers {
    pub(super) fn of(&self, topic: &str) -> Arc<Notify> {
        let mut topics = self.topics.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        topics.entry(topic.to_string()).or_default().clone()
    }

    pub(super) fn wake(&self, topic: &str) {
        let topics = self.topics.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(notify) = topics.get(topic) {
            notify.notify_waiters();
        }
    }

    /// After a gap in listening every receiver re-checks (notices may have been missed).
    fn wake_all(&self) {
        let topics = self.topics.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for notify in topics.values() {
            notify.notify_waiters();
        }
    }
}

/// The LISTEN connection: its client (dropping it closes the connection and
/// ends the task that reads it) and that task, which ends when the
/// connection fails or its runtime shuts down.
struct Listening {
    _client: tokio_postgres::Client,
    reader: tokio::task::JoinHandle<()>,
}

/// The listener of one [`super::PgCommandTopic`] and its clones.
pub(super) struct Listener {
    pub(super) wakers: Arc<Wakers>,
    state: tokio::sync::Mutex<(Option<Listening>, Option<Instant>)>,
}

impl Listener {
    pub(super) fn new() -> Self {
        Self { wakers: Arc::default(), state: tokio::sync::Mutex::new((None, None)) }
    }

    /// Starts listening unless it does (or failed less than a second ago:
    /// receivers then fall back to re-checking).
    pub(super) async fn ensure(&self, db: &PgDatabase) {
        let mut state = self.state.lock().await;
        let (listening, last_failure) = &mut *state;
        if listening.as_ref().is_some_and(|l| !l.reader.is_finished()) {
            return;
        }
        if last_failure.is_some_and(|at| at.elapsed() < RECONNECT_AFTER) {
            return;
        }
        match self.listen(db).await {
            Ok(started) => {
                *listening = Some(started);
                *last_failure = None;
                // Anything sent while nobody listened is found by this re-check.
                self.wakers.wake_all();
            }
            Err(error) => {
                *listening = None;
                *last_failure = Some(Instant::now());
                tracing::warn!(%error, "command topic: cannot LISTEN; receivers re-check every second instead");
            }
        }
    }

    async fn listen(&self, db: &PgDatabase) -> Result<Listening, reventless_core::StoreError> {
        let (client, mut connection) = db.dedicated().await?;
        let wakers = self.wakers.clone();
        let reader = tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(notice)) => wakers.wake(notice.payload()),
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%error, "command topic: the LISTEN connection failed");
                        break;
                    }
                }
            }
            wakers.wake_all();
        });
        client.batch_execute(&format!("LISTEN {CHANNEL}")).await.map_err(crate::database::pg_error)?;
        Ok(Listening { _client: client, reader })
    }
}
