//! Event versioning on the local platform: `BookAdded` rows of older shapes
//! (written raw into the SQLite file as an older build left them, and the
//! same history in memory) are read as today's shape by the aggregate, the
//! DCB slice, the read model and untyped readers; a row of a newer version
//! than the code knows is a typed error, never a panic or a skipped event.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
#[path = "../../reventless-core/tests/upcasting/library.rs"]
mod library;

use std::path::{Path, PathBuf};
use std::time::Duration;

use library::*;
use reventless_core::engine::project_batch;
use reventless_core::store::StreamRef;
use reventless_core::{CommandRequest, EngineError, Runtime, Stores};
use reventless_local::sqlite::SqliteDatabase;
use serde_json::{Value, json};

fn add(id: &str, title: &str, pages: u32) -> CommandRequest {
    CommandRequest::new("Library", "Book_Add", json!({"title": title, "pages": pages})).entity(id)
}

fn lend(id: &str, member: &str) -> CommandRequest {
    CommandRequest::new("Library", "LendBook", json!({"bookId": id, "member": member}))
}

fn new_file() -> PathBuf {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap().keep().join("library.db")
}

/// Overwrites the row of `id`'s first event with `data` and `meta` exactly
/// as text, as the build that wrote it left the SQLite file.
fn write_raw(file: &Path, id: &str, data: &Value, meta: &Value) {
    let connection = rusqlite::Connection::open(file).unwrap();
    let changed = connection
        .execute(
            "UPDATE event SET data = ?1, meta = ?2 WHERE log = 'Library' AND stream_id = ?3 AND version = 1",
            rusqlite::params![data.to_string(), meta.to_string(), id],
        )
        .unwrap();
    assert_eq!(changed, 1);
}

/// Writes `BookAdded` of `version` for `id`; on SQLite its row is then
/// rewritten raw to the very text that version's build stored.
async fn store_old(stores: &Stores, file: Option<&Path>, version: u32, id: &str) {
    append_as_stored(stores, version, id).await;
    if let Some(file) = file {
        let (data, meta) = book_added_as_stored(version, id);
        write_raw(file, id, &data, &meta);
    }
}

async fn row(runtime: &Runtime, id: &str) -> Option<Value> {
    runtime.stores().queries.get("Library_Books", id).await.unwrap()
}

async fn old_shapes_read_as_today(stores: Stores, file: Option<&Path>) {
    store_old(&stores, file, 1, "b1").await;
    store_old(&stores, file, 2, "b2").await;
    let runtime = Runtime::start(stores.clone(), vec![library()]).unwrap();
    // The aggregate folds the v1 event: the book exists.
    let again = runtime.execute(add("b1", "Dune", 1)).await.unwrap();
    assert_eq!(again.error_code(), Some("AlreadyAdded"), "{again:?}");
    // The DCB slice reads the title v1 stored as `name`, v2 as `title`.
    for (id, member) in [("b1", "ann"), ("b2", "bob")] {
        let lent = runtime.execute(lend(id, member)).await.unwrap();
        assert!(lent.is_accepted(), "{id}: {lent:?}");
    }
    assert_eq!(runtime.execute(lend("b1", "cy")).await.unwrap().error_code(), Some("AlreadyLent"));
    assert!(runtime.execute(add("b3", "Neuromancer", 271)).await.unwrap().is_accepted());
    let log = stores.events.read_all("Library", 0, 100).await.unwrap();
    let lent: Vec<&Value> = log.iter().filter(|e| e.event_type == "BookLent").map(|e| &e.data["title"]).collect();
    assert_eq!(lent, vec!["Dune", "Dune"]);
    let b3 = stores.events.read_stream("Library", StreamRef { aggregate: "Book", id: "b3" }, 0).await.unwrap();
    assert_eq!(b3[0].meta.schema_version, 3, "new events are stored with their type's version");
    // The read model projects every version.
    runtime.settle_within(Duration::from_secs(30)).await.unwrap();
    assert_eq!(row(&runtime, "b1").await, Some(json!({"title": "Dune", "pages": 0, "lentTo": "ann"})));
    assert_eq!(row(&runtime, "b2").await, Some(json!({"title": "Dune", "pages": 0, "lentTo": "bob"})));
    assert_eq!(row(&runtime, "b3").await, Some(json!({"title": "Neuromancer", "pages": 271, "lentTo": null})));
    // Untyped readers (the explorer) get the JSON in today's shape.
    let v1 = log.iter().find(|e| e.stream.as_ref().is_some_and(|s| s.id == "b1")).unwrap();
    assert_eq!(v1.data, json!({"book_id": "b1", "name": "Dune"}), "the stored row is left as it was");
    let upcast = runtime.upcast_event("Library", v1).unwrap();
    assert_eq!(upcast.data, json!({"book_id": "b1", "title": "Dune", "pages": 0}));
    assert_eq!(upcast.meta.schema_version, 3);
    // So does the explorer's events API.
    let shown = explorer_events(&runtime, "/explorer/api/events?log=Library&entity=b1").await;
    let added = shown["events"].as_array().unwrap().iter().find(|e| e["type"] == "BookAdded").unwrap();
    assert_eq!(added["data"], json!({"book_id": "b1", "title": "Dune", "pages": 0}), "{shown}");
    tokio::time::timeout(Duration::from_secs(10), runtime.shutdown()).await.unwrap();
}

/// One GET of the dev server's explorer API, served on a loopback port.
async fn explorer_events(runtime: &Runtime, path: &str) -> Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let schema = reventless_graphql::build_schema(runtime).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let served =
        reventless_local::server::serve(runtime.clone(), schema, Default::default(), listener, std::future::pending());
    tokio::spawn(served);
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{body}");
    serde_json::from_str(body).unwrap()
}

fn is_newer(error: &EngineError) -> bool {
    matches!(error, EngineError::NewerEventVersion { event_type, stored: 4, known: 3, .. } if event_type == "BookAdded")
}

async fn a_newer_version_is_refused(stores: Stores, file: Option<&Path>) {
    store_old(&stores, file, 4, "b9").await;
    let runtime = Runtime::start(stores.clone(), vec![library()]).unwrap();
    let decided = runtime.execute(lend("b9", "ann")).await.unwrap_err();
    assert!(is_newer(&decided), "{decided:?}");
    assert!(decided.to_string().contains("stored at version 4, but this build knows versions up to 3"), "{decided}");
    let folded = runtime.execute(add("b9", "Dune", 1)).await.unwrap_err();
    assert!(is_newer(&folded), "{folded:?}");
    let log = stores.events.read_all("Library", 0, 100).await.unwrap();
    let projected = project_batch::<Books>(stores.queries.as_ref(), "Library_Books", &log).await.unwrap_err();
    assert!(is_newer(&projected), "{projected:?}");
    assert!(is_newer(&runtime.upcast_event("Library", &log[0]).unwrap_err()));
    // Nothing was appended or projected on the strength of a misread.
    assert_eq!(stores.events.read_all("Library", 0, 100).await.unwrap().len(), 1);
    assert_eq!(row(&runtime, "b9").await, None);
    tokio::time::timeout(Duration::from_secs(10), runtime.shutdown()).await.unwrap();
}

#[tokio::test]
async fn old_shapes_in_a_sqlite_file_are_read_as_today() {
    let file = new_file();
    let db = SqliteDatabase::open(&file, Default::default()).unwrap();
    old_shapes_read_as_today(reventless_local::sqlite_stores(&db), Some(&file)).await;
}

#[tokio::test]
async fn old_shapes_in_memory_are_read_as_today() {
    old_shapes_read_as_today(reventless_local::memory_stores(), None).await;
}

#[tokio::test]
async fn a_newer_version_in_a_sqlite_file_is_a_typed_error() {
    let file = new_file();
    let db = SqliteDatabase::open(&file, Default::default()).unwrap();
    a_newer_version_is_refused(reventless_local::sqlite_stores(&db), Some(&file)).await;
}

#[tokio::test]
async fn a_newer_version_in_memory_is_a_typed_error() {
    a_newer_version_is_refused(reventless_local::memory_stores(), None).await;
}
