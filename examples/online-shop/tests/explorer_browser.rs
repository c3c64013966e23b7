//! The event explorer as a person sees it: headless Chromium opens
//! `/explorer` on a running dev server; a GraphQL mutation's event and the
//! row it projected show; an exhausted automation item is retried with the
//! page's button, refused without the Admin role. Screenshots are kept at
//! `target/browser/explorer-*.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver`; `scripts/test` installs them.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
mod webdriver;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use online_shop::catalog;
use reventless::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use webdriver::Driver;

/// The dev server's routes over `runtime` on a loopback port; its base URL.
async fn serve(runtime: &reventless::Runtime) -> String {
    let schema = reventless::graphql::build_schema(runtime).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = format!("http://{}", listener.local_addr().unwrap());
    let served =
        reventless::local::server::serve(runtime.clone(), schema, Default::default(), listener, std::future::pending());
    tokio::spawn(served);
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_shows_a_commands_event_and_a_row() {
    let runtime = reventless::local::start_in_memory(vec![catalog::standalone()]).unwrap();
    let server = serve(&runtime).await;
    let mutation = r#"mutation { Catalog_AddCategory(categoryId: "books", name: "Books") { status } }"#;
    let answer: Value = reqwest::Client::new()
        .post(format!("{server}/graphql"))
        .header("x-user-id", "merch")
        .header("x-user-roles", "Merchandiser")
        .json(&json!({"query": mutation}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["data"]["Catalog_AddCategory"]["status"], "ACCEPTED", "{answer}");
    runtime.wait_for_projections().await.unwrap();

    let driver = Driver::start().await;
    driver.call(reqwest::Method::POST, "/url", json!({"url": format!("{server}/explorer#events")})).await;
    let event = driver
        .wait_for(
            "the command's event",
            "const e = [...document.querySelectorAll('#event-list .event')] \
               .find(e => e.querySelector('.type').textContent === 'CategoryAdded'); \
             if (!e) return ''; e.open = true; return e.innerText;",
        )
        .await;
    let event = event.as_str().unwrap();
    assert!(event.contains("category:books"), "its tag: {event}");
    assert!(event.contains("\"name\": \"Books\""), "its payload: {event}");
    assert!(event.contains("\"service\": \"Catalog\""), "its metadata: {event}");
    driver.screenshot("explorer-events.png").await;

    driver.script("document.querySelector('nav button[data-tab=\"read-models\"]').click();", json!([])).await;
    driver
        .wait_for(
            "the read models",
            "const r = document.querySelector('#read-model-list tr[data-table=\"Catalog_Categories\"]'); \
             if (!r) return false; r.click(); return true;",
        )
        .await;
    let row = driver
        .wait_for(
            "the category row",
            "const r = document.querySelector('#rows .row[data-id=\"books\"]'); return r ? r.innerText : '';",
        )
        .await;
    assert!(row.as_str().unwrap().contains("\"name\": \"Books\""), "{row}");
    let lags = driver
        .script(
            "return [...document.querySelectorAll('#read-model-list tbody td:last-child')].map(td => td.textContent);",
            json!([]),
        )
        .await;
    assert_eq!(lags, json!(["0", "0", "0", "0"]), "every read model caught up with the log");
    driver.screenshot("explorer-read-model.png").await;

    driver.script("document.querySelector('nav button[data-tab=\"plugins\"]').click();", json!([])).await;
    let plugin = driver
        .wait_for(
            "the plugin's components",
            "const p = document.querySelector('#plugins .plugin'); return p ? p.innerText : '';",
        )
        .await;
    let plugin = plugin.as_str().unwrap();
    assert!(plugin.contains("Catalog") && plugin.contains("logs: Catalog"), "{plugin}");
    assert!(
        plugin.contains("StateChangeSlice\tAddCategory\tAddCategory\tCategoryAdded"),
        "a component and its command: {plugin}"
    );
    let _ = driver.call(reqwest::Method::DELETE, "", Value::Null).await;
}

// ---------------------------------------------------------------- retry

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema, Command)]
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
            AccountCommand::Open { owner } => Ok(vec![AccountEvent::Opened { owner: owner.clone() }]),
            AccountCommand::Deposit { .. } if !*open => Err(AccountError::NotOpen),
            AccountCommand::Deposit { amount } => Ok(vec![AccountEvent::Deposited { amount: *amount }]),
        }
    }

    fn evolve(open: bool, event: &AccountEvent) -> bool {
        open || matches!(event, AccountEvent::Opened { .. })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
struct Bonus {
    owner: String,
}

/// Whether the bonus service answers: off, every attempt fails.
static BONUS_SERVICE_UP: AtomicBool = AtomicBool::new(false);

/// A welcome bonus per new account, without retries: one failed attempt
/// exhausts the item; the deposit resolves it.
struct FlakyBonus;

impl AutomationSlice for FlakyBonus {
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

    fn process(id: &str, _: &Bonus) -> Vec<Dispatch> {
        if !BONUS_SERVICE_UP.load(Ordering::SeqCst) {
            // A command nobody answers: the attempt fails.
            return vec![Dispatch { command: "Account_Unknown".into(), entity_id: Some(id.into()), input: json!({}) }];
        }
        Dispatch::aggregate::<Account>(id, &AccountCommand::Deposit { amount: 10 }).into_iter().collect()
    }
}

async fn todo_status(runtime: &reventless::Runtime, id: &str) -> Value {
    let row = runtime.stores().queries.get("Bank_FlakyBonusTodos", id).await.unwrap();
    row.map(|row| row["status"].clone()).unwrap_or(Value::Null)
}

async fn until_status(runtime: &reventless::Runtime, id: &str, status: &str) {
    let started = Instant::now();
    while todo_status(runtime, id).await != status {
        assert!(started.elapsed() < Duration::from_secs(15), "item {id} never became {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_retries_an_exhausted_item_for_an_admin_only() {
    let plugin = Plugin::new("Bank").aggregate::<Account>().automation::<FlakyBonus>();
    let runtime = reventless::local::start_in_memory(vec![plugin]).unwrap();
    let server = serve(&runtime).await;
    let open = CommandRequest::new("Bank", "Account_Open", json!({"owner": "fay"})).entity("f1");
    runtime.execute(open).await.unwrap();
    until_status(&runtime, "f1", "EXHAUSTED").await;
    BONUS_SERVICE_UP.store(true, Ordering::SeqCst);

    let driver = Driver::start().await;
    driver.call(reqwest::Method::POST, "/url", json!({"url": format!("{server}/explorer#automations")})).await;
    driver
        .wait_for(
            "the automation",
            "const r = document.querySelector('#automation-list tr[data-table=\"Bank_FlakyBonusTodos\"]'); \
             if (!r) return false; r.click(); return true;",
        )
        .await;
    let card = "const c = document.querySelector('#items .row[data-id=\"f1\"]'); return c ? c.innerText : '';";
    let shown = driver.wait_for("the exhausted item", card).await;
    assert!(shown.as_str().unwrap().contains("EXHAUSTED"), "{shown}");
    assert!(shown.as_str().unwrap().contains("Account_Unknown"), "its last error: {shown}");
    driver.screenshot("explorer-automations.png").await;

    let click_retry = "document.querySelector('#items .row[data-id=\"f1\"] button.retry').click();";
    driver.script(click_retry, json!([])).await;
    let refused = driver
        .wait_for(
            "the refusal",
            "const s = document.querySelector('#status').textContent; return s.includes('Admin') ? s : '';",
        )
        .await;
    assert!(refused.as_str().unwrap().contains("needs the Admin role"), "{refused}");
    assert_eq!(todo_status(&runtime, "f1").await, "EXHAUSTED", "without Admin nothing changed");

    let as_admin =
        "const i = document.querySelector('#roles'); i.value = 'Admin'; i.dispatchEvent(new Event('change'));";
    driver.script(as_admin, json!([])).await;
    driver.script(click_retry, json!([])).await;
    until_status(&runtime, "f1", "COMPLETED").await;
    let balance = runtime
        .stores()
        .events
        .read_stream("Bank", reventless::core::store::StreamRef { aggregate: "Account", id: "f1" }, 0)
        .await
        .unwrap();
    assert_eq!(balance.last().unwrap().event_type, "Deposited", "the retried item sent its command");
    // The page shows it too once reloaded.
    driver
        .wait_for(
            "the completed item",
            "document.querySelector('#automation-list tr[data-table=\"Bank_FlakyBonusTodos\"]').click(); \
             const c = document.querySelector('#items .row[data-id=\"f1\"]'); \
             return !!c && c.innerText.includes('COMPLETED') && !c.querySelector('button.retry');",
        )
        .await;
    let _ = driver.call(reqwest::Method::DELETE, "", Value::Null).await;
}
