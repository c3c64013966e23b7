//! Ordering's background work: express orders ship themselves, and every
//! placed order is confirmed by mail through the `EmailService` capability.
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use reventless::prelude::*;
use reventless::spec::{Need, SecretValue, Secrets};
use serde::{Deserialize, Serialize};

use super::events::{OrderingError, OrderingEvent, Shipping};
use super::orders::ShipOrder;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentItem {
    pub order_id: String,
}

/// EXPRESS orders are shipped automatically; `OrderShipped` resolves the item.
pub struct AutoShipOrder;

impl AutomationSlice for AutoShipOrder {
    const NAME: &'static str = "AutoShipOrder";
    const CONSUMES: &'static [&'static str] = &["OrderPlaced", "OrderShipped"];
    type Event = OrderingEvent;
    type Item = ShipmentItem;

    fn collect(event: &OrderingEvent, _: &EventEnvelope) -> Option<(String, ShipmentItem)> {
        match event {
            OrderingEvent::OrderPlaced { order_id, shipping: Shipping::Express, .. } => {
                Some((order_id.clone(), ShipmentItem { order_id: order_id.clone() }))
            }
            _ => None,
        }
    }

    fn resolve(event: &OrderingEvent, _: &EventEnvelope) -> Option<String> {
        match event {
            OrderingEvent::OrderShipped { order_id } => Some(order_id.clone()),
            _ => None,
        }
    }

    fn process(_: &str, item: &ShipmentItem) -> Vec<Dispatch> {
        Dispatch::slice(&ShipOrder { order_id: item.order_id.clone() }).into_iter().collect()
    }
}

/// The secret holding the mail provider's API key (`[secrets]` on AWS;
/// `REVENTLESS_SECRET_MAIL_API_KEY` or `.reventless/secrets.toml` locally).
pub const MAIL_API_KEY: &str = "mail-api-key";

/// What sending a mail returns.
pub type Sending<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Sends mail to customers (provided by the composition root). A service
/// that needs a credential reads it from `secrets` when it sends (fetched on
/// first use, then cached by the platform).
pub trait EmailService: Send + Sync {
    fn send<'a>(&'a self, mail: Mail, secrets: &'a Secrets) -> Sending<'a>;
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// The local platform's fake: records every mail, and the API key it would
/// have sent it with, instead of sending it. Like a real client it needs
/// the key: a mail without one fails.
#[derive(Default)]
pub struct RecordingEmailService {
    sent: Mutex<Vec<(Mail, SecretValue)>>,
}

impl RecordingEmailService {
    pub fn sent(&self) -> Vec<Mail> {
        self.sent.lock().map(|sent| sent.iter().map(|(mail, _)| mail.clone()).collect()).unwrap_or_default()
    }

    /// The API key each mail went out with, in order.
    pub fn credentials(&self) -> Vec<SecretValue> {
        self.sent.lock().map(|sent| sent.iter().map(|(_, key)| key.clone()).collect()).unwrap_or_default()
    }
}

impl EmailService for RecordingEmailService {
    fn send<'a>(&'a self, mail: Mail, secrets: &'a Secrets) -> Sending<'a> {
        Box::pin(async move {
            let key = secrets.get(MAIL_API_KEY).await.map_err(|e| e.to_string())?;
            self.sent.lock().map_err(|_| "mail log poisoned".to_string())?.push((mail, key));
            Ok(())
        })
    }
}

/// The API key the shop's tests give the recording fake.
pub const TEST_MAIL_API_KEY: &str = "test-mail-api-key";

/// The capabilities of the shop's tests on the local platform (the mail API
/// key fixed to [`TEST_MAIL_API_KEY`]), and the fake to look into.
pub fn local_capabilities() -> (Capabilities, Arc<RecordingEmailService>) {
    let (capabilities, mails) = dev_capabilities();
    (capabilities.with_secrets(Secrets::from_values([(MAIL_API_KEY, TEST_MAIL_API_KEY)])), mails)
}

/// The capabilities of `dev`: the recording fake, with the mail API key
/// from the local platform's secrets (the environment or
/// `.reventless/secrets.toml`).
pub fn dev_capabilities() -> (Capabilities, Arc<RecordingEmailService>) {
    let mails = Arc::new(RecordingEmailService::default());
    (Capabilities::new().with::<dyn EmailService>(mails.clone()), mails)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Confirmation {
    pub order_id: String,
    pub customer_id: String,
    pub total_cents: i64,
    pub currency: String,
}

/// Confirms every placed order by mail.
pub struct SendOrderConfirmation;

impl OutboundTranslationSlice for SendOrderConfirmation {
    const NAME: &'static str = "SendOrderConfirmation";
    const CONSUMES: &'static [&'static str] = &["OrderPlaced"];
    const NEEDS: &'static [Need] = &[Need::of::<dyn EmailService>()];
    type Event = OrderingEvent;
    type Item = Confirmation;

    fn collect(event: &OrderingEvent, _: &EventEnvelope) -> Option<(String, Confirmation)> {
        match event {
            OrderingEvent::OrderPlaced { order_id, customer_id, total_cents, currency, .. } => Some((
                order_id.clone(),
                Confirmation {
                    order_id: order_id.clone(),
                    customer_id: customer_id.clone(),
                    total_cents: *total_cents,
                    currency: currency.clone(),
                },
            )),
            _ => None,
        }
    }

    async fn translate(_: &str, item: &Confirmation, capabilities: &Capabilities) -> Result<Vec<Dispatch>, String> {
        let email = capabilities.get::<dyn EmailService>().ok_or("no EmailService capability")?;
        let mail = Mail {
            to: item.customer_id.clone(),
            subject: format!("Order {} confirmed", item.order_id),
            body: format!("Total: {} {} cents", item.total_cents, item.currency),
        };
        let recorded =
            RecordConfirmation { order_id: item.order_id.clone(), to: mail.to.clone(), subject: mail.subject.clone() };
        email.send(mail, capabilities.secrets()).await?;
        Ok(Dispatch::slice(&recorded).into_iter().collect())
    }
}

/// Records that an order's confirmation went out (answer of
/// `SendOrderConfirmation`, not in the API); a second record is no event, so
/// a redelivered translation does not count twice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all = "camelCase")]
pub struct RecordConfirmation {
    #[tag]
    pub order_id: String,
    pub to: String,
    pub subject: String,
}

/// Whether the order exists and its confirmation was recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConfirmationState {
    placed: bool,
    sent: bool,
}

impl StateChangeSlice for RecordConfirmation {
    const NAME: &'static str = "RecordConfirmation";
    const API: bool = false;
    const CONSUMES: &'static [&'static str] = &["OrderPlaced", "OrderConfirmationSent"];
    const PRODUCES: &'static [&'static str] = &["OrderConfirmationSent"];
    type Command = Self;
    type Event = OrderingEvent;
    type State = ConfirmationState;
    type Error = OrderingError;

    fn evolve(mut state: ConfirmationState, event: &OrderingEvent) -> ConfirmationState {
        match event {
            OrderingEvent::OrderPlaced { .. } => state.placed = true,
            OrderingEvent::OrderConfirmationSent { .. } => state.sent = true,
            _ => {}
        }
        state
    }

    fn decide(state: &ConfirmationState, c: &Self) -> Result<Vec<OrderingEvent>, OrderingError> {
        if !state.placed {
            return Err(OrderingError::OrderNotFound);
        }
        if state.sent {
            return Ok(vec![]);
        }
        Ok(vec![OrderingEvent::OrderConfirmationSent {
            order_id: c.order_id.clone(),
            to: c.to.clone(),
            subject: c.subject.clone(),
        }])
    }
}

/// A row of `Ordering_OrderConfirmations`: the mail sent for an order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmationRow {
    /// The order id.
    pub id: String,
    pub to: String,
    pub subject: String,
    /// Milliseconds since the Unix epoch.
    pub sent_at: u64,
}

/// `Ordering_OrderConfirmation(id)` / `Ordering_OrderConfirmations`: the
/// confirmation mails that went out, one per order.
pub struct OrderConfirmations;

impl ReadModel for OrderConfirmations {
    const NAME: &'static str = "OrderConfirmation";
    const PLURAL: &'static str = "OrderConfirmations";
    const CONSUMES: &'static [&'static str] = &["OrderConfirmationSent"];
    const INDEXES: &'static [&'static str] = &["to"];
    type Event = OrderingEvent;
    type Row = ConfirmationRow;

    fn project(event: &OrderingEvent, envelope: &EventEnvelope) -> Vec<Action<ConfirmationRow>> {
        match event {
            OrderingEvent::OrderConfirmationSent { order_id, to, subject } => vec![Action::set(
                order_id.clone(),
                ConfirmationRow {
                    id: order_id.clone(),
                    to: to.clone(),
                    subject: subject.clone(),
                    sent_at: envelope.recorded_at.0,
                },
            )],
            _ => vec![],
        }
    }
}
