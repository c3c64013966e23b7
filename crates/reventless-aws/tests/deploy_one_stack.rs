//! Planning one stack of a stage without the others' manifests: what it
//! needs of them comes from the stage's outputs; a publisher planned before
//! any subscriber still publishes (to subscribers found at runtime).
#![cfg(feature = "deploy")]
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::BTreeMap;
use std::path::PathBuf;

use reventless_aws::deploy::config::ProjectConfig;
use reventless_aws::deploy::plan::{Plan, Resource, ResourceKind, StageOutputs, plan_with};
use reventless_aws::package::{LAMBDA_PROFILE, profile_flags};
use reventless_core::Manifest;
use serde_json::{Value, json};

/// A plugin with a state change slice, optionally publishing `point` and extending `extends`.
fn manifest(plugin: &str, point: Option<&str>, extends: Option<&str>) -> Manifest {
    let mut components = vec![json!({"kind": "StateChangeSlice", "name": "Do", "consumes": [], "produces": [],
        "async": false, "log": {"kind": "Plugin", "name": plugin}})];
    if let Some(point) = point {
        components.push(json!({"kind": "ExtensionPoint", "name": format!("{plugin}.{point}"), "consumes": [],
            "produces": ["News"], "async": false, "sources": [{"kind": "Plugin", "name": plugin}]}));
    }
    if let Some(extends) = extends {
        components.push(json!({"kind": "Extension", "name": format!("On{}", extends.replace('.', "")),
            "consumes": ["News"], "produces": [], "async": false,
            "sources": [{"kind": "ExtensionPoint", "name": extends}]}));
    }
    serde_json::from_value(json!({"plugin": plugin, "version": "1.0.0", "components": components,
        "storage": {"logs": [plugin], "tables": [], "command_topics": []}}))
    .unwrap()
}

fn config(file: &str) -> ProjectConfig {
    ProjectConfig::from_texts(file, None, "dev", &|_| None, PathBuf::from(".")).unwrap()
}

fn named<'a>(plan: &'a Plan, kind: ResourceKind, name: &str) -> &'a Resource {
    plan.resources.iter().find(|r| r.kind == kind && r.name == name).unwrap_or_else(|| panic!("no {kind:?} {name}"))
}

fn statements(role: &Resource) -> Vec<Value> {
    role.spec["policy"]["Statement"].as_array().unwrap().clone()
}

#[test]
fn a_publisher_planned_alone_publishes_to_subscribers_found_at_runtime_by_a_named_pattern() {
    let catalog = config("project = \"shop\"\n[plugins.catalog]\n[stages.dev]\n");
    let manifests = BTreeMap::from([("catalog".to_string(), manifest("Catalog", Some("Products"), None))]);
    let plan = plan_with(&catalog, "123456789012", &manifests, &StageOutputs::default()).unwrap();

    // No subscriber anywhere yet: the point still has its publisher.
    let function = named(&plan, ResourceKind::Function, "shop-dev-catalog-AllAutomationSlices");
    let config: Value =
        serde_json::from_str(function.spec["environment"]["REVENTLESS_CONFIG"].as_str().unwrap()).unwrap();
    assert_eq!(config["registry"], "shop-dev-platform-registry", "it reads subscribers from the registry");
    let mapping = named(&plan, ResourceKind::EventSourceMapping, "shop-dev-catalog-AllAutomationSlices:events");
    assert_eq!(mapping.spec["logs"], json!(["d#Catalog"]), "woken by the point's source log");

    let role = named(&plan, ResourceKind::Role, "shop-dev-catalog-AllAutomationSlices");
    let statements = statements(role);
    let sends: Vec<&Value> =
        statements.iter().filter(|s| s["Action"].as_array().unwrap().contains(&json!("sqs:SendMessage"))).collect();
    let inboxes = json!(["arn:aws:sqs:us-east-1:123456789012:shop-dev-*_Extensions.fifo"]);
    assert!(sends.iter().any(|s| s["Resource"] == inboxes), "the stage's inboxes by pattern: {statements:?}");
    let everything = statements.iter().flat_map(|s| s["Resource"].as_array().unwrap().iter());
    assert!(everything.clone().all(|r| r.as_str().unwrap().contains("shop-dev-")), "only this stage's resources");
    assert!(!everything.clone().any(|r| r == "*"), "never bare *");
    let registry = json!(["arn:aws:dynamodb:us-east-1:123456789012:table/shop-dev-platform-registry"]);
    assert!(statements.iter().any(|s| s["Action"] == json!(["dynamodb:Query"]) && s["Resource"] == registry));
    // Other functions of the stack may not send to other stacks' inboxes.
    let api = statements_of(&plan, "shop-dev-catalog-CatalogApi");
    assert!(!api.to_string().contains("_Extensions.fifo"), "{api}");

    // What other stacks' plans read instead of this manifest.
    let points = named(&plan, ResourceKind::Parameter, "/reventless/shop/dev/catalog/extension-points");
    assert_eq!(points.spec["value"], "Catalog.Products");
}

fn statements_of(plan: &Plan, role: &str) -> Value {
    json!(statements(named(plan, ResourceKind::Role, role)))
}

#[test]
fn a_subscriber_planned_alone_checks_the_point_against_the_stages_outputs() {
    // Ordering's file: Catalog is another project file's stack.
    let ordering = config("project = \"shop\"\n[plugins.ordering]\ndepends_on = [\"catalog\"]\n[stages.dev]\n");
    assert_eq!(ordering.deploy_order().unwrap(), vec![vec!["ordering".to_string()]]);
    let manifests = BTreeMap::from([("ordering".to_string(), manifest("Ordering", None, Some("Catalog.Products")))]);

    // Catalog not deployed yet: a plan warning (the deploy itself refuses:
    // `depends_on` wants catalog's outputs in SSM).
    let missing = plan_with(&ordering, "123456789012", &manifests, &StageOutputs::default());
    let warned = missing.as_ref().map(|plan| plan.warnings.clone()).unwrap_or_default();
    assert!(warned.iter().any(|w| w.contains("Catalog.Products")), "{missing:?}");

    let parameters = BTreeMap::from([
        ("/reventless/shop/dev/catalog/extension-points".to_string(), "Catalog.Products".to_string()),
        ("/reventless/shop/dev/catalog/events-table".to_string(), "shop-dev-catalog-events".to_string()),
        ("/reventless/other/dev/billing/extension-points".to_string(), "Billing.Invoices".to_string()),
    ]);
    let stage = StageOutputs::from_parameters(&ordering, &parameters);
    assert_eq!(stage.stacks.len(), 1, "only this project's stage: {stage:?}");
    let plan = plan_with(&ordering, "123456789012", &manifests, &stage).unwrap();
    assert!(plan.resources.iter().all(|r| r.stack != "catalog"), "catalog is not planned here");
    let inbox = "shop-dev-ordering-Ordering_Extensions.fifo";
    assert_eq!(named(&plan, ResourceKind::Parameter, "/reventless/shop/dev/ordering/inbox-queue").spec["value"], inbox);
    assert_eq!(
        named(&plan, ResourceKind::Parameter, "/reventless/shop/dev/ordering/extends").spec["value"],
        "Catalog.Products"
    );
    named(&plan, ResourceKind::Queue, inbox);

    // A point Catalog does not publish is refused; one of a plugin the
    // stage does not know yet (deployed later, from elsewhere) is a warning.
    let typo = BTreeMap::from([("ordering".to_string(), manifest("Ordering", None, Some("Catalog.Prodcuts")))]);
    assert!(plan_with(&ordering, "123456789012", &typo, &stage).is_err());
    let later = BTreeMap::from([("ordering".to_string(), manifest("Ordering", None, Some("Billing.Invoices")))]);
    let plan = plan_with(&ordering, "123456789012", &later, &stage).unwrap();
    assert!(plan.warnings.iter().any(|w| w.contains("Billing.Invoices")), "{:?}", plan.warnings);
}

#[test]
fn the_lambda_profile_is_supplied_by_the_cli_and_a_projects_own_keys_win() {
    let flags = profile_flags(&[]);
    assert_eq!(flags.len(), 2 * LAMBDA_PROFILE.len());
    assert!(flags.chunks(2).all(|pair| pair[0] == "--config" && pair[1].starts_with("profile.lambda.")));
    assert!(flags.contains(&"profile.lambda.inherits=\"release\"".to_string()), "{flags:?}");
    assert!(flags.contains(&"profile.lambda.lto=true".to_string()), "{flags:?}");
    let theirs = profile_flags(&["lto".to_string(), "opt-level".to_string()]);
    assert!(!theirs.iter().any(|flag| flag.starts_with("profile.lambda.lto=")), "their lto is kept: {theirs:?}");
    assert_eq!(theirs.len(), flags.len() - 2);
}

#[test]
fn a_plan_of_one_stack_equals_its_part_of_the_whole_files_plan() {
    let file = "project = \"shop\"\n[plugins.catalog]\n[plugins.ordering]\ndepends_on = [\"catalog\"]\n[stages.dev]\n";
    let shop = config(file);
    let both = BTreeMap::from([
        ("catalog".to_string(), manifest("Catalog", Some("Products"), None)),
        ("ordering".to_string(), manifest("Ordering", None, Some("Catalog.Products"))),
    ]);
    let whole = plan_with(&shop, "123456789012", &both, &StageOutputs::default()).unwrap();
    let catalog_of =
        |plan: &Plan| -> Vec<Resource> { plan.resources.iter().filter(|r| r.stack == "catalog").cloned().collect() };

    // `deploy --plugin catalog`: Ordering (in the file, deployed) is known by its outputs.
    let parameters = BTreeMap::from([
        ("/reventless/shop/dev/ordering/extends".to_string(), "Catalog.Products".to_string()),
        ("/reventless/shop/dev/catalog/extension-points".to_string(), "Catalog.Products".to_string()),
    ]);
    let mut stage = StageOutputs::from_parameters(&shop, &parameters);
    stage.planned = Some(["catalog".to_string()].into());
    let only_catalog = BTreeMap::from([("catalog".to_string(), both["catalog"].clone())]);
    let one = plan_with(&shop, "123456789012", &only_catalog, &stage).unwrap();
    assert!(one.resources.iter().all(|r| r.stack != "ordering"), "ordering is not planned");
    assert_eq!(catalog_of(&one), catalog_of(&whole), "no drift between a full and a --plugin deploy");
    let publisher = named(&one, ResourceKind::Function, "shop-dev-catalog-AllAutomationSlices");
    let config: Value =
        serde_json::from_str(publisher.spec["environment"]["REVENTLESS_CONFIG"].as_str().unwrap()).unwrap();
    assert_eq!(config["subscribers"], json!({"Catalog.Products": ["Ordering"]}));
}
