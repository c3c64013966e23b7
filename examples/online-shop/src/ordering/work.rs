//! Ordering's background work: express orders ship themselves, and every
//! placed order is confirmed by mail through the `EmailService` capability.
use std::sync::{Arc, Mutex};

use reventless::prelude::*;
use serde::{Deserialize, Serialize};

use super::events::{OrderingEvent, Shipping};
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

/// Sends mail to customers (provided by the composition root).
pub trait EmailService: Send + Sync {
    fn send(&self, mail: Mail) -> Result<(), String>;
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// The local platform's fake: records every mail instead of sending it.
#[derive(Default)]
pub struct RecordingEmailService {
    sent: Mutex<Vec<Mail>>,
}

impl RecordingEmailService {
    pub fn sent(&self) -> Vec<Mail> {
        self.sent.lock().map(|sent| sent.clone()).unwrap_or_default()
    }
}

impl EmailService for RecordingEmailService {
    fn send(&self, mail: Mail) -> Result<(), String> {
        self.sent.lock().map_err(|_| "mail log poisoned".to_string())?.push(mail);
        Ok(())
    }
}

/// The capabilities of the shop on the local platform, and the fake to look into.
pub fn local_capabilities() -> (Capabilities, Arc<RecordingEmailService>) {
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
        email.send(Mail {
            to: item.customer_id.clone(),
            subject: format!("Order {} confirmed", item.order_id),
            body: format!("Total: {} {} cents", item.total_cents, item.currency),
        })?;
        Ok(vec![])
    }
}
