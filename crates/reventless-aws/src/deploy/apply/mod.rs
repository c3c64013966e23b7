//! Reading what exists, diffing it with the plan, and applying the diff with
//! idempotent `ensure_*` calls (at most 5 in flight, in dependency waves).
use std::sync::Arc;

use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::Serialize;

use super::plan::{PUBLIC_URL_INVOKE_STATEMENT, PUBLIC_URL_STATEMENT, ResourceKind};
use crate::package::Package;

mod buckets;
mod diff;
mod discover;
mod ensure;
mod observe;
mod remove;
mod tables;
mod websocket;

pub use diff::{Change, Scope, changed_fields, diff};

/// The statements that make a function URL public (both, or it is not).
const PUBLIC_URL_STATEMENTS: [&str; 2] = [PUBLIC_URL_STATEMENT, PUBLIC_URL_INVOKE_STATEMENT];

/// Calls in flight at once.
pub const MAX_IN_FLIGHT: usize = 5;

/// The service clients of a deploy (made once).
#[derive(Clone)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub iam: aws_sdk_iam::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub sts: aws_sdk_sts::Client,
    pub scheduler: aws_sdk_scheduler::Client,
    pub apigatewayv2: aws_sdk_apigatewayv2::Client,
    /// Tasks buckets.
    pub s3: aws_sdk_s3::Client,
    /// Every API call made (for the summary).
    pub calls: Arc<std::sync::atomic::AtomicUsize>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Serialize)]
pub enum DeployError {
    #[error("{call} {name}: {message}")]
    Aws { call: String, name: String, message: String },
    #[error("{0}")]
    Refused(String),
    #[error("stage `{stage}` is being deployed by {owner} since {since} (lock in {table}); try again later")]
    Locked { stage: String, owner: String, since: u64, table: String },
}

fn aws<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug + Send + Sync + 'static>(
    call: &str,
    name: &str,
) -> impl FnOnce(aws_smithy_runtime_api_error::SdkError<E, R>) -> DeployError {
    let (call, name) = (call.to_string(), name.to_string());
    move |error| {
        let message = match error.code() {
            Some(code) => format!("{code}: {}", error.message().unwrap_or_default()),
            None => aws_sdk_dynamodb::error::DisplayErrorContext(&error).to_string(),
        };
        DeployError::Aws { call, name, message }
    }
}

/// The SDK's error type (the same across service crates).
mod aws_smithy_runtime_api_error {
    pub use aws_sdk_dynamodb::error::SdkError;
}

fn code<E: ProvideErrorMetadata, R>(error: &aws_smithy_runtime_api_error::SdkError<E, R>) -> Option<&str> {
    error.code()
}

impl Clients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            lambda: aws_sdk_lambda::Client::new(sdk),
            iam: aws_sdk_iam::Client::new(sdk),
            logs: aws_sdk_cloudwatchlogs::Client::new(sdk),
            ssm: aws_sdk_ssm::Client::new(sdk),
            sts: aws_sdk_sts::Client::new(sdk),
            scheduler: aws_sdk_scheduler::Client::new(sdk),
            apigatewayv2: aws_sdk_apigatewayv2::Client::new(sdk),
            s3: aws_sdk_s3::Client::new(sdk),
            calls: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        }
    }

    fn count(&self) {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn call_count(&self) -> usize {
        self.calls.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The account the credentials belong to.
    pub async fn account(&self) -> Result<String, DeployError> {
        self.count();
        let identity = self.sts.get_caller_identity().send().await.map_err(aws("GetCallerIdentity", "-"))?;
        identity
            .account()
            .map(str::to_string)
            .ok_or_else(|| DeployError::Refused("no account in the caller identity".into()))
    }
}

fn code_is<E: ProvideErrorMetadata, R>(error: &aws_smithy_runtime_api_error::SdkError<E, R>, expected: &str) -> bool {
    error.code() == Some(expected)
}

/// A function's zipped code.
#[derive(Clone)]
pub struct CodeZip {
    pub package: Package,
    pub bytes: Arc<Vec<u8>>,
}

/// A resource that exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Existing {
    pub kind: ResourceKind,
    pub name: String,
    pub stack: String,
    /// The mapping's UUID (event source mappings).
    pub id: Option<String>,
}

impl Existing {
    fn new(kind: ResourceKind, name: &str, stack: &str) -> Self {
        Self { kind, name: name.to_string(), stack: stack.to_string(), id: None }
    }
}
