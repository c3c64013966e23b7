//! The event explorer's JSON API through the dev server: events newest first
//! and filtered, read models with their lag, automation items and the
//! Admin-only retry of an exhausted one, and 400s for bad parameters.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reventless_core::{CommandRequest, FollowerKind, Plugin, Runtime};
use reventless_spec::{Action, Aggregate, Command, Event, EventEnvelope, ReadModel};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all_fields = "camelCase")]
enum AccountCommand {
    Open { owner: String },
    Deposit { amount: u64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

#[derive(Debug, Serialize)]
enum AccountError {
    AlreadyOpen,
    NotOpen,
}

struct Account;

impl Aggregate for Account {
    const NAME: &'static str = "Account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type State = bool;
    type Error = AccountError;

    fn decide(_: &str, open: &bool, command: &AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        match command {
            AccountCommand::Open { .. } if *open => Err(AccountError::AlreadyOpen),
            AccountCommand::Open { owner } => Ok(vec![AccountEvent::Opened { owner: owner.clone() }]),
            _ if !*open => Err(AccountError::NotOpen),
            AccountCommand::Deposit { amount } => Ok(vec![AccountEvent::Deposited { amount: *amount }]),
        }
    }

    fn evolve(open: bool, event: &AccountEvent) -> bool {
        open || matches!(event, AccountEvent::Opened { .. })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
struct BalanceRow {
    owner: String,
    balance: u64,
}

struct Balances;

impl ReadModel for Balances {
    const NAME: &'static str = "Balance";
    const PLURAL: &'static str = "Balances";
    const CONSUMES: &'static [&'static str] = &["Opened", "Deposited"];
    type Event = AccountEvent;
    type Row = BalanceRow;

    fn project(event: &AccountEvent, envelope: &EventEnvelope) -> Vec<Action<BalanceRow>> {
        let Some(stream) = &envelope.stream else { return vec![] };
        let id = stream.id.clone();
        vec![match event {
            AccountEvent::Opened { owner } => Action::set(id, BalanceRow { owner: owner.clone(), balance: 0 }),
            AccountEvent::Deposited { amount } => {
                let amount = *amount;
                Action::update(id, move |row: &mut BalanceRow| row.balance += amount)
            }
        }]
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
struct Bonus {
    owner: String,
}

/// Whether the bonus service answers: off, every attempt fails.
static BONUS_SERVICE_UP: AtomicBool = AtomicBool::new(false);

/// A welcome bonus of 10 per new account, with no retries: one failed
/// attempt exhausts the item. The deposit resolves it.
struct FlakyBonus;

impl reventless_spec::AutomationSlice for FlakyBonus {
    const NAME: &'static str = "FlakyBonus";
    const CONSUMES: &'static [&'static str] = &["Opened", "Deposited"];
    const MAX_RETRIES: u32 = 0;
    type Event = AccountEvent;
    type Item = Bonus;

    fn collect(event: &AccountEvent, envelope: &EventEnvelope) -> Option<(String, Bonus)> {
        match (event, &envelope.stream) {
            (AccountEvent::Opened { owner }, Some(stream)) => Some((stream.id.clone(), Bonus { owner: owner.clone() })),
            _ => None,
        }
    }

    fn resolve(event: &AccountEvent, envelope: &EventEnvelope) -> Option<String> {
        matches!(event, AccountEvent::Deposited { .. }).then(|| envelope.stream.as_ref().map(|s| s.id.clone()))?
    }

    fn process(id: &str, _: &Bonus) -> Vec<reventless_spec::Dispatch> {
        if !BONUS_SERVICE_UP.load(Ordering::SeqCst) {
            // A command nobody answers: the attempt fails.
            return vec![reventless_spec::Dispatch {
                command: "Account_Unknown".into(),
                entity_id: Some(id.into()),
                input: json!({}),
            }];
        }
        reventless_spec::Dispatch::aggregate::<Account>(id, &AccountCommand::Deposit { amount: 10 })
            .into_iter()
            .collect()
    }
}

fn bank() -> Plugin {
    Plugin::new("Bank").aggregate::<Account>().read_model::<Balances>()
}

async fn run(runtime: &Runtime, command: &str, id: &str, input: Value) {
    let outcome = runtime.execute(CommandRequest::new("Bank", command, input).entity(id)).await.unwrap();
    assert!(matches!(outcome, reventless_core::CommandOutcome::Accepted { .. }), "{outcome:?}");
}

/// The dev server's routes (GraphQL and explorer) on a loopback port.
async fn serve(runtime: &Runtime) -> SocketAddr {
    let schema = reventless_graphql::build_schema(runtime).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let served =
        reventless_local::server::serve(runtime.clone(), schema, Default::default(), listener, std::future::pending());
    tokio::spawn(served);
    address
}

/// One HTTP/1.1 request (the connection closes after it); the status and the JSON body.
async fn call(address: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 0\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8(response).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string()));
    (status, body)
}

async fn get(address: SocketAddr, path: &str) -> Value {
    let (status, body) = call(address, "GET", path, &[]).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

fn positions(page: &Value) -> Vec<u64> {
    page["events"].as_array().unwrap().iter().map(|e| e["position"].as_u64().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_come_newest_first_filtered_by_type_tag_and_entity_in_memory() {
    events_newest_first_filtered(reventless_local::start_in_memory(vec![bank()]).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_come_newest_first_filtered_by_type_tag_and_entity_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let options = reventless_local::sqlite::SqliteOptions::default();
    let (runtime, _db) =
        reventless_local::start_sqlite(dir.path().join("app.db"), options, vec![bank()]).await.unwrap();
    events_newest_first_filtered(runtime).await;
}

async fn events_newest_first_filtered(runtime: Runtime) {
    run(&runtime, "Account_Open", "a1", json!({"owner": "ann"})).await;
    run(&runtime, "Account_Open", "a2", json!({"owner": "bob"})).await;
    run(&runtime, "Account_Deposit", "a1", json!({"amount": 5})).await;
    run(&runtime, "Account_Deposit", "a1", json!({"amount": 7})).await;
    let server = serve(&runtime).await;

    let all = get(server, "/explorer/api/events?log=Bank").await;
    assert_eq!((all["log"].clone(), all["head"].clone()), (json!("Bank"), json!(4)));
    assert_eq!(positions(&all), vec![4, 3, 2, 1]);
    let newest = &all["events"][0];
    assert_eq!(newest["type"], "Deposited");
    assert_eq!(newest["data"], json!({"amount": 7}), "the payload");
    assert_eq!(newest["stream"], json!({"id": "a1", "version": 3}));
    assert_eq!(newest["meta"]["service"], "Bank", "the metadata: {newest}");
    assert!(newest["meta"]["correlationId"].is_string(), "{newest}");
    let tag = all["events"][3]["tags"][0].as_str().unwrap().to_string();
    assert!(tag.ends_with(":a1"), "an aggregate's event carries its entity tag: {tag}");

    let first = get(server, "/explorer/api/events?log=Bank&limit=3").await;
    assert_eq!((positions(&first), first["nextBefore"].clone()), (vec![4, 3, 2], json!(2)));
    let rest = get(server, "/explorer/api/events?log=Bank&limit=3&before=2").await;
    assert_eq!((positions(&rest), rest["nextBefore"].clone()), (vec![1], Value::Null));

    let opened = get(server, "/explorer/api/events?type=Opened").await;
    assert_eq!(positions(&opened), vec![2, 1], "the only log is the default");
    let tagged = get(server, &format!("/explorer/api/events?log=Bank&tag={tag}")).await;
    assert_eq!(positions(&tagged), vec![4, 3, 1]);
    let entity = get(server, "/explorer/api/events?log=Bank&entity=a2").await;
    assert_eq!(positions(&entity), vec![2]);
    let both = get(server, "/explorer/api/events?log=Bank&entity=a1&type=Deposited,Withdrawn&limit=1").await;
    assert_eq!((positions(&both), both["nextBefore"].clone()), (vec![4], json!(4)));

    let plugins = get(server, "/explorer/api/plugins").await;
    assert_eq!(plugins[0]["plugin"], "Bank");
    let kinds: Vec<&str> =
        plugins[0]["components"].as_array().unwrap().iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["Aggregate", "ReadModel"]);
    let (status, page) = call(server, "GET", "/explorer", &[]).await;
    assert_eq!(status, 200);
    assert!(page.as_str().unwrap().contains("/explorer/app.js"), "the page loads its script: {page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_query_parameters_are_400_with_a_json_error() {
    let runtime = reventless_local::start_in_memory(vec![bank().automation::<FlakyBonus>()]).unwrap();
    let server = serve(&runtime).await;
    for path in [
        "/explorer/api/events?limit=0",
        "/explorer/api/events?limit=501",
        "/explorer/api/events?limit=ten",
        "/explorer/api/events?before=-1",
        "/explorer/api/events?tag=novalue",
        "/explorer/api/events?typo=Opened",
        "/explorer/api/read-models/Bank_Balances/rows?first=0",
        "/explorer/api/read-models/Bank_Balances/rows?after=not-a-cursor",
        "/explorer/api/read-models/Bank_Balances/rows?status=FAILED",
        "/explorer/api/automations/Bank_FlakyBonusTodos/items?status=BOGUS",
    ] {
        let (status, body) = call(server, "GET", path, &[]).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{path}: a JSON error, not {body}");
    }
    for path in [
        "/explorer/api/events?log=Nope",
        "/explorer/api/read-models/Nope/rows",
        "/explorer/api/automations/Bank_Balances/items",
        "/explorer/api/nothing/here",
    ] {
        let (status, body) = call(server, "GET", path, &[]).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(body["error"].is_string(), "{path}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_models_show_their_rows_and_checkpoint_against_the_log_head() {
    // On demand: nothing projects until caught up, so the lag shows.
    let stores = reventless_local::memory_stores();
    let runtime = Runtime::on_demand(stores, vec![bank()], Default::default(), Default::default()).unwrap();
    run(&runtime, "Account_Open", "a1", json!({"owner": "ann"})).await;
    run(&runtime, "Account_Deposit", "a1", json!({"amount": 5})).await;
    let router = reventless_local::explorer::router(runtime.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let behind = get(server, "/explorer/api/read-models").await;
    let balances = behind.as_array().unwrap().iter().find(|m| m["table"] == "Bank_Balances").unwrap().clone();
    assert_eq!(balances["kind"], "ReadModel");
    assert_eq!(balances["lag"], 2, "{balances}");
    assert_eq!(
        balances["checkpoints"],
        json!([{"name": "Bank_Balances@Bank", "log": "Bank", "position": 0, "head": 2, "lag": 2}])
    );
    let rows = get(server, "/explorer/api/read-models/Bank_Balances/rows").await;
    assert_eq!(rows["totalCount"], 0);

    assert!(runtime.catch_up(&["Bank".to_string()], &[FollowerKind::Projection], &[]).await.is_empty());
    let caught_up = get(server, "/explorer/api/read-models").await;
    assert_eq!(caught_up[0]["checkpoints"][0]["position"], 2);
    assert_eq!(caught_up[0]["lag"], 0);
    let rows = get(server, "/explorer/api/read-models/Bank_Balances/rows?first=1").await;
    assert_eq!(rows["rows"], json!([{"id": "a1", "row": {"owner": "ann", "balance": 5}}]));
    assert_eq!((rows["totalCount"].clone(), rows["hasNextPage"].clone()), (json!(1), json!(false)));
}

async fn item(server: SocketAddr, id: &str) -> Value {
    let page = get(server, "/explorer/api/automations/Bank_FlakyBonusTodos/items").await;
    page["rows"].as_array().unwrap().iter().find(|r| r["id"] == id).map(|r| r["row"].clone()).unwrap_or(Value::Null)
}

async fn eventually(server: SocketAddr, id: &str, status: &str) -> Value {
    let started = Instant::now();
    loop {
        let row = item(server, id).await;
        if row["status"] == status {
            return row;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "item {id} never became {status}: {row}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_item_is_retried_by_an_admin_only() {
    let runtime = reventless_local::start_in_memory(vec![bank().automation::<FlakyBonus>()]).unwrap();
    let server = serve(&runtime).await;
    run(&runtime, "Account_Open", "f1", json!({"owner": "fay"})).await;
    let exhausted = eventually(server, "f1", "EXHAUSTED").await;
    assert!(exhausted["lastError"].as_str().unwrap().contains("Account_Unknown"), "{exhausted}");
    let listed = get(server, "/explorer/api/automations").await;
    assert_eq!(listed[0]["name"], "FlakyBonus");
    assert_eq!(listed[0]["counts"]["EXHAUSTED"], 1, "{listed}");
    let only = get(server, "/explorer/api/automations/Bank_FlakyBonusTodos/items?status=EXHAUSTED").await;
    assert_eq!(only["totalCount"], 1);

    BONUS_SERVICE_UP.store(true, Ordering::SeqCst);
    let retry = "/explorer/api/automations/Bank_FlakyBonusTodos/items/f1/retry";
    for headers in [vec![], vec![("x-user-id", "ann"), ("x-user-roles", "Clerk, Auditor")]] {
        let (status, body) = call(server, "POST", retry, &headers).await;
        assert_eq!(status, 403, "{headers:?}: {body}");
        assert!(body["error"].as_str().unwrap().contains("Admin"), "{body}");
    }
    // The handler writes before it answers: a retry let through would show as PENDING now.
    assert_eq!(item(server, "f1").await["status"], "EXHAUSTED", "a refused retry changes nothing");

    let admin = [("x-user-id", "ann"), ("x-user-roles", "Clerk,Admin")];
    let (status, body) = call(server, "POST", retry, &admin).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["row"]["status"].clone(), body["row"]["retryCount"].clone()), (json!("PENDING"), json!(0)));
    eventually(server, "f1", "COMPLETED").await;
    runtime.wait_for_projections().await.unwrap();
    let balance = runtime.stores().queries.get("Bank_Balances", "f1").await.unwrap().unwrap();
    assert_eq!(balance["balance"], 10, "the retried item sent its deposit once");

    let (status, body) = call(server, "POST", retry, &admin).await;
    assert_eq!(status, 409, "a completed item is not retried: {body}");
    let (status, _) =
        call(server, "POST", "/explorer/api/automations/Bank_FlakyBonusTodos/items/nobody/retry", &admin).await;
    assert_eq!(status, 404);
    let (status, _) = call(server, "GET", retry, &admin).await;
    assert_eq!(status, 405, "a retry is a POST");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_read_model_shows_its_error_and_its_lag() {
    let runtime = reventless_local::start_in_memory(vec![bank()]).unwrap();
    let server = serve(&runtime).await;
    run(&runtime, "Account_Open", "a1", json!({"owner": "ann"})).await;
    runtime.wait_for_projections().await.unwrap();
    // A row the projection cannot read: its next update fails, again and again.
    runtime.stores().queries.put("Bank_Balances", "a1", json!({"owner": 5})).await.unwrap();
    run(&runtime, "Account_Deposit", "a1", json!({"amount": 5})).await;
    let started = Instant::now();
    let checkpoint = loop {
        let models = get(server, "/explorer/api/read-models").await;
        let checkpoint = models[0]["checkpoints"][0].clone();
        if checkpoint["error"].is_string() {
            break checkpoint;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "no error shown: {models}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((checkpoint["position"].clone(), checkpoint["lag"].clone()), (json!(1), json!(1)), "{checkpoint}");
    assert!(checkpoint["error"].as_str().unwrap().contains("a1"), "the error names the row: {checkpoint}");
}
