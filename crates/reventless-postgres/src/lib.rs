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
