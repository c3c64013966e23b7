//! Event source mappings, driven exactly as configured: SQS (FIFO) queues and
//! DynamoDB streams read from the emulator, batches handed to the function.
use serde::{Deserialize, Serialize};

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
