//! Stored events in their type's current shape for untyped readers of a
//! running runtime (the event explorer).
use super::*;

impl Runtime {
    /// `envelope`, read from the log `log`, with its data upcast to the
    /// current version of its type as the hosted plugins declare it (see
    /// [`crate::plugin::ResolvedPlugin::upcast_event`]); unchanged when no
    /// hosted component writes that type to that log.
    pub fn upcast_event(&self, log: &str, envelope: &EventEnvelope) -> Result<EventEnvelope, EngineError> {
        let writers = self.inner.plugins.values().flat_map(|plugin| plugin.routes.values()).map(|h| h.as_ref());
        crate::plugin::upcast::upcast_with(writers, log, envelope)
    }
}
