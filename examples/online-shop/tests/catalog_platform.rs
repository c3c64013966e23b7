//! The Catalog plugin on the in-memory platform: commands in wire form,
//! DCB consistency under concurrency, and its views.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use online_shop::catalog::{self, ProductRow, ShelfStatus};
use reventless::core::store::{Filter, ListRequest, OrderBy};
use reventless::prelude::*;
use reventless::{EngineError, Runtime};
use serde_json::{Value, json};

fn command(name: &str, input: Value) -> CommandRequest {
    let merchandiser = reventless::Caller { user_id: Some("merch".into()), roles: vec!["Merchandiser".into()] };
    CommandRequest::new(catalog::PLUGIN, name, input).caller(merchandiser)
}

fn add_product(id: &str, category: &str, price_cents: i64) -> CommandRequest {
    command(
        "AddProduct",
        json!({"productId": id, "name": format!("Product {id}"), "description": "", "priceCents": price_cents,
               "currency": "EUR", "categoryId": category}),
    )
}

async fn run(runtime: &Runtime, request: CommandRequest) -> CommandOutcome {
    runtime.execute(request).await.unwrap()
}

async fn head(runtime: &Runtime) -> u64 {
    runtime.stores().events.head(catalog::PLUGIN).await.unwrap()
}

/// Every case runs on each local backend.
macro_rules! catalog_platform_tests {
    ($fresh:expr) => {
        #[tokio::test]
        async fn a_product_goes_on_the_shelf_and_into_the_view() {
            let runtime = Runtime::start($fresh, vec![catalog::standalone()]).unwrap();
            let added = run(&runtime, command("AddCategory", json!({"categoryId": "books", "name": "Books"}))).await;
            assert_eq!(added, CommandOutcome::Accepted { entity_id: "books".into(), event_count: 1, position: Some(1) });
            let product = run(&runtime, add_product("p1", "books", 1999)).await;
            assert_eq!(product, CommandOutcome::Accepted { entity_id: "p1".into(), event_count: 1, position: Some(2) });
            run(&runtime, command("ChangeProductPrice", json!({"productId": "p1", "priceCents": 2499, "currency": "EUR"})))
                .await;
            run(&runtime, command("ArchiveProduct", json!({"productId": "p1"}))).await;

            runtime.wait_for_projections().await.unwrap();
            let row = runtime.stores().queries.get("Catalog_Products", "p1").await.unwrap().unwrap();
            let row: ProductRow = serde_json::from_value(row).unwrap();
            assert_eq!((row.price_cents, row.shelf_status), (2499, ShelfStatus::Archived));
            let category = runtime.stores().queries.get("Catalog_Categories", "books").await.unwrap();
            assert_eq!(category, Some(json!({"id": "books", "name": "Books", "archived": false})));

            let stored = runtime.stores().events.read("Catalog", &Query::all(), None, None).await.unwrap();
            assert_eq!(stored[1].event_type, "ProductAdded");
            let tags: Vec<String> = stored[1].tags.iter().map(ToString::to_string).collect();
            assert_eq!(tags, vec!["product:p1", "category:books"]);
        }

        #[tokio::test]
        async fn rejections_and_bad_input_append_nothing() {
            let runtime = Runtime::start($fresh, vec![catalog::standalone()]).unwrap();
            let refused = run(&runtime, add_product("p1", "nowhere", 100)).await;
            assert_eq!(refused.error_code(), Some("CategoryNotFound"));
            let bad = runtime.execute(command("AddCategory", json!({"categoryId": 7, "name": "Seven"}))).await;
            assert!(matches!(&bad, Err(EngineError::BadInput { message, .. }) if message.contains("invalid type")), "{bad:?}");
            let missing = runtime.execute(command("AddCategory", json!({"name": "No id"}))).await;
            assert!(matches!(&missing, Err(EngineError::BadInput { message, .. }) if message.contains("categoryId")));
            let anonymous = CommandRequest::new(catalog::PLUGIN, "AddCategory", json!({"categoryId": "c", "name": "C"}));
        assert_eq!(runtime.execute(anonymous).await.unwrap().error_code(), Some("AccessRefused"), "the catalog is for merchandisers");
        let unknown = runtime.execute(command("DeleteEverything", json!({}))).await;
            assert!(matches!(unknown, Err(EngineError::UnknownCommand { .. })));
            assert_eq!(head(&runtime).await, 0);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn racing_writers_on_two_platforms_add_a_category_once() {
            // Two platforms on one log: only the append condition keeps ids unique.
            let stores = $fresh;
            let first = Runtime::start(stores.clone(), vec![catalog::standalone()]).unwrap();
            let second = Runtime::start(stores, vec![catalog::standalone()]).unwrap();
            let mut tasks = Vec::new();
            for i in 0..32 {
                let runtime = if i % 2 == 0 { first.clone() } else { second.clone() };
                tasks.push(tokio::spawn(async move {
                    runtime.execute(command("AddCategory", json!({"categoryId": "c", "name": format!("Name {i}")}))).await
                }));
            }
            let mut accepted = 0;
            for task in tasks {
                match task.await.unwrap().unwrap() {
                    outcome if outcome.is_accepted() => accepted += 1,
                    outcome => assert_eq!(outcome.error_code(), Some("CategoryAlreadyExists")),
                }
            }
            assert_eq!(accepted, 1);
            assert_eq!(head(&first).await, 1);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_product_added_while_its_category_is_archived_is_refused_or_first() {
            // AddProduct and ArchiveCategory race; whichever order wins, a listed
            // product never ends up in an archived category it was refused for.
            for round in 0..20 {
                let runtime = Runtime::start($fresh, vec![catalog::standalone()]).unwrap();
                run(&runtime, command("AddCategory", json!({"categoryId": "c", "name": "C"}))).await;
                let adder = runtime.clone();
                let add = tokio::spawn(async move { adder.execute(add_product(&format!("p{round}"), "c", 5)).await });
                let archive = run(&runtime, command("ArchiveCategory", json!({"categoryId": "c"}))).await;
                assert!(archive.is_accepted());
                let added = add.await.unwrap().unwrap();
                let events = runtime.stores().events.read("Catalog", &Query::all(), None, None).await.unwrap();
                let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
                if added.is_accepted() {
                    assert_eq!(types, vec!["CategoryAdded", "ProductAdded", "CategoryArchived"]);
                } else {
                    assert_eq!(added.error_code(), Some("CategoryNotFound"));
                    assert_eq!(types, vec!["CategoryAdded", "CategoryArchived"]);
                }
            }
        }

        #[tokio::test]
        async fn the_products_view_filters_orders_and_pages() {
            let runtime = Runtime::start($fresh, vec![catalog::standalone()]).unwrap();
            for category in ["books", "games"] {
                run(&runtime, command("AddCategory", json!({"categoryId": category, "name": category}))).await;
            }
            for i in 0..12 {
                let category = if i % 3 == 0 { "games" } else { "books" };
                assert!(run(&runtime, add_product(&format!("p{i:02}"), category, 100 * (12 - i))).await.is_accepted());
            }
            runtime.wait_for_projections().await.unwrap();
            let request = ListRequest {
                filters: vec![Filter::eq("categoryId", "books")],
                order_by: Some(OrderBy { field: "priceCents".into(), descending: false }),
                first: 5,
                after: None,
            };
            let queries = &runtime.stores().queries;
            let page = queries.list("Catalog_Products", &request).await.unwrap();
            assert_eq!(page.total_count, 8);
            let ids: Vec<&str> = page.rows.iter().map(|(id, _)| id.as_str()).collect();
            assert_eq!(ids, vec!["p11", "p10", "p08", "p07", "p05"]);
            let next = queries.list("Catalog_Products", &ListRequest { after: page.end_cursor, ..request }).await.unwrap();
            let ids: Vec<&str> = next.rows.iter().map(|(id, _)| id.as_str()).collect();
            assert_eq!(ids, vec!["p04", "p02", "p01"]);
            assert!(!next.has_next_page);
        }
    };
}

fn fresh_sqlite() -> reventless::core::Stores {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap().keep();
    let options = reventless::local::sqlite::SqliteOptions::default();
    let db = reventless::local::sqlite::SqliteDatabase::open(dir.join("shop.db"), options).unwrap();
    reventless::local::sqlite_stores(&db)
}

mod memory {
    use super::*;
    catalog_platform_tests!(reventless::local::memory_stores());
}

mod sqlite {
    use super::*;
    catalog_platform_tests!(super::fresh_sqlite());
}

#[test]
fn the_manifest_names_every_component_with_its_event_types() {
    let manifest = catalog::standalone().manifest().unwrap();
    let component = |name: &str| manifest.components.iter().find(|c| c.name == name).unwrap();
    let names: Vec<&str> = manifest.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "AddCategory",
            "RenameCategory",
            "ArchiveCategory",
            "AddProduct",
            "ChangeProductPrice",
            "ProductLifecycle",
            "ProductDemand",
            "Products",
            "Categories",
            "CategoryProductCounts",
            "ProductDemands",
            "Catalog.Products",
            "ImportProducts",
            "ImportProduct"
        ]
    );
    assert_eq!(component("AddProduct").consumes, vec!["CategoryAdded", "CategoryArchived", "ProductAdded"]);
    assert_eq!(component("AddProduct").produces, vec!["ProductAdded"]);
    assert_eq!(
        component("ProductLifecycle").commands,
        vec!["ArchiveProduct", "UnarchiveProduct", "DiscontinueProduct"]
    );
    let products = serde_json::to_value(component("Products")).unwrap();
    assert_eq!(products["kind"], "StateViewSlice");
    assert_eq!(products["table"], "Catalog_Products");
    assert_eq!(products["indexes"], json!(["categoryId", "shelfStatus"]));
    assert_eq!(manifest.storage.logs, vec!["Catalog"]);
    assert_eq!(manifest.storage.tables.len(), 6, "{:?}", manifest.storage.tables);
    assert!(manifest.storage.tables.iter().any(|t| t.name == "Catalog_ImportProductsRuns"), "the task's run rows");
    let point = component("Catalog.Products");
    assert_eq!(
        point.produces,
        vec!["ProductBecameAvailable", "ProductPriceChanged", "ProductWithdrawn", "ProductRelisted"]
    );
}
