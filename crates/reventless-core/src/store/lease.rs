//! Leases: which process runs a follower (a projection, automation,
//! extension or publisher) when several processes share one database. A
//! worker applies events only while it holds its lease; a process that
//! dies loses its leases and a survivor takes them over.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use tokio::sync::watch;

use super::StoreError;

/// Grants named leases, at most one holder at a time across the processes
/// sharing the stores.
#[async_trait]
pub trait Leases: Send + Sync {
    /// The lease `name` if nobody else holds it (`None` when another holds
    /// it). It is held until the guard is dropped or the platform loses it
    /// ([`LeaseGuard::is_held`] turns false).
    async fn try_acquire(&self, name: &str) -> Result<Option<LeaseGuard>, StoreError>;

    /// Whether another process runs on these stores now (a process leaving
    /// then does not mark the plugins disconnected). A single process: never.
    async fn others_running(&self) -> Result<bool, StoreError> {
        Ok(false)
    }
}

/// A held lease. Dropping it releases the lease.
pub struct LeaseGuard {
    name: String,
    state: watch::Receiver<bool>,
    /// Extra check of the platform (e.g. how recently the lease's connection answered).
    fresh: Option<Arc<dyn Fn() -> bool + Send + Sync>>,
    release: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl std::fmt::Debug for LeaseGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseGuard").field("name", &self.name).field("held", &self.is_held()).finish()
    }
}

impl LeaseGuard {
    /// A lease that stays held while `state` is true (and `fresh`, when
    /// given, answers true); `release` runs when the guard is dropped.
    pub fn new(
        name: &str,
        state: watch::Receiver<bool>,
        fresh: Option<Arc<dyn Fn() -> bool + Send + Sync>>,
        release: impl FnOnce() + Send + Sync + 'static,
    ) -> Self {
        Self { name: name.to_string(), state, fresh, release: Some(Box::new(release)) }
    }

    /// The follower (or replay) the lease is for.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// False once the platform lost the lease (its holder must stop applying).
    pub fn is_held(&self) -> bool {
        *self.state.borrow() && self.fresh.as_ref().is_none_or(|fresh| fresh())
    }

    /// Resolves once the lease is lost (never while it is held).
    pub async fn lost(&self) {
        let mut state = self.state.clone();
        // A closed channel means whoever kept the lease is gone: lost.
        let _ = state.wait_for(|held| !*held).await;
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            release();
        }
    }
}

/// Leases of one process (memory and SQLite stores; AWS runs followers on
/// demand, without leases): a lease is granted when no other worker on these
/// stores holds it, so runtimes sharing one set of stores run each follower
/// once, as processes on one PostgreSQL database do.
#[derive(Clone)]
pub struct InProcessLeases(ProcessLeases);

impl Default for InProcessLeases {
    fn default() -> Self {
        Self(SharedLeases::default().process())
    }
}

#[async_trait]
impl Leases for InProcessLeases {
    async fn try_acquire(&self, name: &str) -> Result<Option<LeaseGuard>, StoreError> {
        self.0.try_acquire(name).await
    }
}

/// One lease table for several runtimes of one process, each its own
/// [`ProcessLeases`]: they behave as processes on one database (tests of
/// the workers' hand-over on memory stores).
#[derive(Default, Clone)]
pub struct SharedLeases {
    table: Arc<std::sync::Mutex<LeaseTable>>,
}

#[derive(Default)]
struct LeaseTable {
    /// Lease name → (holding process, grant number, its guards' state).
    held: std::collections::HashMap<String, (u64, u64, watch::Sender<bool>)>,
    next: u64,
}

impl SharedLeases {
    /// The leases of one more "process".
    pub fn process(&self) -> ProcessLeases {
        let id = self.table.lock().map(|mut t| {
            t.next += 1;
            t.next
        });
        ProcessLeases { table: self.table.clone(), id: id.unwrap_or(0), dead: Arc::new(AtomicBool::new(false)) }
    }
}

/// One process's view of [`SharedLeases`].
#[derive(Clone)]
pub struct ProcessLeases {
    table: Arc<std::sync::Mutex<LeaseTable>>,
    id: u64,
    dead: Arc<AtomicBool>,
}

impl ProcessLeases {
    /// As the process's death: its leases are released (its guards report
    /// lost) and it is granted none any more.
    pub fn die(&self) {
        self.dead.store(true, Ordering::SeqCst);
        if let Ok(mut table) = self.table.lock() {
            table.held.retain(|_, (process, _, state)| {
                let mine = *process == self.id;
                if mine {
                    state.send_replace(false);
                }
                !mine
            });
        }
    }

    /// How many leases this process holds.
    pub fn held(&self) -> usize {
        self.table.lock().map(|t| t.held.values().filter(|(p, _, _)| *p == self.id).count()).unwrap_or(0)
    }
}

#[async_trait]
impl Leases for ProcessLeases {
    async fn try_acquire(&self, name: &str) -> Result<Option<LeaseGuard>, StoreError> {
        if self.dead.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let Ok(mut table) = self.table.lock() else {
            return Err(StoreError::Unavailable("lease table poisoned".into()));
        };
        if table.held.contains_key(name) {
            return Ok(None);
        }
        table.next += 1;
        let grant = table.next;
        let (sender, state) = watch::channel(true);
        table.held.insert(name.to_string(), (self.id, grant, sender));
        let shared = self.table.clone();
        let key = name.to_string();
        Ok(Some(LeaseGuard::new(name, state, None, move || {
            if let Ok(mut table) = shared.lock()
                && table.held.get(&key).is_some_and(|(_, held, _)| *held == grant)
            {
                table.held.remove(&key);
            }
        })))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn in_process_leases_grant_a_name_to_one_guard_at_a_time() {
        let leases = InProcessLeases::default();
        let first = leases.try_acquire("a").await.unwrap().unwrap();
        assert!(leases.clone().try_acquire("a").await.unwrap().is_none(), "clones share the table");
        assert!(leases.try_acquire("b").await.unwrap().is_some());
        drop(first);
        assert!(leases.try_acquire("a").await.unwrap().unwrap().is_held());
    }

    #[tokio::test]
    async fn a_shared_lease_has_one_holder_until_released_or_its_process_dies() {
        let shared = SharedLeases::default();
        let (one, two) = (shared.process(), shared.process());
        let guard = one.try_acquire("p").await.unwrap().unwrap();
        assert!(two.try_acquire("p").await.unwrap().is_none(), "held by the first process");
        assert!(two.try_acquire("q").await.unwrap().is_some(), "another name is free");
        drop(guard);
        let again = one.try_acquire("p").await.unwrap().unwrap();
        assert_eq!(one.held(), 1);
        one.die();
        assert!(!again.is_held());
        tokio::time::timeout(std::time::Duration::from_secs(1), again.lost()).await.unwrap();
        assert!(one.try_acquire("r").await.unwrap().is_none(), "a dead process gets nothing");
        let taken = two.try_acquire("p").await.unwrap().unwrap();
        drop(again);
        assert!(taken.is_held(), "a stale guard's drop leaves the new holder alone");
        assert!(one.try_acquire("p").await.unwrap().is_none());
        assert_eq!(two.held(), 1, "q's guard was dropped at once");
    }
}
