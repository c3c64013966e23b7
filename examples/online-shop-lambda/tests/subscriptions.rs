//! GraphQL subscriptions as a browser meets them, the same locally and on
//! AWS: one test body ([`subscription_flow`]) runs against the local dev
//! server (`/graphql/ws`) and against the shop deployed into the local cloud
//! (the gateway's API Gateway WebSocket API, IAM enforced): subscribe to a
//! product, change it through the GraphQL mutation, receive the `next`
//! message with the new row; an unknown subscription field is refused.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use reventless_aws::deploy::config::ProjectConfig;
use reventless_aws::deploy::inputs::Bootstraps;
use reventless_local_cloud::stage::deploy;
use reventless_local_cloud::{CloudOptions, LocalCloud};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
/// Changes a product's price through the GraphQL API.
type Change<'a> = &'a dyn Fn(i64) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

const SHOP_TOML: &str = include_str!("../../online-shop/reventless.toml");

fn change_price(product: &str, price: i64) -> String {
    format!(
        r#"mutation {{ Catalog_ChangeProductPrice(productId: "{product}", priceCents: {price}, currency: "EUR") {{ status }} }}"#
    )
}

fn add_category_and_product(product: &str) -> [String; 2] {
    [
        r#"mutation { Catalog_AddCategory(categoryId: "books", name: "Books") { status } }"#.to_string(),
        format!(
            r#"mutation {{ Catalog_AddProduct(productId: "{product}", name: "{product}", description: "", priceCents: 100, currency: "EUR", categoryId: "books") {{ status }} }}"#
        ),
    ]
}

async fn open(url: &str) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut request = url.into_client_request()?;
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    tokio_tungstenite::connect_async(request).await.map(|(socket, _)| socket)
}

/// The next graphql-transport-ws message (JSON), within `limit`.
async fn receive(socket: &mut Socket, limit: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(limit, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Some(serde_json::from_str(&text).unwrap()),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(other) => panic!("the connection ended: {other:?}"),
            Err(_) => return None,
        }
    }
}

async fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::text(message.to_string())).await.unwrap();
}

/// The one subscription test: on `url` (a graphql-transport-ws endpoint),
/// with `token` in `connection_init` when given; `change` changes the
/// product's price through the GraphQL mutation.
async fn subscription_flow(url: &str, token: Option<&str>, product: &str, change: Change<'_>) {
    let mut socket = open(url).await.unwrap();
    let init = match token {
        Some(token) => json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}),
        None => json!({"type": "connection_init"}),
    };
    send(&mut socket, init).await;
    let ack = receive(&mut socket, Duration::from_secs(30)).await;
    assert_eq!(ack.as_ref().map(|a| a["type"].clone()), Some(json!("connection_ack")), "{ack:?}");

    // A field the schema does not have: refused for that id, nothing
    // stored. The gateway answers graphql-transport-ws's `error`; the local
    // server (async-graphql) a `next` carrying only errors, then `complete`.
    let unknown = r#"subscription { Catalog_onNothingChanged(id: "x") { id } }"#;
    send(&mut socket, json!({"id": "u", "type": "subscribe", "payload": {"query": unknown}})).await;
    let refused = receive(&mut socket, Duration::from_secs(30)).await.unwrap();
    assert_eq!(refused["id"], "u", "{refused}");
    let errors = match refused["type"].as_str() {
        Some("error") => refused["payload"].clone(),
        Some("next") => {
            assert!(refused["payload"]["data"].is_null(), "{refused}");
            let complete = receive(&mut socket, Duration::from_secs(30)).await.unwrap();
            assert_eq!(complete, json!({"id": "u", "type": "complete"}));
            refused["payload"]["errors"].clone()
        }
        _ => panic!("not a refusal: {refused}"),
    };
    let message = errors[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("Catalog_onNothingChanged"), "{refused}");

    let query = format!(r#"subscription {{ Catalog_onProductChanged(id: "{product}") {{ id priceCents }} }}"#);
    send(&mut socket, json!({"id": "1", "type": "subscribe", "payload": {"query": query}})).await;
    // The subscription is stored once its message is read: change until a
    // change is seen (cold functions on the local cloud). Earlier changes of
    // the row (its creation) may come first: each `next` is the row as it is.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut price = 200;
    let next = 'changed: loop {
        change(price).await;
        while let Some(message) = receive(&mut socket, Duration::from_secs(3)).await {
            assert_eq!((&message["type"], &message["id"]), (&json!("next"), &json!("1")), "{message}");
            let seen = &message["payload"]["data"]["Catalog_onProductChanged"]["priceCents"];
            if seen.as_i64().is_some_and(|cents| cents >= 200) {
                break 'changed message;
            }
        }
        assert!(Instant::now() < deadline, "no `next` message with a changed price within 90 s");
        price += 1;
    };
    let row = &next["payload"]["data"]["Catalog_onProductChanged"];
    assert_eq!(row["id"], product, "{next}");
    let seen = row["priceCents"].as_i64().unwrap();
    assert!((200..=price).contains(&seen), "{next}");
    assert!(next["payload"].get("errors").is_none_or(Value::is_null), "{next}");

    send(&mut socket, json!({"id": "1", "type": "complete"})).await;
    let _ = socket.close(None).await;
}

#[tokio::test]
async fn a_subscription_receives_a_row_change_from_the_local_dev_server() {
    let runtime = reventless::local::start_in_memory(vec![online_shop::catalog::standalone()]).unwrap();
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
    let client = reqwest::Client::new();
    let post = |query: String| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let request = client
                .post(format!("{base}/graphql"))
                .header("x-user-id", "mia")
                .header("x-user-roles", "Merchandiser")
                .json(&json!({"query": query}));
            let answer: Value = request.send().await.unwrap().json().await.unwrap();
            assert!(answer["errors"].is_null(), "{answer}");
        }
    };
    for mutation in add_category_and_product("p1") {
        post(mutation).await;
    }
    let change =
        |price: i64| -> Pin<Box<dyn Future<Output = ()> + Send + '_>> { Box::pin(post(change_price("p1", price))) };
    subscription_flow(&format!("{}/graphql/ws", base.replace("http", "ws")), None, "p1", &change).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscription_receives_a_row_change_made_through_the_gateway_on_the_local_cloud() {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let stage = format!("w{}", &id[26..]);
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
    let url = deployed.websocket_url.clone().expect("the stage's WebSocket API is served");
    let client = reqwest::Client::new();
    let answer: Value = client
        .post(&deployed.token_url)
        .json(&json!({"sub": "mia", "groups": ["Merchandiser"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = answer["token"].as_str().unwrap().to_string();
    let output = || {
        let mut text = String::new();
        for (name, _) in cloud.lambda.stats() {
            text.push_str(&format!("--- {name}\n{}\n", cloud.lambda.recent_output(&name).join("\n")));
        }
        text
    };
    let post = |query: String| {
        let (client, graphql, token) = (client.clone(), deployed.graphql_url.clone(), token.clone());
        async move {
            let answer: Value = client
                .post(graphql)
                .bearer_auth(token)
                .json(&json!({"query": query}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(answer["errors"].is_null(), "{answer}");
        }
    };
    for mutation in add_category_and_product("p1") {
        post(mutation).await;
    }

    // A token that does not verify is refused at the handshake.
    let refused = open(&format!("{url}?token=not-a-token")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("a bad token must be refused at connect: {other:?}\n{}", output()),
    }

    let change =
        |price: i64| -> Pin<Box<dyn Future<Output = ()> + Send + '_>> { Box::pin(post(change_price("p1", price))) };
    let flow = subscription_flow(&url, Some(&token), "p1", &change);
    if tokio::time::timeout(Duration::from_secs(150), flow).await.is_err() {
        panic!("the subscription flow timed out\n{}", output());
    }
    // The Management API through the IAM proxy: the read-model function's
    // role may post to this API's stage only; the Api function's not at all.
    let websocket_api = reventless_aws::deploy::plan::websocket_api(
        &ProjectConfig::from_texts(&text, None, &stage, &|_| None, PathBuf::from(".")).unwrap(),
    );
    let clients = reventless_local_cloud::stage::deploy_clients(&cloud);
    let api = clients.websocket_api_id(&websocket_api).await.unwrap().unwrap();
    let post_as = |function: String, api: String| {
        let role = cloud.lambda.invoker().role_of(&function).unwrap();
        let credentials = cloud.iam.credentials_for(&role);
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(&cloud.sdk)
            .endpoint_url(format!("{}/{api}/{stage}", cloud.proxy.url()))
            .credentials_provider(aws_sdk_apigatewaymanagement::config::Credentials::new(
                credentials.access_key_id,
                credentials.secret_access_key,
                Some(credentials.session_token),
                None,
                "function",
            ))
            .build();
        async move {
            let client = aws_sdk_apigatewaymanagement::Client::from_conf(config);
            let sent =
                client.post_to_connection().connection_id("closed").data("{}".as_bytes().to_vec().into()).send().await;
            sent.err()
                .and_then(|e| aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata::code(&e).map(str::to_string))
        }
    };
    let read_models = format!("shop-{stage}-catalog-AllReadModels");
    assert_eq!(post_as(read_models.clone(), api.clone()).await.as_deref(), Some("GoneException"));
    assert_eq!(post_as(read_models, "otherapi".into()).await.as_deref(), Some("AccessDeniedException"));
    assert_eq!(
        post_as(format!("shop-{stage}-catalog-CatalogApi"), api).await.as_deref(),
        Some("AccessDeniedException")
    );

    // `complete` removed the subscription and the close ran `$disconnect`:
    // nothing of the connection is left in the connections table.
    let table = reventless_aws::deploy::plan::connections_table(
        &ProjectConfig::from_texts(&text, None, &stage, &|_| None, PathBuf::from(".")).unwrap(),
    );
    let dynamodb = aws_sdk_dynamodb::Client::new(&cloud.sdk);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = dynamodb.scan().table_name(&table).send().await.unwrap().count();
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{left} connection rows left after the close\n{}", output());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
