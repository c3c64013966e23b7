//! Per-entity locks: commands of one entity run in order, entities in parallel.
use super::*;

/// Per-entity async mutexes, removed when nobody holds or awaits them.
#[derive(Default)]
pub(super) struct EntityLocks {
    pub(super) map: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

pub(super) struct EntityGuard {
    pub(super) key: String,
    pub(super) map: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    pub(super) guard: Option<OwnedMutexGuard<()>>,
}

impl EntityLocks {
    pub(super) async fn lock(&self, key: String) -> EntityGuard {
        let mutex = match self.map.lock() {
            Ok(mut map) => map.entry(key.clone()).or_default().clone(),
            Err(poisoned) => poisoned.into_inner().entry(key.clone()).or_default().clone(),
        };
        let guard = mutex.lock_owned().await;
        EntityGuard { key, map: self.map.clone(), guard: Some(guard) }
    }
}

impl Drop for EntityGuard {
    fn drop(&mut self) {
        let guard = self.guard.take();
        let Ok(mut map) = self.map.lock() else { return };
        drop(guard);
        // Only the map's own reference left: nobody holds or waits for it.
        if map.get(&self.key).is_some_and(|m| Arc::strong_count(m) == 1) {
            map.remove(&self.key);
        }
    }
}
