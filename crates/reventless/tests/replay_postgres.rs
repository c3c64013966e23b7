//! Replaying a read model on PostgreSQL: the replay scenario of the local
//! platform's tests, each runtime with its own pool, notices and leases on
//! one database (as separate processes).
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::sync::Mutex;

use reventless_core::store::Stores;
use reventless_postgres::testing::shared_cluster;
use reventless_postgres::{PgDatabase, PgOptions, postgres_stores};

#[path = "../../reventless-local/tests/replay_scenario/mod.rs"]
mod replay_scenario;

async fn process_stores(url: &str) -> Stores {
    let db = PgDatabase::connect(url, PgOptions { pool_size: 4 }).await.unwrap();
    postgres_stores(&db).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_replay_switches_while_the_live_process_serves_and_follows() {
    let url = shared_cluster().fresh_database().expect("a PostgreSQL test database");
    let fresh = process_stores(&shared_cluster().fresh_database().expect("a second database")).await;
    // The scenario's processes, in the order it starts them: the first
    // version, the live one, the replaying one, and a raw look at the tables.
    let mut processes = Vec::new();
    for _ in 0..4 {
        processes.push(process_stores(&url).await);
    }
    processes.reverse();
    let processes = Mutex::new(processes);
    let next = || processes.lock().unwrap().pop().unwrap();
    replay_scenario::replay_while_serving(next, fresh, 200, 64).await;
}
