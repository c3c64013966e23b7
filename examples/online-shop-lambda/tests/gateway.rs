//! The platform gateway's real `bootstrap` in front of the Catalog and
//! Ordering API functions (real binaries too): plugins register through
//! their heartbeats, the gateway composes their schemas, splits requests
//! per plugin, forwards the caller's identity and merges the answers. The
//! caller is who a bearer token from the local OIDC issuer says; claims a
//! client puts into its own request never reach a plugin.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
mod support;

use std::collections::HashMap;
use std::sync::Arc;

use reventless_aws::gateway::{AuthSettings, GATEWAY_ENV, GatewayConfig, Registry};
use reventless_aws::provision;
use reventless_aws::runtime_api::{InvokeEndpoint, RuntimeApi};
use reventless_local_cloud::oidc::Issuer;
use serde_json::{Value, json};
use support::{Deployment, LIMIT, body, graphql, http_request};

const CATALOG: &str = env!("CARGO_BIN_EXE_catalog-lambda");
const ORDERING: &str = env!("CARGO_BIN_EXE_ordering-lambda");
const GATEWAY: &str = env!("CARGO_BIN_EXE_platform-gateway");

/// A POST as the gateway's public function URL passes it: with the client's
/// `Authorization` header when it sent one.
fn post(body: &str, token: Option<&str>) -> Value {
    let mut request = http_request("POST", "/graphql", Some(body), None);
    if let Some(token) = token {
        request["headers"]["authorization"] = json!(format!("Bearer {token}"));
    }
    request
}

const AUDIENCE: &str = "shop-web";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_serves_every_registered_plugin_at_one_endpoint() {
    let catalog = Deployment::new("Catalog").await;
    let ordering = Deployment::new("Ordering").await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&catalog.config);
    let registry = format!("registry-{}", uuid::Uuid::now_v7().simple());
    provision::create_rows_table(&dynamodb, &registry).await.unwrap();

    // Each plugin's heartbeat registers it (version, schema, API function).
    for (deployment, bootstrap, role, api) in [
        (&catalog, CATALOG, "CatalogHeartbeat", "catalog-api"),
        (&ordering, ORDERING, "OrderingHeartbeat", "ordering-api"),
    ] {
        let runtime = RuntimeApi::start().await.unwrap();
        let _heartbeat = runtime
            .spawn(std::path::Path::new(bootstrap), &deployment.env_registering(role, Some((&registry, api))))
            .unwrap();
        let answer = runtime.invoke(json!({"reventless": "heartbeat"}), LIMIT).await.unwrap();
        assert_eq!(answer["status"], "CONNECTED");
    }
    let registered = Registry::new(&catalog.config, &registry).list().await.unwrap();
    let names: Vec<(&str, &str)> = registered.iter().map(|r| (r.plugin.as_str(), r.api_function.as_str())).collect();
    assert_eq!(names, vec![("Catalog", "catalog-api"), ("Ordering", "ordering-api")]);
    assert!(registered[0].schema.contains("Catalog_Categories") && !registered[0].schema.contains("Ordering_"));

    // The plugins' API functions behind a loopback Lambda Invoke endpoint.
    let (catalog_api, _catalog_fn) = catalog.function(CATALOG, "CatalogApi").await;
    let (ordering_api, _ordering_fn) = ordering.function(ORDERING, "OrderingApi").await;
    let endpoint = InvokeEndpoint::start(HashMap::from([
        ("catalog-api".to_string(), Arc::new(catalog_api)),
        ("ordering-api".to_string(), Arc::new(ordering_api)),
    ]))
    .await
    .unwrap();
    let gateway = RuntimeApi::start().await.unwrap();
    let issuer = Issuer::start(AUDIENCE).unwrap();
    let config = GatewayConfig {
        registry: registry.clone(),
        auth: Some(AuthSettings::new(issuer.issuer_url(), AUDIENCE)),
        connections: None,
    };
    let mut env = catalog.env("unused");
    env.retain(|(key, _)| *key != "REVENTLESS_CONFIG");
    env.push((GATEWAY_ENV, serde_json::to_string(&config).unwrap()));
    env.push(("AWS_ENDPOINT_URL_LAMBDA", endpoint.url()));
    let _gateway_fn = gateway.spawn(std::path::Path::new(GATEWAY), &env).unwrap();

    // The composed schema: both plugins' fields on one Query type.
    let schema = gateway.invoke(http_request("GET", "/schema.graphql", None, None), LIMIT).await.unwrap();
    assert_eq!(schema["statusCode"], 200);
    let sdl = schema["body"].as_str().unwrap();
    assert!(sdl.contains("Catalog_Categories") && sdl.contains("Ordering_Orders"), "{sdl}");
    assert_eq!(sdl.matches("type Query {").count(), 1);
    assert_eq!(sdl.matches("type PageInfo {").count(), 1, "a shared type once");

    // One mutation across both plugins, with the caller's identity forwarded to each.
    let both = graphql(
        r#"mutation { Catalog_AddCategory(categoryId: "books", name: "Books") { status errorCode }
                      Ordering_Customer_Register(id: "c1", name: "Ann", email: "ann@example.org") { status errorCode } }"#,
    );
    let caller = issuer.sign("c1", &["Merchandiser"], std::time::Duration::from_secs(600)).unwrap();
    let answer = body(&gateway.invoke(post(&both, Some(&caller)), LIMIT).await.unwrap());
    assert_eq!(
        answer["data"],
        json!({
            "Catalog_AddCategory": {"status": "ACCEPTED", "errorCode": null},
            "Ordering_Customer_Register": {"status": "ACCEPTED", "errorCode": null},
        }),
        "{answer}"
    );
    let anonymous = body(&gateway.invoke(post(&both, None), LIMIT).await.unwrap());
    assert_eq!(anonymous["data"]["Catalog_AddCategory"]["errorCode"], "AccessRefused");
    // Claims a client writes into its own request context are not an identity.
    let smuggled = http_request("POST", "/graphql", Some(&both), Some(json!({"sub": "c1", "roles": "Merchandiser"})));
    let smuggled = body(&gateway.invoke(smuggled, LIMIT).await.unwrap());
    assert_eq!(smuggled["data"]["Catalog_AddCategory"]["errorCode"], "AccessRefused", "{smuggled}");
    // A token of another issuer, or an expired one: 401 and nothing runs.
    let stranger = Issuer::start(AUDIENCE).unwrap();
    let forged = stranger.sign("c1", &["Merchandiser"], std::time::Duration::from_secs(600)).unwrap();
    let mut expired = issuer.claims("c1", &["Merchandiser"], std::time::Duration::from_secs(600));
    expired.insert("exp".into(), json!(expired["iat"].as_u64().unwrap() - 600));
    let expired = issuer.sign_claims(&expired).unwrap();
    for token in [forged, expired, "garbage".to_string()] {
        let refused = gateway.invoke(post(&both, Some(&token)), LIMIT).await.unwrap();
        assert_eq!(refused["statusCode"], 401, "{refused}");
        assert_eq!(body(&refused)["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    }
    stranger.shutdown();

    // A query across both, with variables, an alias and a fragment, after the views caught up.
    let (views, _views_fn) = catalog.function(CATALOG, "AllReadModels").await;
    views.invoke(catalog.stream_event().await, LIMIT).await.unwrap();
    let (customers, _customers_fn) = ordering.function(ORDERING, "AllReadModels").await;
    customers.invoke(ordering.stream_event().await, LIMIT).await.unwrap();
    let query = json!({
        "query": "query Shop($first: Int) { cats: Catalog_Categories(first: $first) { totalCount edges { node { id name } } } ...People __typename }
                  fragment People on Query { Ordering_Customers { totalCount edges { node { id email } } } }",
        "operationName": "Shop",
        "variables": { "first": 5 },
    });
    let answer = body(&gateway.invoke(post(&query.to_string(), None), LIMIT).await.unwrap());
    assert_eq!(answer.get("errors"), None, "{answer}");
    let data = answer["data"].as_object().unwrap();
    assert_eq!(data.keys().collect::<Vec<_>>(), vec!["cats", "Ordering_Customers", "__typename"]);
    assert_eq!(data["cats"]["edges"][0]["node"], json!({"id": "books", "name": "Books"}));
    assert_eq!(data["Ordering_Customers"]["edges"][0]["node"], json!({"id": "c1", "email": "ann@example.org"}));
    assert_eq!(data["__typename"], "Query");

    // The gateway itself answers `Platform_` fields, from the registry, next to a plugin's.
    let platform = graphql("{ Platform_Plugins { name version status schema } Catalog_Categories { totalCount } }");
    let answer = body(&gateway.invoke(post(&platform, None), LIMIT).await.unwrap());
    assert_eq!(answer.get("errors"), None, "{answer}");
    let plugins = answer["data"]["Platform_Plugins"].as_array().unwrap();
    let listed: Vec<(&str, &str)> =
        plugins.iter().map(|p| (p["name"].as_str().unwrap(), p["status"].as_str().unwrap())).collect();
    assert_eq!(listed, vec![("Catalog", "CONNECTED"), ("Ordering", "CONNECTED")]);
    assert!(plugins[1]["schema"].as_str().unwrap().contains("Ordering_Orders"));
    assert_eq!(answer["data"]["Catalog_Categories"]["totalCount"], 1);
    assert_eq!(sdl.matches("Platform_Plugins:").count(), 1, "in the composed schema once");

    // Introspection answers for the whole stage.
    let introspection = graphql(r#"{ __type(name: "Query") { fields { name } } }"#);
    let answer = body(&gateway.invoke(post(&introspection, None), LIMIT).await.unwrap());
    let fields: Vec<&str> =
        answer["data"]["__type"]["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert!(fields.contains(&"Catalog_Categories") && fields.contains(&"Ordering_Orders"), "{fields:?}");
    assert_eq!(fields.iter().filter(|f| **f == "Platform_Plugins").count(), 1, "{fields:?}");

    // Bad requests: the reason, and no plugin is called with them.
    let unknown = gateway.invoke(post(&graphql("{ Shipping_Parcels { totalCount } }"), None), LIMIT).await.unwrap();
    assert_eq!(unknown["statusCode"], 400);
    let message = body(&unknown)["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(message.contains("Shipping") && message.contains("Catalog, Ordering"), "{message}");
    let broken = gateway.invoke(post(&graphql("{ Catalog_Categories { "), None), LIMIT).await.unwrap();
    assert_eq!(body(&broken)["errors"][0]["extensions"]["code"], "GRAPHQL_PARSE_FAILED");
    let garbage = gateway.invoke(post("{not json", None), LIMIT).await.unwrap();
    assert_eq!(garbage["statusCode"], 400);
    // A plugin's own validation error comes back as the plugin said it.
    let wrong_type = graphql(r#"mutation { Catalog_AddCategory(categoryId: 5, name: "x") { status } }"#);
    let refused = body(&gateway.invoke(post(&wrong_type, Some(&caller)), LIMIT).await.unwrap());
    assert_eq!(refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{refused}");
    let events = catalog.stores().events.read("Catalog", &reventless_spec::Query::all(), None, None).await.unwrap();
    assert_eq!(events.len(), 1, "only the accepted AddCategory appended");
    issuer.shutdown();
}
