//! `log_level` (tuning): the functions' log level, planned as their
//! `REVENTLESS_LOG`; a value that names no level is refused by key.
#![cfg(feature = "deploy")]
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::BTreeMap;
use std::path::PathBuf;

use reventless_aws::deploy::config::ProjectConfig;
use reventless_aws::deploy::plan::{ResourceKind, plan};
use reventless_core::Manifest;
use serde_json::json;

const FILE: &str = r#"
project = "shop"
[defaults]
log_level = "warn"
[plugins.catalog]
name = "Catalog"
[plugins.catalog.groups.Api]
log_level = "info,reventless_core=debug"
[stages.dev]
"#;

fn load(file: &str, env: &[(&str, &str)]) -> Result<ProjectConfig, reventless_aws::deploy::config::ConfigError> {
    let env: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    ProjectConfig::from_texts(file, None, "dev", &|key| env.get(key).cloned(), PathBuf::from("."))
}

fn manifests() -> BTreeMap<String, Manifest> {
    let components = json!([
        {"kind": "StateChangeSlice", "name": "C0", "consumes": [], "produces": [], "log": {"kind": "Plugin", "name": "Catalog"}, "async": false},
        {"kind": "ReadModel", "name": "C1", "consumes": [], "produces": [], "log": null, "async": false}
    ]);
    let manifest = serde_json::from_value(json!({
        "plugin": "Catalog", "version": "1.0.0", "components": components,
        "storage": {"logs": ["Catalog"], "tables": [], "command_topics": []}
    }))
    .unwrap();
    BTreeMap::from([("catalog".to_string(), manifest)])
}

/// The `REVENTLESS_LOG` of each function of the plan.
fn levels(config: &ProjectConfig) -> BTreeMap<String, Option<String>> {
    let plan = plan(config, "123456789012", &manifests()).unwrap();
    plan.resources
        .iter()
        .filter(|r| r.kind == ResourceKind::Function)
        .map(|r| (r.name.clone(), r.spec["environment"]["REVENTLESS_LOG"].as_str().map(str::to_string)))
        .collect()
}

#[test]
fn the_log_level_reaches_each_function_and_a_wrong_one_is_refused_by_key() {
    let config = load(FILE, &[]).unwrap();
    let planned = levels(&config);
    assert_eq!(planned["shop-dev-catalog-CatalogApi"].as_deref(), Some("info,reventless_core=debug"), "{planned:?}");
    assert_eq!(planned["shop-dev-catalog-AllReadModels"].as_deref(), Some("warn"), "{planned:?}");

    let from_env = load(FILE, &[("REVENTLESS_LOG_LEVEL", "error")]).unwrap();
    assert_eq!(levels(&from_env)["shop-dev-catalog-AllReadModels"].as_deref(), Some("error"));

    let unset = load(&FILE.replace("log_level = \"warn\"\n", ""), &[]).unwrap();
    assert_eq!(levels(&unset)["shop-dev-catalog-AllReadModels"], None, "unset: the functions' default (info)");

    for (wrong, key) in [("loud", "log_level"), ("shop=verbose", "log_level")] {
        let file = FILE.replace("log_level = \"warn\"", &format!("log_level = \"{wrong}\""));
        let error = load(&file, &[]).unwrap_err().to_string();
        assert!(error.contains(key) && error.contains(wrong), "{wrong}: {error}");
    }
}
