//! Durability under SIGKILL: a child process writes commands under load on a
//! SQLite file and reports every acknowledged command; the parent kills it at
//! a random moment, reopens the file and checks that every acknowledged append
//! is there, no append is half there, positions are gapless, and every read
//! model equals the fold of its log.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reventless_core::{CommandOutcome, CommandRequest, Plugin};
use reventless_local::sqlite::{SqliteOptions, Synchronous};
use reventless_spec::{
    Action, Aggregate, Command as CommandMessage, Event, EventEnvelope, Query, ReadModel, StateChangeSlice,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

const DB_ENV: &str = "REVENTLESS_CRASH_DB";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, CommandMessage)]
enum CounterCommand {
    Add { amount: u64 },
}

/// Every command appends two events: a half-written append would show.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
enum CounterEvent {
    Added { amount: u64 },
    Noted { total: u64 },
}

struct Counter;

impl Aggregate for Counter {
    const NAME: &'static str = "Counter";
    type Command = CounterCommand;
    type Event = CounterEvent;
    type State = u64;
    type Error = String;

    fn decide(_id: &str, total: &u64, command: &CounterCommand) -> Result<Vec<CounterEvent>, String> {
        let CounterCommand::Add { amount } = command;
        Ok(vec![CounterEvent::Added { amount: *amount }, CounterEvent::Noted { total: total + amount }])
    }

    fn evolve(total: u64, event: &CounterEvent) -> u64 {
        match event {
            CounterEvent::Added { amount } => total + amount,
            CounterEvent::Noted { .. } => total,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, CommandMessage)]
struct Tick {
    #[tag]
    key: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
enum TickEvent {
    Ticked {
        #[tag]
        key: String,
        count: u64,
    },
    Tocked {
        #[tag]
        key: String,
    },
}

impl StateChangeSlice for Tick {
    const NAME: &'static str = "Tick";
    const CONSUMES: &'static [&'static str] = &["Ticked"];
    const PRODUCES: &'static [&'static str] = &["Ticked", "Tocked"];
    type Command = Self;
    type Event = TickEvent;
    type State = u64;
    type Error = String;

    fn evolve(count: u64, _: &TickEvent) -> u64 {
        count + 1
    }

    fn decide(count: &u64, command: &Self) -> Result<Vec<TickEvent>, String> {
        Ok(vec![
            TickEvent::Ticked { key: command.key.clone(), count: count + 1 },
            TickEvent::Tocked { key: command.key.clone() },
        ])
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
struct Total {
    total: u64,
    events: u64,
}

struct Totals;

impl ReadModel for Totals {
    const NAME: &'static str = "Total";
    const PLURAL: &'static str = "Totals";
    const CONSUMES: &'static [&'static str] = &["Added", "Noted"];
    type Event = CounterEvent;
    type Row = Total;

    fn project(event: &CounterEvent, envelope: &EventEnvelope) -> Vec<Action<Total>> {
        let id = envelope.stream.as_ref().map(|s| s.id.clone()).unwrap_or_default();
        let amount = match event {
            CounterEvent::Added { amount } => *amount,
            CounterEvent::Noted { .. } => 0,
        };
        vec![Action::update_with_default(id, Total { total: 0, events: 0 }, move |row| {
            row.total += amount;
            row.events += 1;
        })]
    }
}

struct TickCounts;

impl ReadModel for TickCounts {
    const NAME: &'static str = "TickCount";
    const PLURAL: &'static str = "TickCounts";
    const CONSUMES: &'static [&'static str] = &["Ticked", "Tocked"];
    type Event = TickEvent;
    type Row = u64;

    fn project(event: &TickEvent, _: &EventEnvelope) -> Vec<Action<u64>> {
        let (TickEvent::Ticked { key, .. } | TickEvent::Tocked { key }) = event;
        vec![Action::update_with_default(key.clone(), 0, |count| *count += 1)]
    }
}

fn plugin() -> Plugin {
    Plugin::new("Crash")
        .aggregate::<Counter>()
        .state_change_slice::<Tick>()
        .read_model::<Totals>()
        .read_model::<TickCounts>()
}

/// The child: writes until killed (or 60 s pass), one line per acknowledged command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of sigkill_mid_load_loses_nothing_acknowledged"]
async fn crash_child_writer() {
    let path = std::env::var(DB_ENV).expect("run by the crash test");
    let options = SqliteOptions { synchronous: Synchronous::Normal };
    let (runtime, _db) = reventless_local::start_sqlite(path, options, vec![plugin()]).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut tasks = Vec::new();
    for client in 0..16u64 {
        let runtime = runtime.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let request = if n.is_multiple_of(2) {
                    CommandRequest::new("Crash", "Counter_Add", json!({"amount": n}))
                        .entity(format!("c{}", (client + n) % 8))
                } else {
                    CommandRequest::new("Crash", "Tick", json!({"key": format!("k{}", (client * 7 + n) % 8)}))
                };
                let command_id = request.command_id.clone();
                if let Ok(CommandOutcome::Accepted { .. }) = runtime.execute(request).await {
                    // One write per line: the parent may kill us between any two.
                    println!("ACK {command_id}");
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

fn pseudo_random(bound: u64) -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(7);
    u64::from(nanos.wrapping_mul(2_654_435_761)) % bound
}

/// Runs the child until a random moment after its first acknowledgements,
/// kills it, and returns the acknowledged command ids.
fn run_and_kill(path: &Path) -> BTreeSet<String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child_writer", "--ignored", "--nocapture", "--test-threads", "1"])
        .env(DB_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(id) = line.strip_prefix("ACK ") {
                let _ = sender.send(id.to_string());
            }
        }
    });
    let mut acked = BTreeSet::new();
    // Wait for the load to be running, then kill at a random moment.
    let started = Instant::now();
    while acked.len() < 200 && started.elapsed() < Duration::from_secs(30) {
        if let Ok(id) = receiver.recv_timeout(Duration::from_millis(100)) {
            acked.insert(id);
        }
    }
    assert!(acked.len() >= 200, "the child acknowledged too little to test anything");
    std::thread::sleep(Duration::from_millis(50 + pseudo_random(700)));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap();
    acked.extend(receiver.try_iter());
    acked
}

fn check_log(events: &[EventEnvelope], log: &str) -> BTreeMap<String, usize> {
    let positions: Vec<u64> = events.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=events.len() as u64).collect::<Vec<_>>(), "{log}: positions must be gapless");
    let mut per_command: BTreeMap<String, usize> = BTreeMap::new();
    for event in events {
        *per_command.entry(event.meta.causation_id.clone().unwrap()).or_default() += 1;
    }
    for (command, count) in &per_command {
        assert_eq!(*count, 2, "{log}: command {command} is half appended");
    }
    per_command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_load_loses_nothing_acknowledged() {
    let dir: PathBuf = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap().keep();
    for round in 0..3 {
        let path = dir.join(format!("crash-{round}.db"));
        let acked = run_and_kill(&path);

        let options = SqliteOptions { synchronous: Synchronous::Normal };
        let (runtime, _db) = reventless_local::start_sqlite(&path, options, vec![plugin()]).await.unwrap();
        let stores = runtime.stores().clone();
        let events = stores.events.read("Crash", &Query::all(), None, None).await.unwrap();
        let stored = check_log(&events, "the plugin's log");
        let (aggregate_events, dcb_events): (Vec<EventEnvelope>, Vec<EventEnvelope>) =
            events.into_iter().partition(|e| e.stream.is_some());
        let missing: Vec<&String> = acked.iter().filter(|id| !stored.contains_key(*id)).collect();
        assert!(missing.is_empty(), "round {round}: acknowledged but lost: {missing:?}");
        eprintln!("round {round}: {} commands acknowledged, {} stored", acked.len(), stored.len());

        // Read models catch up from their checkpoints and equal the fold of the logs.
        runtime.wait_for_projections().await.unwrap();
        let mut totals: BTreeMap<String, Total> = BTreeMap::new();
        for event in &aggregate_events {
            let row = totals.entry(event.stream.as_ref().unwrap().id.clone()).or_insert(Total { total: 0, events: 0 });
            row.total += event.data.get("amount").and_then(|a| a.as_u64()).unwrap_or(0);
            row.events += 1;
        }
        for (id, expected) in &totals {
            let row = stores.queries.get("Crash_Totals", id).await.unwrap().unwrap();
            assert_eq!(serde_json::from_value::<Total>(row).unwrap(), *expected, "round {round}: Totals/{id}");
        }
        let mut ticks: BTreeMap<String, u64> = BTreeMap::new();
        for event in &dcb_events {
            *ticks.entry(event.data["key"].as_str().unwrap().to_string()).or_default() += 1;
        }
        for (key, expected) in &ticks {
            let row = stores.queries.get("Crash_TickCounts", key).await.unwrap().unwrap();
            assert_eq!(row, json!(expected), "round {round}: TickCounts/{key}");
        }
        runtime.shutdown().await;
    }
}
