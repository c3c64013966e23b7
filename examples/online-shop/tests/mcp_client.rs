//! `/mcp` as an assistant meets it: the official Python MCP client
//! (`tests/mcp/shop_client.py`, package `mcp` from
//! scripts/requirements-test.txt, run by `$REVENTLESS_PYTHON` or `python3`)
//! against the shop's dev server and against a server with a guarded read model.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reventless::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Runs the Python client against `url` as the caller in `headers`.
fn python_client(url: &str, headers: &[&str], asks: Value) -> Value {
    let python = std::env::var("REVENTLESS_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = format!("{}/tests/mcp/shop_client.py", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(&python)
        .arg(&script)
        .arg(url)
        .args(headers)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{python} does not run: {e}"));
    child.stdin.take().unwrap().write_all(asks.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named 'mcp'"),
        "the Python MCP client is missing: {python} -m pip install -r scripts/requirements-test.txt"
    );
    assert!(output.status.success(), "the MCP client failed: {stderr}");
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The dev server, stopped when dropped.
struct DevServer {
    child: Child,
    base: String,
    _data: tempfile::TempDir,
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn dev_server() -> DevServer {
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(env!("CARGO_BIN_EXE_online-shop"))
        .args(["dev", "--data", data.path().to_str().unwrap(), "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = DevServer { child, base: format!("http://127.0.0.1:{port}"), _data: data };
    let started = Instant::now();
    while reqwest::get(format!("{}/health", server.base)).await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "dev server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server
}

async fn graphql(base: &str, query: &str) -> Value {
    let client = reqwest::Client::new();
    let request = client.post(format!("{base}/graphql")).header("x-user-roles", "Admin").json(&json!({"query": query}));
    request.send().await.unwrap().json().await.unwrap()
}

/// Runs the blocking client off the runtime's worker.
async fn client(url: String, headers: &'static [&'static str], asks: Value) -> Value {
    tokio::task::spawn_blocking(move || python_client(&url, headers, asks)).await.unwrap()
}

const MERCHANDISER: &[&str] = &["x-user-id=merch", "x-user-roles=Merchandiser"];
const NOBODY: &[&str] = &["x-user-id=bob"];

#[tokio::test]
async fn the_python_client_lists_calls_and_reads_the_shop_through_the_dev_server() {
    let server = dev_server().await;
    let url = format!("{}/mcp", server.base);

    let asks = json!({
        "list": true,
        "call": {"name": "Catalog_AddCategory", "arguments": {"categoryId": "books", "name": "Books"}},
        "read": "reventless://Catalog/Categories/books",
        // The Categories read model follows the log: wait for the write to show.
        "readWithin": 10,
    });
    let answer = client(url.clone(), MERCHANDISER, asks).await;
    assert_eq!(answer["protocolVersion"], "2025-06-18");
    let add = &answer["tools"]["Catalog_AddCategory"];
    assert_eq!(add["required"], json!(["categoryId", "name"]));
    assert_eq!(add["properties"]["name"]["type"], "string");
    // An aggregate command takes the entity's id beside its fields.
    let register = &answer["tools"]["Ordering_Customer_Register"];
    assert!(register["required"].as_array().unwrap().contains(&json!("id")), "{register}");
    assert!(answer["resources"].as_array().unwrap().contains(&json!("reventless://Catalog/Categories")));
    assert!(answer["templates"].as_array().unwrap().contains(&json!("reventless://Catalog/Categories/{id}")));
    assert_eq!(answer["call"]["isError"], false);
    assert_eq!(answer["call"]["structuredContent"]["status"], "ACCEPTED");
    assert_eq!(answer["call"]["structuredContent"]["entityId"], "books");
    let text = answer["read"]["text"].as_str().unwrap_or_else(|| panic!("the row did not show: {answer}"));
    let row: Value = serde_json::from_str(text).unwrap();
    assert_eq!((row["id"].as_str(), row["name"].as_str()), (Some("books"), Some("Books")));

    // Without the role: refused, and nothing appended.
    let asks = json!({
        "call": {"name": "Catalog_AddCategory", "arguments": {"categoryId": "toys", "name": "Toys"}},
        "read": "reventless://Catalog/Categories/toys",
    });
    let refused = client(url.clone(), NOBODY, asks).await;
    assert_eq!(refused["call"]["isError"], true);
    assert_eq!(refused["call"]["structuredContent"]["status"], "REJECTED");
    assert_eq!(refused["call"]["structuredContent"]["errorCode"], "AccessRefused");
    assert_eq!(refused["read"]["error"]["code"], -32002, "no such row: {refused}");
    let rows = graphql(&server.base, "{ Catalog_Categories { totalCount edges { node { id } } } }").await;
    assert_eq!(rows["data"]["Catalog_Categories"]["totalCount"], 1, "{rows}");

    // A page of the list resource, and a bad argument type.
    let asks = json!({
        "read": "reventless://Catalog/Categories?first=5",
        "call": {"name": "Catalog_AddCategory", "arguments": {"categoryId": 5, "name": "Five"}},
    });
    let answer = client(url, MERCHANDISER, asks).await;
    let page: Value = serde_json::from_str(answer["read"]["text"].as_str().unwrap()).unwrap();
    assert_eq!(page["totalCount"], 1);
    assert_eq!(page["items"][0]["id"], "books");
    assert_eq!(answer["call"]["error"]["code"], -32602, "{answer}");
}

// A plugin whose read model only auditors may read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all_fields = "camelCase")]
enum NoteCommand {
    Write { text: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
enum NoteEvent {
    Written { text: String },
}

struct Note;

impl Aggregate for Note {
    const NAME: &'static str = "Note";
    type Command = NoteCommand;
    type Event = NoteEvent;
    type State = ();
    type Error = String;

    fn decide(_id: &str, _: &(), command: &NoteCommand) -> Result<Vec<NoteEvent>, String> {
        let NoteCommand::Write { text } = command;
        Ok(vec![NoteEvent::Written { text: text.clone() }])
    }

    fn evolve(_: (), _: &NoteEvent) {}
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
struct NoteRow {
    text: String,
}

struct AuditedNotes;

impl ReadModel for AuditedNotes {
    const NAME: &'static str = "AuditedNote";
    const PLURAL: &'static str = "AuditedNotes";
    const CONSUMES: &'static [&'static str] = &["Written"];
    const ROLES: &'static [&'static str] = &["auditor"];
    type Event = NoteEvent;
    type Row = NoteRow;

    fn project(event: &NoteEvent, envelope: &EventEnvelope) -> Vec<Action<NoteRow>> {
        let id = envelope.stream.as_ref().map(|s| s.id.clone()).unwrap_or_default();
        let NoteEvent::Written { text } = event;
        vec![Action::set(id, NoteRow { text: text.clone() })]
    }
}

#[tokio::test]
async fn a_read_model_the_caller_may_not_read_is_refused() {
    let plugin = Plugin::new("Notes").aggregate::<Note>().read_model::<AuditedNotes>();
    let runtime = reventless::local::start_in_memory(vec![plugin]).unwrap();
    let schema = reventless::graphql::build_schema(&runtime).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(reventless::local::server::serve(
        runtime,
        schema,
        Default::default(),
        listener,
        std::future::pending(),
    ));

    let write = json!({"name": "Notes_Note_Write", "arguments": {"id": "n1", "text": "hello"}});
    let answer = client(url.clone(), &["x-user-roles=auditor"], json!({"call": write})).await;
    assert_eq!(answer["call"]["structuredContent"]["status"], "ACCEPTED", "{answer}");
    let read = json!({"read": "reventless://Notes/AuditedNotes/n1"});
    let after_write = json!({"read": "reventless://Notes/AuditedNotes/n1", "readWithin": 10});
    let allowed = client(url.clone(), &["x-user-roles=auditor"], after_write).await;
    assert_eq!(
        serde_json::from_str::<Value>(allowed["read"]["text"].as_str().unwrap()).unwrap(),
        json!({"text": "hello"})
    );
    let refused = client(url.clone(), NOBODY, read).await;
    assert_eq!(refused["read"]["error"]["code"], -32003, "{refused}");
    assert!(refused["read"]["error"]["message"].as_str().unwrap().contains("AccessRefused"));
    let page = client(url, NOBODY, json!({"read": "reventless://Notes/AuditedNotes"})).await;
    assert_eq!(page["read"]["error"]["code"], -32003, "{page}");
}
