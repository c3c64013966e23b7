//! Replaying a read model: a new generation is folded from the first event
//! while the live runtime keeps serving (and updating) the old rows; after
//! the switch the live runtime's projection worker writes the new table,
//! and the rows equal those of a fresh fold of the same commands.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::BTreeMap;
use std::time::Duration;

use reventless_core::runtime::replay::{self, Replay, ReplayError};
use reventless_core::store::{ListRequest, QueryStore, Stores};
use reventless_core::{CommandRequest, Plugin, Runtime, RuntimeOptions};
use reventless_spec::{Action, Aggregate, Capabilities, Command, Event, EventEnvelope, ReadModel};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const TABLE: &str = "Ledger_Totals";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
enum AccountCommand {
    Add { amount: u64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
enum AccountEvent {
    Added { amount: u64 },
}

struct Account;

impl Aggregate for Account {
    const NAME: &'static str = "Account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type State = ();
    type Error = String;

    fn decide(_id: &str, _state: &(), command: &AccountCommand) -> Result<Vec<AccountEvent>, String> {
        let AccountCommand::Add { amount } = command;
        Ok(vec![AccountEvent::Added { amount: *amount }])
    }

    fn evolve(state: (), _event: &AccountEvent) {
        state
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
struct TotalRow {
    total: u64,
    /// Added by the second version of the read model (old rows lack it).
    #[serde(default)]
    count: u64,
}

fn account(envelope: &EventEnvelope) -> String {
    envelope.stream.as_ref().map(|s| s.id.clone()).unwrap_or_default()
}

/// The first version of the read model: totals only.
struct TotalsV1;

impl ReadModel for TotalsV1 {
    const NAME: &'static str = "Total";
    const PLURAL: &'static str = "Totals";
    const CONSUMES: &'static [&'static str] = &["Added"];
    type Event = AccountEvent;
    type Row = TotalRow;

    fn project(event: &AccountEvent, envelope: &EventEnvelope) -> Vec<Action<TotalRow>> {
        let AccountEvent::Added { amount } = *event;
        vec![Action::update_with_default(account(envelope), TotalRow { total: 0, count: 0 }, move |row| {
            row.total += amount;
        })]
    }
}

/// The second version: also counts the additions (what a replay fixes for old rows).
struct Totals;

impl ReadModel for Totals {
    const NAME: &'static str = "Total";
    const PLURAL: &'static str = "Totals";
    const CONSUMES: &'static [&'static str] = &["Added"];
    type Event = AccountEvent;
    type Row = TotalRow;

    fn project(event: &AccountEvent, envelope: &EventEnvelope) -> Vec<Action<TotalRow>> {
        let AccountEvent::Added { amount } = *event;
        vec![Action::update_with_default(account(envelope), TotalRow { total: 0, count: 0 }, move |row| {
            row.total += amount;
            row.count += 1;
        })]
    }
}

fn ledger_v1() -> Plugin {
    Plugin::new("Ledger").aggregate::<Account>().read_model::<TotalsV1>()
}

fn ledger() -> Plugin {
    Plugin::new("Ledger").aggregate::<Account>().read_model::<Totals>()
}

/// Command `n` of a test's sequence (deterministic: accounts and amounts cycle).
fn add(n: usize) -> CommandRequest {
    let amount = (n % 7 + 1) as u64;
    CommandRequest::new("Ledger", "Account_Add", json!({"amount": amount})).entity(format!("a{}", n % 23))
}

async fn run_commands(runtime: &Runtime, range: std::ops::Range<usize>) {
    for n in range {
        runtime.execute(add(n)).await.unwrap();
    }
}

async fn rows(store: &dyn QueryStore, table: &str) -> BTreeMap<String, Value> {
    let mut rows = BTreeMap::new();
    let mut after = None;
    loop {
        let page = store.list(table, &ListRequest { first: 100, after: after.clone(), ..Default::default() }).await;
        let page = page.unwrap();
        rows.extend(page.rows);
        if !page.has_next_page {
            return rows;
        }
        after = page.end_cursor;
    }
}

/// The rows the current read model gives for commands `0..count` on fresh stores.
async fn fresh_fold(count: usize) -> BTreeMap<String, Value> {
    let runtime = reventless_local::start_in_memory(vec![ledger()]).unwrap();
    run_commands(&runtime, 0..count).await;
    runtime.wait_for_projections_within(Duration::from_secs(30)).await.unwrap();
    let folded = rows(runtime.stores().queries.as_ref(), TABLE).await;
    runtime.shutdown().await;
    folded
}

/// A runtime that runs nothing in the background: what drives a replay in
/// another process without following the logs itself.
fn replayer(stores: Stores) -> Runtime {
    Runtime::on_demand(stores, vec![ledger()], Capabilities::new(), RuntimeOptions::default()).unwrap()
}

/// The scenario on one store, seen by a live runtime and a replaying one:
/// `stores()` gives each runtime its handle on the same data.
async fn replay_while_serving(stores: impl Fn() -> Stores) {
    // Rows written by the first version: counts are missing.
    let old = Runtime::start(stores(), vec![ledger_v1()]).unwrap();
    run_commands(&old, 0..1400).await;
    old.wait_for_projections_within(Duration::from_secs(30)).await.unwrap();
    old.shutdown().await;

    let live = Runtime::start(stores(), vec![ledger()]).unwrap();
    let before = rows(live.stores().queries.as_ref(), TABLE).await;
    assert_eq!(before.len(), 23);
    assert!(before.values().all(|row| row["count"] == 0), "the old rows lack counts");

    let replayer = replayer(stores());
    let mut replay = Replay::begin(&replayer, "Ledger.Totals").await.unwrap();
    assert_eq!(replay.progress().generation, 1);
    let first = replay.step(Duration::ZERO).await.unwrap();
    assert!(!first.switched && first.position > 0 && first.position < first.head, "{first:?}");
    // Queries answer from the old rows while the shadow fills.
    assert_eq!(rows(live.stores().queries.as_ref(), TABLE).await, before, "old rows served during the replay");

    // The live runtime keeps projecting into the old table meanwhile…
    run_commands(&live, 1400..1450).await;
    live.wait_for_projections_within(Duration::from_secs(30)).await.unwrap();
    let during = rows(live.stores().queries.as_ref(), TABLE).await;
    assert_ne!(during, before, "the old table stays live");
    // …and events the live worker has not seen yet (appended by another
    // process) are folded into the shadow before the switch.
    run_commands(&replayer, 1450..1470).await;

    let mut switched = first;
    while !switched.switched {
        switched = replay.step(Duration::from_secs(1)).await.unwrap();
    }
    assert_eq!(switched.position, 1470);
    assert_eq!(switched.events, 1470, "{switched:?}");
    let deleted = replay.finish().await.unwrap();
    assert_eq!(deleted, 23, "the old generation's rows are deleted");
    let pointer = replay::read_pointer(replayer.stores().queries.as_ref(), TABLE).await.unwrap();
    assert_eq!((pointer.generation, pointer.replaying, pointer.retired), (1, None, None));

    // The live runtime follows the pointer: new events go to the new table,
    // from the new table's checkpoint (no event skipped or applied twice).
    run_commands(&live, 1470..1500).await;
    live.wait_for_projections_within(Duration::from_secs(30)).await.unwrap();
    let after = rows(live.stores().queries.as_ref(), TABLE).await;
    assert_eq!(after, fresh_fold(1500).await, "the replayed rows equal a fresh fold");
    let raw = stores();
    assert!(rows(raw.queries.as_ref(), TABLE).await.is_empty(), "nothing left in the old table");
    assert_eq!(rows(raw.queries.as_ref(), "Ledger_Totals~1").await, after, "served from generation 1");
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_replay_switches_while_the_live_runtime_serves_and_follows() {
    let stores = reventless_local::memory_stores();
    replay_while_serving(|| stores.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_replay_from_another_process_switches_the_live_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    // Each runtime opens the file itself, as separate processes do.
    let open = || {
        let options = reventless_local::sqlite::SqliteOptions::default();
        reventless_local::sqlite_stores(&reventless_local::sqlite::SqliteDatabase::open(&path, options).unwrap())
    };
    replay_while_serving(open).await;
}

/// A whole replay run next to a live runtime that is queried all along:
/// every query answers, with complete rows (old or new, never a table half
/// filled).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_answer_with_complete_rows_throughout_a_replay_run() {
    let stores = reventless_local::memory_stores();
    let live = Runtime::start(stores.clone(), vec![ledger()]).unwrap();
    run_commands(&live, 0..3000).await;
    live.wait_for_projections_within(Duration::from_secs(30)).await.unwrap();
    let expected = rows(live.stores().queries.as_ref(), TABLE).await;

    let querying = live.clone();
    let (stop_tx, mut stop) = tokio::sync::watch::channel(false);
    let queries = tokio::spawn(async move {
        let mut answered = 0;
        while !*stop.borrow_and_update() {
            let seen = rows(querying.stores().queries.as_ref(), TABLE).await;
            assert_eq!(seen, expected, "a query during the replay saw other rows");
            answered += 1;
            tokio::task::yield_now().await;
        }
        answered
    });
    let replaying = Runtime::start(stores.clone(), vec![ledger()]).unwrap();
    let mut reports = Vec::new();
    let done = replay::run(&replaying, "Ledger.Total", |progress| reports.push(progress.clone())).await.unwrap();
    stop_tx.send(true).unwrap();
    let answered = queries.await.unwrap();
    assert!(answered > 3, "queries kept answering during the replay ({answered})");
    assert!(done.switched && done.position == 3000 && done.events == 3000, "{done:?}");
    assert!(reports.iter().all(|p| p.position <= p.head && p.head == 3000), "{reports:?}");
    assert!(reports.last().unwrap().switched);
    replaying.shutdown().await;

    // A second replay starts a new generation and ends where the first did.
    let again = replay::run(&live, "Ledger_Totals", |_| {}).await.unwrap();
    assert_eq!((again.generation, again.position), (2, 3000));
    run_commands(&live, 3000..3010).await;
    live.wait_for_projections_within(Duration::from_secs(30)).await.unwrap();
    assert_eq!(rows(live.stores().queries.as_ref(), TABLE).await, fresh_fold(3010).await);
    assert!(rows(stores.queries.as_ref(), "Ledger_Totals~1").await.is_empty(), "generation 1 deleted");
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_names_and_a_second_concurrent_replay_are_refused() {
    let runtime = reventless_local::start_in_memory(vec![ledger()]).unwrap();
    let unknown = replay::run(&runtime, "Ledger.Nothing", |_| {}).await.err().unwrap();
    assert_eq!(
        unknown,
        ReplayError::UnknownReadModel { name: "Ledger.Nothing".into(), known: vec!["Ledger.Totals".into()] }
    );
    assert!(unknown.to_string().contains("Ledger.Totals"), "{unknown}");

    let _held = runtime.stores().leases.try_acquire("replay:Ledger_Totals").await.unwrap().unwrap();
    let busy = replay::run(&runtime, "Ledger.Totals", |_| {}).await.err().unwrap();
    assert_eq!(busy, ReplayError::Busy("Ledger.Totals".into()));
    runtime.shutdown().await;
}
