//! Event source mappings, driven exactly as configured: SQS (FIFO) queues and
//! DynamoDB streams read from the emulator, batches handed to the function.
//!
//! Each mapping is one task: it owns the mapping's position (a stream's
//! per-shard checkpoints), so `put` with a changed configuration reaches the
//! running task through a watch channel instead of restarting it, and a
//! disabled mapping parks the task with its position kept.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::iam::Access;
use crate::invoke::Invoker;

pub mod filter;
mod sqs;
mod streams;

pub use filter::{Filter, InvalidPattern};

/// One mapping as the Lambda API stores it (what `Create/UpdateEventSourceMapping` set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MappingConfig {
    #[serde(rename = "UUID")]
    pub uuid: String,
    /// The function's name (not its ARN).
    #[serde(skip)]
    pub function_name: String,
    pub function_arn: String,
    pub event_source_arn: String,
    pub batch_size: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_batching_window_in_seconds: Option<i32>,
    /// `TRIM_HORIZON` | `LATEST` (streams only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_position: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bisect_batch_on_function_error: Option<bool>,
    /// -1 = until the record expires (streams only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_retry_attempts: Option<i32>,
    /// `ReportBatchItemFailures` when the function answers partial failures.
    #[serde(default)]
    pub function_response_types: Vec<String>,
    /// The `Pattern`s of `FilterCriteria.Filters`.
    #[serde(default)]
    pub filter_patterns: Vec<String>,
    /// `DestinationConfig.OnFailure.Destination` (an SQS queue ARN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure_destination: Option<String>,
    pub enabled: bool,
}

impl MappingConfig {
    fn reports_batch_item_failures(&self) -> bool {
        self.function_response_types.iter().any(|t| t == "ReportBatchItemFailures")
    }
}

/// `LastProcessingResult` before the mapping did anything.
pub const NO_RECORDS_PROCESSED: &str = "No records processed";
/// `LastProcessingResult` after a batch the function accepted.
pub const OK: &str = "OK";
/// `LastProcessingResult` after a batch the function failed.
pub const FUNCTION_CALL_FAILED: &str = "PROBLEM: Function call failed";

/// How long an authorization of the function's role on the source holds
/// before it is asked again (policies change on deploy, not per batch).
const AUTHORIZATION_TTL: Duration = Duration::from_secs(2);
/// Pause before trying again after a problem that is not the function's.
const PROBLEM_PAUSE: Duration = Duration::from_secs(2);

/// The event source mappings of the local Lambda service, each driven by its own task.
pub struct Mappings {
    shared: Arc<Shared>,
    running: Mutex<HashMap<String, Running>>,
    /// Captured at construction so `put` may be called outside the runtime.
    runtime: Option<tokio::runtime::Handle>,
}

/// What every mapping task uses.
pub(crate) struct Shared {
    pub(crate) sqs: aws_sdk_sqs::Client,
    pub(crate) streams: aws_sdk_dynamodbstreams::Client,
    pub(crate) invoker: Arc<dyn Invoker>,
    pub(crate) access: Arc<dyn Access>,
    pub(crate) region: String,
}

struct Running {
    event_source_arn: String,
    config: watch::Sender<MappingConfig>,
    status: Status,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Mappings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Mappings").field("running", &running.keys().collect::<Vec<_>>()).finish()
    }
}

impl Mappings {
    pub fn new(moto: aws_config::SdkConfig, invoker: Arc<dyn Invoker>, access: Arc<dyn Access>) -> Self {
        let region = moto.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".to_string());
        let shared = Arc::new(Shared {
            sqs: aws_sdk_sqs::Client::new(&moto),
            streams: aws_sdk_dynamodbstreams::Client::new(&moto),
            invoker,
            access,
            region,
        });
        Mappings { shared, running: Mutex::new(HashMap::new()), runtime: tokio::runtime::Handle::try_current().ok() }
    }

    /// Starts or reconfigures one mapping (enabled = false: stop polling it, keep its position).
    ///
    /// The same source keeps its task (and so its position); a different
    /// source is a different mapping in all but its UUID, so it starts afresh.
    pub fn put(&self, config: MappingConfig) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = running.get(&config.uuid)
            && existing.event_source_arn == config.event_source_arn
            && existing.task.as_ref().is_some_and(|t| !t.is_finished())
        {
            existing.config.send_replace(config);
            return;
        }
        if let Some(old) = running.remove(&config.uuid) {
            old.stop();
        }
        let status = Status::new(NO_RECORDS_PROCESSED);
        let (sender, receiver) = watch::channel(config.clone());
        let runtime = self.runtime.clone().or_else(|| tokio::runtime::Handle::try_current().ok());
        let shared = self.shared.clone();
        let task_status = status.clone();
        let task = match (source_kind(&config.event_source_arn), runtime) {
            (_, None) => {
                status.set("PROBLEM: the local cloud has no async runtime to poll on");
                None
            }
            (Some(SourceKind::Sqs), Some(rt)) => Some(rt.spawn(sqs::run(shared, receiver, task_status))),
            (Some(SourceKind::DynamoDbStream), Some(rt)) => Some(rt.spawn(streams::run(shared, receiver, task_status))),
            (None, _) => {
                status.set(&format!("PROBLEM: unsupported event source {}", config.event_source_arn));
                None
            }
        };
        running.insert(
            config.uuid.clone(),
            Running { event_source_arn: config.event_source_arn, config: sender, status, task },
        );
    }

    pub fn remove(&self, uuid: &str) {
        let removed = self.running.lock().unwrap_or_else(PoisonError::into_inner).remove(uuid);
        if let Some(old) = removed {
            old.stop();
        }
    }

    /// What the mapping last did, e.g. "OK", "PROBLEM: Function call failed",
    /// "PROBLEM: ... not authorized ..." (Lambda's `LastProcessingResult`).
    pub fn last_processing_result(&self, uuid: &str) -> Option<String> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner).get(uuid).map(|r| r.status.get())
    }

    /// Stops every poller task.
    pub fn shutdown(&self) {
        let all: Vec<Running> =
            self.running.lock().unwrap_or_else(PoisonError::into_inner).drain().map(|(_, r)| r).collect();
        for running in all {
            running.stop();
        }
    }
}

impl Drop for Mappings {
    /// Pollers outliving the service would keep draining queues nobody serves.
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Running {
    /// Aborting the task drops its extra pollers too (they live in its `JoinSet`).
    fn stop(self) {
        if let Some(task) = self.task {
            task.abort();
        }
    }
}

enum SourceKind {
    Sqs,
    DynamoDbStream,
}

fn source_kind(arn: &str) -> Option<SourceKind> {
    if arn.starts_with("arn:aws:sqs:") {
        Some(SourceKind::Sqs)
    } else if arn.starts_with("arn:aws:dynamodb:") && arn.contains("/stream/") {
        Some(SourceKind::DynamoDbStream)
    } else {
        None
    }
}

/// A mapping's `LastProcessingResult`, shared by its task and the control plane.
#[derive(Clone)]
pub(crate) struct Status(Arc<Mutex<String>>);

impl Status {
    fn new(initial: &str) -> Self {
        Status(Arc::new(Mutex::new(initial.to_string())))
    }

    pub(crate) fn set(&self, result: &str) {
        let mut current = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if *current != result {
            if result.starts_with("PROBLEM") {
                tracing::warn!(result, "event source mapping");
            }
            *current = result.to_string();
        }
    }

    fn get(&self) -> String {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// The current configuration once the mapping is enabled; None once the
/// mapping is gone (its sender dropped).
pub(crate) async fn enabled_config(config: &mut watch::Receiver<MappingConfig>) -> Option<MappingConfig> {
    loop {
        {
            let current = config.borrow_and_update();
            if current.enabled {
                return Some(current.clone());
            }
        }
        config.changed().await.ok()?;
    }
}

/// Whether the function's role may read the source, asked at most every
/// [`AUTHORIZATION_TTL`]; the problem text is Lambda's `LastProcessingResult`.
#[derive(Default)]
pub(crate) struct SourceAccess {
    granted: Option<(String, String, Instant)>,
}

impl SourceAccess {
    /// The function's role when it holds every action on `resource`.
    pub(crate) async fn check(
        &mut self,
        shared: &Shared,
        config: &MappingConfig,
        actions: &[&str],
    ) -> Result<String, String> {
        let role = shared
            .invoker
            .role_of(&config.function_name)
            .ok_or_else(|| format!("PROBLEM: Function not found: {}", config.function_arn))?;
        if let Some((granted_role, function, at)) = &self.granted
            && *granted_role == role
            && *function == config.function_name
            && at.elapsed() < AUTHORIZATION_TTL
        {
            return Ok(role);
        }
        self.granted = None;
        for action in actions {
            shared.access.authorize(&role, action, &config.event_source_arn).await.map_err(|denied| {
                format!(
                    "PROBLEM: Lambda cannot read {} with the execution role of {}: {denied}",
                    config.event_source_arn, config.function_arn
                )
            })?;
        }
        self.granted = Some((role.clone(), config.function_name.clone(), Instant::now()));
        Ok(role)
    }
}

/// The queue URL of an SQS queue ARN (`arn:aws:sqs:region:account:name`).
pub(crate) async fn queue_url(sqs: &aws_sdk_sqs::Client, arn: &str) -> Result<String, String> {
    let parts: Vec<&str> = arn.split(':').collect();
    let [_, _, _, _, account, name] = parts.as_slice() else {
        return Err(format!("not an SQS queue ARN: {arn}"));
    };
    sqs.get_queue_url()
        .queue_name(*name)
        .queue_owner_aws_account_id(*account)
        .send()
        .await
        .map_err(|e| format!("cannot find the queue {arn}: {}", aws_sdk_sqs::error::DisplayErrorContext(&e)))?
        .queue_url
        .ok_or_else(|| format!("no URL for the queue {arn}"))
}

/// What a successful invocation's `batchItemFailures` say (with
/// `ReportBatchItemFailures`): the indexes of the failed items, or None when
/// the answer makes the whole batch a failure (Lambda's rules: an invalid
/// shape, an empty, null or unknown identifier).
pub(crate) fn failed_items(response: &serde_json::Value, identifiers: &[&str]) -> Option<Vec<usize>> {
    use serde_json::Value;
    let failures = match response {
        Value::Null => return Some(Vec::new()),
        Value::Object(fields) => match fields.get("batchItemFailures") {
            None | Some(Value::Null) => return Some(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(_) => return None,
        },
        _ => return None,
    };
    let mut indexes = Vec::with_capacity(failures.len());
    for failure in failures {
        let id = failure.get("itemIdentifier")?.as_str()?;
        if id.is_empty() {
            return None;
        }
        indexes.push(identifiers.iter().position(|known| *known == id)?);
    }
    indexes.sort_unstable();
    indexes.dedup();
    Some(indexes)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::failed_items;

    #[test]
    fn batch_item_failures_follow_lambdas_rules() {
        let ids = ["a", "b", "c"];
        assert_eq!(failed_items(&json!(null), &ids), Some(vec![]));
        assert_eq!(failed_items(&json!({}), &ids), Some(vec![]));
        assert_eq!(failed_items(&json!({"batchItemFailures": []}), &ids), Some(vec![]));
        assert_eq!(failed_items(&json!({"batchItemFailures": null}), &ids), Some(vec![]));
        assert_eq!(
            failed_items(&json!({"batchItemFailures": [{"itemIdentifier": "c"}, {"itemIdentifier": "b"}]}), &ids),
            Some(vec![1, 2])
        );
        // Whole-batch failures.
        assert_eq!(failed_items(&json!({"batchItemFailures": [{"itemIdentifier": ""}]}), &ids), None);
        assert_eq!(failed_items(&json!({"batchItemFailures": [{"itemIdentifier": null}]}), &ids), None);
        assert_eq!(failed_items(&json!({"batchItemFailures": [{"id": "a"}]}), &ids), None);
        assert_eq!(failed_items(&json!({"batchItemFailures": [{"itemIdentifier": "z"}]}), &ids), None);
        assert_eq!(failed_items(&json!({"batchItemFailures": "a"}), &ids), None);
        assert_eq!(failed_items(&json!("not an object"), &ids), None);
    }
}
