//! Executes user components against the adapter traits: the pure steps
//! (fold, decide, project) live here once and are shared by the platforms
//! and by the Given/When/Then harness.
mod aggregate;
mod projection;
mod slice;

pub use aggregate::{STATE_CACHE_CAPACITY, StateCache, encode_stream_events, execute_aggregate};
pub use projection::{ProjectionRows, apply_action, project_batch, project_events};
pub use slice::{decision_condition, execute_slice, fold_slice, slice_entity_id};

use reventless_spec::{
    Event, EventEnvelope, EventMeta, Message, NewEvent, WireError, decode_envelope, to_wire, upcast_envelope,
};

use crate::outcome::EngineError;
use crate::store::Stores;

/// How many times a conflicting append is retried, each after a fresh read.
pub const CONFLICT_RETRIES: u32 = 3;

/// What a component execution needs besides its input.
#[derive(Clone, Debug)]
pub struct ExecutionContext {
    /// The stores to read and append to.
    pub stores: Stores,
    /// Stamped on every appended event (service, user, correlation, causation).
    pub meta: EventMeta,
}

/// Reads a stored event back into the user's type, upcasting data stored at
/// an older version of its type. Every typed reader (decisions, projections,
/// automations, publishers, the test harness) goes through here.
pub fn decode_event<E: Event>(envelope: &EventEnvelope) -> Result<E, EngineError> {
    decode_envelope::<E>(envelope).map_err(|e| read_error(envelope, e))
}

/// The stored event with its data in the current shape of its type (and
/// `meta.schema_version` set to it), for readers of JSON rather than `E`.
/// Events of other types come back unchanged.
pub fn upcast_event<E: Event>(envelope: &EventEnvelope) -> Result<EventEnvelope, EngineError> {
    upcast_envelope::<E>(envelope).map_err(|e| read_error(envelope, e))
}

fn read_error(envelope: &EventEnvelope, error: WireError) -> EngineError {
    match error {
        WireError::NewerVersion { name, stored, known } => EngineError::NewerEventVersion {
            event_type: name,
            stored,
            known,
            event_id: envelope.event_id.to_string(),
            position: envelope.position,
        },
        other => {
            EngineError::CorruptEvent(format!("event {} at position {}: {other}", envelope.event_id, envelope.position))
        }
    }
}

/// Turns decided events into appendable ones carrying `meta` and the
/// current version of each event's type.
pub fn encode_events<E: Event>(events: &[E], meta: &EventMeta) -> Result<Vec<NewEvent>, EngineError> {
    events
        .iter()
        .map(|event| {
            let (name, data) = to_wire(event).map_err(|e| EngineError::Contract(e.to_string()))?;
            let meta = EventMeta { schema_version: E::version(name), ..meta.clone() };
            Ok(NewEvent::new(name, event.tags(), data).with_meta(meta))
        })
        .collect()
}

/// The rejection outcome of a domain error.
pub(crate) fn rejected<E: reventless_spec::DomainError>(
    entity_id: Option<String>,
    error: &E,
) -> crate::outcome::CommandOutcome {
    crate::outcome::CommandOutcome::Rejected {
        entity_id,
        error_code: error.code(),
        error_detail: error.detail(),
        cause: crate::outcome::RejectionCause::DomainRejection,
    }
}

/// True when `events` only use names from `allowed`.
pub fn check_produced<E: Message>(component: &str, events: &[E], allowed: &[&str]) -> Result<(), EngineError> {
    match events.iter().find(|e| !allowed.contains(&e.name())) {
        Some(event) => Err(EngineError::Contract(format!(
            "{component} decided `{}`, which is not in its PRODUCES ({})",
            event.name(),
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}
