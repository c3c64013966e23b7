//! The payment webhook on the emulated stage: `POST /hooks/Ordering/payments`
//! at the gateway's URL reaches Ordering's `Api` function, which checks the
//! signature with `payment-webhook-secret` (an SSM SecureString only
//! Ordering's roles may read) and records the payment; a bad signature is
//! 401 and runs nothing.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reventless_aws::deploy::config::ProjectConfig;
use reventless_aws::deploy::inputs::Bootstraps;
use reventless_core::hooks::signature::sign;
use reventless_local_cloud::stage::{Deployed, deploy, deploy_clients};
use reventless_local_cloud::{CloudOptions, LocalCloud};
use reventless_spec::SecretValue;
use serde_json::{Value, json};

const SHOP_TOML: &str = include_str!("../../online-shop/reventless.toml");

fn bootstraps() -> Bootstraps {
    Bootstraps::Paths(BTreeMap::from([
        ("catalog".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_catalog-lambda"))),
        ("ordering".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_ordering-lambda"))),
        ("platform".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_platform-gateway"))),
    ]))
}

/// The shop with Ordering given `payment-webhook-secret`.
fn config(stage: &str) -> ProjectConfig {
    let text = format!(
        "{SHOP_TOML}
[stages.{stage}]
[stages.{stage}.secrets]
payment-webhook-secret = \"/shop/{stage}/payment-webhook-secret\"
[stages.{stage}.plugins.ordering]
secrets = [\"payment-webhook-secret\"]
"
    );
    ProjectConfig::from_texts(&text, None, stage, &|_| None, PathBuf::from(".")).unwrap()
}

struct Shop {
    cloud: LocalCloud,
    deployed: Deployed,
    client: reqwest::Client,
}

impl Shop {
    async fn token(&self, sub: &str, groups: &[&str]) -> String {
        let request = self.client.post(&self.deployed.token_url).json(&json!({"sub": sub, "groups": groups}));
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        answer["token"].as_str().unwrap().to_string()
    }

    async fn gql(&self, token: &str, query: &str) -> Value {
        let request = self.client.post(&self.deployed.graphql_url).bearer_auth(token).json(&json!({"query": query}));
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert!(status == 200 && body["errors"].is_null(), "{query}: {status} {body}");
        body["data"].clone()
    }

    /// Polls `query` until `check` holds (at most 60 s: functions start cold).
    async fn eventually(&self, token: &str, what: &str, query: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let data = self.gql(token, query).await;
            if check(&data) {
                return data;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; last: {data}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// POSTs `body` to the payment route at the gateway's URL.
    async fn hook(&self, body: &str, headers: &[(&str, String)]) -> (u16, Value) {
        let base = self.deployed.graphql_url.trim_end_matches("graphql");
        let mut request = self.client.post(format!("{base}hooks/Ordering/payments")).body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text })))
    }

    /// Event types in Ordering's events table.
    async fn ordering_events(&self, stage: &str) -> Vec<String> {
        let dynamodb = aws_sdk_dynamodb::Client::new(&self.cloud.sdk);
        let table = format!("shop-{stage}-ordering-events");
        let mut types = Vec::new();
        let mut start = None;
        loop {
            let page = dynamodb.scan().table_name(&table).set_exclusive_start_key(start).send().await.unwrap();
            for item in page.items() {
                if let Some(aws_sdk_dynamodb::types::AttributeValue::S(kind)) = item.get("type") {
                    types.push(kind.clone());
                }
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return types;
            }
        }
    }
}

fn signed(secret: &str, body: &str) -> Vec<(&'static str, String)> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    vec![
        ("x-signature", sign(&SecretValue::new(secret), now, body.as_bytes())),
        ("x-signature-timestamp", now.to_string()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_signed_payment_webhook_through_the_gateway_marks_the_order_paid() {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let stage = format!("w{}", &id[26..]);
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap().keep();
    let mut options = CloudOptions::new(work);
    options.endpoint_url = Some(reventless_aws::emulator::Emulator::shared().unwrap().endpoint.clone());
    let cloud = LocalCloud::start(options).await.unwrap();
    let deployed = deploy(&cloud, config(&stage), &bootstraps(), &|line| eprintln!("{line}")).await.unwrap();
    let shop = Shop { cloud, deployed, client: reqwest::Client::new() };
    let secret = format!("whsec-{}", uuid::Uuid::now_v7().simple());
    let path = format!("/shop/{stage}/payment-webhook-secret");
    let ssm = deploy_clients(&shop.cloud).ssm;
    ssm.put_parameter().name(&path).value(&secret).r#type("SecureString".into()).send().await.unwrap();

    // An order of 2 × 500 cents.
    let merchandiser = shop.token("mia", &["Merchandiser"]).await;
    let customer = shop.token("c1", &[]).await;
    shop.gql(&merchandiser, r#"mutation { Catalog_AddCategory(categoryId: "books", name: "Books") { status } }"#).await;
    let product = r#"mutation { Catalog_AddProduct(productId: "p1", name: "p1", description: "", priceCents: 500, currency: "EUR", categoryId: "books") { status } }"#;
    assert_eq!(shop.gql(&merchandiser, product).await["Catalog_AddProduct"]["status"], "ACCEPTED");
    shop.eventually(&customer, "p1 synced", r#"{ Ordering_AvailableProduct(id: "p1") { available } }"#, |d| {
        d["Ordering_AvailableProduct"]["available"] == true
    })
    .await;
    let register =
        r#"mutation { Ordering_Customer_Register(id: "c1", name: "Ann", email: "ann@example.org") { status } }"#;
    shop.gql(&customer, register).await;
    let place = r#"mutation { Ordering_PlaceOrder(orderId: "o1", customerId: "c1", lines: [{productId: "p1", quantity: 2}], shipping: STANDARD) { status errorCode } }"#;
    assert_eq!(shop.gql(&customer, place).await["Ordering_PlaceOrder"]["status"], "ACCEPTED");

    let body =
        json!({ "type": "payment.succeeded", "orderId": "o1", "paymentId": "pay-1", "amountCents": 1000 }).to_string();
    // A bad signature: 401 at the gateway's URL, nothing appended.
    let before = shop.ordering_events(&stage).await;
    let (status, answer) = shop.hook(&body, &signed("not-the-secret", &body)).await;
    assert_eq!((status, answer["error"]["code"].clone()), (401, json!("BAD_SIGNATURE")), "{answer}");
    let (status, _) = shop.hook(&body, &[]).await;
    assert_eq!(status, 401);
    assert_eq!(shop.ordering_events(&stage).await, before, "a refused webhook appends nothing");

    // Signed with the secret: 200 and the order paid.
    let (status, answer) = shop.hook(&body, &signed(&secret, &body)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcomes"][0]["status"], "ACCEPTED", "{answer}");
    assert!(shop.ordering_events(&stage).await.iter().any(|t| t == "OrderPaid"));
    shop.eventually(&customer, "o1 paid", r#"{ Ordering_Order(id: "o1") { paid } }"#, |d| {
        d["Ordering_Order"]["paid"] == true
    })
    .await;
}
