//! The project file and the planner, without AWS.
#![cfg(feature = "deploy")]
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::BTreeMap;
use std::path::PathBuf;

use reventless_aws::deploy::config::{ConfigError, ProjectConfig};
use reventless_aws::deploy::plan::{
    FILTER_PATTERN_MAX, PlanError, Resource, ResourceKind, function_units, handler_groups, plan, stream_filter_pattern,
};
use reventless_core::Manifest;
use serde_json::json;

const FILE: &str = r#"
project = "shop"
[defaults]
memory_size = 1024
[plugins.catalog]
name = "Catalog"
[plugins.catalog.groups.Api]
memory_size = 512
[plugins.ordering]
name = "Ordering"
depends_on = ["catalog"]
[stages.dev]
[stages.prod]
region = "eu-west-1"
[stages.prod.defaults]
memory_size = 2048
"#;

fn load(file: &str, local: Option<&str>, stage: &str, env: &[(&str, &str)]) -> Result<ProjectConfig, ConfigError> {
    let env: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    ProjectConfig::from_texts(file, local, stage, &|key| env.get(key).cloned(), PathBuf::from("."))
}

#[test]
fn settings_layer_env_over_local_over_stage_over_file_over_defaults() {
    let dev = load(FILE, None, "dev", &[]).unwrap();
    assert_eq!((dev.region.as_str(), dev.defaults.memory_size, dev.defaults.timeout), ("us-east-1", 1024, 30));
    assert_eq!(dev.tuning("catalog", &["Api"]).memory_size, 512, "group tuning over defaults");
    assert_eq!(dev.tuning("catalog", &["AllReadModels"]).memory_size, 1024);
    let prod = load(FILE, None, "prod", &[]).unwrap();
    assert_eq!((prod.region.as_str(), prod.defaults.memory_size), ("eu-west-1", 2048), "the stage table over the file");
    let local = load(FILE, Some("[defaults]\nmemory_size = 3008\ntimeout = 60"), "prod", &[]).unwrap();
    assert_eq!((local.defaults.memory_size, local.defaults.timeout), (3008, 60), "the local file over the stage");
    let env = load(
        FILE,
        Some("[defaults]\nmemory_size = 3008"),
        "prod",
        &[("REVENTLESS_MEMORY_SIZE", "4096"), ("REVENTLESS_REGION", "us-west-2")],
    )
    .unwrap();
    assert_eq!((env.defaults.memory_size, env.region.as_str()), (4096, "us-west-2"), "the environment over everything");
    let micro = load(FILE, None, "dev", &[("REVENTLESS_CONSOLIDATION", "micro")]).unwrap();
    assert_eq!(micro.consolidation, reventless_aws::deploy::config::Consolidation::Micro);
    let wrong = load(FILE, None, "dev", &[("REVENTLESS_CONSOLIDATION", "tiny")]).unwrap_err();
    assert!(wrong.to_string().contains("REVENTLESS_CONSOLIDATION"), "{wrong}");
    assert_eq!(dev.deploy_order().unwrap(), vec![vec!["catalog".to_string()], vec!["ordering".to_string()]]);
}

#[test]
fn unknown_keys_and_bad_values_name_the_key() {
    let typo = load(&FILE.replace("memory_size = 1024", "memroy_size = 1024"), None, "dev", &[]).unwrap_err();
    assert!(typo.to_string().contains("memroy_size"), "{typo}");
    let small = load(&FILE.replace("memory_size = 1024", "memory_size = 64"), None, "dev", &[]).unwrap_err();
    assert!(small.to_string().contains("defaults.memory_size"), "{small}");
    let retention = load(FILE, Some("[defaults]\nlog_retention_days = 8"), "dev", &[]).unwrap_err();
    assert!(retention.to_string().contains("log_retention_days"), "{retention}");
    let group = load(&FILE.replace("memory_size = 512", "timeout = 901"), None, "dev", &[]).unwrap_err();
    assert!(group.to_string().contains("plugins.catalog.groups.Api.timeout"), "{group}");
    let env = load(FILE, None, "dev", &[("REVENTLESS_TIMEOUT", "soon")]).unwrap_err();
    assert!(env.to_string().contains("REVENTLESS_TIMEOUT"), "{env}");
    let stage = load(FILE, None, "qa", &[]).unwrap_err();
    assert_eq!(stage, ConfigError::UnknownStage("qa".into(), "dev, prod".into()));
    // A stack of another project file is a dependency the deploy checks in SSM; a malformed key is refused.
    let elsewhere = load(&FILE.replace("depends_on = [\"catalog\"]", "depends_on = [\"payments\"]"), None, "dev", &[]);
    assert_eq!(elsewhere.unwrap().deploy_order().unwrap().concat().len(), 2, "payments is not planned here");
    let missing = load(&FILE.replace("depends_on = [\"catalog\"]", "depends_on = [\"Pay ments\"]"), None, "dev", &[])
        .unwrap_err();
    assert_eq!(missing, ConfigError::MissingDependency { plugin: "ordering".into(), missing: "Pay ments".into() });
    let cycle =
        load(&FILE.replace("name = \"Catalog\"", "name = \"Catalog\"\ndepends_on = [\"ordering\"]"), None, "dev", &[])
            .unwrap_err();
    assert!(matches!(cycle, ConfigError::Cycle(_)), "{cycle}");
    let reserved = load(FILE, Some("[defaults.env_vars]\nAWS_REGION = \"x\""), "dev", &[]).unwrap_err();
    assert!(reserved.to_string().contains("env_vars.AWS_REGION"), "{reserved}");
}

/// A manifest with components `C0`, `C1`, … of `kinds`; with `async_topic`
/// its state-change slices are async (on the plugin's DCB log).
fn manifest(plugin: &str, kinds: &[&str], async_topic: bool) -> Manifest {
    let components: Vec<_> = kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            let sliced = *kind == "StateChangeSlice";
            let log = if sliced { json!({"kind": "Plugin", "name": plugin}) } else { json!(null) };
            json!({"kind": kind, "name": format!("C{i}"), "consumes": [], "produces": [], "log": log,
                   "async": async_topic && sliced})
        })
        .collect();
    let topics: Vec<String> = if async_topic { vec![format!("{plugin}_Commands")] } else { vec![] };
    serde_json::from_value(json!({
        "plugin": plugin, "version": "1.0.0", "components": components,
        "storage": {"logs": [plugin], "tables": [], "command_topics": topics}
    }))
    .unwrap()
}

fn manifests() -> BTreeMap<String, Manifest> {
    BTreeMap::from([
        ("catalog".to_string(), manifest("Catalog", &["StateChangeSlice", "StateViewSlice"], false)),
        ("ordering".to_string(), manifest("Ordering", &["StateChangeSlice", "ReadModel", "AutomationSlice"], true)),
    ])
}

#[test]
fn the_plan_names_tags_and_scopes_every_resource() {
    let config = load(FILE, None, "dev", &[]).unwrap();
    let plan = plan(&config, "123456789012", &manifests()).unwrap();
    assert_eq!(
        handler_groups(&manifests()["ordering"]),
        vec!["Api", "Heartbeat", "StateChanges", "AllReadModels", "AllAutomationSlices"]
    );
    let names = |kind: ResourceKind| -> Vec<String> {
        let mut names: Vec<String> = plan.resources.iter().filter(|r| r.kind == kind).map(|r| r.name.clone()).collect();
        names.sort();
        names
    };
    assert_eq!(
        names(ResourceKind::Function),
        vec![
            "shop-dev-catalog-AllReadModels",
            "shop-dev-catalog-CatalogApi",
            "shop-dev-catalog-CatalogHeartbeat",
            "shop-dev-ordering-AllAutomationSlices",
            "shop-dev-ordering-AllReadModels",
            "shop-dev-ordering-OrderingApi",
            "shop-dev-ordering-OrderingHeartbeat",
            "shop-dev-ordering-OrderingStateChanges",
        ]
    );
    assert_eq!(
        names(ResourceKind::Queue),
        vec![
            "shop-dev-catalog-stream-failures",
            "shop-dev-ordering-Ordering_Commands-dlq.fifo",
            "shop-dev-ordering-Ordering_Commands.fifo",
            "shop-dev-ordering-stream-failures",
        ]
    );
    let streamed = plan.resources.iter().find(|r| r.name == "shop-dev-ordering-AllReadModels:events").unwrap();
    assert_eq!(streamed.spec["onFailure"], "shop-dev-ordering-stream-failures");
    assert!(names(ResourceKind::Table).contains(&"shop-dev-platform-deploy".to_string()));
    for resource in &plan.resources {
        assert_eq!(resource.tags.len(), 4, "{} is tagged with project, stage, plugin, component", resource.name);
        assert_eq!(resource.tags["reventless:stage"], "dev");
        if matches!(resource.kind, ResourceKind::Function | ResourceKind::Role) {
            assert!(resource.name.len() <= 64, "{}", resource.name);
        }
        if resource.kind == ResourceKind::Role {
            for statement in resource.spec["policy"]["Statement"].as_array().unwrap() {
                for arn in statement["Resource"].as_array().unwrap() {
                    let arn = arn.as_str().unwrap();
                    assert!(arn != "*" && arn.starts_with("arn:aws:"), "{} grants {arn}", resource.name);
                    assert!(arn.contains("shop-dev-"), "{arn} names this stage's resources");
                }
            }
        }
    }
    let commands = plan.resources.iter().find(|r| r.name == "shop-dev-ordering-Ordering_Commands.fifo").unwrap();
    assert_eq!(commands.spec["redriveTo"], "shop-dev-ordering-Ordering_Commands-dlq.fifo");
    let dead_letters =
        plan.resources.iter().find(|r| r.name == "shop-dev-ordering-Ordering_Commands-dlq.fifo").unwrap();
    assert!(dead_letters.wave() < commands.wave(), "a queue is created after its dead-letter queue");
    let api = plan
        .resources
        .iter()
        .find(|r| r.kind == ResourceKind::Function && r.name == "shop-dev-catalog-CatalogApi")
        .unwrap();
    assert_eq!(api.spec["memorySize"], 512);
    let config_json: serde_json::Value =
        serde_json::from_str(api.spec["environment"]["REVENTLESS_CONFIG"].as_str().unwrap()).unwrap();
    assert_eq!(config_json["role"], "CatalogApi");
}

#[test]
fn long_names_are_shortened_uniquely_and_wrong_manifests_refused() {
    let long = FILE
        .replace("project = \"shop\"", "project = \"a-very-long-project\"")
        .replace("[plugins.ordering]", "[plugins.orderingwithalongname]");
    let config = load(&long, None, "dev", &[]).unwrap();
    let mut manifests = manifests();
    let ordering = manifests.remove("ordering").unwrap();
    manifests.insert("orderingwithalongname".into(), ordering);
    let plan = plan(&config, "123456789012", &manifests).unwrap();
    let functions: Vec<&String> =
        plan.resources.iter().filter(|r| r.kind == ResourceKind::Function).map(|r| &r.name).collect();
    assert!(functions.iter().all(|name| name.len() <= 64), "{functions:?}");
    let unique: std::collections::BTreeSet<_> = functions.iter().collect();
    assert_eq!(unique.len(), functions.len());

    let config = load(FILE, None, "dev", &[]).unwrap();
    let mut swapped = self::manifests();
    swapped.insert("catalog".into(), manifest("Ordering", &[], false));
    assert!(matches!(plan_of(&config, &swapped), Err(PlanError::WrongPlugin { .. })));
}

fn plan_of(
    config: &ProjectConfig,
    manifests: &BTreeMap<String, Manifest>,
) -> Result<reventless_aws::deploy::plan::Plan, PlanError> {
    plan(config, "123456789012", manifests)
}

#[test]
fn the_platform_stack_has_a_registry_and_a_gateway_that_may_invoke_the_stages_functions_also_of_later_plugins() {
    let without = load(FILE, None, "dev", &[]).unwrap();
    let plan_without = plan_of(&without, &manifests()).unwrap();
    assert!(
        plan_without.resources.iter().any(|r| r.name == "shop-dev-platform-registry" && r.kind == ResourceKind::Table)
    );
    assert!(
        !plan_without.resources.iter().any(|r| r.stack == "platform" && r.kind == ResourceKind::Function),
        "no gateway binary named, no gateway"
    );

    let with = load(
        &FILE.replace(
            "[plugins.catalog]\n",
            "[platform]\nbin = \"platform-gateway\"\n[platform.groups.Gateway]\nmemory_size = 256\n[plugins.catalog]\n",
        ),
        None,
        "dev",
        &[],
    )
    .unwrap();
    let plan = plan_of(&with, &manifests()).unwrap();
    let platform: Vec<(ResourceKind, &str)> =
        plan.resources.iter().filter(|r| r.stack == "platform").map(|r| (r.kind, r.name.as_str())).collect();
    for expected in [
        (ResourceKind::Table, "shop-dev-platform-deploy"),
        (ResourceKind::Table, "shop-dev-platform-registry"),
        (ResourceKind::Role, "shop-dev-platform-Gateway"),
        (ResourceKind::LogGroup, "/aws/lambda/shop-dev-platform-Gateway"),
        (ResourceKind::Function, "shop-dev-platform-Gateway"),
        (ResourceKind::FunctionUrl, "shop-dev-platform-Gateway"),
        (ResourceKind::Parameter, "/reventless/shop/dev/platform/registry-table"),
        (ResourceKind::Parameter, "/reventless/shop/dev/platform/gateway-function"),
    ] {
        assert!(platform.contains(&expected), "{expected:?} missing from {platform:?}");
    }
    let role =
        plan.resources.iter().find(|r| r.name == "shop-dev-platform-Gateway" && r.kind == ResourceKind::Role).unwrap();
    let statements = role.spec["policy"]["Statement"].as_array().unwrap();
    let invoke = statements.iter().find(|s| s["Action"] == json!(["lambda:InvokeFunction"])).unwrap();
    assert_eq!(invoke["Resource"], json!(["arn:aws:lambda:us-east-1:123456789012:function:shop-dev-*"]));
    // The platform deployed before `ordering` existed: its gateway may invoke
    // `ordering`'s Api once `deploy --plugin ordering` adds it, without the
    // platform deployed again.
    let before_ordering = load(
        &FILE
            .replace("[plugins.ordering]\nname = \"Ordering\"\ndepends_on = [\"catalog\"]\n", "")
            .replace("[plugins.catalog]\n", "[platform]\nbin = \"platform-gateway\"\n[plugins.catalog]\n"),
        None,
        "dev",
        &[],
    )
    .unwrap();
    let only_catalog: BTreeMap<String, Manifest> =
        manifests().into_iter().filter(|(stack, _)| stack == "catalog").collect();
    let earlier = plan_of(&before_ordering, &only_catalog).unwrap();
    assert!(!earlier.resources.iter().any(|r| r.stack == "ordering"));
    let earlier_role = earlier
        .resources
        .iter()
        .find(|r| r.name == "shop-dev-platform-Gateway" && r.kind == ResourceKind::Role)
        .unwrap();
    let ordering_api = "arn:aws:lambda:us-east-1:123456789012:function:shop-dev-ordering-OrderingApi";
    let earlier_grants: Vec<&str> = earlier_role.spec["policy"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Action"] == json!(["lambda:InvokeFunction"]))
        .flat_map(|s| s["Resource"].as_array().unwrap().iter().filter_map(|arn| arn.as_str()))
        .collect();
    assert!(
        earlier_grants.iter().any(|arn| arn.strip_suffix('*').is_some_and(|prefix| ordering_api.starts_with(prefix))),
        "{earlier_grants:?} must cover {ordering_api}"
    );
    let gateway = plan
        .resources
        .iter()
        .find(|r| r.name == "shop-dev-platform-Gateway" && r.kind == ResourceKind::Function)
        .unwrap();
    assert_eq!(gateway.spec["memorySize"], 256, "the Gateway group's tuning");
    let gateway_config: serde_json::Value =
        serde_json::from_str(gateway.spec["environment"]["REVENTLESS_GATEWAY"].as_str().unwrap()).unwrap();
    assert_eq!(
        gateway_config,
        json!({"registry": "shop-dev-platform-registry", "connections": "shop-dev-platform-connections"})
    );

    // Heartbeats register their plugin (and may write exactly the registry).
    let heartbeat = plan
        .resources
        .iter()
        .find(|r| r.name == "shop-dev-ordering-OrderingHeartbeat" && r.kind == ResourceKind::Function)
        .unwrap();
    let function_config: serde_json::Value =
        serde_json::from_str(heartbeat.spec["environment"]["REVENTLESS_CONFIG"].as_str().unwrap()).unwrap();
    assert_eq!(function_config["registry"], "shop-dev-platform-registry");
    assert_eq!(function_config["api_function"], "shop-dev-ordering-OrderingApi");
    let heartbeat_role = plan
        .resources
        .iter()
        .find(|r| r.name == "shop-dev-ordering-OrderingHeartbeat" && r.kind == ResourceKind::Role)
        .unwrap();
    assert!(
        heartbeat_role.spec["policy"]["Statement"].as_array().unwrap().iter().any(|s| s["Action"]
            == json!(["dynamodb:PutItem"])
            && s["Resource"] == json!(["arn:aws:dynamodb:us-east-1:123456789012:table/shop-dev-platform-registry"]))
    );
    // Other functions do not carry the registry.
    let api = plan
        .resources
        .iter()
        .find(|r| r.name == "shop-dev-ordering-OrderingApi" && r.kind == ResourceKind::Function)
        .unwrap();
    assert!(!api.spec["environment"]["REVENTLESS_CONFIG"].as_str().unwrap().contains("registry"));

    let reserved = load(&FILE.replace("[plugins.ordering]", "[plugins.platform]"), None, "dev", &[]);
    assert!(matches!(reserved, Err(ConfigError::Value { ref key, .. }) if key == "plugins.platform"), "{reserved:?}");
    let bad_tuning = load(
        &FILE.replace("[plugins.catalog]\n", "[platform.groups.Gateway]\ntimeout = 0\n[plugins.catalog]\n"),
        None,
        "dev",
        &[],
    );
    assert!(
        matches!(bad_tuning, Err(ConfigError::Value { ref key, .. }) if key == "platform.groups.Gateway.timeout"),
        "{bad_tuning:?}"
    );
}

/// A bank: two async aggregates, two async and one sync DCB slice (one log
/// for all), a read model, a state view, an automation.
fn bank() -> Manifest {
    let aggregate = |name: &str| {
        json!({"kind": "Aggregate", "name": name, "consumes": [], "produces": [], "async": true,
               "log": {"kind": "Plugin", "name": "Bank"}})
    };
    let slice = |name: &str, is_async: bool| {
        json!({"kind": "StateChangeSlice", "name": name, "consumes": [], "produces": [], "async": is_async,
               "log": {"kind": "Plugin", "name": "Bank"}})
    };
    let follower = |kind: &str, name: &str, consumes: serde_json::Value, sources: serde_json::Value| json!({"kind": kind, "name": name, "consumes": consumes, "produces": [], "async": false, "sources": sources});
    let log = json!([{"kind": "Plugin", "name": "Bank"}]);
    serde_json::from_value(json!({
        "plugin": "Bank", "version": "1.0.0",
        "components": [aggregate("Account"), aggregate("Loan"), slice("Open", true), slice("Close", true),
                       slice("Rename", false), follower("ReadModel", "Balances", json!(["Opened", "Deposited"]), log.clone()),
                       follower("StateViewSlice", "Owners", json!(["Renamed"]), log.clone()),
                       follower("AutomationSlice", "WelcomeBonus", json!(["Opened"]), log)],
        "storage": {"logs": ["Bank"], "tables": [], "command_topics": ["Bank_Commands"]}
    }))
    .unwrap()
}

const BANK: &str = "project = \"shop\"\nCONSOLIDATION\n[plugins.bank]\nname = \"Bank\"\n[stages.dev]\n";

fn bank_plan(consolidation: &str, extra: &str) -> Result<reventless_aws::deploy::plan::Plan, PlanError> {
    let file = BANK.replace("CONSOLIDATION", &format!("consolidation = \"{consolidation}\""));
    let config = load(&format!("{file}{extra}"), None, "dev", &[]).unwrap();
    plan_of(&config, &BTreeMap::from([("bank".to_string(), bank())]))
}

#[test]
fn a_stream_filter_too_long_for_lambda_filters_by_log_only_with_a_warning() {
    // A read model consuming 150 event types of 40 characters: about 6,600 characters of types.
    let many: Vec<String> = (0..150).map(|i| format!("Bank_AccountHolderAddressChangedEvent{i:03}")).collect();
    let mut manifest = serde_json::to_value(bank()).unwrap();
    for component in manifest["components"].as_array_mut().unwrap() {
        if component["name"] == "Balances" {
            component["consumes"] = json!(many);
        }
    }
    let manifest: Manifest = serde_json::from_value(manifest).unwrap();
    let config = load(&BANK.replace("CONSOLIDATION", "consolidation = \"micro\""), None, "dev", &[]).unwrap();
    let plan = plan_of(&config, &BTreeMap::from([("bank".to_string(), manifest)])).unwrap();

    let long = named(&plan, ResourceKind::EventSourceMapping, "shop-dev-bank-Balances:events");
    assert_eq!(long.spec["logs"], json!(["d#Bank"]), "still only new events of its log");
    assert_eq!(long.spec["types"], json!(null), "no type filter: the pattern would exceed 4096 characters");
    let pattern = stream_filter_pattern(&long.spec["logs"], None);
    assert!(pattern.len() <= FILTER_PATTERN_MAX, "{pattern}");
    let warned: Vec<&String> = plan.warnings.iter().filter(|w| w.contains("shop-dev-bank-Balances")).collect();
    assert_eq!(warned.len(), 1, "{:?}", plan.warnings);
    assert!(warned[0].contains("4096") && warned[0].contains("log only"), "{}", warned[0]);

    // Followers whose types fit keep their type filter, without a warning.
    let short = named(&plan, ResourceKind::EventSourceMapping, "shop-dev-bank-Owners:events");
    assert_eq!(short.spec["types"], json!(["Renamed"]));
    assert!(!plan.warnings.iter().any(|w| w.contains("shop-dev-bank-Owners")), "{:?}", plan.warnings);
    let typed = stream_filter_pattern(&short.spec["logs"], Some(&short.spec["types"]));
    assert!(typed.contains("\"type\":{\"S\":[\"Renamed\"]}"), "{typed}");
}

fn named<'a>(plan: &'a reventless_aws::deploy::plan::Plan, kind: ResourceKind, name: &str) -> &'a Resource {
    plan.resources.iter().find(|r| r.kind == kind && r.name == name).unwrap_or_else(|| panic!("no {kind:?} {name}"))
}

fn function_config(plan: &reventless_aws::deploy::plan::Plan, function: &str) -> serde_json::Value {
    let function = named(plan, ResourceKind::Function, function);
    serde_json::from_str(function.spec["environment"]["REVENTLESS_CONFIG"].as_str().unwrap()).unwrap()
}

fn kinds_of(plan: &reventless_aws::deploy::plan::Plan, kind: ResourceKind) -> Vec<&str> {
    let mut names: Vec<&str> = plan.resources.iter().filter(|r| r.kind == kind).map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    names
}

/// The actions a role's statements grant on one resource ARN.
fn granted(role: &Resource, arn_suffix: &str) -> Vec<String> {
    let statements = role.spec["policy"]["Statement"].as_array().unwrap();
    statements
        .iter()
        .filter(|s| s["Resource"].as_array().unwrap().iter().any(|r| r.as_str().unwrap().ends_with(arn_suffix)))
        .flat_map(|s| s["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn per_aggregate_gives_each_log_its_queue_and_command_function() {
    let plan = bank_plan("per-aggregate", "").unwrap();
    assert_eq!(
        kinds_of(&plan, ResourceKind::Function),
        vec![
            "shop-dev-bank-AccountCommands",
            "shop-dev-bank-AllAutomationSlices",
            "shop-dev-bank-AllReadModels",
            "shop-dev-bank-BankApi",
            "shop-dev-bank-BankHeartbeat",
            "shop-dev-bank-DcbCommands",
            "shop-dev-bank-LoanCommands",
        ]
    );
    assert_eq!(
        kinds_of(&plan, ResourceKind::Queue),
        vec![
            "shop-dev-bank-Bank_Account_Commands-dlq.fifo",
            "shop-dev-bank-Bank_Account_Commands.fifo",
            "shop-dev-bank-Bank_Dcb_Commands-dlq.fifo",
            "shop-dev-bank-Bank_Dcb_Commands.fifo",
            "shop-dev-bank-Bank_Loan_Commands-dlq.fifo",
            "shop-dev-bank-Bank_Loan_Commands.fifo",
            "shop-dev-bank-stream-failures",
        ]
    );
    // Each command function drains exactly its queue, fed by the topic the runtime sends to.
    let mapping = named(&plan, ResourceKind::EventSourceMapping, "shop-dev-bank-LoanCommands:commands");
    assert_eq!(mapping.spec["queue"], "shop-dev-bank-Bank_Loan_Commands.fifo");
    let loan_component = bank().components.into_iter().find(|c| c.name == "Loan").unwrap();
    assert_eq!(reventless_core::TopicLayout::PerLog.topic("Bank", &loan_component), "Bank_Loan_Commands");
    let config = function_config(&plan, "shop-dev-bank-BankApi");
    assert_eq!(config["topics"], "per-log", "senders route by the same layout");
    let loan_role = named(&plan, ResourceKind::Role, "shop-dev-bank-LoanCommands");
    let mut loan_queue = granted(loan_role, ":shop-dev-bank-Bank_Loan_Commands.fifo");
    loan_queue.sort();
    assert_eq!(
        loan_queue,
        vec![
            "sqs:ChangeMessageVisibility",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
            "sqs:ReceiveMessage",
            "sqs:SendMessage"
        ]
    );
    assert_eq!(
        granted(loan_role, ":shop-dev-bank-Bank_Account_Commands.fifo"),
        vec!["sqs:SendMessage", "sqs:GetQueueUrl"],
        "another queue: send only"
    );
    let api_role = named(&plan, ResourceKind::Role, "shop-dev-bank-BankApi");
    assert_eq!(granted(api_role, ":shop-dev-bank-Bank_Dcb_Commands.fifo"), vec!["sqs:SendMessage", "sqs:GetQueueUrl"]);
    let queues = named(&plan, ResourceKind::Parameter, "/reventless/shop/dev/bank/command-queues");
    assert_eq!(
        queues.spec["value"],
        "shop-dev-bank-Bank_Account_Commands.fifo,shop-dev-bank-Bank_Dcb_Commands.fifo,shop-dev-bank-Bank_Loan_Commands.fifo"
    );
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn micro_gives_each_component_its_function_tuned_by_name() {
    let plan = bank_plan(
        "micro",
        "[plugins.bank.groups.AllReadModels]\nmemory_size = 256\n[plugins.bank.groups.Owners]\nmemory_size = 128\n",
    )
    .unwrap();
    assert_eq!(
        kinds_of(&plan, ResourceKind::Function),
        vec![
            "shop-dev-bank-AccountCommands",
            "shop-dev-bank-Balances",
            "shop-dev-bank-BankApi",
            "shop-dev-bank-BankHeartbeat",
            "shop-dev-bank-CloseCommands",
            "shop-dev-bank-LoanCommands",
            "shop-dev-bank-OpenCommands",
            "shop-dev-bank-Owners",
            "shop-dev-bank-WelcomeBonus",
        ]
    );
    for (function, role, components, types) in [
        ("shop-dev-bank-Balances", "AllReadModels", json!(["Balances"]), json!(["Deposited", "Opened"])),
        ("shop-dev-bank-Owners", "AllReadModels", json!(["Owners"]), json!(["Renamed"])),
        ("shop-dev-bank-WelcomeBonus", "AllAutomationSlices", json!(["WelcomeBonus"]), json!(["Opened"])),
    ] {
        let config = function_config(&plan, function);
        assert_eq!((&config["role"], &config["components"]), (&json!(role), &components), "{function}");
        assert_eq!(config["topics"], "per-component");
        let mapping = named(&plan, ResourceKind::EventSourceMapping, &format!("{function}:events"));
        assert_eq!(mapping.spec["table"], "shop-dev-bank-events");
        assert_eq!(
            mapping.spec["logs"],
            json!(["d#Bank"]),
            "{function} is woken by new events of its plugin's log only"
        );
        assert_eq!(mapping.spec["types"], types, "{function} is woken only by the types its followers consume");
        assert_eq!(named(&plan, ResourceKind::Function, function).tags["reventless:component"], function[14..]);
    }
    let memory = |function: &str| named(&plan, ResourceKind::Function, function).spec["memorySize"].clone();
    assert_eq!(memory("shop-dev-bank-Balances"), 256, "the group's tuning");
    assert_eq!(memory("shop-dev-bank-Owners"), 128, "the function's own over its group's");
    assert_eq!(memory("shop-dev-bank-WelcomeBonus"), 1024, "the defaults");
    assert_eq!(plan.warnings.len(), 1, "three stream readers on one table: {:?}", plan.warnings);
    assert!(plan.warnings[0].contains("3 functions read the events stream"), "{}", plan.warnings[0]);

    let units = function_units(&bank(), reventless_aws::deploy::config::Consolidation::Micro, &[]);
    let open = units.iter().find(|u| u.name == "OpenCommands").unwrap();
    assert_eq!(
        (open.topic.as_deref(), open.components.clone()),
        (Some("Bank_Open_Commands"), vec!["Open".to_string()])
    );
}

#[test]
fn a_tuning_key_naming_no_function_is_refused_by_name() {
    let typo = bank_plan("single", "[plugins.bank.groups.AllReadModel]\nmemory_size = 256\n").unwrap_err();
    assert!(matches!(&typo, PlanError::UnknownTuningKey { key, .. } if key == "AllReadModel"), "{typo}");
    assert!(typo.to_string().contains("AllReadModels"), "lists the known keys: {typo}");
    let micro_only = bank_plan("single", "[plugins.bank.groups.Owners]\nmemory_size = 256\n").unwrap_err();
    assert!(micro_only.to_string().contains("`groups.Owners`"), "{micro_only}");
    assert!(bank_plan("micro", "[plugins.bank.groups.Owners]\nmemory_size = 256\n").is_ok());
    assert!(bank_plan("single", "[plugins.bank.groups.default]\nmemory_size = 256\n").is_ok());
}

/// A plugin publishing `<plugin>.<point>` and extending `<other>`.
fn linked(plugin: &str, point: &str, extends: &str) -> Manifest {
    serde_json::from_value(json!({
        "plugin": plugin, "version": "1.0.0",
        "components": [
            {"kind": "StateChangeSlice", "name": "Do", "consumes": [], "produces": [], "async": false,
             "log": {"kind": "Plugin", "name": plugin}},
            {"kind": "ExtensionPoint", "name": format!("{plugin}.{point}"), "consumes": [], "produces": ["News"],
             "async": false, "sources": [{"kind": "Plugin", "name": plugin}]},
            {"kind": "Extension", "name": format!("On{}", extends.replace('.', "")), "consumes": ["News"],
             "produces": [], "async": false, "sources": [{"kind": "ExtensionPoint", "name": extends}]},
        ],
        "storage": {"logs": [plugin], "tables": [], "command_topics": []}
    }))
    .unwrap()
}

fn linked_manifests() -> BTreeMap<String, Manifest> {
    BTreeMap::from([
        ("catalog".to_string(), linked("Catalog", "Products", "Ordering.Orders")),
        ("ordering".to_string(), linked("Ordering", "Orders", "Catalog.Products")),
    ])
}

#[test]
fn extension_points_publish_into_their_subscribers_inboxes() {
    let config = load(FILE, None, "dev", &[]).unwrap();
    let plan = plan_of(&config, &linked_manifests()).unwrap();
    assert!(kinds_of(&plan, ResourceKind::Function).contains(&"shop-dev-ordering-OrderingExtensions"));
    let inbox = "shop-dev-ordering-Ordering_Extensions.fifo";
    assert!(kinds_of(&plan, ResourceKind::Queue).contains(&inbox));
    let mapping = named(&plan, ResourceKind::EventSourceMapping, "shop-dev-ordering-OrderingExtensions:commands");
    assert_eq!(mapping.spec["queue"], inbox);
    let extensions_role = named(&plan, ResourceKind::Role, "shop-dev-ordering-OrderingExtensions");
    assert!(granted(extensions_role, &format!(":{inbox}")).contains(&"sqs:ReceiveMessage".to_string()));
    assert_eq!(function_config(&plan, "shop-dev-ordering-OrderingExtensions")["role"], "OrderingExtensions");

    // Catalog's automation function publishes Catalog.Products to exactly that inbox.
    let publisher = function_config(&plan, "shop-dev-catalog-AllAutomationSlices");
    assert_eq!(publisher["subscribers"], json!({"Catalog.Products": ["Ordering"]}));
    assert_eq!(publisher["queue_names"], json!({"Ordering_Extensions": inbox}));
    let publisher_role = named(&plan, ResourceKind::Role, "shop-dev-catalog-AllAutomationSlices");
    assert_eq!(granted(publisher_role, &format!(":{inbox}")), vec!["sqs:SendMessage", "sqs:GetQueueUrl"]);
    let api_role = named(&plan, ResourceKind::Role, "shop-dev-catalog-CatalogApi");
    assert!(granted(api_role, &format!(":{inbox}")).is_empty(), "only the publisher may send there");
    assert!(function_config(&plan, "shop-dev-catalog-CatalogApi").get("subscribers").is_none());
    let output = named(&plan, ResourceKind::Parameter, "/reventless/shop/dev/ordering/inbox-queue");
    assert_eq!(output.spec["value"], inbox);

    // Micro: each extended point publishes from its own function.
    let micro =
        load(&FILE.replace("project = \"shop\"", "project = \"shop\"\nconsolidation = \"micro\""), None, "dev", &[])
            .unwrap();
    let plan = plan_of(&micro, &linked_manifests()).unwrap();
    let single = plan_of(&config, &linked_manifests()).unwrap();
    let automations = named(&single, ResourceKind::EventSourceMapping, "shop-dev-catalog-AllAutomationSlices:events");
    assert_eq!(automations.spec["logs"], json!(["d#Catalog"]), "the published point's source log");
    assert_eq!(
        automations.spec["types"],
        serde_json::Value::Null,
        "a publisher maps every type of its log: no type filter"
    );
    let products = function_config(&plan, "shop-dev-catalog-ProductsPublisher");
    assert_eq!(products["components"], json!(["Catalog.Products"]));
    assert_eq!(products["subscribers"], json!({"Catalog.Products": ["Ordering"]}));

    // An extension of a point nobody in the stage publishes is refused by name.
    let mut lonely = linked_manifests();
    // (A point of a plugin of the stage that it does not publish; one of a
    // plugin unknown to the stage is a warning, see deploy_one_stack.rs.)
    lonely.insert("catalog".into(), linked("Catalog", "Products", "Ordering.Invoices"));
    let refused = plan_of(&config, &lonely).unwrap_err();
    assert!(
        matches!(&refused, PlanError::MissingExtensionPoint { point, .. } if point == "Ordering.Invoices"),
        "{refused}"
    );
}

/// The indexes the stores query on a table, by the table's component: the
/// events table's `by_log` (reading a log), the rows table's index slots
/// (indexed lists, e.g. an automation's todos by status). The registry is
/// read by partition, the deploy lock by key: no index.
fn queried_indexes(table: &Resource) -> Vec<String> {
    match table.component.as_str() {
        "events" => vec!["by_log".to_string()],
        "rows" => (0..reventless_aws::query_store::INDEX_SLOTS)
            .map(|s| reventless_aws::query_store::index_slot(s).1)
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn every_role_that_queries_a_table_may_query_its_indexes_and_nothing_else_there() {
    let config = load(FILE, None, "dev", &[]).unwrap();
    let plans = [
        plan_of(&config, &manifests()).unwrap(),
        plan_of(&config, &linked_manifests()).unwrap(),
        bank_plan("single", "").unwrap(),
        bank_plan("micro", "").unwrap(),
    ];
    for plan in &plans {
        let tables: Vec<&Resource> = plan.resources.iter().filter(|r| r.kind == ResourceKind::Table).collect();
        let mut checked = 0;
        for role in plan.resources.iter().filter(|r| r.kind == ResourceKind::Role) {
            for table in &tables {
                let arn = format!("arn:aws:dynamodb:us-east-1:123456789012:table/{}", table.name);
                if !granted(role, &format!(":table/{}", table.name)).contains(&"dynamodb:Query".to_string()) {
                    continue;
                }
                for index in queried_indexes(table) {
                    let index_arn = format!("{arn}/index/{index}");
                    let actions = granted(role, &format!(":table/{}/index/{index}", table.name));
                    assert_eq!(actions, vec!["dynamodb:Query"], "{} on {index_arn}", role.name);
                    checked += 1;
                }
            }
            // No index of a table the role may not query, and only Query on indexes.
            let statements = role.spec["policy"]["Statement"].as_array().unwrap();
            for statement in statements {
                for resource in statement["Resource"].as_array().unwrap() {
                    if resource.as_str().unwrap().contains("/index/") {
                        assert_eq!(statement["Action"], json!(["dynamodb:Query"]), "{}: {statement}", role.name);
                    }
                }
            }
        }
        assert!(checked > 0, "the plan has roles querying indexes");
    }
    // The read model role of the bank reads its indexed lists through by_ix1….
    let plan = bank_plan("single", "").unwrap();
    let read_models = named(&plan, ResourceKind::Role, "shop-dev-bank-AllReadModels");
    assert_eq!(granted(read_models, ":table/shop-dev-bank-rows/index/by_ix1"), vec!["dynamodb:Query"]);
    let automations = named(&plan, ResourceKind::Role, "shop-dev-bank-AllAutomationSlices");
    assert_eq!(granted(automations, ":table/shop-dev-bank-rows/index/by_ix1"), vec!["dynamodb:Query"]);
}
