//! Commands to another plugin's extension point in the deploy plan: the
//! sender's functions may send to exactly the publisher's command queue.
#![cfg(feature = "deploy")]
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::BTreeMap;
use std::path::PathBuf;

use reventless_aws::deploy::config::ProjectConfig;
use reventless_aws::deploy::plan::{Plan, Resource, ResourceKind, plan};
use reventless_core::Manifest;
use serde_json::{Value, json};

const FILE: &str = r#"
project = "shop"
[plugins.catalog]
name = "Catalog"
[plugins.ordering]
name = "Ordering"
depends_on = ["catalog"]
[stages.dev]
"#;

fn config(consolidation: Option<&str>) -> ProjectConfig {
    let env = |key: &str| (key == "REVENTLESS_CONSOLIDATION").then(|| consolidation.map(str::to_string)).flatten();
    ProjectConfig::from_texts(FILE, None, "dev", &env, PathBuf::from(".")).unwrap()
}

/// Catalog: a slice and `Catalog.Products`, which accepts two commands.
fn catalog() -> Manifest {
    serde_json::from_value(json!({
        "plugin": "Catalog", "version": "1.0.0",
        "components": [
            {"kind": "StateChangeSlice", "name": "StockReservation", "commands": ["HoldStock"], "consumes": [],
             "produces": ["StockReserved"], "async": false, "log": {"kind": "Plugin", "name": "Catalog"}},
            {"kind": "ExtensionPoint", "name": "Catalog.Products", "commands": ["ReserveStock", "ReleaseStock"],
             "consumes": [], "produces": ["ProductNews"], "async": true,
             "sources": [{"kind": "Plugin", "name": "Catalog"}]},
        ],
        "storage": {"logs": ["Catalog"], "tables": [], "command_topics": ["Catalog_Commands"]}
    }))
    .unwrap()
}

/// Ordering: an outbound translation that sends to `Catalog.Products`.
fn ordering() -> Manifest {
    serde_json::from_value(json!({
        "plugin": "Ordering", "version": "1.0.0",
        "components": [
            {"kind": "StateChangeSlice", "name": "PlaceOrder", "commands": ["PlaceOrder"], "consumes": [],
             "produces": ["OrderPlaced"], "async": false, "log": {"kind": "Plugin", "name": "Ordering"}},
            {"kind": "OutboundTranslationSlice", "name": "RequestStock", "consumes": ["OrderPlaced"], "produces": [],
             "async": false, "sources": [{"kind": "Plugin", "name": "Ordering"}],
             "table": "Ordering_RequestStockTodos"},
            {"kind": "SendsToExtensionPoint", "name": "Catalog.Products", "commands": ["ReserveStock", "ReleaseStock"],
             "consumes": [], "produces": [], "async": false},
        ],
        "storage": {"logs": ["Ordering"], "tables": [{"name": "Ordering_RequestStockTodos", "indexes": ["status"]}],
                    "command_topics": []}
    }))
    .unwrap()
}

fn shop_plan(consolidation: Option<&str>) -> Plan {
    let manifests = BTreeMap::from([("catalog".to_string(), catalog()), ("ordering".to_string(), ordering())]);
    plan(&config(consolidation), "123456789012", &manifests).unwrap()
}

fn named<'a>(plan: &'a Plan, kind: ResourceKind, name: &str) -> &'a Resource {
    plan.resources.iter().find(|r| r.kind == kind && r.name == name).unwrap_or_else(|| panic!("no {kind:?} {name}"))
}

/// Every SQS resource a role may send to.
fn send_targets(role: &Resource) -> Vec<String> {
    let statements = role.spec["policy"]["Statement"].as_array().unwrap();
    let mut targets: Vec<String> = statements
        .iter()
        .filter(|s| s["Action"].as_array().unwrap().iter().any(|a| a == "sqs:SendMessage"))
        .flat_map(|s| s["Resource"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()))
        .collect();
    targets.sort();
    targets
}

fn function_config(plan: &Plan, function: &str) -> Value {
    let function = named(plan, ResourceKind::Function, function);
    serde_json::from_str(function.spec["environment"]["REVENTLESS_CONFIG"].as_str().unwrap()).unwrap()
}

const CATALOG_QUEUE: &str = "shop-dev-catalog-Catalog_Commands.fifo";

#[test]
fn the_senders_functions_may_send_to_exactly_the_publishers_command_queue() {
    let plan = shop_plan(None);
    let queue_arn = format!("arn:aws:sqs:us-east-1:123456789012:{CATALOG_QUEUE}");
    // The publisher's point has its command queue and function.
    assert!(plan.resources.iter().any(|r| r.kind == ResourceKind::Queue && r.name == CATALOG_QUEUE));
    let mapping = named(&plan, ResourceKind::EventSourceMapping, "shop-dev-catalog-CatalogStateChanges:commands");
    assert_eq!(mapping.spec["queue"], CATALOG_QUEUE);

    // Ordering's automation function sends there, and to nothing wider.
    let automations = named(&plan, ResourceKind::Role, "shop-dev-ordering-AllAutomationSlices");
    let targets = send_targets(automations);
    assert!(targets.contains(&queue_arn), "{targets:?}");
    assert!(targets.iter().all(|t| !t.contains('*')), "no pattern: {targets:?}");
    let catalog_targets: Vec<&String> = targets.iter().filter(|t| t.contains("-catalog-")).collect();
    assert_eq!(catalog_targets, vec![&queue_arn], "only Catalog's command queue of the catalog stack");
    assert_eq!(
        function_config(&plan, "shop-dev-ordering-AllAutomationSlices")["queue_names"],
        json!({"Catalog_Commands": CATALOG_QUEUE})
    );

    // Functions that run no sending component get nothing of Catalog's.
    let heartbeat = named(&plan, ResourceKind::Role, "shop-dev-ordering-OrderingHeartbeat");
    assert!(send_targets(heartbeat).iter().all(|t| !t.contains("-catalog-")), "{:?}", send_targets(heartbeat));
    let read_models =
        plan.resources.iter().find(|r| r.kind == ResourceKind::Role && r.name == "shop-dev-ordering-AllReadModels");
    if let Some(role) = read_models {
        assert!(send_targets(role).iter().all(|t| !t.contains("-catalog-")));
    }
}

#[test]
fn per_aggregate_consolidation_targets_the_publishers_dcb_queue() {
    let plan = shop_plan(Some("per-aggregate"));
    let queue = "shop-dev-catalog-Catalog_Dcb_Commands.fifo";
    assert!(plan.resources.iter().any(|r| r.kind == ResourceKind::Queue && r.name == queue));
    let config = function_config(&plan, "shop-dev-ordering-AllAutomationSlices");
    assert_eq!(config["queue_names"], json!({"Catalog_Commands": queue}));
}

#[test]
fn a_publisher_outside_the_project_file_is_a_warning_not_a_grant() {
    let manifests = BTreeMap::from([("ordering".to_string(), ordering())]);
    let file = FILE.replace("[plugins.catalog]\nname = \"Catalog\"\n", "").replace("depends_on = [\"catalog\"]\n", "");
    let config = ProjectConfig::from_texts(&file, None, "dev", &|_| None, PathBuf::from(".")).unwrap();
    let plan = plan(&config, "123456789012", &manifests).unwrap();
    assert!(plan.warnings.iter().any(|w| w.contains("Catalog.Products")), "{:?}", plan.warnings);
    let role = named(&plan, ResourceKind::Role, "shop-dev-ordering-AllAutomationSlices");
    assert!(send_targets(role).iter().all(|t| !t.contains("Catalog")));
}

#[test]
fn micro_gives_the_points_commands_a_function_with_a_valid_name() {
    let plan = shop_plan(Some("micro"));
    let function = "shop-dev-catalog-CatalogProductsCommands";
    assert!(plan.resources.iter().any(|r| r.kind == ResourceKind::Function && r.name == function), "{function}");
    let mapping = named(&plan, ResourceKind::EventSourceMapping, &format!("{function}:commands"));
    let queue = mapping.spec["queue"].as_str().unwrap().to_string();
    assert!(!queue.trim_end_matches(".fifo").contains('.'), "{queue}");
    let config = function_config(&plan, "shop-dev-ordering-RequestStock");
    assert_eq!(config["queue_names"], json!({"Catalog_Commands": queue}), "the sender reaches that queue");
}
