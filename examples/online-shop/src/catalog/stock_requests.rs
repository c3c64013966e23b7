//! The commands `Catalog.Products` accepts from other plugins: reserve and
//! release a product's stock for an order. Public (Ordering depends on
//! `StockRequest`, never on `StockCommand`); the catalog decides each one
//! with its own `StockReservation` slice, so an `OutOfStock` rejection
//! appends nothing.
use reventless::prelude::*;
use reventless::spec::{ExtensionPointCommands, WireError};
use serde::{Deserialize, Serialize};

use super::published::Products;
use super::stock::StockCommand;

/// What other plugins may ask of the catalog's stock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all_fields = "camelCase")]
pub enum StockRequest {
    /// Hold `quantity` units of a product for an order (idempotent per order).
    ReserveStock {
        #[tag]
        product_id: String,
        order_id: String,
        quantity: i64,
    },
    /// Give an order's units back (idempotent; nothing when none are held).
    ReleaseStock {
        #[tag]
        product_id: String,
        order_id: String,
    },
}

impl ExtensionPointCommands for Products {
    const PLUGIN: &'static str = super::PLUGIN;
    const SENDERS: &'static [&'static str] = &[crate::ordering::PLUGIN];
    type Command = StockRequest;

    fn dispatch(request: &StockRequest) -> Result<Dispatch, WireError> {
        let command = match request.clone() {
            StockRequest::ReserveStock { product_id, order_id, quantity } => {
                StockCommand::HoldStock { product_id, order_id, quantity }
            }
            StockRequest::ReleaseStock { product_id, order_id } => StockCommand::FreeStock { product_id, order_id },
        };
        Dispatch::slice(&command)
    }
}
