//! The multi-process test's view of the log: every event through the
//! stores API, uniqueness, and the read models as a fold of the events.
use std::collections::{BTreeMap, BTreeSet};

use online_shop::catalog::CatalogEvent;
use online_shop::ordering::OrderingEvent;
use reventless::core::store::EventLog;
use reventless::spec::{EventEnvelope, Message, from_wire};
use reventless_postgres::event_log::PgEventLog;
use serde_json::{Value, json};

use super::processes::Api;

/// Every event of a plugin's log, through the stores API.
pub async fn read_log(log: &PgEventLog, name: &str) -> Vec<EventEnvelope> {
    let (mut events, mut after) = (Vec::new(), 0);
    loop {
        let batch = log.read_all(name, after, 1000).await.unwrap();
        let Some(last) = batch.last() else { return events };
        after = last.position;
        events.extend(batch);
    }
}

/// Each event as (position, recorded at in ms since the epoch, typed event).
pub fn decode<M: Message>(events: &[EventEnvelope]) -> Vec<(u64, u64, M)> {
    events
        .iter()
        .map(|e| (e.position, e.recorded_at.0, from_wire::<M>("event", &e.event_type, e.data.clone()).unwrap()))
        .collect()
}

/// The distinct keys, each of which must occur once.
pub fn once(what: &str, keys: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    keys.into_iter().for_each(|key| *counts.entry(key).or_default() += 1);
    let twice: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{what} more than once in the log: {twice:?}");
    counts.into_keys().collect()
}

/// The read models as a fold of the logs: table → id → the fields queried.
pub fn fold(
    ordering: &[(u64, u64, OrderingEvent)],
    catalog: &[(u64, u64, CatalogEvent)],
) -> BTreeMap<&'static str, BTreeMap<String, Value>> {
    let (mut orders, mut customers, mut confirmations, mut products, mut demand) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new(), BTreeMap::new(), BTreeMap::<String, Value>::new());
    for (_, at, event) in ordering {
        match event {
            OrderingEvent::CustomerRegistered { customer_id, email, .. } => {
                let row = json!({"id": customer_id, "email": email, "active": true, "orderCount": 0});
                customers.insert(customer_id.clone(), row);
            }
            OrderingEvent::CustomerEmailUpdated { customer_id, email } => {
                customers.entry(customer_id.clone()).and_modify(|row: &mut Value| row["email"] = json!(email));
            }
            OrderingEvent::CustomerDeactivated { customer_id } => {
                customers.entry(customer_id.clone()).and_modify(|row: &mut Value| row["active"] = json!(false));
            }
            OrderingEvent::ProductSynced { product_id, price_cents, .. } => {
                let row = json!({"id": product_id, "priceCents": price_cents, "available": true});
                products.insert(product_id.clone(), row);
            }
            OrderingEvent::OrderPlaced { order_id, customer_id, total_cents, .. } => {
                let row = json!({"id": order_id, "customerId": customer_id, "lifecycle": "PLACED",
                    "totalCents": total_cents, "placedAt": at});
                orders.insert(order_id.clone(), row);
                customers
                    .entry(customer_id.clone())
                    .and_modify(|row: &mut Value| row["orderCount"] = json!(row["orderCount"].as_i64().unwrap() + 1));
            }
            OrderingEvent::OrderShipped { order_id } => {
                orders.entry(order_id.clone()).and_modify(|row: &mut Value| row["lifecycle"] = json!("SHIPPED"));
            }
            OrderingEvent::OrderCancelled { order_id, .. } => {
                orders.entry(order_id.clone()).and_modify(|row: &mut Value| row["lifecycle"] = json!("CANCELLED"));
            }
            OrderingEvent::OrderConfirmationSent { order_id, to, subject } => {
                confirmations.insert(order_id.clone(), json!({"id": order_id, "to": to, "subject": subject}));
            }
            _ => {}
        }
    }
    for (_, _, event) in catalog {
        let (product_id, delta) = match event {
            CatalogEvent::DemandRecorded { product_id, .. } => (product_id, 1),
            CatalogEvent::DemandRevoked { product_id, .. } => (product_id, -1),
            _ => continue,
        };
        let row = demand.entry(product_id.clone()).or_insert_with(|| json!({"productId": product_id, "orderCount": 0}));
        row["orderCount"] = json!((row["orderCount"].as_i64().unwrap() + delta).max(0));
    }
    BTreeMap::from([
        ("Ordering_Orders", orders),
        ("Ordering_Customers", customers),
        ("Ordering_OrderConfirmations", confirmations),
        ("Ordering_AvailableProducts", products),
        ("Catalog_ProductDemands", demand),
    ])
}

/// The fields queried of each folded table, and the field that is its id.
pub const TABLES: &[(&str, &str, &str)] = &[
    ("Ordering_Orders", "id customerId lifecycle totalCents placedAt", "id"),
    ("Ordering_Customers", "id email active orderCount", "id"),
    ("Ordering_OrderConfirmations", "id to subject", "id"),
    ("Ordering_AvailableProducts", "id priceCents available", "id"),
    ("Catalog_ProductDemands", "productId orderCount", "productId"),
];

/// Where the rows served by `process` differ from the fold (empty: equal).
pub async fn row_differences(
    api: &Api,
    process: usize,
    expected: &BTreeMap<&str, BTreeMap<String, Value>>,
) -> Vec<String> {
    let mut differences = Vec::new();
    for (table, fields, id) in TABLES {
        let served: BTreeMap<String, Value> = api
            .rows(process, table, fields)
            .await
            .into_iter()
            .map(|row| (row[id].as_str().unwrap().to_string(), row))
            .collect();
        let folded = &expected[table];
        for (key, row) in folded {
            match served.get(key) {
                None => differences.push(format!("{table}: {key} missing (fold: {row})")),
                Some(served) if served != row => differences.push(format!("{table}: {key} is {served}, fold {row}")),
                Some(_) => {}
            }
        }
        for key in served.keys().filter(|key| !folded.contains_key(*key)) {
            differences.push(format!("{table}: {key} served but not in the fold"));
        }
    }
    differences
}
