//! Unpaid orders are cancelled: the schedule `CancelUnpaidOrders` looks
//! every 5 minutes for placed orders without a payment older than the
//! timeout (`ORDERING_UNPAID_ORDER_TIMEOUT`, default 30 minutes) and sends
//! `Ordering_CancelUnpaidOrder` for each. That command decides on the
//! order's events, so a payment that arrived after the Orders row was read
//! still wins (the cancellation is refused with `OrderAlreadyPaid`).
use std::time::Duration;

use reventless::prelude::*;
use reventless::spec::{Schedule, ScheduleContext};
use serde::{Deserialize, Serialize};

use super::events::{OrderingError, OrderingEvent};
use super::views::{Lifecycle, Orders};

/// The environment variable holding how long an order may stay unpaid:
/// `45m`, `2h`, `90s`, or a number of minutes.
pub const UNPAID_ORDER_TIMEOUT_ENV: &str = "ORDERING_UNPAID_ORDER_TIMEOUT";
/// How long an order may stay unpaid when the variable is not set.
pub const DEFAULT_UNPAID_ORDER_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Orders cancelled per firing at most (the rest go at the next one).
const CANCELLATIONS_PER_FIRING: usize = 500;

/// Reads a timeout as the variable writes it: `45m`, `2h`, `90s`, `30`
/// (minutes).
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "m"),
    };
    let count: u64 = number.parse().map_err(|_| format!("`{text}` is not a duration like 45m, 2h or 90s"))?;
    let seconds = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        other => return Err(format!("`{text}`: unit `{other}` is not s, m or h")),
    };
    Ok(Duration::from_secs(count.saturating_mul(seconds)))
}

/// The timeout from [`UNPAID_ORDER_TIMEOUT_ENV`], else the default.
pub fn unpaid_order_timeout() -> Result<Duration, String> {
    match std::env::var(UNPAID_ORDER_TIMEOUT_ENV) {
        Ok(text) => parse_timeout(&text).map_err(|e| format!("{UNPAID_ORDER_TIMEOUT_ENV}: {e}")),
        Err(_) => Ok(DEFAULT_UNPAID_ORDER_TIMEOUT),
    }
}

/// `Ordering_CancelUnpaidOrder(orderId)`: sent only by the schedule (not in the API).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all = "camelCase")]
pub struct CancelUnpaidOrder {
    #[tag]
    pub order_id: String,
}

/// What cancelling an unpaid order knows about it.
#[derive(Clone, Debug, Default)]
pub struct UnpaidState {
    placed: Option<(String, Vec<super::events::OrderLine>)>,
    paid: bool,
    shipped: bool,
    cancelled: bool,
}

impl StateChangeSlice for CancelUnpaidOrder {
    const NAME: &'static str = "CancelUnpaidOrder";
    const API: bool = false;
    const CONSUMES: &'static [&'static str] = &["OrderPlaced", "OrderShipped", "OrderCancelled", "OrderPaid"];
    const PRODUCES: &'static [&'static str] = &["OrderCancelled"];
    type Command = Self;
    type Event = OrderingEvent;
    type State = UnpaidState;
    type Error = OrderingError;

    fn evolve(mut state: UnpaidState, event: &OrderingEvent) -> UnpaidState {
        match event {
            OrderingEvent::OrderPlaced { customer_id, lines, .. } => {
                state.placed = Some((customer_id.clone(), lines.clone()))
            }
            OrderingEvent::OrderPaid { .. } => state.paid = true,
            OrderingEvent::OrderShipped { .. } => state.shipped = true,
            OrderingEvent::OrderCancelled { .. } => state.cancelled = true,
            _ => {}
        }
        state
    }

    fn decide(state: &UnpaidState, c: &Self) -> Result<Vec<OrderingEvent>, OrderingError> {
        let Some((customer_id, lines)) = &state.placed else { return Err(OrderingError::OrderNotFound) };
        if state.cancelled {
            return Ok(vec![]);
        }
        if state.paid {
            return Err(OrderingError::OrderAlreadyPaid);
        }
        if state.shipped {
            return Err(OrderingError::OrderAlreadyShipped);
        }
        Ok(vec![OrderingEvent::OrderCancelled {
            order_id: c.order_id.clone(),
            customer_id: customer_id.clone(),
            lines: lines.clone(),
        }])
    }
}

/// Every 5 minutes: the placed, unpaid orders older than the timeout are cancelled.
pub struct CancelUnpaidOrders;

impl Schedule for CancelUnpaidOrders {
    const NAME: &'static str = "CancelUnpaidOrders";
    const EXPRESSION: &'static str = "rate(5 minutes)";

    async fn fire(context: &ScheduleContext) -> Result<Vec<Dispatch>, String> {
        let timeout = u64::try_from(unpaid_order_timeout()?.as_millis()).unwrap_or(u64::MAX);
        let placed_before = context.at().0.saturating_sub(timeout);
        let placed = context.list::<Orders>("lifecycle", "PLACED").await?;
        placed
            .iter()
            .filter(|order| order.lifecycle == Lifecycle::Placed && !order.paid && order.placed_at <= placed_before)
            .take(CANCELLATIONS_PER_FIRING)
            .map(|order| Dispatch::slice(&CancelUnpaidOrder { order_id: order.id.clone() }).map_err(|e| e.to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_with_their_unit_or_as_minutes() {
        assert_eq!(parse_timeout("45m"), Ok(Duration::from_secs(2700)));
        assert_eq!(parse_timeout("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_timeout(" 90s "), Ok(Duration::from_secs(90)));
        assert_eq!(parse_timeout("30"), Ok(Duration::from_secs(1800)));
        assert!(parse_timeout("2d").unwrap_err().contains("unit `d`"));
        assert!(parse_timeout("soon").unwrap_err().contains("not a duration"));
    }
}
