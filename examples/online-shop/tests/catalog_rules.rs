//! The Catalog's business rules, as Given / When / Then.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use online_shop::catalog::*;
use reventless::prelude::*;
use reventless::testing::{ProjectionTest, SliceTest};

fn category_added(id: &str) -> CatalogEvent {
    CatalogEvent::CategoryAdded { category_id: id.into(), name: format!("Category {id}") }
}

fn product_added(id: &str, category: &str) -> CatalogEvent {
    CatalogEvent::ProductAdded {
        product_id: id.into(),
        name: format!("Product {id}"),
        description: "A fine thing".into(),
        price_cents: 1999,
        currency: "EUR".into(),
        category_id: category.into(),
    }
}

fn add_product(id: &str, category: &str) -> AddProduct {
    AddProduct {
        product_id: id.into(),
        name: format!("Product {id}"),
        description: "A fine thing".into(),
        price_cents: 1999,
        currency: "EUR".into(),
        category_id: category.into(),
    }
}

fn tag(text: &str) -> Tag {
    text.parse().unwrap()
}

mod categories {
    use super::*;

    #[test]
    fn a_new_category_is_added() {
        SliceTest::<AddCategory>::given_no_events()
            .when(AddCategory { category_id: "books".into(), name: "Books".into() })
            .then_events([CatalogEvent::CategoryAdded { category_id: "books".into(), name: "Books".into() }]);
    }

    #[test]
    fn a_category_id_is_used_once() {
        SliceTest::<AddCategory>::given([category_added("books")])
            .when(AddCategory { category_id: "books".into(), name: "Other".into() })
            .then_rejected("CategoryAlreadyExists");
    }

    #[test]
    fn other_categories_do_not_count() {
        SliceTest::<AddCategory>::given([category_added("games")])
            .when(AddCategory { category_id: "books".into(), name: "Books".into() })
            .then_events([CatalogEvent::CategoryAdded { category_id: "books".into(), name: "Books".into() }]);
    }

    #[test]
    fn renaming_needs_the_category() {
        SliceTest::<RenameCategory>::given_no_events()
            .when(RenameCategory { category_id: "books".into(), name: "Novels".into() })
            .then_rejected("CategoryNotFound");
    }

    #[test]
    fn renaming_to_a_new_name_renames() {
        SliceTest::<RenameCategory>::given([category_added("books")])
            .when(RenameCategory { category_id: "books".into(), name: "Novels".into() })
            .then_events([CatalogEvent::CategoryRenamed { category_id: "books".into(), name: "Novels".into() }]);
    }

    #[test]
    fn renaming_to_the_same_name_changes_nothing() {
        SliceTest::<RenameCategory>::given([
            category_added("books"),
            CatalogEvent::CategoryRenamed { category_id: "books".into(), name: "Novels".into() },
        ])
        .when(RenameCategory { category_id: "books".into(), name: "Novels".into() })
        .then_no_events();
    }

    #[test]
    fn archiving_needs_the_category() {
        SliceTest::<ArchiveCategory>::given_no_events()
            .when(ArchiveCategory { category_id: "books".into() })
            .then_rejected("CategoryNotFound");
    }

    #[test]
    fn archiving_twice_changes_nothing() {
        SliceTest::<ArchiveCategory>::given([category_added("books")])
            .when(ArchiveCategory { category_id: "books".into() })
            .then_events([CatalogEvent::CategoryArchived { category_id: "books".into() }]);
        SliceTest::<ArchiveCategory>::given([
            category_added("books"),
            CatalogEvent::CategoryArchived { category_id: "books".into() },
        ])
        .when(ArchiveCategory { category_id: "books".into() })
        .then_no_events();
    }
}

mod products {
    use super::*;

    #[test]
    fn a_product_is_added_to_an_existing_category() {
        SliceTest::<AddProduct>::given([category_added("books")])
            .when(add_product("p1", "books"))
            .then_events([product_added("p1", "books")]);
    }

    #[test]
    fn a_product_needs_an_existing_category() {
        SliceTest::<AddProduct>::given([category_added("games")])
            .when(add_product("p1", "books"))
            .then_rejected("CategoryNotFound");
    }

    #[test]
    fn a_product_cannot_go_into_an_archived_category() {
        SliceTest::<AddProduct>::given([
            category_added("books"),
            CatalogEvent::CategoryArchived { category_id: "books".into() },
        ])
        .when(add_product("p1", "books"))
        .then_rejected("CategoryNotFound");
    }

    #[test]
    fn a_product_id_is_used_once_even_across_categories() {
        SliceTest::<AddProduct>::given([
            category_added("books"),
            category_added("games"),
            product_added("p1", "games"),
        ])
        .when(add_product("p1", "books"))
        .then_rejected("ProductAlreadyExists");
    }

    #[test]
    fn prices_are_cents_in_an_iso_currency() {
        let mut negative = add_product("p1", "books");
        negative.price_cents = -1;
        SliceTest::<AddProduct>::given([category_added("books")])
            .when(negative)
            .then_error(CatalogError::InvalidPrice { price_cents: -1 });
        let mut bad_currency = add_product("p1", "books");
        bad_currency.currency = "euro".into();
        SliceTest::<AddProduct>::given([category_added("books")]).when(bad_currency).then_rejected("InvalidCurrency");
    }

    #[test]
    fn adding_a_product_is_guarded_by_its_category_and_its_id() {
        // The decision saw the category at position 1 (the unrelated product
        // at 2 is outside its boundary): a later append touching either the
        // category or the product id must fail.
        SliceTest::<AddProduct>::given([
            category_added("books"),
            category_added("games"),
            product_added("p9", "games"),
        ])
        .when(add_product("p1", "books"))
        .then_condition(AppendCondition::new(
            Query::none()
                .item(QueryItem::new().types(["CategoryAdded", "CategoryArchived"]).tags([tag("category:books")]))
                .item(QueryItem::new().types(["ProductAdded"]).tags([tag("product:p1")])),
            Some(1),
        ));
    }

    #[test]
    fn changing_the_price_emits_the_new_price() {
        SliceTest::<ChangeProductPrice>::given([product_added("p1", "books")])
            .when(ChangeProductPrice { product_id: "p1".into(), price_cents: 2499, currency: "EUR".into() })
            .then_events([CatalogEvent::ProductPriceChanged {
                product_id: "p1".into(),
                price_cents: 2499,
                currency: "EUR".into(),
            }])
            .then_condition(AppendCondition::new(
                Query::none().item(
                    QueryItem::new()
                        .types(["ProductAdded", "ProductPriceChanged", "ProductDiscontinued"])
                        .tags([tag("product:p1")]),
                ),
                Some(1),
            ));
    }

    #[test]
    fn the_same_price_changes_nothing() {
        SliceTest::<ChangeProductPrice>::given([product_added("p1", "books")])
            .when(ChangeProductPrice { product_id: "p1".into(), price_cents: 1999, currency: "EUR".into() })
            .then_no_events();
    }

    #[test]
    fn a_price_change_needs_the_product() {
        SliceTest::<ChangeProductPrice>::given_no_events()
            .when(ChangeProductPrice { product_id: "p1".into(), price_cents: 1, currency: "EUR".into() })
            .then_rejected("ProductNotFound");
    }

    #[test]
    fn a_discontinued_product_keeps_its_price() {
        SliceTest::<ChangeProductPrice>::given([
            product_added("p1", "books"),
            CatalogEvent::ProductDiscontinued { product_id: "p1".into() },
        ])
        .when(ChangeProductPrice { product_id: "p1".into(), price_cents: 1, currency: "EUR".into() })
        .then_rejected("ProductIsDiscontinued");
    }
}

mod shelf {
    use super::*;

    fn archive(id: &str) -> ProductCommand {
        ProductCommand::ArchiveProduct { product_id: id.into() }
    }
    fn unarchive(id: &str) -> ProductCommand {
        ProductCommand::UnarchiveProduct { product_id: id.into() }
    }
    fn discontinue(id: &str) -> ProductCommand {
        ProductCommand::DiscontinueProduct { product_id: id.into() }
    }

    #[test]
    fn shelf_commands_need_the_product() {
        for command in [archive("p1"), unarchive("p1"), discontinue("p1")] {
            SliceTest::<ProductLifecycle>::given_no_events().when(command).then_rejected("ProductNotFound");
        }
    }

    #[test]
    fn a_listed_product_is_archived_and_unarchived() {
        SliceTest::<ProductLifecycle>::given([product_added("p1", "books")])
            .when(archive("p1"))
            .then_events([CatalogEvent::ProductArchived { product_id: "p1".into() }]);
        SliceTest::<ProductLifecycle>::given([
            product_added("p1", "books"),
            CatalogEvent::ProductArchived { product_id: "p1".into() },
        ])
        .when(unarchive("p1"))
        .then_events([CatalogEvent::ProductUnarchived { product_id: "p1".into() }]);
    }

    #[test]
    fn archiving_an_archived_or_unarchiving_a_listed_product_changes_nothing() {
        SliceTest::<ProductLifecycle>::given([
            product_added("p1", "books"),
            CatalogEvent::ProductArchived { product_id: "p1".into() },
        ])
        .when(archive("p1"))
        .then_no_events();
        SliceTest::<ProductLifecycle>::given([product_added("p1", "books")]).when(unarchive("p1")).then_no_events();
    }

    #[test]
    fn discontinuing_is_idempotent() {
        SliceTest::<ProductLifecycle>::given([product_added("p1", "books")])
            .when(discontinue("p1"))
            .then_events([CatalogEvent::ProductDiscontinued { product_id: "p1".into() }]);
        SliceTest::<ProductLifecycle>::given([
            product_added("p1", "books"),
            CatalogEvent::ProductDiscontinued { product_id: "p1".into() },
        ])
        .when(discontinue("p1"))
        .then_no_events();
    }

    #[test]
    fn a_discontinued_product_cannot_be_unarchived_or_archived() {
        let given = || {
            SliceTest::<ProductLifecycle>::given([
                product_added("p1", "books"),
                CatalogEvent::ProductArchived { product_id: "p1".into() },
                CatalogEvent::ProductDiscontinued { product_id: "p1".into() },
            ])
        };
        given().when(unarchive("p1")).then_rejected("ProductIsDiscontinued");
        given().when(archive("p1")).then_rejected("ProductIsDiscontinued");
    }
}

mod views {
    use super::*;

    fn row(id: &str, price_cents: i64, shelf_status: ShelfStatus) -> ProductRow {
        ProductRow {
            id: id.into(),
            name: format!("Product {id}"),
            description: "A fine thing".into(),
            price_cents,
            currency: "EUR".into(),
            category_id: "books".into(),
            shelf_status,
        }
    }

    #[test]
    fn products_show_price_and_shelf_status() {
        ProjectionTest::<Products>::given([
            category_added("books"),
            product_added("p1", "books"),
            product_added("p2", "books"),
            CatalogEvent::ProductPriceChanged { product_id: "p1".into(), price_cents: 2500, currency: "EUR".into() },
            CatalogEvent::ProductArchived { product_id: "p2".into() },
            CatalogEvent::ProductDiscontinued { product_id: "p2".into() },
        ])
        .then_rows([("p1", row("p1", 2500, ShelfStatus::Listed)), ("p2", row("p2", 1999, ShelfStatus::Discontinued))]);
    }

    #[test]
    fn unarchiving_relists_a_product() {
        ProjectionTest::<Products>::given([
            product_added("p1", "books"),
            CatalogEvent::ProductArchived { product_id: "p1".into() },
            CatalogEvent::ProductUnarchived { product_id: "p1".into() },
        ])
        .then_row("p1", row("p1", 1999, ShelfStatus::Listed));
    }

    #[test]
    fn events_of_unknown_products_create_no_rows() {
        ProjectionTest::<Products>::given([CatalogEvent::ProductArchived { product_id: "ghost".into() }])
            .then_no_row("ghost")
            .then_rows([]);
    }

    #[test]
    fn categories_show_name_and_archival() {
        ProjectionTest::<Categories>::given([
            category_added("books"),
            category_added("games"),
            CatalogEvent::CategoryRenamed { category_id: "books".into(), name: "Novels".into() },
            CatalogEvent::CategoryArchived { category_id: "games".into() },
        ])
        .then_rows([
            ("books", CategoryRow { id: "books".into(), name: "Novels".into(), archived: false }),
            ("games", CategoryRow { id: "games".into(), name: "Category games".into(), archived: true }),
        ]);
    }

    #[test]
    fn products_are_counted_per_category() {
        use reventless::spec::{CountRow, CounterView};
        ProjectionTest::<CounterView<CategoryProductCounts>>::given([
            category_added("books"),
            product_added("p1", "books"),
            product_added("p2", "books"),
            product_added("p3", "games"),
        ])
        .then_rows([
            ("books", CountRow { id: "books".into(), count: 2 }),
            ("games", CountRow { id: "games".into(), count: 1 }),
        ]);
    }
}

mod demand {
    use super::*;

    fn record(order: &str) -> DemandCommand {
        DemandCommand::RecordDemand { product_id: "p1".into(), order_id: order.into() }
    }
    fn revoke(order: &str) -> DemandCommand {
        DemandCommand::RevokeDemand { product_id: "p1".into(), order_id: order.into() }
    }
    fn recorded(order: &str) -> CatalogEvent {
        CatalogEvent::DemandRecorded { product_id: "p1".into(), order_id: order.into() }
    }
    fn revoked(order: &str) -> CatalogEvent {
        CatalogEvent::DemandRevoked { product_id: "p1".into(), order_id: order.into() }
    }

    #[test]
    fn demand_is_recorded_once_per_order() {
        SliceTest::<ProductDemand>::given_no_events().when(record("o1")).then_events([recorded("o1")]);
        SliceTest::<ProductDemand>::given([recorded("o1")]).when(record("o1")).then_no_events();
        SliceTest::<ProductDemand>::given([recorded("o1")]).when(record("o2")).then_events([recorded("o2")]);
    }

    #[test]
    fn demand_is_revoked_once_and_never_below_zero() {
        SliceTest::<ProductDemand>::given([recorded("o1")]).when(revoke("o1")).then_events([revoked("o1")]);
        SliceTest::<ProductDemand>::given([recorded("o1"), revoked("o1")]).when(revoke("o1")).then_no_events();
        SliceTest::<ProductDemand>::given_no_events().when(revoke("o9")).then_no_events();
    }

    #[test]
    fn the_demand_view_counts_open_orders() {
        ProjectionTest::<ProductDemands>::given([recorded("o1"), recorded("o2"), revoked("o1")])
            .then_rows([("p1", ProductDemandRow { product_id: "p1".into(), order_count: 1 })]);
    }
}

mod published {
    use super::*;
    use reventless::spec::{EventEnvelope, ExtensionPoint, Timestamp};

    fn publish(event: CatalogEvent) -> Vec<ProductNews> {
        let envelope = EventEnvelope::recorded(
            reventless::spec::NewEvent::new("x", vec![], serde_json::Value::Null),
            1,
            None,
            Timestamp(0),
        );
        ProductsPoint::publish(&event, &envelope)
    }

    #[test]
    fn other_plugins_hear_when_products_come_and_go() {
        assert_eq!(
            publish(product_added("p1", "books")),
            vec![ProductNews::ProductBecameAvailable {
                product_id: "p1".into(),
                name: "Product p1".into(),
                price_cents: 1999,
                currency: "EUR".into()
            }]
        );
        for gone in [
            CatalogEvent::ProductArchived { product_id: "p1".into() },
            CatalogEvent::ProductDiscontinued { product_id: "p1".into() },
        ] {
            assert_eq!(publish(gone), vec![ProductNews::ProductWithdrawn { product_id: "p1".into() }]);
        }
        assert_eq!(
            publish(CatalogEvent::ProductUnarchived { product_id: "p1".into() }),
            vec![ProductNews::ProductRelisted { product_id: "p1".into() }]
        );
        assert!(publish(category_added("books")).is_empty(), "categories are not part of the contract");
    }
}
