//! Secrets on the local platform: the environment first
//! (`REVENTLESS_SECRET_MAIL_API_KEY` for `mail-api-key`), then the data
//! directory's `secrets.toml` (`.reventless/secrets.toml` by default,
//! git-ignored: `mail-api-key = "…"`). Read on every use, so an edit counts
//! at once; errors say where a secret was looked for, never a value.
use std::path::{Path, PathBuf};

use reventless_spec::{SecretError, SecretFuture, SecretSource, SecretValue, Secrets};

/// The file of local secrets inside the data directory.
pub const SECRETS_FILE: &str = "secrets.toml";

/// The environment variable holding secret `name` locally: `REVENTLESS_SECRET_`
/// and the name in upper case, anything but letters and digits as `_`.
pub fn env_name(name: &str) -> String {
    let mut variable = String::from("REVENTLESS_SECRET_");
    variable.extend(name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }));
    variable
}

type Env = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The environment, then `<dir>/secrets.toml`.
pub struct LocalSecrets {
    file: PathBuf,
    env: Env,
}

impl LocalSecrets {
    /// Secrets of the data directory `dir` and the process environment.
    pub fn new(dir: impl AsRef<Path>) -> Self {
        Self::with_env(dir, |key| std::env::var(key).ok())
    }

    /// As [`LocalSecrets::new`] with another environment (tests).
    pub fn with_env(dir: impl AsRef<Path>, env: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Self { file: dir.as_ref().join(SECRETS_FILE), env: Box::new(env) }
    }

    fn read(&self, name: &str) -> Result<SecretValue, SecretError> {
        let variable = env_name(name);
        if let Some(value) = (self.env)(&variable) {
            return Ok(SecretValue::new(value));
        }
        let file = self.file.display();
        let missing = || SecretError::Missing {
            name: name.to_string(),
            looked: format!("set {variable} or add `{name} = \"…\"` to {file}"),
        };
        let text = match std::fs::read_to_string(&self.file) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
            Err(error) => {
                return Err(SecretError::Unavailable {
                    name: name.into(),
                    message: format!("cannot read {file}: {error}"),
                });
            }
        };
        // toml's own message quotes the offending line, which may hold a
        // value: only the line number is reported.
        let table: toml::Table = text.parse().map_err(|error: toml::de::Error| {
            let line = error.span().map(|span| text[..span.start.min(text.len())].lines().count().max(1));
            let at = line.map(|line| format!(" at line {line}")).unwrap_or_default();
            SecretError::Unavailable { name: name.into(), message: format!("{file} is not valid TOML{at}") }
        })?;
        match table.get(name) {
            None => Err(missing()),
            Some(toml::Value::String(value)) => Ok(SecretValue::new(value.clone())),
            Some(_) => Err(SecretError::Unavailable {
                name: name.into(),
                message: format!("`{name}` in {file} is not a string"),
            }),
        }
    }
}

impl SecretSource for LocalSecrets {
    fn fetch<'a>(&'a self, name: &'a str) -> SecretFuture<'a> {
        Box::pin(std::future::ready(self.read(name)))
    }
}

/// The local platform's secrets for the data directory `dir`, uncached.
pub fn local_secrets(dir: impl AsRef<Path>) -> Secrets {
    Secrets::with_ttl(LocalSecrets::new(dir), std::time::Duration::ZERO)
}

/// `capabilities` with the local secrets of `dir` unless the composition root set a source.
pub fn provide(capabilities: reventless_spec::Capabilities, dir: &Path) -> reventless_spec::Capabilities {
    if capabilities.secrets().is_configured() { capabilities } else { capabilities.with_secrets(local_secrets(dir)) }
}
