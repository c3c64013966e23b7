use reventless::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Shipping {
    Standard,
    Express,
}

/// One line of a placed order, priced when it was placed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    pub product_id: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

/// Everything that happens in ordering (one DCB log).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
pub enum OrderingEvent {
    CustomerRegistered {
        #[tag("customer")]
        customer_id: String,
        name: String,
        email: String,
    },
    CustomerEmailUpdated {
        #[tag("customer")]
        customer_id: String,
        email: String,
    },
    CustomerDeactivated {
        #[tag("customer")]
        customer_id: String,
    },
    ProductSynced {
        #[tag]
        product_id: String,
        name: String,
        price_cents: i64,
        currency: String,
    },
    SyncedPriceChanged {
        #[tag]
        product_id: String,
        price_cents: i64,
        currency: String,
    },
    SyncedProductWithdrawn {
        #[tag]
        product_id: String,
    },
    SyncedProductRelisted {
        #[tag]
        product_id: String,
    },
    OrderPlaced {
        #[tag]
        order_id: String,
        #[tag("customer")]
        customer_id: String,
        lines: Vec<OrderLine>,
        shipping: Shipping,
        total_cents: i64,
        currency: String,
    },
    OrderShipped {
        #[tag]
        order_id: String,
    },
    OrderCancelled {
        #[tag]
        order_id: String,
        customer_id: String,
        lines: Vec<OrderLine>,
    },
    /// The order's payment arrived (the whole total, once).
    OrderPaid {
        #[tag]
        order_id: String,
        payment_id: String,
        amount_cents: i64,
        /// Milliseconds since the Unix epoch.
        paid_at: u64,
    },
    /// The confirmation mail of an order went out through the `EmailService`.
    OrderConfirmationSent {
        #[tag]
        order_id: String,
        to: String,
        subject: String,
    },
}

/// Why ordering refuses a command (the variant name is the error code).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum OrderingError {
    CustomerAlreadyRegistered,
    CustomerNotFound,
    CustomerAlreadyDeactivated,
    OrderAlreadyPlaced,
    OrderIsEmpty,
    InvalidQuantity { product_id: String, quantity: i64 },
    ProductsNotAvailable { missing: Vec<String> },
    OrderNotFound,
    OrderAlreadyCancelled,
    OrderAlreadyShipped,
    OrderAlreadyPaid,
    PaymentAmountMismatch { expected_cents: i64, paid_cents: i64 },
}
