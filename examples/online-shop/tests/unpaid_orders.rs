//! Unpaid orders are cancelled by the `CancelUnpaidOrders` schedule: as
//! Given / When / Then for its command, by asking for firings at chosen
//! times, and by the runtime's own timer on an accelerated clock.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::time::{Duration, Instant};

use online_shop::ordering::*;
use reventless::core::runtime::ScheduleClock;
use reventless::core::{Caller, CommandOutcome, CommandRequest, Runtime, RuntimeOptions};
use reventless::spec::Timestamp;
use reventless::testing::SliceTest;
use serde_json::{Value, json};

fn placed() -> OrderingEvent {
    OrderingEvent::OrderPlaced {
        order_id: "o1".into(),
        customer_id: "c1".into(),
        lines: vec![OrderLine { product_id: "p1".into(), quantity: 1, unit_price_cents: 500 }],
        shipping: Shipping::Standard,
        total_cents: 500,
        currency: "EUR".into(),
    }
}

fn cancel() -> CancelUnpaidOrder {
    CancelUnpaidOrder { order_id: "o1".into() }
}

#[test]
fn an_unpaid_order_is_cancelled_but_a_paid_or_shipped_one_is_not() {
    let lines = vec![OrderLine { product_id: "p1".into(), quantity: 1, unit_price_cents: 500 }];
    SliceTest::<CancelUnpaidOrder>::given([placed()]).when(cancel()).then_events([OrderingEvent::OrderCancelled {
        order_id: "o1".into(),
        customer_id: "c1".into(),
        lines,
    }]);
    let paid =
        OrderingEvent::OrderPaid { order_id: "o1".into(), payment_id: "pay".into(), amount_cents: 500, paid_at: 1 };
    SliceTest::<CancelUnpaidOrder>::given([placed(), paid]).when(cancel()).then_rejected("OrderAlreadyPaid");
    let shipped = OrderingEvent::OrderShipped { order_id: "o1".into() };
    SliceTest::<CancelUnpaidOrder>::given([placed(), shipped]).when(cancel()).then_rejected("OrderAlreadyShipped");
    let cancelled = OrderingEvent::OrderCancelled { order_id: "o1".into(), customer_id: "c1".into(), lines: vec![] };
    SliceTest::<CancelUnpaidOrder>::given([placed(), cancelled]).when(cancel()).then_no_events();
    SliceTest::<CancelUnpaidOrder>::given_no_events().when(cancel()).then_rejected("OrderNotFound");
}

#[test]
fn the_manifest_lists_the_schedule() {
    let manifest = online_shop::ordering::plugin().manifest().unwrap();
    let schedule = manifest.schedules.iter().find(|s| s.name == "CancelUnpaidOrders").unwrap();
    assert_eq!(schedule.expression, "rate(5 minutes)");
}

async fn run(runtime: &Runtime, plugin: &str, command: &str, input: Value, user: &str, roles: &[&str]) {
    let caller = Caller { user_id: Some(user.into()), roles: roles.iter().map(|r| r.to_string()).collect() };
    let request = CommandRequest::new(plugin, command, input).caller(caller);
    let outcome = runtime.execute(request).await.unwrap();
    assert!(matches!(outcome, CommandOutcome::Accepted { .. }), "{command}: {outcome:?}");
}

/// A shop on memory stores with a customer `c1` and product `p1` (5.00 EUR) synced to Ordering.
async fn shop(clock: ScheduleClock) -> Runtime {
    let (capabilities, _mails) = local_capabilities();
    let options = RuntimeOptions { schedule_clock: clock, ..Default::default() };
    let stores = reventless::local::memory_stores();
    let runtime = Runtime::with_options(stores, online_shop::plugins(), capabilities, options).unwrap();
    let admin = ["Admin"];
    run(&runtime, "Catalog", "AddCategory", json!({"categoryId": "books", "name": "Books"}), "admin", &admin).await;
    let product = json!({"productId": "p1", "name": "Book", "description": "", "priceCents": 500, "currency": "EUR",
                         "categoryId": "books"});
    run(&runtime, "Catalog", "AddProduct", product, "admin", &admin).await;
    let customer = json!({"id": "c1", "name": "Ann", "email": "ann@example.org"});
    run(&runtime, "Ordering", "Customer_Register", customer, "c1", &[]).await;
    runtime.settle_within(Duration::from_secs(20)).await.unwrap();
    runtime
}

async fn place_two_and_pay_the_second(runtime: &Runtime) {
    for order in ["o1", "o2"] {
        let input = json!({"orderId": order, "customerId": "c1", "lines": [{"productId": "p1", "quantity": 1}],
                           "shipping": "STANDARD"});
        run(runtime, "Ordering", "PlaceOrder", input, "c1", &[]).await;
    }
    let payment = json!({"orderId": "o2", "paymentId": "pay-2", "amountCents": 500, "paidAt": Timestamp::now().0});
    run(runtime, "Ordering", "RecordPayment", payment, "provider", &["Admin"]).await;
}

async fn order(runtime: &Runtime, id: &str) -> Value {
    runtime.stores().queries.get("Ordering_Orders", id).await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_after_the_timeout_cancels_the_unpaid_order_only() {
    let runtime = shop(ScheduleClock::Wall).await;
    place_two_and_pay_the_second(&runtime).await;
    runtime.settle_within(Duration::from_secs(20)).await.unwrap();
    let now = Timestamp::now().0;
    let minutes = |m: u64| Timestamp(now + m * 60_000);

    let early = runtime.fire_schedule("Ordering", "CancelUnpaidOrders", minutes(10)).await.unwrap();
    assert!(early.outcomes.is_empty() && early.errors.is_empty(), "within 30 minutes nothing goes: {early:?}");

    let late = runtime.fire_schedule("Ordering", "CancelUnpaidOrders", minutes(31)).await.unwrap();
    assert_eq!(late.outcomes.len(), 1, "{late:?}");
    assert!(matches!(late.outcomes[0], CommandOutcome::Accepted { event_count: 1, .. }), "{late:?}");
    runtime.settle_within(Duration::from_secs(20)).await.unwrap();
    assert_eq!(order(&runtime, "o1").await["lifecycle"], "CANCELLED");
    let paid = order(&runtime, "o2").await;
    assert_eq!((paid["lifecycle"].clone(), paid["paid"].clone()), (json!("PLACED"), json!(true)));
    let events = runtime.stores().events.read_all("Ordering", 0, 1000).await.unwrap();
    let cancelled: Vec<_> = events.iter().filter(|e| e.event_type == "OrderCancelled").collect();
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0].data["order_id"], "o1");
    assert_eq!(cancelled[0].meta.user.as_deref(), Some("schedule:Ordering.CancelUnpaidOrders"));

    let again = runtime.fire_schedule("Ordering", "CancelUnpaidOrders", minutes(36)).await.unwrap();
    assert!(again.outcomes.is_empty(), "a cancelled order is not listed again: {again:?}");
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timer_cancels_an_unpaid_order_once_it_is_older_than_the_timeout() {
    // 200 times real time: `rate(5 minutes)` every 1.5 s, 30 minutes in 9 s.
    let runtime = shop(ScheduleClock::Accelerated(200)).await;
    place_two_and_pay_the_second(&runtime).await;
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        runtime.settle_within(Duration::from_secs(20)).await.unwrap();
        if order(&runtime, "o1").await["lifecycle"] == "CANCELLED" {
            break;
        }
        assert!(Instant::now() < deadline, "o1 was not cancelled: {}", order(&runtime, "o1").await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let paid = order(&runtime, "o2").await;
    assert_eq!((paid["lifecycle"].clone(), paid["paid"].clone()), (json!("PLACED"), json!(true)));
    let row = runtime.stores().queries.get("Platform_Schedules", "Ordering.CancelUnpaidOrders").await.unwrap();
    assert!(row.is_some_and(|row| row["lastFiredAt"].as_u64().is_some()), "the firing is recorded");
    runtime.shutdown().await;
}
