//! Ordering reserves and releases stock through commands to the
//! `Catalog.Products` extension point: queued on Catalog's command topic,
//! decided by Catalog's own slice (both plugins in one process).
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::time::{Duration, Instant};

use online_shop::ordering::local_capabilities;
use reventless::core::outcome::Caller;
use reventless::core::outcomes::OutcomeStatus;
use reventless::core::plugin::PointCommandMessage;
use reventless::core::store::CommandMessage;
use reventless::prelude::*;
use reventless::{Runtime, RuntimeError};
use serde_json::{Value, json};

fn admin() -> Caller {
    Caller { user_id: Some("admin".into()), roles: vec!["Admin".into()] }
}

async fn run(runtime: &Runtime, plugin: &str, command: &str, input: Value) -> CommandOutcome {
    let request = CommandRequest::new(plugin, command, input).caller(admin());
    let outcome = runtime.execute(request).await.unwrap();
    assert!(outcome.is_accepted(), "{command}: {outcome:?}");
    outcome
}

/// Both plugins in memory, a product `dune` with `stock` units and a customer `c1`.
async fn shop(stock: i64) -> Runtime {
    let (capabilities, _mails) = local_capabilities();
    let runtime = reventless::local::start_in_memory_with(online_shop::plugins(), capabilities).unwrap();
    run(&runtime, "Catalog", "AddCategory", json!({"categoryId": "books", "name": "Books"})).await;
    let product = json!({"productId": "dune", "name": "Dune", "description": "", "priceCents": 1200, "currency": "EUR", "categoryId": "books"});
    run(&runtime, "Catalog", "AddProduct", product).await;
    run(&runtime, "Catalog", "ReceiveStock", json!({"productId": "dune", "quantity": stock})).await;
    run(&runtime, "Ordering", "Customer_Register", json!({"id": "c1", "name": "C", "email": "c1@example.com"})).await;
    runtime.settle_within(Duration::from_secs(15)).await.unwrap();
    runtime
}

async fn place(runtime: &Runtime, order: &str, quantity: i64) {
    let input = json!({"orderId": order, "customerId": "c1", "lines": [{"productId": "dune", "quantity": quantity}], "shipping": "STANDARD"});
    run(runtime, "Ordering", "PlaceOrder", input).await;
}

/// Polls until `check` holds on the row `id` of `table` (at most 15 s).
async fn row_until(runtime: &Runtime, table: &str, id: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let row = runtime.stores().queries.get(table, id).await.unwrap().unwrap_or(Value::Null);
        if check(&row) {
            return row;
        }
        assert!(Instant::now() < deadline, "timed out waiting on {table}/{id}; last: {row}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The Catalog events of type `kind`.
async fn catalog_events(runtime: &Runtime, kind: &str) -> Vec<Value> {
    let events = runtime.stores().events.read("Catalog", &Query::all(), None, None).await.unwrap();
    events.into_iter().filter(|e| e.event_type == kind).map(|e| e.data).collect()
}

/// A public command as Ordering's functions queue it on Catalog's topic.
async fn deliver(runtime: &Runtime, sender: &str, command: &str, input: Value, command_id: &str, dedup: &str) {
    let message = PointCommandMessage {
        point: "Catalog.Products".into(),
        sender: sender.into(),
        command: command.into(),
        input,
        command_id: command_id.into(),
        correlation_id: None,
        causation_id: None,
    };
    let body = serde_json::to_value(&message).unwrap();
    let queued = CommandMessage { group_id: "product:dune".into(), dedup_id: dedup.into(), body };
    runtime.stores().commands.send("Catalog_Commands", queued).await.unwrap();
}

async fn outcome_of(runtime: &Runtime, command_id: &str) -> reventless::core::outcomes::OutcomeRecord {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(record) = runtime.command_outcome("Catalog", command_id).await.unwrap()
            && record.status != OutcomeStatus::Pending
        {
            return record;
        }
        assert!(Instant::now() < deadline, "no outcome for {command_id}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_placed_order_reserves_stock_in_the_catalog_and_its_cancellation_releases_it() {
    let runtime = shop(5).await;
    place(&runtime, "o1", 2).await;
    let stock = row_until(&runtime, "Catalog_ProductStocks", "dune", |r| r["reserved"] == 2).await;
    assert_eq!(stock, json!({"productId": "dune", "available": 3, "reserved": 2}));
    let reserved = catalog_events(&runtime, "StockReserved").await;
    assert_eq!(reserved, vec![json!({"productId": "dune", "orderId": "o1", "quantity": 2})]);

    let cancel = CommandRequest::new("Ordering", "CancelOrder", json!({"orderId": "o1"})).caller(admin());
    assert!(runtime.execute(cancel).await.unwrap().is_accepted());
    let stock = row_until(&runtime, "Catalog_ProductStocks", "dune", |r| r["reserved"] == 0).await;
    assert_eq!(stock["available"], 5);
    assert_eq!(catalog_events(&runtime, "StockReleased").await.len(), 1);
    // The sender's to-do items are done once their requests are queued.
    let todo = row_until(&runtime, "Ordering_RequestStockTodos", "o1:release", |r| r["status"] == "COMPLETED").await;
    assert_eq!(todo["item"]["release"], true);
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_redelivered_command_runs_once_and_a_resent_one_reserves_nothing_more() {
    let runtime = shop(5).await;
    let reserve = json!({"productId": "dune", "orderId": "o9", "quantity": 1});
    // The same message twice (the queue's dedup passed it: another dedup id).
    deliver(&runtime, "Ordering", "ReserveStock", reserve.clone(), "cmd-1", "d1").await;
    deliver(&runtime, "Ordering", "ReserveStock", reserve.clone(), "cmd-1", "d2").await;
    // The sender sent it again (a retried automation: a new command id).
    deliver(&runtime, "Ordering", "ReserveStock", reserve, "cmd-2", "d3").await;
    assert_eq!(outcome_of(&runtime, "cmd-1").await.status, OutcomeStatus::Accepted);
    let again = outcome_of(&runtime, "cmd-2").await;
    assert_eq!((again.status, again.event_count), (OutcomeStatus::Accepted, Some(0)));
    row_until(&runtime, "Catalog_ProductStocks", "dune", |r| r["reserved"] == 1).await;
    assert_eq!(catalog_events(&runtime, "StockReserved").await.len(), 1);
    runtime.shutdown().await;
}

#[tokio::test]
async fn the_catalog_decides_refusals_and_bad_commands_append_nothing() {
    let runtime = shop(5).await;
    deliver(
        &runtime,
        "Ordering",
        "ReserveStock",
        json!({"productId": "dune", "orderId": "big", "quantity": 9}),
        "c-big",
        "1",
    )
    .await;
    let refused = outcome_of(&runtime, "c-big").await;
    assert_eq!((refused.status, refused.error_code.as_deref()), (OutcomeStatus::Rejected, Some("OutOfStock")));
    assert_eq!(refused.error_detail, json!({"productId": "dune", "available": 5, "requested": 9}));

    deliver(&runtime, "Ordering", "StealStock", json!({"productId": "dune"}), "c-unknown", "2").await;
    let unknown = outcome_of(&runtime, "c-unknown").await;
    assert_eq!((unknown.status, unknown.error_code.as_deref()), (OutcomeStatus::Failed, Some("BadInput")));

    deliver(&runtime, "Ordering", "ReserveStock", json!({"productId": "dune", "quantity": "two"}), "c-shape", "3")
        .await;
    assert_eq!(outcome_of(&runtime, "c-shape").await.error_code.as_deref(), Some("BadInput"));

    let reserve = json!({"productId": "dune", "orderId": "r1", "quantity": 1});
    deliver(&runtime, "Reviews", "ReserveStock", reserve, "c-stranger", "4").await;
    let stranger = outcome_of(&runtime, "c-stranger").await;
    assert_eq!((stranger.status, stranger.error_code.as_deref()), (OutcomeStatus::Rejected, Some("AccessRefused")));

    runtime.settle_within(Duration::from_secs(15)).await.unwrap();
    assert!(catalog_events(&runtime, "StockReserved").await.is_empty());
    let stock = runtime.stores().queries.get("Catalog_ProductStocks", "dune").await.unwrap().unwrap();
    assert_eq!(stock["available"], 5);
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_command_from_outside_or_to_an_undeclared_point_is_refused() {
    let runtime = shop(5).await;
    let input = json!({"productId": "dune", "orderId": "x", "quantity": 1});
    // From the API: only a plugin's own components send to points.
    let outside = CommandRequest::new("Ordering", "Catalog.Products.ReserveStock", input.clone()).caller(admin());
    assert!(matches!(
        runtime.execute(outside).await,
        Err(reventless::core::outcome::EngineError::UnknownCommand { .. })
    ));
    // Catalog does not declare `sends_to` its own point.
    let dispatch = Dispatch { command: "Catalog.Products.ReserveStock".into(), entity_id: None, input };
    let undeclared = CommandRequest::internal("Catalog", dispatch);
    let refused = runtime.execute(undeclared).await;
    assert!(matches!(refused, Err(reventless::core::outcome::EngineError::UnknownCommand { .. })), "{refused:?}");
    runtime.shutdown().await;
}

#[tokio::test]
async fn ordering_without_the_catalog_in_one_process_is_refused_at_startup() {
    let started =
        reventless::local::start_in_memory_with(vec![online_shop::ordering::plugin()], local_capabilities().0);
    let Err(RuntimeError::Plugin(error)) = started else { panic!("started without the catalog") };
    assert!(
        error
            .to_string()
            .contains("sends commands to extension point `Catalog.Products`, but plugin `Catalog` is not hosted"),
        "{error}"
    );
}
