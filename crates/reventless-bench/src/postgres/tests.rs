//! The `--postgres` measurements on a throwaway cluster: what they count is
//! what the database holds (commands, rows, ids registered once), and the
//! race's bookkeeping names duplicates and races without a winner.
use std::time::Duration;

use reventless::core::Runtime;
use reventless_postgres::testing::shared_cluster;
use reventless_postgres::{PgDatabase, PgOptions};

use super::*;

async fn database() -> (String, PgDatabase) {
    let url = shared_cluster().fresh_database().unwrap();
    let db = PgDatabase::connect(&url, PgOptions { pool_size: 8 }).await.unwrap();
    (url, db)
}

async fn count(url: &str, sql: &str) -> i64 {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.query_one(sql, &[]).await.unwrap().get(0)
}

#[test]
fn races_are_shared_out_without_gaps_or_overlaps() {
    assert_eq!(shares(10, 3), vec![0..4, 4..8, 8..10]);
    assert_eq!(shares(2, 8), vec![0..1, 1..2]);
    assert_eq!(shares(5, 1), vec![0..5]);
    assert!(shares(0, 4).is_empty());
}

#[test]
fn a_race_won_twice_or_never_is_counted() {
    let result = RaceResult::from_winners(&[1, 2, 0, 1], 8, Duration::from_secs(1), 1, 3);
    assert_eq!((result.races, result.successes, result.rejections), (4, 4, 28));
    assert_eq!((result.races_won_twice, result.races_never_won), (1, 1));
    assert_eq!(result.duplicates(), 1);
    let clean = RaceResult::from_winners(&[1, 1], 8, Duration::from_secs(1), 0, 0);
    assert_eq!((clean.duplicates(), clean.races_never_won, clean.rejections), (0, 0, 14));
    // Ids stored twice count even when every client saw a single success.
    assert_eq!(RaceResult::from_winners(&[1], 8, Duration::from_secs(1), 1, 0).duplicates(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_distinct_ids_are_each_registered_once_and_counted() {
    let (url, db) = database().await;
    let runtime = Runtime::start(ours::stores(&db).await.unwrap(), vec![workload::plugin()]).unwrap();
    let measured = ours::distinct(&runtime, "t", 4, Duration::from_millis(300), true).await.unwrap();
    assert!(measured.commands > 0 && measured.ops_per_sec > 0.0);
    assert!(measured.p50_us <= measured.p99_us);
    // Settled: the read model holds a row per command when the clock stops.
    let rows = count(&url, "SELECT count(*) FROM query_row WHERE tbl LIKE '%Registration%'").await;
    assert_eq!(rows as u64, measured.commands);
    let stored = runtime.stores().events.read_all("Bench", 0, 1_000_000).await.unwrap();
    assert_eq!(stored.len() as u64, measured.commands);
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_same_id_race_has_one_winner_per_id() {
    let (_url, db) = database().await;
    let runtime = Runtime::start(ours::stores(&db).await.unwrap(), vec![workload::plugin_without_views()]).unwrap();
    let result = ours::race(&runtime, "race", 8, 24, 3).await.unwrap();
    assert_eq!((result.races, result.successes, result.rejections), (24, 24, 24 * 7));
    assert_eq!((result.duplicates(), result.races_never_won), (0, 0));
    // A fresh id after the race still registers: the race ids were the only ones taken.
    let again = ours::race(&runtime, "race", 8, 1, 1).await.unwrap();
    assert_eq!((again.successes, again.rejections), (0, 8), "ids of the first race are registered already");
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_inserts_count_the_rows_they_wrote() {
    let (url, _db) = database().await;
    raw::prepare(&url).await.unwrap();
    let measured = raw::single_inserts(&url, 3, Duration::from_millis(200)).await.unwrap();
    assert!(measured.commands > 0);
    let rows = count(&url, "SELECT count(*) FROM bench_raw.raw_event").await;
    assert_eq!(rows as u64, measured.commands);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_read_from_the_server() {
    let (url, _db) = database().await;
    let options = Options { target: url.clone(), quick: true, json: false, peers_bin: None, pool_size: 8 };
    let settings = report::Settings::read(&url, &options, true, 91, Duration::from_millis(10), 10, 8).await.unwrap();
    // The throwaway cluster is durable: what is measured on it is what a durable server does.
    assert_eq!((settings.fsync.as_str(), settings.synchronous_commit.as_str()), ("on", "on"));
    assert!(settings.server_version.starts_with(char::is_numeric), "{}", settings.server_version);
    assert!(settings.server.starts_with("127.0.0.1:"), "{}", settings.server);
}

#[test]
fn a_missing_peers_binary_is_refused_by_name() {
    let error =
        peers::Peers::prepare(Some("/nonexistent/reventless-bench-peers".into()), "postgres://x", 4).err().unwrap();
    assert!(error.contains("/nonexistent/reventless-bench-peers"), "{error}");
}
