//! The SQLite database behind the local platform's stores: one file per
//! application, WAL, one write connection that group-commits, and read
//! connections per thread.
//!
//! Every write is a job run inside a savepoint of a batch transaction: jobs
//! queued while a batch is being committed are committed together (one fsync
//! for many appends), yet each keeps its own condition check and its own
//! result, delivered only after its batch is durable.
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use reventless_core::StoreError;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use tokio::sync::oneshot;

/// The schema this build writes. Opening a file written by a newer build is refused.
pub const SCHEMA_VERSION: i64 = 3;

/// One step of the schema's history.
enum Migration {
    Sql(&'static str),
    Code(fn(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>),
}

/// Migrations: entry `i` upgrades a database from version `i` to `i + 1`.
const MIGRATIONS: &[Migration] = &[
    Migration::Sql(SCHEMA_1),
    Migration::Code(crate::event_log::upgrade::one_log_per_plugin),
    Migration::Sql(SCHEMA_3),
];

/// Version 1: a log per aggregate (`aggregate_event`) beside the plugin's
/// DCB log (`dcb_event` / `dcb_tag`).
const SCHEMA_1: &str = r#"
CREATE TABLE aggregate_event (
    log TEXT NOT NULL,
    position INTEGER NOT NULL,
    stream_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    tags TEXT NOT NULL,
    data TEXT NOT NULL,
    meta TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (log, position)
) WITHOUT ROWID;
CREATE UNIQUE INDEX aggregate_event_stream ON aggregate_event (log, stream_id, version);

CREATE TABLE dcb_event (
    log TEXT NOT NULL,
    position INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    tags TEXT NOT NULL,
    data TEXT NOT NULL,
    meta TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (log, position)
) WITHOUT ROWID;
CREATE INDEX dcb_event_type ON dcb_event (log, type, position);
-- One row per (event, tag): what DCB queries and conditions search by.
CREATE TABLE dcb_tag (
    log TEXT NOT NULL,
    tag TEXT NOT NULL,
    position INTEGER NOT NULL,
    type TEXT NOT NULL,
    PRIMARY KEY (log, tag, position)
) WITHOUT ROWID;

CREATE TABLE query_row (
    tbl TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (tbl, id)
) WITHOUT ROWID;
CREATE TABLE checkpoint (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL
) WITHOUT ROWID;
"#;

/// Version 3: the async command topics (`command_topic/sqlite.rs`), so that
/// a queued command outlives the process. A message is in flight while it
/// has a receipt; `visible_at` (Unix ms) is when an unacknowledged delivery
/// comes back. Dedup ids are kept for the dedup window, past acks.
const SCHEMA_3: &str = r#"
CREATE TABLE command_message (
    topic TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    group_id TEXT NOT NULL,
    dedup_id TEXT NOT NULL,
    body TEXT NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT,
    visible_at INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (topic, sequence)
) WITHOUT ROWID;
CREATE INDEX command_message_in_flight ON command_message (topic, visible_at) WHERE receipt IS NOT NULL;
CREATE TABLE command_dedup (
    topic TEXT NOT NULL,
    dedup_id TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    PRIMARY KEY (topic, dedup_id)
) WITHOUT ROWID;
CREATE INDEX command_dedup_age ON command_dedup (topic, sent_at);
"#;

/// How hard a commit waits for the disk (SQLite `PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// Durable against process crashes; in WAL mode a power loss may drop
    /// the last commits (SQLite's recommended setting for WAL).
    #[default]
    Normal,
    /// fsync on every commit: durable against power loss.
    Full,
    /// No fsync at all (tests and benchmarks only).
    Off,
}

impl Synchronous {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
            Self::Off => "OFF",
        }
    }
}

impl std::str::FromStr for Synchronous {
    // (clap parses `--synchronous` through this)
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_uppercase().as_str() {
            "NORMAL" => Ok(Self::Normal),
            "FULL" => Ok(Self::Full),
            "OFF" => Ok(Self::Off),
            _ => Err(format!("unknown synchronous level {text:?} (NORMAL, FULL or OFF)")),
        }
    }
}

/// Settings of a database file.
#[derive(Debug, Clone, Default)]
pub struct SqliteOptions {
    pub synchronous: Synchronous,
}

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open {path}: {source}")]
    Sqlite { path: PathBuf, source: rusqlite::Error },
    #[error("{path} was written by a newer reventless (schema version {found}; this build supports up to {supported})")]
    NewerSchema { path: PathBuf, found: i64, supported: i64 },
    #[error("cannot create {path}: {source}")]
    Directory { path: PathBuf, source: std::io::Error },
    #[error("the checkpoint thread could not start: {0}")]
    Thread(std::io::Error),
}

pub(crate) fn sql_error(error: rusqlite::Error) -> StoreError {
    match &error {
        rusqlite::Error::SqliteFailure(code, _)
            if matches!(code.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) =>
        {
            StoreError::Unavailable(error.to_string())
        }
        _ => StoreError::Unavailable(format!("sqlite: {error}")),
    }
}

type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// What a job left behind and how to report once the batch's fate is known.
struct JobDone {
    /// Set when the job failed after it may have written: the whole batch
    /// is rolled back (a job refuses — `Conflict`, `Invalid` — only before
    /// its first write, so refusals need no savepoint).
    failure: Option<StoreError>,
    complete: Completion,
}

/// A write job; called with `None` when its batch could not run, so that it
/// can still answer its caller.
type WriteJob = Box<dyn FnOnce(Option<&Connection>) -> JobDone + Send>;

/// Batches one caller commits before handing the leadership to a new task.
const MAX_BATCHES_LED: usize = 4;

static NEXT_DATABASE_ID: AtomicU64 = AtomicU64::new(1);

struct Shared {
    id: u64,
    path: PathBuf,
    options: SqliteOptions,
    /// Jobs waiting for the next batch.
    queue: Mutex<Vec<WriteJob>>,
    /// The one write connection; whoever holds it commits the queue.
    writer: Mutex<Connection>,
}

/// A handle on one database file. Cheap to clone.
///
/// No thread of its own: a write is queued, and the task that finds the
/// write connection free becomes the batch leader — it commits every queued
/// job in one transaction (group commit) and answers each. Reads run on a
/// read connection kept per thread. A lone client thus pays no thread
/// hand-off at all; many clients share commits.
#[derive(Clone)]
pub struct SqliteDatabase {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SqliteDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDatabase").field("path", &self.shared.path).finish_non_exhaustive()
    }
}

fn open_connection(path: &Path, options: &SqliteOptions, flags: OpenFlags) -> Result<Connection, rusqlite::Error> {
    let connection = Connection::open_with_flags(path, flags)?;
    connection.busy_timeout(std::time::Duration::from_secs(10))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", options.synchronous.as_str())?;
    // No memory map: the file grows with every WAL checkpoint, and each read
    // transaction that then finds it larger remaps it (munmap, TLB
    // shootdowns, page faults on every page touched again). Measured with
    // the load harness: DCB decisions 9 k → 13.5 k/s (1 client), aggregate
    // commands with read models 26 k → 32 k/s (64 clients). A page cache
    // large enough for the hot tables and indexes instead.
    connection.pragma_update(None, "mmap_size", 0)?;
    connection.pragma_update(None, "cache_size", -32_000)?;
    // Without the planner stability guarantee, this SQLite build (STAT4)
    // re-prepares cached statements on every execution once other
    // connections write: measured at a third of a store call's time.
    connection.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    connection.set_prepared_statement_cache_capacity(128);
    Ok(connection)
}

/// Opens a connection to `path` (created if missing) with exactly the
/// settings of the store's own connections: journal mode, `synchronous`,
/// memory map, page cache, planner stability, statement cache. The load
/// harness's raw-SQLite reference opens its file through this, so that the
/// reference and the store differ only in what the store does.
pub fn open_configured_connection(path: &Path, options: &SqliteOptions) -> Result<Connection, rusqlite::Error> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    open_connection(path, options, flags)
}

thread_local! {
    /// Read connections of this thread, by database id (with a handle to
    /// notice databases that are gone).
    static READERS: RefCell<Vec<(Weak<Shared>, Connection)>> = const { RefCell::new(Vec::new()) };
}

impl SqliteDatabase {
    /// Opens (creating and migrating as needed) the database at `path`.
    pub fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, OpenError> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|source| OpenError::Directory { path: parent.to_path_buf(), source })?;
        }
        let sqlite = |source| OpenError::Sqlite { path: path.clone(), source };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut writer = open_connection(&path, &options, flags).map_err(sqlite)?;
        migrate(&mut writer, &path)?;
        // Checkpoints run on their own thread, not inside a commit.
        writer.pragma_update(None, "wal_autocheckpoint", 0).map_err(sqlite)?;
        let checkpointer = open_connection(&path, &options, flags).map_err(sqlite)?;
        let shared = Arc::new(Shared {
            id: NEXT_DATABASE_ID.fetch_add(1, Ordering::Relaxed),
            path,
            options,
            queue: Mutex::new(Vec::new()),
            writer: Mutex::new(writer),
        });
        let watched = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("reventless-sqlite-checkpoint".into())
            .spawn(move || run_checkpoints(checkpointer, watched))
            .map_err(OpenError::Thread)?;
        Ok(Self { shared })
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    pub fn options(&self) -> &SqliteOptions {
        &self.shared.options
    }

    /// Runs `job` in the next batch transaction. An `Err` rolls back the
    /// job's own writes only; `Ok` is returned once the batch is committed.
    pub(crate) async fn write<R, F>(&self, job: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: WriteJob = Box::new(move |connection| match connection {
            Some(connection) => {
                let result = job(connection);
                let failure = match &result {
                    Err(StoreError::Conflict(_) | StoreError::Invalid(_)) | Ok(_) => None,
                    Err(other) => Some(other.clone()),
                };
                JobDone {
                    failure,
                    complete: Box::new(move |commit| {
                        let _ = reply.send(match result {
                            Ok(value) => commit.map(|()| value),
                            Err(refusal) => Err(refusal),
                        });
                    }),
                }
            }
            None => JobDone {
                failure: None,
                complete: Box::new(move |commit| {
                    let error = commit.err().unwrap_or_else(|| StoreError::Unavailable("sqlite batch failed".into()));
                    let _ = reply.send(Err(error));
                }),
            },
        });
        self.shared.queue.lock().map_err(|_| poisoned())?.push(job);
        self.lead_batches();
        answer.await.map_err(|_| StoreError::Unavailable("a sqlite write was dropped".into()))?
    }

    /// Commits queued jobs while the write connection is free and jobs wait.
    /// Whoever finds the connection busy leaves its job to the current
    /// leader, which looks at the queue again after releasing the connection.
    fn lead_batches(&self) {
        let mut led = 0;
        loop {
            let Ok(connection) = self.shared.writer.try_lock() else { return };
            loop {
                if led == MAX_BATCHES_LED {
                    // Our own job is long done: let another task lead, so that
                    // this caller's latency does not grow with the load.
                    drop(connection);
                    let db = self.clone();
                    tokio::spawn(async move { db.lead_batches() });
                    return;
                }
                led += 1;
                let batch = match self.shared.queue.lock() {
                    Ok(mut queue) => std::mem::take(&mut *queue),
                    Err(_) => return,
                };
                if batch.is_empty() {
                    break;
                }
                commit_batch(&connection, batch);
            }
            drop(connection);
            // A job queued between the last look and the release would wait forever: look again.
            if self.shared.queue.lock().map(|queue| queue.is_empty()).unwrap_or(true) {
                return;
            }
        }
    }

    /// Runs `job` on this thread's read connection, in one read transaction
    /// (a consistent snapshot for its duration).
    pub(crate) async fn read<R, F>(&self, job: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<R, StoreError>,
    {
        READERS.with(|readers| {
            let mut readers = readers.borrow_mut();
            readers.retain(|(shared, _)| shared.strong_count() > 0);
            let index =
                match readers.iter().position(|(shared, _)| shared.upgrade().is_some_and(|s| s.id == self.shared.id)) {
                    Some(index) => index,
                    None => {
                        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                        let connection =
                            open_connection(&self.shared.path, &self.shared.options, flags).map_err(sql_error)?;
                        readers.push((Arc::downgrade(&self.shared), connection));
                        readers.len() - 1
                    }
                };
            read_snapshot(&readers[index].1, job)
        })
    }
}

/// How often the WAL is copied back into the database file.
pub const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// Copies committed WAL frames into the database file (PASSIVE: never blocks
/// writers or readers) until the database is closed, then truncates the WAL.
fn run_checkpoints(connection: Connection, database: Weak<Shared>) {
    while database.strong_count() > 0 {
        std::thread::sleep(CHECKPOINT_INTERVAL);
        if let Err(error) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(%error, "sqlite checkpoint failed");
        }
    }
    let _ = connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}

fn poisoned() -> StoreError {
    StoreError::Unavailable("the sqlite write queue was poisoned by a panic".into())
}

/// Runs a read job in one transaction so that all its statements see the same snapshot.
fn read_snapshot<R>(
    connection: &Connection,
    job: impl FnOnce(&Connection) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    run(connection, "BEGIN").map_err(sql_error)?;
    let result = job(connection);
    let _ = run(connection, "COMMIT");
    result
}

/// Runs one cached statement (transaction control on the hot path).
fn run(connection: &Connection, sql: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// One group commit: every job in turn, one COMMIT, then every job is
/// answered with its own result (or the batch's failure).
fn commit_batch(connection: &Connection, batch: Vec<WriteJob>) {
    if let Err(error) = run(connection, "BEGIN IMMEDIATE") {
        let error = sql_error(error);
        for job in batch {
            (job(None).complete)(Err(error.clone()));
        }
        return;
    }
    let mut done = Vec::with_capacity(batch.len());
    let mut failure = None;
    for job in batch {
        // After a failure the batch is lost: the rest only learn why.
        let outcome = if failure.is_some() { job(None) } else { job(Some(connection)) };
        if failure.is_none() {
            failure.clone_from(&outcome.failure);
        }
        done.push(outcome);
    }
    let finished = match failure {
        Some(error) => {
            let _ = run(connection, "ROLLBACK");
            Err(error)
        }
        None => {
            let committed = run(connection, "COMMIT").map_err(sql_error);
            if committed.is_err() {
                let _ = run(connection, "ROLLBACK");
            }
            committed
        }
    };
    for outcome in done {
        (outcome.complete)(finished.clone());
    }
}

fn migrate(connection: &mut Connection, path: &Path) -> Result<(), OpenError> {
    let sqlite = |source| OpenError::Sqlite { path: path.to_path_buf(), source };
    let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sqlite)?;
    transaction
        .execute_batch("CREATE TABLE IF NOT EXISTS reventless_schema (version INTEGER NOT NULL)")
        .map_err(sqlite)?;
    let found: i64 = transaction
        .query_row("SELECT version FROM reventless_schema", [], |row| row.get(0))
        .optional()
        .map_err(sqlite)?
        .unwrap_or(0);
    if found > SCHEMA_VERSION {
        return Err(OpenError::NewerSchema { path: path.to_path_buf(), found, supported: SCHEMA_VERSION });
    }
    for migration in &MIGRATIONS[usize::try_from(found).unwrap_or(0)..] {
        match migration {
            Migration::Sql(sql) => transaction.execute_batch(sql).map_err(sqlite)?,
            Migration::Code(upgrade) => upgrade(&transaction).map_err(sqlite)?,
        }
    }
    if found < SCHEMA_VERSION {
        transaction.execute("DELETE FROM reventless_schema", []).map_err(sqlite)?;
        transaction.execute("INSERT INTO reventless_schema (version) VALUES (?1)", [SCHEMA_VERSION]).map_err(sqlite)?;
    }
    transaction.commit().map_err(sqlite)
}

/// An event row as stored, before its JSON columns are parsed.
pub(crate) struct RawEvent {
    pub position: i64,
    pub event_id: String,
    pub event_type: String,
    pub tags: String,
    pub data: String,
    pub meta: String,
    pub recorded_at: i64,
    pub stream: Option<(String, i64)>,
}

/// The columns [`RawEvent::from_row`] reads, in order (stream columns last).
pub(crate) const EVENT_COLUMNS: &str = "position, event_id, type, tags, data, meta, recorded_at, stream_id, version";

impl RawEvent {
    pub(crate) fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        let stream_id: Option<String> = row.get(7)?;
        let version: Option<i64> = row.get(8)?;
        Ok(Self {
            position: row.get(0)?,
            event_id: row.get(1)?,
            event_type: row.get(2)?,
            tags: row.get(3)?,
            data: row.get(4)?,
            meta: row.get(5)?,
            recorded_at: row.get(6)?,
            stream: stream_id.zip(version),
        })
    }

    /// Parses the stored JSON; a row that does not parse is reported as corrupt.
    pub(crate) fn into_envelope(self, table: &str, log: &str) -> Result<reventless_spec::EventEnvelope, StoreError> {
        let location = || format!("{table} {log}#{}", self.position);
        let corrupt = |what: &str, error: String| StoreError::Corrupt {
            location: location(),
            message: format!("{what}: {error}"),
        };
        Ok(reventless_spec::EventEnvelope {
            event_id: uuid::Uuid::parse_str(&self.event_id).map_err(|e| corrupt("event_id", e.to_string()))?,
            event_type: self.event_type,
            tags: serde_json::from_str(&self.tags).map_err(|e| corrupt("tags", e.to_string()))?,
            data: serde_json::from_str(&self.data).map_err(|e| corrupt("data", e.to_string()))?,
            position: to_position(self.position).map_err(|e| corrupt("position", e))?,
            stream: match self.stream {
                Some((id, version)) => Some(reventless_spec::StreamPosition {
                    id,
                    version: to_position(version).map_err(|e| corrupt("version", e))?,
                }),
                None => None,
            },
            recorded_at: reventless_spec::Timestamp(u64::try_from(self.recorded_at).unwrap_or(0)),
            meta: serde_json::from_str(&self.meta).map_err(|e| corrupt("meta", e.to_string()))?,
        })
    }
}

/// The last position of `log` (0 when empty).
pub(crate) fn log_head(connection: &Connection, log: &str) -> Result<i64, StoreError> {
    let sql = "SELECT COALESCE(MAX(position), 0) FROM event WHERE log = ?1";
    connection.prepare_cached(sql).and_then(|mut s| s.query_row([log], |row| row.get(0))).map_err(sql_error)
}

/// Where `count` events appended after `head` land.
pub(crate) fn appended_after(head: i64, count: usize) -> Result<reventless_core::store::Appended, StoreError> {
    let count = i64::try_from(count).map_err(|_| StoreError::Invalid("too many events in one append".into()))?;
    Ok(reventless_core::store::Appended {
        first_position: to_position(head + 1).map_err(StoreError::Invalid)?,
        last_position: to_position(head + count).map_err(StoreError::Invalid)?,
    })
}

pub(crate) fn to_position(value: i64) -> Result<u64, String> {
    u64::try_from(value).map_err(|_| format!("negative value {value}"))
}

pub(crate) fn to_sql_position(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Invalid(format!("position {value} is out of range")))
}

/// The JSON text of a stored column.
pub(crate) fn json_text<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid(format!("value does not serialize: {e}")))
}
