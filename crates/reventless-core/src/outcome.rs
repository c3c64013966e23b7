use reventless_spec::WireError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::StoreError;

/// The answer to a command. A domain rejection is an outcome, not an error:
/// nothing was appended and the caller learns why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommandOutcome {
    /// Decided and appended (or nothing to change).
    #[serde(rename_all = "camelCase")]
    Accepted {
        /// The entity (aggregate id, or the slice command's first tag value).
        entity_id: String,
        /// Events appended (0 when the command changed nothing).
        event_count: usize,
        /// Log position of the last appended event.
        position: Option<u64>,
    },
    /// Refused by the domain or by authorization; nothing was appended.
    #[serde(rename_all = "camelCase")]
    Rejected {
        /// The entity, when known.
        entity_id: Option<String>,
        /// The error variant name, e.g. `CategoryNotFound`.
        error_code: String,
        /// The error variant's fields.
        error_detail: Value,
        /// Whether the domain or the access check refused it.
        cause: RejectionCause,
    },
    /// Queued for an asynchronous component.
    #[serde(rename_all = "camelCase")]
    Pending {
        /// The entity (its commands run in order).
        entity_id: String,
        /// Ask for the outcome with this id (`<Plugin>_CommandOutcome(commandId)`).
        command_id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
/// Who refused a command.
pub enum RejectionCause {
    /// The component's `decide` (or `translate`) returned an error.
    DomainRejection,
    /// The caller lacks a role or an identity (`AccessRefused`).
    AccessRefusal,
}

impl CommandOutcome {
    /// Whether the command was accepted.
    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Accepted { .. })
    }

    /// The error code of a rejection.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Self::Rejected { error_code, .. } => Some(error_code),
            _ => None,
        }
    }
}

/// Refuses a caller who lacks the component's roles; stamps the owner field
/// of the command input with the caller's id (unless the caller may act for
/// others and set it). A refusal is the `AccessRefused` outcome.
pub fn authorize(
    caller: &Caller,
    roles: &[&str],
    requires_user: bool,
    owner: Option<reventless_spec::Owner>,
    input: &mut Value,
) -> Result<(), CommandOutcome> {
    let refuse = |reason: &str| CommandOutcome::Rejected {
        entity_id: None,
        error_code: "AccessRefused".into(),
        error_detail: serde_json::json!({ "reason": reason }),
        cause: RejectionCause::AccessRefusal,
    };
    if !roles.is_empty() && !caller.has_any_role(roles) {
        return Err(refuse(&format!("requires one of the roles {}", roles.join(", "))));
    }
    if requires_user && caller.user_id.is_none() {
        return Err(refuse("requires an identified caller"));
    }
    let Some(owner) = owner else { return Ok(()) };
    let Value::Object(fields) = input else { return Ok(()) };
    let set_by_caller = fields.get(owner.field).is_some_and(|v| !v.is_null());
    if set_by_caller && caller.has_any_role(owner.override_roles) {
        return Ok(());
    }
    match &caller.user_id {
        Some(user) => {
            fields.insert(owner.field.to_string(), Value::String(user.clone()));
            Ok(())
        }
        None => Err(refuse("an anonymous caller cannot own this command")),
    }
}

/// The caller of a command, as the platform authenticated it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// The caller's id (`None`: anonymous).
    pub user_id: Option<String>,
    /// The caller's roles.
    pub roles: Vec<String>,
}

impl Caller {
    /// Whether the caller holds one of `roles`.
    pub fn has_any_role(&self, roles: &[&str]) -> bool {
        self.roles.iter().any(|held| roles.contains(&held.as_str()))
    }
}

/// A command addressed to a plugin, in wire form (what an API or a queue delivers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandRequest {
    /// The plugin answering it.
    pub plugin: String,
    /// `<Aggregate>_<Variant>` for aggregate commands, `<Variant>` for DCB commands.
    pub command: String,
    /// The entity of an aggregate command.
    pub entity_id: Option<String>,
    /// The command's wire data (its fields as JSON).
    pub input: Value,
    /// Who sends it.
    #[serde(default)]
    pub caller: Caller,
    /// Shared by everything one user request causes (its events, and the
    /// commands of automations, extensions and translations they wake).
    pub correlation_id: Option<String>,
    /// What caused this command: the event an automation, extension or
    /// outbound translation acted on, or an inbound translation's audit id.
    /// None for a command from outside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    /// Unique per request; the causation id of the events it appends.
    pub command_id: String,
    /// Sent by the plugin's own components (extensions, automations): trusted,
    /// not subject to the roles of the API.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
}

impl CommandRequest {
    /// A command `command` of `plugin` with its wire `input`, from an anonymous caller, with a fresh command id.
    pub fn new(plugin: impl Into<String>, command: impl Into<String>, input: Value) -> Self {
        Self {
            plugin: plugin.into(),
            command: command.into(),
            entity_id: None,
            input,
            caller: Caller::default(),
            correlation_id: None,
            causation_id: None,
            command_id: uuid::Uuid::now_v7().to_string(),
            internal: false,
        }
    }

    /// A command a plugin's own component sends (trusted: no API roles).
    pub fn internal(plugin: impl Into<String>, dispatch: reventless_spec::Dispatch) -> Self {
        let mut request = Self::new(plugin, dispatch.command, dispatch.input);
        request.entity_id = dispatch.entity_id;
        request.internal = true;
        request
    }

    /// Addresses the aggregate entity `id`.
    pub fn entity(mut self, id: impl Into<String>) -> Self {
        self.entity_id = Some(id.into());
        self
    }

    /// Sent by `caller`.
    pub fn caller(mut self, caller: Caller) -> Self {
        self.caller = caller;
        self
    }

    /// The request as caused by something already correlated (an event, an audit row).
    pub fn caused_by(mut self, correlation_id: Option<String>, causation_id: impl Into<String>) -> Self {
        self.correlation_id = correlation_id;
        self.causation_id = Some(causation_id.into());
        self
    }
}

/// Why a command could not be handled (not a domain rejection).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error("unknown plugin `{0}`")]
    /// No hosted plugin has this name.
    UnknownPlugin(String),
    /// The plugin has no such command.
    #[error("plugin `{plugin}` has no command `{command}` (known: {known})")]
    UnknownCommand {
        /// The plugin.
        plugin: String,
        /// The command asked for.
        command: String,
        /// The plugin's commands.
        known: String,
    },
    /// The input does not decode as the command (nothing ran).
    #[error("bad input for `{command}`: {message}")]
    BadInput {
        /// The command.
        command: String,
        /// What is wrong with the input.
        message: String,
    },
    /// An aggregate command without its entity id.
    #[error("command `{0}` needs an entity id")]
    MissingEntityId(String),
    /// Every attempt lost its append to a concurrent writer; nothing was appended.
    #[error("gave up after {attempts} attempts: concurrent writers kept conflicting")]
    Conflict {
        /// How many decisions were tried.
        attempts: u32,
    },
    /// A component broke its contract (an event type not in `PRODUCES`, …).
    #[error("component contract broken: {0}")]
    Contract(String),
    /// A stored event does not decode as its type.
    #[error("stored event cannot be read: {0}")]
    CorruptEvent(String),
    /// A stored event written by a newer build (its type's version is higher
    /// than this build declares): not read as an older shape, not skipped;
    /// the work is retried until the newer code runs here.
    #[error(
        "event {event_id} at position {position}: `{event_type}` was stored at version {stored}, but this build knows versions up to {known}"
    )]
    NewerEventVersion {
        /// The event's wire name.
        event_type: String,
        /// The version it was stored at.
        stored: u32,
        /// The newest version this build knows.
        known: u32,
        /// The event's id.
        event_id: String,
        /// Its position in the log.
        position: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EngineError {
    pub(crate) fn bad_input(command: &str, error: WireError) -> Self {
        let message = match error {
            WireError::InvalidData { message, .. } => message,
            other => other.to_string(),
        };
        Self::BadInput { command: command.to_string(), message }
    }
}
