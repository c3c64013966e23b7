//! Paying an order, as Given / When / Then: `Ordering_RecordPayment` and the
//! Orders row it marks paid.
use online_shop::ordering::*;
use reventless::testing::{ProjectionTest, SliceTest};

fn placed(total: i64) -> OrderingEvent {
    OrderingEvent::OrderPlaced {
        order_id: "o1".into(),
        customer_id: "c1".into(),
        lines: vec![OrderLine { product_id: "p1".into(), quantity: 1, unit_price_cents: total }],
        shipping: Shipping::Standard,
        total_cents: total,
        currency: "EUR".into(),
    }
}

fn pay(payment_id: &str, amount: i64) -> RecordPayment {
    RecordPayment { order_id: "o1".into(), payment_id: payment_id.into(), amount_cents: amount, paid_at: 42 }
}

fn paid(payment_id: &str, amount: i64) -> OrderingEvent {
    OrderingEvent::OrderPaid { order_id: "o1".into(), payment_id: payment_id.into(), amount_cents: amount, paid_at: 42 }
}

#[test]
fn a_placed_order_is_paid_with_its_total() {
    SliceTest::<RecordPayment>::given([placed(1500)]).when(pay("pay-1", 1500)).then_events([paid("pay-1", 1500)]);
}

#[test]
fn the_same_payment_again_changes_nothing_but_another_is_refused() {
    SliceTest::<RecordPayment>::given([placed(1500), paid("pay-1", 1500)]).when(pay("pay-1", 1500)).then_no_events();
    SliceTest::<RecordPayment>::given([placed(1500), paid("pay-1", 1500)])
        .when(pay("pay-2", 1500))
        .then_rejected("OrderAlreadyPaid");
}

#[test]
fn a_payment_must_match_the_total() {
    SliceTest::<RecordPayment>::given([placed(1500)])
        .when(pay("pay-1", 1499))
        .then_error(OrderingError::PaymentAmountMismatch { expected_cents: 1500, paid_cents: 1499 });
}

#[test]
fn unknown_and_cancelled_orders_are_not_paid() {
    SliceTest::<RecordPayment>::given_no_events().when(pay("pay-1", 1500)).then_rejected("OrderNotFound");
    let cancelled = OrderingEvent::OrderCancelled { order_id: "o1".into(), customer_id: "c1".into(), lines: vec![] };
    SliceTest::<RecordPayment>::given([placed(1500), cancelled])
        .when(pay("pay-1", 1500))
        .then_rejected("OrderAlreadyCancelled");
}

#[test]
fn the_orders_row_shows_the_payment() {
    ProjectionTest::<Orders>::given([placed(1500), paid("pay-1", 1500)]).then_row(
        "o1",
        OrderRow {
            id: "o1".into(),
            customer_id: "c1".into(),
            lifecycle: Lifecycle::Placed,
            total_cents: 1500,
            currency: "EUR".into(),
            placed_at: 0,
            lines: vec![OrderLine { product_id: "p1".into(), quantity: 1, unit_price_cents: 1500 }],
            paid: true,
            paid_at: Some(42),
        },
    );
}
