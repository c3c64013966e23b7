//! Leases: each follower runs in exactly one process at a time.
//!
//! A lease is a session advisory lock (`pg_try_advisory_lock`) taken on one
//! connection of its own per process. The server releases a session's locks
//! when its connection ends, so a process that dies (even by SIGKILL) hands
//! its followers over: survivors ask again on every commit notice and every
//! few seconds. The connection is pinged every second and the server ends it
//! after [`SERVER_IDLE_LIMIT`] of silence, so a paused process loses its
//! leases as well; its guards stop counting as held after [`ANSWER_LIMIT`]
//! without an answer, before the server lets anybody else take them.
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reventless_core::StoreError;
use reventless_core::store::{LeaseGuard, Leases};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::database::{PgDatabase, pg_error};

/// How often the lease connection is pinged.
pub const PING_INTERVAL: Duration = Duration::from_secs(1);
/// A lease whose connection has not answered for this long is no longer
/// held as far as this process knows (its workers stop applying).
pub const ANSWER_LIMIT: Duration = Duration::from_secs(4);
/// The server ends a lease connection silent for this long (its locks go):
/// a paused process's followers move on after it.
pub const SERVER_IDLE_LIMIT: Duration = Duration::from_secs(8);

/// The first key of every lease lock (`REVT`): the two-key form of advisory
/// locks never collides with the one-key form (the migration lock).
const LEASE_CLASS: i32 = 0x5245_5654;
/// The class of the lock every process holds shared while it runs.
const PRESENCE_CLASS: i32 = 0x5245_5650;

/// Leases of one process, on a connection of its own.
#[derive(Clone)]
pub struct PgLeases {
    inner: Arc<Inner>,
}

struct Inner {
    db: PgDatabase,
    session: tokio::sync::Mutex<Option<Arc<Session>>>,
    /// Names held by a guard of this process (advisory locks are reentrant
    /// within a session; a second worker of one name must not get it).
    held: Mutex<HashSet<String>>,
}

/// One lease connection; its locks live as long as it does.
struct Session {
    client: tokio_postgres::Client,
    alive: watch::Sender<bool>,
    started: Instant,
    /// Milliseconds after `started` of the last answer of the server.
    answered: AtomicU64,
    driver: JoinHandle<()>,
    pinger: Mutex<Option<JoinHandle<()>>>,
}

impl Session {
    fn fresh(&self) -> bool {
        let answered = Duration::from_millis(self.answered.load(Ordering::SeqCst));
        *self.alive.borrow() && self.started.elapsed().saturating_sub(answered) < ANSWER_LIMIT
    }

    fn end(&self) {
        self.alive.send_replace(false);
        // Dropping the connection closes it: the server releases its locks.
        self.driver.abort();
        if let Ok(mut pinger) = self.pinger.lock()
            && let Some(pinger) = pinger.take()
        {
            pinger.abort();
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.end();
    }
}

impl std::fmt::Debug for PgLeases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLeases").field("database", &self.inner.db.target()).finish_non_exhaustive()
    }
}

impl PgLeases {
    /// Leases on `db`; the connection opens with the first request.
    pub fn new(db: PgDatabase) -> Self {
        Self { inner: Arc::new(Inner { db, session: tokio::sync::Mutex::new(None), held: Mutex::new(HashSet::new()) }) }
    }

    /// Closes the lease connection, as this process's death would: every
    /// guard reports lost and the server releases the locks. The next
    /// request opens a new connection.
    pub async fn close_connection(&self) {
        if let Some(session) = self.inner.session.lock().await.take() {
            session.end();
        }
    }

    /// The current connection, opened (again) when there is none or it was lost.
    async fn session(&self) -> Result<Arc<Session>, StoreError> {
        let mut slot = self.inner.session.lock().await;
        if let Some(session) = slot.as_ref()
            && *session.alive.borrow()
        {
            return Ok(session.clone());
        }
        let (client, connection) = self.inner.db.dedicated().await?;
        let (alive, _) = watch::channel(true);
        let ended = alive.clone();
        let driver = tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "lease connection lost; every lease of this process is lost");
            }
            ended.send_replace(false);
        });
        let session = Arc::new(Session {
            client,
            alive,
            started: Instant::now(),
            answered: AtomicU64::new(0),
            driver,
            pinger: Mutex::new(None),
        });
        let limit = SERVER_IDLE_LIMIT.as_millis();
        if let Err(error) = session.client.batch_execute(&format!("SET idle_session_timeout = {limit}")).await {
            if error.code() != Some(&tokio_postgres::error::SqlState::UNDEFINED_OBJECT) {
                session.end();
                return Err(pg_error(error));
            }
            // Before PostgreSQL 14: a paused process keeps its leases until it resumes.
            tracing::warn!("this server has no idle_session_timeout: a paused process keeps its leases");
        }
        // Shared by every running process: how others see this one (`others_running`).
        let present = session.client.query_one("SELECT pg_try_advisory_lock_shared($1, 0)", &[&PRESENCE_CLASS]).await;
        if let Err(error) = present {
            session.end();
            return Err(pg_error(error));
        }
        let pinger = tokio::spawn(ping(Arc::downgrade(&session)));
        if let Ok(mut slot) = session.pinger.lock() {
            *slot = Some(pinger);
        }
        *slot = Some(session.clone());
        Ok(session)
    }
}

/// Pings the lease connection until it fails to answer in time, then ends it.
async fn ping(session: std::sync::Weak<Session>) {
    let mut ticker = tokio::time::interval(PING_INTERVAL);
    loop {
        ticker.tick().await;
        let Some(session) = session.upgrade() else { return };
        if !*session.alive.borrow() {
            return;
        }
        match tokio::time::timeout(ANSWER_LIMIT, session.client.simple_query("SELECT 1")).await {
            Ok(Ok(_)) => {
                let now = u64::try_from(session.started.elapsed().as_millis()).unwrap_or(u64::MAX);
                session.answered.store(now, Ordering::SeqCst);
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "lease connection failed; every lease of this process is lost");
                session.end();
                return;
            }
            Err(_) => {
                tracing::warn!(limit = ?ANSWER_LIMIT, "lease connection silent; every lease of this process is lost");
                session.end();
                return;
            }
        }
    }
}

/// A name this process is asking for: forgotten again unless granted (also
/// when the asking is cancelled).
struct Reservation<'a> {
    inner: &'a Inner,
    name: Option<String>,
}

impl<'a> Reservation<'a> {
    /// `None` when a guard of this process holds the name already.
    fn take(inner: &'a Inner, name: &str) -> Result<Option<Self>, StoreError> {
        let Ok(mut held) = inner.held.lock() else {
            return Err(StoreError::Unavailable("lease table poisoned".into()));
        };
        Ok(held.insert(name.to_string()).then(|| Self { inner, name: Some(name.to_string()) }))
    }

    /// Granted: the guard forgets it when dropped.
    fn keep(mut self) {
        self.name = None;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Some(name) = self.name.take()
            && let Ok(mut held) = self.inner.held.lock()
        {
            held.remove(&name);
        }
    }
}

/// A lock request on its way. Cancelled before the answer (the caller
/// gave up), the lock may have been granted with nobody to hold it: it is
/// released again (after the request, on the same connection; releasing a
/// lock not held only warns).
struct Asking {
    session: Option<Arc<Session>>,
    key: i32,
}

impl Asking {
    fn answered(mut self) {
        self.session = None;
    }
}

impl Drop for Asking {
    fn drop(&mut self) {
        let (Some(session), Ok(runtime)) = (self.session.take(), tokio::runtime::Handle::try_current()) else {
            return;
        };
        let key = self.key;
        runtime.spawn(async move {
            let keys: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&LEASE_CLASS, &key];
            let _ = session.client.query_one("SELECT pg_advisory_unlock($1, $2)", &keys).await;
        });
    }
}

/// The second key of a lease's lock: a hash of its name (FNV-1a). Two names
/// with one hash share a lock: they then run in one process, which is safe.
fn lease_key(name: &str) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in name.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    i32::from_ne_bytes(hash.to_ne_bytes())
}

#[async_trait]
impl Leases for PgLeases {
    async fn others_running(&self) -> Result<bool, StoreError> {
        let session = self.session().await?;
        let others = session
            .client
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                 AND classid = $1::int4::oid AND objid = 0 AND objsubid = 2 AND granted \
                 AND pid <> pg_backend_pid()",
                &[&PRESENCE_CLASS],
            )
            .await
            .map_err(pg_error)?;
        Ok(others.get::<_, i64>(0) > 0)
    }

    async fn try_acquire(&self, name: &str) -> Result<Option<LeaseGuard>, StoreError> {
        let Some(reservation) = Reservation::take(&self.inner, name)? else { return Ok(None) };
        let session = self.session().await?;
        let key = lease_key(name);
        let asking = Asking { session: Some(session.clone()), key };
        let granted = session.client.query_one("SELECT pg_try_advisory_lock($1, $2)", &[&LEASE_CLASS, &key]).await;
        asking.answered();
        if !granted.map_err(pg_error)?.get::<_, bool>(0) {
            return Ok(None);
        }
        reservation.keep();
        let state = session.alive.subscribe();
        let checked = session.clone();
        let fresh: Arc<dyn Fn() -> bool + Send + Sync> = Arc::new(move || checked.fresh());
        let inner = self.inner.clone();
        let owned = name.to_string();
        Ok(Some(LeaseGuard::new(name, state, Some(fresh), move || {
            if let Ok(mut held) = inner.held.lock() {
                held.remove(&owned);
            }
            if !*session.alive.borrow() {
                return;
            }
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let keys: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&LEASE_CLASS, &key];
                    let unlocked = session.client.query_one("SELECT pg_advisory_unlock($1, $2)", &keys).await;
                    if let Err(error) = unlocked {
                        tracing::warn!(%error, lease = owned, "could not release a lease; it goes with the connection");
                    }
                });
            }
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::lease_key;

    #[test]
    fn lease_keys_are_stable_and_spread() {
        assert_eq!(lease_key("follower:a"), lease_key("follower:a"));
        assert_ne!(lease_key("follower:a"), lease_key("follower:b"));
    }
}
