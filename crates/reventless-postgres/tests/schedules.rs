//! Two runtimes on one PostgreSQL database, each with its own pool and
//! lease connection (as processes are): a schedule fires in exactly one of
//! them, each of its times once (the timers on an accelerated clock:
//! `rate(1 minute)` every 100 ms).
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use reventless_core::testing::schedules::two_runtimes_fire_each_time_once;
use reventless_postgres::testing::shared_cluster;
use reventless_postgres::{PgDatabase, PgOptions, postgres_stores};

/// The stores of one process: its own pool and lease connection.
async fn process(url: &str) -> reventless_core::Stores {
    let db = PgDatabase::connect(url, PgOptions { pool_size: 4 }).await.unwrap();
    postgres_stores(&db).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_database_fire_each_time_of_a_schedule_once() {
    let url = shared_cluster().fresh_database().unwrap();
    two_runtimes_fire_each_time_once(process(&url).await, process(&url).await).await;
}
