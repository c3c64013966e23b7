//! Ordering's query side: Orders, Customers (with their order count),
//! AvailableProducts.
use reventless::prelude::*;
use serde::{Deserialize, Serialize};

use super::events::{OrderLine, OrderingEvent};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Lifecycle {
    Placed,
    Shipped,
    Cancelled,
}

/// A row of `Ordering_Orders`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderRow {
    pub id: String,
    pub customer_id: String,
    pub lifecycle: Lifecycle,
    pub total_cents: i64,
    pub currency: String,
    /// Milliseconds since the Unix epoch.
    pub placed_at: u64,
    pub lines: Vec<OrderLine>,
    /// Whether the order's payment arrived.
    #[serde(default)]
    pub paid: bool,
    /// When it was paid (milliseconds since the Unix epoch).
    #[serde(default)]
    pub paid_at: Option<u64>,
}

pub struct Orders;

impl ReadModel for Orders {
    const NAME: &'static str = "Order";
    const PLURAL: &'static str = "Orders";
    const CONSUMES: &'static [&'static str] = &["OrderPlaced", "OrderShipped", "OrderCancelled", "OrderPaid"];
    const INDEXES: &'static [&'static str] = &["customerId", "lifecycle"];
    type Event = OrderingEvent;
    type Row = OrderRow;

    fn project(event: &OrderingEvent, envelope: &EventEnvelope) -> Vec<Action<OrderRow>> {
        let action = match event {
            OrderingEvent::OrderPlaced { order_id, customer_id, lines, total_cents, currency, .. } => Action::set(
                order_id.clone(),
                OrderRow {
                    id: order_id.clone(),
                    customer_id: customer_id.clone(),
                    lifecycle: Lifecycle::Placed,
                    total_cents: *total_cents,
                    currency: currency.clone(),
                    placed_at: envelope.recorded_at.0,
                    lines: lines.clone(),
                    paid: false,
                    paid_at: None,
                },
            ),
            OrderingEvent::OrderShipped { order_id } => {
                Action::update(order_id.clone(), |row: &mut OrderRow| row.lifecycle = Lifecycle::Shipped)
            }
            OrderingEvent::OrderCancelled { order_id, .. } => {
                Action::update(order_id.clone(), |row: &mut OrderRow| row.lifecycle = Lifecycle::Cancelled)
            }
            OrderingEvent::OrderPaid { order_id, paid_at, .. } => {
                let paid_at = *paid_at;
                Action::update(order_id.clone(), move |row: &mut OrderRow| {
                    row.paid = true;
                    row.paid_at = Some(paid_at);
                })
            }
            _ => Action::Ignore,
        };
        vec![action]
    }
}

/// A row of `Ordering_Customers`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerRow {
    pub id: String,
    pub name: String,
    pub email: String,
    pub active: bool,
    pub order_count: i64,
}

pub struct Customers;

impl ReadModel for Customers {
    const NAME: &'static str = "Customer";
    const PLURAL: &'static str = "Customers";
    const CONSUMES: &'static [&'static str] =
        &["CustomerRegistered", "CustomerEmailUpdated", "CustomerDeactivated", "OrderPlaced"];
    type Event = OrderingEvent;
    type Row = CustomerRow;

    fn project(event: &OrderingEvent, _: &EventEnvelope) -> Vec<Action<CustomerRow>> {
        let action = match event {
            OrderingEvent::CustomerRegistered { customer_id, name, email } => Action::set(
                customer_id.clone(),
                CustomerRow {
                    id: customer_id.clone(),
                    name: name.clone(),
                    email: email.clone(),
                    active: true,
                    order_count: 0,
                },
            ),
            OrderingEvent::CustomerEmailUpdated { customer_id, email } => {
                let email = email.clone();
                Action::update(customer_id.clone(), move |row: &mut CustomerRow| row.email = email)
            }
            OrderingEvent::CustomerDeactivated { customer_id } => {
                Action::update(customer_id.clone(), |row: &mut CustomerRow| row.active = false)
            }
            OrderingEvent::OrderPlaced { customer_id, .. } => {
                Action::update(customer_id.clone(), |row: &mut CustomerRow| row.order_count += 1)
            }
            _ => Action::Ignore,
        };
        vec![action]
    }
}

/// A row of `Ordering_AvailableProducts`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AvailableProductRow {
    pub id: String,
    pub name: String,
    pub price_cents: i64,
    pub currency: String,
    pub available: bool,
}

pub struct AvailableProducts;

impl ReadModel for AvailableProducts {
    const NAME: &'static str = "AvailableProduct";
    const PLURAL: &'static str = "AvailableProducts";
    const CONSUMES: &'static [&'static str] =
        &["ProductSynced", "SyncedPriceChanged", "SyncedProductWithdrawn", "SyncedProductRelisted"];
    const INDEXES: &'static [&'static str] = &["available"];
    type Event = OrderingEvent;
    type Row = AvailableProductRow;

    fn project(event: &OrderingEvent, _: &EventEnvelope) -> Vec<Action<AvailableProductRow>> {
        let action = match event {
            OrderingEvent::ProductSynced { product_id, name, price_cents, currency } => Action::set(
                product_id.clone(),
                AvailableProductRow {
                    id: product_id.clone(),
                    name: name.clone(),
                    price_cents: *price_cents,
                    currency: currency.clone(),
                    available: true,
                },
            ),
            OrderingEvent::SyncedPriceChanged { product_id, price_cents, currency } => {
                let (price_cents, currency) = (*price_cents, currency.clone());
                Action::update(product_id.clone(), move |row: &mut AvailableProductRow| {
                    row.price_cents = price_cents;
                    row.currency = currency;
                })
            }
            OrderingEvent::SyncedProductWithdrawn { product_id } => {
                Action::update(product_id.clone(), |row: &mut AvailableProductRow| row.available = false)
            }
            OrderingEvent::SyncedProductRelisted { product_id } => {
                Action::update(product_id.clone(), |row: &mut AvailableProductRow| row.available = true)
            }
            _ => Action::Ignore,
        };
        vec![action]
    }
}
