//! Secrets on the local platform: the environment, then the data
//! directory's `secrets.toml`; errors say where to put a missing one and
//! never show a value; the platform hands them to capabilities.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::HashMap;
use std::time::Duration;

use reventless_local::secrets::{LocalSecrets, env_name, provide};
use reventless_spec::{Capabilities, SecretError, Secrets};

fn secrets(dir: &std::path::Path, env: &[(&str, &str)]) -> Secrets {
    let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Secrets::with_ttl(LocalSecrets::with_env(dir, move |key| env.get(key).cloned()), Duration::ZERO)
}

#[test]
fn names_become_environment_variables() {
    assert_eq!(env_name("mail-api-key"), "REVENTLESS_SECRET_MAIL_API_KEY");
    assert_eq!(env_name("stripe.token_2"), "REVENTLESS_SECRET_STRIPE_TOKEN_2");
}

#[tokio::test]
async fn the_environment_wins_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secrets.toml"), "mail-api-key = \"from-file\"\nother = \"o\"\n").unwrap();
    let from_env = secrets(dir.path(), &[("REVENTLESS_SECRET_MAIL_API_KEY", "from-env")]);
    assert_eq!(from_env.get("mail-api-key").await.unwrap().expose(), "from-env");
    assert_eq!(from_env.get("other").await.unwrap().expose(), "o");
    let from_file = secrets(dir.path(), &[]);
    assert_eq!(from_file.get("mail-api-key").await.unwrap().expose(), "from-file");
    // Read on every use: an edit counts at once.
    std::fs::write(dir.path().join("secrets.toml"), "mail-api-key = \"edited\"\n").unwrap();
    assert_eq!(from_file.get("mail-api-key").await.unwrap().expose(), "edited");
}

#[tokio::test]
async fn a_missing_secret_says_where_to_put_it() {
    let dir = tempfile::tempdir().unwrap();
    let without_file = secrets(dir.path(), &[]).get("mail-api-key").await.unwrap_err();
    let SecretError::Missing { name, looked } = &without_file else { panic!("{without_file:?}") };
    assert_eq!(name, "mail-api-key");
    assert!(looked.contains("REVENTLESS_SECRET_MAIL_API_KEY") && looked.contains("secrets.toml"), "{looked}");
    let message = without_file.to_string();
    assert!(message.starts_with("secret `mail-api-key` is not set"), "{message}");

    std::fs::write(dir.path().join("secrets.toml"), "other = \"s3cr3t-other\"\n").unwrap();
    let not_in_file = secrets(dir.path(), &[]).get("mail-api-key").await.unwrap_err();
    assert!(matches!(not_in_file, SecretError::Missing { .. }), "{not_in_file:?}");
    assert!(!not_in_file.to_string().contains("s3cr3t"), "{not_in_file}");
}

#[tokio::test]
async fn a_broken_file_is_reported_without_its_content() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secrets.toml"), "ok = \"fine\"\nmail-api-key = \"s3cr3t-value\n").unwrap();
    let broken = secrets(dir.path(), &[]).get("mail-api-key").await.unwrap_err();
    let message = broken.to_string();
    assert!(matches!(broken, SecretError::Unavailable { .. }), "{broken:?}");
    assert!(message.contains("not valid TOML at line 2"), "{message}");
    assert!(!message.contains("s3cr3t"), "the value stays out of the error: {message}");
    assert!(!format!("{broken:?}").contains("s3cr3t"));

    std::fs::write(dir.path().join("secrets.toml"), "mail-api-key = 42\n").unwrap();
    let number = secrets(dir.path(), &[]).get("mail-api-key").await.unwrap_err();
    assert!(number.to_string().contains("is not a string"), "{number}");
}

#[tokio::test]
async fn the_platform_provides_local_secrets_unless_the_root_did() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secrets.toml"), "mail-api-key = \"from-data-dir\"\n").unwrap();
    let provided = provide(Capabilities::new(), dir.path());
    assert_eq!(provided.secret("mail-api-key").await.unwrap().expose(), "from-data-dir");
    let fixed = Capabilities::new().with_secrets(Secrets::from_values([("mail-api-key", "fixed")]));
    assert_eq!(provide(fixed, dir.path()).secret("mail-api-key").await.unwrap().expose(), "fixed");
    let none = Capabilities::new().secret("mail-api-key").await.unwrap_err();
    assert_eq!(none, SecretError::NotConfigured { name: "mail-api-key".into() });
}
