//! What the plan asks of plugin tables and queues (`[tables]`, `[queues]`,
//! `ephemeral`) and which source it records per stack, without AWS.
#![cfg(feature = "deploy")]
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::BTreeMap;
use std::path::PathBuf;

use reventless_aws::deploy::config::{Billing, ConfigError, ProjectConfig};
use reventless_aws::deploy::plan::{Plan, ResourceKind, plan};
use reventless_core::Manifest;
use serde_json::{Value, json};

const FILE: &str = r#"
project = "shop"
[plugins.orders]
name = "Orders"
[stages.dev]
[stages.ci]
ephemeral = true
[stages.prod]
[stages.prod.tables]
billing_mode = "PROVISIONED"
read_capacity = 20
write_capacity = 10
"#;

fn load(file: &str, stage: &str, env: &[(&str, &str)]) -> Result<ProjectConfig, ConfigError> {
    let env: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    ProjectConfig::from_texts(file, None, stage, &|key| env.get(key).cloned(), PathBuf::from("."))
}

/// A plugin with an async slice (a FIFO queue and its DLQ) and a read model.
fn manifest() -> Manifest {
    serde_json::from_value(json!({
        "plugin": "Orders", "version": "1.0.0",
        "components": [
            {"kind": "StateChangeSlice", "name": "Place", "consumes": [], "produces": [],
             "log": {"kind": "Plugin", "name": "Orders"}, "async": true},
            {"kind": "ReadModel", "name": "OrderList", "consumes": ["OrderPlaced"], "produces": [], "log": null,
             "sources": [{"kind": "Plugin", "name": "Orders"}], "async": false}
        ],
        "storage": {"logs": ["Orders"], "tables": [], "command_topics": ["Orders_Commands"]}
    }))
    .unwrap()
}

fn plan_of(config: &ProjectConfig) -> Plan {
    plan(config, "123456789012", &BTreeMap::from([("orders".to_string(), manifest())])).unwrap()
}

fn spec(plan: &Plan, kind: ResourceKind, name: &str) -> Value {
    let found = plan.resources.iter().find(|r| r.kind == kind && r.name == name);
    found.unwrap_or_else(|| panic!("{kind:?} {name} planned")).spec.clone()
}

#[test]
fn plugin_tables_get_recovery_and_deletion_protection_unless_the_stage_is_ephemeral() {
    let dev = plan_of(&load(FILE, "dev", &[]).unwrap());
    for table in ["shop-dev-orders-events", "shop-dev-orders-rows"] {
        let spec = spec(&dev, ResourceKind::Table, table);
        assert_eq!(spec["pointInTimeRecovery"], true, "{table}: {spec}");
        assert_eq!(spec["deletionProtection"], true, "{table}: {spec}");
        assert_eq!(spec["billingMode"], "PAY_PER_REQUEST", "{table}: {spec}");
        assert!(spec.get("readCapacity").is_none(), "no capacity on demand: {spec}");
    }
    // The platform's lock and registry are rebuilt at will: no settings asked.
    let registry = spec(&dev, ResourceKind::Table, "shop-dev-platform-registry");
    assert_eq!(registry, json!({"layout": "rows", "stream": false}));

    let ci = load(FILE, "ci", &[]).unwrap();
    assert!(ci.ephemeral);
    let ci = plan_of(&ci);
    let events = spec(&ci, ResourceKind::Table, "shop-ci-orders-events");
    assert_eq!((&events["pointInTimeRecovery"], &events["deletionProtection"]), (&json!(false), &json!(false)));

    // Each setting can be chosen against the default, in either direction.
    let chosen = FILE.replace("ephemeral = true", "ephemeral = true\n[stages.ci.tables]\ndeletion_protection = true");
    let ci = plan_of(&load(&chosen, "ci", &[]).unwrap());
    let events = spec(&ci, ResourceKind::Table, "shop-ci-orders-events");
    assert_eq!((&events["pointInTimeRecovery"], &events["deletionProtection"]), (&json!(false), &json!(true)));
    let off = format!("{FILE}\n[tables]\npoint_in_time_recovery = false\n");
    let dev = plan_of(&load(&off, "dev", &[]).unwrap());
    let rows = spec(&dev, ResourceKind::Table, "shop-dev-orders-rows");
    assert_eq!((&rows["pointInTimeRecovery"], &rows["deletionProtection"]), (&json!(false), &json!(true)));
}

#[test]
fn provisioned_billing_names_both_capacities_and_bad_settings_name_their_key() {
    let prod = load(FILE, "prod", &[]).unwrap();
    assert_eq!(prod.tables.billing, Billing::Provisioned { read: 20, write: 10 });
    let plan = plan_of(&prod);
    let rows = spec(&plan, ResourceKind::Table, "shop-prod-orders-rows");
    assert_eq!(
        (&rows["billingMode"], &rows["readCapacity"], &rows["writeCapacity"]),
        (&json!("PROVISIONED"), &json!(20), &json!(10))
    );

    let without_write = FILE.replace("write_capacity = 10\n", "");
    assert_eq!(
        load(&without_write, "prod", &[]).unwrap_err(),
        ConfigError::Missing { key: "tables.write_capacity".into() }
    );
    let zero = FILE.replace("read_capacity = 20", "read_capacity = 0");
    let error = load(&zero, "prod", &[]).unwrap_err().to_string();
    assert!(error.contains("tables.read_capacity") && error.contains("1..=40000"), "{error}");
    let on_demand = FILE.replace("billing_mode = \"PROVISIONED\"", "billing_mode = \"PAY_PER_REQUEST\"");
    let error = load(&on_demand, "prod", &[]).unwrap_err().to_string();
    assert!(error.contains("tables.read_capacity") && error.contains("PROVISIONED"), "{error}");
    let unknown = FILE.replace("billing_mode = \"PROVISIONED\"", "billing_mode = \"RESERVED\"");
    assert!(load(&unknown, "prod", &[]).unwrap_err().to_string().contains("RESERVED"));
    let typo = format!("{FILE}\n[tables]\ndeletion_protect = true\n");
    assert!(load(&typo, "dev", &[]).unwrap_err().to_string().contains("deletion_protect"));
    let ephemeral = FILE.replace("ephemeral = true", "ephemeral = \"yes\"");
    assert!(load(&ephemeral, "ci", &[]).unwrap_err().to_string().contains("ephemeral"));
}

#[test]
fn fifo_queues_use_high_throughput_unless_configured_otherwise() {
    let dev = plan_of(&load(FILE, "dev", &[]).unwrap());
    let fifo: Vec<_> =
        dev.resources.iter().filter(|r| r.kind == ResourceKind::Queue && r.spec["fifo"] == true).collect();
    assert_eq!(fifo.len(), 2, "the command queue and its dead-letter queue");
    for queue in &fifo {
        assert_eq!(queue.spec["deduplicationScope"], "messageGroup", "{}", queue.name);
        assert_eq!(queue.spec["fifoThroughputLimit"], "perMessageGroupId", "{}", queue.name);
    }
    let failures = spec(&dev, ResourceKind::Queue, "shop-dev-orders-stream-failures");
    assert!(failures.get("deduplicationScope").is_none(), "a standard queue has no FIFO settings: {failures}");

    let per_queue = format!("{FILE}\n[queues]\nhigh_throughput = false\n");
    let dev = plan_of(&load(&per_queue, "dev", &[]).unwrap());
    let commands = spec(&dev, ResourceKind::Queue, "shop-dev-orders-Orders_Commands.fifo");
    assert_eq!(
        (&commands["deduplicationScope"], &commands["fifoThroughputLimit"]),
        (&json!("queue"), &json!("perQueue"))
    );
}

#[test]
fn each_plugin_stack_records_the_source_that_deployed_it() {
    let output =
        |plan: &Plan| spec(plan, ResourceKind::Parameter, "/reventless/shop/dev/orders/deployed-from")["value"].clone();
    // Default: the directory holding the file (here the crate's, the tests' working directory).
    let config = load(FILE, "dev", &[]).unwrap();
    assert_eq!(config.source, "reventless-aws");
    assert_eq!(output(&plan_of(&config)), "reventless-aws");
    let named = load(&FILE.replace("project = \"shop\"", "project = \"shop\"\nsource = \"shop-backend\""), "dev", &[]);
    assert_eq!(output(&plan_of(&named.unwrap())), "shop-backend");
    let from_env = load(FILE, "dev", &[("REVENTLESS_SOURCE", "ci-checkout")]).unwrap();
    assert_eq!(from_env.source, "ci-checkout");
    let in_dir = ProjectConfig::from_texts(FILE, None, "dev", &|_| None, PathBuf::from("/srv/shop backend")).unwrap();
    assert_eq!(in_dir.source, "shop-backend", "a directory name that does not exist is used as written, cleaned");
    let bad = load(FILE, "dev", &[("REVENTLESS_SOURCE", "a/b")]).unwrap_err().to_string();
    assert!(bad.contains("`source`") && bad.contains("a/b"), "{bad}");
    // The platform stack records none (it is shared by every source of the stage).
    assert!(
        plan_of(&config).resources.iter().all(|r| !r.name.starts_with("/reventless/shop/dev/platform/deployed-from"))
    );
}
