//! The local platform of reventless: adapters for one machine and the
//! platform that hosts plugins on them.
//!
//! Each adapter lives in `<component>/<backend>.rs` (`event_log/memory.rs`, …).
pub mod command_topic;
pub mod event_log;
pub mod explorer;
pub mod hooks;
pub mod mcp;
pub mod query_store;
pub mod secrets;
pub mod server;
pub mod sqlite;
pub mod tasks;

use std::sync::Arc;

use reventless_core::{Plugin, Runtime, RuntimeError, Stores};
use reventless_spec::Capabilities;

/// Stores that live in this process only: for tests and `--memory` runs.
pub fn memory_stores() -> Stores {
    Stores {
        events: Arc::new(event_log::memory::MemoryEventLog::default()),
        queries: Arc::new(query_store::memory::MemoryQueryStore::default()),
        commands: Arc::new(command_topic::memory::MemoryCommandTopic::default()),
        bus: Arc::new(reventless_core::store::InProcessBus::default()),
        leases: Arc::new(reventless_core::store::InProcessLeases::default()),
    }
}

/// Stores in one SQLite database file (the local platform's default): event
/// logs, query rows, checkpoints and queued async commands in the file;
/// commit notices in process.
pub fn sqlite_stores(db: &sqlite::SqliteDatabase) -> Stores {
    Stores {
        events: Arc::new(event_log::sqlite::SqliteEventLog::new(db.clone())),
        queries: Arc::new(query_store::sqlite::SqliteQueryStore::new(db.clone())),
        commands: Arc::new(command_topic::sqlite::SqliteCommandTopic::new(db.clone())),
        bus: Arc::new(reventless_core::store::InProcessBus::default()),
        leases: Arc::new(reventless_core::store::InProcessLeases::default()),
    }
}

/// Opens (or creates) the database at `path` and starts `plugins` on it,
/// with expression indexes for every read model's declared index fields.
pub async fn start_sqlite(
    path: impl AsRef<std::path::Path>,
    options: sqlite::SqliteOptions,
    plugins: Vec<Plugin>,
) -> Result<(Runtime, sqlite::SqliteDatabase), StartError> {
    start_sqlite_with(path, options, plugins, Capabilities::new()).await
}

/// The local platform's data directory (the database, `secrets.toml`).
pub const DATA_DIR: &str = ".reventless";

/// As [`start_sqlite`], with the external services of the plugins; secrets
/// come from the environment and `secrets.toml` next to the database unless
/// `capabilities` has a source.
pub async fn start_sqlite_with(
    path: impl AsRef<std::path::Path>,
    options: sqlite::SqliteOptions,
    plugins: Vec<Plugin>,
    capabilities: Capabilities,
) -> Result<(Runtime, sqlite::SqliteDatabase), StartError> {
    let mut index_fields = std::collections::BTreeSet::new();
    for plugin in &plugins {
        for table in plugin.manifest()?.storage.tables {
            index_fields.extend(table.indexes);
        }
    }
    let dir = path.as_ref().parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    let capabilities = secrets::provide(capabilities, &dir);
    let db = sqlite::SqliteDatabase::open(path, options)?;
    query_store::sqlite::SqliteQueryStore::new(db.clone()).create_indexes(index_fields.into_iter().collect()).await?;
    let runtime = Runtime::start_with(sqlite_stores(&db), plugins, capabilities)?;
    Ok((runtime, db))
}

/// Why the local platform could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Open(#[from] sqlite::OpenError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Plugin(#[from] reventless_core::PluginError),
    #[error(transparent)]
    Store(#[from] reventless_core::StoreError),
}

/// Starts `plugins` on fresh in-memory stores.
pub fn start_in_memory(plugins: Vec<Plugin>) -> Result<Runtime, RuntimeError> {
    Runtime::start(memory_stores(), plugins)
}

/// As [`start_in_memory`], with the external services of the plugins.
/// Secrets come from the environment and `.reventless/secrets.toml` unless
/// `capabilities` has a source.
pub fn start_in_memory_with(plugins: Vec<Plugin>, capabilities: Capabilities) -> Result<Runtime, RuntimeError> {
    let capabilities = secrets::provide(capabilities, std::path::Path::new(DATA_DIR));
    Runtime::start_with(memory_stores(), plugins, capabilities)
}

/// Locks a memory store's state. A poisoned lock means a panic mid-write:
/// report the store as unusable instead of serving half-applied state.
pub(crate) fn memory_lock<T>(
    mutex: &std::sync::Mutex<T>,
) -> Result<std::sync::MutexGuard<'_, T>, reventless_core::StoreError> {
    mutex.lock().map_err(|_| reventless_core::StoreError::Unavailable("memory store poisoned by a panic".into()))
}
