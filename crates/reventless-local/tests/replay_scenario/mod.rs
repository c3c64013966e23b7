//! The replay scenario shared by the stores' tests (memory and SQLite
//! here, DynamoDB in reventless-aws): a live runtime serves and updates a
//! read model while another runtime replays it; after the switch the live
//! runtime writes the new table, and the rows equal a fresh fold.
#![allow(dead_code)] // each test target uses part of it
use std::collections::BTreeMap;
use std::time::Duration;

use reventless_core::runtime::replay::{self, Replay};
use reventless_core::store::{ListRequest, QueryStore, Stores};
use reventless_core::{CommandRequest, Plugin, Runtime, RuntimeOptions};
use reventless_spec::schemars;
use reventless_spec::{Action, Aggregate, Capabilities, Command, Event, EventEnvelope, ReadModel};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub const TABLE: &str = "Ledger_Totals";

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

pub fn ledger_v1() -> Plugin {
    Plugin::new("Ledger").aggregate::<Account>().read_model::<TotalsV1>()
}

pub fn ledger() -> Plugin {
    Plugin::new("Ledger").aggregate::<Account>().read_model::<Totals>()
}

/// Command `n` of a test's sequence (deterministic: accounts and amounts cycle).
pub fn add(n: usize) -> CommandRequest {
    let amount = (n % 7 + 1) as u64;
    CommandRequest::new("Ledger", "Account_Add", json!({"amount": amount})).entity(format!("a{}", n % 23))
}

pub async fn run_commands(runtime: &Runtime, range: std::ops::Range<usize>) {
    for n in range {
        runtime.execute(add(n)).await.unwrap();
    }
}

pub async fn rows(store: &dyn QueryStore, table: &str) -> BTreeMap<String, Value> {
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

/// The rows the current read model gives for commands `0..count` on `fresh` stores.
pub async fn fresh_fold(count: usize, fresh: Stores) -> BTreeMap<String, Value> {
    let runtime = Runtime::start(fresh, vec![ledger()]).unwrap();
    run_commands(&runtime, 0..count).await;
    runtime.wait_for_projections_within(Duration::from_secs(60)).await.unwrap();
    let folded = rows(runtime.stores().queries.as_ref(), TABLE).await;
    runtime.shutdown().await;
    folded
}

/// A runtime that runs nothing in the background: what drives a replay in
/// another process without following the logs itself.
pub fn replayer(stores: Stores) -> Runtime {
    Runtime::on_demand(stores, vec![ledger()], Capabilities::new(), RuntimeOptions::default()).unwrap()
}

/// The scenario on one store, seen by a live runtime and a replaying one:
/// `stores()` gives each runtime its handle on the same data; `fresh` is
/// empty stores for the reference fold. `old` commands come before the
/// replay (at least 23: one per account), folded `batch` events at a time.
pub async fn replay_while_serving(stores: impl Fn() -> Stores, fresh: Stores, old: usize, batch: usize) {
    let during = old + old.min(50);
    let (unseen, total) = (during + 20, during + 50);
    // Rows written by the first version: counts are missing.
    let old_runtime = Runtime::start(stores(), vec![ledger_v1()]).unwrap();
    run_commands(&old_runtime, 0..old).await;
    old_runtime.wait_for_projections_within(Duration::from_secs(60)).await.unwrap();
    old_runtime.shutdown().await;

    let live = Runtime::start(stores(), vec![ledger()]).unwrap();
    let before = rows(live.stores().queries.as_ref(), TABLE).await;
    assert_eq!(before.len(), 23);
    assert!(before.values().all(|row| row["count"] == 0), "the old rows lack counts");

    let replayer = replayer(stores());
    let mut replay = Replay::begin(&replayer, "Ledger.Totals").await.unwrap().with_batch(batch);
    assert_eq!(replay.progress().generation, 1);
    let first = replay.step(Duration::ZERO).await.unwrap();
    assert!(!first.switched && first.position > 0 && first.position < first.head, "{first:?}");
    // Queries answer from the old rows while the shadow fills.
    assert_eq!(rows(live.stores().queries.as_ref(), TABLE).await, before, "old rows served during the replay");

    // The live runtime keeps projecting into the old table meanwhile…
    run_commands(&live, old..during).await;
    live.wait_for_projections_within(Duration::from_secs(60)).await.unwrap();
    let served = rows(live.stores().queries.as_ref(), TABLE).await;
    assert_ne!(served, before, "the old table stays live");
    // …and events the live worker has not seen yet (appended by another
    // process) are folded into the shadow before the switch.
    run_commands(&replayer, during..unseen).await;

    let mut switched = first;
    while !switched.switched {
        switched = replay.step(Duration::from_secs(1)).await.unwrap();
    }
    assert_eq!(switched.position, unseen as u64);
    assert_eq!(switched.events, unseen as u64, "{switched:?}");
    let deleted = replay.finish().await.unwrap();
    assert_eq!(deleted, 23, "the old generation's rows are deleted");
    let pointer = replay::read_pointer(replayer.stores().queries.as_ref(), TABLE).await.unwrap();
    assert_eq!((pointer.generation, pointer.replaying, pointer.retired), (1, None, None));

    // The live runtime follows the pointer: new events go to the new table,
    // from the new table's checkpoint (no event skipped or applied twice).
    run_commands(&live, unseen..total).await;
    live.wait_for_projections_within(Duration::from_secs(60)).await.unwrap();
    let after = rows(live.stores().queries.as_ref(), TABLE).await;
    assert_eq!(after, fresh_fold(total, fresh).await, "the replayed rows equal a fresh fold");
    let raw = stores();
    assert!(rows(raw.queries.as_ref(), TABLE).await.is_empty(), "nothing left in the old table");
    assert_eq!(rows(raw.queries.as_ref(), "Ledger_Totals~1").await, after, "served from generation 1");
    live.shutdown().await;
}
