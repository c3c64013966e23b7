//! Correlation and causation on the local platform (both shop plugins in
//! one process), read back from the events, the todo rows and the JSON log
//! lines the Lambda functions write: an express order placed under one
//! correlation id ships itself (automation), is confirmed by mail (outbound
//! translation) and counted as demand in Catalog (extension); every event of
//! that chain carries the order's correlation id, each event's causation is
//! the command that appended it, and each of those commands' causation is
//! the event it acted on.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reventless::{Caller, CommandRequest, Runtime};
use reventless_spec::EventEnvelope;
use serde_json::{Value, json};

/// The log lines, as the Lambda subscriber writes them.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn parsed(&self) -> Vec<Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))).collect()
    }
}

async fn run(runtime: &Runtime, request: CommandRequest) {
    let command = request.command.clone();
    let outcome = runtime.execute(request).await.unwrap();
    assert!(outcome.is_accepted(), "{command}: {outcome:?}");
}

async fn events(runtime: &Runtime, log: &str) -> Vec<EventEnvelope> {
    runtime.stores().events.read_all(log, 0, 1000).await.unwrap()
}

fn one<'a>(events: &'a [EventEnvelope], event_type: &str) -> &'a EventEnvelope {
    let found: Vec<&EventEnvelope> = events.iter().filter(|e| e.event_type == event_type).collect();
    assert_eq!(found.len(), 1, "one {event_type}: {found:?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_and_everything_it_causes_share_its_correlation_and_name_their_causes() {
    let lines = Lines::default();
    let writer = lines.clone();
    assert!(reventless_aws::lambda::logging::init_with(move || writer.clone(), Some("debug".into()), None));
    let (capabilities, _mails) = online_shop::ordering::local_capabilities();
    let runtime = reventless::local::start_in_memory_with(online_shop::plugins(), capabilities).unwrap();
    let merchandiser = Caller { user_id: Some("mia".into()), roles: vec!["Merchandiser".into()] };
    let customer = Caller { user_id: Some("c1".into()), roles: vec![] };
    let setup = [
        CommandRequest::new("Catalog", "AddCategory", json!({"categoryId": "books", "name": "Books"})),
        CommandRequest::new(
            "Catalog",
            "AddProduct",
            json!({"productId": "p1", "name": "p1", "description": "", "priceCents": 500, "currency": "EUR",
                   "categoryId": "books"}),
        ),
    ];
    let product_command = setup[1].command_id.clone();
    for request in setup {
        run(&runtime, request.caller(merchandiser.clone())).await;
    }
    let register = json!({"id": "c1", "name": "Ann", "email": "ann@example.org"});
    run(&runtime, CommandRequest::new("Ordering", "Customer_Register", register).caller(customer.clone())).await;
    runtime.settle_within(Duration::from_secs(15)).await.unwrap();

    let mut place = CommandRequest::new(
        "Ordering",
        "PlaceOrder",
        json!({"orderId": "o1", "customerId": "c1", "lines": [{"productId": "p1", "quantity": 1}], "shipping": "EXPRESS"}),
    )
    .caller(customer);
    place.correlation_id = Some("order-o1".into());
    let place_command = place.command_id.clone();
    run(&runtime, place).await;
    runtime.settle_within(Duration::from_secs(15)).await.unwrap();

    let ordering = events(&runtime, "Ordering").await;
    let catalog = events(&runtime, "Catalog").await;
    let placed = one(&ordering, "OrderPlaced");
    assert_eq!(placed.meta.correlation_id.as_deref(), Some("order-o1"));
    assert_eq!(placed.meta.causation_id.as_deref(), Some(place_command.as_str()), "an event's cause is its command");
    let placed_id = placed.event_id.to_string();

    // Automation (AutoShipOrder), outbound translation (SendOrderConfirmation)
    // and extension (Catalog's demand): their events carry the correlation.
    let caused =
        [one(&ordering, "OrderShipped"), one(&ordering, "OrderConfirmationSent"), one(&catalog, "DemandRecorded")];
    let lines = lines.parsed();
    for event in caused {
        assert_eq!(event.meta.correlation_id.as_deref(), Some("order-o1"), "{}: {:?}", event.event_type, event.meta);
        // Its causation is the command that appended it; that command's
        // causation is the order's event (as the command's log line says).
        let command_id = event.meta.causation_id.clone().unwrap();
        let command_line = lines
            .iter()
            .find(|line| line["commandId"] == command_id.as_str() && line["message"] == "command accepted")
            .unwrap_or_else(|| panic!("a log line of command {command_id} ({})", event.event_type));
        assert_eq!(command_line["causationId"], placed_id.as_str(), "{command_line}");
        assert_eq!(command_line["correlationId"], "order-o1", "{command_line}");
    }

    // The automation's todo row keeps the cause for later attempts (retries, heartbeats).
    let todo = runtime.stores().queries.get("Ordering_AutoShipOrderTodos", "o1").await.unwrap().unwrap();
    assert_eq!(
        (todo["correlationId"].as_str(), todo["causationId"].as_str()),
        (Some("order-o1"), Some(placed_id.as_str()))
    );

    // The product's own chain: synced into Ordering under the AddProduct command's correlation.
    let synced = one(&ordering, "ProductSynced");
    assert_eq!(synced.meta.correlation_id.as_deref(), Some(product_command.as_str()));
    let added = one(&catalog, "ProductAdded");
    assert_eq!(added.meta.correlation_id.as_deref(), Some(product_command.as_str()));
    runtime.shutdown().await;
}
