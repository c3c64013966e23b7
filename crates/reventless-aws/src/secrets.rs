//! Secrets on Lambda: SSM SecureString parameters, read with decryption on
//! first use and cached per container ([`reventless_spec::SECRET_TTL`]).
//! The function's environment holds only which parameter each secret name
//! is (`REVENTLESS_SECRETS`, a JSON object name → path, written by the
//! deployer from `[secrets]` and the plugin's `secrets` list), never a
//! value; its role may read exactly those parameters.
use std::collections::BTreeMap;

use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use reventless_spec::{Capabilities, SecretError, SecretFuture, SecretSource, SecretValue, Secrets};

/// The environment variable naming a function's secrets (name → SSM path).
pub const SECRETS_ENV: &str = "REVENTLESS_SECRETS";

/// The secrets a function was given, read from SSM.
pub struct SsmSecrets {
    client: aws_sdk_ssm::Client,
    /// Name → parameter path, or why the environment could not say.
    paths: Result<BTreeMap<String, String>, String>,
}

impl SsmSecrets {
    pub fn new(client: aws_sdk_ssm::Client, paths: BTreeMap<String, String>) -> Self {
        Self { client, paths: Ok(paths) }
    }

    /// The secrets named by `REVENTLESS_SECRETS` (none when it is unset).
    pub fn from_env(client: aws_sdk_ssm::Client) -> Self {
        Self { client, paths: parse_paths(std::env::var(SECRETS_ENV).ok().as_deref()) }
    }

    async fn read(&self, name: &str) -> Result<SecretValue, SecretError> {
        let paths = self
            .paths
            .as_ref()
            .map_err(|message| SecretError::Unavailable { name: name.to_string(), message: message.clone() })?;
        let Some(path) = paths.get(name) else {
            let given = if paths.is_empty() {
                "none".to_string()
            } else {
                paths.keys().cloned().collect::<Vec<_>>().join(", ")
            };
            return Err(SecretError::NotGiven { name: name.to_string(), given });
        };
        match self.client.get_parameter().name(path).with_decryption(true).send().await {
            Ok(output) => match output.parameter.and_then(|parameter| parameter.value) {
                Some(value) => Ok(SecretValue::new(value)),
                None => Err(SecretError::Unavailable {
                    name: name.to_string(),
                    message: format!("SSM parameter {path} has no value"),
                }),
            },
            Err(error) if error.code() == Some("ParameterNotFound") => {
                Err(SecretError::Missing { name: name.to_string(), looked: format!("no SSM parameter {path}") })
            }
            // AWS's error answers name the caller and the resource, never a
            // parameter's value.
            Err(error) => Err(SecretError::Unavailable {
                name: name.to_string(),
                message: format!(
                    "SSM GetParameter {path}: {}",
                    match (error.code(), error.message()) {
                        (Some(code), Some(message)) => format!("{code}: {message}"),
                        (Some(code), None) => code.to_string(),
                        _ => aws_smithy_types::error::display::DisplayErrorContext(&error).to_string(),
                    }
                ),
            }),
        }
    }
}

impl SecretSource for SsmSecrets {
    fn fetch<'a>(&'a self, name: &'a str) -> SecretFuture<'a> {
        Box::pin(self.read(name))
    }
}

/// `REVENTLESS_SECRETS` as name → path.
pub fn parse_paths(text: Option<&str>) -> Result<BTreeMap<String, String>, String> {
    match text {
        None => Ok(BTreeMap::new()),
        Some(text) => serde_json::from_str(text)
            .map_err(|_| format!("{SECRETS_ENV} is not a JSON object of secret names to SSM parameter paths")),
    }
}

/// `capabilities` reading secrets from SSM unless the composition root set a source.
pub fn provide(capabilities: Capabilities, sdk: &aws_config::SdkConfig) -> Capabilities {
    if capabilities.secrets().is_configured() {
        return capabilities;
    }
    capabilities.with_secrets(Secrets::new(SsmSecrets::from_env(aws_sdk_ssm::Client::new(sdk))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_names_paths_only() {
        assert_eq!(parse_paths(None), Ok(BTreeMap::new()));
        let paths = parse_paths(Some(r#"{"mail-api-key": "/shop/dev/mail-api-key"}"#)).unwrap();
        assert_eq!(paths["mail-api-key"], "/shop/dev/mail-api-key");
        let error = parse_paths(Some("/old/comma,/separated")).unwrap_err();
        assert!(error.contains(SECRETS_ENV), "{error}");
    }

    #[tokio::test]
    async fn a_secret_not_given_is_refused_without_asking_ssm() {
        let config = aws_sdk_ssm::Config::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
        let secrets = SsmSecrets::new(
            aws_sdk_ssm::Client::from_conf(config),
            BTreeMap::from([("mail-api-key".to_string(), "/p".to_string())]),
        );
        let error = secrets.read("payment-token").await.unwrap_err();
        assert_eq!(error, SecretError::NotGiven { name: "payment-token".into(), given: "mail-api-key".into() });
    }
}
