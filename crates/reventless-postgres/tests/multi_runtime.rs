//! Several runtimes on one PostgreSQL database, each with its own pool,
//! listening and lease connections (as processes are): every follower
//! applies in exactly one of them, moves to a survivor when its holder's
//! lease connection dies, wakes on NOTIFY; commands on one entity through
//! both append once per accepted command. The hand-over also on memory
//! stores shared by two runtimes (in-process leases).
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reventless_core::runtime::LEASE_RETRY;
use reventless_core::store::{
    Checkpoint, EventBus, LeaseGuard, Leases, ListRequest, Page, ProcessLeases, Published, QueryStore, RowOp,
    SharedLeases, StoreError, StreamRef,
};
use reventless_core::{CommandOutcome, EngineError, PLATFORM_PLUGINS, Runtime, Stores};
use reventless_postgres::bus::PgBus;
use reventless_postgres::lease::PgLeases;
use reventless_postgres::testing::shared_cluster;
use reventless_postgres::{PgDatabase, PgOptions, postgres_stores};
use reventless_spec::Query;
use serde_json::{Value, json};

#[path = "multi_runtime/bank.rs"]
mod bank;
use bank::{BALANCES, BalanceRow, FOLLOWERS, TODOS, bank, request};

/// Deposits fired at one account at once through both runtimes.
const RACING: usize = 40;

// ------------------------------------------------------- observed "processes"

/// A query store that counts each follower's commits (its applications).
struct Counted {
    inner: Arc<dyn QueryStore>,
    commits: Mutex<HashMap<String, usize>>,
}

impl Counted {
    fn commits(&self, checkpoint: &str) -> usize {
        self.commits.lock().unwrap().get(checkpoint).copied().unwrap_or(0)
    }
}

#[async_trait]
impl QueryStore for Counted {
    async fn get(&self, table: &str, id: &str) -> Result<Option<Value>, StoreError> {
        self.inner.get(table, id).await
    }
    async fn get_many(&self, table: &str, ids: &[String]) -> Result<Vec<(String, Value)>, StoreError> {
        self.inner.get_many(table, ids).await
    }
    async fn list(&self, table: &str, request: &ListRequest) -> Result<Page, StoreError> {
        self.inner.list(table, request).await
    }
    async fn commit(&self, table: &str, ops: Vec<RowOp>, checkpoint: Option<Checkpoint>) -> Result<(), StoreError> {
        let name = checkpoint.as_ref().map(|c| c.name.clone());
        self.inner.commit(table, ops, checkpoint).await?;
        if let Some(name) = name {
            *self.commits.lock().unwrap().entry(name).or_default() += 1;
        }
        Ok(())
    }
    async fn checkpoint(&self, name: &str) -> Result<u64, StoreError> {
        self.inner.checkpoint(name).await
    }
}

/// A process's leases that can die: its lease connection closes (the
/// server releases its locks) and it asks for none again.
struct Mortal {
    inner: Lessor,
    dead: AtomicBool,
    granted: Mutex<BTreeMap<String, Instant>>,
}

/// Where a process's leases come from.
enum Lessor {
    /// Its own lease connection.
    Postgres(PgLeases),
    /// Its share of one in-process lease table (memory stores).
    Memory(ProcessLeases),
}

impl Mortal {
    fn new(inner: Lessor) -> Arc<Self> {
        Arc::new(Self { inner, dead: AtomicBool::new(false), granted: Mutex::default() })
    }

    async fn die(&self) {
        self.dead.store(true, Ordering::SeqCst);
        match &self.inner {
            Lessor::Postgres(leases) => leases.close_connection().await,
            Lessor::Memory(leases) => leases.die(),
        }
    }

    fn holds(&self, lease: &str) -> bool {
        !self.dead.load(Ordering::SeqCst) && self.granted.lock().unwrap().contains_key(lease)
    }
}

#[async_trait]
impl Leases for Mortal {
    async fn others_running(&self) -> Result<bool, StoreError> {
        match &self.inner {
            Lessor::Postgres(leases) => leases.others_running().await,
            Lessor::Memory(leases) => leases.others_running().await,
        }
    }

    async fn try_acquire(&self, name: &str) -> Result<Option<LeaseGuard>, StoreError> {
        if self.dead.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let granted = match &self.inner {
            Lessor::Postgres(leases) => leases.try_acquire(name).await?,
            Lessor::Memory(leases) => leases.try_acquire(name).await?,
        };
        if granted.is_some() {
            self.granted.lock().unwrap().insert(name.to_string(), Instant::now());
        }
        Ok(granted)
    }
}

struct Process {
    runtime: Runtime,
    queries: Arc<Counted>,
    leases: Arc<Mortal>,
}

async fn process(url: &str) -> Process {
    let db = PgDatabase::connect(url, PgOptions { pool_size: 8 }).await.unwrap();
    let mut stores = postgres_stores(&db).await.unwrap();
    let queries = Arc::new(Counted { inner: stores.queries.clone(), commits: Mutex::default() });
    let leases = Mortal::new(Lessor::Postgres(PgLeases::new(db)));
    stores.queries = queries.clone();
    stores.leases = leases.clone();
    let runtime = Runtime::start(stores, vec![bank()]).unwrap();
    Process { runtime, queries, leases }
}

/// Two "processes" on one set of memory stores, with one lease table.
fn memory_processes() -> (Process, Process) {
    let (shared, table) = (reventless_local::memory_stores(), SharedLeases::default());
    let process = || {
        let queries = Arc::new(Counted { inner: shared.queries.clone(), commits: Mutex::default() });
        let leases = Mortal::new(Lessor::Memory(table.process()));
        let stores = Stores { queries: queries.clone(), leases: leases.clone(), ..shared.clone() };
        Process { runtime: Runtime::start(stores, vec![bank()]).unwrap(), queries, leases }
    };
    (process(), process())
}

fn lease(checkpoint: &str) -> String {
    format!("follower:{checkpoint}")
}

/// Polls `check` until it holds (bounded), instead of sleeping a fixed time.
async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The balances the log folds to, by account.
async fn folded(runtime: &Runtime) -> BTreeMap<String, BalanceRow> {
    let mut rows: BTreeMap<String, BalanceRow> = BTreeMap::new();
    for event in runtime.stores().events.read("Bank", &Query::all(), None, None).await.unwrap() {
        let id = event.stream.as_ref().unwrap().id.clone();
        let row = rows.entry(id).or_insert(BalanceRow { balance: 0, movements: 0 });
        row.movements += 1;
        if let Some(amount) = event.data.get("amount").and_then(Value::as_u64) {
            row.balance += amount;
        }
    }
    rows
}

async fn rows(runtime: &Runtime) -> BTreeMap<String, BalanceRow> {
    let page = runtime.stores().queries.list(BALANCES, &ListRequest { first: 1000, ..Default::default() }).await;
    page.unwrap().rows.into_iter().map(|(id, row)| (id, serde_json::from_value(row).unwrap())).collect()
}

async fn bonuses(runtime: &Runtime, id: &str) -> usize {
    let stream = StreamRef { aggregate: "Account", id };
    let events = runtime.stores().events.read_stream("Bank", stream, 0).await.unwrap();
    events.iter().filter(|e| e.data.get("bonus") == Some(&json!(true))).count()
}

/// Opens `count` accounts from `first` and deposits into each, alternating processes.
async fn load(processes: [&Runtime; 2], first: usize, count: usize) {
    let mut tasks = Vec::new();
    for i in first..first + count {
        let runtime = processes[i % 2].clone();
        let other = processes[(i + 1) % 2].clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("acc{i}");
            let opened = runtime.execute(request("Account_Open", &id, json!({"owner": "ann"}))).await.unwrap();
            assert!(opened.is_accepted(), "{opened:?}");
            let deposit = json!({"amount": 5, "bonus": false});
            let deposited = other.execute(request("Account_Deposit", &id, deposit)).await.unwrap();
            assert!(deposited.is_accepted(), "{deposited:?}");
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

async fn all_bonuses_paid(runtime: &Runtime, accounts: usize) {
    eventually("every bonus to be paid", Duration::from_secs(30), || async {
        let page = runtime.stores().queries.list(TODOS, &ListRequest { first: 1000, ..Default::default() }).await;
        let done = page.unwrap().rows.iter().filter(|(_, row)| row["status"] == "COMPLETED").count();
        done == accounts
    })
    .await;
}

// ----------------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_follower_runs_in_one_runtime_and_moves_when_its_lease_connection_dies() {
    let url = shared_cluster().fresh_database().unwrap();
    let (one, two) = (process(&url).await, process(&url).await);
    hand_over(one, two).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runtimes_sharing_memory_stores_run_each_follower_once_and_hand_over() {
    let (one, two) = memory_processes();
    hand_over(one, two).await;
}

/// Each follower applies in one of the two, rows == fold(log), both hear
/// every row change; the projection's holder loses its leases and the
/// other takes every follower over within the retry interval.
async fn hand_over(one: Process, two: Process) {
    eventually("every follower to have a holder", Duration::from_secs(10), || async {
        FOLLOWERS.iter().all(|f| one.leases.holds(&lease(f)) ^ two.leases.holds(&lease(f)))
    })
    .await;

    // Subscriptions are served by both: each hears of every changed row.
    let mut changes = [one.runtime.row_changes(), two.runtime.row_changes()];
    load([&one.runtime, &two.runtime], 0, 20).await;
    all_bonuses_paid(&one.runtime, 20).await;
    // Both wait for the projections: the standing-by one follows the holder's progress.
    one.runtime.settle_within(Duration::from_secs(30)).await.unwrap();
    two.runtime.settle_within(Duration::from_secs(30)).await.unwrap();
    for follower in FOLLOWERS {
        let (a, b) = (one.queries.commits(follower), two.queries.commits(follower));
        assert!(a.min(b) == 0 && a.max(b) > 0, "{follower} applied in one runtime only: {a} and {b}");
    }
    assert_eq!(rows(&one.runtime).await, folded(&one.runtime).await, "rows == fold(log)");
    let accounts: BTreeSet<String> = (0..20).map(|i| format!("acc{i}")).collect();
    for heard in &mut changes {
        let mut changed = BTreeSet::new();
        // The other process's notices may still be on their way.
        while changed != accounts {
            let change = tokio::time::timeout(Duration::from_secs(5), heard.recv()).await;
            let change = change.expect("every process hears of every changed balance").unwrap();
            if change.table == BALANCES {
                changed.insert(change.id);
            }
        }
    }

    // The holder of the projection loses its lease connection, as in a crash.
    let (holder, survivor) = if one.leases.holds(&lease(FOLLOWERS[0])) { (&one, &two) } else { (&two, &one) };
    let died = Instant::now();
    holder.leases.die().await;
    eventually("the survivor to take every follower", LEASE_RETRY + Duration::from_secs(3), || async {
        FOLLOWERS.iter().all(|f| survivor.leases.holds(&lease(f)))
    })
    .await;
    let failover = died.elapsed();
    eprintln!("failover without new events: {failover:?}");
    let before: Vec<usize> = FOLLOWERS.iter().map(|f| holder.queries.commits(f)).collect();

    // Both still serve commands; only the survivor applies.
    load([&one.runtime, &two.runtime], 20, 20).await;
    all_bonuses_paid(&survivor.runtime, 40).await;
    survivor.runtime.settle_within(Duration::from_secs(30)).await.unwrap();
    let after: Vec<usize> = FOLLOWERS.iter().map(|f| holder.queries.commits(f)).collect();
    assert_eq!(before, after, "the runtime without leases applied nothing more");
    let folded = folded(&survivor.runtime).await;
    assert_eq!(folded.len(), 40);
    assert_eq!(rows(&survivor.runtime).await, folded, "rows == fold(log) after the hand-over");
    for i in 0..40 {
        assert_eq!(bonuses(&survivor.runtime, &format!("acc{i}")).await, 1, "acc{i}: one bonus");
        assert_eq!(folded[&format!("acc{i}")], BalanceRow { balance: 15, movements: 3 });
    }
    one.runtime.shutdown().await;
    two.runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_held_elsewhere_is_taken_over_at_once_when_its_holder_shuts_down() {
    let url = shared_cluster().fresh_database().unwrap();
    let first = process(&url).await;
    eventually("the first runtime to hold every follower", Duration::from_secs(10), || async {
        FOLLOWERS.iter().all(|f| first.leases.holds(&lease(f)))
    })
    .await;
    let second = process(&url).await;
    load([&first.runtime, &second.runtime], 0, 6).await;
    first.runtime.settle_within(Duration::from_secs(30)).await.unwrap();
    let stopped = Instant::now();
    first.runtime.shutdown().await;
    drop(first); // its connections close, as when a process exits
    // The plugin stays connected while the second process serves it.
    let plugin = || async { second.runtime.stores().queries.get(PLATFORM_PLUGINS, "Bank").await.unwrap().unwrap() };
    assert_eq!(plugin().await["status"], "CONNECTED");
    // A commit notice makes the standing-by worker ask again at once.
    load([&second.runtime, &second.runtime], 6, 1).await;
    eventually("the second runtime to take over", LEASE_RETRY + Duration::from_secs(3), || async {
        FOLLOWERS.iter().all(|f| second.leases.holds(&lease(f)))
    })
    .await;
    eprintln!("hand-over after a clean shutdown: {:?}", stopped.elapsed());
    all_bonuses_paid(&second.runtime, 7).await;
    second.runtime.settle_within(Duration::from_secs(30)).await.unwrap();
    assert_eq!(rows(&second.runtime).await, folded(&second.runtime).await);
    second.runtime.shutdown().await;
    assert_eq!(plugin().await["status"], "DISCONNECTED", "the last process leaving disconnects it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commands_on_one_entity_through_two_runtimes_append_once_per_acceptance() {
    let url = shared_cluster().fresh_database().unwrap();
    let (one, two) = (process(&url).await, process(&url).await);
    // Sixteen openings of one account race across the runtimes: one wins.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let runtime = if i % 2 == 0 { one.runtime.clone() } else { two.runtime.clone() };
        tasks.push(tokio::spawn(async move {
            runtime.execute(request("Account_Open", "shared", json!({"owner": format!("o{i}")}))).await
        }));
    }
    let mut opened = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(outcome) if outcome.is_accepted() => opened += 1,
            Ok(outcome) => assert_eq!(outcome.error_code(), Some("AlreadyOpen"), "{outcome:?}"),
            Err(EngineError::Conflict { .. }) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(opened, 1);

    // Deposits race: each caller is told accepted or conflict, and the
    // stream holds exactly the accepted ones, versioned without a gap.
    let mut tasks = Vec::new();
    for i in 0..RACING {
        let runtime = if i % 2 == 0 { one.runtime.clone() } else { two.runtime.clone() };
        tasks.push(tokio::spawn(async move {
            runtime.execute(request("Account_Deposit", "shared", json!({"amount": 1, "bonus": false}))).await
        }));
    }
    let (mut accepted, mut conflicts) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(CommandOutcome::Accepted { event_count: 1, .. }) => accepted += 1,
            Err(EngineError::Conflict { .. }) => conflicts += 1,
            other => panic!("{other:?}"),
        }
    }
    eprintln!("{RACING} racing deposits: {accepted} accepted, {conflicts} answered CONFLICT");
    let stream = StreamRef { aggregate: "Account", id: "shared" };
    let events = one.runtime.stores().events.read_stream("Bank", stream, 0).await.unwrap();
    let deposits = events.iter().filter(|e| e.event_type == "Deposited" && e.data["bonus"] == json!(false)).count();
    assert_eq!(deposits, accepted, "one event per accepted command");
    let versions: Vec<u64> = events.iter().map(|e| e.stream.as_ref().unwrap().version).collect();
    assert_eq!(versions, (1..=events.len() as u64).collect::<Vec<_>>());
    all_bonuses_paid(&two.runtime, 1).await;
    two.runtime.settle_within(Duration::from_secs(30)).await.unwrap();
    let row = rows(&two.runtime).await.remove("shared").unwrap();
    assert_eq!(row.balance, accepted as u64 + 10);
    one.runtime.shutdown().await;
    two.runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_notices_reach_other_processes_and_survive_a_lost_connection() {
    let url = shared_cluster().fresh_database().unwrap();
    let db = PgDatabase::connect(&url, PgOptions { pool_size: 4 }).await.unwrap();
    let (sender, listener) = (PgBus::start(db.clone()).await.unwrap(), PgBus::start(db.clone()).await.unwrap());
    let mut heard = listener.subscribe();
    let mut own = sender.subscribe();
    let mut latencies = Vec::new();
    for position in 1..=50u64 {
        let notice = Published { log: "Bank".into(), position, first_position: position, types: vec!["Opened".into()] };
        let sent = Instant::now();
        sender.publish(notice.clone());
        let received = tokio::time::timeout(Duration::from_secs(2), heard.recv()).await.unwrap().unwrap();
        latencies.push(sent.elapsed());
        assert_eq!(*received, notice);
        assert_eq!(*own.recv().await.unwrap(), notice, "the sender's own workers hear it at once");
    }
    assert!(own.try_recv().is_err(), "a process does not hear its own notices twice");
    latencies.sort();
    eprintln!("notice latency: median {:?}, max {:?}", latencies[latencies.len() / 2], latencies.last().unwrap());

    // A burst goes out in batches; each notice arrives once.
    for position in 51..=250u64 {
        sender.publish(Published { log: "Bank".into(), position, first_position: position, types: vec![] });
    }
    let mut burst = Vec::new();
    while burst.len() < 200 {
        let notice = tokio::time::timeout(Duration::from_secs(2), heard.recv()).await.unwrap().unwrap();
        burst.push(notice.position);
    }
    burst.sort_unstable();
    assert_eq!(burst, (51..=250).collect::<Vec<u64>>());

    // Too large for NOTIFY: it arrives without its types (a plain wake-up).
    let types: Vec<String> = (0..1500).map(|i| format!("EventType{i}")).collect();
    sender.publish(Published { log: "Bank".into(), position: 299, first_position: 251, types });
    let large = tokio::time::timeout(Duration::from_secs(2), heard.recv()).await.unwrap().unwrap();
    assert_eq!((large.position, large.types.len()), (299, 0));

    // The server ends the listening connections: each bus connects again
    // and wakes every follower (a notice without a log).
    let admin = db.client().await.unwrap();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    let woken = tokio::time::timeout(Duration::from_secs(5), heard.recv()).await.unwrap().unwrap();
    assert!(woken.log.is_empty(), "{woken:?}");
    let notice = Published { log: "Bank".into(), position: 300, first_position: 300, types: vec![] };
    let deadline = Instant::now() + Duration::from_secs(5);
    // The sender's own listener may reconnect after this first send: resend until heard.
    loop {
        sender.publish(notice.clone());
        match tokio::time::timeout(Duration::from_millis(500), heard.recv()).await {
            Ok(Ok(received)) if received.log == "Bank" => {
                assert_eq!(*received, notice);
                break;
            }
            _ => assert!(Instant::now() < deadline, "no notice after the reconnection"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_has_one_holder_and_goes_with_its_connection() {
    let url = shared_cluster().fresh_database().unwrap();
    let db = PgDatabase::connect(&url, PgOptions { pool_size: 2 }).await.unwrap();
    let (mine, theirs) = (PgLeases::new(db.clone()), PgLeases::new(db.clone()));
    let held = mine.try_acquire("follower:x").await.unwrap().unwrap();
    assert!(held.is_held());
    assert!(theirs.try_acquire("follower:x").await.unwrap().is_none(), "another connection holds it");
    assert!(mine.try_acquire("follower:x").await.unwrap().is_none(), "one guard per name in a process too");
    let other = theirs.try_acquire("follower:y").await.unwrap().unwrap();

    // Released on drop: the other side gets it.
    drop(other);
    eventually("y to be released", Duration::from_secs(2), || async {
        mine.try_acquire("follower:y").await.unwrap().is_some()
    })
    .await;

    // Askings given up mid-way leave no lock behind that nobody holds.
    for wait in 0..40u64 {
        let asked = tokio::time::timeout(Duration::from_micros(wait * 25), mine.try_acquire("follower:c")).await;
        drop(asked);
    }
    let third = PgLeases::new(db.clone());
    eventually("c to be free after cancelled askings", Duration::from_secs(2), || async {
        third.try_acquire("follower:c").await.unwrap().is_some()
    })
    .await;
    third.close_connection().await;

    // The server ends the lease connection: the guard reports it, the lock goes.
    let admin = db.client().await.unwrap();
    let ended = Instant::now();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks \
             WHERE locktype = 'advisory' AND classid = 1380275796 AND pid <> pg_backend_pid() \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), held.lost()).await.unwrap();
    assert!(!held.is_held());
    // The server releases the locks as the ended backend exits, just after it tells the client.
    let taken = Mutex::new(None);
    eventually("x to be free once the connection is gone", Duration::from_secs(2), || async {
        *taken.lock().unwrap() = theirs.try_acquire("follower:x").await.unwrap();
        taken.lock().unwrap().is_some()
    })
    .await;
    eprintln!("lease free after its connection ended: {:?}", ended.elapsed());
    drop(held);
    assert!(mine.try_acquire("follower:x").await.unwrap().is_none(), "a new connection does not steal it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_whose_connection_stops_answering_stops_counting_as_held() {
    let url = shared_cluster().fresh_database().unwrap();
    let db = PgDatabase::connect(&url, PgOptions { pool_size: 2 }).await.unwrap();
    let (mine, theirs) = (PgLeases::new(db.clone()), PgLeases::new(db.clone()));
    let held = mine.try_acquire("follower:s").await.unwrap().unwrap();
    let admin = db.client().await.unwrap();
    let backend: i32 = admin
        .query_one(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = 1380275796 AND granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // The server process behind the lease connection hangs (as a network that drops everything).
    let signal = |name: &str| {
        let sent = std::process::Command::new("kill").args([name, &backend.to_string()]).status().unwrap();
        assert!(sent.success(), "kill {name} {backend}");
    };
    signal("-STOP");
    let silent = Instant::now();
    let lost = tokio::time::timeout(Duration::from_secs(10), held.lost()).await;
    let after = silent.elapsed();
    signal("-CONT");
    lost.expect("the guard reports the lease lost");
    assert!(!held.is_held());
    assert!(after >= Duration::from_secs(2), "not before the answer limit: {after:?}");
    eprintln!("a silent lease connection counted as lost after {after:?}");
    // Its connection is closed: once the server notices, the lock is free.
    eventually("s to be free", Duration::from_secs(5), || async {
        theirs.try_acquire("follower:s").await.unwrap().is_some()
    })
    .await;
}
