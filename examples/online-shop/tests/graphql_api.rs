//! The GraphQL API as a client meets it: a real server on a loopback port.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use futures::{SinkExt, StreamExt};
use online_shop::catalog;
use reventless::core::Runtime;
use reventless::prelude::*;
use reventless::spec::Owner;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

// A small second plugin with an aggregate, roles and an owner field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all_fields = "camelCase")]
enum TicketCommand {
    Open {
        title: String,
        owner_id: Option<String>,
        priority: Option<Priority>,
    },
    /// A unit variant: `Support_Ticket_Close(id)`.
    Close,
}

/// A domain enum whose serde values are not GraphQL's SCREAMING_SNAKE_CASE
/// (GraphQL: `NORMAL`, `ON_HOLD`, `NEEDS_REVIEW`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
enum Priority {
    #[default]
    Normal,
    OnHold,
    #[serde(rename = "needs_review")]
    NeedsReview,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
enum TicketEvent {
    Opened { title: String, owner_id: String, priority: Priority },
    Closed,
}

#[derive(Debug, Serialize)]
enum TicketError {
    AlreadyOpen,
    NotOpen,
}

struct Ticket;

impl Aggregate for Ticket {
    const NAME: &'static str = "Ticket";
    const OWNER: Option<Owner> = Some(Owner { field: "ownerId", override_roles: &["agent"] });
    type Command = TicketCommand;
    type Event = TicketEvent;
    type State = Option<bool>;
    type Error = TicketError;

    fn decide(_id: &str, state: &Option<bool>, command: &TicketCommand) -> Result<Vec<TicketEvent>, TicketError> {
        match (command, state) {
            (TicketCommand::Open { .. }, Some(_)) => Err(TicketError::AlreadyOpen),
            (TicketCommand::Open { title, owner_id, priority }, None) => Ok(vec![TicketEvent::Opened {
                title: title.clone(),
                owner_id: owner_id.clone().unwrap_or_default(),
                priority: priority.unwrap_or_default(),
            }]),
            (TicketCommand::Close, Some(true)) => Ok(vec![TicketEvent::Closed]),
            (TicketCommand::Close, _) => Err(TicketError::NotOpen),
        }
    }

    fn evolve(_: Option<bool>, event: &TicketEvent) -> Option<bool> {
        Some(matches!(event, TicketEvent::Opened { .. }))
    }
}

/// Only agents may close: a second aggregate over the same stream type would
/// be odd, so closing is guarded by roles on a dedicated one.
struct Escalation;

impl Aggregate for Escalation {
    const NAME: &'static str = "Escalation";
    const ROLES: &'static [&'static str] = &["agent"];
    type Command = TicketCommand;
    type Event = TicketEvent;
    type State = Option<bool>;
    type Error = TicketError;

    fn decide(id: &str, state: &Option<bool>, command: &TicketCommand) -> Result<Vec<TicketEvent>, TicketError> {
        Ticket::decide(id, state, command)
    }

    fn evolve(state: Option<bool>, event: &TicketEvent) -> Option<bool> {
        Ticket::evolve(state, event)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct TicketRow {
    title: String,
    owner_id: String,
    open: bool,
    priority: Priority,
}

struct AuditedTickets;

impl ReadModel for AuditedTickets {
    const NAME: &'static str = "AuditedTicket";
    const PLURAL: &'static str = "AuditedTickets";
    const CONSUMES: &'static [&'static str] = &["Opened", "Closed"];
    const ROLES: &'static [&'static str] = &["auditor"];
    type Event = TicketEvent;
    type Row = TicketRow;

    fn project(event: &TicketEvent, envelope: &EventEnvelope) -> Vec<Action<TicketRow>> {
        let id = envelope.stream.as_ref().map(|s| s.id.clone()).unwrap_or_default();
        vec![match event {
            TicketEvent::Opened { title, owner_id, priority } => Action::set(
                id,
                TicketRow { title: title.clone(), owner_id: owner_id.clone(), open: true, priority: *priority },
            ),
            TicketEvent::Closed => Action::update(id, |row: &mut TicketRow| row.open = false),
        }]
    }
}

/// A DCB command without fields, a unit struct: `Support_Ping`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
struct Ping;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
enum PingEvent {
    Pinged,
}

impl StateChangeSlice for Ping {
    const NAME: &'static str = "Ping";
    const CONSUMES: &'static [&'static str] = &["Pinged"];
    const PRODUCES: &'static [&'static str] = &["Pinged"];
    type Command = Self;
    type Event = PingEvent;
    type State = ();
    type Error = TicketError;

    fn evolve(_: (), _: &PingEvent) {}

    fn decide(_: &(), _: &Ping) -> Result<Vec<PingEvent>, TicketError> {
        Ok(vec![PingEvent::Pinged])
    }
}

/// The same ticket, handled asynchronously (answers `PENDING`).
struct QueuedTicket;

impl Aggregate for QueuedTicket {
    const NAME: &'static str = "QueuedTicket";
    const ASYNC: bool = true;
    type Command = TicketCommand;
    type Event = TicketEvent;
    type State = Option<bool>;
    type Error = TicketError;

    fn decide(id: &str, state: &Option<bool>, command: &TicketCommand) -> Result<Vec<TicketEvent>, TicketError> {
        Ticket::decide(id, state, command)
    }

    fn evolve(state: Option<bool>, event: &TicketEvent) -> Option<bool> {
        Ticket::evolve(state, event)
    }
}

fn support() -> Plugin {
    Plugin::new("Support")
        .aggregate::<Ticket>()
        .aggregate::<Escalation>()
        .aggregate::<QueuedTicket>()
        .read_model::<AuditedTickets>()
        .state_change_slice::<Ping>()
}

struct Server {
    base: String,
    runtime: Runtime,
    client: reqwest::Client,
}

async fn start() -> Server {
    let runtime = reventless::local::start_in_memory(vec![catalog::standalone(), support()]).unwrap();
    let schema = reventless::graphql::build_schema(&runtime).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let served = runtime.clone();
    tokio::spawn(async move {
        reventless::local::server::serve(served, schema, Default::default(), listener, std::future::pending())
            .await
            .unwrap();
    });
    Server { base, runtime, client: reqwest::Client::new() }
}

impl Server {
    async fn gql_as(&self, query: &str, variables: Value, headers: &[(&str, &str)]) -> Value {
        let mut request =
            self.client.post(format!("{}/graphql", self.base)).json(&json!({"query": query, "variables": variables}));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap().json().await.unwrap()
    }

    /// As a merchandiser (who may change the catalog).
    async fn gql(&self, query: &str) -> Value {
        self.gql_as(query, json!({}), &[("x-user-id", "merch"), ("x-user-roles", "Merchandiser")]).await
    }

    /// Adds categories named like their ids (as a merchandiser).
    async fn add_categories(&self, ids: &[&str]) {
        for id in ids {
            self.gql(&format!(r#"mutation {{ Catalog_AddCategory(categoryId: "{id}", name: "{id}") {{ status }} }}"#))
                .await;
        }
    }

    async fn settle(&self) {
        self.runtime.wait_for_projections().await.unwrap();
    }
}

fn add_product(id: &str, category: &str, price: i64) -> String {
    format!(
        r#"mutation {{ Catalog_AddProduct(productId: "{id}", name: "Product {id}", description: "", priceCents: {price}, currency: "EUR", categoryId: "{category}") {{ status entityId eventCount position errorCode errorDetail }} }}"#
    )
}

#[tokio::test]
async fn names_follow_the_conventions() {
    let server = start().await;
    let schema = server
        .gql("{ __schema { mutationType { fields { name args { name type { kind name ofType { name } } } } } queryType { fields { name args { name } } } subscriptionType { fields { name } } } }")
        .await;
    let mutations: Vec<&str> = schema["data"]["__schema"]["mutationType"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for name in [
        "Catalog_AddCategory",
        "Catalog_AddProduct",
        "Catalog_ArchiveProduct",
        "Catalog_DiscontinueProduct",
        "Support_Ticket_Open",
        "Support_Ticket_Close",
    ] {
        assert!(mutations.contains(&name), "{name} missing from {mutations:?}");
    }
    assert!(!mutations.contains(&"Catalog_RecordDemand"), "internal commands stay out of the API");
    let fields = schema["data"]["__schema"]["mutationType"]["fields"].as_array().unwrap();
    let open = fields.iter().find(|f| f["name"] == "Support_Ticket_Open").unwrap();
    assert_eq!(
        open["args"][0],
        json!({"name": "id", "type": {"kind": "NON_NULL", "name": null, "ofType": {"name": "ID"}}})
    );
    let add = fields.iter().find(|f| f["name"] == "Catalog_AddProduct").unwrap();
    let args: Vec<&str> = add["args"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(args, vec!["productId", "name", "description", "priceCents", "currency", "categoryId"]);

    let queries = schema["data"]["__schema"]["queryType"]["fields"].as_array().unwrap();
    let names: Vec<&str> = queries.iter().map(|f| f["name"].as_str().unwrap()).collect();
    for name in
        ["Catalog_Product", "Catalog_Products", "Catalog_Category", "Catalog_Categories", "Support_AuditedTicket"]
    {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let products = queries.iter().find(|f| f["name"] == "Catalog_Products").unwrap();
    let args: Vec<&str> = products["args"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(args, vec!["filter", "first", "after", "orderBy"]);
    let subscriptions = schema["data"]["__schema"]["subscriptionType"]["fields"].to_string();
    assert!(subscriptions.contains("Catalog_onProductChanged"), "{subscriptions}");

    let types = server.gql(r#"{ row: __type(name: "CatalogProduct") { fields { name } } shelf: __type(name: "CatalogShelfStatus") { kind enumValues { name } } outcome: __type(name: "CommandOutcome") { fields { name } } }"#).await;
    let row: Vec<&str> =
        types["data"]["row"]["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(row, vec!["id", "name", "description", "priceCents", "currency", "categoryId", "shelfStatus"]);
    assert_eq!(types["data"]["shelf"]["kind"], "ENUM");
    assert_eq!(
        types["data"]["shelf"]["enumValues"],
        json!([{"name": "LISTED"}, {"name": "ARCHIVED"}, {"name": "DISCONTINUED"}])
    );
    let outcome = types["data"]["outcome"]["fields"].to_string();
    for field in ["status", "entityId", "eventCount", "position", "errorCode", "errorDetail"] {
        assert!(outcome.contains(field), "{field} missing from {outcome}");
    }
}

#[tokio::test]
async fn a_mutation_is_queryable_after_projection() {
    let server = start().await;
    let added = server.gql(r#"mutation { Catalog_AddCategory(categoryId: "books", name: "Books") { status entityId eventCount position } }"#).await;
    assert_eq!(
        added["data"]["Catalog_AddCategory"],
        json!({"status": "ACCEPTED", "entityId": "books", "eventCount": 1, "position": 1})
    );
    let product = server.gql(&add_product("dune", "books", 1299)).await;
    assert_eq!(product["data"]["Catalog_AddProduct"]["status"], "ACCEPTED");
    server.settle().await;
    let row = server.gql(r#"{ Catalog_Product(id: "dune") { id name priceCents currency categoryId shelfStatus } Catalog_Category(id: "books") { name archived productCount } missing: Catalog_Product(id: "nope") { id } Catalog_CategoryProductCount(id: "books") { count } }"#).await;
    assert_eq!(
        row["data"],
        json!({
            "Catalog_Product": {"id": "dune", "name": "Product dune", "priceCents": 1299, "currency": "EUR", "categoryId": "books", "shelfStatus": "LISTED"},
            "Catalog_Category": {"name": "Books", "archived": false, "productCount": 1},
            "missing": null,
            "Catalog_CategoryProductCount": {"count": 1}
        })
    );
}

#[tokio::test]
async fn categories_show_their_product_count_from_the_counter() {
    let server = start().await;
    server.add_categories(&["books", "games"]).await;
    for product in ["dune", "emma", "ulysses"] {
        server.gql(&add_product(product, "books", 999)).await;
    }
    server.settle().await;
    let listed =
        server.gql(r#"{ Catalog_Categories(orderBy: {field: ID}) { edges { node { id productCount } } } }"#).await;
    assert_eq!(
        listed["data"]["Catalog_Categories"]["edges"],
        json!([{"node": {"id": "books", "productCount": 3}}, {"node": {"id": "games", "productCount": 0}}]),
        "{listed}"
    );
}

#[tokio::test]
async fn rejections_are_data_with_codes() {
    let server = start().await;
    let refused = server.gql(&add_product("p1", "nowhere", 100)).await;
    assert_eq!(refused["data"]["Catalog_AddProduct"]["status"], "REJECTED");
    assert_eq!(refused["data"]["Catalog_AddProduct"]["errorCode"], "CategoryNotFound");
    server.gql(r#"mutation { Catalog_AddCategory(categoryId: "c", name: "C") { status } }"#).await;
    let negative = server.gql(&add_product("p1", "c", -5)).await;
    assert_eq!(negative["data"]["Catalog_AddProduct"]["errorCode"], "InvalidPrice");
    assert_eq!(negative["data"]["Catalog_AddProduct"]["errorDetail"], json!({"price_cents": -5}));
    assert_eq!(server.runtime.stores().events.head("Catalog").await.unwrap(), 1, "only the category was appended");
}

#[tokio::test]
async fn malformed_input_is_bad_user_input_and_appends_nothing() {
    let server = start().await;
    let wrong_type = server.gql(r#"mutation { Catalog_AddCategory(categoryId: 5, name: "x") { status } }"#).await;
    assert_eq!(wrong_type["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{wrong_type}");
    assert!(wrong_type["errors"][0]["message"].as_str().unwrap().contains("categoryId"), "{wrong_type}");
    let missing = server.gql(r#"mutation { Catalog_AddCategory(name: "x") { status } }"#).await;
    assert_eq!(missing["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{missing}");
    assert!(missing["errors"][0]["message"].as_str().unwrap().contains("categoryId"), "{missing}");
    let variables = server
        .gql_as(
            "mutation($id: String!) { Catalog_AddCategory(categoryId: $id, name: \"x\") { status } }",
            json!({"id": 12}),
            &[],
        )
        .await;
    assert_eq!(variables["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{variables}");
    let unknown = server.gql(r#"mutation { Catalog_DeleteEverything { status } }"#).await;
    assert!(unknown["errors"][0]["extensions"]["code"].is_string(), "{unknown}");
    let syntax = server.gql("mutation { Catalog_AddCategory(").await;
    let no_role = server
        .gql_as(
            r#"mutation { Catalog_AddCategory(categoryId: "c", name: "x") { status errorCode } }"#,
            json!({}),
            &[("x-user-id", "ann")],
        )
        .await;
    assert_eq!(no_role["data"]["Catalog_AddCategory"]["errorCode"], "AccessRefused");
    assert!(syntax["errors"][0]["message"].is_string(), "{syntax}");
    assert_eq!(server.runtime.stores().events.head("Catalog").await.unwrap(), 0);
    let response = server
        .client
        .post(format!("{}/graphql", server.base))
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error());
}

#[tokio::test]
async fn lists_page_filter_and_order() {
    let server = start().await;
    server.add_categories(&["books", "games"]).await;
    for i in 0..25 {
        let category = if i % 5 == 0 { "games" } else { "books" };
        let added = server.gql(&add_product(&format!("p{i:02}"), category, 100 + i)).await;
        assert_eq!(added["data"]["Catalog_AddProduct"]["status"], "ACCEPTED");
    }
    server.gql(r#"mutation { Catalog_ArchiveProduct(productId: "p01") { status } }"#).await;
    server.settle().await;

    let mut after = Value::Null;
    let mut seen = Vec::new();
    loop {
        let page = server
            .gql_as("query($after: String) { Catalog_Products(first: 10, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id } } } }", json!({"after": after}), &[])
            .await;
        let connection = &page["data"]["Catalog_Products"];
        assert_eq!(connection["totalCount"], 25, "{page}");
        seen.extend(
            connection["edges"].as_array().unwrap().iter().map(|e| e["node"]["id"].as_str().unwrap().to_string()),
        );
        if connection["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = connection["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, (0..25).map(|i| format!("p{i:02}")).collect::<Vec<_>>());

    let filtered = server
        .gql(r#"{ Catalog_Products(filter: {categoryId: "books", priceCentsGte: 110, shelfStatus: LISTED}, orderBy: {field: PRICE_CENTS, direction: DESC}, first: 3) { totalCount edges { node { id priceCents } } } }"#)
        .await;
    let connection = &filtered["data"]["Catalog_Products"];
    assert_eq!(connection["totalCount"], 12, "{filtered}");
    assert_eq!(connection["edges"][0]["node"], json!({"id": "p24", "priceCents": 124}));
    assert_eq!(connection["edges"][2]["node"], json!({"id": "p22", "priceCents": 122}));
    let archived =
        server.gql(r#"{ Catalog_Products(filter: {shelfStatus: ARCHIVED}) { edges { node { id } } } }"#).await;
    assert_eq!(archived["data"]["Catalog_Products"]["edges"], json!([{"node": {"id": "p01"}}]));
    let bad_cursor = server.gql(r#"{ Catalog_Products(after: "garbage") { totalCount } }"#).await;
    assert_eq!(bad_cursor["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{bad_cursor}");
    let too_many = server.gql(r#"{ Catalog_Products(first: 100000) { totalCount } }"#).await;
    assert_eq!(too_many["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{too_many}");
}

#[tokio::test]
async fn roles_refuse_and_owners_are_stamped() {
    let server = start().await;
    let anonymous = server
        .gql_as(r#"mutation { Support_Ticket_Open(id: "t1", title: "Help") { status errorCode } }"#, json!({}), &[])
        .await;
    assert_eq!(anonymous["data"]["Support_Ticket_Open"], json!({"status": "REJECTED", "errorCode": "AccessRefused"}));
    // A customer cannot open a ticket in someone else's name: the owner is the caller.
    let spoofed = server
        .gql_as(
            r#"mutation { Support_Ticket_Open(id: "t1", title: "Help", ownerId: "mallory") { status } }"#,
            json!({}),
            &[("x-user-id", "ann")],
        )
        .await;
    assert_eq!(spoofed["data"]["Support_Ticket_Open"]["status"], "ACCEPTED");
    // An agent may open one for a customer.
    server
        .gql_as(
            r#"mutation { Support_Ticket_Open(id: "t2", title: "Phone call", ownerId: "bob") { status } }"#,
            json!({}),
            &[("x-user-id", "sam"), ("x-user-roles", "agent")],
        )
        .await;
    let refused = server
        .gql_as(
            r#"mutation { Support_Escalation_Close(id: "t1") { status errorCode errorDetail } }"#,
            json!({}),
            &[("x-user-id", "ann")],
        )
        .await;
    assert_eq!(refused["data"]["Support_Escalation_Close"]["errorCode"], "AccessRefused", "{refused}");
    server.settle().await;
    let stream = server.runtime.stores().events.read_all("Support", 0, 10).await.unwrap();
    assert_eq!(stream.len(), 2, "refusals append nothing");
    assert_eq!(stream[0].data["owner_id"], "ann");
    assert_eq!(stream[1].data["owner_id"], "bob");

    let forbidden =
        server.gql_as(r#"{ Support_AuditedTicket(id: "t1") { ownerId } }"#, json!({}), &[("x-user-id", "ann")]).await;
    assert_eq!(forbidden["errors"][0]["extensions"]["code"], "FORBIDDEN", "{forbidden}");
    let audited = server
        .gql_as(r#"{ Support_AuditedTicket(id: "t1") { ownerId open } }"#, json!({}), &[("x-user-roles", "auditor")])
        .await;
    assert_eq!(audited["data"]["Support_AuditedTicket"], json!({"ownerId": "ann", "open": true}));
}

#[tokio::test]
async fn a_subscription_receives_row_changes() {
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = start().await;
    server.gql(r#"mutation { Catalog_AddCategory(categoryId: "c", name: "C") { status } }"#).await;
    server.gql(&add_product("p1", "c", 100)).await;
    server.settle().await;

    let mut request = format!("{}/graphql/ws", server.base.replace("http", "ws")).into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket.send(Message::text(json!({"type": "connection_init"}).to_string())).await.unwrap();
    let ack: Value = serde_json::from_str(socket.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(ack["type"], "connection_ack");
    let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": r#"subscription { Catalog_onProductChanged(id: "p1") { id priceCents } }"#}});
    socket.send(Message::text(subscribe.to_string())).await.unwrap();
    // The subscription is registered once the server has read the message; retry the change until it is seen.
    let received = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut price = 200;
        loop {
            server.gql(&format!(r#"mutation {{ Catalog_ChangeProductPrice(productId: "p1", priceCents: {price}, currency: "EUR") {{ status }} }}"#)).await;
            if let Ok(Some(Ok(message))) = tokio::time::timeout(std::time::Duration::from_millis(300), socket.next()).await {
                let message: Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
                if message["type"] == "next" {
                    return message;
                }
            }
            price += 1;
        }
    })
    .await
    .unwrap();
    let row = &received["payload"]["data"]["Catalog_onProductChanged"];
    assert_eq!(row["id"], "p1");
    assert!(row["priceCents"].as_i64().unwrap() >= 200, "{received}");
}

#[tokio::test]
async fn health_and_graphiql_are_served() {
    let server = start().await;
    let health: Value =
        server.client.get(format!("{}/health", server.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["plugins"][0]["name"], "Catalog");
    let page = server.client.get(&server.base).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("graphiql"), "GraphiQL page expected");
}

#[tokio::test]
async fn hosted_plugins_are_listed_with_their_status() {
    let server = start().await;
    let mut plugins = Value::Null;
    for _ in 0..100 {
        plugins = server.gql("{ Platform_Plugins { name version status components } }").await;
        if plugins["data"]["Platform_Plugins"].as_array().is_some_and(|list| list.len() == 2) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        plugins["data"]["Platform_Plugins"],
        json!([
            {"name": "Catalog", "version": env!("CARGO_PKG_VERSION"), "status": "CONNECTED", "components": 14},
            {"name": "Support", "version": "0.0.0", "status": "CONNECTED", "components": 5}
        ])
    );
    let fragments = server.gql("{ Platform_Plugins { name schema } }").await;
    let catalog = fragments["data"]["Platform_Plugins"][0]["schema"].as_str().unwrap_or_default();
    let support = fragments["data"]["Platform_Plugins"][1]["schema"].as_str().unwrap_or_default();
    assert!(catalog.contains("Catalog_AddCategory(") && catalog.contains("Catalog_Products("), "{catalog}");
    assert!(!catalog.contains("Support_"), "a fragment holds only its own plugin's part");
    assert!(support.contains("Support_") && !support.contains("Catalog_"), "{support}");
    server.runtime.shutdown().await;
    let row = server.runtime.stores().queries.get("Platform_Plugins", "Catalog").await.unwrap().unwrap();
    assert_eq!(row["status"], "DISCONNECTED", "a stopped platform disconnects its plugins");
    assert!(row["disconnectedAt"].is_u64());
}

#[tokio::test]
async fn supplier_products_are_imported_through_the_inbound_translation() {
    let server = start().await;
    server.gql(r#"mutation { Catalog_AddCategory(categoryId: "books", name: "Books") { status } }"#).await;
    let import = r#"mutation { Catalog_ImportProduct(sku: " dune-1 ", title: "Dune", desc: "Classic", unitPrice: 1299, currency: "EUR", categoryId: "books") { auditId outcomes { status entityId errorCode } } }"#;
    let imported = server.gql(import).await;
    let result = &imported["data"]["Catalog_ImportProduct"];
    assert_eq!(
        result["outcomes"],
        json!([{"status": "ACCEPTED", "entityId": "dune-1", "errorCode": null}]),
        "{imported}"
    );
    let again = server.gql(import).await;
    assert_eq!(again["data"]["Catalog_ImportProduct"]["outcomes"][0]["errorCode"], "ProductAlreadyExists");
    let no_sku = server
        .gql(r#"mutation { Catalog_ImportProduct(sku: "  ", title: "x", desc: "", unitPrice: 1, currency: "EUR", categoryId: "books") { outcomes { status errorCode } } }"#)
        .await;
    assert_eq!(
        no_sku["data"]["Catalog_ImportProduct"]["outcomes"],
        json!([{"status": "REJECTED", "errorCode": "MissingSku"}])
    );
    server.settle().await;
    let product = server.gql(r#"{ Catalog_Product(id: "dune-1") { name priceCents } }"#).await;
    assert_eq!(product["data"]["Catalog_Product"], json!({"name": "Dune", "priceCents": 1299}));
    // Every input is audited with what became of it.
    let audit_id = result["auditId"].as_str().unwrap();
    let audit = server.runtime.stores().queries.get("Catalog_ImportProductAudit", audit_id).await.unwrap().unwrap();
    assert_eq!(audit["input"]["sku"], " dune-1 ");
    assert_eq!(audit["outcomes"][0]["status"], "ACCEPTED");
    let audits = server.runtime.stores().queries.list("Catalog_ImportProductAudit", &Default::default()).await.unwrap();
    assert_eq!(audits.total_count, 3);
}

/// The names of an enum type's values, or of an input type's fields.
async fn type_names(server: &Server, type_name: &str, list: &str) -> Vec<String> {
    let query = format!(r#"{{ __type(name: "{type_name}") {{ {list} {{ name }} }} }}"#);
    let answer = server.gql(&query).await;
    let items = answer["data"]["__type"][list].as_array().unwrap_or_else(|| panic!("{type_name}: {answer}"));
    items.iter().map(|item| item["name"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_unit_variant_command_is_accepted_and_appends_its_event() {
    let server = start().await;
    let ann = [("x-user-id", "ann")];
    let opened =
        server.gql_as(r#"mutation { Support_Ticket_Open(id: "t1", title: "Help") { status } }"#, json!({}), &ann).await;
    assert_eq!(opened["data"]["Support_Ticket_Open"]["status"], "ACCEPTED", "{opened}");
    // `Close` has no fields: its input is serde's unit form, not a map.
    let closed = server
        .gql_as(
            r#"mutation { Support_Ticket_Close(id: "t1") { status entityId eventCount errorCode errorDetail } }"#,
            json!({}),
            &ann,
        )
        .await;
    assert!(closed["errors"].is_null(), "{closed}");
    assert_eq!(
        closed["data"]["Support_Ticket_Close"],
        json!({"status": "ACCEPTED", "entityId": "t1", "eventCount": 1, "errorCode": null, "errorDetail": null}),
        "{closed}"
    );
    // The second close is decided on the appended `Closed`.
    let again =
        server.gql_as(r#"mutation { Support_Ticket_Close(id: "t1") { status errorCode } }"#, json!({}), &ann).await;
    assert_eq!(again["data"]["Support_Ticket_Close"], json!({"status": "REJECTED", "errorCode": "NotOpen"}));
    server.settle().await;
    let row = server
        .gql_as(r#"{ Support_AuditedTicket(id: "t1") { open } }"#, json!({}), &[("x-user-roles", "auditor")])
        .await;
    assert_eq!(row["data"]["Support_AuditedTicket"], json!({"open": false}), "{row}");

    // A DCB command without fields (a unit struct) is sent as null too.
    let pinged = server.gql(r#"mutation { Support_Ping { status eventCount errorCode errorDetail } }"#).await;
    assert_eq!(
        pinged["data"]["Support_Ping"],
        json!({"status": "ACCEPTED", "eventCount": 1, "errorCode": null, "errorDetail": null}),
        "{pinged}"
    );
}

#[tokio::test]
async fn enum_values_are_screaming_snake_case_and_map_to_serde_values() {
    let server = start().await;
    assert_eq!(type_names(&server, "SupportPriority", "enumValues").await, ["NORMAL", "ON_HOLD", "NEEDS_REVIEW"]);
    assert_eq!(
        type_names(&server, "SupportAuditedTicketOrderField", "enumValues").await,
        ["TITLE", "OWNER_ID", "OPEN", "PRIORITY"]
    );
    let product_fields = type_names(&server, "CatalogProductOrderField", "enumValues").await;
    assert_eq!(product_fields, ["ID", "NAME", "DESCRIPTION", "PRICE_CENTS", "CURRENCY", "CATEGORY_ID", "SHELF_STATUS"]);
    // The API's own enums stay as they are.
    assert_eq!(type_names(&server, "SortDirection", "enumValues").await, ["ASC", "DESC"]);
    assert_eq!(type_names(&server, "CommandStatus", "enumValues").await, ["ACCEPTED", "REJECTED", "PENDING", "FAILED"]);

    // Command arguments: the GraphQL name in, the serde value stored.
    let agent = [("x-user-id", "sam"), ("x-user-roles", "agent")];
    for (id, owner, priority) in [("t1", "ann", "ON_HOLD"), ("t3", "cid", "NORMAL")] {
        let query = format!(
            r#"mutation {{ Support_Ticket_Open(id: "{id}", title: "{id}", ownerId: "{owner}", priority: {priority}) {{ status }} }}"#
        );
        let opened = server.gql_as(&query, json!({}), &agent).await;
        assert_eq!(opened["data"]["Support_Ticket_Open"]["status"], "ACCEPTED", "{opened}");
    }
    let by_variable = server
        .gql_as(
            r#"mutation($p: SupportPriority) { Support_Ticket_Open(id: "t2", title: "t2", ownerId: "bob", priority: $p) { status } }"#,
            json!({"p": "NEEDS_REVIEW"}),
            &agent,
        )
        .await;
    assert_eq!(by_variable["data"]["Support_Ticket_Open"]["status"], "ACCEPTED", "{by_variable}");
    let serde_name = server
        .gql_as(
            r#"mutation { Support_Ticket_Open(id: "t4", title: "x", priority: OnHold) { status } }"#,
            json!({}),
            &agent,
        )
        .await;
    assert!(serde_name["errors"][0]["message"].is_string(), "a serde value is not a GraphQL enum value: {serde_name}");
    server.settle().await;
    let rows = server.runtime.stores().queries.list("Support_AuditedTickets", &Default::default()).await;
    let rows: Vec<Value> = rows.unwrap().rows.into_iter().map(|(_, row)| row["priority"].clone()).collect();
    assert_eq!(rows, [json!("OnHold"), json!("needs_review"), json!("Normal")], "rows keep the serde values");

    // Filters and order: GraphQL names in; rows: GraphQL names out.
    let auditor = [("x-user-roles", "auditor")];
    let held = server
        .gql_as(
            r#"{ Support_AuditedTickets(filter: {priority: ON_HOLD}) { edges { node { ownerId priority } } } }"#,
            json!({}),
            &auditor,
        )
        .await;
    assert_eq!(
        held["data"]["Support_AuditedTickets"]["edges"],
        json!([{"node": {"ownerId": "ann", "priority": "ON_HOLD"}}]),
        "{held}"
    );
    let ordered = server
        .gql_as(
            r#"query($p: SupportPriority) { Support_AuditedTickets(filter: {priorityNe: $p}, orderBy: {field: OWNER_ID, direction: DESC}) { edges { node { ownerId priority } } } }"#,
            json!({"p": "NORMAL"}),
            &auditor,
        )
        .await;
    assert_eq!(
        ordered["data"]["Support_AuditedTickets"]["edges"],
        json!([
            {"node": {"ownerId": "bob", "priority": "NEEDS_REVIEW"}},
            {"node": {"ownerId": "ann", "priority": "ON_HOLD"}}
        ]),
        "{ordered}"
    );
    let single = server.gql_as(r#"{ Support_AuditedTicket(id: "t2") { priority } }"#, json!({}), &auditor).await;
    assert_eq!(single["data"]["Support_AuditedTicket"], json!({"priority": "NEEDS_REVIEW"}));
    let old_spelling = server
        .gql_as(r#"{ Support_AuditedTickets(orderBy: {field: ownerId}) { totalCount } }"#, json!({}), &auditor)
        .await;
    assert!(old_spelling["errors"][0]["message"].is_string(), "{old_spelling}");
}

#[tokio::test]
async fn filters_offer_the_same_operators_on_every_field() {
    let server = start().await;
    let fields = type_names(&server, "CatalogProductFilter", "inputFields").await;
    let operators = |field: &str| -> Vec<String> {
        let mut found: Vec<String> = fields
            .iter()
            .filter_map(|name| name.strip_prefix(field))
            .filter(|suffix| suffix.is_empty() || suffix.starts_with(char::is_uppercase))
            .map(str::to_string)
            .collect();
        found.sort();
        found
    };
    let strings = ["", "Contains", "Gt", "Gte", "Lt", "Lte", "Ne"];
    for field in ["id", "name", "description", "currency", "categoryId"] {
        assert_eq!(operators(field), strings, "{field} in {fields:?}");
    }
    assert_eq!(operators("priceCents"), ["", "Gt", "Gte", "Lt", "Lte", "Ne"], "{fields:?}");
    assert_eq!(operators("shelfStatus"), ["", "Ne"], "{fields:?}");

    server.add_categories(&["books"]).await;
    for id in ["p1", "p2", "p3"] {
        server.gql(&add_product(id, "books", 100)).await;
    }
    server.settle().await;
    let ids = |answer: &Value| -> Vec<String> {
        let edges = answer["data"]["Catalog_Products"]["edges"].as_array().cloned().unwrap_or_default();
        edges.iter().map(|edge| edge["node"]["id"].as_str().unwrap_or_default().to_string()).collect()
    };
    let not_p2 = server.gql(r#"{ Catalog_Products(filter: {idNe: "p2"}) { edges { node { id } } } }"#).await;
    assert_eq!(ids(&not_p2), ["p1", "p3"], "{not_p2}");
    let after_p1 =
        server.gql(r#"{ Catalog_Products(filter: {idGt: "p1", idNe: "p3"}) { edges { node { id } } } }"#).await;
    assert_eq!(ids(&after_p1), ["p2"], "{after_p1}");
    let containing = server.gql(r#"{ Catalog_Products(filter: {idContains: "3"}) { edges { node { id } } } }"#).await;
    assert_eq!(ids(&containing), ["p3"], "{containing}");
}

/// An async command answers PENDING with a commandId; its final outcome
/// (a rejection included) is looked up by that id.
#[tokio::test]
async fn an_async_commands_outcome_is_looked_up_by_its_command_id() {
    let server = start().await;
    let outcome_of = |command_id: String| {
        let server = &server;
        async move {
            let query = "query($id: ID!) { Support_CommandOutcome(commandId: $id) { status commandId entityId eventCount errorCode } }";
            for _ in 0..200 {
                let answer = server.gql_as(query, json!({"id": command_id}), &[]).await;
                let outcome = answer["data"]["Support_CommandOutcome"].clone();
                if outcome["status"] != "PENDING" {
                    return outcome;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            panic!("{command_id} stayed PENDING");
        }
    };
    let close = server
        .gql_as(r#"mutation { Support_QueuedTicket_Close(id: "q1") { status commandId } }"#, json!({}), &[])
        .await;
    let pending = &close["data"]["Support_QueuedTicket_Close"];
    assert_eq!(pending["status"], "PENDING", "{close}");
    let rejected = outcome_of(pending["commandId"].as_str().unwrap().to_string()).await;
    assert_eq!(rejected["status"], "REJECTED", "{rejected}");
    assert_eq!(rejected["errorCode"], "NotOpen");
    assert_eq!(rejected["entityId"], "q1");

    let open = server
        .gql_as(
            r#"mutation { Support_QueuedTicket_Open(id: "q1", title: "Printer") { status commandId } }"#,
            json!({}),
            &[("x-user-id", "ann")],
        )
        .await;
    let accepted = outcome_of(open["data"]["Support_QueuedTicket_Open"]["commandId"].as_str().unwrap().into()).await;
    assert_eq!((&accepted["status"], &accepted["eventCount"]), (&json!("ACCEPTED"), &json!(1)), "{accepted}");
    let unknown = server.gql_as(r#"{ Support_CommandOutcome(commandId: "nope") { status } }"#, json!({}), &[]).await;
    assert_eq!(unknown["data"]["Support_CommandOutcome"], Value::Null, "{unknown}");
}
