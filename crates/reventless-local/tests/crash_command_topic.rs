//! The async command topic on SQLite under SIGKILL: a child process (this
//! test binary run again) queues async commands and is killed; the parent
//! restarts the platform on the file and checks what happens to them.
//!
//! The child hosts an on-demand runtime (`RuntimeMode::OnDemand`: no command
//! worker runs by itself, as in a Lambda host), so a command is
//! deterministically queued and not yet executed when the kill comes; to
//! execute one without acknowledging it, the child receives it from the
//! topic and runs it with `Runtime::run_queued`, as a host does.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reventless_core::plugin::command_topic;
use reventless_core::{CommandOutcome, CommandRequest, OutcomeRecord, OutcomeStatus, Plugin, Runtime, RuntimeOptions};
use reventless_local::sqlite::{SqliteDatabase, SqliteOptions, Synchronous};
use reventless_spec::{Aggregate, Command as CommandMessage, Event, EventEnvelope, Query};
use serde::{Deserialize, Serialize};
use serde_json::json;

const DB_ENV: &str = "REVENTLESS_TOPIC_CRASH_DB";
const MODE_ENV: &str = "REVENTLESS_TOPIC_CRASH_MODE";
const PLUGIN: &str = "Bank";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, CommandMessage)]
enum AccountCommand {
    Open,
    Deposit { amount: u64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
enum AccountEvent {
    Opened,
    /// `balance` after the deposit: shows the order deposits ran in.
    Deposited {
        amount: u64,
        balance: u64,
    },
}

#[derive(Debug, Serialize)]
enum AccountError {
    AlreadyOpen,
    NotOpen,
}

#[derive(Clone, Debug, Default)]
struct Balance {
    open: bool,
    balance: u64,
}

/// Async: every command is queued on the plugin's topic.
struct Account;

impl Aggregate for Account {
    const NAME: &'static str = "Account";
    const ASYNC: bool = true;
    type Command = AccountCommand;
    type Event = AccountEvent;
    type State = Balance;
    type Error = AccountError;

    fn decide(_id: &str, state: &Balance, command: &AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        match command {
            // Opening twice is refused: a redelivered Open appends nothing.
            AccountCommand::Open if state.open => Err(AccountError::AlreadyOpen),
            AccountCommand::Open => Ok(vec![AccountEvent::Opened]),
            AccountCommand::Deposit { .. } if !state.open => Err(AccountError::NotOpen),
            AccountCommand::Deposit { amount } => {
                Ok(vec![AccountEvent::Deposited { amount: *amount, balance: state.balance + amount }])
            }
        }
    }

    fn evolve(mut state: Balance, event: &AccountEvent) -> Balance {
        match event {
            AccountEvent::Opened => state.open = true,
            AccountEvent::Deposited { balance, .. } => state.balance = *balance,
        }
        state
    }
}

fn plugin() -> Plugin {
    Plugin::new(PLUGIN).aggregate::<Account>()
}

fn open_command(account: &str) -> CommandRequest {
    CommandRequest::new(PLUGIN, "Account_Open", json!(null)).entity(account)
}

fn deposit(account: &str, amount: u64) -> CommandRequest {
    CommandRequest::new(PLUGIN, "Account_Deposit", json!({"amount": amount})).entity(account)
}

const NORMAL: SqliteOptions = SqliteOptions { synchronous: Synchronous::Normal };

/// The child: queues commands on an on-demand runtime (nothing executes
/// them), reports each, then — in mode `executed` — runs the first one
/// without acknowledging it; then waits to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of the topic crash tests"]
async fn topic_crash_child() {
    let path = std::env::var(DB_ENV).expect("run by a topic crash test");
    let mode = std::env::var(MODE_ENV).expect("run by a topic crash test");
    let db = SqliteDatabase::open(path, NORMAL).unwrap();
    let stores = reventless_local::sqlite_stores(&db);
    let capabilities = reventless_spec::Capabilities::new();
    let runtime = Runtime::on_demand(stores.clone(), vec![plugin()], capabilities, RuntimeOptions::default()).unwrap();
    let requests = match mode.as_str() {
        "pending" => vec![open_command("a"), deposit("a", 1), open_command("b"), deposit("a", 2), deposit("b", 10)],
        "executed" => vec![open_command("c")],
        other => panic!("unknown mode {other}"),
    };
    for request in requests {
        let CommandOutcome::Pending { command_id, .. } = runtime.execute(request).await.unwrap() else {
            panic!("an async command answers Pending");
        };
        // The command is committed to the file: the parent may kill us from here on.
        println!("PENDING {command_id}");
    }
    if mode == "executed" {
        let topic = command_topic(PLUGIN);
        let visibility = Duration::from_secs(1);
        let delivery = stores.commands.receive(&topic, 1, Duration::from_secs(5), visibility).await.unwrap();
        runtime.run_queued(&delivery[0].message).await.unwrap();
        // Executed and its outcome recorded, never acknowledged.
        println!("EXECUTED {}", delivery[0].message.dedup_id);
    }
    println!("READY");
    tokio::time::sleep(Duration::from_secs(60)).await;
}

/// Runs the child in `mode` until it reports READY, kills it (SIGKILL) and
/// returns the ids of its queued commands and of the one it executed.
fn run_and_kill(path: &Path, mode: &str) -> (Vec<String>, Option<String>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "topic_crash_child", "--ignored", "--nocapture", "--test-threads", "1"])
        .env(DB_ENV, path)
        .env(MODE_ENV, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (mut pending, mut executed, mut ready) = (Vec::new(), None, false);
    for line in stdout.lines() {
        let line = line.unwrap();
        // The first line follows the harness's "test topic_crash_child ... ".
        if let Some((_, id)) = line.split_once("PENDING ") {
            pending.push(id.to_string());
        } else if let Some((_, id)) = line.split_once("EXECUTED ") {
            executed = Some(id.to_string());
        } else if line.ends_with("READY") {
            ready = true;
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(ready, "the child died before it was ready (pending: {pending:?})");
    (pending, executed)
}

fn db_path(name: &str) -> PathBuf {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap().keep().join(name)
}

/// What the killed process left in the file, read without the platform.
fn raw_count(path: &Path, table: &str) -> i64 {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| row.get(0)).unwrap()
}

/// The outcome of `command_id` as the file holds it, read without a runtime.
async fn stored_outcome(path: &Path, command_id: &str) -> OutcomeRecord {
    let stores = reventless_local::sqlite_stores(&SqliteDatabase::open(path, NORMAL).unwrap());
    let row = stores.queries.get(&reventless_core::outcomes_table(PLUGIN), command_id).await.unwrap();
    serde_json::from_value(row.expect("an outcome is kept")).unwrap()
}

/// Polls until the outcome of every command in `ids` is final.
async fn final_outcomes(runtime: &Runtime, ids: &[String]) -> BTreeMap<String, OutcomeRecord> {
    let started = Instant::now();
    loop {
        let mut outcomes = BTreeMap::new();
        for id in ids {
            let record = runtime.command_outcome(PLUGIN, id).await.unwrap().expect("an outcome is kept");
            if record.status != OutcomeStatus::Pending {
                outcomes.insert(id.clone(), record);
            }
        }
        if outcomes.len() == ids.len() {
            return outcomes;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "still pending after 30 s: {outcomes:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls until the topic holds no message (every one acknowledged).
async fn topic_drained(path: &Path) {
    let started = Instant::now();
    while raw_count(path, "command_message") > 0 {
        assert!(started.elapsed() < Duration::from_secs(30), "messages still queued after 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Each command's events, by command id, in log order.
async fn events_by_command(runtime: &Runtime) -> (Vec<EventEnvelope>, BTreeMap<String, usize>) {
    let events = runtime.stores().events.read(PLUGIN, &Query::all(), None, None).await.unwrap();
    let mut per_command = BTreeMap::new();
    for event in &events {
        *per_command.entry(event.meta.causation_id.clone().unwrap()).or_default() += 1;
    }
    (events, per_command)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_command_survives_sigkill_and_runs_after_restart() {
    let path = db_path("pending.db");
    let (pending, _) = run_and_kill(&path, "pending");
    assert_eq!(pending.len(), 5);
    assert_eq!(raw_count(&path, "command_message"), 5, "every accepted command is in the file");
    assert_eq!(raw_count(&path, "event"), 0, "none ran before the kill");

    let started = Instant::now();
    let (runtime, _db) = reventless_local::start_sqlite(&path, NORMAL, vec![plugin()]).await.unwrap();
    let outcomes = final_outcomes(&runtime, &pending).await;
    eprintln!("5 pending commands executed {:?} after the restart", started.elapsed());
    for (id, record) in &outcomes {
        assert_eq!(record.status, OutcomeStatus::Accepted, "{id}: {record:?}");
        assert_eq!(record.event_count, Some(1), "{id}");
    }
    topic_drained(&path).await;
    let (events, per_command) = events_by_command(&runtime).await;
    assert_eq!(per_command.len(), 5, "every command appended");
    assert!(per_command.values().all(|count| *count == 1), "no command appended twice: {per_command:?}");
    // Each account's commands ran in the order they were queued.
    let stream = |id: &str| -> Vec<(String, Option<u64>)> {
        let of_account = events.iter().filter(|e| e.stream.as_ref().unwrap().id == id);
        of_account.map(|e| (e.event_type.clone(), e.data.get("balance").and_then(|b| b.as_u64()))).collect()
    };
    let event = |name: &str, balance: Option<u64>| (name.to_string(), balance);
    assert_eq!(stream("a"), vec![event("Opened", None), event("Deposited", Some(1)), event("Deposited", Some(3))]);
    assert_eq!(stream("b"), vec![event("Opened", None), event("Deposited", Some(10))]);
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_executed_but_not_acknowledged_is_redelivered_and_applied_once() {
    let path = db_path("executed.db");
    let (pending, executed) = run_and_kill(&path, "executed");
    let command_id = executed.expect("the child executed its command");
    assert_eq!(pending, vec![command_id.clone()]);
    assert_eq!(raw_count(&path, "event"), 1, "it ran before the kill");
    assert_eq!(raw_count(&path, "command_message"), 1, "and was never acknowledged");

    assert_eq!(stored_outcome(&path, &command_id).await.status, OutcomeStatus::Accepted, "its outcome is kept");

    let (runtime, _db) = reventless_local::start_sqlite(&path, NORMAL, vec![plugin()]).await.unwrap();
    // The visibility timeout (1 s) passes: the worker of the restarted
    // process receives it again, runs it and acknowledges it.
    topic_drained(&path).await;
    let (_, per_command) = events_by_command(&runtime).await;
    assert_eq!(per_command.get(&command_id), Some(&1), "the redelivery appended nothing: {per_command:?}");
    // It did not run again: its outcome is still the first run's.
    let after = runtime.command_outcome(PLUGIN, &command_id).await.unwrap().unwrap();
    assert_eq!((after.status, after.error_code.as_deref()), (OutcomeStatus::Accepted, None), "{after:?}");
    runtime.shutdown().await;
}

/// Without a process dying: what a reopened file remembers of the topic.
#[tokio::test]
async fn in_flight_messages_receipts_and_dedup_ids_outlive_a_reopen() {
    use reventless_core::store::CommandMessage as Message;
    let path = db_path("reopen.db");
    let message =
        |group: &str, dedup: &str| Message { group_id: group.into(), dedup_id: dedup.into(), body: json!(dedup) };
    let (long, short, none) = (Duration::from_secs(60), Duration::from_secs(2), Duration::ZERO);
    let receipt = {
        let stores = reventless_local::sqlite_stores(&SqliteDatabase::open(&path, NORMAL).unwrap());
        for (group, dedup) in [("g1", "m1"), ("g2", "m2"), ("g3", "m3")] {
            stores.commands.send("t", message(group, dedup)).await.unwrap();
        }
        let first = stores.commands.receive("t", 1, none, long).await.unwrap();
        let second = stores.commands.receive("t", 1, none, short).await.unwrap();
        assert_eq!((first[0].message.dedup_id.as_str(), second[0].message.dedup_id.as_str()), ("m1", "m2"));
        first[0].receipt.clone()
    };
    let stores = reventless_local::sqlite_stores(&SqliteDatabase::open(&path, NORMAL).unwrap());
    stores.commands.send("t", message("g1", "m1")).await.unwrap(); // within the dedup window: dropped
    let dedups = |deliveries: Vec<reventless_core::store::Delivery>| -> Vec<(String, u32)> {
        deliveries.into_iter().map(|d| (d.message.dedup_id, d.receive_count)).collect()
    };
    let now = stores.commands.receive("t", 10, none, long).await.unwrap();
    assert_eq!(dedups(now), vec![("m3".to_string(), 1)], "m1 and m2 are still in flight");
    let later = stores.commands.receive("t", 10, Duration::from_secs(5), long).await.unwrap();
    assert_eq!(dedups(later), vec![("m2".to_string(), 2)], "m2 comes back after its visibility timeout");
    stores.commands.ack("t", &receipt).await.unwrap();
    assert!(stores.commands.ack("t", &receipt).await.is_err(), "a receipt acknowledges once");
    assert!(stores.commands.receive("t", 10, none, long).await.unwrap().is_empty(), "m1 is gone, not duplicated");
}

#[tokio::test]
async fn a_corrupt_stored_message_is_a_typed_error_and_stays_queued() {
    use reventless_core::store::CommandMessage as Message;
    let path = db_path("corrupt.db");
    let db = SqliteDatabase::open(&path, NORMAL).unwrap();
    let stores = reventless_local::sqlite_stores(&db);
    let message = Message { group_id: "g".into(), dedup_id: "d".into(), body: json!({"n": 1}) };
    stores.commands.send("t", message).await.unwrap();
    rusqlite::Connection::open(&path).unwrap().execute("UPDATE command_message SET body = '{not json'", []).unwrap();
    let wait = Duration::from_millis(100);
    match stores.commands.receive("t", 10, wait, wait).await {
        Err(reventless_core::StoreError::Corrupt { location, .. }) => assert_eq!(location, "command_message t#1"),
        other => panic!("expected a corrupt-row error, got {other:?}"),
    }
    assert_eq!(raw_count(&path, "command_message"), 1, "nothing is lost");
    let other = Message { group_id: "g".into(), dedup_id: "e".into(), body: json!(2) };
    stores.commands.send("u", other.clone()).await.unwrap();
    let delivered = stores.commands.receive("u", 10, wait, wait).await.unwrap();
    assert_eq!(delivered[0].message, other, "other topics keep working");
}

/// Receivers racing on one topic — in this process and through a second
/// topic value on the same file (as a second process would) — never get the
/// same message twice at once, and a send through one wakes a receive of the
/// other within the re-check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_receivers_share_messages_without_duplicates() {
    use reventless_core::store::{CommandMessage as Message, CommandTopic};
    use reventless_local::command_topic::sqlite::SqliteCommandTopic;
    use std::sync::Arc;
    let path = db_path("race.db");
    let db = SqliteDatabase::open(&path, NORMAL).unwrap();
    let topics: Vec<Arc<SqliteCommandTopic>> =
        (0..2).map(|_| Arc::new(SqliteCommandTopic::new(SqliteDatabase::open(&path, NORMAL).unwrap()))).collect();
    let sender = SqliteCommandTopic::new(db);
    for n in 0..200 {
        let message = Message { group_id: format!("g{}", n % 50), dedup_id: format!("m{n}"), body: json!(n) };
        sender.send("t", message).await.unwrap();
    }
    let mut receivers = Vec::new();
    for index in 0..4 {
        let topic = topics[index % 2].clone();
        receivers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = topic.receive("t", 7, Duration::from_millis(300), Duration::from_secs(60)).await.unwrap();
                if batch.is_empty() {
                    return got;
                }
                for delivery in batch {
                    topic.ack("t", &delivery.receipt).await.unwrap();
                    got.push(delivery.message.dedup_id);
                }
            }
        }));
    }
    let mut all = Vec::new();
    for receiver in receivers {
        all.extend(receiver.await.unwrap());
    }
    all.sort();
    let mut expected: Vec<String> = (0..200).map(|n| format!("m{n}")).collect();
    expected.sort();
    assert_eq!(all, expected, "each message delivered to exactly one receiver");

    // A send through another value on the file is seen by a waiting receive.
    let waiting = topics[0].clone();
    let receive =
        tokio::spawn(async move { waiting.receive("t", 1, Duration::from_secs(5), Duration::from_secs(60)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let late = Message { group_id: "g".into(), dedup_id: "late".into(), body: json!(null) };
    topics[1].send("t", late.clone()).await.unwrap();
    let started = Instant::now();
    let received = receive.await.unwrap().unwrap();
    assert_eq!(received[0].message, late);
    assert!(started.elapsed() < Duration::from_secs(2), "woken within the 1 s re-check: {:?}", started.elapsed());
}
