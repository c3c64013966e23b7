//! The outcomes of async commands, kept by command id in a query table per
//! plugin (`<Plugin>_CommandOutcomes`): `PENDING` when queued, then what the
//! command did — so a caller holding the `commandId` of a `PENDING` answer,
//! and an automation that sent it, can learn that it was rejected.
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::outcome::{CommandOutcome, EngineError};

/// How long an outcome is kept when the host does not say.
pub const DEFAULT_OUTCOME_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// The query table holding `plugin`'s async command outcomes.
pub fn outcomes_table(plugin: &str) -> String {
    format!("{plugin}_CommandOutcomes")
}

/// Where an async command is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutcomeStatus {
    /// Queued, not run yet.
    Pending,
    /// Ran and was accepted (`eventCount`, `position`).
    Accepted,
    /// The domain refused it (`errorCode` is the error variant).
    Rejected,
    /// It could never run (bad input, unknown command, a contract broken).
    Failed,
}

/// One async command's outcome, as stored (and as GraphQL's `CommandOutcome` reads it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutcomeRecord {
    /// The command's id (the `commandId` of its `PENDING` answer).
    pub command_id: String,
    /// The command's name.
    pub command: String,
    /// Where it is.
    pub status: OutcomeStatus,
    /// The entity it addressed.
    pub entity_id: Option<String>,
    /// Events appended, once accepted.
    pub event_count: Option<usize>,
    /// Log position of its last event, once accepted.
    pub position: Option<u64>,
    /// The rejection's error code, or the failure's kind.
    pub error_code: Option<String>,
    /// The rejection's fields, or the failure's message.
    #[serde(default)]
    pub error_detail: Value,
    /// When it ran (milliseconds since the Unix epoch).
    pub finished_at: Option<u64>,
    /// After this (milliseconds since the epoch) the record is gone.
    pub expires_at: u64,
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl OutcomeRecord {
    /// A command just queued.
    pub fn pending(command_id: &str, command: &str, entity_id: &str, retention: Duration) -> Self {
        let now = reventless_spec::Timestamp::now().0;
        Self {
            command_id: command_id.to_string(),
            command: command.to_string(),
            status: OutcomeStatus::Pending,
            entity_id: (!entity_id.is_empty()).then(|| entity_id.to_string()),
            event_count: None,
            position: None,
            error_code: None,
            error_detail: Value::Null,
            finished_at: None,
            expires_at: now.saturating_add(millis(retention)),
        }
    }

    /// What the command did.
    pub fn finish(mut self, outcome: &CommandOutcome, retention: Duration) -> Self {
        let now = reventless_spec::Timestamp::now().0;
        match outcome {
            CommandOutcome::Accepted { entity_id, event_count, position } => {
                self.status = OutcomeStatus::Accepted;
                self.entity_id = Some(entity_id.clone());
                self.event_count = Some(*event_count);
                self.position = *position;
            }
            CommandOutcome::Rejected { entity_id, error_code, error_detail, .. } => {
                self.status = OutcomeStatus::Rejected;
                self.entity_id = entity_id.clone().or(self.entity_id);
                self.error_code = Some(error_code.clone());
                self.error_detail = error_detail.clone();
            }
            // A queued command's own outcome is never queued again.
            CommandOutcome::Pending { .. } => {}
        }
        self.finished_at = Some(now);
        self.expires_at = now.saturating_add(millis(retention));
        self
    }

    /// The command could never run.
    pub fn fail(mut self, error: &EngineError, retention: Duration) -> Self {
        let now = reventless_spec::Timestamp::now().0;
        self.status = OutcomeStatus::Failed;
        self.error_code = Some(failure_code(error).to_string());
        self.error_detail = Value::String(error.to_string());
        self.finished_at = Some(now);
        self.expires_at = now.saturating_add(millis(retention));
        self
    }

    /// Whether the record's retention ended before `now` (ms since the epoch).
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires_at <= now
    }
}

/// The error code of a command that could never run.
pub fn failure_code(error: &EngineError) -> &'static str {
    match error {
        EngineError::BadInput { .. } => "BadInput",
        EngineError::UnknownCommand { .. } | EngineError::UnknownPlugin(_) => "UnknownCommand",
        EngineError::MissingEntityId(_) => "MissingEntityId",
        EngineError::Contract(_) => "ContractViolated",
        EngineError::CorruptEvent(_) => "CorruptEvent",
        _ => "Internal",
    }
}
