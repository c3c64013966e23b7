//! Commands to another plugin's extension point: the sender queues the
//! public command on the publisher's command topic (FIFO per entity, dedup
//! by command id); the publisher's command worker maps it to its internal
//! command and runs it like any queued command (its outcome is kept in the
//! publisher's `<Plugin>_CommandOutcomes`, so a redelivery does not run it
//! again).
use reventless_spec::PointCommandName;

use super::*;
use crate::outcome::RejectionCause;
use crate::plugin::{PointCommandMessage, PointCommandsHandler};

/// The route key a point's command has among its plugin's command topics.
pub(super) fn point_route(point: &str, command: &str) -> String {
    format!("{point}.{command}")
}

/// The topics of the hosted extension points' commands: plugin → route → topic.
pub(super) fn point_topics(
    plugins: &BTreeMap<String, ResolvedPlugin>,
    manifests: &[Manifest],
    layout: TopicLayout,
) -> Vec<(String, String, String)> {
    let mut topics = Vec::new();
    for plugin in plugins.values() {
        let Some(manifest) = manifests.iter().find(|m| m.plugin == plugin.name) else { continue };
        for accepted in &plugin.point_commands {
            let name = format!("{}.{}", plugin.name, accepted.point());
            let Some(component) = manifest.components.iter().find(|c| c.name == name) else { continue };
            let topic = layout.topic(&plugin.name, component);
            for command in accepted.commands() {
                topics.push((plugin.name.clone(), point_route(accepted.point(), command), topic.clone()));
            }
        }
    }
    topics
}

/// Every point a hosted plugin sends commands to must be hosted here, accept
/// commands, and accept them from it (a runtime hosting all plugins in one
/// process: a typo'd or missing plugin is reported at startup, not on the
/// first command).
pub(super) fn check_point_targets(plugins: &BTreeMap<String, ResolvedPlugin>) -> Result<(), PluginError> {
    for plugin in plugins.values() {
        for target in &plugin.point_targets {
            let unavailable = |reason: String| PluginError::CommandPointUnavailable {
                plugin: plugin.name.clone(),
                point: target.point_name(),
                reason,
            };
            let Some(publisher) = plugins.get(&target.plugin) else {
                return Err(unavailable(format!("plugin `{}` is not hosted in this runtime", target.plugin)));
            };
            let Some(accepted) = publisher.point_commands.iter().find(|p| p.point() == target.point) else {
                return Err(unavailable("the point accepts no commands (`accepts_commands`)".into()));
            };
            if !accepted.senders().is_empty() && !accepted.senders().contains(&plugin.name.as_str()) {
                return Err(unavailable(format!("it accepts commands only from {}", accepted.senders().join(", "))));
            }
        }
    }
    Ok(())
}

impl Runtime {
    /// Queues a command a plugin's component sent to another plugin's
    /// extension point (see [`reventless_spec::Dispatch::to_point`]). The
    /// sender must declare the point (`Plugin::sends_to`) and the command must
    /// be one of its public commands; the publisher decides it later.
    pub(super) async fn send_to_point(&self, request: CommandRequest) -> Result<CommandOutcome, EngineError> {
        let name = request.command.clone();
        let target = PointCommandName::parse(&name).ok_or_else(|| EngineError::UnknownCommand {
            plugin: request.plugin.clone(),
            command: name.clone(),
            known: "<Plugin>.<Point>.<Command>".into(),
        })?;
        let point = target.point_name();
        let sender = self
            .inner
            .plugins
            .get(&request.plugin)
            .ok_or_else(|| EngineError::UnknownPlugin(request.plugin.clone()))?;
        let unknown = |known: String| EngineError::UnknownCommand {
            plugin: request.plugin.clone(),
            command: request.command.clone(),
            known,
        };
        let Some(declared) = sender.point_targets.iter().find(|t| t.point_name() == point) else {
            let declared: Vec<String> = sender.point_targets.iter().map(|t| t.point_name()).collect();
            return Err(unknown(format!(
                "no command of `{point}`: the plugin does not declare `sends_to` it (declared: {})",
                declared.join(", ")
            )));
        };
        if !declared.commands.iter().any(|c| c == target.command) {
            return Err(unknown(
                declared.commands.iter().map(|c| format!("{point}.{c}")).collect::<Vec<_>>().join(", "),
            ));
        }
        // Only the plugin's own components send to points: never from outside.
        if !request.internal {
            return Err(unknown("none from outside the plugin".into()));
        }
        let group_id = request.entity_id.clone().filter(|id| !id.is_empty()).unwrap_or_else(|| point.clone());
        let message = PointCommandMessage {
            point: point.clone(),
            sender: request.plugin.clone(),
            command: target.command.to_string(),
            input: request.input.clone(),
            command_id: request.command_id.clone(),
            correlation_id: request.correlation_id.clone(),
            causation_id: request.causation_id.clone(),
        };
        let route = point_route(target.point, target.command);
        let topic = self.inner.command_topics.get(target.plugin).and_then(|topics| topics.get(&route)).cloned();
        // A publisher hosted elsewhere is reached on its plugin's command topic.
        let topic = topic.unwrap_or_else(|| command_topic(target.plugin));
        let body = serde_json::to_value(&message).map_err(|e| EngineError::Contract(e.to_string()))?;
        let queued = CommandMessage { group_id: group_id.clone(), dedup_id: request.command_id.clone(), body };
        self.inner.stores.commands.send(&topic, queued).await?;
        tracing::debug!(point, command = target.command, topic, "command queued for an extension point");
        Ok(CommandOutcome::Pending { entity_id: group_id, command_id: request.command_id })
    }

    /// Runs a public command received by one of this runtime's extension
    /// points: the sender's right is checked, the public command mapped to
    /// the publisher's internal one, which then runs as a queued command of
    /// the publisher. A refusal, an unknown command or a wrong shape is
    /// recorded as its outcome and appends nothing.
    pub(super) async fn run_point_command(&self, message: PointCommandMessage) -> Result<(), EngineError> {
        let retention = self.inner.outcome_retention;
        let Some((plugin, point)) = message.point.split_once('.') else {
            tracing::error!(point = message.point, "dropping a command for a malformed extension point name");
            return Ok(());
        };
        let Some(publisher) = self.inner.plugins.get(plugin) else {
            tracing::error!(point = message.point, "dropping a command for an extension point not hosted here");
            return Ok(());
        };
        let command = point_route(point, &message.command);
        let record = OutcomeRecord::pending(&message.command_id, &command, "", retention);
        let accepted: Option<&Arc<dyn PointCommandsHandler>> =
            publisher.point_commands.iter().find(|p| p.point() == point);
        let Some(accepted) = accepted else {
            let error = EngineError::UnknownCommand {
                plugin: plugin.to_string(),
                command: command.clone(),
                known: "none: the extension point accepts no commands".into(),
            };
            tracing::error!(%error, "command for an extension point refused");
            return self.record_outcome(plugin, &record.fail(&error, retention)).await;
        };
        // Already decided (a redelivery): its outcome stands.
        if let Some(done) = self.command_outcome(plugin, &message.command_id).await?
            && done.status != crate::outcomes::OutcomeStatus::Pending
        {
            tracing::info!(command, command_id = message.command_id, "already ran; not run again");
            return Ok(());
        }
        if !accepted.senders().is_empty() && !accepted.senders().contains(&message.sender.as_str()) {
            let refused = CommandOutcome::Rejected {
                entity_id: None,
                error_code: "AccessRefused".into(),
                error_detail: serde_json::json!({
                    "reason": format!("`{}` accepts commands only from {}", message.point, accepted.senders().join(", "))
                }),
                cause: RejectionCause::AccessRefusal,
            };
            tracing::warn!(sender = message.sender, command, "command for an extension point refused");
            return self.record_outcome(plugin, &record.finish(&refused, retention)).await;
        }
        let dispatch = match accepted.internal(&message.command, message.input) {
            Ok(dispatch) => dispatch,
            Err(error) => {
                tracing::error!(%error, command, "command for an extension point cannot run");
                return self.record_outcome(plugin, &record.fail(&error, retention)).await;
            }
        };
        let mut request = CommandRequest::internal(plugin, dispatch);
        request.command_id = message.command_id;
        request.correlation_id = message.correlation_id.or_else(|| Some(request.command_id.clone()));
        request.causation_id = message.causation_id;
        let span = command_span(&request);
        self.run_decoded(request).instrument(span).await
    }
}
