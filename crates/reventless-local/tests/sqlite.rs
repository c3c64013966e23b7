//! What SQLite adds beyond the contract: files that outlive the process,
//! schema versions, corrupt rows, indexes.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::path::PathBuf;

use reventless_core::StoreError;
use reventless_core::store::{Filter, ListRequest, QueryStore, StreamRef};
use reventless_local::query_store::sqlite::SqliteQueryStore;
use reventless_local::sqlite::{OpenError, SCHEMA_VERSION, SqliteDatabase, SqliteOptions, Synchronous};
use reventless_spec::{NewEvent, Query};
use serde_json::json;

const STREAM: StreamRef<'static> = StreamRef { aggregate: "Account", id: "s" };

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
            .events
            .append("log", vec![NewEvent::new("A", vec!["x:1".parse().unwrap()], json!({"n": 1}))], None)
            .await
            .unwrap();
        stores.events.append_to_stream("agg", STREAM, 0, vec![NewEvent::new("B", vec![], json!({}))]).await.unwrap();
        stores.queries.put("t", "r", json!({"v": 1})).await.unwrap();
    }
    let stores = reventless_local::sqlite_stores(&open(&path));
    let events = stores.events.read("log", &Query::all(), None, None).await.unwrap();
    assert_eq!(events[0].data, json!({"n": 1}));
    assert_eq!(events[0].tags[0].to_string(), "x:1");
    assert_eq!(stores.events.head("agg").await.unwrap(), 1);
    assert_eq!(stores.events.read_stream("agg", STREAM, 0).await.unwrap().len(), 1);
    assert_eq!(stores.queries.get("t", "r").await.unwrap(), Some(json!({"v": 1})));
    let next = stores.events.append("log", vec![NewEvent::new("A", vec![], json!({}))], None).await.unwrap();
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
    stores.events.append("log", vec![NewEvent::new("A", vec![], json!({}))], None).await.unwrap();
    stores.events.append_to_stream("agg", STREAM, 0, vec![NewEvent::new("B", vec![], json!({}))]).await.unwrap();
    stores.queries.put("t", "r", json!({"v": 1})).await.unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(
        "UPDATE event SET data = '{not json' WHERE log = 'log'; UPDATE event SET tags = '[\"no-colon\"]' WHERE log = 'agg'; \
         UPDATE query_row SET data = 'garbage';",
    )
    .unwrap();
    let dcb = stores.events.read("log", &Query::all(), None, None).await;
    assert!(matches!(&dcb, Err(StoreError::Corrupt { location, .. }) if location.contains("log#1")), "{dcb:?}");
    let aggregate = stores.events.read_stream("agg", STREAM, 0).await;
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

/// The layout before schema 2, as a file of that build holds it: a log per
/// aggregate (`Library_Member`) beside the plugin's DCB log (`Library`).
const SCHEMA_1: &str = r#"
CREATE TABLE reventless_schema (version INTEGER NOT NULL);
INSERT INTO reventless_schema (version) VALUES (1);
CREATE TABLE aggregate_event (log TEXT NOT NULL, position INTEGER NOT NULL, stream_id TEXT NOT NULL,
    version INTEGER NOT NULL, event_id TEXT NOT NULL, type TEXT NOT NULL, tags TEXT NOT NULL, data TEXT NOT NULL,
    meta TEXT NOT NULL, recorded_at INTEGER NOT NULL, PRIMARY KEY (log, position)) WITHOUT ROWID;
CREATE UNIQUE INDEX aggregate_event_stream ON aggregate_event (log, stream_id, version);
CREATE TABLE dcb_event (log TEXT NOT NULL, position INTEGER NOT NULL, event_id TEXT NOT NULL, type TEXT NOT NULL,
    tags TEXT NOT NULL, data TEXT NOT NULL, meta TEXT NOT NULL, recorded_at INTEGER NOT NULL,
    PRIMARY KEY (log, position)) WITHOUT ROWID;
CREATE INDEX dcb_event_type ON dcb_event (log, type, position);
CREATE TABLE dcb_tag (log TEXT NOT NULL, tag TEXT NOT NULL, position INTEGER NOT NULL, type TEXT NOT NULL,
    PRIMARY KEY (log, tag, position)) WITHOUT ROWID;
CREATE TABLE query_row (tbl TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (tbl, id)) WITHOUT ROWID;
CREATE TABLE checkpoint (name TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID;

INSERT INTO aggregate_event VALUES
 ('Library_Member', 1, 'm1', 1, '0190a0a0-0000-7000-8000-000000000001', 'MemberRegistered', '[]', '{"name":"Ann"}', '{}', 100),
 ('Library_Member', 2, 'm2', 1, '0190a0a0-0000-7000-8000-000000000002', 'MemberRegistered', '[]', '{"name":"Bob"}', '{}', 300),
 ('Library_Member', 3, 'm1', 2, '0190a0a0-0000-7000-8000-000000000003', 'MemberSuspended', '["member:m1"]', '{}', '{}', 500);
INSERT INTO dcb_event VALUES
 ('Library', 1, '0190a0a0-0000-7000-8000-000000000011', 'BookAdded', '["book:b1"]', '{"title":"Dune"}', '{}', 200),
 ('Library', 2, '0190a0a0-0000-7000-8000-000000000012', 'BookLent', '["book:b1","member:m2"]', '{}', '{}', 400);
INSERT INTO dcb_tag VALUES ('Library', 'book:b1', 1, 'BookAdded'), ('Library', 'book:b1', 2, 'BookLent'),
 ('Library', 'member:m2', 2, 'BookLent');
-- Caught up on both logs; lagging on the member log; following only the DCB log.
INSERT INTO checkpoint VALUES ('Library_Members@Library_Member', 3), ('Library_Members@Library', 2),
 ('Library_Loans@Library_Member', 1), ('Library_Loans@Library', 2), ('Library_Books@Library', 1),
 ('Other_Rows@Other', 9);
INSERT INTO query_row VALUES ('Library_Members', 'm1', '{"id":"m1"}');
"#;

#[tokio::test]
async fn a_file_of_the_old_layout_is_upgraded_to_one_log_per_plugin() {
    let path = db_path("schema1.db");
    rusqlite::Connection::open(&path).unwrap().execute_batch(SCHEMA_1).unwrap();
    let db = open(&path);
    let stores = reventless_local::sqlite_stores(&db);
    let events = stores.events.read("Library", &Query::all(), None, None).await.unwrap();
    let order: Vec<(u64, &str)> = events.iter().map(|e| (e.position, e.event_type.as_str())).collect();
    assert_eq!(
        order,
        vec![
            (1, "MemberRegistered"),
            (2, "BookAdded"),
            (3, "MemberRegistered"),
            (4, "BookLent"),
            (5, "MemberSuspended")
        ],
        "both logs merged in recording order"
    );
    // Aggregate events carry their entity tag now, and keep their streams.
    let member = |id| StreamRef { aggregate: "Member", id };
    let m1 = stores.events.read_stream("Library", member("m1"), 0).await.unwrap();
    assert_eq!(m1.iter().map(|e| e.stream.as_ref().unwrap().version).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(m1[0].tags.iter().map(ToString::to_string).collect::<Vec<_>>(), vec!["member:m1"]);
    assert_eq!(m1[1].tags.len(), 1, "an entity tag is not added twice");
    let by_tag =
        reventless_spec::Query::none().item(reventless_spec::QueryItem::new().tags(["member:m2".parse().unwrap()]));
    let m2: Vec<String> =
        stores.events.read("Library", &by_tag, None, None).await.unwrap().into_iter().map(|e| e.event_type).collect();
    assert_eq!(m2, vec!["MemberRegistered", "BookLent"], "a DCB query sees the aggregate's events");
    // A stream continues at its version; the log at its head.
    let next = stores
        .events
        .append_to_stream("Library", member("m2"), 1, vec![NewEvent::new("MemberSuspended", vec![], json!({}))])
        .await
        .unwrap();
    assert_eq!(next.first_position, 6);
    // Checkpoints: the prefix each follower had applied.
    let checkpoint = |name: &'static str| stores.queries.checkpoint(name);
    assert_eq!(checkpoint("Library_Members@Library").await.unwrap(), 5, "caught up: nothing applied twice");
    assert_eq!(checkpoint("Library_Loans@Library").await.unwrap(), 2, "stops before the first unapplied event");
    assert_eq!(
        checkpoint("Library_Books@Library").await.unwrap(),
        3,
        "events of logs it never followed do not hold it back"
    );
    assert_eq!(checkpoint("Library_Members@Library_Member").await.unwrap(), 0, "old checkpoints are gone");
    assert_eq!(checkpoint("Other_Rows@Other").await.unwrap(), 9, "checkpoints of logs without events stay");
    assert_eq!(stores.queries.get("Library_Members", "m1").await.unwrap(), Some(json!({"id": "m1"})));
    drop(stores);
    drop(db);
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT version FROM reventless_schema", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

/// A file of schema 2 (before the command topic moved into the file) gets the
/// topic's tables and keeps its data.
#[tokio::test]
async fn a_file_of_schema_2_is_upgraded_with_the_command_topic() {
    let path = db_path("schema2.db");
    {
        let stores = reventless_local::sqlite_stores(&open(&path));
        stores.queries.put("t", "r", json!({"v": 2})).await.unwrap();
    }
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch("DROP TABLE command_message; DROP TABLE command_dedup; UPDATE reventless_schema SET version = 2")
        .unwrap();
    drop(raw);
    let stores = reventless_local::sqlite_stores(&open(&path));
    assert_eq!(stores.queries.get("t", "r").await.unwrap(), Some(json!({"v": 2})));
    let message = reventless_core::store::CommandMessage { group_id: "g".into(), dedup_id: "d".into(), body: json!(1) };
    stores.commands.send("topic", message.clone()).await.unwrap();
    let wait = std::time::Duration::from_secs(1);
    let delivered = stores.commands.receive("topic", 10, wait, wait).await.unwrap();
    assert_eq!(delivered.iter().map(|d| &d.message).collect::<Vec<_>>(), vec![&message]);
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT version FROM reventless_schema", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}
