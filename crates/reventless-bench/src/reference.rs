//! The physical reference: raw SQLite with the same pragmas as the store.
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};

use crate::Latencies;

fn open(path: &Path, synchronous: &str) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", synchronous)?;
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS raw_event (log TEXT NOT NULL, position INTEGER NOT NULL, event_id TEXT NOT NULL, \
         type TEXT NOT NULL, tags TEXT NOT NULL, data TEXT NOT NULL, meta TEXT NOT NULL, recorded_at INTEGER NOT NULL, \
         PRIMARY KEY (log, position)) WITHOUT ROWID",
    )?;
    Ok(connection)
}

const DATA: &str = r#"{"amount":1,"note":"benchmark payload padding to about one hundred bytes of json......"}"#;

fn insert(connection: &Connection, position: i64) -> rusqlite::Result<usize> {
    connection
        .prepare_cached("INSERT INTO raw_event VALUES ('raw', ?1, ?2, 'Added', '[]', ?3, '{}', 0)")?
        .execute(params![position, format!("0190c0de-0000-7000-8000-{position:012}"), DATA])
}

/// One INSERT per transaction, one thread, for `duration`: inserts/s and commit latencies.
pub fn single_insert(dir: &Path, synchronous: &str, duration: Duration) -> rusqlite::Result<(f64, Latencies)> {
    let connection = open(&dir.join(format!("raw-single-{synchronous}.db")), synchronous)?;
    let mut latencies = Latencies::default();
    let started = Instant::now();
    let mut position = 0;
    while started.elapsed() < duration {
        let begin = Instant::now();
        position += 1;
        connection.execute_batch("BEGIN")?;
        insert(&connection, position)?;
        connection.execute_batch("COMMIT")?;
        latencies.record(begin.elapsed());
    }
    Ok((position as f64 / started.elapsed().as_secs_f64(), latencies))
}

/// `batch` INSERTs per transaction: rows/s.
pub fn batched_insert(dir: &Path, synchronous: &str, rows: i64, batch: i64) -> rusqlite::Result<f64> {
    let connection = open(&dir.join(format!("raw-batched-{synchronous}.db")), synchronous)?;
    let started = Instant::now();
    let mut position = 0;
    while position < rows {
        connection.execute_batch("BEGIN")?;
        for _ in 0..batch {
            position += 1;
            insert(&connection, position)?;
        }
        connection.execute_batch("COMMIT")?;
    }
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

/// Reads every event of a reventless log in position order, all columns,
/// no parsing: rows/s.
pub fn scan(db: &Path, log: &str) -> rusqlite::Result<f64> {
    let connection = Connection::open(db)?;
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
