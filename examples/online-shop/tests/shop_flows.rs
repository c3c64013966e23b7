//! The cross-plugin flows of the shop, end to end: GraphQL over HTTP, both
//! plugins on SQLite. Eventual consistency is awaited with bounded polls.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::sync::Arc;
use std::time::{Duration, Instant};

use online_shop::ordering::{RecordingEmailService, local_capabilities};
use serde_json::{Value, json};

struct Shop {
    base: String,
    client: reqwest::Client,
    mails: Arc<RecordingEmailService>,
}

async fn start() -> Shop {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap().keep();
    let (capabilities, mails) = local_capabilities();
    let options = reventless::local::sqlite::SqliteOptions::default();
    let (runtime, _db) =
        reventless::local::start_sqlite_with(dir.join("shop.db"), options, online_shop::plugins(), capabilities)
            .await
            .unwrap();
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
    Shop { base, client: reqwest::Client::new(), mails }
}

impl Shop {
    async fn gql_as(&self, user: &str, query: &str) -> Value {
        let roles = if user == "admin" { "Admin" } else { "" };
        let request =
            self.client.post(format!("{}/graphql", self.base)).header("x-user-id", user).header("x-user-roles", roles);
        let answer: Value = request.json(&json!({"query": query})).send().await.unwrap().json().await.unwrap();
        assert!(answer["errors"].is_null(), "{query}: {answer}");
        answer["data"].clone()
    }

    async fn gql(&self, query: &str) -> Value {
        self.gql_as("admin", query).await
    }

    /// Polls `query` until `check` holds on its data (at most 15 s).
    async fn eventually(&self, what: &str, query: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let data = self.gql(query).await;
            if check(&data) {
                return data;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; last: {data}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn add_product(&self, id: &str, price: i64) {
        let added = self.gql(&format!(r#"mutation {{ Catalog_AddProduct(productId: "{id}", name: "{id}", description: "", priceCents: {price}, currency: "EUR", categoryId: "books") {{ status }} }}"#)).await;
        assert_eq!(added["Catalog_AddProduct"]["status"], "ACCEPTED");
    }

    async fn synced(&self, id: &str) {
        self.eventually(
            &format!("{id} synced"),
            &format!(r#"{{ Ordering_AvailableProduct(id: "{id}") {{ available }} }}"#),
            |d| d["Ordering_AvailableProduct"]["available"] == true,
        )
        .await;
    }

    async fn place(&self, order: &str, lines: &str, shipping: &str) -> Value {
        let query = format!(
            r#"mutation {{ Ordering_PlaceOrder(orderId: "{order}", customerId: "c1", lines: [{lines}], shipping: {shipping}) {{ status errorCode errorDetail }} }}"#
        );
        self.gql_as("c1", &query).await["Ordering_PlaceOrder"].clone()
    }

    async fn demand(&self, product: &str, count: i64) {
        let query = format!(r#"{{ Catalog_ProductDemand(id: "{product}") {{ orderCount }} }}"#);
        self.eventually(&format!("demand of {product} = {count}"), &query, |d| {
            d["Catalog_ProductDemand"]["orderCount"] == count
        })
        .await;
    }
}

async fn shop_with_customer() -> Shop {
    let shop = start().await;
    shop.gql(r#"mutation { Catalog_AddCategory(categoryId: "books", name: "Books") { status } }"#).await;
    let registered = shop
        .gql_as(
            "c1",
            r#"mutation { Ordering_Customer_Register(id: "c1", name: "Ann", email: "ann@example.org") { status } }"#,
        )
        .await;
    assert_eq!(registered["Ordering_Customer_Register"]["status"], "ACCEPTED");
    shop
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synced_product_is_ordered_and_its_demand_follows_the_order() {
    let shop = shop_with_customer().await;
    shop.add_product("p1", 1000).await;
    shop.add_product("p2", 250).await;
    shop.synced("p1").await;
    shop.synced("p2").await;

    let placed =
        shop.place("o1", r#"{productId: "p1", quantity: 2}, {productId: "p2", quantity: 1}"#, "STANDARD").await;
    assert_eq!(placed["status"], "ACCEPTED", "{placed}");
    let order = shop
        .eventually("the order view", r#"{ Ordering_Order(id: "o1") { lifecycle totalCents currency lines { productId quantity unitPriceCents } } }"#, |d| {
            !d["Ordering_Order"].is_null()
        })
        .await;
    assert_eq!(order["Ordering_Order"]["totalCents"], 2250);
    assert_eq!(order["Ordering_Order"]["lifecycle"], "PLACED");
    // A 2-line order is demand on both products.
    shop.demand("p1", 1).await;
    shop.demand("p2", 1).await;
    let customer = shop
        .eventually("the order count", r#"{ Ordering_Customer(id: "c1") { orderCount } }"#, |d| {
            d["Ordering_Customer"]["orderCount"] == 1
        })
        .await;
    assert_eq!(customer["Ordering_Customer"]["orderCount"], 1);

    let not_fulfilment = shop.gql_as("c1", r#"mutation { Ordering_ShipOrder(orderId: "o1") { errorCode } }"#).await;
    assert_eq!(not_fulfilment["Ordering_ShipOrder"]["errorCode"], "AccessRefused", "customers do not ship");
    let cancelled = shop.gql_as("c1", r#"mutation { Ordering_CancelOrder(orderId: "o1") { status } }"#).await;
    assert_eq!(cancelled["Ordering_CancelOrder"]["status"], "ACCEPTED");
    shop.demand("p1", 0).await;
    shop.demand("p2", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsynced_and_withdrawn_products_are_refused_by_name() {
    let shop = shop_with_customer().await;
    shop.add_product("p1", 100).await;
    shop.add_product("p2", 100).await;
    shop.synced("p2").await;
    shop.gql(r#"mutation { Catalog_ArchiveProduct(productId: "p2") { status } }"#).await;
    shop.eventually("p2 withdrawn", r#"{ Ordering_AvailableProduct(id: "p2") { available } }"#, |d| {
        d["Ordering_AvailableProduct"]["available"] == false
    })
    .await;
    let refused =
        shop.place("o9", r#"{productId: "p2", quantity: 1}, {productId: "ghost", quantity: 1}"#, "STANDARD").await;
    assert_eq!(refused["errorCode"], "ProductsNotAvailable");
    assert_eq!(refused["errorDetail"], json!({"missing": ["p2", "ghost"]}));
    // Relisted in the catalog, orderable again.
    shop.gql(r#"mutation { Catalog_UnarchiveProduct(productId: "p2") { status } }"#).await;
    shop.synced("p2").await;
    assert_eq!(shop.place("o10", r#"{productId: "p2", quantity: 1}"#, "STANDARD").await["status"], "ACCEPTED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_orders_ship_themselves_and_every_order_is_confirmed_by_mail() {
    let shop = shop_with_customer().await;
    shop.add_product("p1", 500).await;
    shop.synced("p1").await;
    assert_eq!(shop.place("o2", r#"{productId: "p1", quantity: 1}"#, "EXPRESS").await["status"], "ACCEPTED");
    assert_eq!(shop.place("o3", r#"{productId: "p1", quantity: 1}"#, "STANDARD").await["status"], "ACCEPTED");
    shop.eventually("o2 shipped by the automation", r#"{ Ordering_Order(id: "o2") { lifecycle } }"#, |d| {
        d["Ordering_Order"]["lifecycle"] == "SHIPPED"
    })
    .await;
    shop.eventually("the automation item resolved", r#"{ Ordering_AutoShipOrderTodo(id: "o2") { status } }"#, |d| {
        d["Ordering_AutoShipOrderTodo"]["status"] == "COMPLETED"
    })
    .await;
    shop.eventually(
        "both confirmations sent",
        r#"{ Ordering_SendOrderConfirmationTodos(filter: {status: COMPLETED}) { totalCount } }"#,
        |d| d["Ordering_SendOrderConfirmationTodos"]["totalCount"] == 2,
    )
    .await;
    let standard =
        shop.gql(r#"{ Ordering_Order(id: "o3") { lifecycle } Ordering_AutoShipOrderTodo(id: "o3") { status } }"#).await;
    assert_eq!(standard["Ordering_Order"]["lifecycle"], "PLACED", "standard orders wait for fulfilment");
    assert!(standard["Ordering_AutoShipOrderTodo"].is_null());
    let mut subjects: Vec<String> = shop.mails.sent().into_iter().map(|m| format!("{} {}", m.to, m.subject)).collect();
    subjects.sort();
    assert_eq!(subjects, vec!["c1 Order o2 confirmed", "c1 Order o3 confirmed"]);
    let keys: Vec<String> = shop.mails.credentials().iter().map(|key| key.expose().to_string()).collect();
    assert_eq!(keys, vec![online_shop::ordering::TEST_MAIL_API_KEY; 2], "each mail went out with the API key");
    shop.eventually(
        "the sent mails are listed",
        r#"{ Ordering_OrderConfirmations(orderBy: {field: ID}) { edges { node { id to subject } } } }"#,
        |d| {
            d["Ordering_OrderConfirmations"]["edges"]
                == serde_json::json!([
                    {"node": {"id": "o2", "to": "c1", "subject": "Order o2 confirmed"}},
                    {"node": {"id": "o3", "to": "c1", "subject": "Order o3 confirmed"}}
                ])
        },
    )
    .await;
}
