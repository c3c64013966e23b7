//! `[secrets]` in the project file and the plan: names per stage, a plugin
//! stack's roles read exactly its own secrets' parameters (decrypted through
//! SSM only), functions get names and paths, never values; mistakes are
//! refused by key.
#![cfg(feature = "deploy")]
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::BTreeMap;
use std::path::PathBuf;

use reventless_aws::deploy::config::{ConfigError, ProjectConfig};
use reventless_aws::deploy::plan::{ResourceKind, plan};
use reventless_core::Manifest;
use serde_json::{Value, json};

const FILE: &str = r#"
project = "shop"
[secrets]
mail-api-key = "/shop/shared/mail-api-key"
payment-token = "/shop/shared/payment-token"
[plugins.catalog]
name = "Catalog"
[plugins.ordering]
name = "Ordering"
secrets = ["mail-api-key"]
[stages.dev]
[stages.prod]
[stages.prod.secrets]
mail-api-key = "/shop/prod/mail-api-key"
"#;

fn load(file: &str, stage: &str) -> Result<ProjectConfig, ConfigError> {
    ProjectConfig::from_texts(file, None, stage, &|_| None, PathBuf::from("."))
}

fn manifest(plugin: &str) -> Manifest {
    serde_json::from_value(json!({
        "plugin": plugin, "version": "1.0.0",
        "components": [{"kind": "StateChangeSlice", "name": "C0", "consumes": [], "produces": [],
                        "log": {"kind": "Plugin", "name": plugin}, "async": false}],
        "storage": {"logs": [plugin], "tables": [], "command_topics": []}
    }))
    .unwrap()
}

/// Each role's statements that read parameters or decrypt, by role name.
fn secret_statements(config: &ProjectConfig) -> BTreeMap<String, Vec<Value>> {
    let manifests =
        BTreeMap::from([("catalog".into(), manifest("Catalog")), ("ordering".into(), manifest("Ordering"))]);
    let plan = plan(config, "123456789012", &manifests).unwrap();
    plan.resources
        .iter()
        .filter(|r| r.kind == ResourceKind::Role)
        .map(|role| {
            let statements = role.spec["policy"]["Statement"].as_array().unwrap().iter();
            let reads = statements.filter(|s| {
                let actions = s["Action"].to_string();
                actions.contains("ssm:GetParameter") || actions.contains("kms:")
            });
            (role.name.clone(), reads.cloned().collect())
        })
        .collect()
}

fn environments(config: &ProjectConfig) -> BTreeMap<String, Value> {
    let manifests =
        BTreeMap::from([("catalog".into(), manifest("Catalog")), ("ordering".into(), manifest("Ordering"))]);
    let plan = plan(config, "123456789012", &manifests).unwrap();
    plan.resources
        .iter()
        .filter(|r| r.kind == ResourceKind::Function)
        .map(|f| (f.name.clone(), f.spec["environment"].clone()))
        .collect()
}

#[test]
fn a_stacks_roles_read_exactly_its_secrets_through_ssm() {
    let dev = load(FILE, "dev").unwrap();
    let statements = secret_statements(&dev);
    let ordering: Vec<_> = statements.iter().filter(|(role, _)| role.starts_with("shop-dev-ordering-")).collect();
    assert!(!ordering.is_empty());
    for (role, reads) in ordering {
        // A heartbeat's schedule role invokes the function only.
        if role.ends_with("-schedule") {
            assert!(reads.is_empty(), "{role}: {reads:?}");
            continue;
        }
        assert_eq!(
            reads,
            &vec![
                json!({"Effect": "Allow", "Action": ["ssm:GetParameter"],
                       "Resource": ["arn:aws:ssm:us-east-1:123456789012:parameter/shop/shared/mail-api-key"]}),
                json!({"Effect": "Allow", "Action": ["kms:Decrypt"],
                       "Resource": ["arn:aws:kms:us-east-1:123456789012:key/*"],
                       "Condition": {"StringEquals": {"kms:ViaService": "ssm.us-east-1.amazonaws.com"},
                                     "ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/aws/ssm"}}}),
            ],
            "{role}"
        );
    }
    for (role, reads) in statements.iter().filter(|(role, _)| !role.starts_with("shop-dev-ordering-")) {
        assert!(reads.is_empty(), "{role} reads no secret: {reads:?}");
    }

    // A customer-managed key is named exactly; a stage points at its own parameter.
    let key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let prod = load(&format!("secrets_kms_key = \"{key}\"\n{FILE}"), "prod").unwrap();
    let reads = secret_statements(&prod).into_iter().find(|(role, _)| role.contains("OrderingApi")).unwrap().1;
    assert_eq!(reads[0]["Resource"], json!(["arn:aws:ssm:us-east-1:123456789012:parameter/shop/prod/mail-api-key"]));
    assert_eq!(
        reads[1],
        json!({"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": [key],
               "Condition": {"StringEquals": {"kms:ViaService": "ssm.us-east-1.amazonaws.com"}}})
    );
}

#[test]
fn functions_get_names_and_paths_never_values() {
    let dev = load(FILE, "dev").unwrap();
    for (function, environment) in environments(&dev) {
        let secrets = environment.get("REVENTLESS_SECRETS");
        if function.starts_with("shop-dev-ordering-") {
            let named: Value = serde_json::from_str(secrets.unwrap().as_str().unwrap()).unwrap();
            assert_eq!(named, json!({"mail-api-key": "/shop/shared/mail-api-key"}), "{function}");
        } else {
            assert_eq!(secrets, None, "{function}");
        }
    }
    let without = load(&FILE.replace("secrets = [\"mail-api-key\"]\n", ""), "dev").unwrap();
    assert!(secret_statements(&without).values().all(Vec::is_empty), "no stack lists a secret: nothing granted");
    assert!(environments(&without).values().all(|e| e.get("REVENTLESS_SECRETS").is_none()));
}

#[test]
fn mistakes_are_refused_by_key() {
    let key_of = |file: &str| match load(file, "dev").unwrap_err() {
        ConfigError::Value { key, message } => format!("{key}: {message}"),
        other => panic!("{other:?}"),
    };
    // The old form, a list of paths, says how to move to names.
    let old = key_of(&FILE.replace("secrets = [\"mail-api-key\"]", "secrets = [\"/shop/shared/mail-api-key\"]"));
    assert!(old.starts_with("plugins.ordering.secrets: `/shop/shared/mail-api-key` is an SSM path"), "{old}");
    assert!(old.contains("under `[secrets]`"), "{old}");
    let unknown = key_of(&FILE.replace("secrets = [\"mail-api-key\"]", "secrets = [\"mail-key\"]"));
    assert!(
        unknown.contains("`mail-key` is not a secret of `[secrets]` (known: mail-api-key, payment-token)"),
        "{unknown}"
    );
    let path = key_of(&FILE.replace("\"/shop/shared/payment-token\"", "\"shop/payment token\""));
    assert!(path.starts_with("secrets.payment-token: `shop/payment token` is not an SSM parameter path"), "{path}");
    let name = key_of(&FILE.replace("payment-token = ", "\"payment token\" = "));
    assert!(name.starts_with("secrets.payment token:"), "{name}");
    let kms = key_of(&format!("secrets_kms_key = \"alias/aws/ssm\"\n{FILE}"));
    assert!(kms.starts_with("secrets_kms_key: `alias/aws/ssm` is not a KMS key ARN"), "{kms}");
    let wildcard = key_of(&format!("secrets_kms_key = \"arn:aws:kms:us-east-1:123456789012:key/*\"\n{FILE}"));
    assert!(wildcard.starts_with("secrets_kms_key:"), "{wildcard}");
}
