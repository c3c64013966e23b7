//! The payment provider's webhook, `POST /hooks/Ordering/payments`: its
//! notifications, in the provider's vocabulary, become `RecordPayment`.
//! Requests are signed with the secret [`PAYMENT_WEBHOOK_SECRET`].
use reventless::prelude::*;
use reventless::spec::{HttpRoute, Timestamp, WebhookSignature};
use serde::{Deserialize, Serialize};

use super::payments::RecordPayment;

/// The secret the provider signs its webhooks with (`[secrets]` on AWS;
/// `REVENTLESS_SECRET_PAYMENT_WEBHOOK_SECRET` or `.reventless/secrets.toml`
/// locally).
pub const PAYMENT_WEBHOOK_SECRET: &str = "payment-webhook-secret";

/// The notification type that records a payment; other types are
/// acknowledged (and audited) without a command.
pub const PAYMENT_SUCCEEDED: &str = "payment.succeeded";

/// One notification as the provider sends it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentNotification {
    /// `payment.succeeded`, `payment.failed`, ...
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub order_id: Option<String>,
    pub payment_id: String,
    #[serde(default)]
    pub amount_cents: i64,
    /// When the provider took the payment (Unix seconds); now when absent.
    #[serde(default)]
    pub created: Option<u64>,
}

/// Why a notification is refused (the webhook answers 422 with the code).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum PaymentWebhookError {
    /// A succeeded payment names no order.
    MissingOrderId,
    /// A succeeded payment of nothing (or less).
    InvalidAmount { amount_cents: i64 },
}

/// `Ordering_PaymentWebhook` (the route's translation; as a GraphQL
/// mutation only for `Admin`, e.g. to replay a notification by hand).
pub struct PaymentWebhook;

impl InboundTranslationSlice for PaymentWebhook {
    const NAME: &'static str = "PaymentWebhook";
    const ROLES: &'static [&'static str] = &["Admin"];
    type Input = PaymentNotification;
    type Error = PaymentWebhookError;

    fn translate(input: &PaymentNotification) -> Result<Vec<Dispatch>, PaymentWebhookError> {
        if input.kind != PAYMENT_SUCCEEDED {
            return Ok(vec![]);
        }
        let order_id = input.order_id.as_deref().map(str::trim).filter(|id| !id.is_empty());
        let Some(order_id) = order_id else { return Err(PaymentWebhookError::MissingOrderId) };
        if input.amount_cents <= 0 {
            return Err(PaymentWebhookError::InvalidAmount { amount_cents: input.amount_cents });
        }
        let paid_at = match input.created {
            Some(seconds) => seconds.saturating_mul(1000),
            None => Timestamp::now().0,
        };
        let command = RecordPayment {
            order_id: order_id.to_string(),
            payment_id: input.payment_id.clone(),
            amount_cents: input.amount_cents,
            paid_at,
        };
        Ok(Dispatch::slice(&command).into_iter().collect())
    }
}

/// The route: `POST /payments` below `/hooks/Ordering`, signed with
/// [`PAYMENT_WEBHOOK_SECRET`].
pub fn payment_route() -> HttpRoute {
    HttpRoute::post("/payments").signed(WebhookSignature::hmac_sha256(PAYMENT_WEBHOOK_SECRET))
}
