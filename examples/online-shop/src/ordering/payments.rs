//! Payments: `Ordering_RecordPayment` (sent by the payment provider's webhook,
//! or by an `Admin`), and the `OrderPaid` event it appends.
use reventless::prelude::*;
use serde::{Deserialize, Serialize};

use super::events::{OrderingError, OrderingEvent};

/// `Ordering_RecordPayment(orderId, paymentId, amountCents, paidAt)`: a
/// payment for the whole order. Recording the same payment again changes
/// nothing (providers deliver webhooks at least once); a second, different
/// payment is refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all = "camelCase")]
pub struct RecordPayment {
    #[tag]
    pub order_id: String,
    /// The payment provider's id of the payment.
    pub payment_id: String,
    pub amount_cents: i64,
    /// Milliseconds since the Unix epoch.
    pub paid_at: u64,
}

/// What recording a payment knows about one order.
#[derive(Clone, Debug, Default)]
pub struct PaymentState {
    total_cents: Option<i64>,
    cancelled: bool,
    paid_by: Option<String>,
}

impl StateChangeSlice for RecordPayment {
    const NAME: &'static str = "RecordPayment";
    const ROLES: &'static [&'static str] = &["Admin"];
    const CONSUMES: &'static [&'static str] = &["OrderPlaced", "OrderCancelled", "OrderPaid"];
    const PRODUCES: &'static [&'static str] = &["OrderPaid"];
    type Command = Self;
    type Event = OrderingEvent;
    type State = PaymentState;
    type Error = OrderingError;

    fn evolve(mut state: PaymentState, event: &OrderingEvent) -> PaymentState {
        match event {
            OrderingEvent::OrderPlaced { total_cents, .. } => state.total_cents = Some(*total_cents),
            OrderingEvent::OrderCancelled { .. } => state.cancelled = true,
            OrderingEvent::OrderPaid { payment_id, .. } => state.paid_by = Some(payment_id.clone()),
            _ => {}
        }
        state
    }

    fn decide(state: &PaymentState, c: &Self) -> Result<Vec<OrderingEvent>, OrderingError> {
        let Some(total_cents) = state.total_cents else { return Err(OrderingError::OrderNotFound) };
        match &state.paid_by {
            Some(payment_id) if *payment_id == c.payment_id => return Ok(vec![]),
            Some(_) => return Err(OrderingError::OrderAlreadyPaid),
            None => {}
        }
        if state.cancelled {
            return Err(OrderingError::OrderAlreadyCancelled);
        }
        if c.amount_cents != total_cents {
            return Err(OrderingError::PaymentAmountMismatch {
                expected_cents: total_cents,
                paid_cents: c.amount_cents,
            });
        }
        Ok(vec![OrderingEvent::OrderPaid {
            order_id: c.order_id.clone(),
            payment_id: c.payment_id.clone(),
            amount_cents: c.amount_cents,
            paid_at: c.paid_at,
        }])
    }
}
