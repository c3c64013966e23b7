//! The Catalog plugin's real `bootstrap` binary, driven through a local
//! Lambda Runtime API against the emulator: HTTP GraphQL requests, SQS FIFO
//! batches (with the group-failure rule) and DynamoDB stream batches.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
mod support;

use reventless_aws::runtime_api::{InvokeError, RuntimeApi};
use reventless_core::CommandRequest;
use reventless_core::store::CommandMessage;
use serde_json::{Value, json};
use support::{Deployment, LIMIT, body, graphql, http_request};

const CATALOG: &str = env!("CARGO_BIN_EXE_catalog-lambda");
const ORDERING: &str = env!("CARGO_BIN_EXE_ordering-lambda");

fn merchandiser() -> Value {
    json!({ "sub": "merch", "roles": "Merchandiser" })
}

fn add_category(id: &str) -> String {
    graphql(&format!(r#"mutation {{ Catalog_AddCategory(categoryId: "{id}", name: "{id}") {{ status errorCode }} }}"#))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_function_answers_graphql_over_http() {
    let shop = Deployment::new("Catalog").await;
    let (api, function) = shop.function(CATALOG, "CatalogApi").await;

    let added = api
        .invoke(http_request("POST", "/graphql", Some(&add_category("books")), Some(merchandiser())), LIMIT)
        .await
        .unwrap();
    assert_eq!(added["statusCode"], 200, "{added}");
    assert_eq!(body(&added)["data"]["Catalog_AddCategory"], json!({"status": "ACCEPTED", "errorCode": null}));

    let again = api
        .invoke(http_request("POST", "/graphql", Some(&add_category("books")), Some(merchandiser())), LIMIT)
        .await
        .unwrap();
    assert_eq!(body(&again)["data"]["Catalog_AddCategory"]["errorCode"], "CategoryAlreadyExists");

    let anonymous =
        api.invoke(http_request("POST", "/graphql", Some(&add_category("games")), None), LIMIT).await.unwrap();
    assert_eq!(body(&anonymous)["data"]["Catalog_AddCategory"]["errorCode"], "AccessRefused", "no claims, no roles");

    let wrong_type = graphql(r#"mutation { Catalog_AddCategory(categoryId: 5, name: "x") { status } }"#);
    let refused =
        api.invoke(http_request("POST", "/graphql", Some(&wrong_type), Some(merchandiser())), LIMIT).await.unwrap();
    assert_eq!(body(&refused)["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");

    let garbage = api.invoke(http_request("POST", "/graphql", Some("{not json"), None), LIMIT).await.unwrap();
    assert_eq!(garbage["statusCode"], 400);
    let health = api.invoke(http_request("GET", "/health", None, None), LIMIT).await.unwrap();
    assert_eq!(health["statusCode"], 200);

    // Exactly one event landed: the first AddCategory.
    let events = shop.stores().events.read("Catalog", &reventless_spec::Query::all(), None, None).await.unwrap();
    assert_eq!(events.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>(), vec!["CategoryAdded"]);

    // An event of a kind the function does not handle is that invocation's error; the container lives on.
    let stray = api.invoke(json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}), LIMIT).await;
    assert!(matches!(stray, Err(InvokeError::Function(_))), "{stray:?}");
    let still = api.invoke(http_request("GET", "/health", None, None), LIMIT).await.unwrap();
    assert_eq!(still["statusCode"], 200);
    drop(function);
}

fn command(id: &str) -> CommandMessage {
    let request = CommandRequest::new("Catalog", "AddCategory", json!({"categoryId": id, "name": id}));
    CommandMessage { group_id: "unused".into(), dedup_id: id.into(), body: serde_json::to_value(request).unwrap() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_batch_fails_only_the_rest_of_a_failing_group() {
    let shop = Deployment::new("Catalog").await;
    let sqs = aws_sdk_sqs::Client::new(&shop.config);
    let send = |group: &str, dedup: &str, body: String| {
        sqs.send_message()
            .queue_url(&shop.queue_url)
            .message_group_id(group)
            .message_deduplication_id(dedup)
            .message_body(body)
            .send()
    };
    let as_body = |message: CommandMessage| serde_json::to_string(&message).unwrap();
    send("books", "1", as_body(command("books"))).await.unwrap();
    send("books", "2", "this is not a command".into()).await.unwrap();
    send("books", "3", as_body(command("novels"))).await.unwrap();
    send("toys", "4", as_body(command("toys"))).await.unwrap();
    let mut duplicate = command("toys");
    duplicate.dedup_id = "toys-again".into();
    send("toys", "5", as_body(duplicate)).await.unwrap();
    let event = shop.sqs_event(5).await;
    let ids: Vec<String> =
        event["Records"].as_array().unwrap().iter().map(|r| r["messageId"].as_str().unwrap().to_string()).collect();
    let by_body = |needle: &str| {
        event["Records"].as_array().unwrap().iter().find(|r| r["body"].as_str().unwrap().contains(needle)).unwrap()["messageId"]
            .as_str()
            .unwrap()
            .to_string()
    };

    let (api, function) = shop.function(CATALOG, "CatalogStateChanges").await;
    let answer = api.invoke(event.clone(), LIMIT).await.unwrap();
    let log = function.stop();
    assert!(answer["batchItemFailures"].is_array(), "{answer}");
    let mut failed: Vec<String> = answer["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_string())
        .collect();
    failed.sort();
    let mut expected = vec![by_body("this is not a command"), by_body("novels")];
    expected.sort();
    assert_eq!(
        failed, expected,
        "the broken message and the later one of its group; not the other group ({ids:?}) {log}"
    );

    let events = shop.stores().events.read("Catalog", &reventless_spec::Query::all(), None, None).await.unwrap();
    let mut added: Vec<String> = events.iter().map(|e| e.data["category_id"].as_str().unwrap().to_string()).collect();
    added.sort();
    assert_eq!(added, vec!["books", "toys"], "the rejected duplicate counts as handled, novels waits for redelivery");
}

/// Through the Api: the `categories` (the first is `books`), then the product `dune` in `books`.
async fn stock_dune(api: &RuntimeApi, categories: &[&str]) {
    for id in categories {
        let added = api.invoke(http_request("POST", "/graphql", Some(&add_category(id)), Some(merchandiser())), LIMIT);
        assert_eq!(body(&added.await.unwrap())["data"]["Catalog_AddCategory"]["status"], "ACCEPTED");
    }
    let product = graphql(
        r#"mutation { Catalog_AddProduct(productId: "dune", name: "Dune", description: "", priceCents: 999, currency: "EUR", categoryId: "books") { status } }"#,
    );
    let added = api.invoke(http_request("POST", "/graphql", Some(&product), Some(merchandiser())), LIMIT).await;
    assert_eq!(body(&added.unwrap())["data"]["Catalog_AddProduct"]["status"], "ACCEPTED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_batches_keep_the_read_models_current_once() {
    let shop = Deployment::new("Catalog").await;
    let (api, _api_function) = shop.function(CATALOG, "CatalogApi").await;
    stock_dune(&api, &["books", "games"]).await;

    let event = shop.stream_event().await;
    assert!(event["Records"].as_array().unwrap().len() >= 3, "{event}");
    let (projections, _function) = shop.function(CATALOG, "CatalogAllReadModels").await;
    let answer = projections.invoke(event.clone(), LIMIT).await.unwrap();
    assert_eq!(answer["batchItemFailures"], json!([]));

    let queries = shop.stores().queries;
    let books = queries.get("Catalog_Categories", "books").await.unwrap().unwrap();
    assert_eq!(books["name"], "books");
    assert_eq!(queries.get("Catalog_CategoryProductCounts", "books").await.unwrap().unwrap()["count"], 1);
    let dune = queries.get("Catalog_Products", "dune").await.unwrap().unwrap();
    assert_eq!(dune["shelfStatus"], "LISTED");

    // A redelivered batch changes nothing (the checkpoint has passed it).
    let again = projections.invoke(event, LIMIT).await.unwrap();
    assert_eq!(again["batchItemFailures"], json!([]));
    assert_eq!(queries.get("Catalog_CategoryProductCounts", "books").await.unwrap().unwrap()["count"], 1);

    let listed = api
        .invoke(
            http_request(
                "POST",
                "/graphql",
                Some(&graphql("{ Catalog_Categories { totalCount edges { node { id productCount } } } }")),
                None,
            ),
            LIMIT,
        )
        .await
        .unwrap();
    assert_eq!(
        body(&listed)["data"]["Catalog_Categories"],
        json!({"totalCount": 2, "edges": [{"node": {"id": "books", "productCount": 1}}, {"node": {"id": "games", "productCount": 0}}]})
    );

    // `categoryId` is a declared index: this list reads the rows table's index.
    let query = r#"{ Catalog_Products(filter: {categoryId: "books"}) { totalCount edges { node { id } } } }"#;
    let by_category = api.invoke(http_request("POST", "/graphql", Some(&graphql(query)), None), LIMIT).await.unwrap();
    assert_eq!(
        body(&by_category)["data"]["Catalog_Products"],
        json!({"totalCount": 1, "edges": [{"node": {"id": "dune"}}]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_micro_follower_function_runs_only_its_component() {
    let shop = Deployment::new("Catalog").await;
    let (api, _api_function) = shop.function(CATALOG, "CatalogApi").await;
    stock_dune(&api, &["books"]).await;
    let event = shop.stream_event().await;
    let queries = shop.stores().queries;
    let only = |component: &str| reventless_aws::lambda::FunctionConfig {
        components: vec![component.to_string()],
        topics: reventless_core::TopicLayout::PerComponent,
        ..shop.function_config("AllReadModels")
    };

    let (counts, _counts_function) = shop.function_with(CATALOG, &only("CategoryProductCounts")).await;
    assert_eq!(counts.invoke(event.clone(), LIMIT).await.unwrap()["batchItemFailures"], json!([]));
    assert_eq!(queries.get("Catalog_CategoryProductCounts", "books").await.unwrap().unwrap()["count"], 1);
    assert!(queries.get("Catalog_Categories", "books").await.unwrap().is_none(), "another function's component");
    assert!(queries.get("Catalog_Products", "dune").await.unwrap().is_none(), "another function's component");

    let (categories, _categories_function) = shop.function_with(CATALOG, &only("Categories")).await;
    assert_eq!(categories.invoke(event, LIMIT).await.unwrap()["batchItemFailures"], json!([]));
    assert_eq!(queries.get("Catalog_Categories", "books").await.unwrap().unwrap()["name"], "books");

    // A component the plugin does not have stops the container at init, naming it.
    let runtime = reventless_aws::runtime_api::RuntimeApi::start().await.unwrap();
    let mut function = runtime.spawn(std::path::Path::new(CATALOG), &shop.env_of(&only("Categoriez"))).unwrap();
    let deadline = std::time::Instant::now() + LIMIT;
    while function.is_running() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!function.is_running(), "a misconfigured function does not serve");
    let log = function.stop();
    assert!(log.contains("no component `Categoriez`"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_function_keeps_the_plugin_row_current() {
    let shop = Deployment::new("Catalog").await;
    let (heart, _function) = shop.function(CATALOG, "CatalogHeartbeat").await;
    let beat = json!({"reventless": reventless_aws::lambda::HEARTBEAT_EVENT});
    let answer = heart.invoke(beat.clone(), LIMIT).await.unwrap();
    assert_eq!(answer, json!({"plugin": "Catalog", "status": "CONNECTED"}));
    let queries = shop.stores().queries;
    let row = queries.get(reventless_core::PLATFORM_PLUGINS, "Catalog").await.unwrap().unwrap();
    assert_eq!(row["status"], "CONNECTED");
    assert!(row["schema"].as_str().unwrap().contains("Catalog_AddCategory("), "{row}");
    let first = row["lastHeartbeat"].as_u64().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    heart.invoke(beat, LIMIT).await.unwrap();
    let again = queries.get(reventless_core::PLATFORM_PLUGINS, "Catalog").await.unwrap().unwrap();
    assert!(again["lastHeartbeat"].as_u64().unwrap() > first, "each beat moves the heartbeat time");
    // Other functions do not beat.
    let (api, _api) = shop.function(CATALOG, "CatalogApi").await;
    assert!(api.invoke(json!({"reventless": "heartbeat"}), LIMIT).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_retries_automation_items_that_are_due() {
    let shop = Deployment::new("Ordering").await;
    let table = "Ordering_SendOrderConfirmationTodos";
    // Written as the plugin writes it: with its declared `status` index.
    let indexes = [(table.to_string(), vec!["status".to_string()])].into();
    let queries = reventless_aws::aws_stores_with(&shop.config, &shop.names, Default::default(), indexes).queries;
    let failed = json!({
        "status": "FAILED", "retryCount": 1, "processedAt": 0, "lastError": "mail server down",
        "item": {"orderId": "o1", "customerId": "c1", "totalCents": 1200, "currency": "EUR"},
    });
    queries.put(table, "o1", failed).await.unwrap();

    let (heart, function) = shop.function(ORDERING, "OrderingHeartbeat").await;
    let answer = heart.invoke(json!({"reventless": reventless_aws::lambda::HEARTBEAT_EVENT}), LIMIT).await.unwrap();
    assert_eq!(answer["status"], "CONNECTED");
    let row = queries.get(table, "o1").await.unwrap().unwrap();
    assert!(row["processedAt"].as_u64().unwrap() > 0, "retried on the beat: {row}");
    let log = function.stop();
    assert!(log.contains("mail to c1: Order o1 confirmed"), "the mail went out: {log}");
    // The order o1 exists nowhere: the confirmation the mail is recorded by is
    // rejected, and the item says so instead of waiting forever.
    assert_eq!(row["status"], "FAILED", "{row}");
    assert_eq!(row["retryCount"], 2);
    assert_eq!(row["lastError"], "RecordConfirmation was rejected: OrderNotFound");
}
