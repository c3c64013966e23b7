//! The physical references: raw SQLite on connections opened by the store's
//! own function (`open_configured_connection`: WAL, `synchronous`, no memory
//! map, the same page cache, planner stability, statement cache), WAL
//! checkpoints on a thread of their own every `CHECKPOINT_INTERVAL` as the
//! store does them, and prepared statements for everything including
//! `BEGIN IMMEDIATE` / `COMMIT`.
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reventless::local::sqlite::{CHECKPOINT_INTERVAL, SqliteOptions, Synchronous, open_configured_connection};
use rusqlite::{Connection, params};

use crate::Latencies;

/// A connection with the store's settings, and the checkpoint thread that
/// the store would run beside its writer (stopped on drop).
struct Raw {
    connection: Connection,
    stop: Arc<AtomicBool>,
    checkpointer: Option<std::thread::JoinHandle<()>>,
}

impl Raw {
    fn open(path: &Path, synchronous: Synchronous) -> rusqlite::Result<Self> {
        let options = SqliteOptions { synchronous };
        let connection = open_configured_connection(path, &options)?;
        connection.execute_batch(
            "CREATE TABLE IF NOT EXISTS raw_event (log TEXT NOT NULL, position INTEGER NOT NULL, \
             event_id TEXT NOT NULL, type TEXT NOT NULL, tags TEXT NOT NULL, data TEXT NOT NULL, \
             meta TEXT NOT NULL, recorded_at INTEGER NOT NULL, PRIMARY KEY (log, position)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS raw_row (tbl TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL, \
             PRIMARY KEY (tbl, id)) WITHOUT ROWID;",
        )?;
        // As the store's writer: no checkpoint inside a commit, a thread does them.
        connection.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpoints = open_configured_connection(path, &options)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let checkpointer = std::thread::Builder::new()
            .name("raw-checkpoint".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(CHECKPOINT_INTERVAL);
                    let _ = checkpoints.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            })
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Self { connection, stop, checkpointer: Some(checkpointer) })
    }

    fn run(&self, sql: &str) -> rusqlite::Result<()> {
        self.connection.prepare_cached(sql)?.execute([]).map(|_| ())
    }

    fn insert(&self, position: i64) -> rusqlite::Result<usize> {
        self.connection
            .prepare_cached("INSERT INTO raw_event VALUES ('raw', ?1, ?2, 'Added', '[]', ?3, '{}', 0)")?
            .execute(params![position, format!("0190c0de-0000-7000-8000-{position:012}"), DATA])
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.checkpointer.take() {
            let _ = thread.join();
        }
    }
}

const DATA: &str = r#"{"amount":1,"note":"benchmark payload padding to about one hundred bytes of json......"}"#;

/// One INSERT per transaction, one thread, for `duration`: inserts/s and
/// commit latencies. The 1-client limit.
pub fn single_insert(dir: &Path, synchronous: Synchronous, duration: Duration) -> rusqlite::Result<(f64, Latencies)> {
    let raw = Raw::open(&dir.join(format!("raw-single-{}.db", synchronous.as_str())), synchronous)?;
    let mut latencies = Latencies::default();
    let started = Instant::now();
    let mut position = 0;
    while started.elapsed() < duration {
        let begin = Instant::now();
        position += 1;
        raw.run("BEGIN IMMEDIATE")?;
        raw.insert(position)?;
        raw.run("COMMIT")?;
        latencies.record(begin.elapsed());
    }
    Ok((position as f64 / started.elapsed().as_secs_f64(), latencies))
}

/// `batch` INSERTs per transaction: rows/s. The group-commit limit.
pub fn batched_insert(dir: &Path, synchronous: Synchronous, rows: i64, batch: i64) -> rusqlite::Result<f64> {
    let raw = Raw::open(&dir.join(format!("raw-batched-{}.db", synchronous.as_str())), synchronous)?;
    let started = Instant::now();
    let mut position = 0;
    while position < rows {
        raw.run("BEGIN IMMEDIATE")?;
        for _ in 0..batch {
            position += 1;
            raw.insert(position)?;
        }
        raw.run("COMMIT")?;
    }
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

/// Reads every event of a reventless log in position order, all columns,
/// no parsing: rows/s.
pub fn scan(db: &Path, log: &str) -> rusqlite::Result<f64> {
    let connection = open_configured_connection(db, &SqliteOptions { synchronous: Synchronous::Normal })?;
    let started = Instant::now();
    let mut statement = connection.prepare(
        "SELECT position, event_id, type, tags, data, meta, recorded_at FROM event WHERE log = ?1 ORDER BY position",
    )?;
    let mut rows = statement.query(params![log])?;
    let mut count = 0u64;
    let mut bytes = 0usize;
    while let Some(row) = rows.next()? {
        let data: String = row.get(4)?;
        bytes += data.len();
        count += 1;
    }
    std::hint::black_box(bytes);
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// The replay's raw reference: the same scan, and for each event one row of
/// the read model's size (`{"id":…,"position":…}`, keyed by a text id)
/// written with `INSERT OR REPLACE` into a `query_row`-shaped table of
/// another file, 1 000 per transaction: events/s.
pub fn scan_and_write(db: &Path, log: &str, dir: &Path) -> rusqlite::Result<f64> {
    let source = open_configured_connection(db, &SqliteOptions { synchronous: Synchronous::Normal })?;
    let raw = Raw::open(&dir.join("raw-replay-rows.db"), Synchronous::Normal)?;
    let started = Instant::now();
    let mut statement = source.prepare(
        "SELECT position, event_id, type, tags, data, meta, recorded_at FROM event WHERE log = ?1 ORDER BY position",
    )?;
    let mut rows = statement.query(params![log])?;
    let mut count = 0u64;
    raw.run("BEGIN IMMEDIATE")?;
    while let Some(row) = rows.next()? {
        let position: i64 = row.get(0)?;
        let event_id: String = row.get(1)?;
        let data: String = row.get(4)?;
        std::hint::black_box(data.len());
        let id = format!("r{position}");
        let written = format!(r#"{{"id":"{id}","position":{position},"event":"{event_id}"}}"#);
        raw.connection
            .prepare_cached("INSERT OR REPLACE INTO raw_row (tbl, id, data) VALUES ('raw', ?1, ?2)")?
            .execute(params![id, written])?;
        count += 1;
        if count.is_multiple_of(1000) {
            raw.run("COMMIT")?;
            raw.run("BEGIN IMMEDIATE")?;
        }
    }
    raw.run("COMMIT")?;
    Ok(count as f64 / started.elapsed().as_secs_f64())
}
