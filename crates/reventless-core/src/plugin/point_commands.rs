//! Extension points that take commands: the publisher's handler (public
//! command → internal command) and the consumer's declared targets.
use std::marker::PhantomData;

use reventless_spec::{Dispatch, ExtensionPoint, ExtensionPointCommands, Message};
use serde::{Deserialize, Serialize};

use crate::outcome::EngineError;

/// A registered extension point's commands (type-erased): decides which
/// internal command a public one is.
pub trait PointCommandsHandler: Send + Sync {
    /// The point's name within its plugin (`Products`).
    fn point(&self) -> &'static str;
    /// The plugin the point type says publishes it.
    fn plugin(&self) -> &'static str;
    /// The plugins allowed to send (any when empty).
    fn senders(&self) -> &'static [&'static str];
    /// The public commands' wire names.
    fn commands(&self) -> &'static [&'static str];
    /// JSON Schema of the public command type.
    fn command_schema(&self) -> schemars::Schema;
    /// The internal command for one public command in wire form; an unknown
    /// name or a wrong shape is `EngineError::BadInput`.
    fn internal(&self, command: &str, input: serde_json::Value) -> Result<Dispatch, EngineError>;
}

pub(super) struct PointCommandsOf<P>(pub(super) PhantomData<fn() -> P>);

impl<P: ExtensionPointCommands> PointCommandsHandler for PointCommandsOf<P> {
    fn point(&self) -> &'static str {
        <P as ExtensionPoint>::NAME
    }

    fn plugin(&self) -> &'static str {
        P::PLUGIN
    }

    fn senders(&self) -> &'static [&'static str] {
        P::SENDERS
    }

    fn commands(&self) -> &'static [&'static str] {
        <P::Command as Message>::NAMES
    }

    fn command_schema(&self) -> schemars::Schema {
        schemars::schema_for!(P::Command)
    }

    fn internal(&self, command: &str, input: serde_json::Value) -> Result<Dispatch, EngineError> {
        reventless_spec::decide_point_command::<P>(command, input).map_err(|e| EngineError::bad_input(command, e))
    }
}

/// An extension point of another plugin that a plugin sends commands to
/// (`Plugin::sends_to`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointTarget {
    /// The publishing plugin (`Catalog`).
    pub plugin: String,
    /// The point within it (`Products`).
    pub point: String,
    /// The public commands it may send (wire names).
    pub commands: Vec<String>,
}

impl PointTarget {
    pub(super) fn of<P: ExtensionPointCommands>() -> Self {
        Self {
            plugin: P::PLUGIN.to_string(),
            point: <P as ExtensionPoint>::NAME.to_string(),
            commands: <P::Command as Message>::NAMES.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// `<Plugin>.<Point>`.
    pub fn point_name(&self) -> String {
        format!("{}.{}", self.plugin, self.point)
    }
}

/// A public command on its way to an extension point (the body of a
/// message on the publisher's command topic; a plugin's own queued commands
/// are `CommandRequest`s and have no `point`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PointCommandMessage {
    /// The extension point, `<Plugin>.<Point>`.
    pub point: String,
    /// The sending plugin.
    pub sender: String,
    /// The public command's wire name.
    pub command: String,
    /// Its wire data.
    pub input: serde_json::Value,
    /// Unique per command: the dedup id, and the id its outcome is kept under
    /// in the publisher's `<Plugin>_CommandOutcomes`.
    pub command_id: String,
    /// The correlation of whatever made the sender send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// What caused it (the sender's event or todo item).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
}

impl PointCommandMessage {
    /// The message if `body` is one (it names a `point`).
    pub fn from_body(body: &serde_json::Value) -> Option<Result<Self, serde_json::Error>> {
        body.get("point")?;
        Some(serde_json::from_value(body.clone()))
    }
}
