//! `[auth]` in `reventless.toml` and what the planner makes of it: the
//! gateway's configuration carries the issuer, its function URL is public
//! (with the resource-policy grant AWS requires), plugin Api URLs stay IAM.
#![cfg(feature = "deploy")]
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::BTreeMap;
use std::path::PathBuf;

use reventless_aws::deploy::config::{ConfigError, ProjectConfig};
use reventless_aws::deploy::plan::{ResourceKind, plan};
use reventless_aws::gateway::{AuthSettings, GatewayConfig};
use reventless_core::Manifest;
use serde_json::json;

const FILE: &str = r#"
project = "shop"
[platform]
bin = "platform-gateway"
[plugins.catalog]
name = "Catalog"
[stages.dev]
[stages.prod]
"#;

const AUTH: &str = r#"
[auth]
issuer = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc"
audience = "web-client"
"#;

fn load(file: &str, local: Option<&str>, stage: &str, env: &[(&str, &str)]) -> Result<ProjectConfig, ConfigError> {
    let env: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    ProjectConfig::from_texts(file, local, stage, &|key| env.get(key).cloned(), PathBuf::from("."))
}

#[test]
fn auth_has_defaults_and_overrides_by_stage_local_file_and_env() {
    assert_eq!(load(FILE, None, "dev", &[]).unwrap().auth, None, "no [auth]: anonymous callers only");
    let file = format!("{FILE}{AUTH}");
    let dev = load(&file, None, "dev", &[]).unwrap().auth.unwrap();
    assert_eq!(dev, AuthSettings::new("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc", "web-client"));
    assert_eq!((dev.user_claim.as_str(), dev.roles_claim.as_str(), dev.jwks_url), ("sub", "cognito:groups", None));

    let staged = format!("{file}\n[stages.prod.auth]\naudience = \"prod-client\"\nroles_claim = \"roles\"\n");
    let prod = load(&staged, None, "prod", &[]).unwrap().auth.unwrap();
    assert_eq!((prod.audience.as_str(), prod.roles_claim.as_str()), ("prod-client", "roles"));
    assert_eq!(prod.issuer, dev.issuer, "keys the stage does not set are inherited");
    assert_eq!(load(&staged, None, "dev", &[]).unwrap().auth.unwrap().audience, "web-client");

    // A local issuer for emulation, from the git-ignored file or the environment.
    let local = load(&file, Some("[auth]\nissuer = \"http://127.0.0.1:4100\"\n"), "dev", &[]).unwrap().auth.unwrap();
    assert_eq!((local.issuer.as_str(), local.audience.as_str()), ("http://127.0.0.1:4100", "web-client"));
    let env = load(
        FILE,
        None,
        "dev",
        &[
            ("REVENTLESS_AUTH_ISSUER", "http://127.0.0.1:4100"),
            ("REVENTLESS_AUTH_AUDIENCE", "shop"),
            ("REVENTLESS_AUTH_JWKS_URL", "http://127.0.0.1:4100/.well-known/jwks.json"),
        ],
    )
    .unwrap()
    .auth
    .unwrap();
    assert_eq!(env.jwks_url.as_deref(), Some("http://127.0.0.1:4100/.well-known/jwks.json"));
    assert_eq!(env.audience, "shop");
}

#[test]
fn broken_auth_settings_are_typed_errors_naming_the_key() {
    let key_of = |extra: &str| match load(&format!("{FILE}{extra}"), None, "dev", &[]) {
        Err(ConfigError::Value { key, .. } | ConfigError::Missing { key }) => key,
        Err(ConfigError::Syntax { message, .. }) => format!("syntax: {message}"),
        other => panic!("expected an error for {extra}: {other:?}"),
    };
    assert_eq!(key_of("[auth]\naudience = \"web\"\n"), "auth.issuer");
    assert_eq!(key_of("[auth]\nissuer = \"https://issuer.example.org\"\n"), "auth.audience");
    assert_eq!(key_of("[auth]\nissuer = \"issuer.example.org\"\naudience = \"web\"\n"), "auth.issuer");
    assert_eq!(key_of("[auth]\nissuer = \"http://issuer.example.org\"\naudience = \"web\"\n"), "auth.issuer");
    assert_eq!(
        key_of("[auth]\nissuer = \"https://i.example.org\"\naudience = \"web\"\njwks_url = \"keys\"\n"),
        "auth.jwks_url"
    );
    assert_eq!(key_of("[auth]\nissuer = \"https://i.example.org\"\naudience = \"\"\n"), "auth.audience");
    assert_eq!(
        key_of("[auth]\nissuer = \"https://i.example.org\"\naudience = \"web\"\nuser_claim = \"\"\n"),
        "auth.user_claim"
    );
    let unknown = key_of("[auth]\nissuer = \"https://i.example.org\"\naudience = \"web\"\nsecret = \"x\"\n");
    assert!(unknown.starts_with("syntax:") && unknown.contains("secret"), "{unknown}");
    let message =
        load(&format!("{FILE}[auth]\nissuer = \"http://issuer.example.org\"\naudience = \"w\"\n"), None, "dev", &[])
            .unwrap_err()
            .to_string();
    assert!(message.contains("auth.issuer") && message.contains("https"), "{message}");
}

fn manifests() -> BTreeMap<String, Manifest> {
    let manifest = serde_json::from_value(json!({
        "plugin": "Catalog", "version": "1.0.0",
        "components": [{"kind": "StateChangeSlice", "name": "C0", "consumes": [], "produces": [],
                        "log": {"kind": "Plugin", "name": "Catalog"}, "async": false}],
        "storage": {"logs": ["Catalog"], "tables": [], "command_topics": []}
    }))
    .unwrap();
    BTreeMap::from([("catalog".to_string(), manifest)])
}

#[test]
fn the_gateway_url_is_public_with_the_issuer_in_its_configuration() {
    let config = load(&format!("{FILE}{AUTH}"), None, "dev", &[]).unwrap();
    let planned = plan(&config, "123456789012", &manifests()).unwrap();
    let find = |kind: ResourceKind, name: &str| {
        planned.resources.iter().find(|r| r.kind == kind && r.name == name).unwrap_or_else(|| panic!("{kind:?} {name}"))
    };
    assert_eq!(
        find(ResourceKind::FunctionUrl, "shop-dev-platform-Gateway").spec,
        json!({"authType": "NONE", "public": true, "cors": {"allowOrigins": ["*"], "allowMethods": ["GET", "POST"],
            "allowHeaders": ["authorization", "content-type", "x-correlation-id"],
            "exposeHeaders": ["x-correlation-id"], "maxAge": 86400}}),
        "public, and callable from browsers on any origin (bearer tokens, no cookies), the correlation id readable"
    );
    assert_eq!(
        find(ResourceKind::FunctionUrl, "shop-dev-catalog-CatalogApi").spec,
        json!({"authType": "AWS_IAM", "public": false}),
        "plugin APIs stay behind IAM: only the gateway invokes them"
    );
    let gateway = find(ResourceKind::Function, "shop-dev-platform-Gateway");
    let text = gateway.spec["environment"]["REVENTLESS_GATEWAY"].as_str().unwrap();
    let gateway_config: GatewayConfig = serde_json::from_str(text).unwrap();
    assert_eq!(gateway_config.auth, config.auth);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(text).unwrap()["auth"],
        json!({"issuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc", "audience": "web-client",
               "user_claim": "sub", "roles_claim": "cognito:groups"})
    );

    // Without [auth] the gateway's configuration holds no auth: the registry and
    // the WebSocket connections table only (and its URL is still public).
    let plain = plan(&load(FILE, None, "dev", &[]).unwrap(), "123456789012", &manifests()).unwrap();
    let gateway = plain.resources.iter().find(|r| r.kind == ResourceKind::Function && r.stack == "platform").unwrap();
    let text = gateway.spec["environment"]["REVENTLESS_GATEWAY"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(text).unwrap(),
        json!({"registry": "shop-dev-platform-registry", "connections": "shop-dev-platform-connections"})
    );
}
