//! Deploying the shop (platform + Catalog + Ordering) to the emulator, and
//! checking what exists by reading it back, not by trusting the deployer.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use reventless_aws::deploy::apply::{Change, Clients, CodeZip, DeployError};
use reventless_aws::deploy::config::ProjectConfig;
use reventless_aws::deploy::inputs::{Bootstraps, prepare};
use reventless_aws::deploy::plan::{ResourceKind, TAG_COMPONENT, TAG_PLUGIN, TAG_PROJECT, TAG_STAGE};
use reventless_aws::deploy::run::{self, DeployOptions, Inputs};
use reventless_aws::emulator::Emulator;
use reventless_core::Manifest;
use reventless_core::plugin::ComponentKind;
use serde_json::Value;

const SHOP_TOML: &str = include_str!("../../online-shop/reventless.toml");

/// The plugin binaries (stripped copies: debug info makes no difference to a deploy) → manifests and zips.
fn built() -> &'static (BTreeMap<String, Manifest>, BTreeMap<String, CodeZip>) {
    static BUILT: OnceLock<(BTreeMap<String, Manifest>, BTreeMap<String, CodeZip>)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("reventless-deploy-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut paths = BTreeMap::new();
        for (stack, binary) in [
            ("catalog", env!("CARGO_BIN_EXE_catalog-lambda")),
            ("ordering", env!("CARGO_BIN_EXE_ordering-lambda")),
            ("platform", env!("CARGO_BIN_EXE_platform-gateway")),
        ] {
            let stripped = dir.join(stack);
            let status = std::process::Command::new("strip").arg("-o").arg(&stripped).arg(binary).status();
            if !status.is_ok_and(|s| s.success()) {
                std::fs::copy(binary, &stripped).unwrap();
            }
            paths.insert(stack.to_string(), stripped);
        }
        let config = config("built", "");
        let inputs = prepare(config, &Bootstraps::Paths(paths), &|_| {}).unwrap();
        (inputs.manifests, inputs.code)
    })
}

/// The shop's project file with a stage of its own (and extra lines for it);
/// ephemeral: these stages are destroyed without --allow-data-loss.
fn config(stage: &str, extra: &str) -> ProjectConfig {
    let text = format!("{SHOP_TOML}\n[stages.{stage}]\nephemeral = true\n{extra}\n");
    ProjectConfig::from_texts(&text, None, stage, &|_| None, PathBuf::from(".")).unwrap()
}

fn inputs(config: ProjectConfig) -> Inputs {
    let (manifests, code) = built();
    Inputs { config, manifests: manifests.clone(), code: code.clone() }
}

async fn clients() -> Clients {
    let emulator = Emulator::shared().expect("the AWS emulator (moto) must run for these tests");
    Clients::new(&emulator.sdk_config().await)
}

fn unique_stage(prefix: &str) -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("{prefix}{}", &id[26..])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_is_deployed_read_back_updated_pruned_and_destroyed() {
    let clients = clients().await;
    let stage = unique_stage("d");
    let first_inputs = inputs(config(&stage, ""));
    let report = run::deploy(&clients, &first_inputs, &DeployOptions::default(), &|_| {}).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(
        report.uploaded, 13,
        "the gateway, seven Catalog (with CatalogStateChanges for the commands Catalog.Products accepts, and \
         CatalogTasks) and five Ordering functions"
    );

    // Every planned resource exists with the planned settings (read back).
    let (plan, _) = run::plan_stage(&clients, &first_inputs, &DeployOptions::default()).await.unwrap();
    for planned in &plan.resources {
        // With the WebSocket API's id in place of its name, as the diff reads it.
        let resource = &clients.resolve_late(planned, true).await.unwrap();
        let observed = clients.observe(resource).await.unwrap();
        let actual = observed.unwrap_or_else(|| panic!("{:?} {} missing", resource.kind, resource.name));
        let drift = reventless_aws::deploy::apply::changed_fields(&resource.spec, &actual);
        assert!(drift.is_empty(), "{:?} {} differs in {drift:?}", resource.kind, resource.name);
    }
    let functions: Vec<_> = plan.resources.iter().filter(|r| r.kind == ResourceKind::Function).collect();
    assert_eq!(functions.len(), 13);
    let schedules: Vec<_> = plan.resources.iter().filter(|r| r.kind == ResourceKind::Schedule).collect();
    assert_eq!(schedules.len(), 3, "a heartbeat schedule per plugin and Ordering's CancelUnpaidOrders");
    let unpaid = schedules.iter().find(|r| r.component == "CancelUnpaidOrders").unwrap();
    assert_eq!(unpaid.spec["function"], format!("shop-{stage}-ordering-OrderingHeartbeat"));

    // Tags, read from the services.
    let lambda = aws_sdk_lambda::Client::new(&Emulator::shared().unwrap().sdk_config().await);
    let api = format!("shop-{stage}-catalog-CatalogApi");
    let described = lambda.get_function().function_name(&api).send().await.unwrap();
    let tags = described.tags().unwrap();
    assert_eq!(tags.get(TAG_PROJECT).map(String::as_str), Some("shop"));
    assert_eq!(tags.get(TAG_STAGE), Some(&stage));
    assert_eq!(tags.get(TAG_PLUGIN).map(String::as_str), Some("catalog"));
    assert_eq!(tags.get(TAG_COMPONENT).map(String::as_str), Some("CatalogApi"));
    let configuration = described.configuration().unwrap();
    assert_eq!(configuration.memory_size(), Some(512), "the Api group's tuning from reventless.toml");
    assert_eq!(configuration.handler(), Some("bootstrap"));
    let env = configuration.environment().unwrap().variables().unwrap();
    let function_config: Value = serde_json::from_str(&env["REVENTLESS_CONFIG"]).unwrap();
    assert_eq!(function_config["role"], "CatalogApi");
    assert_eq!(function_config["stores"]["events_table"], format!("shop-{stage}-catalog-events"));
    // The gateway reads the registry heartbeats write, and may invoke exactly the plugin APIs.
    let gateway = lambda.get_function().function_name(format!("shop-{stage}-platform-Gateway")).send().await.unwrap();
    let gateway_env = gateway.configuration().unwrap().environment().unwrap().variables().unwrap();
    let gateway_config: Value = serde_json::from_str(&gateway_env["REVENTLESS_GATEWAY"]).unwrap();
    assert_eq!(gateway_config["registry"], format!("shop-{stage}-platform-registry"));
    assert_eq!(gateway.tags().unwrap().get(TAG_PLUGIN).map(String::as_str), Some("platform"));
    let heartbeat = lambda
        .get_function_configuration()
        .function_name(format!("shop-{stage}-ordering-OrderingHeartbeat"))
        .send()
        .await
        .unwrap();
    let heartbeat_config: Value =
        serde_json::from_str(&heartbeat.environment().unwrap().variables().unwrap()["REVENTLESS_CONFIG"]).unwrap();
    assert_eq!(heartbeat_config["api_function"], format!("shop-{stage}-ordering-OrderingApi"));
    let dynamodb = aws_sdk_dynamodb::Client::new(&Emulator::shared().unwrap().sdk_config().await);
    let table = dynamodb.describe_table().table_name(format!("shop-{stage}-ordering-events")).send().await.unwrap();
    let arn = table.table().unwrap().table_arn().unwrap().to_string();
    let table_tags = dynamodb.list_tags_of_resource().resource_arn(arn).send().await.unwrap();
    assert!(table_tags.tags().iter().any(|t| t.key() == TAG_PLUGIN && t.value() == "ordering"));
    assert!(table.table().unwrap().stream_specification().unwrap().stream_enabled());

    // Every IAM statement names ARNs (never `*`).
    let iam = aws_sdk_iam::Client::new(&Emulator::shared().unwrap().sdk_config().await);
    for role in plan.resources.iter().filter(|r| r.kind == ResourceKind::Role) {
        let policy = iam.get_role_policy().role_name(&role.name).policy_name("reventless").send().await.unwrap();
        let document = policy.policy_document();
        let decoded: Value =
            serde_json::from_str(document).unwrap_or_else(|_| serde_json::from_str(&urldecode(document)).unwrap());
        for statement in decoded["Statement"].as_array().unwrap() {
            for resource in statement["Resource"].as_array().unwrap() {
                let arn = resource.as_str().unwrap();
                assert!(arn != "*" && arn.starts_with("arn:aws:"), "{} grants {arn}", role.name);
            }
        }
    }

    // A second deploy changes nothing and uploads nothing.
    let again = run::deploy(&clients, &first_inputs, &DeployOptions::default(), &|_| {}).await.unwrap();
    assert_eq!(again.changes, vec![], "a redeploy has nothing to do");
    assert_eq!((again.applied, again.uploaded), (0, 0));

    // A tuning change updates only that function.
    let tuned = inputs(config(
        &stage,
        "[stages.STAGE.plugins.catalog.groups.AllReadModels]\nmemory_size = 256".replace("STAGE", &stage).as_str(),
    ));
    let report = run::deploy(&clients, &tuned, &DeployOptions::default(), &|_| {}).await.unwrap();
    assert_eq!(
        report.changes,
        vec![Change::Update {
            kind: ResourceKind::Function,
            name: format!("shop-{stage}-catalog-AllReadModels"),
            stack: "catalog".into(),
            fields: vec!["memorySize".into()],
        }]
    );
    assert_eq!(report.uploaded, 0, "configuration only, no code");
    let memory = lambda
        .get_function_configuration()
        .function_name(format!("shop-{stage}-catalog-AllReadModels"))
        .send()
        .await
        .unwrap();
    assert_eq!(memory.memory_size(), Some(256));

    // Removing Ordering's extension of `Catalog.Products` removes its inbox
    // function and queues and its `extends` output; Catalog's publisher stays
    // (every extension point publishes: a subscriber may join from another
    // project file at any time).
    let mut pruned = inputs(tuned.config.clone());
    let ordering = pruned.manifests.get_mut("ordering").unwrap();
    ordering.components.retain(|c| c.kind != ComponentKind::Extension);
    let report = run::deploy(&clients, &pruned, &DeployOptions::default(), &|_| {}).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let publisher = format!("shop-{stage}-catalog-AllAutomationSlices");
    let inbox = format!("shop-{stage}-ordering-OrderingExtensions");
    let mut deleted: Vec<(ResourceKind, String)> = report
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::Delete { kind, name, .. } => Some((*kind, name.clone())),
            _ => None,
        })
        .collect();
    deleted.sort();
    assert_eq!(
        deleted,
        vec![
            (ResourceKind::Queue, format!("shop-{stage}-ordering-Ordering_Extensions-dlq.fifo")),
            (ResourceKind::Queue, format!("shop-{stage}-ordering-Ordering_Extensions.fifo")),
            (ResourceKind::LogGroup, format!("/aws/lambda/{inbox}")),
            (ResourceKind::Role, inbox.clone()),
            (ResourceKind::Function, inbox.clone()),
            (ResourceKind::EventSourceMapping, format!("{inbox}:commands")),
            (ResourceKind::Parameter, format!("/reventless/shop/{stage}/ordering/extends")),
            (ResourceKind::Parameter, format!("/reventless/shop/{stage}/ordering/inbox-queue")),
        ]
    );
    assert!(lambda.get_function().function_name(&inbox).send().await.is_err(), "{inbox} is gone");
    assert!(iam.get_role().role_name(&inbox).send().await.is_err(), "its role is gone");
    assert!(lambda.get_function().function_name(&publisher).send().await.is_ok(), "{publisher} stays");
    let sqs = aws_sdk_sqs::Client::new(&Emulator::shared().unwrap().sdk_config().await);
    let queue = sqs.get_queue_url().queue_name(format!("shop-{stage}-ordering-Ordering_Extensions.fifo")).send().await;
    assert!(queue.is_err(), "the inbox queue is gone");

    // Destroy leaves nothing of the stage.
    let (removed, failures) = run::destroy(&clients, &pruned.config, &|_| {}).await.unwrap();
    assert!(failures.is_empty(), "{failures:?}");
    assert!(removed.len() >= 25, "{}", removed.len());
    let left = clients.discover("shop", &stage).await.unwrap();
    assert_eq!(left, vec![], "nothing tagged for the stage remains");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_to_micro_consolidation_replaces_the_followers_functions() {
    let clients = clients().await;
    let stage = unique_stage("m");
    let single = inputs(config(&stage, ""));
    let report = run::deploy(&clients, &single, &DeployOptions::default(), &|_| {}).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);

    let micro = inputs(config(&stage, "consolidation = \"micro\""));
    let report = run::deploy(&clients, &micro, &DeployOptions::default(), &|_| {}).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let functions = |wanted: fn(&Change) -> bool| -> Vec<String> {
        let mut names: Vec<String> = report
            .changes
            .iter()
            .filter(|c| wanted(c))
            .filter_map(|c| match c {
                Change::Create { kind: ResourceKind::Function, name, .. }
                | Change::Delete { kind: ResourceKind::Function, name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect();
        names.sort();
        names
    };
    let prefix = |names: &[&str], stack: &str| -> Vec<String> {
        names.iter().map(|name| format!("shop-{stage}-{stack}-{name}")).collect()
    };
    let mut created = prefix(
        &[
            "CatalogProductsCommands",
            "Categories",
            "CategoryProductCounts",
            "ProductDemands",
            "ProductStocks",
            "Products",
            "ProductsPublisher",
        ],
        "catalog",
    );
    created.extend(prefix(
        &[
            "AutoShipOrder",
            "AvailableProducts",
            "Customers",
            "OrderConfirmations",
            "Orders",
            "OrdersPublisher",
            "RequestStock",
            "SendOrderConfirmation",
        ],
        "ordering",
    ));
    assert_eq!(functions(|c| matches!(c, Change::Create { .. })), created, "one function per follower");
    let mut deleted = prefix(&["AllAutomationSlices", "AllReadModels", "CatalogStateChanges"], "catalog");
    deleted.extend(prefix(&["AllAutomationSlices", "AllReadModels"], "ordering"));
    assert_eq!(functions(|c| matches!(c, Change::Delete { .. })), deleted, "the consolidated ones go");
    assert!(
        report.warnings.iter().any(|w| w.starts_with("catalog: 6 functions read the events stream")),
        "{:?}",
        report.warnings
    );

    // Read back: a follower function knows its one component and has its own stream mapping.
    let sdk = Emulator::shared().unwrap().sdk_config().await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let orders = format!("shop-{stage}-ordering-Orders");
    let configuration = lambda.get_function_configuration().function_name(&orders).send().await.unwrap();
    let function_config: Value =
        serde_json::from_str(&configuration.environment().unwrap().variables().unwrap()["REVENTLESS_CONFIG"]).unwrap();
    assert_eq!(function_config["role"], "AllReadModels");
    assert_eq!(function_config["components"], serde_json::json!(["Orders"]));
    let mappings = lambda.list_event_source_mappings().function_name(&orders).send().await.unwrap();
    let sources: Vec<&str> = mappings.event_source_mappings().iter().filter_map(|m| m.event_source_arn()).collect();
    assert_eq!(sources.len(), 1, "{sources:?}");
    assert!(sources[0].contains(&format!("table/shop-{stage}-ordering-events/stream/")), "{sources:?}");
    // Only new events of its log wake it (not fence or counter items), and
    // only those the Orders read model consumes (not customers' or products').
    let filter = mappings.event_source_mappings()[0].filter_criteria().unwrap().filters()[0].pattern().unwrap();
    let pattern: Value = serde_json::from_str(filter).unwrap();
    let types = ["OrderCancelled", "OrderPaid", "OrderPlaced", "OrderShipped"];
    assert_eq!(
        pattern,
        serde_json::json!({"eventName": ["INSERT"], "dynamodb": {"NewImage": {"log": {"S": ["d#Ordering"]}, "type": {"S": types}}}})
    );

    let again = run::deploy(&clients, &micro, &DeployOptions::default(), &|_| {}).await.unwrap();
    assert_eq!((again.changes.len(), again.uploaded), (0, 0), "a micro redeploy has nothing to do");
    run::destroy(&clients, &micro.config, &|_| {}).await.unwrap();
}

fn urldecode(text: &str) -> String {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_deploys_of_a_stage_one_is_refused_by_the_lock() {
    let clients = clients().await;
    let stage = unique_stage("l");
    let inputs = inputs(config(&stage, ""));
    let options = DeployOptions::default();
    let (first, second) = tokio::join!(
        run::deploy(&clients, &inputs, &options, &|_| {}),
        run::deploy(&clients, &inputs, &options, &|_| {})
    );
    let locked = [&first, &second].iter().filter(|r| matches!(r, Err(DeployError::Locked { .. }))).count();
    let succeeded = [&first, &second].iter().filter(|r| r.as_ref().is_ok_and(|r| r.failures.is_empty())).count();
    assert_eq!((locked, succeeded), (1, 1), "{first:?} / {second:?}");
    let message = [first, second].into_iter().find_map(Result::err).unwrap().to_string();
    assert!(message.contains("is being deployed"), "{message}");
    // The lock is released: the next deploy runs.
    let after = run::deploy(&clients, &inputs, &options, &|_| {}).await.unwrap();
    assert!(after.changes.is_empty());
    run::destroy(&clients, &inputs.config, &|_| {}).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_whose_dependency_is_not_deployed_is_refused_by_name() {
    let clients = clients().await;
    let stage = unique_stage("p");
    let inputs = inputs(config(&stage, ""));
    let options = DeployOptions { plugin: Some("ordering".into()), allow_data_loss: false };
    let refused = run::deploy(&clients, &inputs, &options, &|_| {}).await.unwrap_err().to_string();
    assert!(refused.contains("platform stack is not deployed"), "{refused}");
    let platform = DeployOptions { plugin: Some("platform".into()), allow_data_loss: false };
    let report = run::deploy(&clients, &inputs, &platform, &|_| {}).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let refused = run::deploy(&clients, &inputs, &options, &|_| {}).await.unwrap_err().to_string();
    assert!(refused.contains("depends on `catalog`") && refused.contains("not deployed"), "{refused}");
    let catalog = DeployOptions { plugin: Some("catalog".into()), allow_data_loss: false };
    let report = run::deploy(&clients, &inputs, &catalog, &|_| {}).await.unwrap();
    assert!(report.failures.is_empty());
    let report = run::deploy(&clients, &inputs, &options, &|_| {}).await.unwrap();
    assert!(report.failures.is_empty(), "ordering deploys once catalog is there");
    run::destroy(&clients, &inputs.config, &|_| {}).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_resource_is_reported_and_unrelated_ones_still_land() {
    let clients = clients().await;
    let stage = unique_stage("f");
    // A layer that does not exist: every function fails, nothing else does.
    let broken = inputs(config(&stage, r#"layers = ["arn:aws:lambda:us-east-1:123456789012:layer:missing:1"]"#));
    let report = run::deploy(&clients, &broken, &DeployOptions::default(), &|_| {}).await.unwrap();
    let failed: Vec<ResourceKind> = report.failures.iter().map(|f| f.kind).collect();
    assert!(!failed.is_empty(), "the missing layer fails the functions");
    assert!(
        failed.iter().all(|kind| matches!(
            kind,
            // The WebSocket API grants API Gateway the gateway function: it hangs on it too.
            ResourceKind::Function
                | ResourceKind::EventSourceMapping
                | ResourceKind::FunctionUrl
                | ResourceKind::WebSocketApi
        )),
        "only the functions and what hangs on them fail: {:?}",
        report.failures
    );
    let (plan, _) = run::plan_stage(&clients, &broken, &DeployOptions::default()).await.unwrap();
    for resource in plan
        .resources
        .iter()
        .filter(|r| matches!(r.kind, ResourceKind::Table | ResourceKind::Role | ResourceKind::Parameter))
    {
        assert!(clients.observe(resource).await.unwrap().is_some(), "{} still landed", resource.name);
    }
    // Fixed configuration: the next deploy creates only what is missing.
    let fixed = inputs(config(&stage, ""));
    let report = run::deploy(&clients, &fixed, &DeployOptions::default(), &|_| {}).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(report.changes.iter().all(|c| !matches!(c, Change::Create { kind: ResourceKind::Table, .. })));
    run::destroy(&clients, &fixed.config, &|_| {}).await.unwrap();
}

/// A deployed stage, its planned command and stream mappings, and what AWS has of a function's mappings.
async fn deployed_mappings(
    prefix: &str,
) -> (Clients, Inputs, reventless_aws::deploy::plan::Resource, reventless_aws::deploy::plan::Resource) {
    let clients = clients().await;
    let inputs = inputs(config(&unique_stage(prefix), ""));
    let report = run::deploy(&clients, &inputs, &DeployOptions::default(), &|_| {}).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let (plan, _) = run::plan_stage(&clients, &inputs, &DeployOptions::default()).await.unwrap();
    let mapping_of = |source: &str| {
        let found =
            plan.resources.iter().find(|r| r.kind == ResourceKind::EventSourceMapping && r.spec.get(source).is_some());
        found.unwrap().clone()
    };
    let (commands, events) = (mapping_of("queue"), mapping_of("table"));
    (clients, inputs, commands, events)
}

async fn mappings_of(
    function: &reventless_aws::deploy::plan::Resource,
) -> Vec<aws_sdk_lambda::types::EventSourceMappingConfiguration> {
    let lambda = aws_sdk_lambda::Client::new(&Emulator::shared().unwrap().sdk_config().await);
    let name = function.spec["function"].as_str().unwrap();
    let listed = lambda.list_event_source_mappings().function_name(name).send().await.unwrap();
    listed.event_source_mappings().to_vec()
}

/// The mapping updates a plan reports: (name, fields).
async fn mapping_updates(clients: &Clients, inputs: &Inputs) -> Vec<(String, Vec<String>)> {
    let (_, planned) = run::plan_stage(clients, inputs, &DeployOptions::default()).await.unwrap();
    planned
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::Update { kind: ResourceKind::EventSourceMapping, name, fields, .. } => {
                Some((name.clone(), fields.clone()))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_without_partial_batch_responses_is_drift_and_the_deploy_sets_them_again() {
    let (clients, inputs, commands, events) = deployed_mappings("r").await;
    let report_failures = vec![aws_sdk_lambda::types::FunctionResponseType::ReportBatchItemFailures];
    // An older deploy (or someone) left both mappings without them: Lambda
    // would ignore the handlers' `batchItemFailures` and retry whole batches.
    let lambda = aws_sdk_lambda::Client::new(&Emulator::shared().unwrap().sdk_config().await);
    for mapping in [&commands, &events] {
        let existing = mappings_of(mapping).await.remove(0);
        assert_eq!(existing.function_response_types(), report_failures.as_slice(), "set on create");
        let uuid = existing.uuid().unwrap();
        let cleared = lambda.update_event_source_mapping().uuid(uuid).set_function_response_types(Some(Vec::new()));
        cleared.send().await.unwrap();
        let actual = clients.observe(mapping).await.unwrap().unwrap();
        let drift = reventless_aws::deploy::apply::changed_fields(&mapping.spec, &actual);
        assert_eq!(drift, vec!["functionResponseTypes"], "{} read back: {actual}", mapping.name);
    }
    let updates = mapping_updates(&clients, &inputs).await;
    for mapping in [&commands, &events] {
        assert!(updates.contains(&(mapping.name.clone(), vec!["functionResponseTypes".into()])), "{updates:?}");
    }

    let report = run::deploy(&clients, &inputs, &DeployOptions::default(), &|_| {}).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    for mapping in [&commands, &events] {
        let repaired = mappings_of(mapping).await;
        assert_eq!(repaired[0].function_response_types(), report_failures.as_slice(), "set on update too");
    }
    let again = run::deploy(&clients, &inputs, &DeployOptions::default(), &|_| {}).await.unwrap();
    assert_eq!(again.changes, vec![], "no drift left");
    run::destroy(&clients, &inputs.config, &|_| {}).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_repointed_at_another_queue_is_drift_and_the_deploy_puts_it_back() {
    let (clients, inputs, commands, events) = deployed_mappings("q").await;
    let planned_queue = commands.spec["queue"].as_str().unwrap().to_string();
    let sdk = Emulator::shared().unwrap().sdk_config().await;
    let (lambda, sqs) = (aws_sdk_lambda::Client::new(&sdk), aws_sdk_sqs::Client::new(&sdk));
    // Someone repoints the command function at another queue (a source
    // cannot be updated: delete, create).
    let elsewhere = format!("elsewhere-{}.fifo", inputs.config.stage);
    let fifo = aws_sdk_sqs::types::QueueAttributeName::FifoQueue;
    let created = sqs.create_queue().queue_name(&elsewhere).attributes(fifo, "true").send().await.unwrap();
    let elsewhere_url = created.queue_url().unwrap().to_string();
    for mapping in mappings_of(&commands).await {
        lambda.delete_event_source_mapping().uuid(mapping.uuid().unwrap()).send().await.unwrap();
    }
    let function = commands.spec["function"].as_str().unwrap();
    let report_failures = aws_sdk_lambda::types::FunctionResponseType::ReportBatchItemFailures;
    lambda
        .create_event_source_mapping()
        .function_name(function)
        .event_source_arn(format!("arn:aws:sqs:us-east-1:123456789012:{elsewhere}"))
        .batch_size(10)
        .function_response_types(report_failures)
        .send()
        .await
        .unwrap();

    // Read back as AWS reports it, not as the plan says.
    let actual = clients.observe(&commands).await.unwrap().unwrap();
    assert_eq!(actual["queue"], elsewhere.as_str(), "{actual}");
    assert_eq!(reventless_aws::deploy::apply::changed_fields(&commands.spec, &actual), vec!["queue"]);
    let stream = clients.observe(&events).await.unwrap().unwrap();
    assert_eq!(stream["table"], format!("shop-{}-{}-events", inputs.config.stage, events.stack), "{stream}");
    assert_eq!(stream["function"], events.spec["function"], "{stream}");
    let updates = mapping_updates(&clients, &inputs).await;
    assert_eq!(updates, vec![(commands.name.clone(), vec!["queue".to_string()])]);

    // The deploy replaces it: the function drains its own queue again.
    let report = run::deploy(&clients, &inputs, &DeployOptions::default(), &|_| {}).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let repaired = mappings_of(&commands).await;
    let sources: Vec<&str> = repaired.iter().filter_map(|m| m.event_source_arn()).collect();
    assert_eq!(sources.len(), 1, "{sources:?}");
    assert!(sources[0].ends_with(&format!(":{planned_queue}")), "{sources:?}");
    let again = run::deploy(&clients, &inputs, &DeployOptions::default(), &|_| {}).await.unwrap();
    assert_eq!(again.changes, vec![], "no drift left");
    run::destroy(&clients, &inputs.config, &|_| {}).await.unwrap();
    sqs.delete_queue().queue_url(elsewhere_url).send().await.unwrap();
}
