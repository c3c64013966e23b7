//! Stored events in their type's current shape, for readers that show JSON
//! instead of decoding a Rust type (the event explorer, exports).
use reventless_spec::EventEnvelope;

use super::{CommandHandler, ResolvedPlugin};
use crate::outcome::EngineError;

impl ResolvedPlugin {
    /// `envelope` (read from the log `log`) with its data upcast to the
    /// current version of its type, as declared by the plugin's components
    /// that write that log. A type none of them declares is returned as
    /// stored; a version newer than declared is
    /// [`EngineError::NewerEventVersion`].
    pub fn upcast_event(&self, log: &str, envelope: &EventEnvelope) -> Result<EventEnvelope, EngineError> {
        upcast_with(self.routes.values().map(|handler| handler.as_ref()), log, envelope)
    }
}

/// Upcasts through the writer of `log` whose event type has the event's
/// type name (one event type per name in a plugin, see
/// `PluginError::DuplicateEventName`; across plugins the newest version wins).
pub(crate) fn upcast_with<'a>(
    writers: impl Iterator<Item = &'a dyn CommandHandler>,
    log: &str,
    envelope: &EventEnvelope,
) -> Result<EventEnvelope, EngineError> {
    let name = envelope.event_type.as_str();
    let newest = writers
        .map(|handler| handler.event_source())
        .filter(|source| source.log.name == log && source.event_names.contains(&name))
        .max_by_key(|source| (source.version_of)(name));
    match newest {
        Some(source) => (source.upcast)(envelope),
        None => Ok(envelope.clone()),
    }
}
