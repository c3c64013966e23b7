//! The plan of a plugin with file tasks: its bucket, the notification
//! queue with its policy and dead-letter queue, the task function with its
//! role and mapping — with exact ARNs.
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
[plugins.catalog.groups.Tasks]
timeout = 300
[plugins.ordering]
name = "Ordering"
[stages.dev]
region = "eu-west-1"
"#;
const ACCOUNT: &str = "123456789012";
const BUCKET: &str = "shop-dev-catalog-tasks-123456789012-eu-west-1";
const QUEUE_ARN: &str = "arn:aws:sqs:eu-west-1:123456789012:shop-dev-catalog-tasks";

fn manifest(plugin: &str, tasks: &[&str]) -> Manifest {
    let mut components = vec![json!({"kind": "StateChangeSlice", "name": "AddProduct", "consumes": [], "produces": [],
        "log": {"kind": "Plugin", "name": plugin}, "async": true})];
    for task in tasks {
        components.push(json!({"kind": "Task", "name": task, "consumes": [], "produces": [], "log": null,
            "table": format!("{plugin}_{task}Runs"), "async": false}));
    }
    serde_json::from_value(json!({
        "plugin": plugin, "version": "1.0.0", "components": components,
        "storage": {"logs": [plugin], "tables": [], "command_topics": [format!("{plugin}_Commands")]}
    }))
    .unwrap()
}

fn planned() -> Plan {
    let config = ProjectConfig::from_texts(FILE, None, "dev", &|_| None, PathBuf::from(".")).unwrap();
    let manifests = BTreeMap::from([
        ("catalog".to_string(), manifest("Catalog", &["ImportProducts", "ImportCategories"])),
        ("ordering".to_string(), manifest("Ordering", &[])),
    ]);
    plan(&config, ACCOUNT, &manifests).unwrap()
}

fn find<'a>(plan: &'a Plan, kind: ResourceKind, name: &str) -> &'a Resource {
    plan.resources.iter().find(|r| r.kind == kind && r.name == name).unwrap_or_else(|| panic!("{kind:?} {name}"))
}

#[test]
fn a_stack_with_tasks_gets_a_private_bucket_notifying_a_standard_queue() {
    let plan = planned();
    let bucket = find(&plan, ResourceKind::Bucket, BUCKET);
    assert_eq!(bucket.stack, "catalog");
    assert_eq!(bucket.tags["reventless:stage"], "dev");
    assert_eq!(bucket.tags["reventless:plugin"], "catalog");
    assert_eq!(
        bucket.spec,
        json!({"blockPublicAccess": true, "encryption": "AES256", "notifications": [
            {"id": "ImportCategories", "queueArn": QUEUE_ARN, "events": ["s3:ObjectCreated:*"], "prefix": "tasks/ImportCategories/"},
            {"id": "ImportProducts", "queueArn": QUEUE_ARN, "events": ["s3:ObjectCreated:*"], "prefix": "tasks/ImportProducts/"},
        ]})
    );
    let queue = find(&plan, ResourceKind::Queue, "shop-dev-catalog-tasks");
    assert_eq!(queue.spec["fifo"], false, "S3 cannot notify FIFO queues");
    assert_eq!(queue.spec["redriveTo"], "shop-dev-catalog-tasks-dlq");
    assert_eq!(queue.spec["visibilityTimeout"], 1800, "six times the function's timeout");
    assert_eq!(
        queue.spec["policy"],
        json!({"Version": "2012-10-17", "Statement": [{
            "Sid": "reventless-s3-notifications", "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sqs:SendMessage", "Resource": QUEUE_ARN,
            "Condition": {"ArnEquals": {"aws:SourceArn": format!("arn:aws:s3:::{BUCKET}")},
                          "StringEquals": {"aws:SourceAccount": ACCOUNT}},
        }]})
    );
    let dead_letters = find(&plan, ResourceKind::Queue, "shop-dev-catalog-tasks-dlq");
    assert_eq!(dead_letters.spec["fifo"], false);
    assert!(dead_letters.wave() < queue.wave() && queue.wave() <= bucket.wave(), "DLQ, queue, then the bucket");
    let output = find(&plan, ResourceKind::Parameter, "/reventless/shop/dev/catalog/tasks-bucket");
    assert_eq!(output.spec["value"], BUCKET);
    assert!(
        !plan.resources.iter().any(|r| r.stack == "ordering"
            && (r.kind == ResourceKind::Bucket || r.name.contains("Tasks") || r.name.contains("tasks"))),
        "a plugin without tasks gets none of it"
    );
}

#[test]
fn the_task_function_drains_the_queue_and_reads_exactly_its_uploads() {
    let plan = planned();
    let function = find(&plan, ResourceKind::Function, "shop-dev-catalog-CatalogTasks");
    assert_eq!(function.spec["timeout"], 300, "tuned as groups.Tasks");
    let config: Value =
        serde_json::from_str(function.spec["environment"]["REVENTLESS_CONFIG"].as_str().unwrap()).unwrap();
    assert_eq!(config["role"], "CatalogTasks");
    assert_eq!(config["stores"]["events_table"], "shop-dev-catalog-events");
    let mapping = find(&plan, ResourceKind::EventSourceMapping, "shop-dev-catalog-CatalogTasks:commands");
    assert_eq!(
        mapping.spec,
        json!({"function": "shop-dev-catalog-CatalogTasks", "queue": "shop-dev-catalog-tasks", "batchSize": 1,
               "functionResponseTypes": ["ReportBatchItemFailures"]})
    );
    let role = find(&plan, ResourceKind::Role, "shop-dev-catalog-CatalogTasks");
    assert_eq!(role.spec["trust"], "lambda.amazonaws.com");
    let statements = role.spec["policy"]["Statement"].as_array().unwrap();
    let granted = |action: &str| -> Vec<String> {
        let mut resources: Vec<String> = statements
            .iter()
            .filter(|s| s["Action"].as_array().unwrap().iter().any(|a| a == action))
            .flat_map(|s| s["Resource"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()))
            .collect();
        resources.sort();
        resources
    };
    assert_eq!(
        granted("s3:GetObject"),
        vec![
            format!("arn:aws:s3:::{BUCKET}/tasks/ImportCategories/*"),
            format!("arn:aws:s3:::{BUCKET}/tasks/ImportProducts/*"),
        ]
    );
    for action in ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"] {
        assert_eq!(granted(action), vec![QUEUE_ARN.to_string()], "{action}");
    }
    // What running the records' commands needs: the tables, their indexes,
    // the plugin's async command queue.
    assert_eq!(
        granted("dynamodb:PutItem"),
        vec![
            "arn:aws:dynamodb:eu-west-1:123456789012:table/shop-dev-catalog-events",
            "arn:aws:dynamodb:eu-west-1:123456789012:table/shop-dev-catalog-rows",
        ]
    );
    assert!(
        granted("dynamodb:Query").contains(
            &"arn:aws:dynamodb:eu-west-1:123456789012:table/shop-dev-catalog-events/index/by_log".to_string()
        )
    );
    assert_eq!(
        granted("sqs:SendMessage"),
        vec!["arn:aws:sqs:eu-west-1:123456789012:shop-dev-catalog-Catalog_Commands.fifo".to_string()]
    );
    assert_eq!(
        granted("logs:PutLogEvents"),
        vec!["arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/shop-dev-catalog-CatalogTasks:*".to_string()]
    );
    for statement in statements {
        for resource in statement["Resource"].as_array().unwrap() {
            assert_ne!(resource, "*", "no statement grants everything");
        }
    }
    let other_roles: Vec<&Resource> =
        plan.resources.iter().filter(|r| r.kind == ResourceKind::Role && r.name != role.name).collect();
    for other in other_roles {
        assert!(!other.spec["policy"].to_string().contains("s3:"), "{} may not read uploads", other.name);
    }
}

#[test]
fn the_task_group_is_a_tuning_key_only_where_there_are_tasks() {
    let file = FILE.replace(
        "[plugins.ordering]\nname = \"Ordering\"",
        "[plugins.ordering]\nname = \"Ordering\"\n[plugins.ordering.groups.Tasks]\ntimeout = 60",
    );
    let config = ProjectConfig::from_texts(&file, None, "dev", &|_| None, PathBuf::from(".")).unwrap();
    let manifests = BTreeMap::from([
        ("catalog".to_string(), manifest("Catalog", &["ImportProducts"])),
        ("ordering".to_string(), manifest("Ordering", &[])),
    ]);
    let error = plan(&config, ACCOUNT, &manifests).unwrap_err().to_string();
    assert!(error.contains("groups.Tasks") && error.contains("ordering"), "{error}");
}
