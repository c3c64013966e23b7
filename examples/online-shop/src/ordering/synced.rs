//! Ordering's own copy of the catalog's products, fed by the extension on
//! `Catalog.Products`. Delivery is at least once and not always in order
//! across products, so every sync command is idempotent.
use reventless::prelude::*;
use serde::{Deserialize, Serialize};

use super::events::{OrderingError, OrderingEvent};
use crate::catalog::{ProductNews, ProductsPoint};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all_fields = "camelCase")]
pub enum SyncCommand {
    SyncNewProduct {
        #[tag]
        product_id: String,
        name: String,
        price_cents: i64,
        currency: String,
    },
    ChangeSyncedPrice {
        #[tag]
        product_id: String,
        price_cents: i64,
        currency: String,
    },
    WithdrawSyncedProduct {
        #[tag]
        product_id: String,
    },
    RelistSyncedProduct {
        #[tag]
        product_id: String,
    },
}

/// A synced product as the order slices see it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncedProduct {
    pub known: bool,
    pub available: bool,
    pub price: (i64, String),
}

pub(crate) fn evolve_synced(mut product: SyncedProduct, event: &OrderingEvent) -> SyncedProduct {
    match event {
        OrderingEvent::ProductSynced { price_cents, currency, .. } => {
            product = SyncedProduct { known: true, available: true, price: (*price_cents, currency.clone()) };
        }
        OrderingEvent::SyncedPriceChanged { price_cents, currency, .. } => {
            product.price = (*price_cents, currency.clone())
        }
        OrderingEvent::SyncedProductWithdrawn { .. } => product.available = false,
        OrderingEvent::SyncedProductRelisted { .. } => product.available = true,
        _ => {}
    }
    product
}

pub(crate) const SYNC_EVENTS: &[&str] =
    &["ProductSynced", "SyncedPriceChanged", "SyncedProductWithdrawn", "SyncedProductRelisted"];

pub struct SyncProducts;

impl StateChangeSlice for SyncProducts {
    const NAME: &'static str = "SyncProducts";
    const API: bool = false;
    const CONSUMES: &'static [&'static str] = SYNC_EVENTS;
    const PRODUCES: &'static [&'static str] = SYNC_EVENTS;
    type Command = SyncCommand;
    type Event = OrderingEvent;
    type State = SyncedProduct;
    type Error = OrderingError;

    fn evolve(state: SyncedProduct, event: &OrderingEvent) -> SyncedProduct {
        evolve_synced(state, event)
    }

    fn decide(p: &SyncedProduct, command: &SyncCommand) -> Result<Vec<OrderingEvent>, OrderingError> {
        let event = match command {
            SyncCommand::SyncNewProduct { .. } if p.known => return Ok(vec![]),
            SyncCommand::SyncNewProduct { product_id, name, price_cents, currency } => OrderingEvent::ProductSynced {
                product_id: product_id.clone(),
                name: name.clone(),
                price_cents: *price_cents,
                currency: currency.clone(),
            },
            _ if !p.known => return Ok(vec![]),
            SyncCommand::ChangeSyncedPrice { price_cents, currency, .. }
                if p.price == (*price_cents, currency.clone()) =>
            {
                return Ok(vec![]);
            }
            SyncCommand::ChangeSyncedPrice { product_id, price_cents, currency } => OrderingEvent::SyncedPriceChanged {
                product_id: product_id.clone(),
                price_cents: *price_cents,
                currency: currency.clone(),
            },
            SyncCommand::WithdrawSyncedProduct { .. } if !p.available => return Ok(vec![]),
            SyncCommand::WithdrawSyncedProduct { product_id } => {
                OrderingEvent::SyncedProductWithdrawn { product_id: product_id.clone() }
            }
            SyncCommand::RelistSyncedProduct { .. } if p.available => return Ok(vec![]),
            SyncCommand::RelistSyncedProduct { product_id } => {
                OrderingEvent::SyncedProductRelisted { product_id: product_id.clone() }
            }
        };
        Ok(vec![event])
    }
}

/// The extension on `Catalog.Products`.
pub struct CatalogProducts;

impl Extension for CatalogProducts {
    const NAME: &'static str = "CatalogProducts";
    const SOURCE_PLUGIN: &'static str = "Catalog";
    type Point = ProductsPoint;

    fn handle(news: &ProductNews) -> Vec<Dispatch> {
        let command = match news.clone() {
            ProductNews::ProductBecameAvailable { product_id, name, price_cents, currency } => {
                SyncCommand::SyncNewProduct { product_id, name, price_cents, currency }
            }
            ProductNews::ProductPriceChanged { product_id, price_cents, currency } => {
                SyncCommand::ChangeSyncedPrice { product_id, price_cents, currency }
            }
            ProductNews::ProductWithdrawn { product_id } => SyncCommand::WithdrawSyncedProduct { product_id },
            ProductNews::ProductRelisted { product_id } => SyncCommand::RelistSyncedProduct { product_id },
        };
        Dispatch::slice(&command).into_iter().collect()
    }
}
