//! Tables and queues as deployed to the emulator, read back from the
//! services themselves: point-in-time recovery, deletion protection, billing
//! and FIFO throughput; drift made behind the deployer's back is found and
//! repaired; protected tables are not deleted without --allow-data-loss;
//! stacks removed from the file are pruned (tables only when allowed).
#![cfg(feature = "deploy")]
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::{BillingMode, PointInTimeRecoverySpecification, PointInTimeRecoveryStatus};
use aws_sdk_sqs::types::QueueAttributeName;
use reventless_aws::deploy::apply::{Change, Clients, CodeZip};
use reventless_aws::deploy::config::ProjectConfig;
use reventless_aws::deploy::destroy::{DestroyOptions, destroy, destroy_with};
use reventless_aws::deploy::plan::ResourceKind;
use reventless_aws::deploy::run::{self, DeployOptions, Inputs};
use reventless_aws::emulator::Emulator;
use reventless_core::Manifest;
use serde_json::json;

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

/// Code the emulator stores (it never runs it).
fn code() -> CodeZip {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("bootstrap");
    std::fs::write(&binary, b"#!/bin/sh\n").unwrap();
    let bytes = reventless_aws::package::zip_bytes(&binary, &[]).unwrap();
    CodeZip { package: reventless_aws::package::describe(&bytes, &binary), bytes: Arc::new(bytes) }
}

/// The stage's inputs: with the Orders stack, or (`orders` false) without it.
fn inputs(stage: &str, extra: &str, orders: bool) -> Inputs {
    let stack = if orders { "[plugins.orders]\nname = \"Orders\"\n" } else { "" };
    let file = format!("project = \"safe\"\n{stack}[stages.{stage}]\n{extra}\n");
    let config = ProjectConfig::from_texts(&file, None, stage, &|_| None, PathBuf::from(".")).unwrap();
    let (manifests, code) = if orders {
        (BTreeMap::from([("orders".to_string(), manifest())]), BTreeMap::from([("orders".to_string(), code())]))
    } else {
        (BTreeMap::new(), BTreeMap::new())
    };
    Inputs { config, manifests, code }
}

fn unique_stage(prefix: &str) -> String {
    format!("{prefix}{}", &uuid::Uuid::now_v7().simple().to_string()[26..])
}

struct Services {
    clients: Clients,
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
}

async fn services() -> Services {
    let sdk = Emulator::shared().expect("the AWS emulator (moto) must run for these tests").sdk_config().await;
    Services {
        clients: Clients::new(&sdk),
        dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
        sqs: aws_sdk_sqs::Client::new(&sdk),
    }
}

/// A table as DynamoDB describes it: (deletion protection, PITR on, billing, (read, write) of the table and each index).
async fn table(services: &Services, name: &str) -> (bool, bool, BillingMode, Vec<(i64, i64)>) {
    let described = services.dynamodb.describe_table().table_name(name).send().await.unwrap();
    let table = described.table().unwrap();
    let backups = services.dynamodb.describe_continuous_backups().table_name(name).send().await.unwrap();
    let recovery = backups.continuous_backups_description().unwrap().point_in_time_recovery_description().unwrap();
    let capacity = |t: Option<&aws_sdk_dynamodb::types::ProvisionedThroughputDescription>| {
        t.map_or((0, 0), |t| (t.read_capacity_units().unwrap_or(0), t.write_capacity_units().unwrap_or(0)))
    };
    let mut capacities = vec![capacity(table.provisioned_throughput())];
    capacities.extend(table.global_secondary_indexes().iter().map(|index| capacity(index.provisioned_throughput())));
    (
        table.deletion_protection_enabled().unwrap_or(false),
        recovery.point_in_time_recovery_status() == Some(&PointInTimeRecoveryStatus::Enabled),
        table.billing_mode_summary().and_then(|s| s.billing_mode()).cloned().unwrap_or(BillingMode::Provisioned),
        capacities,
    )
}

/// A queue's (DeduplicationScope, FifoThroughputLimit).
async fn throughput(services: &Services, queue: &str) -> (String, String) {
    let url = services.sqs.get_queue_url().queue_name(queue).send().await.unwrap();
    let attributes = services
        .sqs
        .get_queue_attributes()
        .queue_url(url.queue_url().unwrap())
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let map = attributes.attributes().unwrap();
    (map[&QueueAttributeName::DeduplicationScope].clone(), map[&QueueAttributeName::FifoThroughputLimit].clone())
}

async fn set_throughput(services: &Services, queue: &str, scope: &str, limit: &str) {
    let url = services.sqs.get_queue_url().queue_name(queue).send().await.unwrap();
    services
        .sqs
        .set_queue_attributes()
        .queue_url(url.queue_url().unwrap())
        .attributes(QueueAttributeName::DeduplicationScope, scope)
        .attributes(QueueAttributeName::FifoThroughputLimit, limit)
        .send()
        .await
        .unwrap();
}

/// The updates a plan reports: (kind, name, fields), sorted.
async fn updates(services: &Services, inputs: &Inputs) -> Vec<(ResourceKind, String, Vec<String>)> {
    let (_, planned) = run::plan_stage(&services.clients, inputs, &DeployOptions::default()).await.unwrap();
    let mut updates: Vec<_> = planned
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::Update { kind, name, fields, .. } => Some((*kind, name.clone(), fields.clone())),
            _ => None,
        })
        .collect();
    updates.sort();
    updates
}

async fn exists(services: &Services, table: &str) -> bool {
    services.dynamodb.describe_table().table_name(table).send().await.is_ok()
}

async fn output(services: &Services, path: &str) -> Option<String> {
    let found = services.clients.ssm.get_parameter().name(path).send().await.ok()?;
    found.parameter().and_then(|p| p.value()).map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_tables_are_read_back_repaired_and_kept_until_data_loss_is_allowed() {
    let services = services().await;
    let stage = unique_stage("s");
    let inputs = inputs(&stage, "", true);
    let report = run::deploy(&services.clients, &inputs, &DeployOptions::default(), &|_| {}).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);

    // Read back from DynamoDB and SQS, not from the deployer.
    let (events, rows) = (format!("safe-{stage}-orders-events"), format!("safe-{stage}-orders-rows"));
    for name in [&events, &rows] {
        let (protected, recovery, billing, _) = table(&services, name).await;
        assert_eq!((protected, recovery, billing), (true, true, BillingMode::PayPerRequest), "{name}");
    }
    let (commands, dead_letters) =
        (format!("safe-{stage}-orders-Orders_Commands.fifo"), format!("safe-{stage}-orders-Orders_Commands-dlq.fifo"));
    for queue in [&commands, &dead_letters] {
        let high = ("messageGroup".to_string(), "perMessageGroupId".to_string());
        assert_eq!(throughput(&services, queue).await, high, "{queue}");
    }
    assert_eq!(
        output(&services, &format!("/reventless/safe/{stage}/orders/deployed-from")).await.unwrap(),
        "reventless-aws"
    );

    // Changed behind the deployer's back: drift, shown by plan and status, repaired by deploy.
    services.dynamodb.update_table().table_name(&events).deletion_protection_enabled(false).send().await.unwrap();
    let off = PointInTimeRecoverySpecification::builder().point_in_time_recovery_enabled(false).build().unwrap();
    services
        .dynamodb
        .update_continuous_backups()
        .table_name(&rows)
        .point_in_time_recovery_specification(off)
        .send()
        .await
        .unwrap();
    set_throughput(&services, &commands, "queue", "perQueue").await;
    let drift = vec![
        (ResourceKind::Table, events.clone(), vec!["deletionProtection".to_string()]),
        (ResourceKind::Table, rows.clone(), vec!["pointInTimeRecovery".to_string()]),
        (
            ResourceKind::Queue,
            commands.clone(),
            vec!["deduplicationScope".to_string(), "fifoThroughputLimit".to_string()],
        ),
    ];
    let mut found = updates(&services, &inputs).await;
    found.sort_by_key(|(kind, _, _)| *kind);
    assert_eq!(found, drift);
    let statuses = run::status(&services.clients, &inputs).await.unwrap();
    let drifted: Vec<&str> = statuses.iter().filter(|s| s.state == "drifted").map(|s| s.name.as_str()).collect();
    assert_eq!(drifted.len(), 3, "{drifted:?}");
    let report = run::deploy(&services.clients, &inputs, &DeployOptions::default(), &|_| {}).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(table(&services, &events).await.0, "protection back on");
    assert!(table(&services, &rows).await.1, "recovery back on");
    assert_eq!(throughput(&services, &commands).await.1, "perMessageGroupId");
    assert_eq!(updates(&services, &inputs).await, vec![], "no drift left");

    // Protection is real: DynamoDB itself refuses to delete the table.
    assert!(services.dynamodb.delete_table().table_name(&events).send().await.is_err());

    // Orders leaves the file: the deploy prunes it, keeping its tables (no --allow-data-loss).
    let without = self::inputs(&stage, "", false);
    let (_, planned) = run::plan_stage(&services.clients, &without, &DeployOptions::default()).await.unwrap();
    let deleted: Vec<&Change> = planned.changes.iter().filter(|c| matches!(c, Change::Delete { .. })).collect();
    assert!(deleted.iter().all(|c| matches!(c, Change::Delete { stack, .. } if stack == "orders")), "{deleted:?}");
    assert!(deleted.iter().any(|c| matches!(c, Change::Delete { kind: ResourceKind::Function, .. })), "{deleted:?}");
    let report = run::deploy(&services.clients, &without, &DeployOptions::default(), &|_| {}).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.skipped.len(), 2, "both tables kept: {:?}", report.skipped);
    assert!(report.skipped.iter().all(|s| s.contains("--allow-data-loss")), "{:?}", report.skipped);
    assert!(exists(&services, &events).await && exists(&services, &rows).await);
    let commands_left = services.sqs.get_queue_url().queue_name(&commands).send().await;
    assert!(commands_left.is_err(), "the rest of the stack is gone");
    let deployed_from = format!("/reventless/safe/{stage}/orders/deployed-from");
    assert!(output(&services, &deployed_from).await.is_some(), "kept: the stack is still this source's to remove");

    // destroy --plugin without --allow-data-loss keeps them too; a whole-stage
    // destroy without it is refused on them (protection on), and removes the rest.
    let options = DestroyOptions { plugin: Some("orders".into()), allow_data_loss: false };
    let kept = destroy_with(&services.clients, &without.config, &options, &|_| {}).await.unwrap();
    assert_eq!((kept.kept.len(), kept.failures.len()), (2, 0), "{kept:?}");
    let (_, failures) = destroy(&services.clients, &without.config, &|_| {}).await.unwrap();
    let refused: Vec<&str> = failures.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(refused.len(), 2, "{failures:?}");
    assert!(refused.contains(&events.as_str()) && refused.contains(&rows.as_str()), "{failures:?}");
    assert!(failures.iter().all(|f| f.error.contains("deletion protection")), "{failures:?}");
    assert!(exists(&services, &events).await, "still there");

    // With --allow-data-loss: protection turned off (said so), everything gone.
    let lines = Mutex::new(Vec::new());
    let options = DestroyOptions { plugin: None, allow_data_loss: true };
    let report = destroy_with(&services.clients, &without.config, &options, &|line| lines.lock().unwrap().push(line))
        .await
        .unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let lines = lines.into_inner().unwrap();
    assert!(
        lines.iter().any(|l| l == &format!("deletion protection of table {events} turned off (--allow-data-loss)"))
    );
    assert_eq!(services.clients.discover("safe", &stage).await.unwrap(), vec![], "nothing of the stage remains");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ephemeral_stage_has_no_protection_provisioned_billing_and_queue_throughput_as_configured() {
    let services = services().await;
    let stage = unique_stage("e");
    let extra = format!(
        "ephemeral = true\n[stages.{stage}.tables]\nbilling_mode = \"PROVISIONED\"\nread_capacity = 3\n\
         write_capacity = 2\n[stages.{stage}.queues]\nhigh_throughput = false\n"
    );
    let inputs = inputs(&stage, &extra, true);
    let report = run::deploy(&services.clients, &inputs, &DeployOptions::default(), &|_| {}).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let (events, rows) = (format!("safe-{stage}-orders-events"), format!("safe-{stage}-orders-rows"));
    for name in [&events, &rows] {
        let (protected, recovery, billing, capacities) = table(&services, name).await;
        assert_eq!((protected, recovery, billing), (false, false, BillingMode::Provisioned), "{name}");
        assert!(
            capacities.len() > 1 && capacities.iter().all(|c| *c == (3, 2)),
            "{name}: the table and its indexes: {capacities:?}"
        );
    }
    let commands = format!("safe-{stage}-orders-Orders_Commands.fifo");
    assert_eq!(throughput(&services, &commands).await, ("queue".to_string(), "perQueue".to_string()));

    // Switched to on demand behind our back: drift, and back to provisioned (indexes included).
    services.dynamodb.update_table().table_name(&events).billing_mode(BillingMode::PayPerRequest).send().await.unwrap();
    let found = updates(&services, &inputs).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].1.as_str(), found[0].2.first().map(String::as_str)), (events.as_str(), Some("billingMode")));
    let report = run::deploy(&services.clients, &inputs, &DeployOptions::default(), &|_| {}).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let (_, _, billing, capacities) = table(&services, &events).await;
    assert_eq!(billing, BillingMode::Provisioned);
    assert!(capacities.iter().all(|c| *c == (3, 2)), "{capacities:?}");

    // Removed from the file: kept tables first, then removed with --allow-data-loss
    // by a later deploy (the stack is still recognized as this source's).
    let without = self::inputs(&stage, "ephemeral = true", false);
    let report = run::deploy(&services.clients, &without, &DeployOptions::default(), &|_| {}).await.unwrap();
    assert_eq!((report.failures.len(), report.skipped.len()), (0, 2), "{report:?}");
    let allowed = DeployOptions { plugin: None, allow_data_loss: true };
    let lines = Mutex::new(Vec::new());
    let report =
        run::deploy(&services.clients, &without, &allowed, &|line| lines.lock().unwrap().push(line)).await.unwrap();
    assert!(report.failures.is_empty() && report.skipped.is_empty(), "{report:?}");
    assert!(!exists(&services, &events).await && !exists(&services, &rows).await, "both tables gone");
    assert!(!lines.into_inner().unwrap().iter().any(|l| l.contains("deletion protection")), "none was on");
    let deployed_from = format!("/reventless/safe/{stage}/orders/deployed-from");
    assert_eq!(output(&services, &deployed_from).await, None, "with its tables gone, the stack is forgotten");
    let (_, failures) = destroy(&services.clients, &without.config, &|_| {}).await.unwrap();
    assert!(failures.is_empty(), "an ephemeral stage is destroyed without --allow-data-loss: {failures:?}");
}
