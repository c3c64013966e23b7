//! Ordering's background work: express orders ship themselves, and every
//! placed order is confirmed by mail through the `EmailService` capability.
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use reventless::prelude::*;
use reventless::spec::{Need, SecretValue, Secrets, Timestamp};
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

/// A mail to send. `idempotency_key` names what the mail is about (the
/// order of a confirmation): sending is at least once (a process can die
/// between sending and recording that it sent), so a provider that takes an
/// idempotency key delivers the same key once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mail {
    pub idempotency_key: String,
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// The local platform's fake: records every mail, and the API key it would
/// have sent it with, instead of sending it. Like a real client it needs
/// the key: a mail without one fails. With an outbox file
/// ([`MAIL_OUTBOX_ENV`]) it also appends every send attempt there, so that
/// several processes of one shop share what was sent.
#[derive(Default)]
pub struct RecordingEmailService {
    sent: Mutex<Vec<(Mail, SecretValue)>>,
    outbox: Option<PathBuf>,
}

/// The environment variable naming the outbox file of `dev`'s mail fake.
pub const MAIL_OUTBOX_ENV: &str = "REVENTLESS_MAIL_OUTBOX";

/// One line of an outbox file: a send attempt. A provider with idempotency
/// keys delivers each key once, so what was delivered is the set of
/// distinct keys; more attempts than keys are resends after a crash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxAttempt {
    #[serde(flatten)]
    pub mail: Mail,
    /// The process that sent it.
    pub pid: u32,
    /// Milliseconds since the Unix epoch.
    pub at: u64,
}

impl RecordingEmailService {
    /// A fake that also appends every attempt to the file at `outbox`.
    pub fn with_outbox(outbox: impl Into<PathBuf>) -> Self {
        Self { sent: Mutex::default(), outbox: Some(outbox.into()) }
    }

    /// The outbox file, if any.
    pub fn outbox(&self) -> Option<&Path> {
        self.outbox.as_deref()
    }

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
            if let Some(outbox) = &self.outbox {
                let attempt = OutboxAttempt { mail: mail.clone(), pid: std::process::id(), at: Timestamp::now().0 };
                append_line(outbox, &attempt)?;
            }
            self.sent.lock().map_err(|_| "mail log poisoned".to_string())?.push((mail, key));
            Ok(())
        })
    }
}

/// Appends `attempt` as one JSON line in a single `O_APPEND` write, so lines
/// of several processes never interleave; a short write is an error.
fn append_line(outbox: &Path, attempt: &OutboxAttempt) -> Result<(), String> {
    let failed = |e: &dyn std::fmt::Display| format!("mail outbox {}: {e}", outbox.display());
    let mut line = serde_json::to_vec(attempt).map_err(|e| failed(&e))?;
    line.push(b'\n');
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(outbox).map_err(|e| failed(&e))?;
    match file.write(&line) {
        Ok(written) if written == line.len() => Ok(()),
        Ok(written) => Err(failed(&format_args!("short write ({written} of {} bytes)", line.len()))),
        Err(e) => Err(failed(&e)),
    }
}

/// Reads an outbox file written by [`RecordingEmailService::with_outbox`]
/// (a missing file is an empty outbox; a line that is not an attempt is an
/// error naming it).
pub fn read_outbox(outbox: &Path) -> Result<Vec<OutboxAttempt>, String> {
    let text = match std::fs::read_to_string(outbox) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("mail outbox {}: {e}", outbox.display())),
    };
    text.lines()
        .enumerate()
        .map(|(number, line)| {
            serde_json::from_str(line).map_err(|e| format!("mail outbox {}:{}: {e}", outbox.display(), number + 1))
        })
        .collect()
}

/// The API key the shop's tests give the recording fake.
pub const TEST_MAIL_API_KEY: &str = "test-mail-api-key";

/// The payment webhook's secret in the shop's tests.
pub const TEST_PAYMENT_WEBHOOK_SECRET: &str = "test-payment-webhook-secret";

/// The capabilities of the shop's tests on the local platform (the mail API
/// key fixed to [`TEST_MAIL_API_KEY`], the payment webhook's secret to
/// [`TEST_PAYMENT_WEBHOOK_SECRET`]), and the fake to look into.
pub fn local_capabilities() -> (Capabilities, Arc<RecordingEmailService>) {
    let (capabilities, mails) = dev_capabilities();
    let secrets = Secrets::from_values([
        (MAIL_API_KEY, TEST_MAIL_API_KEY),
        (super::PAYMENT_WEBHOOK_SECRET, TEST_PAYMENT_WEBHOOK_SECRET),
    ]);
    (capabilities.with_secrets(secrets), mails)
}

/// The capabilities of `dev`: the recording fake, with the mail API key
/// from the local platform's secrets (the environment or
/// `.reventless/secrets.toml`); with `REVENTLESS_MAIL_OUTBOX=<file>` it
/// appends every send attempt to that file (several processes may share it).
pub fn dev_capabilities() -> (Capabilities, Arc<RecordingEmailService>) {
    let mails = Arc::new(match std::env::var_os(MAIL_OUTBOX_ENV) {
        Some(outbox) if !outbox.is_empty() => RecordingEmailService::with_outbox(outbox),
        _ => RecordingEmailService::default(),
    });
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
            idempotency_key: item.order_id.clone(),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests report failures by panicking
    use super::*;

    fn mail(key: &str) -> Mail {
        Mail {
            idempotency_key: key.into(),
            to: "c1".into(),
            subject: format!("Order {key} confirmed"),
            body: "".into(),
        }
    }

    #[tokio::test]
    async fn the_outbox_keeps_every_attempt_and_delivers_each_key_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.jsonl");
        let fake = RecordingEmailService::with_outbox(&path);
        let secrets = Secrets::from_values([(MAIL_API_KEY, TEST_MAIL_API_KEY)]);
        for key in ["o1", "o2", "o1"] {
            fake.send(mail(key), &secrets).await.unwrap();
        }
        let attempts = read_outbox(&path).unwrap();
        let keys: Vec<&str> = attempts.iter().map(|a| a.mail.idempotency_key.as_str()).collect();
        assert_eq!(keys, ["o1", "o2", "o1"]);
        assert!(attempts.iter().all(|a| a.pid == std::process::id() && a.mail.to == "c1"));
        let delivered: std::collections::BTreeSet<&str> = keys.into_iter().collect();
        assert_eq!(delivered.len(), 2);

        // Without the API key nothing is attempted.
        fake.send(mail("o3"), &Secrets::from_values(Vec::<(String, String)>::new())).await.unwrap_err();
        assert_eq!(read_outbox(&path).unwrap().len(), 3);

        std::fs::write(&path, "not json\n").unwrap();
        assert!(read_outbox(&path).unwrap_err().contains("outbox.jsonl:1"));
        assert!(read_outbox(&dir.path().join("none")).unwrap().is_empty());
    }
}
