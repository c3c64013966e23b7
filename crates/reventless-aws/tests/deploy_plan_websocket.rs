//! The plan of a stage's subscriptions (the gateway's WebSocket API), without AWS.
#![cfg(feature = "deploy")]
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::BTreeMap;
use std::path::PathBuf;

use reventless_aws::deploy::config::ProjectConfig;
use reventless_aws::deploy::plan::{Plan, Resource, ResourceKind, plan, websocket_api_id};
use reventless_core::Manifest;
use serde_json::{Value, json};

const FILE: &str = r#"
project = "shop"
[plugins.catalog]
name = "Catalog"
[stages.dev]
"#;

const GATEWAY: &str = "[platform]\nbin = \"platform-gateway\"\n";

fn manifests() -> BTreeMap<String, Manifest> {
    let manifest = serde_json::from_value(json!({
        "plugin": "Catalog", "version": "1.0.0",
        "components": [
            {"kind": "StateChangeSlice", "name": "C0", "consumes": [], "produces": [],
             "log": {"kind": "Plugin", "name": "Catalog"}, "async": false},
            {"kind": "ReadModel", "name": "Products", "consumes": [], "produces": [], "log": null, "async": false}
        ],
        "storage": {"logs": ["Catalog"], "tables": [], "command_topics": []}
    }))
    .unwrap();
    BTreeMap::from([("catalog".to_string(), manifest)])
}

fn plan_of(file: &str) -> Plan {
    let config = ProjectConfig::from_texts(file, None, "dev", &|_| None, PathBuf::from(".")).unwrap();
    plan(&config, "123456789012", &manifests()).unwrap()
}

fn find<'a>(plan: &'a Plan, kind: ResourceKind, name: &str) -> Option<&'a Resource> {
    plan.resources.iter().find(|r| r.kind == kind && r.name == name)
}

fn statements(plan: &Plan, role: &str) -> Vec<Value> {
    let role = find(plan, ResourceKind::Role, role).unwrap();
    role.spec["policy"]["Statement"].as_array().unwrap().clone()
}

#[test]
fn a_stage_with_a_gateway_gets_a_websocket_api_its_connections_table_and_url() {
    let plan = plan_of(&FILE.replace("[plugins.catalog]\n", &format!("{GATEWAY}[plugins.catalog]\n")));
    let api = find(&plan, ResourceKind::WebSocketApi, "shop-dev-platform-ws").unwrap();
    assert_eq!(api.stack, "platform");
    assert_eq!(api.spec["routes"], json!(["$connect", "$default", "$disconnect"]));
    assert_eq!(api.spec["function"], "shop-dev-platform-Gateway");
    assert_eq!(api.spec["routeSelection"], "$request.body.type");
    assert_eq!((&api.spec["stage"], &api.spec["ttlAttribute"]), (&json!("dev"), &json!("expires")));
    let table = find(&plan, ResourceKind::Table, "shop-dev-platform-connections").unwrap();
    assert_eq!(table.spec["layout"], "rows");
    let id = websocket_api_id("shop-dev-platform-ws");
    let url = find(&plan, ResourceKind::Parameter, "/reventless/shop/dev/platform/websocket-url").unwrap();
    assert_eq!(url.spec["value"], format!("wss://{id}.execute-api.us-east-1.amazonaws.com/dev"));
    // Outputs come after what they name (the URL holds the API's id).
    assert!(url.wave() > api.wave(), "{} {}", url.wave(), api.wave());

    // The gateway keeps connections; it answers through the routes, so it
    // may not post to connections itself.
    let gateway = statements(&plan, "shop-dev-platform-Gateway");
    let connections = "arn:aws:dynamodb:us-east-1:123456789012:table/shop-dev-platform-connections";
    assert!(gateway.iter().any(|s| s["Resource"] == json!([connections])), "{gateway:?}");
    assert!(!gateway.iter().any(|s| s["Action"].to_string().contains("execute-api")), "{gateway:?}");
    let config = serde_json::from_str::<Value>(
        find(&plan, ResourceKind::Function, "shop-dev-platform-Gateway").unwrap().spec["environment"]["REVENTLESS_GATEWAY"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(config["connections"], "shop-dev-platform-connections");
}

#[test]
fn read_model_functions_may_post_to_exactly_the_stages_connections() {
    let plan = plan_of(&FILE.replace("[plugins.catalog]\n", &format!("{GATEWAY}[plugins.catalog]\n")));
    let id = websocket_api_id("shop-dev-platform-ws");
    let read_models = statements(&plan, "shop-dev-catalog-AllReadModels");
    let manage: Vec<&Value> =
        read_models.iter().filter(|s| s["Action"] == json!(["execute-api:ManageConnections"])).collect();
    assert_eq!(manage.len(), 1, "{read_models:?}");
    assert_eq!(
        manage[0]["Resource"],
        json!([format!("arn:aws:execute-api:us-east-1:123456789012:{id}/dev/POST/@connections/*")])
    );
    let connections = "arn:aws:dynamodb:us-east-1:123456789012:table/shop-dev-platform-connections";
    let table = read_models.iter().find(|s| s["Resource"] == json!([connections])).unwrap();
    assert_eq!(table["Action"], json!(["dynamodb:Query", "dynamodb:DeleteItem"]));
    let environment =
        &find(&plan, ResourceKind::Function, "shop-dev-catalog-AllReadModels").unwrap().spec["environment"];
    assert_eq!(
        environment["REVENTLESS_SUBSCRIPTIONS"],
        json!({"connections": "shop-dev-platform-connections"}).to_string()
    );

    // No other function of the stack pushes.
    for role in ["shop-dev-catalog-CatalogApi", "shop-dev-catalog-CatalogHeartbeat"] {
        let text = serde_json::to_string(&statements(&plan, role)).unwrap();
        assert!(!text.contains("execute-api") && !text.contains("connections"), "{role}: {text}");
        let function = find(&plan, ResourceKind::Function, role).unwrap();
        assert!(function.spec["environment"].get("REVENTLESS_SUBSCRIPTIONS").is_none(), "{role}");
    }
}

#[test]
fn without_a_gateway_there_is_no_websocket_api() {
    let plan = plan_of(FILE);
    assert!(!plan.resources.iter().any(|r| r.kind == ResourceKind::WebSocketApi));
    assert!(find(&plan, ResourceKind::Table, "shop-dev-platform-connections").is_none());
    let text = serde_json::to_string(&statements(&plan, "shop-dev-catalog-AllReadModels")).unwrap();
    assert!(!text.contains("execute-api"), "{text}");
}
