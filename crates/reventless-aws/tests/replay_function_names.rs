//! `reventless replay --stage` invokes the function the deploy planned for
//! the read model (names from the stage's names), under each consolidation.
#![cfg(feature = "deploy")]
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::BTreeMap;
use std::path::PathBuf;

use reventless_aws::deploy::config::ProjectConfig;
use reventless_aws::deploy::plan::{ResourceKind, plan};
use reventless_aws::deploy::replay::{ReplayDriveError, replay_function};
use reventless_core::Manifest;
use serde_json::json;

const FILE: &str = r#"
project = "shop"
[plugins.ordering]
name = "Ordering"
[stages.dev]
"#;

fn config(consolidation: &str) -> ProjectConfig {
    let env = BTreeMap::from([("REVENTLESS_CONSOLIDATION".to_string(), consolidation.to_string())]);
    ProjectConfig::from_texts(FILE, None, "dev", &|key| env.get(key).cloned(), PathBuf::from(".")).unwrap()
}

/// Ordering with two read models (`Orders`, `Customers`) and an automation.
fn manifests() -> BTreeMap<String, Manifest> {
    let component =
        |kind: &str, name: &str| json!({"kind": kind, "name": name, "consumes": [], "produces": [], "async": false});
    let manifest = json!({
        "plugin": "Ordering", "version": "1.0.0",
        "components": [component("ReadModel", "Orders"), component("ReadModel", "Customers"),
                       component("AutomationSlice", "Confirm")],
        "storage": {"logs": ["Ordering"], "tables": [], "command_topics": []}
    });
    BTreeMap::from([("ordering".to_string(), serde_json::from_value(manifest).unwrap())])
}

#[test]
fn the_replay_function_is_the_planned_function_of_the_read_model() {
    for (consolidation, expected) in [
        ("single", "shop-dev-ordering-AllReadModels"),
        ("per-aggregate", "shop-dev-ordering-AllReadModels"),
        ("micro", "shop-dev-ordering-Orders"),
    ] {
        let config = config(consolidation);
        let function = replay_function(&config, "Ordering.Orders").unwrap();
        assert_eq!(function, expected, "{consolidation}");
        let planned = plan(&config, "123456789012", &manifests()).unwrap();
        let functions: Vec<&str> =
            planned.resources.iter().filter(|r| r.kind == ResourceKind::Function).map(|r| r.name.as_str()).collect();
        assert!(functions.contains(&function.as_str()), "{consolidation}: {function} among {functions:?}");
    }
}

#[test]
fn names_that_lead_nowhere_are_typed_errors() {
    let config = config("single");
    assert_eq!(replay_function(&config, "Orders").unwrap_err(), ReplayDriveError::BadName("Orders".into()));
    assert_eq!(replay_function(&config, "Ordering.").unwrap_err(), ReplayDriveError::BadName("Ordering.".into()));
    let unknown = replay_function(&config, "Billing.Invoices").unwrap_err();
    assert_eq!(unknown, ReplayDriveError::UnknownPlugin { plugin: "Billing".into(), stacks: vec!["ordering".into()] });
    assert!(unknown.to_string().contains("stacks: ordering"), "{unknown}");
}
