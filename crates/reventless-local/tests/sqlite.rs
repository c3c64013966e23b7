//! What SQLite adds beyond the contract: files that outlive the process,
//! schema versions, corrupt rows, indexes.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::path::PathBuf;

use reventless_core::StoreError;
use reventless_core::store::{Filter, ListRequest, QueryStore};
use reventless_local::query_store::sqlite::SqliteQueryStore;
use reventless_local::sqlite::{OpenError, SCHEMA_VERSION, SqliteDatabase, SqliteOptions, Synchronous};
use reventless_spec::{NewEvent, Query};
use serde_json::json;

fn db_path(name: &str) -> PathBuf {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap().keep().join(name)
}

fn open(path: &PathBuf) -> SqliteDatabase {
    SqliteDatabase::open(path, SqliteOptions { synchronous: Synchronous::Full }).unwrap()
}

#[tokio::test]
async fn data_survives_closing_and_reopening() {
    let path = db_path("reopen.db");
    {
        let stores = reventless_local::sqlite_stores(&open(&path));
        stores
            .dcb
            .append("log", vec![NewEvent::new("A", vec!["x:1".parse().unwrap()], json!({"n": 1}))], None)
            .await
            .unwrap();
        stores.aggregates.append("agg", "s", 0, vec![NewEvent::new("B", vec![], json!({}))]).await.unwrap();
        stores.queries.put("t", "r", json!({"v": 1})).await.unwrap();
    }
    let stores = reventless_local::sqlite_stores(&open(&path));
    let events = stores.dcb.read("log", &Query::all(), None, None).await.unwrap();
    assert_eq!(events[0].data, json!({"n": 1}));
    assert_eq!(events[0].tags[0].to_string(), "x:1");
    assert_eq!(stores.aggregates.head("agg").await.unwrap(), 1);
    assert_eq!(stores.queries.get("t", "r").await.unwrap(), Some(json!({"v": 1})));
    let next = stores.dcb.append("log", vec![NewEvent::new("A", vec![], json!({}))], None).await.unwrap();
    assert_eq!(next.first_position, 2, "positions continue after a reopen");
}

#[tokio::test]
async fn a_file_from_a_newer_version_is_refused() {
    let path = db_path("newer.db");
    drop(open(&path));
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute("UPDATE reventless_schema SET version = ?1", [SCHEMA_VERSION + 1]).unwrap();
    drop(raw);
    match SqliteDatabase::open(&path, SqliteOptions::default()) {
        Err(OpenError::NewerSchema { found, supported, .. }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION))
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    let message = SqliteDatabase::open(&path, SqliteOptions::default()).unwrap_err().to_string();
    assert!(message.contains("newer reventless"), "{message}");
}

#[tokio::test]
async fn corrupt_rows_are_typed_errors() {
    let path = db_path("corrupt.db");
    let stores = reventless_local::sqlite_stores(&open(&path));
    stores.dcb.append("log", vec![NewEvent::new("A", vec![], json!({}))], None).await.unwrap();
    stores.aggregates.append("agg", "s", 0, vec![NewEvent::new("B", vec![], json!({}))]).await.unwrap();
    stores.queries.put("t", "r", json!({"v": 1})).await.unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(
        "UPDATE dcb_event SET data = '{not json'; UPDATE aggregate_event SET tags = '[\"no-colon\"]'; \
         UPDATE query_row SET data = 'garbage';",
    )
    .unwrap();
    let dcb = stores.dcb.read("log", &Query::all(), None, None).await;
    assert!(matches!(&dcb, Err(StoreError::Corrupt { location, .. }) if location.contains("log#1")), "{dcb:?}");
    let aggregate = stores.aggregates.read_stream("agg", "s", 0).await;
    assert!(matches!(aggregate, Err(StoreError::Corrupt { .. })), "{aggregate:?}");
    let row = stores.queries.get("t", "r").await;
    assert!(matches!(&row, Err(StoreError::Corrupt { location, .. }) if location.contains("t/r")), "{row:?}");
}

#[tokio::test]
async fn declared_index_fields_are_used_by_listings() {
    let path = db_path("indexes.db");
    let db = open(&path);
    let store = SqliteQueryStore::new(db.clone());
    store.create_indexes(vec!["categoryId".into()]).await.unwrap();
    store.put("Products", "p1", json!({"categoryId": "books"})).await.unwrap();
    let page = store
        .list("Products", &ListRequest { filters: vec![Filter::eq("categoryId", "books")], ..Default::default() })
        .await
        .unwrap();
    assert_eq!(page.total_count, 1);
    let bad = store.create_indexes(vec!["x'); DROP TABLE query_row; --".into()]).await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))));
    let bad_filter =
        store.list("Products", &ListRequest { filters: vec![Filter::eq("a.b", 1)], ..Default::default() }).await;
    assert!(matches!(bad_filter, Err(StoreError::Invalid(_))));

    let raw = rusqlite::Connection::open(&path).unwrap();
    let plan: Vec<String> = raw
        .prepare("EXPLAIN QUERY PLAN SELECT id FROM query_row WHERE tbl = 'Products' AND json_extract(data, '$.categoryId') = 'books'")
        .unwrap()
        .query_map([], |row| row.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(plan.iter().any(|step| step.contains("query_row_by_categoryId")), "{plan:?}");
}

#[tokio::test]
async fn an_unwritable_location_is_a_clear_error() {
    let blocker = db_path("file-not-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let error = SqliteDatabase::open(blocker.join("db.sqlite"), SqliteOptions::default()).unwrap_err();
    assert!(matches!(error, OpenError::Directory { .. }), "{error:?}");
}
