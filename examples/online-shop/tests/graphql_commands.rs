//! Every command of the shop goes through GraphQL at least once: the test
//! lists the schema's mutations by introspection and fails on any mutation
//! it did not send, so a new command needs a GraphQL case here.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Who sends a mutation: user id and roles (comma list).
type As<'a> = (&'a str, &'a str);
const MERCH: As = ("merch", "Merchandiser");
const ANN: As = ("ann", "");
const FULFILMENT: As = ("fred", "Fulfilment");
const ADMIN: As = ("ada", "Admin");

struct Shop {
    base: String,
    client: reqwest::Client,
    /// The mutations sent so far.
    sent: BTreeSet<String>,
}

async fn start() -> Shop {
    let (capabilities, _mails) = online_shop::ordering::local_capabilities();
    let runtime = reventless::local::start_in_memory_with(online_shop::plugins(), capabilities).unwrap();
    let schema = reventless::graphql::build_schema(&runtime).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(reventless::local::server::serve(
        runtime,
        schema,
        Default::default(),
        listener,
        std::future::pending(),
    ));
    Shop { base, client: reqwest::Client::new(), sent: BTreeSet::new() }
}

impl Shop {
    async fn gql(&self, (user, roles): As<'_>, query: &str) -> Value {
        let request =
            self.client.post(format!("{}/graphql", self.base)).header("x-user-id", user).header("x-user-roles", roles);
        let answer: Value = request.json(&json!({"query": query})).send().await.unwrap().json().await.unwrap();
        assert!(answer["errors"].is_null(), "{query}: {answer}");
        answer["data"].clone()
    }

    /// Sends `field(args)` as `caller` and returns its `CommandOutcome`.
    async fn send(&mut self, caller: As<'_>, field: &str, args: &str) -> Value {
        self.sent.insert(field.to_string());
        let query = format!("mutation {{ {field}({args}) {{ status entityId eventCount errorCode errorDetail }} }}");
        self.gql(caller, &query).await[field].clone()
    }

    async fn accepted(&mut self, caller: As<'_>, field: &str, args: &str) {
        let outcome = self.send(caller, field, args).await;
        assert_eq!(outcome["status"], "ACCEPTED", "{field}({args}): {outcome}");
        assert_eq!(outcome["eventCount"], 1, "{field}({args}): {outcome}");
    }

    async fn rejected(&mut self, caller: As<'_>, field: &str, args: &str, code: &str) {
        let outcome = self.send(caller, field, args).await;
        assert_eq!(outcome["status"], "REJECTED", "{field}({args}): {outcome}");
        assert_eq!(outcome["errorCode"], code, "{field}({args}): {outcome}");
    }

    /// Polls `query` until `check` holds on its data (at most 15 s).
    async fn eventually(&self, what: &str, query: &str, check: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let data = self.gql(MERCH, query).await;
            if check(&data) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; last: {data}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn mutations(&self) -> BTreeSet<String> {
        let schema = self.gql(MERCH, "{ __schema { mutationType { fields { name } } } }").await;
        let fields = schema["__schema"]["mutationType"]["fields"].as_array().cloned().unwrap_or_default();
        fields.iter().filter_map(|field| field["name"].as_str().map(str::to_string)).collect()
    }
}

fn product(id: &str, price: i64) -> String {
    format!(
        r#"productId: "{id}", name: "{id}", description: "", priceCents: {price}, currency: "EUR", categoryId: "books""#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mutation_of_the_shop_is_sent_through_graphql() {
    let mut shop = start().await;

    // Catalog: categories.
    shop.accepted(MERCH, "Catalog_AddCategory", r#"categoryId: "books", name: "Books""#).await;
    shop.rejected(MERCH, "Catalog_AddCategory", r#"categoryId: "books", name: "Books""#, "CategoryAlreadyExists").await;
    shop.rejected(ANN, "Catalog_AddCategory", r#"categoryId: "toys", name: "Toys""#, "AccessRefused").await;
    shop.accepted(MERCH, "Catalog_RenameCategory", r#"categoryId: "books", name: "Books and more""#).await;
    shop.rejected(MERCH, "Catalog_RenameCategory", r#"categoryId: "nowhere", name: "x""#, "CategoryNotFound").await;
    shop.accepted(MERCH, "Catalog_AddCategory", r#"categoryId: "old", name: "Old""#).await;
    shop.accepted(MERCH, "Catalog_ArchiveCategory", r#"categoryId: "old""#).await;
    shop.rejected(MERCH, "Catalog_ArchiveCategory", r#"categoryId: "nowhere""#, "CategoryNotFound").await;

    // Catalog: products.
    shop.accepted(MERCH, "Catalog_AddProduct", &product("p1", 1000)).await;
    shop.accepted(MERCH, "Catalog_AddProduct", &product("p2", 500)).await;
    shop.rejected(MERCH, "Catalog_AddProduct", &product("p3", -1), "InvalidPrice").await;
    shop.accepted(MERCH, "Catalog_ChangeProductPrice", r#"productId: "p1", priceCents: 1200, currency: "EUR""#).await;
    shop.rejected(
        MERCH,
        "Catalog_ChangeProductPrice",
        r#"productId: "p1", priceCents: 1200, currency: "eur""#,
        "InvalidCurrency",
    )
    .await;
    shop.accepted(MERCH, "Catalog_ArchiveProduct", r#"productId: "p2""#).await;
    shop.accepted(MERCH, "Catalog_UnarchiveProduct", r#"productId: "p2""#).await;
    shop.accepted(MERCH, "Catalog_DiscontinueProduct", r#"productId: "p2""#).await;
    shop.rejected(MERCH, "Catalog_ArchiveProduct", r#"productId: "p2""#, "ProductIsDiscontinued").await;
    shop.rejected(MERCH, "Catalog_UnarchiveProduct", r#"productId: "nope""#, "ProductNotFound").await;

    // Catalog: stock (Ordering reserves it through `Catalog.Products`).
    shop.accepted(MERCH, "Catalog_ReceiveStock", r#"productId: "p1", quantity: 10"#).await;
    shop.rejected(MERCH, "Catalog_ReceiveStock", r#"productId: "p1", quantity: 0"#, "InvalidQuantity").await;
    shop.rejected(ANN, "Catalog_ReceiveStock", r#"productId: "p1", quantity: 1"#, "AccessRefused").await;

    // Catalog: the inbound translation (outcomes of the commands it sends).
    shop.sent.insert("Catalog_ImportProduct".into());
    let import = r#"mutation { Catalog_ImportProduct(sku: "imp-1", title: "Imported", desc: "", unitPrice: 700, currency: "EUR", categoryId: "books") { auditId outcomes { status entityId errorCode } } }"#;
    let imported = shop.gql(MERCH, import).await;
    assert_eq!(
        imported["Catalog_ImportProduct"]["outcomes"],
        json!([{"status": "ACCEPTED", "entityId": "imp-1", "errorCode": null}])
    );
    let again = shop.gql(MERCH, import).await;
    assert_eq!(again["Catalog_ImportProduct"]["outcomes"][0]["errorCode"], "ProductAlreadyExists");

    // Ordering: customers.
    let register = r#"id: "ann", name: "Ann", email: "ann@example.org""#;
    shop.accepted(ANN, "Ordering_Customer_Register", register).await;
    shop.rejected(ANN, "Ordering_Customer_Register", register, "CustomerAlreadyRegistered").await;
    shop.accepted(ANN, "Ordering_Customer_UpdateEmail", r#"id: "ann", email: "ann@example.com""#).await;
    shop.rejected(ANN, "Ordering_Customer_UpdateEmail", r#"id: "nobody", email: "x@example.org""#, "CustomerNotFound")
        .await;

    // Ordering: orders, once Catalog's products reached Ordering.
    shop.eventually("p1 synced to Ordering", r#"{ Ordering_AvailableProduct(id: "p1") { available } }"#, |data| {
        data["Ordering_AvailableProduct"]["available"] == true
    })
    .await;
    let order = |id: &str, product: &str| {
        format!(
            r#"orderId: "{id}", customerId: "ann", lines: [{{productId: "{product}", quantity: 2}}], shipping: STANDARD"#
        )
    };
    shop.accepted(ANN, "Ordering_PlaceOrder", &order("o1", "p1")).await;
    shop.accepted(ANN, "Ordering_PlaceOrder", &order("o2", "p1")).await;
    shop.rejected(ANN, "Ordering_PlaceOrder", &order("o1", "p1"), "OrderAlreadyPlaced").await;
    shop.rejected(ANN, "Ordering_PlaceOrder", &order("o3", "nope"), "ProductsNotAvailable").await;
    shop.rejected(ANN, "Ordering_ShipOrder", r#"orderId: "o1""#, "AccessRefused").await;
    shop.accepted(FULFILMENT, "Ordering_ShipOrder", r#"orderId: "o1""#).await;
    shop.accepted(ANN, "Ordering_CancelOrder", r#"orderId: "o2""#).await;
    shop.rejected(ANN, "Ordering_CancelOrder", r#"orderId: "o1""#, "OrderAlreadyShipped").await;
    shop.rejected(FULFILMENT, "Ordering_ShipOrder", r#"orderId: "o2""#, "OrderAlreadyCancelled").await;

    // Ordering: payments (o1 is 2 × 1200 cents), and the payment webhook's
    // translation, which an Admin may also send through GraphQL.
    let payment = |order: &str, amount: i64| {
        format!(r#"orderId: "{order}", paymentId: "pay-{order}", amountCents: {amount}, paidAt: 1000"#)
    };
    shop.rejected(ANN, "Ordering_RecordPayment", &payment("o1", 2400), "AccessRefused").await;
    shop.rejected(ADMIN, "Ordering_RecordPayment", &payment("o1", 2399), "PaymentAmountMismatch").await;
    shop.accepted(ADMIN, "Ordering_RecordPayment", &payment("o1", 2400)).await;
    shop.rejected(ADMIN, "Ordering_RecordPayment", &payment("o2", 2400), "OrderAlreadyCancelled").await;
    shop.sent.insert("Ordering_PaymentWebhook".into());
    let notification = r#"mutation { Ordering_PaymentWebhook(type: "payment.succeeded", orderId: "o1", paymentId: "pay-o1", amountCents: 2400) { auditId outcomes { status eventCount errorCode } } }"#;
    let replayed = shop.gql(ADMIN, notification).await;
    assert_eq!(
        replayed["Ordering_PaymentWebhook"]["outcomes"],
        json!([{"status": "ACCEPTED", "eventCount": 0, "errorCode": null}]),
        "the same payment again changes nothing"
    );
    shop.accepted(ANN, "Ordering_Customer_Deactivate", r#"id: "ann""#).await;
    shop.rejected(ANN, "Ordering_Customer_Deactivate", r#"id: "ann""#, "CustomerAlreadyDeactivated").await;

    let mutations = shop.mutations().await;
    let untested: Vec<&String> = mutations.difference(&shop.sent).collect();
    assert!(untested.is_empty(), "mutations without a GraphQL case in this test: {untested:?}");
    let unknown: Vec<&String> = shop.sent.difference(&mutations).collect();
    assert!(unknown.is_empty(), "cases for mutations the schema does not have: {unknown:?}");
}
