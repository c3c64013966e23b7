//! Event versioning: an event type's data may change shape over time. Each
//! wire type (`BookAdded`) has a version, 1 unless its variant says
//! `#[event(version = N, upcasters = [..])]`; every stored event records the
//! version it was written at (`EventMeta::schema_version`, absent = 1), and
//! readers turn older data into the current shape through the chain of
//! upcasters (v1 → v2, v2 → v3, …) before serde sees it.
//!
//! The version belongs to the wire type, not to the Rust enum, because one
//! log's types are shared by several enums (a DCB slice repeats the variants
//! of an aggregate it consumes): each enum that names a type must declare the
//! same version and upcasters for it.
use serde_json::Value;

use crate::{Event, EventEnvelope, WireError, from_wire};

/// One step of an event type's history: the data stored at version N in, the
/// data of version N + 1 out. A plain function over the variant's fields.
pub type Upcaster = fn(Value) -> Value;

/// The version of an event stored without one (before versioning existed or
/// of a type never versioned).
pub const FIRST_VERSION: u32 = 1;

/// Turns `data` stored for `name` at `stored_version` into the shape of the
/// version `E` knows. A version newer than `E` knows is an error, never a guess.
pub fn upcast<E: Event>(name: &str, stored_version: u32, data: Value) -> Result<Value, WireError> {
    let known = E::version(name);
    if stored_version == known {
        return Ok(data);
    }
    if stored_version > known {
        return Err(WireError::NewerVersion { name: name.to_string(), stored: stored_version, known });
    }
    if stored_version < FIRST_VERSION {
        return Err(WireError::InvalidData {
            name: name.to_string(),
            message: format!("stored at version {stored_version}; versions start at {FIRST_VERSION}"),
        });
    }
    let upcasters = E::upcasters(name);
    let steps = usize::try_from(known - FIRST_VERSION).unwrap_or(usize::MAX);
    if upcasters.len() != steps {
        return Err(WireError::MissingUpcaster { name: name.to_string(), known, upcasters: upcasters.len() });
    }
    let first = usize::try_from(stored_version - FIRST_VERSION).unwrap_or(usize::MAX);
    Ok(upcasters.iter().skip(first).fold(data, |data, step| step(data)))
}

/// Reads an event stored as (`name`, `stored_version`, `data`) into `E`,
/// upcasting older shapes first.
pub fn decode_stored<E: Event>(name: &str, stored_version: u32, data: Value) -> Result<E, WireError> {
    from_wire::<E>("event", name, upcast::<E>(name, stored_version, data)?)
}

/// Reads a stored event into `E` (upcasting older shapes): what every
/// decision, projection, automation and publisher does with an envelope.
pub fn decode_envelope<E: Event>(envelope: &EventEnvelope) -> Result<E, WireError> {
    decode_stored::<E>(&envelope.event_type, envelope.meta.schema_version, envelope.data.clone())
}

/// The envelope as if written today: its data upcast to the shape `E` knows
/// and its `meta.schema_version` set to that version. For readers that show
/// or forward JSON instead of decoding it (an explorer, an export). Types
/// that are not `E`'s are returned unchanged.
pub fn upcast_envelope<E: Event>(envelope: &EventEnvelope) -> Result<EventEnvelope, WireError> {
    let mut upcast_one = envelope.clone();
    if !E::NAMES.contains(&envelope.event_type.as_str()) {
        return Ok(upcast_one);
    }
    upcast_one.data = upcast::<E>(&envelope.event_type, envelope.meta.schema_version, upcast_one.data)?;
    upcast_one.meta.schema_version = E::version(&envelope.event_type);
    Ok(upcast_one)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde::{Deserialize, Serialize};
    use serde_json::{Value, json};

    use crate::{self as spec, Event, EventEnvelope, EventMeta, NewEvent, Timestamp, WireError};

    /// v1 `{name}`, v2 `{title}`, v3 `{title, pages}`.
    fn title_from_name(mut data: Value) -> Value {
        if let Some(name) = data.as_object_mut().and_then(|fields| fields.remove("name")) {
            data["title"] = name;
        }
        data
    }

    fn pages_default(mut data: Value) -> Value {
        data["pages"] = json!(0);
        data
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, spec::Event)]
    enum BookEvent {
        #[event(version = 3, upcasters = [title_from_name, pages_default])]
        BookAdded {
            #[tag]
            book_id: String,
            title: String,
            pages: u32,
        },
        BookRemoved {
            #[tag]
            book_id: String,
        },
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, spec::Event)]
    #[event(version = 2, upcasters = [|mut data: Value| { data["reason"] = json!("unknown"); data }])]
    struct Archived {
        reason: String,
    }

    /// A bump whose new field has a serde default needs no change to the data.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, spec::Event)]
    #[event(version = 2, upcasters = [|data| data])]
    struct Noted {
        #[serde(default)]
        note: String,
    }

    fn stored(name: &str, version: u32, data: Value) -> EventEnvelope {
        let meta = EventMeta { schema_version: version, ..EventMeta::default() };
        EventEnvelope::recorded(NewEvent::new(name, vec![], data).with_meta(meta), 7, None, Timestamp(0))
    }

    fn added(title: &str, pages: u32) -> BookEvent {
        BookEvent::BookAdded { book_id: "b1".into(), title: title.into(), pages }
    }

    #[test]
    fn versions_are_per_wire_type() {
        assert_eq!(BookEvent::version("BookAdded"), 3);
        assert_eq!(BookEvent::version("BookRemoved"), 1);
        assert_eq!(BookEvent::upcasters("BookAdded").len(), 2);
        assert_eq!(Archived::version("Archived"), 2);
    }

    #[test]
    fn every_older_version_is_upcast_through_the_chain() {
        let v1 = stored("BookAdded", 1, json!({"book_id": "b1", "name": "Dune"}));
        assert_eq!(spec::decode_envelope::<BookEvent>(&v1).unwrap(), added("Dune", 0));
        let v2 = stored("BookAdded", 2, json!({"book_id": "b1", "title": "Dune"}));
        assert_eq!(spec::decode_envelope::<BookEvent>(&v2).unwrap(), added("Dune", 0));
        let v3 = stored("BookAdded", 3, json!({"book_id": "b1", "title": "Dune", "pages": 412}));
        assert_eq!(spec::decode_envelope::<BookEvent>(&v3).unwrap(), added("Dune", 412));
        let unversioned = stored("BookRemoved", 1, json!({"book_id": "b1"}));
        assert_eq!(
            spec::decode_envelope::<BookEvent>(&unversioned).unwrap(),
            BookEvent::BookRemoved { book_id: "b1".into() }
        );
        let noted = spec::decode_envelope::<Noted>(&stored("Noted", 1, json!({}))).unwrap();
        assert_eq!(noted, Noted { note: String::new() });
        let archived = stored("Archived", 1, json!({}));
        assert_eq!(spec::decode_envelope::<Archived>(&archived).unwrap(), Archived { reason: "unknown".into() });
    }

    #[test]
    fn an_envelope_is_upcast_for_untyped_readers() {
        let v1 = stored("BookAdded", 1, json!({"book_id": "b1", "name": "Dune"}));
        let now = spec::upcast_envelope::<BookEvent>(&v1).unwrap();
        assert_eq!(now.data, json!({"book_id": "b1", "title": "Dune", "pages": 0}));
        assert_eq!(now.meta.schema_version, 3);
        assert_eq!((now.event_id, now.position), (v1.event_id, v1.position));
        let other = stored("SomethingElse", 1, json!({"x": 1}));
        assert_eq!(spec::upcast_envelope::<BookEvent>(&other).unwrap(), other);
    }

    #[test]
    fn a_newer_or_invalid_version_is_a_typed_error() {
        let v4 = stored("BookAdded", 4, json!({"book_id": "b1", "title": "Dune", "pages": 1, "isbn": "x"}));
        let error = spec::decode_envelope::<BookEvent>(&v4).unwrap_err();
        assert_eq!(error, WireError::NewerVersion { name: "BookAdded".into(), stored: 4, known: 3 });
        assert_eq!(error.to_string(), "`BookAdded` was stored at version 4, but this build knows versions up to 3");
        assert!(matches!(spec::upcast_envelope::<BookEvent>(&v4), Err(WireError::NewerVersion { .. })));
        let zero = stored("BookAdded", 0, json!({}));
        assert!(matches!(spec::decode_envelope::<BookEvent>(&zero), Err(WireError::InvalidData { .. })));
        // An upcaster's output that does not fit the current shape is the usual decode error.
        let garbled = stored("BookAdded", 1, json!({"book_id": "b1"}));
        assert!(matches!(spec::decode_envelope::<BookEvent>(&garbled), Err(WireError::InvalidData { .. })));
    }

    #[test]
    fn a_hand_written_event_missing_upcasters_is_refused_at_read() {
        #[derive(Clone, Debug, Serialize, Deserialize)]
        struct Manual;
        impl crate::Message for Manual {
            const NAMES: &'static [&'static str] = &["Manual"];
            const IS_ENUM: bool = false;
            fn name(&self) -> &'static str {
                "Manual"
            }
            fn tag_set(&self) -> crate::TagSet {
                crate::TagSet::default()
            }
        }
        impl Event for Manual {
            fn version(_: &str) -> u32 {
                2
            }
        }
        let error = spec::decode_envelope::<Manual>(&stored("Manual", 1, Value::Null)).unwrap_err();
        assert!(matches!(error, WireError::MissingUpcaster { known: 2, upcasters: 0, .. }), "{error}");
    }

    #[test]
    fn version_one_is_not_written() {
        let meta = serde_json::to_value(EventMeta::default()).unwrap();
        assert!(meta.get("schemaVersion").is_none());
    }
}
