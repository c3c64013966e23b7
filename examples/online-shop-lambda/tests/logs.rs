//! Logs and traces of the deployed shop in the local cloud (IAM enforced on
//! every AWS call the functions make): a command the domain rejects, sent
//! through the gateway, shows in `reventless logs` with the correlation id
//! the gateway answered; an order's correlation id reaches every event it
//! causes across both plugins' inboxes (SQS), and the extension's command
//! line names the order's event as its cause.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use reventless_aws::deploy::config::ProjectConfig;
use reventless_aws::deploy::inputs::Bootstraps;
use reventless_aws::deploy::logs::{LogLine, LogQuery, tail};
use reventless_local_cloud::stage::{Deployed, deploy};
use reventless_local_cloud::{CloudOptions, LocalCloud};
use serde_json::{Value, json};

const SHOP_TOML: &str = include_str!("../../online-shop/reventless.toml");

fn bootstraps() -> Bootstraps {
    Bootstraps::Paths(BTreeMap::from([
        ("catalog".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_catalog-lambda"))),
        ("ordering".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_ordering-lambda"))),
        ("platform".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_platform-gateway"))),
    ]))
}

/// The shop with the engine's command lines (debug) on, the SDK's left at info.
fn config(stage: &str) -> ProjectConfig {
    let text = format!(
        "{SHOP_TOML}\n[stages.{stage}]\n[stages.{stage}.defaults]\nlog_level = \"info,reventless_core=debug\"\n"
    );
    ProjectConfig::from_texts(&text, None, stage, &|_| None, PathBuf::from(".")).unwrap()
}

struct Shop {
    cloud: LocalCloud,
    deployed: Deployed,
    config: ProjectConfig,
    client: reqwest::Client,
}

impl Shop {
    async fn token(&self, sub: &str, groups: &[&str]) -> String {
        let request = self.client.post(&self.deployed.token_url).json(&json!({"sub": sub, "groups": groups}));
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        answer["token"].as_str().unwrap().to_string()
    }

    /// POSTs a GraphQL request (with `x-correlation-id` when given): (data, the answer's correlation id).
    async fn gql(&self, token: &str, query: &str, correlation: Option<&str>) -> (Value, String) {
        let mut request =
            self.client.post(&self.deployed.graphql_url).bearer_auth(token).json(&json!({"query": query}));
        if let Some(id) = correlation {
            request = request.header("x-correlation-id", id);
        }
        let response = request.send().await.unwrap();
        let header = response.headers().get("x-correlation-id").map(|v| v.to_str().unwrap().to_string());
        let body: Value = response.json().await.unwrap();
        assert!(body["errors"].is_null(), "{query}: {body}");
        (body["data"].clone(), header.unwrap_or_else(|| panic!("the gateway names the correlation id: {body}")))
    }

    /// Polls `query` until `check` holds (functions start cold).
    async fn eventually(&self, token: &str, what: &str, query: &str, check: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if check(&self.gql(token, query, None).await.0) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The stored envelopes of a plugin stack's events table.
    async fn events(&self, stack: &str) -> Vec<Value> {
        let dynamodb = aws_sdk_dynamodb::Client::new(&self.cloud.sdk);
        let table = format!("shop-{}-{stack}-events", self.config.stage);
        let page = dynamodb.scan().table_name(&table).send().await.unwrap();
        assert!(page.last_evaluated_key().is_none(), "one page holds this test's events");
        page.items()
            .iter()
            .filter_map(|item| match item.get("event") {
                Some(aws_sdk_dynamodb::types::AttributeValue::S(text)) => serde_json::from_str(text).ok(),
                _ => None,
            })
            .collect()
    }

    /// `reventless logs` (the library) until a line satisfies `wanted`.
    async fn log_line(&self, query: &LogQuery, what: &str, wanted: impl Fn(&LogLine) -> bool) -> LogLine {
        let logs = aws_sdk_cloudwatchlogs::Client::new(&self.cloud.sdk);
        // Generous: under a full test run on 2 cores the stage's 13 functions
        // ship their lines late (a clean-clone run missed one at 30 s).
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let mut lines = Vec::new();
            let since = Duration::from_secs(600);
            let mut keep = |line: &LogLine| lines.push(line.clone());
            let read = tail(&logs, &self.config, query, since, None, std::future::ready(()), &mut keep).await;
            read.unwrap_or_else(|e| panic!("{what}: {e}"));
            if let Some(line) = lines.into_iter().find(|l| wanted(l)) {
                return line;
            }
            assert!(Instant::now() < deadline, "no log line: {what}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn one<'a>(events: &'a [Value], event_type: &str) -> &'a Value {
    let found: Vec<&Value> = events.iter().filter(|e| e["type"] == event_type).collect();
    assert_eq!(found.len(), 1, "one {event_type}: {found:?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rejected_command_is_in_the_logs_with_its_correlation_id_and_an_order_correlates_across_plugins() {
    let stage = format!("l{}", &uuid::Uuid::now_v7().simple().to_string()[26..]);
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap().keep();
    let mut options = CloudOptions::new(work);
    options.endpoint_url = Some(reventless_aws::emulator::Emulator::shared().unwrap().endpoint.clone());
    let cloud = LocalCloud::start(options).await.unwrap();
    let deployed = deploy(&cloud, config(&stage), &bootstraps(), &|line| eprintln!("{line}")).await.unwrap();
    let shop = Shop { cloud, deployed, config: config(&stage), client: reqwest::Client::new() };
    let merchandiser = shop.token("mia", &["Merchandiser"]).await;
    let customer = shop.token("c1", &[]).await;

    // A rejected order: the gateway answers the request's correlation id,
    // and the Ordering API's log line names it with the rejection.
    let missing = r#"mutation { Ordering_PlaceOrder(orderId: "o0", customerId: "c1", lines: [{productId: "nope", quantity: 1}], shipping: STANDARD) { status errorCode } }"#;
    let (rejected, correlation) = shop.gql(&customer, missing, None).await;
    // (No customer c1 yet: the domain refuses the order.)
    let code = rejected["Ordering_PlaceOrder"]["errorCode"].as_str().unwrap().to_string();
    assert_eq!(rejected["Ordering_PlaceOrder"]["status"], "REJECTED", "{rejected}");
    let ordering = LogQuery { plugin: Some("ordering".into()), ..Default::default() };
    let line = shop
        .log_line(&ordering, "the rejection", |l| {
            l.text() == "command rejected" && l.correlation_id() == Some(&correlation)
        })
        .await;
    let fields = line.fields.clone().unwrap();
    assert_eq!(fields["errorCode"], code.as_str(), "{fields:?}");
    assert_eq!((fields["command"].as_str(), fields["plugin"].as_str()), (Some("PlaceOrder"), Some("Ordering")));
    assert!(fields["requestId"].as_str().is_some_and(|id| !id.is_empty()), "{fields:?}");
    assert!(line.function.ends_with("ordering-OrderingApi"), "{}", line.function);
    assert!(line.human("").ends_with(&format!("[{correlation}]")), "{}", line.human(""));

    // An order whose chain crosses both inboxes (SQS): under the caller's correlation id.
    shop.gql(&merchandiser, r#"mutation { Catalog_AddCategory(categoryId: "books", name: "Books") { status } }"#, None)
        .await;
    let product = r#"mutation { Catalog_AddProduct(productId: "p1", name: "p1", description: "", priceCents: 500, currency: "EUR", categoryId: "books") { status } }"#;
    let (_, product_correlation) = shop.gql(&merchandiser, product, None).await;
    shop.eventually(&customer, "p1 synced", r#"{ Ordering_AvailableProduct(id: "p1") { available } }"#, |d| {
        d["Ordering_AvailableProduct"]["available"] == true
    })
    .await;
    let register =
        r#"mutation { Ordering_Customer_Register(id: "c1", name: "Ann", email: "ann@example.org") { status } }"#;
    shop.gql(&customer, register, None).await;
    let order_correlation = format!("order-{stage}");
    let place = r#"mutation { Ordering_PlaceOrder(orderId: "o1", customerId: "c1", lines: [{productId: "p1", quantity: 1}], shipping: EXPRESS) { status } }"#;
    let (placed, answered) = shop.gql(&customer, place, Some(&order_correlation)).await;
    assert_eq!(
        (placed["Ordering_PlaceOrder"]["status"].as_str(), answered.as_str()),
        (Some("ACCEPTED"), order_correlation.as_str())
    );
    shop.eventually(&merchandiser, "p1's demand", r#"{ Catalog_ProductDemand(id: "p1") { orderCount } }"#, |d| {
        d["Catalog_ProductDemand"]["orderCount"] == 1
    })
    .await;
    shop.eventually(&customer, "o1 shipped", r#"{ Ordering_Order(id: "o1") { lifecycle } }"#, |d| {
        d["Ordering_Order"]["lifecycle"] == "SHIPPED"
    })
    .await;

    let ordering_events = shop.events("ordering").await;
    let catalog_events = shop.events("catalog").await;
    let order_placed = one(&ordering_events, "OrderPlaced");
    for event in [order_placed, one(&ordering_events, "OrderShipped"), one(&catalog_events, "DemandRecorded")] {
        assert_eq!(event["meta"]["correlationId"], order_correlation.as_str(), "{event}");
    }
    // The product's chain kept its own request's correlation, through Catalog's publisher into Ordering.
    assert_eq!(one(&catalog_events, "ProductAdded")["meta"]["correlationId"], product_correlation.as_str());
    assert_eq!(one(&ordering_events, "ProductSynced")["meta"]["correlationId"], product_correlation.as_str());

    // The demand's command ran in Catalog's inbox function: its line names the order's event as its cause.
    let demand = one(&catalog_events, "DemandRecorded");
    let command_id = demand["meta"]["causationId"].as_str().unwrap().to_string();
    let catalog =
        LogQuery { plugin: Some("Catalog".into()), function: Some("CatalogExtensions".into()), pattern: None };
    let line = shop
        .log_line(&catalog, "the demand's command", |l| {
            l.fields.as_ref().is_some_and(|f| f.get("commandId").and_then(Value::as_str) == Some(command_id.as_str()))
        })
        .await;
    let fields = line.fields.unwrap();
    assert_eq!(fields["causationId"], order_placed["event_id"], "{fields:?}");
    assert_eq!(fields["correlationId"], order_correlation.as_str(), "{fields:?}");
    assert_eq!(fields["component"], "OrderedItems", "{fields:?}");
}
