//! The physical reference on PostgreSQL: single-row INSERTs in autocommit
//! (one transaction, one WAL flush each), one connection per client, rows
//! shaped like an event (uuid text, type, tags, ~100 bytes of JSON data, meta).
use std::time::{Duration, Instant};

use serde_json::json;

use super::Measured;
use crate::Latencies;

const SCHEMA: &str = "CREATE SCHEMA IF NOT EXISTS bench_raw; \
    CREATE TABLE IF NOT EXISTS bench_raw.raw_event (position BIGSERIAL PRIMARY KEY, event_id TEXT NOT NULL, \
    type TEXT NOT NULL, tags TEXT[] NOT NULL, data JSONB NOT NULL, meta JSONB NOT NULL, \
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now())";

const INSERT: &str = "INSERT INTO bench_raw.raw_event (event_id, type, tags, data, meta) VALUES ($1, $2, $3, $4, $5)";

async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, connection) =
        tokio_postgres::connect(url, tokio_postgres::NoTls).await.map_err(|e| format!("raw reference: {e}"))?;
    tokio::spawn(connection);
    Ok(client)
}

/// Creates the reference table (in its own schema) when missing.
pub async fn prepare(url: &str) -> Result<(), String> {
    connect(url).await?.batch_execute(SCHEMA).await.map_err(|e| format!("raw reference table: {e}"))
}

/// `clients` connections inserting one row per transaction for `duration`.
pub async fn single_inserts(url: &str, clients: usize, duration: Duration) -> Result<Measured, String> {
    let mut connections = Vec::new();
    for _ in 0..clients {
        connections.push(connect(url).await?);
    }
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for (client, connection) in connections.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let statement = connection.prepare(INSERT).await.map_err(|e| format!("raw reference: {e}"))?;
            let data = json!({"id": "", "note": crate::workload::NOTE});
            let meta = json!({});
            let tags: Vec<String> = Vec::new();
            let mut latencies = Latencies::default();
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let event_id = format!("0190c0de-0000-7000-8000-{client:04}{n:08}");
                let begin = Instant::now();
                connection
                    .execute(&statement, &[&event_id, &"Registered", &tags, &data, &meta])
                    .await
                    .map_err(|e| format!("raw reference insert: {e}"))?;
                latencies.record(begin.elapsed());
            }
            Ok::<_, String>(latencies)
        }));
    }
    let mut all = Latencies::default();
    for task in tasks {
        all.merge(task.await.map_err(|e| e.to_string())??);
    }
    Ok(Measured::from_latencies(all, started.elapsed()))
}
