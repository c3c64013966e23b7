//! Orders: `Ordering_PlaceOrder`, `Ordering_ShipOrder`, `Ordering_CancelOrder`.
use std::collections::BTreeMap;

use reventless::prelude::*;
use serde::{Deserialize, Serialize};

use super::customers::{CustomerState, evolve_customer};
use super::events::{OrderLine, OrderingError, OrderingEvent, Shipping};
use super::synced::{SYNC_EVENTS, SyncedProduct, evolve_synced};

/// A requested line: which product, how many.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineRequest {
    pub product_id: String,
    pub quantity: i64,
}

/// `Ordering_PlaceOrder(orderId, customerId, lines, shipping)`; `customerId`
/// is the owner field (the caller's id unless the caller is an `Admin`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all = "camelCase")]
pub struct PlaceOrder {
    #[tag]
    pub order_id: String,
    #[tag("customer")]
    pub customer_id: String,
    pub lines: Vec<LineRequest>,
    pub shipping: Shipping,
}

/// Everything placing an order depends on.
#[derive(Clone, Debug, Default)]
pub struct PlacementState {
    order_exists: bool,
    customer: CustomerState,
    products: BTreeMap<String, SyncedProduct>,
}

impl StateChangeSlice for PlaceOrder {
    const NAME: &'static str = "PlaceOrder";
    const CONSUMES: &'static [&'static str] = &[
        "OrderPlaced",
        "CustomerRegistered",
        "CustomerDeactivated",
        "ProductSynced",
        "SyncedPriceChanged",
        "SyncedProductWithdrawn",
        "SyncedProductRelisted",
    ];
    const PRODUCES: &'static [&'static str] = &["OrderPlaced"];
    const OWNER: Option<reventless::spec::Owner> =
        Some(reventless::spec::Owner { field: "customerId", override_roles: &["Admin"] });
    type Command = Self;
    type Event = OrderingEvent;
    type State = PlacementState;
    type Error = OrderingError;

    /// The order, its customer, and each product of its lines.
    fn query(c: &Self) -> Query {
        let tag = |key: &str, value: &str| Tag::new(key, value).expect("literal key");
        let mut query =
            Query::none().item(QueryItem::new().types(["OrderPlaced"]).tags([tag("order", &c.order_id)])).item(
                QueryItem::new()
                    .types(["CustomerRegistered", "CustomerDeactivated"])
                    .tags([tag("customer", &c.customer_id)]),
            );
        for line in &c.lines {
            query = query
                .item(QueryItem::new().types(SYNC_EVENTS.iter().copied()).tags([tag("product", &line.product_id)]));
        }
        query
    }

    fn evolve(mut state: PlacementState, event: &OrderingEvent) -> PlacementState {
        match event {
            OrderingEvent::OrderPlaced { .. } => state.order_exists = true,
            OrderingEvent::CustomerRegistered { .. } | OrderingEvent::CustomerDeactivated { .. } => {
                state.customer = evolve_customer(std::mem::take(&mut state.customer), event);
            }
            OrderingEvent::ProductSynced { product_id, .. }
            | OrderingEvent::SyncedPriceChanged { product_id, .. }
            | OrderingEvent::SyncedProductWithdrawn { product_id }
            | OrderingEvent::SyncedProductRelisted { product_id } => {
                let product = state.products.remove(product_id).unwrap_or_default();
                state.products.insert(product_id.clone(), evolve_synced(product, event));
            }
            _ => {}
        }
        state
    }

    fn decide(state: &PlacementState, c: &Self) -> Result<Vec<OrderingEvent>, OrderingError> {
        if state.order_exists {
            return Err(OrderingError::OrderAlreadyPlaced);
        }
        if c.lines.is_empty() {
            return Err(OrderingError::OrderIsEmpty);
        }
        if let Some(line) = c.lines.iter().find(|l| l.quantity <= 0) {
            return Err(OrderingError::InvalidQuantity {
                product_id: line.product_id.clone(),
                quantity: line.quantity,
            });
        }
        if state.customer.email.is_none() || state.customer.deactivated {
            return Err(OrderingError::CustomerNotFound);
        }
        let missing: Vec<String> = c
            .lines
            .iter()
            .filter(|l| !state.products.get(&l.product_id).is_some_and(|p| p.known && p.available))
            .map(|l| l.product_id.clone())
            .collect();
        if !missing.is_empty() {
            return Err(OrderingError::ProductsNotAvailable { missing });
        }
        let lines: Vec<OrderLine> = c
            .lines
            .iter()
            .map(|l| OrderLine {
                product_id: l.product_id.clone(),
                quantity: l.quantity,
                unit_price_cents: state.products[&l.product_id].price.0,
            })
            .collect();
        let currency = state.products[&c.lines[0].product_id].price.1.clone();
        Ok(vec![OrderingEvent::OrderPlaced {
            order_id: c.order_id.clone(),
            customer_id: c.customer_id.clone(),
            total_cents: lines.iter().map(|l| l.quantity * l.unit_price_cents).sum(),
            lines,
            shipping: c.shipping,
            currency,
        }])
    }
}

/// `Ordering_ShipOrder(orderId)`: for `Admin` and `Fulfilment` (and the
/// express automation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all = "camelCase")]
pub struct ShipOrder {
    #[tag]
    pub order_id: String,
}

/// `Ordering_CancelOrder(orderId)`: any identified caller.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all = "camelCase")]
pub struct CancelOrder {
    #[tag]
    pub order_id: String,
}

/// What shipping and cancelling know about one order.
#[derive(Clone, Debug, Default)]
pub struct OrderState {
    placed: Option<(String, Vec<OrderLine>)>,
    shipped: bool,
    cancelled: bool,
}

const LIFECYCLE_EVENTS: &[&str] = &["OrderPlaced", "OrderShipped", "OrderCancelled"];

fn evolve_order(mut state: OrderState, event: &OrderingEvent) -> OrderState {
    match event {
        OrderingEvent::OrderPlaced { customer_id, lines, .. } => {
            state.placed = Some((customer_id.clone(), lines.clone()))
        }
        OrderingEvent::OrderShipped { .. } => state.shipped = true,
        OrderingEvent::OrderCancelled { .. } => state.cancelled = true,
        _ => {}
    }
    state
}

impl StateChangeSlice for ShipOrder {
    const NAME: &'static str = "ShipOrder";
    const ROLES: &'static [&'static str] = &["Admin", "Fulfilment"];
    const CONSUMES: &'static [&'static str] = LIFECYCLE_EVENTS;
    const PRODUCES: &'static [&'static str] = &["OrderShipped"];
    type Command = Self;
    type Event = OrderingEvent;
    type State = OrderState;
    type Error = OrderingError;

    fn evolve(state: OrderState, event: &OrderingEvent) -> OrderState {
        evolve_order(state, event)
    }

    fn decide(state: &OrderState, c: &Self) -> Result<Vec<OrderingEvent>, OrderingError> {
        if state.placed.is_none() {
            return Err(OrderingError::OrderNotFound);
        }
        if state.cancelled {
            return Err(OrderingError::OrderAlreadyCancelled);
        }
        if state.shipped {
            return Ok(vec![]);
        }
        Ok(vec![OrderingEvent::OrderShipped { order_id: c.order_id.clone() }])
    }
}

impl StateChangeSlice for CancelOrder {
    const NAME: &'static str = "CancelOrder";
    const REQUIRES_USER: bool = true;
    const CONSUMES: &'static [&'static str] = LIFECYCLE_EVENTS;
    const PRODUCES: &'static [&'static str] = &["OrderCancelled"];
    type Command = Self;
    type Event = OrderingEvent;
    type State = OrderState;
    type Error = OrderingError;

    fn evolve(state: OrderState, event: &OrderingEvent) -> OrderState {
        evolve_order(state, event)
    }

    fn decide(state: &OrderState, c: &Self) -> Result<Vec<OrderingEvent>, OrderingError> {
        let Some((customer_id, lines)) = &state.placed else { return Err(OrderingError::OrderNotFound) };
        if state.shipped {
            return Err(OrderingError::OrderAlreadyShipped);
        }
        if state.cancelled {
            return Ok(vec![]);
        }
        Ok(vec![OrderingEvent::OrderCancelled {
            order_id: c.order_id.clone(),
            customer_id: customer_id.clone(),
            lines: lines.clone(),
        }])
    }
}
