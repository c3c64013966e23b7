//! Replaying a read model: a new generation is folded from the first event
//! while the live runtime keeps serving (and updating) the old rows; after
//! the switch the live runtime's projection worker writes the new table,
//! and the rows equal those of a fresh fold of the same commands.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use replay_scenario::{TABLE, fresh_fold, ledger, replay_while_serving, rows, run_commands};
use reventless_core::Runtime;
use reventless_core::runtime::replay::{self, ReplayError};

mod replay_scenario;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_replay_switches_while_the_live_runtime_serves_and_follows() {
    let stores = reventless_local::memory_stores();
    replay_while_serving(|| stores.clone(), reventless_local::memory_stores(), 1400, 512).await;
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
    replay_while_serving(open, reventless_local::memory_stores(), 1400, 512).await;
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
    let switched = Arc::new(AtomicBool::new(false));
    let seen_switch = switched.clone();
    let queries = tokio::spawn(async move {
        let (mut before_switch, mut answered) = (0, 0);
        while !*stop.borrow_and_update() {
            let before = !seen_switch.load(Ordering::SeqCst);
            let seen = rows(querying.stores().queries.as_ref(), TABLE).await;
            assert_eq!(seen, expected, "a query during the replay saw other rows");
            answered += 1;
            before_switch += usize::from(before);
            tokio::task::yield_now().await;
        }
        (before_switch, answered)
    });
    let replaying = Runtime::start(stores.clone(), vec![ledger()]).unwrap();
    let mut reports = Vec::new();
    let done = replay::run(&replaying, "Ledger.Total", |progress| {
        switched.store(progress.switched, Ordering::SeqCst);
        reports.push(progress.clone());
    });
    let done = done.await.unwrap();
    stop_tx.send(true).unwrap();
    let (before_switch, answered) = queries.await.unwrap();
    assert!(before_switch > 0, "queries answered while the shadow filled ({before_switch})");
    assert!(answered > before_switch, "and after the switch ({answered})");
    let folded = &done.progress;
    assert!(folded.switched && folded.position == 3000 && folded.events == 3000, "{done:?}");
    assert_eq!(done.deleted, 23, "the old rows (one per account) are deleted");
    assert!(reports.iter().all(|p| p.position <= p.head && p.head == 3000), "{reports:?}");
    assert!(reports.last().unwrap().switched);
    replaying.shutdown().await;

    // A second replay starts a new generation and ends where the first did.
    let again = replay::run(&live, "Ledger_Totals", |_| {}).await.unwrap();
    assert_eq!((again.progress.generation, again.progress.position, again.deleted), (2, 3000, 23));
    run_commands(&live, 3000..3010).await;
    live.wait_for_projections_within(Duration::from_secs(30)).await.unwrap();
    assert_eq!(
        rows(live.stores().queries.as_ref(), TABLE).await,
        fresh_fold(3010, reventless_local::memory_stores()).await
    );
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
