//! Product demand: how many open orders want a product. Not in the API: the
//! extension on `Ordering.Orders` records and revokes it, at least once, so
//! both commands are idempotent per order id and the count never drops
//! below zero.
use std::collections::BTreeSet;

use reventless::prelude::*;
use serde::{Deserialize, Serialize};

use super::events::{CatalogError, CatalogEvent};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all_fields = "camelCase")]
pub enum DemandCommand {
    RecordDemand {
        #[tag]
        product_id: String,
        order_id: String,
    },
    RevokeDemand {
        #[tag]
        product_id: String,
        order_id: String,
    },
}

/// The orders currently wanting one product.
pub struct ProductDemand;

impl StateChangeSlice for ProductDemand {
    const NAME: &'static str = "ProductDemand";
    const API: bool = false;
    const CONSUMES: &'static [&'static str] = &["DemandRecorded", "DemandRevoked"];
    const PRODUCES: &'static [&'static str] = &["DemandRecorded", "DemandRevoked"];
    type Command = DemandCommand;
    type Event = CatalogEvent;
    type State = BTreeSet<String>;
    type Error = CatalogError;

    fn evolve(mut orders: BTreeSet<String>, event: &CatalogEvent) -> BTreeSet<String> {
        match event {
            CatalogEvent::DemandRecorded { order_id, .. } => {
                orders.insert(order_id.clone());
            }
            CatalogEvent::DemandRevoked { order_id, .. } => {
                orders.remove(order_id);
            }
            _ => {}
        }
        orders
    }

    fn decide(orders: &BTreeSet<String>, command: &DemandCommand) -> Result<Vec<CatalogEvent>, CatalogError> {
        Ok(match command {
            DemandCommand::RecordDemand { order_id, .. } if orders.contains(order_id) => vec![],
            DemandCommand::RecordDemand { product_id, order_id } => {
                vec![CatalogEvent::DemandRecorded { product_id: product_id.clone(), order_id: order_id.clone() }]
            }
            DemandCommand::RevokeDemand { product_id, order_id } if orders.contains(order_id) => {
                vec![CatalogEvent::DemandRevoked { product_id: product_id.clone(), order_id: order_id.clone() }]
            }
            DemandCommand::RevokeDemand { .. } => vec![],
        })
    }
}

/// A row of `Catalog_ProductDemand(id)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductDemandRow {
    pub product_id: String,
    pub order_count: i64,
}

/// `Catalog_ProductDemand(id)` / `Catalog_ProductDemands`.
pub struct ProductDemands;

impl ReadModel for ProductDemands {
    const NAME: &'static str = "ProductDemand";
    const PLURAL: &'static str = "ProductDemands";
    const CONSUMES: &'static [&'static str] = &["DemandRecorded", "DemandRevoked"];
    type Event = CatalogEvent;
    type Row = ProductDemandRow;

    fn project(event: &CatalogEvent, _: &EventEnvelope) -> Vec<Action<ProductDemandRow>> {
        let (product_id, delta) = match event {
            CatalogEvent::DemandRecorded { product_id, .. } => (product_id, 1),
            CatalogEvent::DemandRevoked { product_id, .. } => (product_id, -1),
            _ => return vec![],
        };
        let empty = ProductDemandRow { product_id: product_id.clone(), order_count: 0 };
        vec![Action::update_with_default(product_id.clone(), empty, move |row| {
            row.order_count = (row.order_count + delta).max(0);
        })]
    }
}
