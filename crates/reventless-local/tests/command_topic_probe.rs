//! Throughput probe of async commands through the command topic, in memory
//! and in the SQLite file (synchronous NORMAL). Not part of the suite:
//!
//! ```text
//! cargo test --release -p reventless-local --test command_topic_probe -- --ignored --nocapture
//! ```
//!
//! Clients queue async commands for `PROBE_SECS` (default 5); the command
//! worker executes them meanwhile. Reported: commands accepted (`PENDING`)
//! per second, and commands executed per second from the first send until
//! the last queued one has appended its event.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reventless_core::{CommandOutcome, CommandRequest, Plugin, Runtime};
use reventless_local::sqlite::{SqliteOptions, Synchronous};
use reventless_spec::{Aggregate, Command, Event};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
enum TallyCommand {
    Add { amount: u64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
enum TallyEvent {
    Added { amount: u64 },
}

struct Tally;

impl Aggregate for Tally {
    const NAME: &'static str = "Tally";
    const ASYNC: bool = true;
    type Command = TallyCommand;
    type Event = TallyEvent;
    type State = u64;
    type Error = String;

    fn decide(_id: &str, _: &u64, command: &TallyCommand) -> Result<Vec<TallyEvent>, String> {
        let TallyCommand::Add { amount } = command;
        Ok(vec![TallyEvent::Added { amount: *amount }])
    }

    fn evolve(total: u64, event: &TallyEvent) -> u64 {
        let TallyEvent::Added { amount } = event;
        total + amount
    }
}

fn plugin() -> Plugin {
    Plugin::new("Probe").aggregate::<Tally>()
}

/// Queues commands from `clients` tasks (each on its own entities) for
/// `duration`, then waits until every accepted one appended its event.
/// Returns (accepted per second, executed per second).
async fn probe(runtime: &Runtime, clients: u64, duration: Duration) -> (f64, f64) {
    let accepted = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (runtime, accepted) = (runtime.clone(), accepted.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while started.elapsed() < duration {
                n += 1;
                let entity = format!("t{client}-{}", n % 4);
                let request = CommandRequest::new("Probe", "Tally_Add", json!({"amount": 1})).entity(entity);
                let outcome = runtime.execute(request).await.unwrap();
                assert!(matches!(outcome, CommandOutcome::Pending { .. }), "{outcome:?}");
                accepted.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let sending = started.elapsed();
    let accepted = accepted.load(Ordering::Relaxed);
    while runtime.stores().events.head("Probe").await.unwrap() < accepted {
        assert!(started.elapsed() < duration * 20, "the worker fell too far behind");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(runtime.stores().events.head("Probe").await.unwrap(), accepted, "each command ran once");
    let done = started.elapsed();
    (accepted as f64 / sending.as_secs_f64(), accepted as f64 / done.as_secs_f64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a throughput probe, run by hand"]
async fn async_command_throughput() {
    let secs = std::env::var("PROBE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let duration = Duration::from_secs(secs);
    for clients in [1, 16] {
        let memory = reventless_local::start_in_memory(vec![plugin()]).unwrap();
        let (accepted, executed) = probe(&memory, clients, duration).await;
        println!("memory        {clients:>2} clients: {accepted:>8.0} accepted/s {executed:>8.0} executed/s");
        memory.shutdown().await;

        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let options = SqliteOptions { synchronous: Synchronous::Normal };
        let (sqlite, _db) =
            reventless_local::start_sqlite(dir.path().join("probe.db"), options, vec![plugin()]).await.unwrap();
        let (accepted, executed) = probe(&sqlite, clients, duration).await;
        println!("sqlite NORMAL {clients:>2} clients: {accepted:>8.0} accepted/s {executed:>8.0} executed/s");
        sqlite.shutdown().await;
    }
}
