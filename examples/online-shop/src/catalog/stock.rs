//! Stock: units received per product, reserved by orders and released when
//! an order is cancelled. Managers receive stock through the API; Ordering
//! reserves and releases it through the `Catalog.Products` extension point
//! (see `stock_requests`), at least once: both are idempotent per order id.
use std::collections::BTreeMap;

use reventless::prelude::*;
use serde::{Deserialize, Serialize};

use super::MANAGERS;

/// The stock's own events (in the Catalog log, next to `CatalogEvent`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
#[serde(rename_all_fields = "camelCase")]
pub enum StockEvent {
    StockReceived {
        #[tag]
        product_id: String,
        quantity: i64,
    },
    StockReserved {
        #[tag]
        product_id: String,
        order_id: String,
        quantity: i64,
    },
    StockReleased {
        #[tag]
        product_id: String,
        order_id: String,
        quantity: i64,
    },
}

/// Why a stock command is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all_fields = "camelCase")]
pub enum StockError {
    /// Quantities are whole positive units.
    InvalidQuantity { quantity: i64 },
    /// Fewer units available than requested: nothing is reserved.
    OutOfStock { product_id: String, available: i64, requested: i64 },
}

/// `Catalog_ReceiveStock`: units arrived at the warehouse.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all = "camelCase")]
pub struct ReceiveStock {
    #[tag]
    pub product_id: String,
    pub quantity: i64,
}

impl StateChangeSlice for ReceiveStock {
    const NAME: &'static str = "ReceiveStock";
    const ROLES: &'static [&'static str] = MANAGERS;
    const CONSUMES: &'static [&'static str] = &[];
    const PRODUCES: &'static [&'static str] = &["StockReceived"];
    type Command = ReceiveStock;
    type Event = StockEvent;
    type State = ();
    type Error = StockError;

    fn evolve(state: (), _: &StockEvent) {
        state
    }

    fn decide(_: &(), command: &ReceiveStock) -> Result<Vec<StockEvent>, StockError> {
        if command.quantity <= 0 {
            return Err(StockError::InvalidQuantity { quantity: command.quantity });
        }
        Ok(vec![StockEvent::StockReceived { product_id: command.product_id.clone(), quantity: command.quantity }])
    }
}

/// The internal stock commands (not in the API: `Catalog.Products` maps the
/// public `StockRequest`s to these).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all_fields = "camelCase")]
pub enum StockCommand {
    HoldStock {
        #[tag]
        product_id: String,
        order_id: String,
        quantity: i64,
    },
    FreeStock {
        #[tag]
        product_id: String,
        order_id: String,
    },
}

/// One product's stock: units available and each order's reservation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StockState {
    pub available: i64,
    /// Order id → units it holds (absent once released).
    pub reservations: BTreeMap<String, i64>,
    /// Orders whose reservation was released (a late redelivery of their
    /// reservation reserves nothing).
    pub released: Vec<String>,
}

/// Reserves and releases a product's units for orders.
pub struct StockReservation;

impl StateChangeSlice for StockReservation {
    const NAME: &'static str = "StockReservation";
    const API: bool = false;
    const CONSUMES: &'static [&'static str] = &["StockReceived", "StockReserved", "StockReleased"];
    const PRODUCES: &'static [&'static str] = &["StockReserved", "StockReleased"];
    type Command = StockCommand;
    type Event = StockEvent;
    type State = StockState;
    type Error = StockError;

    fn evolve(mut state: StockState, event: &StockEvent) -> StockState {
        match event {
            StockEvent::StockReceived { quantity, .. } => state.available += quantity,
            StockEvent::StockReserved { order_id, quantity, .. } => {
                state.available -= quantity;
                state.reservations.insert(order_id.clone(), *quantity);
            }
            StockEvent::StockReleased { order_id, quantity, .. } => {
                state.available += quantity;
                state.reservations.remove(order_id);
                state.released.push(order_id.clone());
            }
        }
        state
    }

    fn decide(state: &StockState, command: &StockCommand) -> Result<Vec<StockEvent>, StockError> {
        match command {
            StockCommand::HoldStock { order_id, .. }
                if state.reservations.contains_key(order_id) || state.released.contains(order_id) =>
            {
                Ok(vec![])
            }
            StockCommand::HoldStock { quantity, .. } if *quantity <= 0 => {
                Err(StockError::InvalidQuantity { quantity: *quantity })
            }
            StockCommand::HoldStock { product_id, quantity, .. } if state.available < *quantity => {
                Err(StockError::OutOfStock {
                    product_id: product_id.clone(),
                    available: state.available,
                    requested: *quantity,
                })
            }
            StockCommand::HoldStock { product_id, order_id, quantity } => Ok(vec![StockEvent::StockReserved {
                product_id: product_id.clone(),
                order_id: order_id.clone(),
                quantity: *quantity,
            }]),
            StockCommand::FreeStock { product_id, order_id } => Ok(match state.reservations.get(order_id) {
                Some(quantity) => vec![StockEvent::StockReleased {
                    product_id: product_id.clone(),
                    order_id: order_id.clone(),
                    quantity: *quantity,
                }],
                None => vec![],
            }),
        }
    }
}

/// A row of `Catalog_ProductStock(id)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductStockRow {
    pub product_id: String,
    /// Units not reserved by any order.
    pub available: i64,
    /// Units reserved by open orders.
    pub reserved: i64,
}

/// `Catalog_ProductStock(id)` / `Catalog_ProductStocks`.
pub struct ProductStocks;

impl ReadModel for ProductStocks {
    const NAME: &'static str = "ProductStock";
    const PLURAL: &'static str = "ProductStocks";
    const CONSUMES: &'static [&'static str] = &["StockReceived", "StockReserved", "StockReleased"];
    type Event = StockEvent;
    type Row = ProductStockRow;

    fn project(event: &StockEvent, _: &EventEnvelope) -> Vec<Action<ProductStockRow>> {
        let (product_id, available, reserved) = match event {
            StockEvent::StockReceived { product_id, quantity } => (product_id, *quantity, 0),
            StockEvent::StockReserved { product_id, quantity, .. } => (product_id, -quantity, *quantity),
            StockEvent::StockReleased { product_id, quantity, .. } => (product_id, *quantity, -quantity),
        };
        let empty = ProductStockRow { product_id: product_id.clone(), available: 0, reserved: 0 };
        vec![Action::update_with_default(product_id.clone(), empty, move |row| {
            row.available += available;
            row.reserved += reserved;
        })]
    }
}
