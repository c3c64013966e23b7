//! `Catalog.Products`: what the catalog tells other plugins about products.
use reventless::prelude::*;
use serde::{Deserialize, Serialize};

use super::events::CatalogEvent;

/// The public product events (other plugins depend on these, never on
/// `CatalogEvent`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
#[serde(rename_all_fields = "camelCase")]
pub enum ProductNews {
    /// A new product can be ordered.
    ProductBecameAvailable {
        product_id: String,
        name: String,
        price_cents: i64,
        currency: String,
    },
    ProductPriceChanged {
        product_id: String,
        price_cents: i64,
        currency: String,
    },
    /// Archived or discontinued: no longer orderable.
    ProductWithdrawn {
        product_id: String,
    },
    /// Back on the shelf after an archival.
    ProductRelisted {
        product_id: String,
    },
}

/// The extension point `Catalog.Products`.
pub struct Products;

impl ExtensionPoint for Products {
    const NAME: &'static str = "Products";
    type Event = CatalogEvent;
    type Published = ProductNews;

    fn publish(event: &CatalogEvent, _: &EventEnvelope) -> Vec<ProductNews> {
        let news = match event {
            CatalogEvent::ProductAdded { product_id, name, price_cents, currency, .. } => {
                ProductNews::ProductBecameAvailable {
                    product_id: product_id.clone(),
                    name: name.clone(),
                    price_cents: *price_cents,
                    currency: currency.clone(),
                }
            }
            CatalogEvent::ProductPriceChanged { product_id, price_cents, currency } => {
                ProductNews::ProductPriceChanged {
                    product_id: product_id.clone(),
                    price_cents: *price_cents,
                    currency: currency.clone(),
                }
            }
            CatalogEvent::ProductArchived { product_id } | CatalogEvent::ProductDiscontinued { product_id } => {
                ProductNews::ProductWithdrawn { product_id: product_id.clone() }
            }
            CatalogEvent::ProductUnarchived { product_id } => {
                ProductNews::ProductRelisted { product_id: product_id.clone() }
            }
            _ => return vec![],
        };
        vec![news]
    }
}
