//! The in-memory platform hosting a plugin with aggregates: dispatch, OCC
//! retries, per-entity ordering, async commands and projections.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use reventless_core::store::{Appended, EventLog, StoreError, StreamRef};
use reventless_core::{CommandOutcome, CommandRequest, EngineError, Plugin, Runtime, Stores};
use reventless_spec::{Action, Aggregate, AppendCondition, Command, Event, EventEnvelope, NewEvent, Query, ReadModel};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all_fields = "camelCase")]
enum AccountCommand {
    Open { owner: String },
    Deposit { amount: u64 },
    Withdraw { amount: u64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
    Withdrawn { amount: u64 },
}

#[derive(Debug, Serialize)]
enum AccountError {
    AlreadyOpen,
    NotOpen,
    InsufficientFunds { balance: u64 },
}

#[derive(Clone, Default)]
struct AccountState {
    open: bool,
    balance: u64,
}

struct Account;

impl Aggregate for Account {
    const NAME: &'static str = "Account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type State = AccountState;
    type Error = AccountError;

    fn decide(_id: &str, state: &AccountState, command: &AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        match command {
            AccountCommand::Open { .. } if state.open => Err(AccountError::AlreadyOpen),
            AccountCommand::Open { owner } => Ok(vec![AccountEvent::Opened { owner: owner.clone() }]),
            _ if !state.open => Err(AccountError::NotOpen),
            AccountCommand::Deposit { amount } => Ok(vec![AccountEvent::Deposited { amount: *amount }]),
            AccountCommand::Withdraw { amount } if *amount > state.balance => {
                Err(AccountError::InsufficientFunds { balance: state.balance })
            }
            AccountCommand::Withdraw { amount } => Ok(vec![AccountEvent::Withdrawn { amount: *amount }]),
        }
    }

    fn evolve(mut state: AccountState, event: &AccountEvent) -> AccountState {
        match event {
            AccountEvent::Opened { .. } => state.open = true,
            AccountEvent::Deposited { amount } => state.balance += amount,
            AccountEvent::Withdrawn { amount } => state.balance -= amount,
        }
        state
    }
}

/// The same account, handled asynchronously through the command topic.
struct AsyncAccount;

impl Aggregate for AsyncAccount {
    const NAME: &'static str = "AsyncAccount";
    const ASYNC: bool = true;
    type Command = AccountCommand;
    type Event = AccountEvent;
    type State = AccountState;
    type Error = AccountError;

    fn decide(_id: &str, state: &AccountState, command: &AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        Account::decide(_id, state, command)
    }

    fn evolve(state: AccountState, event: &AccountEvent) -> AccountState {
        Account::evolve(state, event)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
struct BalanceRow {
    owner: String,
    balance: u64,
    movements: u64,
}

struct Balances;

impl ReadModel for Balances {
    const NAME: &'static str = "Balance";
    const PLURAL: &'static str = "Balances";
    const CONSUMES: &'static [&'static str] = &["Opened", "Deposited", "Withdrawn"];
    type Event = AccountEvent;
    type Row = BalanceRow;

    fn project(event: &AccountEvent, envelope: &EventEnvelope) -> Vec<Action<BalanceRow>> {
        let Some(stream) = &envelope.stream else { return vec![] };
        let id = stream.id.clone();
        vec![match event {
            AccountEvent::Opened { owner } => {
                Action::set(id, BalanceRow { owner: owner.clone(), balance: 0, movements: 0 })
            }
            AccountEvent::Deposited { amount } => {
                let amount = *amount;
                Action::update(id, move |row: &mut BalanceRow| {
                    row.balance += amount;
                    row.movements += 1;
                })
            }
            AccountEvent::Withdrawn { amount } => {
                let amount = *amount;
                Action::update(id, move |row: &mut BalanceRow| {
                    row.balance -= amount;
                    row.movements += 1;
                })
            }
        }]
    }
}

fn bank() -> Plugin {
    Plugin::new("Bank").aggregate::<Account>().aggregate::<AsyncAccount>().read_model::<Balances>()
}

fn request(command: &str, id: &str, input: serde_json::Value) -> CommandRequest {
    CommandRequest::new("Bank", command, input).entity(id)
}

fn account(id: &str) -> StreamRef<'_> {
    StreamRef { aggregate: "Account", id }
}

async fn balance(runtime: &Runtime, id: &str) -> Option<BalanceRow> {
    runtime.wait_for_projections().await.unwrap();
    let row = runtime.stores().queries.get("Bank_Balances", id).await.unwrap()?;
    Some(serde_json::from_value(row).unwrap())
}

#[tokio::test]
async fn commands_append_events_and_projections_follow() {
    let runtime = reventless_local::start_in_memory(vec![bank()]).unwrap();
    let opened = runtime.execute(request("Account_Open", "a1", json!({"owner": "ann"}))).await.unwrap();
    assert_eq!(opened, CommandOutcome::Accepted { entity_id: "a1".into(), event_count: 1, position: Some(1) });
    runtime.execute(request("Account_Deposit", "a1", json!({"amount": 50}))).await.unwrap();
    let refused = runtime.execute(request("Account_Withdraw", "a1", json!({"amount": 80}))).await.unwrap();
    assert_eq!(refused.error_code(), Some("InsufficientFunds"));
    let CommandOutcome::Rejected { error_detail, .. } = &refused else { panic!("{refused:?}") };
    assert_eq!(error_detail, &json!({"balance": 50}));
    assert_eq!(balance(&runtime, "a1").await, Some(BalanceRow { owner: "ann".into(), balance: 50, movements: 1 }));

    let stream = runtime.stores().events.read_stream("Bank", account("a1"), 0).await.unwrap();
    let types: Vec<&str> = stream.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, vec!["Opened", "Deposited"], "a rejection appends nothing");
    assert_eq!(stream[0].meta.service.as_deref(), Some("Bank"));
    assert!(stream[0].meta.causation_id.is_some());
    runtime.shutdown().await;
}

#[tokio::test]
async fn bad_requests_are_typed_errors_and_append_nothing() {
    let runtime = reventless_local::start_in_memory(vec![bank()]).unwrap();
    let wrong_type = runtime.execute(request("Account_Open", "a1", json!({"owner": 42}))).await;
    let Err(EngineError::BadInput { command, message }) = wrong_type else { panic!("{wrong_type:?}") };
    assert_eq!(command, "Account_Open");
    assert!(message.contains("invalid type"), "{message}");
    let missing_field = runtime.execute(request("Account_Deposit", "a1", json!({}))).await;
    assert!(matches!(&missing_field, Err(EngineError::BadInput { message, .. }) if message.contains("amount")));
    let unknown = runtime.execute(request("Account_Close", "a1", json!({}))).await;
    assert!(matches!(&unknown, Err(EngineError::UnknownCommand { known, .. }) if known.contains("Account_Open")));
    let no_plugin = runtime.execute(CommandRequest::new("Nope", "Account_Open", json!({}))).await;
    assert!(matches!(no_plugin, Err(EngineError::UnknownPlugin(_))));
    let no_id = runtime.execute(CommandRequest::new("Bank", "Account_Open", json!({"owner": "x"}))).await;
    assert!(matches!(no_id, Err(EngineError::MissingEntityId(_))));
    assert_eq!(runtime.stores().events.head("Bank").await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_on_one_entity_all_land_in_order() {
    let runtime = reventless_local::start_in_memory(vec![bank()]).unwrap();
    runtime.execute(request("Account_Open", "hot", json!({"owner": "ann"}))).await.unwrap();
    let mut tasks = Vec::new();
    for amount in 1..=64u64 {
        let runtime = runtime.clone();
        tasks.push(tokio::spawn(async move {
            runtime.execute(request("Account_Deposit", "hot", json!({ "amount": amount }))).await
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap().unwrap().is_accepted());
    }
    let stream = runtime.stores().events.read_stream("Bank", account("hot"), 0).await.unwrap();
    assert_eq!(stream.len(), 65);
    let versions: Vec<u64> = stream.iter().map(|e| e.stream.as_ref().unwrap().version).collect();
    assert_eq!(versions, (1..=65).collect::<Vec<_>>());
    let row = balance(&runtime, "hot").await.unwrap();
    assert_eq!((row.balance, row.movements), ((1..=64).sum(), 64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runtimes_on_shared_stores_never_overdraw() {
    // Two processes on one database: per-entity locks do not span them, so
    // optimistic concurrency and the fresh replay on retry must hold the rule.
    let stores = reventless_local::memory_stores();
    let first = Runtime::start(stores.clone(), vec![bank()]).unwrap();
    let second = Runtime::start(stores.clone(), vec![bank()]).unwrap();
    first.execute(request("Account_Open", "shared", json!({"owner": "ann"}))).await.unwrap();
    first.execute(request("Account_Deposit", "shared", json!({"amount": 10}))).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let runtime = if i % 2 == 0 { first.clone() } else { second.clone() };
        tasks.push(tokio::spawn(async move {
            runtime.execute(request("Account_Withdraw", "shared", json!({"amount": 1}))).await
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(outcome) if outcome.is_accepted() => accepted += 1,
            Ok(outcome) => assert_eq!(outcome.error_code(), Some("InsufficientFunds")),
            Err(EngineError::Conflict { .. }) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(accepted, 10, "exactly the balance can be withdrawn");
    assert_eq!(balance(&first, "shared").await.unwrap().balance, 0);
}

/// An event log that reports conflicts for the first `conflicts` stream
/// appends, each time after letting a rival writer append a withdrawal of 30.
struct RivalWriter {
    inner: Arc<dyn EventLog>,
    conflicts: u32,
    attempts: AtomicU32,
}

#[async_trait]
impl EventLog for RivalWriter {
    async fn read(
        &self,
        log: &str,
        query: &Query,
        after: Option<u64>,
        limit: Option<usize>,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        self.inner.read(log, query, after, limit).await
    }
    async fn append(
        &self,
        log: &str,
        events: Vec<NewEvent>,
        condition: Option<&AppendCondition>,
    ) -> Result<Appended, StoreError> {
        self.inner.append(log, events, condition).await
    }
    async fn append_to_stream(
        &self,
        log: &str,
        stream: StreamRef<'_>,
        expected: u64,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        let attempt = self.attempts.fetch_add(1, Ordering::SeqCst);
        if attempt < self.conflicts {
            let rival = NewEvent::new("Withdrawn", vec![], json!({"amount": 30}));
            self.inner.append_to_stream(log, stream, expected, vec![rival]).await?;
            return self.inner.append_to_stream(log, stream, expected, events).await;
        }
        self.inner.append_to_stream(log, stream, expected, events).await
    }
    async fn read_stream(
        &self,
        log: &str,
        stream: StreamRef<'_>,
        after: u64,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        self.inner.read_stream(log, stream, after).await
    }
    async fn head(&self, log: &str) -> Result<u64, StoreError> {
        self.inner.head(log).await
    }
}

async fn with_rival(conflicts: u32) -> (Runtime, Arc<RivalWriter>) {
    let memory = reventless_local::memory_stores();
    let runtime = Runtime::start(memory.clone(), vec![bank()]).unwrap();
    runtime.execute(request("Account_Open", "a", json!({"owner": "ann"}))).await.unwrap();
    runtime.execute(request("Account_Deposit", "a", json!({"amount": 100}))).await.unwrap();
    runtime.shutdown().await;
    let rival = Arc::new(RivalWriter { inner: memory.events.clone(), conflicts, attempts: AtomicU32::new(0) });
    let stores = Stores { events: rival.clone(), ..memory };
    (Runtime::start(stores, vec![bank()]).unwrap(), rival)
}

#[tokio::test]
async fn a_conflict_is_retried_on_a_fresh_replay() {
    let (runtime, rival) = with_rival(2).await;
    // Balance 100; two rival withdrawals of 30 land first; 40 still fits.
    let outcome = runtime.execute(request("Account_Withdraw", "a", json!({"amount": 40}))).await.unwrap();
    assert!(outcome.is_accepted(), "{outcome:?}");
    assert_eq!(rival.attempts.load(Ordering::SeqCst), 3);
    assert_eq!(balance(&runtime, "a").await.unwrap().balance, 0);

    let (runtime, _) = with_rival(3).await;
    // After three rival withdrawals (90) the fresh replay refuses 40.
    let outcome = runtime.execute(request("Account_Withdraw", "a", json!({"amount": 40}))).await.unwrap();
    assert_eq!(outcome.error_code(), Some("InsufficientFunds"));
}

#[tokio::test]
async fn conflicts_give_up_after_three_retries_with_nothing_appended() {
    let (runtime, rival) = with_rival(u32::MAX).await;
    let before = runtime.stores().events.head("Bank").await.unwrap();
    let outcome = runtime.execute(request("Account_Deposit", "a", json!({"amount": 1}))).await;
    assert_eq!(outcome, Err(EngineError::Conflict { attempts: 4 }));
    assert_eq!(rival.attempts.load(Ordering::SeqCst), 4);
    let stream = runtime.stores().events.read_stream("Bank", account("a"), 0).await.unwrap();
    assert_eq!(stream.len() as u64, before + 4, "only the rival's four events landed");
    assert!(stream.iter().all(|e| e.event_type != "Deposited" || e.stream.as_ref().unwrap().version == 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_commands_are_pending_then_run_in_entity_order() {
    let runtime = reventless_local::start_in_memory(vec![bank()]).unwrap();
    let opened = runtime.execute(request("AsyncAccount_Open", "q", json!({"owner": "ann"}))).await.unwrap();
    assert!(matches!(opened, CommandOutcome::Pending { ref entity_id, .. } if entity_id == "q"));
    for amount in 1..=20u64 {
        let outcome = runtime.execute(request("AsyncAccount_Deposit", "q", json!({ "amount": amount }))).await;
        assert!(matches!(outcome, Ok(CommandOutcome::Pending { .. })));
    }
    // A rejected async command is consumed, not retried forever.
    runtime.execute(request("AsyncAccount_Open", "q", json!({"owner": "again"}))).await.unwrap();
    let log = &runtime.stores().events;
    let mut stream = Vec::new();
    for _ in 0..200 {
        stream = log.read_stream("Bank", StreamRef { aggregate: "AsyncAccount", id: "q" }, 0).await.unwrap();
        if stream.len() == 21 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let amounts: Vec<u64> = stream.iter().skip(1).map(|e| e.data["amount"].as_u64().unwrap()).collect();
    assert_eq!(amounts, (1..=20).collect::<Vec<_>>(), "one entity's commands run in send order");
    // The read model follows every log of its event type.
    assert_eq!(balance(&runtime, "q").await.unwrap().balance, (1..=20).sum::<u64>());
    let stray = runtime.stores().commands.receive(
        "Bank_Commands",
        10,
        std::time::Duration::ZERO,
        std::time::Duration::from_secs(1),
    );
    runtime.shutdown().await;
    assert!(stray.await.unwrap().is_empty(), "every queued command was handled");
}

#[tokio::test]
async fn a_restarted_platform_continues_and_a_fresh_query_store_rebuilds() {
    let stores = reventless_local::memory_stores();
    let runtime = Runtime::start(stores.clone(), vec![bank()]).unwrap();
    runtime.execute(request("Account_Open", "r", json!({"owner": "ann"}))).await.unwrap();
    runtime.execute(request("Account_Deposit", "r", json!({"amount": 5}))).await.unwrap();
    runtime.wait_for_projections().await.unwrap();
    runtime.shutdown().await;

    let restarted = Runtime::start(stores.clone(), vec![bank()]).unwrap();
    restarted.execute(request("Account_Deposit", "r", json!({"amount": 7}))).await.unwrap();
    assert_eq!(balance(&restarted, "r").await.unwrap().movements, 2, "no event applied twice after restart");
    restarted.shutdown().await;

    let fresh_queries = reventless_local::memory_stores().queries;
    let rebuilt = Runtime::start(Stores { queries: fresh_queries, ..stores }, vec![bank()]).unwrap();
    assert_eq!(balance(&rebuilt, "r").await, Some(BalanceRow { owner: "ann".into(), balance: 12, movements: 2 }));
}

#[test]
fn manifest_lists_aggregates_read_models_and_storage() {
    let manifest = bank().manifest().unwrap();
    let json = serde_json::to_value(&manifest).unwrap();
    assert_eq!(json["storage"]["logs"], json!(["Bank"]), "one log per plugin");
    assert_eq!(json["storage"]["tables"], json!([{"name": "Bank_Balances", "indexes": []}]));
    assert_eq!(json["storage"]["command_topics"], json!(["Bank_Commands"]));
    let account = &json["components"][0];
    assert_eq!(account["kind"], "Aggregate");
    assert_eq!(account["commands"], json!(["Account_Open", "Account_Deposit", "Account_Withdraw"]));
    assert_eq!(account["produces"], json!(["Opened", "Deposited", "Withdrawn"]));
    let balances = &json["components"][2];
    assert_eq!(balances["kind"], "ReadModel");
    assert_eq!(balances["sources"], json!([{"kind": "Plugin", "name": "Bank"}]));
}

#[test]
fn inconsistent_plugins_are_refused() {
    let twice = Plugin::new("Bank").aggregate::<Account>().aggregate::<Account>();
    assert!(matches!(twice.manifest(), Err(reventless_core::PluginError::DuplicateComponent { .. })));
    let orphan = Plugin::new("Bank").read_model::<Balances>();
    assert!(matches!(orphan.manifest(), Err(reventless_core::PluginError::UnknownEventSource { .. })));
    let bad_name = Plugin::new("my-bank").aggregate::<Account>();
    assert!(matches!(bad_name.manifest(), Err(reventless_core::PluginError::InvalidName(_))));
    let duplicate = Runtime::start(reventless_local::memory_stores(), vec![bank(), bank()]);
    assert!(matches!(duplicate, Err(reventless_core::RuntimeError::Plugin(_))));
}

#[tokio::test]
async fn a_stale_cached_state_never_decides_alone() {
    // `first` caches the account at balance 0; `second` then deposits. A
    // refusal on the cached state would be wrong: it must be re-checked.
    let stores = reventless_local::memory_stores();
    let first = Runtime::start(stores.clone(), vec![bank()]).unwrap();
    let second = Runtime::start(stores.clone(), vec![bank()]).unwrap();
    first.execute(request("Account_Open", "s", json!({"owner": "ann"}))).await.unwrap();
    second.execute(request("Account_Deposit", "s", json!({"amount": 50}))).await.unwrap();
    let withdrawn = first.execute(request("Account_Withdraw", "s", json!({"amount": 30}))).await.unwrap();
    assert!(withdrawn.is_accepted(), "{withdrawn:?}");
    // And an accepted decision on a stale cache conflicts and is redone on fresh state.
    second.execute(request("Account_Withdraw", "s", json!({"amount": 15}))).await.unwrap();
    let overdraw = first.execute(request("Account_Withdraw", "s", json!({"amount": 10}))).await.unwrap();
    assert_eq!(overdraw.error_code(), Some("InsufficientFunds"), "balance is 5, not the cached 20");
    assert_eq!(balance(&first, "s").await.unwrap().balance, 5);
}

// ---------------------------------------------------------------- extensions

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, reventless_spec::Event)]
enum AccountNews {
    AccountOpened { account_id: String, owner: String },
}

struct Accounts;

impl reventless_spec::ExtensionPoint for Accounts {
    const NAME: &'static str = "Accounts";
    type Event = AccountEvent;
    type Published = AccountNews;

    fn publish(event: &AccountEvent, envelope: &EventEnvelope) -> Vec<AccountNews> {
        match (event, &envelope.stream) {
            (AccountEvent::Opened { owner }, Some(stream)) => {
                vec![AccountNews::AccountOpened { account_id: stream.id.clone(), owner: owner.clone() }]
            }
            _ => vec![],
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
struct Welcome {
    #[tag]
    account_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
enum MailEvent {
    Welcomed {
        #[tag]
        account_id: String,
    },
}

/// Idempotent: a second welcome for the same account changes nothing.
impl reventless_spec::StateChangeSlice for Welcome {
    const NAME: &'static str = "Welcome";
    const API: bool = false;
    const CONSUMES: &'static [&'static str] = &["Welcomed"];
    const PRODUCES: &'static [&'static str] = &["Welcomed"];
    type Command = Self;
    type Event = MailEvent;
    type State = bool;
    type Error = String;

    fn evolve(_: bool, _: &MailEvent) -> bool {
        true
    }

    fn decide(welcomed: &bool, command: &Self) -> Result<Vec<MailEvent>, String> {
        Ok(if *welcomed { vec![] } else { vec![MailEvent::Welcomed { account_id: command.account_id.clone() }] })
    }
}

struct WelcomeNewAccounts;

impl reventless_spec::Extension for WelcomeNewAccounts {
    const NAME: &'static str = "WelcomeNewAccounts";
    const SOURCE_PLUGIN: &'static str = "Bank";
    type Point = Accounts;

    fn handle(event: &AccountNews) -> Vec<reventless_spec::Dispatch> {
        let AccountNews::AccountOpened { account_id, .. } = event;
        reventless_spec::Dispatch::slice(&Welcome { account_id: account_id.clone() }).into_iter().collect()
    }
}

fn mail() -> Plugin {
    Plugin::new("Mail").state_change_slice::<Welcome>().extension::<WelcomeNewAccounts>()
}

async fn welcomed(stores: &Stores) -> Vec<String> {
    let events = stores.events.read("Mail", &reventless_spec::Query::all(), None, None).await.unwrap();
    events.iter().map(|e| e.data["account_id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn an_extension_turns_published_events_into_commands_at_least_once() {
    let stores = reventless_local::memory_stores();
    let bank_with_point = || bank().extension_point::<Accounts>();
    let runtime = Runtime::start(stores.clone(), vec![bank_with_point(), mail()]).unwrap();
    for id in ["a1", "a2"] {
        runtime.execute(request("Account_Open", id, json!({"owner": "ann"}))).await.unwrap();
    }
    runtime.execute(request("Account_Deposit", "a1", json!({"amount": 5}))).await.unwrap();
    runtime.wait_for_projections().await.unwrap();
    assert_eq!(welcomed(&stores).await, vec!["a1", "a2"]);
    runtime.shutdown().await;

    // A crash before the checkpoint moved: the published events come again;
    // the idempotent command appends nothing new.
    let checkpoint = "Mail.WelcomeNewAccounts@Bank";
    assert_eq!(stores.queries.checkpoint(checkpoint).await.unwrap(), 3);
    let replay = reventless_local::memory_stores();
    let restarted =
        Runtime::start(Stores { queries: replay.queries, ..stores.clone() }, vec![bank_with_point(), mail()]).unwrap();
    restarted.wait_for_projections().await.unwrap();
    assert_eq!(welcomed(&stores).await, vec!["a1", "a2"], "redelivery appended nothing twice");

    let manifest = serde_json::to_value(bank_with_point().manifest().unwrap()).unwrap();
    let point = manifest["components"].as_array().unwrap().iter().find(|c| c["kind"] == "ExtensionPoint").unwrap();
    assert_eq!(point["name"], "Bank.Accounts");
    assert_eq!(point["produces"], json!(["AccountOpened"]));
    let extension = &serde_json::to_value(mail().manifest().unwrap()).unwrap()["components"][1];
    assert_eq!(extension["kind"], "Extension");
    assert_eq!(extension["sources"], json!([{"kind": "ExtensionPoint", "name": "Bank.Accounts"}]));
}

#[tokio::test]
async fn an_extension_point_hands_its_events_to_a_subscriber_hosted_elsewhere() {
    use reventless_core::{FollowerKind, PublishedMessage, RuntimeOptions, inbox_topic};
    // Two hosts (two Lambda stacks), each with its own stores; the queues are one service.
    let bank_stores = reventless_local::memory_stores();
    let mail_stores = Stores { commands: bank_stores.commands.clone(), ..reventless_local::memory_stores() };
    let subscribers = [("Bank.Accounts".to_string(), vec!["Mail".to_string()])].into();
    let options = RuntimeOptions { subscribers, ..RuntimeOptions::default() };
    let capabilities = reventless_spec::Capabilities::new;
    let bank_host =
        Runtime::on_demand(bank_stores.clone(), vec![bank().extension_point::<Accounts>()], capabilities(), options)
            .unwrap();
    let mail_host = Runtime::on_demand(mail_stores.clone(), vec![mail()], capabilities(), Default::default()).unwrap();
    for id in ["a1", "a2"] {
        bank_host.execute(request("Account_Open", id, json!({"owner": "ann"}))).await.unwrap();
    }
    let logs = vec!["Bank".to_string()];
    let publishers = [FollowerKind::Publisher];
    assert_eq!(
        bank_host.followed_logs(&publishers, &["Bank.Accounts".to_string()]).await.len(),
        1,
        "the plugin's one log"
    );
    assert!(bank_host.catch_up(&logs, &publishers, &[]).await.is_empty());
    assert!(bank_host.catch_up(&logs, &publishers, &[]).await.is_empty(), "a second run sends nothing again");

    let inbox = inbox_topic("Mail");
    let deliveries = queued(&bank_stores, &inbox).await;
    let messages: Vec<PublishedMessage> =
        deliveries.iter().map(|d| serde_json::from_value(d.message.body.clone()).unwrap()).collect();
    assert_eq!(messages.len(), 2, "one per opened account: {messages:?}");
    assert!(deliveries.iter().all(|d| d.message.group_id == "Bank.Accounts"), "one ordered group per point");
    assert_eq!((messages[0].point.as_str(), messages[0].name.as_str()), ("Bank.Accounts", "AccountOpened"));
    for message in &messages {
        mail_host.run_published(message).await.unwrap();
    }
    assert_eq!(welcomed(&mail_stores).await, vec!["a1", "a2"]);
    mail_host.run_published(&messages[0]).await.unwrap();
    assert_eq!(welcomed(&mail_stores).await, vec!["a1", "a2"], "a redelivered event appends nothing twice");
    let stranger = PublishedMessage { point: "Bank.Loans".into(), ..messages[0].clone() };
    mail_host.run_published(&stranger).await.unwrap();
    let garbled = PublishedMessage { name: "AccountVanished".into(), ..messages[0].clone() };
    mail_host.run_published(&garbled).await.unwrap();
    assert_eq!(welcomed(&mail_stores).await, vec!["a1", "a2"], "unknown points and events are dropped");
    assert!(bank_stores.events.read("Mail", &reventless_spec::Query::all(), None, None).await.unwrap().is_empty());
}

#[test]
fn an_extension_without_its_extension_point_is_refused() {
    let refused = Runtime::start(reventless_local::memory_stores(), vec![bank(), mail()]);
    assert!(matches!(
        refused,
        Err(reventless_core::RuntimeError::Plugin(reventless_core::PluginError::MissingExtensionPoint { .. }))
    ));
}

// ---------------------------------------------------------------- automations

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
struct Bonus {
    owner: String,
}

/// Every new account gets a welcome bonus of 10; the deposit resolves the item.
struct WelcomeBonus;

impl reventless_spec::AutomationSlice for WelcomeBonus {
    const NAME: &'static str = "WelcomeBonus";
    const CONSUMES: &'static [&'static str] = &["Opened", "Deposited"];
    type Event = AccountEvent;
    type Item = Bonus;

    fn collect(event: &AccountEvent, envelope: &EventEnvelope) -> Option<(String, Bonus)> {
        match (event, &envelope.stream) {
            (AccountEvent::Opened { owner }, Some(stream)) => Some((stream.id.clone(), Bonus { owner: owner.clone() })),
            _ => None,
        }
    }

    fn resolve(event: &AccountEvent, envelope: &EventEnvelope) -> Option<String> {
        matches!(event, AccountEvent::Deposited { .. })
            .then(|| envelope.stream.as_ref().map(|s| s.id.clone()))
            .flatten()
    }

    fn process(id: &str, _: &Bonus) -> Vec<reventless_spec::Dispatch> {
        reventless_spec::Dispatch::aggregate::<Account>(id, &AccountCommand::Deposit { amount: 10 })
            .into_iter()
            .collect()
    }
}

/// Sends a command nobody answers: every attempt fails until exhausted.
struct Doomed;

impl reventless_spec::AutomationSlice for Doomed {
    const NAME: &'static str = "Doomed";
    const CONSUMES: &'static [&'static str] = &["Opened"];
    const MAX_RETRIES: u32 = 2;
    type Event = AccountEvent;
    type Item = Bonus;

    fn collect(event: &AccountEvent, envelope: &EventEnvelope) -> Option<(String, Bonus)> {
        <WelcomeBonus as reventless_spec::AutomationSlice>::collect(event, envelope)
    }

    fn resolve(_: &AccountEvent, _: &EventEnvelope) -> Option<String> {
        None
    }

    fn process(_: &str, _: &Bonus) -> Vec<reventless_spec::Dispatch> {
        vec![reventless_spec::Dispatch {
            command: "Account_Vanish".into(),
            entity_id: Some("x".into()),
            input: json!({}),
        }]
    }

    fn on_exhausted(id: &str, _: &Bonus) -> Vec<reventless_spec::Dispatch> {
        reventless_spec::Dispatch::aggregate::<Account>(id, &AccountCommand::Deposit { amount: 1 })
            .into_iter()
            .collect()
    }
}

async fn todo(runtime: &Runtime, table: &str, id: &str) -> Option<serde_json::Value> {
    runtime.stores().queries.get(table, id).await.unwrap()
}

/// Polls until `check` holds (bounded), instead of sleeping a fixed time.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automation_processes_its_todo_list_until_resolved() {
    let runtime = reventless_local::start_in_memory(vec![bank().automation::<WelcomeBonus>()]).unwrap();
    runtime.execute(request("Account_Open", "a1", json!({"owner": "ann"}))).await.unwrap();
    eventually("the todo item to complete", || async {
        todo(&runtime, "Bank_WelcomeBonusTodos", "a1").await.is_some_and(|row| row["status"] == "COMPLETED")
    })
    .await;
    let row = todo(&runtime, "Bank_WelcomeBonusTodos", "a1").await.unwrap();
    assert_eq!(row["item"], json!({"owner": "ann"}));
    assert!(row["processedAt"].is_u64() && row["completedAt"].is_u64(), "{row}");
    assert_eq!(balance(&runtime, "a1").await.unwrap().balance, 10, "the bonus was deposited once");
    let manifest = serde_json::to_value(bank().automation::<WelcomeBonus>().manifest().unwrap()).unwrap();
    let automation =
        manifest["components"].as_array().unwrap().iter().find(|c| c["kind"] == "AutomationSlice").unwrap();
    assert_eq!(automation["table"], "Bank_WelcomeBonusTodos");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_items_are_retried_then_exhausted() {
    let runtime = reventless_local::start_in_memory(vec![bank().automation::<Doomed>()]).unwrap();
    runtime.execute(request("Account_Open", "d1", json!({"owner": "ann"}))).await.unwrap();
    eventually("the item to be exhausted", || async {
        todo(&runtime, "Bank_DoomedTodos", "d1").await.is_some_and(|row| row["status"] == "EXHAUSTED")
    })
    .await;
    let row = todo(&runtime, "Bank_DoomedTodos", "d1").await.unwrap();
    assert_eq!(row["retryCount"], 3, "one attempt and two retries: {row}");
    assert!(row["lastError"].as_str().unwrap().contains("Account_Vanish"), "{row}");
    assert_eq!(balance(&runtime, "d1").await.unwrap().balance, 1, "on_exhausted ran once");
}

// ---------------------------------------------------------------- outbound translations

/// A capability the composition root provides.
trait Mailer: Send + Sync {
    fn send(&self, to: &str, subject: &str) -> Result<(), String>;
}

/// The recording fake: keeps what was sent; can be told to fail a few times.
#[derive(Default)]
struct RecordingMailer {
    sent: std::sync::Mutex<Vec<(String, String)>>,
    failures_left: AtomicU32,
}

impl Mailer for RecordingMailer {
    fn send(&self, to: &str, subject: &str) -> Result<(), String> {
        if self.failures_left.load(Ordering::SeqCst) > 0 {
            self.failures_left.fetch_sub(1, Ordering::SeqCst);
            return Err("mail server unavailable".into());
        }
        self.sent.lock().unwrap().push((to.to_string(), subject.to_string()));
        Ok(())
    }
}

struct SendWelcomeMail;

impl reventless_spec::OutboundTranslationSlice for SendWelcomeMail {
    const NAME: &'static str = "SendWelcomeMail";
    const CONSUMES: &'static [&'static str] = &["Opened"];
    type Event = AccountEvent;
    type Item = Bonus;

    fn collect(event: &AccountEvent, envelope: &EventEnvelope) -> Option<(String, Bonus)> {
        <WelcomeBonus as reventless_spec::AutomationSlice>::collect(event, envelope)
    }

    async fn translate(
        id: &str,
        item: &Bonus,
        capabilities: &reventless_spec::Capabilities,
    ) -> Result<Vec<reventless_spec::Dispatch>, String> {
        let mailer = capabilities.get::<dyn Mailer>().ok_or("no Mailer capability")?;
        mailer.send(&item.owner, &format!("Welcome, account {id} is open"))?;
        Ok(vec![])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbound_translation_calls_its_capability_and_retries_failures() {
    let mailer = Arc::new(RecordingMailer { failures_left: AtomicU32::new(1), ..Default::default() });
    let capabilities = reventless_spec::Capabilities::new().with::<dyn Mailer>(mailer.clone());
    let plugin = bank().outbound_translation::<SendWelcomeMail>();
    let runtime = reventless_local::start_in_memory_with(vec![plugin], capabilities).unwrap();
    runtime.execute(request("Account_Open", "m1", json!({"owner": "ann@example.org"}))).await.unwrap();
    eventually("the mail to be sent after one failure", || async {
        todo(&runtime, "Bank_SendWelcomeMailTodos", "m1").await.is_some_and(|row| row["status"] == "COMPLETED")
    })
    .await;
    let row = todo(&runtime, "Bank_SendWelcomeMailTodos", "m1").await.unwrap();
    assert_eq!(row["retryCount"], 1, "{row}");
    assert_eq!(
        *mailer.sent.lock().unwrap(),
        vec![("ann@example.org".to_string(), "Welcome, account m1 is open".to_string())]
    );

    // Without the capability, items fail until exhausted instead of crashing.
    let runtime = reventless_local::start_in_memory(vec![bank().outbound_translation::<SendWelcomeMail>()]).unwrap();
    runtime.execute(request("Account_Open", "m2", json!({"owner": "bob"}))).await.unwrap();
    eventually("the missing capability to be reported", || async {
        todo(&runtime, "Bank_SendWelcomeMailTodos", "m2")
            .await
            .is_some_and(|row| row["lastError"].as_str().is_some_and(|e| e.contains("no Mailer capability")))
    })
    .await;
}

async fn queued(stores: &Stores, topic: &str) -> Vec<reventless_core::store::Delivery> {
    let wait = std::time::Duration::ZERO;
    stores.commands.receive(topic, 10, wait, std::time::Duration::from_secs(30)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_topic_layout_queues_async_commands_on_its_own_topic() {
    use reventless_core::{RuntimeOptions, TopicLayout};
    for (layout, topic) in [
        (TopicLayout::PerPlugin, "Bank_Commands"),
        (TopicLayout::PerLog, "Bank_AsyncAccount_Commands"),
        (TopicLayout::PerComponent, "Bank_AsyncAccount_Commands"),
    ] {
        let stores = reventless_local::memory_stores();
        let capabilities = reventless_spec::Capabilities::new();
        let options = RuntimeOptions { topics: layout, ..RuntimeOptions::default() };
        let runtime = Runtime::on_demand(stores.clone(), vec![bank()], capabilities, options.clone()).unwrap();
        let opened = runtime.execute(request("AsyncAccount_Open", "q", json!({"owner": "ann"}))).await.unwrap();
        assert!(matches!(opened, CommandOutcome::Pending { .. }), "{layout:?}");
        let deliveries = queued(&stores, topic).await;
        assert_eq!(deliveries.len(), 1, "{layout:?} queues on {topic}");
        for other in ["Bank_Commands", "Bank_AsyncAccount_Commands"].into_iter().filter(|t| *t != topic) {
            assert!(queued(&stores, other).await.is_empty(), "{layout:?}: nothing on {other}");
        }
        runtime.run_queued(&deliveries[0].message).await.unwrap();
        stores.commands.ack(topic, &deliveries[0].receipt).await.unwrap();
        let stream =
            stores.events.read_stream("Bank", StreamRef { aggregate: "AsyncAccount", id: "q" }, 0).await.unwrap();
        assert_eq!(stream.len(), 1, "{layout:?}: the drained command ran");

        // A background runtime drains every topic its layout uses.
        let capabilities = reventless_spec::Capabilities::new();
        let background = Runtime::with_options(stores.clone(), vec![bank()], capabilities, options).unwrap();
        background.execute(request("AsyncAccount_Deposit", "q", json!({"amount": 4}))).await.unwrap();
        eventually("the queued deposit to run", || async {
            stores.events.read_stream("Bank", StreamRef { aggregate: "AsyncAccount", id: "q" }, 0).await.unwrap().len()
                == 2
        })
        .await;
        background.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catching_up_can_run_only_some_components() {
    use reventless_core::FollowerKind;
    let stores = reventless_local::memory_stores();
    let plugin = bank().automation::<WelcomeBonus>();
    let capabilities = reventless_spec::Capabilities::new();
    let runtime = Runtime::on_demand(stores.clone(), vec![plugin], capabilities, Default::default()).unwrap();
    runtime.execute(request("Account_Open", "a1", json!({"owner": "ann"}))).await.unwrap();
    let kinds = [FollowerKind::Projection, FollowerKind::Automation];
    let logs = vec!["Bank".to_string()];
    let only = |name: &str| vec![name.to_string()];

    assert!(runtime.followed_logs(&[FollowerKind::Automation], &only("Balances")).await.is_empty());
    assert_eq!(runtime.followed_logs(&kinds, &only("WelcomeBonus")).await.len(), 1, "the plugin's one log");

    assert!(runtime.catch_up(&logs, &kinds, &only("Balances")).await.is_empty());
    assert_eq!(todo(&runtime, "Bank_Balances", "a1").await.unwrap()["balance"], 0);
    assert!(todo(&runtime, "Bank_WelcomeBonusTodos", "a1").await.is_none(), "the automation did not run");

    assert!(runtime.catch_up(&logs, &kinds, &only("WelcomeBonus")).await.is_empty());
    let item = todo(&runtime, "Bank_WelcomeBonusTodos", "a1").await.unwrap();
    assert_eq!(item["item"], json!({"owner": "ann"}), "{item}");
    assert_eq!(todo(&runtime, "Bank_Balances", "a1").await.unwrap()["balance"], 0, "balances wait for their turn");

    assert!(runtime.catch_up(&logs, &kinds, &[]).await.is_empty(), "empty: every follower of the kinds");
    assert_eq!(todo(&runtime, "Bank_Balances", "a1").await.unwrap()["balance"], 10, "the bonus, projected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_demand_host_retries_due_items_when_asked() {
    use reventless_core::FollowerKind;
    let stores = reventless_local::memory_stores();
    let plugin = bank().automation::<Doomed>();
    let runtime =
        Runtime::on_demand(stores.clone(), vec![plugin], reventless_spec::Capabilities::new(), Default::default())
            .unwrap();
    runtime.execute(request("Account_Open", "d1", json!({"owner": "ann"}))).await.unwrap();
    let logs = vec!["Bank".to_string()];
    assert!(runtime.catch_up(&logs, &[FollowerKind::Automation], &[]).await.is_empty());
    let retries = || async { todo(&runtime, "Bank_DoomedTodos", "d1").await.unwrap()["retryCount"].clone() };
    assert_eq!(retries().await, 1, "the first attempt failed");
    assert!(runtime.retry_due().await.is_empty());
    assert_eq!(retries().await, 1, "not due yet: the retry interval has not passed");
    for expected in [2, 3] {
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        assert!(runtime.retry_due().await.is_empty());
        assert_eq!(retries().await, expected);
    }
    let row = todo(&runtime, "Bank_DoomedTodos", "d1").await.unwrap();
    assert_eq!(row["status"], "EXHAUSTED", "{row}");
    let stream = stores.events.read_stream("Bank", account("d1"), 0).await.unwrap();
    assert_eq!(stream.last().unwrap().event_type, "Deposited", "on_exhausted ran its command");
}
