//! Running a function once: what the mappings, the scheduler, function URLs
//! and the `Invoke` API all go through.
use std::time::Duration;

use serde_json::Value;

/// Why an invocation produced no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvokeFailure {
    #[error("function not found: {0}")]
    NotFound(String),
    /// Reserved concurrency is exhausted (Lambda's `TooManyRequestsException`).
    #[error("rate exceeded: the function's reserved concurrency is in use")]
    Throttled,
    /// The function reported an error (`/invocation/{id}/error`): a handled
    /// error or a panic. `error` is the body the runtime posted.
    #[error("the function failed: {error}")]
    Function { error: Value },
    /// The function failed to start (`/init/error`, or the process exited).
    #[error("the function failed to start: {0}")]
    Init(String),
    /// No answer within the function's timeout: the instance was killed.
    #[error("the function timed out after {0:?}")]
    Timeout(Duration),
}

impl InvokeFailure {
    /// `FunctionError`-style kind, as `Invoke` reports it (`Unhandled`), or the
    /// API error code for failures before the function ran.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "ResourceNotFoundException",
            Self::Throttled => "TooManyRequestsException",
            Self::Function { .. } | Self::Init(_) | Self::Timeout(_) => "Unhandled",
        }
    }
}

/// Runs functions of the local Lambda service.
#[async_trait::async_trait]
pub trait Invoker: Send + Sync + 'static {
    /// One synchronous invocation (`RequestResponse`): waits for a free or
    /// new instance within the function's reserved concurrency.
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, InvokeFailure>;

    /// The ARN of the role the function runs under; None when there is no
    /// such function.
    fn role_of(&self, function: &str) -> Option<String>;
}
