use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{FIRST_VERSION, Tag};

/// Milliseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        let millis = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        Self(u64::try_from(millis).unwrap_or(u64::MAX))
    }
}

/// Who and what caused an event, and the version of its data's shape.
/// Stored as `correlationId`, `causationId`, `service`, `user` and
/// `schemaVersion` (left out at version 1, so events of unversioned types
/// look as before; absent reads as 1); events written before that spelling
/// (snake_case) read the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventMeta {
    /// Shared by every event and command of one user request.
    #[serde(alias = "correlation_id")]
    pub correlation_id: Option<String>,
    /// The command that appended this event (its command id).
    #[serde(alias = "causation_id")]
    pub causation_id: Option<String>,
    /// The plugin that appended the event.
    pub service: Option<String>,
    /// The caller on whose behalf it was appended.
    pub user: Option<String>,
    /// The version of the event type's data when it was written; readers
    /// upcast older ones (see [`crate::upcast`]).
    #[serde(default = "first_version", skip_serializing_if = "is_first_version")]
    pub schema_version: u32,
}

impl Default for EventMeta {
    fn default() -> Self {
        Self { correlation_id: None, causation_id: None, service: None, user: None, schema_version: FIRST_VERSION }
    }
}

fn first_version() -> u32 {
    FIRST_VERSION
}

fn is_first_version(version: &u32) -> bool {
    *version == FIRST_VERSION
}

/// The place of an aggregate event in its entity stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPosition {
    /// The entity id.
    pub id: String,
    /// 1 for the stream's first event, then 2, 3, …
    pub version: u64,
}

/// An event to append: the store assigns its position.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// A fresh id (UUID v7).
    pub event_id: Uuid,
    /// The wire name.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Its DCB tags.
    pub tags: Vec<Tag>,
    /// Its fields as JSON.
    pub data: serde_json::Value,
    /// Who and what caused it.
    pub meta: EventMeta,
}

impl NewEvent {
    /// An event of `event_type` with a fresh id and empty meta.
    pub fn new(event_type: impl Into<String>, tags: Vec<Tag>, data: serde_json::Value) -> Self {
        Self { event_id: Uuid::now_v7(), event_type: event_type.into(), tags, data, meta: EventMeta::default() }
    }

    /// With `meta`.
    pub fn with_meta(mut self, meta: EventMeta) -> Self {
        self.meta = meta;
        self
    }
}

/// A stored event as every reader sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    /// The event's id.
    pub event_id: Uuid,
    /// The wire name.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Its DCB tags (an aggregate event's entity tag included).
    pub tags: Vec<Tag>,
    /// Its fields as JSON (as stored; see `meta.schema_version`).
    pub data: serde_json::Value,
    /// Position in the log (strictly increasing; gapless locally).
    pub position: u64,
    /// Set for aggregate events: the entity stream and the version in it.
    pub stream: Option<StreamPosition>,
    /// When it was appended.
    pub recorded_at: Timestamp,
    /// Who and what caused it.
    pub meta: EventMeta,
}

impl EventEnvelope {
    /// The envelope a store writes for `event` at `position`.
    pub fn recorded(event: NewEvent, position: u64, stream: Option<StreamPosition>, recorded_at: Timestamp) -> Self {
        Self {
            event_id: event.event_id,
            event_type: event.event_type,
            tags: event.tags,
            data: event.data,
            position,
            stream,
            recorded_at,
            meta: event.meta,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::EventMeta;

    #[test]
    fn metadata_is_written_in_camel_case_and_the_old_spelling_still_reads() {
        let meta = EventMeta {
            correlation_id: Some("k".into()),
            causation_id: Some("c".into()),
            service: Some("Shop".into()),
            user: None,
            schema_version: 1,
        };
        let written = serde_json::to_value(&meta).unwrap();
        assert_eq!(
            written,
            serde_json::json!({"correlationId": "k", "causationId": "c", "service": "Shop", "user": null})
        );
        let old: EventMeta =
            serde_json::from_str(r#"{"correlation_id":"k","causation_id":"c","service":"Shop","user":null}"#).unwrap();
        assert_eq!(old, meta);
        assert_eq!(serde_json::from_str::<EventMeta>("{}").unwrap(), EventMeta::default());
        let versioned = EventMeta { schema_version: 3, ..EventMeta::default() };
        let written = serde_json::to_value(&versioned).unwrap();
        assert_eq!(written["schemaVersion"], 3);
        assert_eq!(serde_json::from_value::<EventMeta>(written).unwrap(), versioned);
    }
}
