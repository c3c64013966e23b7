//! A plugin's schedules in the deploy plan: one Scheduler entry each,
//! invoking the plugin's heartbeat function with the schedule's name, under
//! a role that may invoke exactly that function.
#![cfg(feature = "deploy")]
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::BTreeMap;
use std::path::PathBuf;

use reventless_aws::deploy::config::ProjectConfig;
use reventless_aws::deploy::plan::{Resource, ResourceKind, plan, schedule_entry_name};
use reventless_core::Manifest;
use serde_json::json;

const FILE: &str = r#"
project = "shop"
[plugins.ordering]
name = "Ordering"
[stages.dev]
"#;

fn config() -> ProjectConfig {
    ProjectConfig::from_texts(FILE, None, "dev", &|_| None, PathBuf::from(".")).unwrap()
}

fn manifest(schedules: serde_json::Value) -> Manifest {
    let components: Vec<_> = schedules
        .as_array()
        .unwrap()
        .iter()
        .map(|s| json!({"kind": "Schedule", "name": s["name"], "consumes": [], "produces": [], "async": false}))
        .chain([json!({"kind": "StateChangeSlice", "name": "CancelUnpaidOrder", "consumes": [], "produces": [],
                       "log": {"kind": "Plugin", "name": "Ordering"}, "async": false})])
        .collect();
    serde_json::from_value(json!({
        "plugin": "Ordering", "version": "1.0.0", "components": components,
        "storage": {"logs": ["Ordering"], "tables": [], "command_topics": []},
        "schedules": schedules,
    }))
    .unwrap()
}

fn schedules_of(resources: &[Resource]) -> Vec<&Resource> {
    resources.iter().filter(|r| r.kind == ResourceKind::Schedule).collect()
}

#[test]
fn each_schedule_is_a_scheduler_entry_invoking_the_heartbeat_with_its_name() {
    let config = config();
    let manifests = BTreeMap::from([(
        "ordering".to_string(),
        manifest(json!([
            {"name": "CancelUnpaidOrders", "expression": "rate(5 minutes)"},
            {"name": "NightlyReport", "expression": "cron(0 2 * * ? *)"},
        ])),
    )]);
    let planned = plan(&config, "123456789012", &manifests).unwrap();
    let schedules = schedules_of(&planned.resources);
    assert_eq!(schedules.len(), 3, "the heartbeat's and the two schedules: {schedules:?}");
    let heartbeat = "shop-dev-ordering-OrderingHeartbeat";
    let entry = schedules.iter().find(|r| r.component == "CancelUnpaidOrders").unwrap();
    assert_eq!(entry.name, "shop-dev-ordering-OrderingSchedule-CancelUnpaidOrders");
    assert_eq!(entry.name, schedule_entry_name(&config, "ordering", "Ordering", "CancelUnpaidOrders"));
    assert_eq!(entry.stack, "ordering");
    assert_eq!(entry.spec["function"], heartbeat);
    assert_eq!(entry.spec["expression"], "rate(5 minutes)");
    assert_eq!(entry.spec["input"], json!({"reventless": "schedule", "schedule": "CancelUnpaidOrders"}));
    assert_eq!(entry.tags["reventless:component"], "CancelUnpaidOrders", "{:?}", entry.tags);
    let nightly = schedules.iter().find(|r| r.component == "NightlyReport").unwrap();
    assert_eq!(nightly.spec["expression"], "cron(0 2 * * ? *)");

    // The role Scheduler assumes: trusted by Scheduler, may invoke exactly the heartbeat.
    let role_name = entry.spec["role"].as_str().unwrap();
    assert_eq!(nightly.spec["role"], role_name);
    let role = planned.resources.iter().find(|r| r.kind == ResourceKind::Role && r.name == role_name).unwrap();
    assert_eq!(role.spec["trust"], "scheduler.amazonaws.com");
    let statements = role.spec["policy"]["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1, "{statements:?}");
    assert_eq!(statements[0]["Action"], json!(["lambda:InvokeFunction"]));
    assert_eq!(
        statements[0]["Resource"],
        json!([format!("arn:aws:lambda:us-east-1:123456789012:function:{heartbeat}")])
    );
}

#[test]
fn a_plugin_without_schedules_has_only_its_heartbeat_entry() {
    let manifests = BTreeMap::from([("ordering".to_string(), manifest(json!([])))]);
    let planned = plan(&config(), "123456789012", &manifests).unwrap();
    let schedules = schedules_of(&planned.resources);
    assert_eq!(schedules.len(), 1);
    assert_eq!(schedules[0].name, "shop-dev-ordering-OrderingHeartbeat");
    assert!(schedules[0].spec.get("input").is_none(), "the heartbeat sends its own event");
}
