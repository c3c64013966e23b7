//! PostgreSQL adapters of reventless, for self-hosting several processes of
//! one application on one database: event logs, query store, a durable
//! command topic, commit notices through LISTEN/NOTIFY and leases that let
//! each follower run in exactly one process at a time.
//!
//! Each adapter lives in `<component>/mod.rs` with its SQL in `.sql` files
//! beside it; [`database`] holds the pool, the schema version and error mapping.
pub mod bus;
pub mod command_topic;
pub mod database;
pub mod event_log;
pub mod lease;
pub mod query_store;
#[cfg(feature = "testing")]
pub mod testing;

pub use database::{OpenError, PgDatabase, PgOptions, SCHEMA_VERSION};

use std::sync::Arc;

use reventless_core::{Plugin, Runtime, RuntimeError, StoreError, Stores};

/// The stores of one process on `db`: event logs, query rows, command
/// topics, commit notices (LISTEN/NOTIFY; listening when this returns) and
/// leases. Each call is one process's set: its own listening and lease
/// connections.
pub async fn postgres_stores(db: &PgDatabase) -> Result<Stores, StoreError> {
    Ok(Stores {
        events: Arc::new(event_log::PgEventLog::new(db.clone())),
        queries: Arc::new(query_store::PgQueryStore::new(db.clone())),
        commands: Arc::new(command_topic::PgCommandTopic::new(db.clone())),
        bus: Arc::new(bus::PgBus::start(db.clone()).await?),
        leases: Arc::new(lease::PgLeases::new(db.clone())),
    })
}

/// Connects to `url`, brings its schema up to date, creates the indexes of
/// the read models' declared index fields and starts `plugins` on it. Any
/// number of processes may do this on one database: each serves commands;
/// each follower runs in one of them at a time.
pub async fn start_postgres(
    url: &str,
    plugins: Vec<Plugin>,
    capabilities: reventless_spec::Capabilities,
) -> Result<(Runtime, PgDatabase), StartError> {
    let mut index_fields = std::collections::BTreeSet::new();
    for plugin in &plugins {
        for table in plugin.manifest()?.storage.tables {
            index_fields.extend(table.indexes);
        }
    }
    let db = PgDatabase::connect(url, PgOptions::default()).await?;
    query_store::PgQueryStore::new(db.clone()).create_indexes(index_fields.into_iter().collect()).await?;
    let runtime = Runtime::start_with(postgres_stores(&db).await?, plugins, capabilities)?;
    Ok((runtime, db))
}

/// `host:port/database` of a PostgreSQL URL (never its password), for messages.
pub fn describe_url(url: &str) -> Result<String, OpenError> {
    let config =
        <tokio_postgres::Config as std::str::FromStr>::from_str(url).map_err(|e| OpenError::Url(e.to_string()))?;
    Ok(database::describe(&config))
}

/// Why the platform could not start on PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Plugin(#[from] reventless_core::PluginError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
