//! Ordering reserves stock in Catalog through commands to the
//! `Catalog.Products` extension point, on the emulated stage: Ordering's
//! automation function sends to Catalog's command queue (IAM enforced by
//! the local cloud: its role may send to exactly that queue), and Catalog's
//! command function decides them.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use reventless_aws::deploy::config::ProjectConfig;
use reventless_aws::deploy::inputs::Bootstraps;
use reventless_local_cloud::stage::{Deployed, deploy};
use reventless_local_cloud::{CloudOptions, LocalCloud};
use serde_json::{Value, json};

const SHOP_TOML: &str = include_str!("../../online-shop/reventless.toml");

struct Stage {
    cloud: LocalCloud,
    deployed: Deployed,
    client: reqwest::Client,
    stage: String,
}

impl Stage {
    async fn start() -> Self {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let stage = format!("x{}", &id[26..]);
        let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap().keep();
        let mut options = CloudOptions::new(work);
        options.endpoint_url = Some(reventless_aws::emulator::Emulator::shared().unwrap().endpoint.clone());
        let cloud = LocalCloud::start(options).await.unwrap();
        let text = format!("{SHOP_TOML}\n[stages.{stage}]\n");
        let config = ProjectConfig::from_texts(&text, None, &stage, &|_| None, PathBuf::from(".")).unwrap();
        let bootstraps = Bootstraps::Paths(BTreeMap::from([
            ("catalog".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_catalog-lambda"))),
            ("ordering".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_ordering-lambda"))),
            ("platform".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_platform-gateway"))),
        ]));
        let deployed = deploy(&cloud, config, &bootstraps, &|line| eprintln!("{line}")).await.unwrap();
        Self { cloud, deployed, client: reqwest::Client::new(), stage }
    }

    async fn token(&self, sub: &str, groups: &[&str]) -> String {
        let request = self.client.post(&self.deployed.token_url).json(&json!({"sub": sub, "groups": groups}));
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        answer["token"].as_str().unwrap().to_string()
    }

    async fn gql(&self, token: &str, query: &str) -> Value {
        let request = self.client.post(&self.deployed.graphql_url).json(&json!({"query": query})).bearer_auth(token);
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert!(status == 200 && body["errors"].is_null(), "{query}: {status} {body}\n{}", self.output());
        body["data"].clone()
    }

    async fn accepted(&self, token: &str, field: &str, mutation: &str) {
        let data = self.gql(token, &format!("mutation {{ {field}({mutation}) {{ status errorCode }} }}")).await;
        assert_eq!(data[field]["status"], "ACCEPTED", "{field}: {data}");
    }

    /// Polls `query` until `check` holds (at most 90 s: functions start cold).
    async fn eventually(&self, token: &str, what: &str, query: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let data = self.gql(token, query).await;
            if check(&data) {
                return data;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; last: {data}\n{}", self.output());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Recent output of every function (shown when a test fails).
    fn output(&self) -> String {
        let mut text = String::new();
        for (name, _) in self.cloud.lambda.stats() {
            text.push_str(&format!("--- {name}\n"));
            for line in self.cloud.lambda.recent_output(&name).iter().rev().take(15).rev() {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }

    /// The number of Catalog events of type `kind`.
    async fn catalog_events(&self, kind: &str) -> usize {
        let dynamodb = aws_sdk_dynamodb::Client::new(&self.cloud.sdk);
        let table = format!("shop-{}-catalog-events", self.stage);
        let (mut count, mut start) = (0, None);
        loop {
            let page = dynamodb.scan().table_name(&table).set_exclusive_start_key(start).send().await.unwrap();
            count += page
                .items()
                .iter()
                .filter(
                    |item| matches!(item.get("type"), Some(aws_sdk_dynamodb::types::AttributeValue::S(t)) if t == kind),
                )
                .count();
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return count;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_reserves_and_releases_stock_across_the_two_plugin_stacks() {
    let stage = Stage::start().await;
    let merchandiser = stage.token("mia", &["Merchandiser"]).await;
    let customer = stage.token("c1", &[]).await;
    stage.accepted(&merchandiser, "Catalog_AddCategory", r#"categoryId: "books", name: "Books""#).await;
    let product =
        r#"productId: "p1", name: "Dune", description: "", priceCents: 900, currency: "EUR", categoryId: "books""#;
    stage.accepted(&merchandiser, "Catalog_AddProduct", product).await;
    stage.accepted(&merchandiser, "Catalog_ReceiveStock", r#"productId: "p1", quantity: 5"#).await;
    stage
        .eventually(&customer, "p1 synced", r#"{ Ordering_AvailableProduct(id: "p1") { available } }"#, |d| {
            d["Ordering_AvailableProduct"]["available"] == true
        })
        .await;
    stage.accepted(&customer, "Ordering_Customer_Register", r#"id: "c1", name: "Ann", email: "ann@example.org""#).await;
    let order = r#"orderId: "o1", customerId: "c1", lines: [{productId: "p1", quantity: 2}], shipping: STANDARD"#;
    stage.accepted(&customer, "Ordering_PlaceOrder", order).await;

    let stock = r#"{ Catalog_ProductStock(id: "p1") { available reserved } }"#;
    let reserved = stage
        .eventually(&merchandiser, "p1 reserved for o1", stock, |d| d["Catalog_ProductStock"]["reserved"] == 2)
        .await;
    assert_eq!(reserved["Catalog_ProductStock"], json!({"available": 3, "reserved": 2}));
    assert_eq!(stage.catalog_events("StockReserved").await, 1);

    stage.accepted(&customer, "Ordering_CancelOrder", r#"orderId: "o1""#).await;
    let released =
        stage.eventually(&merchandiser, "p1 released", stock, |d| d["Catalog_ProductStock"]["reserved"] == 0).await;
    assert_eq!(released["Catalog_ProductStock"]["available"], 5);
    assert_eq!(stage.catalog_events("StockReleased").await, 1);
    assert_eq!(stage.catalog_events("StockReserved").await, 1, "delivered at least once, reserved once");
}
