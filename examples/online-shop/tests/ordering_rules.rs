//! The Ordering plugin's business rules, as Given / When / Then.
use online_shop::ordering::*;
use reventless::testing::{ProjectionTest, SliceTest};

fn registered(id: &str) -> OrderingEvent {
    OrderingEvent::CustomerRegistered { customer_id: id.into(), name: "Ann".into(), email: "ann@example.org".into() }
}

fn synced(id: &str, price: i64) -> OrderingEvent {
    OrderingEvent::ProductSynced { product_id: id.into(), name: id.into(), price_cents: price, currency: "EUR".into() }
}

fn line(product: &str, quantity: i64) -> LineRequest {
    LineRequest { product_id: product.into(), quantity }
}

fn place(lines: Vec<LineRequest>, shipping: Shipping) -> PlaceOrder {
    PlaceOrder { order_id: "o1".into(), customer_id: "c1".into(), lines, shipping }
}

fn placed(lines: Vec<OrderLine>, total: i64) -> OrderingEvent {
    OrderingEvent::OrderPlaced {
        order_id: "o1".into(),
        customer_id: "c1".into(),
        lines,
        shipping: Shipping::Standard,
        total_cents: total,
        currency: "EUR".into(),
    }
}

fn priced(product: &str, quantity: i64, price: i64) -> OrderLine {
    OrderLine { product_id: product.into(), quantity, unit_price_cents: price }
}

mod customers {
    use super::*;

    #[test]
    fn a_customer_registers_once() {
        let register = || RegisterCustomer { id: "c1".into(), name: "Ann".into(), email: "ann@example.org".into() };
        SliceTest::<RegisterCustomer>::given_no_events().when(register()).then_events([registered("c1")]);
        SliceTest::<RegisterCustomer>::given([registered("c1")])
            .when(register())
            .then_rejected("CustomerAlreadyRegistered");
    }

    #[test]
    fn updating_the_email_to_the_same_changes_nothing() {
        let update = |email: &str| UpdateCustomerEmail { id: "c1".into(), email: email.into() };
        SliceTest::<UpdateCustomerEmail>::given([registered("c1")]).when(update("ann@example.org")).then_no_events();
        SliceTest::<UpdateCustomerEmail>::given([registered("c1")]).when(update("new@example.org")).then_events([
            OrderingEvent::CustomerEmailUpdated { customer_id: "c1".into(), email: "new@example.org".into() },
        ]);
        SliceTest::<UpdateCustomerEmail>::given_no_events().when(update("x")).then_rejected("CustomerNotFound");
    }

    #[test]
    fn a_customer_is_deactivated_once() {
        let deactivate = || DeactivateCustomer { id: "c1".into() };
        SliceTest::<DeactivateCustomer>::given_no_events().when(deactivate()).then_rejected("CustomerNotFound");
        SliceTest::<DeactivateCustomer>::given([
            registered("c1"),
            OrderingEvent::CustomerDeactivated { customer_id: "c1".into() },
        ])
        .when(deactivate())
        .then_rejected("CustomerAlreadyDeactivated");
    }
}

mod synced_products {
    use super::*;

    #[test]
    fn sync_commands_are_idempotent() {
        let new = || SyncCommand::SyncNewProduct {
            product_id: "p1".into(),
            name: "p1".into(),
            price_cents: 100,
            currency: "EUR".into(),
        };
        SliceTest::<SyncProducts>::given_no_events().when(new()).then_events([synced("p1", 100)]);
        SliceTest::<SyncProducts>::given([synced("p1", 100)]).when(new()).then_no_events();
        let withdraw = || SyncCommand::WithdrawSyncedProduct { product_id: "p1".into() };
        SliceTest::<SyncProducts>::given([synced("p1", 100)])
            .when(withdraw())
            .then_events([OrderingEvent::SyncedProductWithdrawn { product_id: "p1".into() }]);
        SliceTest::<SyncProducts>::given([
            synced("p1", 100),
            OrderingEvent::SyncedProductWithdrawn { product_id: "p1".into() },
        ])
        .when(withdraw())
        .then_no_events();
        let same_price =
            SyncCommand::ChangeSyncedPrice { product_id: "p1".into(), price_cents: 100, currency: "EUR".into() };
        SliceTest::<SyncProducts>::given([synced("p1", 100)]).when(same_price).then_no_events();
        SliceTest::<SyncProducts>::given_no_events().when(withdraw()).then_no_events();
    }
}

mod orders {
    use super::*;

    #[test]
    fn an_order_is_priced_from_the_synced_products() {
        SliceTest::<PlaceOrder>::given([registered("c1"), synced("p1", 100), synced("p2", 250)])
            .when(place(vec![line("p1", 2), line("p2", 1)], Shipping::Standard))
            .then_events([placed(vec![priced("p1", 2, 100), priced("p2", 1, 250)], 450)]);
    }

    #[test]
    fn unsynced_or_withdrawn_products_are_named() {
        SliceTest::<PlaceOrder>::given([
            registered("c1"),
            synced("p1", 100),
            synced("p2", 100),
            OrderingEvent::SyncedProductWithdrawn { product_id: "p2".into() },
        ])
        .when(place(vec![line("p1", 1), line("p2", 1), line("p3", 1)], Shipping::Standard))
        .then_error(OrderingError::ProductsNotAvailable { missing: vec!["p2".into(), "p3".into()] });
    }

    #[test]
    fn orders_need_lines_quantities_and_an_active_customer() {
        SliceTest::<PlaceOrder>::given([registered("c1")])
            .when(place(vec![], Shipping::Standard))
            .then_rejected("OrderIsEmpty");
        SliceTest::<PlaceOrder>::given([registered("c1"), synced("p1", 1)])
            .when(place(vec![line("p1", 0)], Shipping::Standard))
            .then_rejected("InvalidQuantity");
        SliceTest::<PlaceOrder>::given([synced("p1", 1)])
            .when(place(vec![line("p1", 1)], Shipping::Standard))
            .then_rejected("CustomerNotFound");
        SliceTest::<PlaceOrder>::given([
            registered("c1"),
            OrderingEvent::CustomerDeactivated { customer_id: "c1".into() },
            synced("p1", 1),
        ])
        .when(place(vec![line("p1", 1)], Shipping::Standard))
        .then_rejected("CustomerNotFound");
        SliceTest::<PlaceOrder>::given([registered("c1"), synced("p1", 1), placed(vec![priced("p1", 1, 1)], 1)])
            .when(place(vec![line("p1", 1)], Shipping::Standard))
            .then_rejected("OrderAlreadyPlaced");
    }

    #[test]
    fn shipping_and_cancelling_follow_the_lifecycle() {
        let ship = || ShipOrder { order_id: "o1".into() };
        let cancel = || CancelOrder { order_id: "o1".into() };
        let order = || placed(vec![priced("p1", 1, 1)], 1);
        let shipped = || OrderingEvent::OrderShipped { order_id: "o1".into() };
        let cancelled = || OrderingEvent::OrderCancelled {
            order_id: "o1".into(),
            customer_id: "c1".into(),
            lines: vec![priced("p1", 1, 1)],
        };
        SliceTest::<ShipOrder>::given_no_events().when(ship()).then_rejected("OrderNotFound");
        SliceTest::<CancelOrder>::given_no_events().when(cancel()).then_rejected("OrderNotFound");
        SliceTest::<ShipOrder>::given([order()]).when(ship()).then_events([shipped()]);
        SliceTest::<ShipOrder>::given([order(), shipped()]).when(ship()).then_no_events();
        SliceTest::<ShipOrder>::given([order(), cancelled()]).when(ship()).then_rejected("OrderAlreadyCancelled");
        SliceTest::<CancelOrder>::given([order()]).when(cancel()).then_events([cancelled()]);
        SliceTest::<CancelOrder>::given([order(), cancelled()]).when(cancel()).then_no_events();
        SliceTest::<CancelOrder>::given([order(), shipped()]).when(cancel()).then_rejected("OrderAlreadyShipped");
    }

    #[test]
    fn customers_count_their_orders() {
        ProjectionTest::<Customers>::given([registered("c1"), placed(vec![priced("p1", 1, 1)], 1)]).then_row(
            "c1",
            CustomerRow {
                id: "c1".into(),
                name: "Ann".into(),
                email: "ann@example.org".into(),
                active: true,
                order_count: 1,
            },
        );
    }
}

mod confirmations {
    use super::*;

    fn record() -> RecordConfirmation {
        RecordConfirmation { order_id: "o1".into(), to: "c1".into(), subject: "Order o1 confirmed".into() }
    }

    fn sent() -> OrderingEvent {
        OrderingEvent::OrderConfirmationSent {
            order_id: "o1".into(),
            to: "c1".into(),
            subject: "Order o1 confirmed".into(),
        }
    }

    #[test]
    fn a_confirmation_is_recorded_once_per_placed_order() {
        let order = || placed(vec![priced("p1", 1, 1)], 1);
        SliceTest::<RecordConfirmation>::given_no_events().when(record()).then_rejected("OrderNotFound");
        SliceTest::<RecordConfirmation>::given([order()]).when(record()).then_events([sent()]);
        SliceTest::<RecordConfirmation>::given([order(), sent()]).when(record()).then_no_events();
    }

    #[test]
    fn sent_confirmations_are_listed_per_order() {
        ProjectionTest::<OrderConfirmations>::given([sent()]).then_row(
            "o1",
            ConfirmationRow { id: "o1".into(), to: "c1".into(), subject: "Order o1 confirmed".into(), sent_at: 0 },
        );
    }
}
