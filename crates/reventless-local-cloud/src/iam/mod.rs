//! IAM, enforced on what functions do: each function runs with credentials
//! naming its role; each AWS request it makes is checked — action and exact
//! resource ARN — against that role's inline policies (read from the
//! emulator's IAM) before it is forwarded.
//!
//! [`Iam`] issues the credentials and evaluates policies ([`policy`]);
//! [`Proxy`] is the endpoint functions talk to: it classifies each request
//! ([`request`]), refuses what the role may not do in the service's own error
//! shape, and forwards the rest to moto (or to our Lambda service).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use sha2::{Digest, Sha256};

pub mod policy;
mod proxy;
pub mod request;

pub use policy::{Decision, RolePolicies};
pub use proxy::Proxy;

/// A refused request, as AWS words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("User: {principal} is not authorized to perform: {action} on resource: {resource}")]
pub struct Denied {
    /// The assumed-role ARN of the caller.
    pub principal: String,
    pub action: String,
    pub resource: String,
}

/// Decides whether a role may perform an action on a resource.
#[async_trait::async_trait]
pub trait Access: Send + Sync + 'static {
    async fn authorize(&self, role_arn: &str, action: &str, resource: &str) -> Result<(), Denied>;
}

/// Temporary credentials naming a role (what Lambda puts in a function's
/// environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
}

/// Why a role's policies could not be read; the role is refused everything
/// meanwhile (never judged on part of its policies).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("not a role ARN: {0}")]
    NotARole(String),
    #[error("cannot read the role's policies from the emulator: {0}")]
    Read(String),
    #[error("policy {name}: {error}")]
    Malformed { name: String, error: policy::MalformedPolicy },
}

/// How long a role's policies are trusted before they are read again: short
/// enough that a test changing a policy sees it on its next call, long
/// enough that a busy function does not ask moto's IAM on every request.
const POLICY_TTL: Duration = Duration::from_secs(1);

struct Cached {
    read_at: Instant,
    policies: Arc<RolePolicies>,
}

/// Issues role credentials and evaluates the roles' policies, read from the
/// emulator's IAM and cached per role for `POLICY_TTL`.
pub struct Iam {
    client: aws_sdk_iam::Client,
    /// Access key id → (role ARN, session token).
    keys: Mutex<HashMap<String, (String, String)>>,
    /// Role ARN → its cached policies; the async lock makes concurrent
    /// requests of one role wait for a single read.
    roles: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
}

impl Iam {
    pub fn new(moto: &aws_config::SdkConfig) -> Self {
        Iam { client: aws_sdk_iam::Client::new(moto), keys: Mutex::default(), roles: Mutex::default() }
    }

    /// Credentials that identify `role_arn` (given to each function instance
    /// as AWS_ACCESS_KEY_ID/…); stable per role. They are derived from the
    /// ARN, so a restarted local cloud hands out the same ones.
    pub fn credentials_for(&self, role_arn: &str) -> Credentials {
        let digest = |salt: &str| Sha256::digest(format!("reventless-local-cloud/{salt}/{role_arn}").as_bytes());
        const KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let key: String = digest("key").iter().take(16).map(|b| KEY_ALPHABET[usize::from(b % 32)] as char).collect();
        let access_key_id = format!("ASIA{key}");
        let secret_access_key = base64::engine::general_purpose::STANDARD.encode(&digest("secret")[..30]);
        let mut token = digest("token").to_vec();
        token.extend_from_slice(&digest("token2"));
        let session_token = base64::engine::general_purpose::STANDARD.encode(token);
        self.keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(access_key_id.clone(), (role_arn.to_string(), session_token.clone()));
        Credentials { access_key_id, secret_access_key, session_token }
    }

    pub fn role_for_access_key(&self, access_key_id: &str) -> Option<String> {
        self.key(access_key_id).map(|(role, _)| role)
    }

    /// A stable unique id for the role (the `AROA…` part of an assumed
    /// role's user id).
    fn role_id(role_arn: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let digest = Sha256::digest(format!("reventless-local-cloud/role-id/{role_arn}").as_bytes());
        digest.iter().take(17).map(|b| ALPHABET[usize::from(b % 32)] as char).collect()
    }

    /// The role and session token issued with an access key.
    fn key(&self, access_key_id: &str) -> Option<(String, String)> {
        self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(access_key_id).cloned()
    }

    /// The role's policies, read again when older than `POLICY_TTL`.
    pub async fn policies(&self, role_arn: &str) -> Result<Arc<RolePolicies>, PolicyError> {
        let slot = self
            .roles
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(role_arn.to_string())
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        if let Some(cached) = slot.as_ref().filter(|cached| cached.read_at.elapsed() < POLICY_TTL) {
            return Ok(cached.policies.clone());
        }
        let read_at = Instant::now();
        let policies = Arc::new(self.read(role_arn).await?);
        *slot = Some(Cached { read_at, policies: policies.clone() });
        Ok(policies)
    }

    /// What the role's policies say about one request.
    pub async fn decide(&self, role_arn: &str, action: &str, resource: &str) -> Result<Decision, PolicyError> {
        Ok(self.policies(role_arn).await?.decide(action, resource))
    }

    /// Reads every inline policy, the attached managed policies and the
    /// permissions boundary. A role that does not exist has no policies.
    async fn read(&self, role_arn: &str) -> Result<RolePolicies, PolicyError> {
        let name = role_name(role_arn).ok_or_else(|| PolicyError::NotARole(role_arn.to_string()))?;
        let read = |e: &dyn std::fmt::Display| PolicyError::Read(e.to_string());
        let role = match self.client.get_role().role_name(name).send().await {
            Ok(output) => output.role,
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_entity_exception()) => {
                return Ok(RolePolicies::default());
            }
            Err(error) => return Err(read(&aws_smithy_types::error::display::DisplayErrorContext(error))),
        };

        let mut inline = Vec::new();
        let mut marker = None;
        loop {
            let page = self
                .client
                .list_role_policies()
                .role_name(name)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| read(&aws_smithy_types::error::display::DisplayErrorContext(e)))?;
            inline.extend(page.policy_names().iter().cloned());
            marker = page.marker().map(str::to_string);
            if !page.is_truncated() || marker.is_none() {
                break;
            }
        }
        let documents = futures::future::try_join_all(inline.into_iter().map(|policy| async move {
            let output = self
                .client
                .get_role_policy()
                .role_name(name)
                .policy_name(&policy)
                .send()
                .await
                .map_err(|e| read(&aws_smithy_types::error::display::DisplayErrorContext(e)))?;
            parse(&policy, output.policy_document())
        }));

        let mut attached = Vec::new();
        let mut marker = None;
        loop {
            let page = self
                .client
                .list_attached_role_policies()
                .role_name(name)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| read(&aws_smithy_types::error::display::DisplayErrorContext(e)))?;
            attached.extend(page.attached_policies().iter().filter_map(|p| p.policy_arn().map(str::to_string)));
            marker = page.marker().map(str::to_string);
            if !page.is_truncated() || marker.is_none() {
                break;
            }
        }
        let managed = futures::future::try_join_all(attached.iter().map(|arn| self.managed(arn)));
        let (mut identity, managed) = futures::future::try_join(documents, managed).await?;
        identity.extend(managed);

        let boundary =
            match role.as_ref().and_then(|r| r.permissions_boundary()).and_then(|b| b.permissions_boundary_arn()) {
                Some(arn) => Some(self.managed(arn).await?),
                None => None,
            };
        Ok(RolePolicies { identity, boundary })
    }

    /// A managed policy's default version.
    async fn managed(&self, arn: &str) -> Result<policy::Policy, PolicyError> {
        let read = |e: &dyn std::fmt::Display| PolicyError::Read(e.to_string());
        let policy = self
            .client
            .get_policy()
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| read(&aws_smithy_types::error::display::DisplayErrorContext(e)))?;
        let version = policy
            .policy()
            .and_then(|p| p.default_version_id())
            .ok_or_else(|| PolicyError::Read(format!("{arn} has no default version")))?;
        let output = self
            .client
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .map_err(|e| read(&aws_smithy_types::error::display::DisplayErrorContext(e)))?;
        let document = output
            .policy_version()
            .and_then(|v| v.document())
            .ok_or_else(|| PolicyError::Read(format!("{arn} {version} has no document")))?;
        parse(arn, document)
    }
}

#[async_trait::async_trait]
impl Access for Iam {
    /// Refuses when the policies cannot be read (logged): unchecked is not
    /// allowed.
    async fn authorize(&self, role_arn: &str, action: &str, resource: &str) -> Result<(), Denied> {
        let denied =
            || Denied { principal: principal(role_arn), action: action.to_string(), resource: resource.to_string() };
        match self.decide(role_arn, action, resource).await {
            Ok(Decision::Allow) => Ok(()),
            Ok(decision) => {
                tracing::warn!(role = role_arn, action, resource, "denied {}", decision.reason(action));
                Err(denied())
            }
            Err(error) => {
                tracing::warn!(role = role_arn, action, resource, %error, "denied: policies unreadable");
                Err(denied())
            }
        }
    }
}

/// A policy document as IAM returns it: URL-encoded (real IAM) or plain.
fn parse(name: &str, document: &str) -> Result<policy::Policy, PolicyError> {
    policy::Policy::parse(&document_text(document))
        .map_err(|error| PolicyError::Malformed { name: name.to_string(), error })
}

/// The JSON of a policy document as IAM returns it (URL-encoded on real IAM and moto, or plain).
pub fn document_text(document: &str) -> std::borrow::Cow<'_, str> {
    if document.trim_start().starts_with('{') {
        std::borrow::Cow::Borrowed(document)
    } else {
        percent_encoding::percent_decode_str(document).decode_utf8_lossy()
    }
}

/// Whether the role's trust policy, read from the emulator's IAM, lets the
/// AWS service `service` (`lambda.amazonaws.com`, …) assume it; a role that
/// does not exist is trusted by no one. Err: IAM could not be read.
pub async fn service_may_assume(client: &aws_sdk_iam::Client, role_arn: &str, service: &str) -> Result<bool, String> {
    let Some(name) = role_name(role_arn) else { return Ok(false) };
    let role = match client.get_role().role_name(name).send().await {
        Ok(output) => output.role,
        Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_entity_exception()) => return Ok(false),
        Err(error) => return Err(aws_smithy_types::error::display::DisplayErrorContext(error).to_string()),
    };
    let Some(document) = role.as_ref().and_then(|r| r.assume_role_policy_document()) else { return Ok(false) };
    let document: serde_json::Value = serde_json::from_str(&document_text(document))
        .map_err(|e| format!("the trust policy of {role_arn} is not JSON: {e}"))?;
    Ok(trust_allows(&document, service))
}

/// Whether a trust policy allows `sts:AssumeRole` to the service principal
/// `service`: some `Allow` statement names it and no `Deny` does.
/// Conditions are not evaluated (the service is taken to meet them).
pub fn trust_allows(document: &serde_json::Value, service: &str) -> bool {
    use serde_json::Value;
    let listed = |value: &Value, wanted: &dyn Fn(&str) -> bool| match value {
        Value::String(one) => wanted(one),
        Value::Array(many) => many.iter().filter_map(Value::as_str).any(wanted),
        _ => false,
    };
    let statements = match &document["Statement"] {
        Value::Array(statements) => statements.clone(),
        statement @ Value::Object(_) => vec![statement.clone()],
        _ => Vec::new(),
    };
    let applies = |statement: &Value| {
        let assume = listed(&statement["Action"], &|a| a == "sts:AssumeRole" || a == "sts:*" || a == "*");
        let principal = &statement["Principal"];
        let named = principal == "*" || listed(&principal["Service"], &|s| s == service);
        assume && named
    };
    let effect = |statement: &Value, effect: &str| statement["Effect"] == effect && applies(statement);
    !statements.iter().any(|s| effect(s, "Deny")) && statements.iter().any(|s| effect(s, "Allow"))
}

/// `NAME` of `arn:aws:iam::ACCOUNT:role/path/…/NAME`.
pub fn role_name(role_arn: &str) -> Option<&str> {
    let resource = role_arn.splitn(6, ':').nth(5)?;
    resource.strip_prefix("role/")?.rsplit('/').next().filter(|name| !name.is_empty())
}

/// The account of an ARN (`arn:PARTITION:SERVICE:REGION:ACCOUNT:…`).
pub fn account_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|account| !account.is_empty())
}

/// The caller as AWS names it in refusals:
/// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`; the session is named
/// after the role (one role per function).
pub fn principal(role_arn: &str) -> String {
    let account = account_of(role_arn).unwrap_or("000000000000");
    let name = role_name(role_arn).unwrap_or(role_arn);
    format!("arn:aws:sts::{account}:assumed-role/{name}/{name}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn role_names_and_principals() {
        assert_eq!(role_name("arn:aws:iam::123456789012:role/shop-dev-orders-Api"), Some("shop-dev-orders-Api"));
        assert_eq!(role_name("arn:aws:iam::123456789012:role/service/x/fn-role"), Some("fn-role"));
        assert_eq!(role_name("arn:aws:iam::123456789012:user/bob"), None);
        assert_eq!(role_name("fn-role"), None);
        assert_eq!(
            principal("arn:aws:iam::123456789012:role/a/b"),
            "arn:aws:sts::123456789012:assumed-role/b/b".to_string()
        );
    }

    #[test]
    fn url_encoded_documents_are_decoded() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C\
                       %22Action%22%3A%22sqs%3A%2A%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D";
        let policy = parse("p", encoded).unwrap();
        let policies = RolePolicies { identity: vec![policy], boundary: None };
        assert_eq!(policies.decide("sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q"), Decision::Allow);
        assert!(parse("p", "%7Bnot").is_err());
    }

    #[test]
    fn trust_policies_name_the_service_that_may_assume_the_role() {
        let trust =
            |statements: serde_json::Value| serde_json::json!({"Version": "2012-10-17", "Statement": statements});
        let lambda = trust(serde_json::json!([{"Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]));
        assert!(trust_allows(&lambda, "lambda.amazonaws.com"));
        assert!(!trust_allows(&lambda, "scheduler.amazonaws.com"));
        let both = trust(serde_json::json!({"Effect": "Allow",
            "Principal": {"Service": ["scheduler.amazonaws.com", "lambda.amazonaws.com"]}, "Action": ["sts:AssumeRole"]}));
        assert!(trust_allows(&both, "scheduler.amazonaws.com"));
        let other_action = trust(serde_json::json!([{"Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:TagSession"}]));
        assert!(!trust_allows(&other_action, "lambda.amazonaws.com"));
        let denied = trust(serde_json::json!([
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"},
            {"Effect": "Deny", "Principal": "*", "Action": "sts:*"}]));
        assert!(!trust_allows(&denied, "lambda.amazonaws.com"));
        assert!(!trust_allows(&serde_json::json!({}), "lambda.amazonaws.com"));
    }

    #[tokio::test]
    async fn credentials_are_stable_and_name_their_role() {
        let config = aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
        let iam = Iam::new(&config);
        let a = iam.credentials_for("arn:aws:iam::123456789012:role/a");
        let b = iam.credentials_for("arn:aws:iam::123456789012:role/b");
        assert_eq!(a, iam.credentials_for("arn:aws:iam::123456789012:role/a"));
        assert_ne!(a.access_key_id, b.access_key_id);
        assert_ne!(a.secret_access_key, b.secret_access_key);
        assert!(a.access_key_id.starts_with("ASIA") && a.access_key_id.len() == 20);
        assert_eq!(iam.role_for_access_key(&b.access_key_id).as_deref(), Some("arn:aws:iam::123456789012:role/b"));
        assert_eq!(iam.role_for_access_key("AKIAUNKNOWN"), None);
        let other = Iam::new(&config);
        assert_eq!(other.role_for_access_key(&a.access_key_id), None, "only keys this Iam issued are known");
        assert_eq!(other.credentials_for("arn:aws:iam::123456789012:role/a"), a, "stable across restarts");
    }
}
