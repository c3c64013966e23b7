use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::{Tag, TagSet};

/// A command or event: a serde type whose variants have stable wire names and
/// whose fields may carry DCB tags. Derive it with `#[derive(Event)]` or
/// `#[derive(Command)]`.
///
/// On the wire a message is `(name, data)`: `name` is the variant name and
/// `data` the variant's fields as JSON (serde's externally tagged form split
/// in two), so the stored `type` is exactly the variant's serde name.
pub trait Message: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static {
    /// Every wire name this type can have (one per enum variant).
    const NAMES: &'static [&'static str];
    /// True for an enum (wire data is the variant's fields), false for a struct.
    const IS_ENUM: bool;
    /// The wire name of this value.
    fn name(&self) -> &'static str;
    /// The tags of this value, split into scalar and collection tags.
    fn tag_set(&self) -> TagSet;
    /// Every tag of this value.
    fn tags(&self) -> Vec<Tag> {
        self.tag_set().all()
    }
}

/// An event type (derive with `#[derive(Event)]`): a message that is stored.
///
/// Each wire type has a version of its data's shape, 1 unless the variant
/// declares `#[event(version = N, upcasters = [v1_to_v2, ..])]`; see
/// [`crate::upcast`] for how stored events of older shapes are read.
pub trait Event: Message {
    /// The current version of the wire type `name` (1 unless declared).
    fn version(name: &str) -> u32 {
        let _ = name;
        crate::FIRST_VERSION
    }

    /// The upcasters of the wire type `name`, oldest first: element 0 turns
    /// version 1 data into version 2, element 1 version 2 into 3, …
    fn upcasters(name: &str) -> &'static [crate::Upcaster] {
        let _ = name;
        &[]
    }
}

/// Marker for command types (derive with `#[derive(Command)]`). Commands
/// also describe themselves as JSON Schema (`#[derive(JsonSchema)]`), from
/// which the API's input types and validation are generated.
pub trait Command: Message + schemars::JsonSchema {}

/// Why a message could not be turned into, or read from, its wire form.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WireError {
    /// The wire name is not one of the type's.
    #[error("unknown {kind} type `{name}` (known: {known})")]
    UnknownName {
        /// `event` or `command`.
        kind: &'static str,
        /// The name given.
        name: String,
        /// The type's names.
        known: String,
    },
    /// The data does not (de)serialize as the named variant.
    #[error("invalid data for `{name}`: {message}")]
    InvalidData {
        /// The wire name.
        name: String,
        /// serde's message.
        message: String,
    },
    /// The derive's wire name and serde's differ (a serde attribute the derive does not follow).
    #[error("`{derived}` serializes as `{serialized}`: derive and serde disagree on the wire name")]
    NameMismatch {
        /// The name the derive gives.
        derived: String,
        /// The name serde writes.
        serialized: String,
    },
    /// Written by a newer build than this one (during a rolling deploy, or
    /// after a rollback): reading it as an older shape would lose data.
    #[error("`{name}` was stored at version {stored}, but this build knows versions up to {known}")]
    NewerVersion {
        /// The wire name.
        name: String,
        /// The version it was stored at.
        stored: u32,
        /// The newest version this build knows.
        known: u32,
    },
    /// A type's version without one upcaster per older version.
    #[error("`{name}` is at version {known} but has {upcasters} upcasters; it needs one per older version")]
    MissingUpcaster {
        /// The wire name.
        name: String,
        /// Its declared version.
        known: u32,
        /// How many upcasters it has.
        upcasters: usize,
    },
}

/// Splits a message into its wire name and its data.
pub fn to_wire<M: Message>(message: &M) -> Result<(&'static str, Value), WireError> {
    let name = message.name();
    let value = serde_json::to_value(message)
        .map_err(|e| WireError::InvalidData { name: name.to_string(), message: e.to_string() })?;
    if !M::IS_ENUM {
        return Ok((name, value));
    }
    let (serialized, data) = split_externally_tagged(value);
    match serialized {
        Some(serialized) if serialized != name => {
            Err(WireError::NameMismatch { derived: name.to_string(), serialized })
        }
        _ => Ok((name, data)),
    }
}

/// Rebuilds a message from its wire name and data.
pub fn from_wire<M: Message>(kind: &'static str, name: &str, data: Value) -> Result<M, WireError> {
    if !M::NAMES.contains(&name) {
        return Err(WireError::UnknownName { kind, name: name.to_string(), known: M::NAMES.join(", ") });
    }
    let invalid = |e: serde_json::Error| WireError::InvalidData { name: name.to_string(), message: e.to_string() };
    if !M::IS_ENUM {
        return serde_json::from_value(data).map_err(invalid);
    }
    // A unit variant is the bare name; serde does not accept `{name: null}` for it.
    if data.is_null()
        && let Ok(message) = serde_json::from_value(Value::String(name.to_string()))
    {
        return Ok(message);
    }
    let mut wrapped = Map::new();
    wrapped.insert(name.to_string(), data);
    serde_json::from_value(Value::Object(wrapped)).map_err(invalid)
}

/// `{"Name": data}` → (Some("Name"), data); `"Name"` → (Some("Name"), null);
/// anything else (a struct) → (None, value).
pub(crate) fn split_externally_tagged(value: Value) -> (Option<String>, Value) {
    match value {
        Value::String(name) => (Some(name), Value::Null),
        Value::Object(map) if map.len() == 1 => {
            let Some((name, data)) = map.into_iter().next() else {
                return (None, Value::Null);
            };
            (Some(name), data)
        }
        other => (None, other),
    }
}

/// A domain rejection: an error enum whose variant name is the error code and
/// whose fields are the detail. Any `Serialize + Debug` type qualifies.
pub trait DomainError: Serialize + Debug + Send + Sync + 'static {
    /// The variant name, e.g. `CategoryNotFound`.
    fn code(&self) -> String {
        let value = serde_json::to_value(self).unwrap_or(Value::Null);
        match split_externally_tagged(value) {
            (Some(name), _) => name,
            (None, _) => std::any::type_name::<Self>().rsplit("::").next().unwrap_or("Rejected").to_string(),
        }
    }

    /// The variant's fields as JSON (null for a unit variant).
    fn detail(&self) -> Value {
        let value = serde_json::to_value(self).unwrap_or(Value::Null);
        split_externally_tagged(value).1
    }
}

impl<T: Serialize + Debug + Send + Sync + 'static> DomainError for T {}
