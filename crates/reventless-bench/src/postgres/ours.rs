//! reventless on PostgreSQL: the bench plugin's `Register` DCB slice (a
//! command that succeeds once per id; the second is rejected with
//! `AlreadyRegistered`) executed through `Runtime::execute` on the
//! PostgreSQL stores.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reventless::core::{CommandOutcome, CommandRequest, Runtime, Stores};
use reventless_postgres::PgDatabase;
use serde_json::json;

use super::{Measured, RaceResult};
use crate::Latencies;

/// The stores of one process on `db`, as `dev --postgres` starts them:
/// event logs, query rows, durable command topic, commit notices
/// (LISTEN/NOTIFY) and leases, all in PostgreSQL.
pub async fn stores(db: &PgDatabase) -> Result<Stores, String> {
    reventless_postgres::postgres_stores(db).await.map_err(|e| format!("reventless stores on PostgreSQL: {e}"))
}

fn register(id: String) -> CommandRequest {
    CommandRequest::new("Bench", "Register", json!({ "id": id }))
}

/// Accepted, or rejected as already registered; anything else fails the run.
fn classify(id: &str, executed: Result<CommandOutcome, reventless::core::EngineError>) -> Result<bool, String> {
    match executed {
        Ok(outcome) if outcome.is_accepted() => Ok(true),
        Ok(outcome) if outcome.error_code() == Some("AlreadyRegistered") => Ok(false),
        Ok(other) => Err(format!("Register {id}: unexpected outcome {other:?}")),
        Err(error) => Err(format!("Register {id}: {error}")),
    }
}

/// `clients` tasks registering fresh ids `{prefix}-{client}-{n}` for
/// `duration`; with `settled`, the clock stops only when every read model
/// has applied them.
pub async fn distinct(
    runtime: &Runtime,
    prefix: &str,
    clients: usize,
    duration: Duration,
    settled: bool,
) -> Result<Measured, String> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for client in 0..clients {
        let runtime = runtime.clone();
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let id = format!("{prefix}-{client}-{n}");
                let begin = Instant::now();
                if !classify(&id, runtime.execute(register(id.clone())).await)? {
                    return Err(format!("Register {id}: a fresh id was rejected"));
                }
                latencies.record(begin.elapsed());
            }
            Ok::<_, String>(latencies)
        }));
    }
    let mut all = Latencies::default();
    for task in tasks {
        all.merge(task.await.map_err(|e| e.to_string())??);
    }
    if settled {
        runtime.wait_for_projections_within(Duration::from_secs(300)).await.map_err(|e| e.to_string())?;
    }
    Ok(Measured::from_latencies(all, started.elapsed()))
}

/// `clients` tasks racing to register `{prefix}-{k}`, `races` times in all,
/// `groups` sets of them side by side (each its own share of the races);
/// then the log is read back and every id stored more than once counted.
pub async fn race(
    runtime: &Runtime,
    prefix: &str,
    clients: usize,
    races: usize,
    groups: usize,
) -> Result<RaceResult, String> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for share in super::shares(races, groups) {
        let barrier = Arc::new(tokio::sync::Barrier::new(clients));
        for _ in 0..clients {
            let runtime = runtime.clone();
            let barrier = barrier.clone();
            let prefix = prefix.to_string();
            let share = share.clone();
            tasks.push(tokio::spawn(async move {
                let mut won = Vec::new();
                for race in share {
                    barrier.wait().await;
                    let id = format!("{prefix}-{race}");
                    if classify(&id, runtime.execute(register(id.clone())).await)? {
                        won.push(race);
                    }
                }
                Ok::<_, String>(won)
            }));
        }
    }
    let mut winners = vec![0u64; races];
    for task in tasks {
        for race in task.await.map_err(|e| e.to_string())?? {
            winners[race] += 1;
        }
    }
    let elapsed = started.elapsed();
    let stored = stored_per_id(runtime, &format!("{prefix}-")).await?;
    Ok(RaceResult::from_winners(&winners, clients, elapsed, stored.values().filter(|&&n| n > 1).count() as u64, 0))
}

/// How often each id starting with `prefix` was registered in the log.
async fn stored_per_id(runtime: &Runtime, prefix: &str) -> Result<HashMap<String, u64>, String> {
    let events = runtime.stores().events.clone();
    let mut counts = HashMap::new();
    let mut after = 0;
    loop {
        let batch = events.read_all("Bench", after, 10_000).await.map_err(|e| format!("reading the log: {e}"))?;
        let Some(last) = batch.last() else { break };
        after = last.position;
        for event in &batch {
            if event.event_type != "Registered" {
                continue;
            }
            if let Some(id) = event.data.get("id").and_then(|id| id.as_str()).filter(|id| id.starts_with(prefix)) {
                *counts.entry(id.to_string()).or_insert(0) += 1;
            }
        }
    }
    Ok(counts)
}
