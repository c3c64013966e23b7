//! Secrets in a deploy. `[secrets]` names SSM SecureString parameters
//! (`mail-api-key = "/shop/prod/mail-api-key"`; a stage points at its own
//! under `[stages.<stage>.secrets]`); a plugin stack lists the names its
//! functions may read (`secrets = ["mail-api-key"]`), and only its roles may
//! read them. Functions get the name → path mapping in `REVENTLESS_SECRETS`
//! (never a value) and read the values at runtime ([`crate::secrets`]).
//!
//! Decryption: SSM decrypts a SecureString with the caller's rights on its
//! KMS key. The roles may `kms:Decrypt` only through SSM of the stage's
//! region (`kms:ViaService`), on `secrets_kms_key` when set (a
//! customer-managed key: its ARN exactly), otherwise on the account's key
//! known by the alias `alias/aws/ssm` (the AWS-managed key SSM uses by
//! default; IAM authorizes Decrypt on key ARNs, not alias ARNs, so the key
//! is named by the `kms:ResourceAliases` condition).
use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::config::{ConfigError, ProjectConfig};

/// The AWS-managed key SSM encrypts SecureStrings with unless told otherwise.
pub const SSM_MANAGED_KEY_ALIAS: &str = "alias/aws/ssm";

/// `[secrets]` and `secrets_kms_key`, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SecretsSettings {
    /// Secret name → SSM parameter path.
    pub paths: BTreeMap<String, String>,
    /// The customer-managed KMS key the parameters are encrypted with (key ARN).
    pub kms_key: Option<String>,
}

fn value_error(key: String, message: String) -> ConfigError {
    ConfigError::Value { key, message }
}

impl SecretsSettings {
    /// Checks names (letters, digits, `-`, `_`), paths (SSM hierarchies:
    /// `/` then letters, digits, `_ . - /`) and the key (a KMS key ARN).
    pub fn resolve(paths: BTreeMap<String, String>, kms_key: Option<String>) -> Result<Self, ConfigError> {
        for (name, path) in &paths {
            let good_name = !name.is_empty()
                && name.len() <= 64
                && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
            if !good_name {
                return Err(value_error(format!("secrets.{name}"), "names are 1–64 letters, digits, - or _".into()));
            }
            let good_path = path.starts_with('/')
                && path.len() <= 1011
                && !path.contains("//")
                && path.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'));
            if !good_path {
                return Err(value_error(
                    format!("secrets.{name}"),
                    format!("`{path}` is not an SSM parameter path (`/` then letters, digits, _ . - /)"),
                ));
            }
        }
        if let Some(key) = &kms_key {
            let parts: Vec<&str> = key.split(':').collect();
            let good = parts.len() == 6
                && parts[..3] == ["arn", "aws", "kms"]
                && parts[5].strip_prefix("key/").is_some_and(|id| !id.is_empty() && !id.contains('*'));
            if !good {
                return Err(value_error(
                    "secrets_kms_key".into(),
                    format!("`{key}` is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key id>)"),
                ));
            }
        }
        Ok(Self { paths, kms_key })
    }

    /// Checks a plugin stack's `secrets`: names of `[secrets]`. The old form
    /// (SSM paths) is refused with the way to the new one.
    pub fn check_stack(&self, stack: &str, names: &[String]) -> Result<(), ConfigError> {
        let key = || format!("plugins.{stack}.secrets");
        for name in names {
            if name.starts_with('/') {
                return Err(value_error(
                    key(),
                    format!(
                        "`{name}` is an SSM path; a stack now lists secret names: add `<name> = \"{name}\"` \
                         under `[secrets]` and list `<name>` here"
                    ),
                ));
            }
            if !self.paths.contains_key(name) {
                let known = if self.paths.is_empty() {
                    "[secrets] names none".to_string()
                } else {
                    format!("known: {}", self.paths.keys().cloned().collect::<Vec<_>>().join(", "))
                };
                return Err(value_error(key(), format!("`{name}` is not a secret of `[secrets]` ({known})")));
            }
        }
        Ok(())
    }
}

/// The secrets a plugin stack's functions may read: name → path.
pub fn stack_secrets(config: &ProjectConfig, stack: &str) -> BTreeMap<String, String> {
    let Some(plugin) = config.plugins.get(stack) else { return BTreeMap::new() };
    plugin
        .secrets
        .iter()
        .filter_map(|name| config.secrets.paths.get(name).map(|path| (name.clone(), path.clone())))
        .collect()
}

/// The function environment naming a stack's secrets (`REVENTLESS_SECRETS`
/// as JSON name → path), or none when it has none.
pub fn environment(config: &ProjectConfig, stack: &str) -> Option<(String, String)> {
    let secrets = stack_secrets(config, stack);
    (!secrets.is_empty())
        .then(|| (crate::secrets::SECRETS_ENV.to_string(), serde_json::to_string(&secrets).unwrap_or_default()))
}

/// The statements letting a role read the parameters `parameter_arns` with
/// decryption (see the module's note on the key).
pub fn read_statements(config: &ProjectConfig, account: &str, parameter_arns: Vec<String>) -> Vec<Value> {
    if parameter_arns.is_empty() {
        return Vec::new();
    }
    let via_ssm = format!("ssm.{}.amazonaws.com", config.region);
    let decrypt = match &config.secrets.kms_key {
        Some(key) => json!({
            "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": [key],
            "Condition": {"StringEquals": {"kms:ViaService": via_ssm}},
        }),
        None => json!({
            "Effect": "Allow", "Action": ["kms:Decrypt"],
            "Resource": [format!("arn:aws:kms:{}:{account}:key/*", config.region)],
            "Condition": {
                "StringEquals": {"kms:ViaService": via_ssm},
                "ForAnyValue:StringEquals": {"kms:ResourceAliases": SSM_MANAGED_KEY_ALIAS},
            },
        }),
    };
    vec![json!({"Effect": "Allow", "Action": ["ssm:GetParameter"], "Resource": parameter_arns}), decrypt]
}
