//! The PostgreSQL database behind the stores: a connection pool, the schema
//! and its version (a database written by a newer build is refused), and
//! the mapping of driver errors to [`StoreError`].
use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use reventless_core::StoreError;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

/// The schema this build writes. Opening a database written by a newer build is refused.
pub const SCHEMA_VERSION: i64 = 1;

/// Migrations: entry `i` upgrades a database from version `i` to `i + 1`.
/// Each store keeps its tables in a `schema.sql` beside the module that uses them.
const MIGRATIONS: &[&[&str]] = &[&[
    include_str!("event_log/schema.sql"),
    include_str!("query_store/schema.sql"),
    include_str!("command_topic/schema.sql"),
]];

/// Connections a pool opens at most unless the URL or options say otherwise.
pub const DEFAULT_POOL_SIZE: usize = 32;

/// Settings of a connection to the database.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections of the pool (each process opens its own).
    pub pool_size: usize,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self { pool_size: DEFAULT_POOL_SIZE }
    }
}

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("invalid PostgreSQL URL: {0}")]
    Url(String),
    #[error("cannot connect to PostgreSQL at {target}: {message}")]
    Connect { target: String, message: String },
    #[error(
        "the database at {target} has schema version {found}, newer than this build's {supported}: \
         use a newer reventless, or another database"
    )]
    NewerSchema { target: String, found: i64, supported: i64 },
    #[error("migrating the schema of {target} to version {version} failed: {message}")]
    Migration { target: String, version: i64, message: String },
}

/// A pool of connections to one database, its schema migrated.
#[derive(Clone)]
pub struct PgDatabase {
    pool: Pool,
    config: tokio_postgres::Config,
    target: String,
}

impl std::fmt::Debug for PgDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDatabase").field("target", &self.target).finish_non_exhaustive()
    }
}

impl PgDatabase {
    /// Connects to `url` (`postgres://user@host:port/db`) and brings its schema
    /// to [`SCHEMA_VERSION`] (several processes may do this at once).
    pub async fn connect(url: &str, options: PgOptions) -> Result<Self, OpenError> {
        let config = tokio_postgres::Config::from_str(url).map_err(|e| OpenError::Url(e.to_string()))?;
        let target = describe(&config);
        let manager =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .build()
            .map_err(|e| OpenError::Url(e.to_string()))?;
        let database = Self { pool, config, target };
        database.migrate().await?;
        Ok(database)
    }

    /// Where it points (host, port, database; never the password).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// A pooled connection.
    pub async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| StoreError::Unavailable(format!("PostgreSQL {}: {e}", self.target)))
    }

    /// A connection of its own, outside the pool (listeners and leases keep
    /// theirs for as long as they live). The task driving it ends with it.
    pub async fn dedicated(
        &self,
    ) -> Result<
        (tokio_postgres::Client, tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>),
        StoreError,
    > {
        self.config
            .connect(NoTls)
            .await
            .map_err(|e| StoreError::Unavailable(format!("PostgreSQL {}: {e}", self.target)))
    }

    async fn migrate(&self) -> Result<(), OpenError> {
        let connect_error =
            |e: &dyn std::fmt::Display| OpenError::Connect { target: self.target.clone(), message: e.to_string() };
        let mut client = self.pool.get().await.map_err(|e| connect_error(&e))?;
        let transaction = client.transaction().await.map_err(|e| connect_error(&e))?;
        // One migrator at a time across processes; the others wait, then find it done.
        transaction
            .batch_execute(
                "SELECT pg_advisory_xact_lock(7472657665); \
                 CREATE TABLE IF NOT EXISTS reventless_schema (version BIGINT NOT NULL)",
            )
            .await
            .map_err(|e| connect_error(&e))?;
        let found: i64 = transaction
            .query_opt("SELECT version FROM reventless_schema", &[])
            .await
            .map_err(|e| connect_error(&e))?
            .map(|row| row.get(0))
            .unwrap_or(0);
        if found > SCHEMA_VERSION {
            return Err(OpenError::NewerSchema { target: self.target.clone(), found, supported: SCHEMA_VERSION });
        }
        for (index, steps) in MIGRATIONS.iter().enumerate().skip(usize::try_from(found).unwrap_or(usize::MAX)) {
            let version = i64::try_from(index + 1).unwrap_or(i64::MAX);
            for sql in *steps {
                transaction.batch_execute(sql).await.map_err(|e| OpenError::Migration {
                    target: self.target.clone(),
                    version,
                    message: error_text(&e),
                })?;
            }
        }
        if found < SCHEMA_VERSION {
            transaction
                .batch_execute(&format!(
                    "DELETE FROM reventless_schema; INSERT INTO reventless_schema (version) VALUES ({SCHEMA_VERSION})"
                ))
                .await
                .map_err(|e| connect_error(&e))?;
        }
        transaction.commit().await.map_err(|e| connect_error(&e))
    }
}

/// `host:port/dbname` of a connection config, for messages.
pub(crate) fn describe(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|host| match host {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", config.get_dbname().unwrap_or("postgres"))
}

/// A driver error as a store error: serialization failures, deadlocks and
/// unique violations are conflicts (the caller decides again); a lost
/// connection is unavailability.
pub fn pg_error(error: tokio_postgres::Error) -> StoreError {
    let text = error_text(&error);
    match error.code() {
        Some(code)
            if *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::UNIQUE_VIOLATION =>
        {
            StoreError::Conflict(text)
        }
        Some(code) if *code == SqlState::INVALID_TEXT_REPRESENTATION || *code == SqlState::INVALID_PARAMETER_VALUE => {
            StoreError::Invalid(text)
        }
        _ => StoreError::Unavailable(format!("PostgreSQL: {text}")),
    }
}

/// The server's own message and detail when there is one (the driver's
/// `Display` says only "db error"), else the driver's text.
pub fn error_text(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({}): {detail}", db.message(), db.code().code()),
            None => format!("{} ({})", db.message(), db.code().code()),
        },
        None => error.to_string(),
    }
}

/// A pool error as a store error.
pub fn pool_error(error: deadpool_postgres::PoolError) -> StoreError {
    match error {
        deadpool_postgres::PoolError::Backend(error) => pg_error(error),
        other => StoreError::Unavailable(format!("PostgreSQL pool: {other}")),
    }
}

/// A position as PostgreSQL's BIGINT.
pub fn to_sql_position(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Invalid(format!("position {value} out of range")))
}

/// A stored BIGINT position, refused when negative (a corrupt row).
pub fn to_position(value: i64, location: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        location: location.to_string(),
        message: format!("negative position {value}"),
    })
}
