//! The payment provider's webhook on the dev server: `POST
//! /hooks/Ordering/payments`, signed with the shop's `payment-webhook-secret`,
//! records the payment; a bad signature or body runs and audits nothing.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use online_shop::ordering::{PAYMENT_WEBHOOK_SECRET, TEST_PAYMENT_WEBHOOK_SECRET};
use reventless::core::Runtime;
use reventless::core::hooks::signature::sign;
use reventless::core::store::ListRequest;
use reventless::spec::SecretValue;
use serde_json::{Value, json};

const AUDIT: &str = "Ordering_PaymentWebhookAudit";

struct Shop {
    base: String,
    client: reqwest::Client,
    runtime: Runtime,
}

async fn start() -> Shop {
    let (capabilities, _mails) = online_shop::ordering::local_capabilities();
    let runtime = reventless::local::start_in_memory_with(online_shop::plugins(), capabilities).unwrap();
    let schema = reventless::graphql::build_schema(&runtime).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let served = runtime.clone();
    tokio::spawn(reventless::local::server::serve(
        served,
        schema,
        Default::default(),
        listener,
        std::future::pending(),
    ));
    let shop = Shop { base, client: reqwest::Client::new(), runtime };
    shop.place_order().await;
    shop
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The provider's notification of `amount` cents paid for `o1`.
fn paid(amount: i64) -> String {
    json!({ "type": "payment.succeeded", "orderId": "o1", "paymentId": "pay-1", "amountCents": amount }).to_string()
}

impl Shop {
    async fn gql(&self, (user, roles): (&str, &str), query: &str) -> Value {
        let request =
            self.client.post(format!("{}/graphql", self.base)).header("x-user-id", user).header("x-user-roles", roles);
        let answer: Value = request.json(&json!({ "query": query })).send().await.unwrap().json().await.unwrap();
        assert!(answer["errors"].is_null(), "{query}: {answer}");
        answer["data"].clone()
    }

    /// Polls `query` until `check` holds (at most 15 s).
    async fn eventually(&self, what: &str, query: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let data = self.gql(("ada", "Admin"), query).await;
            if check(&data) {
                return data;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; last: {data}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Order `o1` of Ann: 2 × p1 at 1200 cents.
    async fn place_order(&self) {
        let merch = ("merch", "Merchandiser");
        self.gql(merch, r#"mutation { Catalog_AddCategory(categoryId: "books", name: "Books") { status } }"#).await;
        let add = r#"mutation { Catalog_AddProduct(productId: "p1", name: "p1", description: "", priceCents: 1200, currency: "EUR", categoryId: "books") { status } }"#;
        self.gql(merch, add).await;
        let register =
            r#"mutation { Ordering_Customer_Register(id: "ann", name: "Ann", email: "ann@example.org") { status } }"#;
        self.gql(("ann", ""), register).await;
        self.eventually("p1 synced to Ordering", r#"{ Ordering_AvailableProduct(id: "p1") { available } }"#, |d| {
            d["Ordering_AvailableProduct"]["available"] == true
        })
        .await;
        let place = r#"mutation { Ordering_PlaceOrder(orderId: "o1", customerId: "ann", lines: [{productId: "p1", quantity: 2}], shipping: STANDARD) { status errorCode } }"#;
        let placed = self.gql(("ann", ""), place).await;
        assert_eq!(placed["Ordering_PlaceOrder"]["status"], "ACCEPTED", "{placed}");
    }

    /// POSTs `body` to the payment route with `headers`; the status and JSON answer.
    async fn post(&self, body: &str, headers: &[(&str, String)]) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}/hooks/Ordering/payments", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// The events in Ordering's log and the webhook's audit rows.
    async fn counts(&self) -> (u64, u64) {
        self.runtime.settle_within(Duration::from_secs(15)).await.unwrap();
        let stores = self.runtime.stores();
        let events = stores.events.head("Ordering").await.unwrap();
        let list = ListRequest { filters: vec![], order_by: None, first: 100, after: None };
        (events, stores.queries.list(AUDIT, &list).await.unwrap().total_count)
    }
}

fn signed_with(secret: &str, timestamp: u64, body: &str) -> Vec<(&'static str, String)> {
    vec![
        ("x-signature", sign(&SecretValue::new(secret), timestamp, body.as_bytes())),
        ("x-signature-timestamp", timestamp.to_string()),
    ]
}

fn signed(body: &str) -> Vec<(&'static str, String)> {
    signed_with(TEST_PAYMENT_WEBHOOK_SECRET, now(), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_payment_notification_marks_the_order_paid() {
    let shop = start().await;
    assert_eq!(PAYMENT_WEBHOOK_SECRET, "payment-webhook-secret");
    let (events, audits) = shop.counts().await;

    let body = paid(2400);
    let (status, answer) = shop.post(&body, &signed(&body)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcomes"][0]["status"], "ACCEPTED", "{answer}");
    assert_eq!(answer["outcomes"][0]["eventCount"], 1, "{answer}");
    assert!(answer["auditId"].is_string(), "{answer}");

    let row = shop
        .eventually("o1 paid", r#"{ Ordering_Order(id: "o1") { paid paidAt totalCents } }"#, |d| {
            d["Ordering_Order"]["paid"] == true
        })
        .await;
    assert!(row["Ordering_Order"]["paidAt"].as_f64().unwrap() > 0.0, "{row}");
    assert_eq!(shop.counts().await, (events + 1, audits + 1), "OrderPaid appended, the request audited");

    // The provider delivers again: accepted, nothing new appended.
    let (status, again) = shop.post(&body, &signed(&body)).await;
    assert_eq!((status, again["outcomes"][0]["eventCount"].clone()), (200, json!(0)), "{again}");
    assert_eq!(shop.counts().await, (events + 1, audits + 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_or_missing_signature_is_401_and_nothing_runs() {
    let shop = start().await;
    let before = shop.counts().await;
    let body = paid(2400);

    let (status, answer) = shop.post(&body, &signed_with("not-the-secret", now(), &body)).await;
    assert_eq!((status, answer["error"]["code"].clone()), (401, json!("BAD_SIGNATURE")), "{answer}");
    let (status, answer) = shop.post(&body, &[]).await;
    assert_eq!((status, answer["error"]["code"].clone()), (401, json!("MISSING_SIGNATURE")), "{answer}");
    let (status, answer) = shop.post(&body, &signed_with(TEST_PAYMENT_WEBHOOK_SECRET, now() - 3600, &body)).await;
    assert_eq!((status, answer["error"]["code"].clone()), (401, json!("STALE_SIGNATURE")), "{answer}");
    // Signed, then altered on the way: the body no longer matches.
    let (status, _) = shop.post(&paid(1), &signed(&body)).await;
    assert_eq!(status, 401);

    assert_eq!(shop.counts().await, before, "nothing appended, nothing audited");
    let row = shop.gql(("ada", "Admin"), r#"{ Ordering_Order(id: "o1") { paid } }"#).await;
    assert_eq!(row["Ordering_Order"]["paid"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_or_refused_bodies_are_typed_errors() {
    let shop = start().await;
    let before = shop.counts().await;

    let body = "{not json";
    let (status, answer) = shop.post(body, &signed(body)).await;
    assert_eq!((status, answer["error"]["code"].clone()), (400, json!("MALFORMED_BODY")), "{answer}");
    let body = r#"{"type": "payment.succeeded"}"#;
    let (status, answer) = shop.post(body, &signed(body)).await;
    assert_eq!((status, answer["error"]["code"].clone()), (400, json!("BAD_INPUT")), "{answer}");
    assert_eq!(shop.counts().await, before, "a malformed body is neither run nor audited");

    // The translation refuses a payment of nothing: 422, audited, nothing appended.
    let body =
        json!({ "type": "payment.succeeded", "orderId": "o1", "paymentId": "pay-0", "amountCents": 0 }).to_string();
    let (status, answer) = shop.post(&body, &signed(&body)).await;
    assert_eq!((status, answer["error"]["code"].clone()), (422, json!("InvalidAmount")), "{answer}");
    assert_eq!(shop.counts().await, (before.0, before.1 + 1));

    // A command's rejection is an outcome of an answered request (200).
    let body = paid(999);
    let (status, answer) = shop.post(&body, &signed(&body)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcomes"][0]["errorCode"], "PaymentAmountMismatch", "{answer}");

    // Other routes and methods of the plugin do not exist.
    let missing = shop.client.post(format!("{}/hooks/Ordering/refunds", shop.base)).send().await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    let get = shop.client.get(format!("{}/hooks/Ordering/payments", shop.base)).send().await.unwrap();
    assert_eq!(get.status().as_u16(), 405);
}

#[test]
fn the_route_is_in_orderings_manifest_with_its_secret() {
    use reventless::core::plugin::{ComponentKind, route_secrets};
    let manifest = online_shop::ordering::plugin().manifest().unwrap();
    let route = manifest.components.iter().find(|c| c.kind == ComponentKind::HttpRoute).unwrap();
    assert_eq!(route.name, "POST /hooks/Ordering/payments");
    assert_eq!(route.commands, ["PaymentWebhook"]);
    assert_eq!(route.table.as_deref(), Some(AUDIT));
    assert_eq!(route_secrets(&manifest), [PAYMENT_WEBHOOK_SECRET]);
}
