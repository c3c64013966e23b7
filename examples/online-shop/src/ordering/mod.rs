//! The Ordering plugin: customers, a synced copy of the catalog's products,
//! orders; express shipping by automation, confirmation mails through the
//! `EmailService` capability; publishes `Ordering.Orders`.
mod customers;
mod events;
mod orders;
mod payment_webhook;
mod payments;
mod published;
mod stock_requests;
mod synced;
mod unpaid;
mod views;
mod work;

pub use customers::{CustomerState, DeactivateCustomer, RegisterCustomer, UpdateCustomerEmail};
pub use events::{OrderLine, OrderingError, OrderingEvent, Shipping};
pub use orders::{CancelOrder, LineRequest, OrderState, PlaceOrder, ShipOrder};
pub use payment_webhook::{
    PAYMENT_SUCCEEDED, PAYMENT_WEBHOOK_SECRET, PaymentNotification, PaymentWebhook, PaymentWebhookError, payment_route,
};
pub use payments::{PaymentState, RecordPayment};
pub use published::{OrderNews, OrdersPoint};
pub use stock_requests::{RequestStock, StockWork};
pub use synced::{CatalogProducts, SyncCommand, SyncProducts, SyncedProduct};
pub use unpaid::{
    CancelUnpaidOrder, CancelUnpaidOrders, DEFAULT_UNPAID_ORDER_TIMEOUT, UNPAID_ORDER_TIMEOUT_ENV, UnpaidState,
    parse_timeout, unpaid_order_timeout,
};
pub use views::{AvailableProductRow, AvailableProducts, CustomerRow, Customers, Lifecycle, OrderRow, Orders};
pub use work::{
    AutoShipOrder, Confirmation, ConfirmationRow, ConfirmationState, EmailService, MAIL_API_KEY, MAIL_OUTBOX_ENV, Mail,
    OrderConfirmations, OutboxAttempt, RecordConfirmation, RecordingEmailService, SendOrderConfirmation, Sending,
    ShipmentItem, TEST_MAIL_API_KEY, TEST_PAYMENT_WEBHOOK_SECRET, dev_capabilities, local_capabilities, read_outbox,
};

use reventless::Plugin;

pub const PLUGIN: &str = "Ordering";

/// The Ordering plugin with its extension on `Catalog.Products` (host it
/// together with the Catalog plugin).
pub fn plugin() -> Plugin {
    standalone()
        .extension::<CatalogProducts>()
        // Reserves and releases orders' stock through `Catalog.Products`.
        .outbound_translation::<RequestStock>()
        .sends_to::<crate::catalog::ProductsPoint>()
}

/// The Ordering plugin without its extension on `Catalog.Products`.
pub fn standalone() -> Plugin {
    Plugin::new(PLUGIN)
        .version(env!("CARGO_PKG_VERSION"))
        .state_change_slice::<RegisterCustomer>()
        .state_change_slice::<UpdateCustomerEmail>()
        .state_change_slice::<DeactivateCustomer>()
        .state_change_slice::<SyncProducts>()
        .state_change_slice::<PlaceOrder>()
        .state_change_slice::<ShipOrder>()
        .state_change_slice::<CancelOrder>()
        .state_change_slice::<RecordPayment>()
        .state_change_slice::<CancelUnpaidOrder>()
        .http_route::<PaymentWebhook>(payment_route())
        .state_change_slice::<RecordConfirmation>()
        .read_model::<Orders>()
        .read_model::<Customers>()
        .read_model::<AvailableProducts>()
        .read_model::<OrderConfirmations>()
        .automation::<AutoShipOrder>()
        .schedule::<CancelUnpaidOrders>()
        .outbound_translation::<SendOrderConfirmation>()
        .extension_point::<OrdersPoint>()
}
