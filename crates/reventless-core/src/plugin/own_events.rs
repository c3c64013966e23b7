//! An extension point reads its plugin's whole log, which may hold events of
//! the plugin's other event types (a second event enum of the plugin): those
//! are none of the point's business and publish nothing, instead of failing
//! to decode as the point's event type (which stopped its followers).
use std::any::TypeId;
use std::sync::Arc;

use reventless_spec::EventEnvelope;

use super::PublisherHandler;
use crate::outcome::EngineError;

pub(super) struct OwnEvents {
    pub(super) inner: Arc<dyn PublisherHandler>,
    /// The wire names of the point's internal event type.
    pub(super) names: &'static [&'static str],
}

impl PublisherHandler for OwnEvents {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn event_type(&self) -> TypeId {
        self.inner.event_type()
    }

    fn published_names(&self) -> &'static [&'static str] {
        self.inner.published_names()
    }

    fn publish(&self, envelope: &EventEnvelope) -> Result<Vec<(&'static str, serde_json::Value)>, EngineError> {
        if !self.names.contains(&envelope.event_type.as_str()) {
            return Ok(Vec::new());
        }
        self.inner.publish(envelope)
    }
}
