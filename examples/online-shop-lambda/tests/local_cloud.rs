//! The shop as deployed, running: `reventless emulate`'s local cloud runs
//! the deployed functions under their roles (IAM checked on every AWS call
//! they make), drives their mappings as configured, and the gateway trusts
//! the local OIDC issuer. The same flows as the local end-to-end tests, through
//! the gateway URL with tokens; then failures: a killed instance, a poison
//! message, a role missing a statement, a stream batch that keeps failing.
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

/// The shop's binaries as cargo built them for this test.
fn bootstraps() -> Bootstraps {
    Bootstraps::Paths(BTreeMap::from([
        ("catalog".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_catalog-lambda"))),
        ("ordering".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_ordering-lambda"))),
        ("platform".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_platform-gateway"))),
    ]))
}

/// A stage of the shop whose Ordering inbox gives up on a message quickly
/// (timeout 2 s → visibility 12 s, 5 receives).
fn config(stage: &str) -> ProjectConfig {
    let text = format!("{SHOP_TOML}\n[stages.{stage}]\n[plugins.ordering.groups.Extensions]\ntimeout = 2\n");
    ProjectConfig::from_texts(&text, None, stage, &|_| None, PathBuf::from(".")).unwrap()
}

struct Shop {
    cloud: LocalCloud,
    deployed: Deployed,
    client: reqwest::Client,
    stage: String,
}

impl Shop {
    async fn token(&self, sub: &str, groups: &[&str]) -> String {
        let answer: Value = self
            .client
            .post(&self.deployed.token_url)
            .json(&json!({"sub": sub, "groups": groups}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["token"].as_str().unwrap().to_string()
    }

    /// POSTs a GraphQL request with an optional bearer token: (HTTP status, body).
    async fn post(&self, token: Option<&str>, query: &str) -> (u16, Value) {
        let mut request = self.client.post(&self.deployed.graphql_url).json(&json!({"query": query}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|_| json!({"raw": text})))
    }

    /// Data of a request that must succeed.
    async fn gql(&self, token: &str, query: &str) -> Value {
        let (status, body) = self.post(Some(token), query).await;
        assert!(status == 200 && body["errors"].is_null(), "{query}: {status} {body}\n{}", self.output());
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
            assert!(Instant::now() < deadline, "timed out waiting for {what}; last: {data}\n{}", self.output());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn function(&self, stack: &str, unit: &str) -> String {
        format!("shop-{}-{stack}-{unit}", self.stage)
    }

    /// Recent output of every function (shown when a test fails).
    fn output(&self) -> String {
        let mut text = String::new();
        for (name, _) in self.cloud.lambda.stats() {
            let lines = self.cloud.lambda.recent_output(&name);
            let tail: Vec<&String> = lines.iter().rev().take(15).collect();
            text.push_str(&format!("--- {name}\n"));
            for line in tail.into_iter().rev() {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }

    async fn events(&self, stack: &str) -> Vec<Value> {
        let dynamodb = aws_sdk_dynamodb::Client::new(&self.cloud.sdk);
        let table = format!("shop-{}-{stack}-events", self.stage);
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = dynamodb.scan().table_name(&table).set_exclusive_start_key(start).send().await.unwrap();
            for item in page.items() {
                if let Some(aws_sdk_dynamodb::types::AttributeValue::S(kind)) = item.get("type") {
                    items.push(json!({"type": kind}));
                }
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return items;
            }
        }
    }
}

async fn start(stage: &str) -> Shop {
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap().keep();
    let mut options = CloudOptions::new(work);
    options.endpoint_url = Some(reventless_aws::emulator::Emulator::shared().unwrap().endpoint.clone());
    let cloud = LocalCloud::start(options).await.unwrap();
    let deployed = deploy(&cloud, config(stage), &bootstraps(), &|line| eprintln!("{line}")).await.unwrap();
    Shop { cloud, deployed, client: reqwest::Client::new(), stage: stage.to_string() }
}

fn unique_stage(prefix: &str) -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("{prefix}{}", &id[26..])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_deployed_shop_runs_its_flows_through_the_gateway_with_tokens() {
    let shop = start(&unique_stage("e")).await;
    let merchandiser = shop.token("mia", &["Merchandiser"]).await;
    let customer = shop.token("c1", &[]).await;

    // Categories and products as Merchandiser.
    let added = shop
        .gql(&merchandiser, r#"mutation { Catalog_AddCategory(categoryId: "books", name: "Books") { status } }"#)
        .await;
    assert_eq!(added["Catalog_AddCategory"]["status"], "ACCEPTED");
    for (id, price) in [("p1", 500), ("p2", 750)] {
        let query = format!(
            r#"mutation {{ Catalog_AddProduct(productId: "{id}", name: "{id}", description: "", priceCents: {price}, currency: "EUR", categoryId: "books") {{ status }} }}"#
        );
        assert_eq!(shop.gql(&merchandiser, &query).await["Catalog_AddProduct"]["status"], "ACCEPTED");
    }
    shop.eventually(
        &merchandiser,
        "the category's product count",
        r#"{ Catalog_Category(id: "books") { productCount } }"#,
        |d| d["Catalog_Category"]["productCount"] == 2,
    )
    .await;

    // A browser on another origin may call the gateway (CORS preflight).
    let preflight = shop
        .client
        .request(reqwest::Method::OPTIONS, &shop.deployed.graphql_url)
        .header("origin", "http://127.0.0.1:5173")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()), Some("*"));
    let allowed = preflight.headers().get("access-control-allow-headers").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(allowed.contains("authorization"), "{allowed}");

    // Without the role: refused as data; anonymous alike.
    let refused = shop
        .gql(&customer, r#"mutation { Catalog_AddCategory(categoryId: "x", name: "X") { status errorCode } }"#)
        .await;
    assert_eq!(refused["Catalog_AddCategory"]["errorCode"], "AccessRefused");
    let (status, anonymous) =
        shop.post(None, r#"mutation { Catalog_AddCategory(categoryId: "x", name: "X") { errorCode } }"#).await;
    assert_eq!((status, &anonymous["data"]["Catalog_AddCategory"]["errorCode"]), (200, &json!("AccessRefused")));

    // Forged and expired tokens: 401 UNAUTHENTICATED, nothing executed.
    let events_before = shop.events("catalog").await.len();
    let mut forged = merchandiser.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    // Expired ten minutes ago (beyond any clock-skew leeway).
    let mut claims = shop.cloud.issuer.claims("mia", &["Merchandiser"], Duration::from_secs(60));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    claims.insert("iat".into(), json!(now - 1200));
    claims.insert("exp".into(), json!(now - 600));
    let expired = shop.cloud.issuer.sign_claims(&claims).unwrap();
    for (what, token) in [("forged", forged.as_str()), ("expired", expired.as_str()), ("garbage", "not-a-jwt")] {
        let (status, body) =
            shop.post(Some(token), r#"mutation { Catalog_AddCategory(categoryId: "y", name: "Y") { status } }"#).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{what}: {body}");
    }
    // Malformed input: BAD_USER_INPUT, nothing appended.
    let (_, wrong) = shop
        .post(Some(&merchandiser), r#"mutation { Catalog_AddCategory(categoryId: 5, name: "x") { status } }"#)
        .await;
    assert_eq!(wrong["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{wrong}");
    assert_eq!(shop.events("catalog").await.len(), events_before, "refused requests appended nothing");

    // Products reach Ordering through its inbox; a customer orders.
    for id in ["p1", "p2"] {
        shop.eventually(
            &customer,
            &format!("{id} synced"),
            &format!(r#"{{ Ordering_AvailableProduct(id: "{id}") {{ available }} }}"#),
            |d| d["Ordering_AvailableProduct"]["available"] == true,
        )
        .await;
    }
    let registered = shop
        .gql(
            &customer,
            r#"mutation { Ordering_Customer_Register(id: "c1", name: "Ann", email: "ann@example.org") { status } }"#,
        )
        .await;
    assert_eq!(registered["Ordering_Customer_Register"]["status"], "ACCEPTED");
    let place = |order: &str, shipping: &str| {
        format!(
            r#"mutation {{ Ordering_PlaceOrder(orderId: "{order}", customerId: "c1", lines: [{{productId: "p1", quantity: 2}}], shipping: {shipping}) {{ status errorCode }} }}"#
        )
    };
    assert_eq!(shop.gql(&customer, &place("o1", "EXPRESS")).await["Ordering_PlaceOrder"]["status"], "ACCEPTED");
    assert_eq!(shop.gql(&customer, &place("o2", "STANDARD")).await["Ordering_PlaceOrder"]["status"], "ACCEPTED");
    let not_fulfilment = shop.gql(&customer, r#"mutation { Ordering_ShipOrder(orderId: "o2") { errorCode } }"#).await;
    assert_eq!(not_fulfilment["Ordering_ShipOrder"]["errorCode"], "AccessRefused");

    // Demand recorded in Catalog through the extension.
    shop.eventually(&merchandiser, "p1's demand", r#"{ Catalog_ProductDemand(id: "p1") { orderCount } }"#, |d| {
        d["Catalog_ProductDemand"]["orderCount"] == 2
    })
    .await;
    // The express order shipped by the automation; both confirmations sent.
    shop.eventually(&customer, "o1 shipped by the automation", r#"{ Ordering_Order(id: "o1") { lifecycle } }"#, |d| {
        d["Ordering_Order"]["lifecycle"] == "SHIPPED"
    })
    .await;
    let admin = shop.token("root", &["Admin"]).await;
    shop.eventually(
        &admin,
        "both confirmations sent",
        r#"{ Ordering_SendOrderConfirmationTodos(filter: {status: COMPLETED}) { totalCount } }"#,
        |d| d["Ordering_SendOrderConfirmationTodos"]["totalCount"] == 2,
    )
    .await;
    let standard = shop.gql(&admin, r#"{ Ordering_Order(id: "o2") { lifecycle } }"#).await;
    assert_eq!(standard["Ordering_Order"]["lifecycle"], "PLACED");
    let automations = shop.function("ordering", "AllAutomationSlices");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !shop.cloud.lambda.recent_output(&automations).iter().any(|l| l.contains("mail to c1: Order o2 confirmed")) {
        assert!(Instant::now() < deadline, "the mail is in the function's log\n{}", shop.output());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A role missing one statement: the matching call is refused by IAM.
    let iam = aws_sdk_iam::Client::new(&shop.cloud.sdk);
    let role = shop.function("catalog", "CatalogApi");
    let original = iam.get_role_policy().role_name(&role).policy_name("reventless").send().await.unwrap();
    let document = reventless_local_cloud::iam::document_text(original.policy_document()).into_owned();
    let mut policy: Value = serde_json::from_str(&document).unwrap();
    let statements = policy["Statement"].as_array_mut().unwrap();
    let before = statements.len();
    statements.retain(|s| {
        !s["Action"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a == "dynamodb:TransactWriteItems" || a == "dynamodb:PutItem"))
    });
    assert!(statements.len() < before, "the API role writes events: {document}");
    iam.put_role_policy()
        .role_name(&role)
        .policy_name("reventless")
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, denied) = shop
        .post(Some(&merchandiser), r#"mutation { Catalog_AddCategory(categoryId: "games", name: "Games") { status } }"#)
        .await;
    assert!(denied.to_string().contains("AccessDenied"), "the write is refused by IAM: {denied}");
    iam.put_role_policy().role_name(&role).policy_name("reventless").policy_document(&document).send().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let restored = shop
        .gql(&merchandiser, r#"mutation { Catalog_AddCategory(categoryId: "games", name: "Games") { status } }"#)
        .await;
    assert_eq!(restored["Catalog_AddCategory"]["status"], "ACCEPTED");
}

/// Kills `pid` as the OOM killer or a crash would (no chance to answer).
fn kill(pid: u32) {
    let status = std::process::Command::new("kill").arg("-9").arg(pid.to_string()).status().unwrap();
    assert!(status.success(), "kill -9 {pid}");
}

async fn queue_depth(statuses: &[reventless_aws::deploy::run::ResourceStatus], name: &str) -> u64 {
    let status = statuses.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("{name} in the status"));
    status.detail["visible"].as_u64().unwrap_or(0) + status.detail["inFlight"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_instances_poison_messages_and_failing_stream_batches_are_handled_as_on_aws() {
    let stage = unique_stage("f");
    let shop = start(&stage).await;
    let merchandiser = shop.token("mia", &["Merchandiser"]).await;
    shop.gql(&merchandiser, r#"mutation { Catalog_AddCategory(categoryId: "books", name: "Books") { status } }"#).await;

    // An instance of the inbox function killed mid-batch: the batch comes
    // back after the visibility timeout and nothing is stored twice.
    let inbox = shop.function("ordering", "OrderingExtensions");
    let products: Vec<String> = (0..12).map(|i| format!("k{i:02}")).collect();
    for id in &products {
        let query = format!(
            r#"mutation {{ Catalog_AddProduct(productId: "{id}", name: "{id}", description: "", priceCents: 100, currency: "EUR", categoryId: "books") {{ status }} }}"#
        );
        assert_eq!(shop.gql(&merchandiser, &query).await["Catalog_AddProduct"]["status"], "ACCEPTED");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let victim = loop {
        if let Some(pid) = shop.cloud.lambda.busy_pids(&inbox).first() {
            break *pid;
        }
        assert!(Instant::now() < deadline, "the inbox function never ran\n{}", shop.output());
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    kill(victim);
    let admin = shop.token("root", &["Admin"]).await;
    for id in &products {
        let query = format!(r#"{{ Ordering_AvailableProduct(id: "{id}") {{ available }} }}"#);
        shop.eventually(&admin, &format!("{id} synced after the kill"), &query, |d| {
            d["Ordering_AvailableProduct"]["available"] == true
        })
        .await;
    }
    let synced = shop.events("ordering").await.iter().filter(|e| e["type"] == "ProductSynced").count();
    assert_eq!(synced, products.len(), "each product synced exactly once");

    // A poison message in the inbox: received maxReceiveCount times, then in the DLQ.
    let sqs = aws_sdk_sqs::Client::new(&shop.cloud.sdk);
    let queue = format!("shop-{stage}-ordering-Ordering_Extensions.fifo");
    let dlq = format!("shop-{stage}-ordering-Ordering_Extensions-dlq.fifo");
    let url = sqs.get_queue_url().queue_name(&queue).send().await.unwrap().queue_url().unwrap().to_string();
    sqs.send_message()
        .queue_url(&url)
        .message_body("{\"not\": \"an event\"")
        .message_group_id("poison")
        .message_deduplication_id("poison-1")
        .send()
        .await
        .unwrap();

    // A stream batch that keeps failing: a corrupt event row in Catalog's log.
    let dynamodb = aws_sdk_dynamodb::Client::new(&shop.cloud.sdk);
    let table = format!("shop-{stage}-catalog-events");
    let scanned = dynamodb.scan().table_name(&table).send().await.unwrap();
    let template = scanned
        .items()
        .iter()
        .filter(|item| item.get("type").is_some() && item.get("event").is_some())
        .max_by_key(|item| match item.get("gpos") {
            Some(aws_sdk_dynamodb::types::AttributeValue::N(n)) => n.parse::<u64>().unwrap_or(0),
            _ => 0,
        })
        .unwrap()
        .clone();
    use aws_sdk_dynamodb::types::AttributeValue;
    let head = match template.get("gpos") {
        Some(AttributeValue::N(n)) => n.parse::<u64>().unwrap(),
        other => panic!("an event item has a numeric gpos: {other:?}"),
    };
    let mut corrupt = template.clone();
    corrupt.insert("id".into(), AttributeValue::S("corrupt#row".into()));
    corrupt.insert("gpos".into(), AttributeValue::N((head + 1).to_string()));
    corrupt.insert("event".into(), AttributeValue::S("{ this is not an event".into()));
    dynamodb.put_item().table_name(&table).set_item(Some(corrupt)).send().await.unwrap();

    // Both land where `reventless status` shows them.
    let inputs = reventless_aws::deploy::inputs::prepare(config(&stage), &bootstraps(), &|_| {}).unwrap();
    let clients = reventless_local_cloud::stage::deploy_clients(&shop.cloud);
    let failures = format!("shop-{stage}-catalog-stream-failures");
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let statuses = reventless_aws::deploy::run::status(&clients, &inputs).await.unwrap();
        let (dead, parked) = (queue_depth(&statuses, &dlq).await, queue_depth(&statuses, &failures).await);
        if dead >= 1 && parked >= 1 {
            let record = sqs.get_queue_url().queue_name(&failures).send().await.unwrap();
            let received = sqs.receive_message().queue_url(record.queue_url().unwrap()).send().await.unwrap();
            let body: Value = serde_json::from_str(received.messages()[0].body().unwrap()).unwrap();
            assert_eq!(body["requestContext"]["condition"], "RetryAttemptsExhausted", "{body}");
            assert!(body["DDBStreamBatchInfo"]["streamArn"].as_str().unwrap().contains(&table), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "dead letters {dead}, parked stream batches {parked}\n{}", shop.output());
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
