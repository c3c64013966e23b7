use reventless::prelude::*;
use serde::{Deserialize, Serialize};

/// Everything that happens in the catalog. Variant names are the stored
/// event types: rename a variant only with `#[serde(rename = "OldName")]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
pub enum CatalogEvent {
    CategoryAdded {
        #[tag]
        category_id: String,
        name: String,
    },
    CategoryRenamed {
        #[tag]
        category_id: String,
        name: String,
    },
    CategoryArchived {
        #[tag]
        category_id: String,
    },
    ProductAdded {
        #[tag]
        product_id: String,
        name: String,
        description: String,
        price_cents: i64,
        currency: String,
        #[tag]
        category_id: String,
    },
    ProductPriceChanged {
        #[tag]
        product_id: String,
        price_cents: i64,
        currency: String,
    },
    ProductArchived {
        #[tag]
        product_id: String,
    },
    ProductUnarchived {
        #[tag]
        product_id: String,
    },
    ProductDiscontinued {
        #[tag]
        product_id: String,
    },
    DemandRecorded {
        #[tag]
        product_id: String,
        order_id: String,
    },
    DemandRevoked {
        #[tag]
        product_id: String,
        order_id: String,
    },
}

/// Why the catalog refuses a command (the variant name is the error code).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum CatalogError {
    CategoryAlreadyExists,
    CategoryNotFound,
    ProductAlreadyExists,
    ProductNotFound,
    ProductIsDiscontinued,
    InvalidPrice { price_cents: i64 },
    InvalidCurrency { currency: String },
}

/// Money is integer cents in an ISO 4217 currency.
pub(crate) fn check_price(price_cents: i64, currency: &str) -> Result<(), CatalogError> {
    if price_cents < 0 {
        return Err(CatalogError::InvalidPrice { price_cents });
    }
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(CatalogError::InvalidCurrency { currency: currency.to_string() });
    }
    Ok(())
}
