//! The local platform of reventless: adapters for one machine and the
//! platform that hosts plugins on them.
//!
//! Each adapter lives in `<component>/<backend>.rs` (`dcb_log/memory.rs`, …).
pub mod aggregate_log;
pub mod command_topic;
pub mod dcb_log;
pub mod event_bus;
pub mod query_store;

use std::sync::Arc;

use reventless_core::{Plugin, Runtime, RuntimeError, Stores};

/// Stores that live in this process only: for tests and `--memory` runs.
pub fn memory_stores() -> Stores {
    Stores {
        aggregates: Arc::new(aggregate_log::memory::MemoryAggregateLog::default()),
        dcb: Arc::new(dcb_log::memory::MemoryDcbLog::default()),
        queries: Arc::new(query_store::memory::MemoryQueryStore::default()),
        commands: Arc::new(command_topic::memory::MemoryCommandTopic::default()),
        bus: Arc::new(event_bus::InProcessBus::default()),
    }
}

/// Starts `plugins` on fresh in-memory stores.
pub fn start_in_memory(plugins: Vec<Plugin>) -> Result<Runtime, RuntimeError> {
    Runtime::start(memory_stores(), plugins)
}

/// Locks a memory store's state. A poisoned lock means a panic mid-write:
/// report the store as unusable instead of serving half-applied state.
pub(crate) fn memory_lock<T>(
    mutex: &std::sync::Mutex<T>,
) -> Result<std::sync::MutexGuard<'_, T>, reventless_core::StoreError> {
    mutex.lock().map_err(|_| reventless_core::StoreError::Unavailable("memory store poisoned by a panic".into()))
}
