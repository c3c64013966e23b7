//! An extension across stacks with the real binaries: Catalog's automation
//! function publishes `Catalog.Products` into Ordering's inbox queue (as the
//! planner configures it), Ordering's `OrderingExtensions` function turns the
//! published events into its own commands, and its read model shows them.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
mod support;

use reventless_aws::lambda::FunctionConfig;
use reventless_aws::{command_topic, provision};
use serde_json::{Value, json};
use support::{Deployment, LIMIT, body, graphql, http_request};

const CATALOG: &str = env!("CARGO_BIN_EXE_catalog-lambda");
const ORDERING: &str = env!("CARGO_BIN_EXE_ordering-lambda");

fn merchandiser() -> Value {
    json!({ "sub": "merch", "roles": "Merchandiser" })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_product_reaches_ordering_through_its_inbox() {
    let catalog = Deployment::new("Catalog").await;
    let ordering = Deployment::new("Ordering").await;
    let inbox_topic = reventless_core::inbox_topic("Ordering");
    let inbox = command_topic::queue_name(&ordering.names.queue_prefix, &inbox_topic);
    let sqs = aws_sdk_sqs::Client::new(&ordering.config);
    let inbox_url = provision::create_fifo_queue(&sqs, &inbox).await.unwrap();

    let (catalog_api, _catalog_api_fn) = catalog.function(CATALOG, "CatalogApi").await;
    for mutation in [
        r#"mutation { Catalog_AddCategory(categoryId: "books", name: "Books") { status } }"#,
        r#"mutation { Catalog_AddProduct(productId: "dune", name: "Dune", description: "", priceCents: 999, currency: "EUR", categoryId: "books") { status } }"#,
        r#"mutation { Catalog_ChangeProductPrice(productId: "dune", priceCents: 1299, currency: "EUR") { status } }"#,
    ] {
        let answer =
            catalog_api.invoke(http_request("POST", "/graphql", Some(&graphql(mutation)), Some(merchandiser())), LIMIT);
        let answer = answer.await.unwrap();
        assert_eq!(body(&answer)["errors"], Value::Null, "{answer}");
    }

    // Catalog publishes: its automation function, told Ordering subscribes.
    let publisher = FunctionConfig {
        subscribers: [("Catalog.Products".to_string(), vec!["Ordering".to_string()])].into(),
        queue_names: [(inbox_topic.clone(), inbox.clone())].into(),
        ..catalog.function_config("AllAutomationSlices")
    };
    let (publishing, _publishing_fn) = catalog.function_with(CATALOG, &publisher).await;
    let stream = catalog.stream_event().await;
    let answer = publishing.invoke(stream.clone(), LIMIT).await.unwrap();
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    // A redelivered stream batch publishes nothing again (the checkpoint moved).
    assert_eq!(publishing.invoke(stream, LIMIT).await.unwrap()["batchItemFailures"], json!([]));
    let published = ordering.sqs_event_from(&inbox_url, 2).await;
    let names: Vec<String> = published["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let message: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
            message["body"]["name"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(names, vec!["ProductBecameAvailable", "ProductPriceChanged"], "in Catalog's order");

    // Ordering's inbox function runs its extension: SyncProducts commands.
    let (extensions, _extensions_fn) = ordering.function(ORDERING, "OrderingExtensions").await;
    let answer = extensions.invoke(published.clone(), LIMIT).await.unwrap();
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    let again = extensions.invoke(published, LIMIT).await.unwrap();
    assert_eq!(again["batchItemFailures"], json!([]), "a redelivered batch is harmless");
    let events = ordering.stores().events.read("Ordering", &reventless_spec::Query::all(), None, None).await.unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, vec!["ProductSynced", "SyncedPriceChanged"], "each once");
    // A body that is no published event fails that message only.
    let mut stray = ordering.sqs_event_from(&inbox_url, 0).await;
    stray["Records"] = json!([{"messageId": "m1", "body": "{\"group_id\":\"g\",\"dedup_id\":\"d\",\"body\":{}}",
        "attributes": {"MessageGroupId": "g"}, "eventSource": "aws:sqs"}]);
    let refused = extensions.invoke(stray, LIMIT).await.unwrap();
    assert_eq!(refused["batchItemFailures"], json!([{"itemIdentifier": "m1"}]));

    // Ordering's view and API show the product at its new price.
    let (views, _views_fn) = ordering.function(ORDERING, "AllReadModels").await;
    let answer = views.invoke(ordering.stream_event().await, LIMIT).await.unwrap();
    assert_eq!(answer["batchItemFailures"], json!([]));
    let (ordering_api, _ordering_api_fn) = ordering.function(ORDERING, "OrderingApi").await;
    let query = graphql("{ Ordering_AvailableProducts { edges { node { id name priceCents available } } } }");
    let listed = ordering_api.invoke(http_request("POST", "/graphql", Some(&query), None), LIMIT).await.unwrap();
    assert_eq!(
        body(&listed)["data"]["Ordering_AvailableProducts"]["edges"],
        json!([{"node": {"id": "dune", "name": "Dune", "priceCents": 1299, "available": true}}])
    );
}
