use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A DCB tag `key:value` identifying an entity an event or command is about
/// (`product:p1`). Serialized as that string.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag {
    key: String,
    value: String,
}

impl Tag {
    /// A tag from its key and value. The key may not contain `:`; the value may.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Result<Self, TagParseError> {
        let key = key.into();
        if key.is_empty() || key.contains(':') {
            return Err(TagParseError(format!("{key}:…")));
        }
        Ok(Self { key, value: value.into() })
    }

    /// The key (`book` of `book:b1`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value (`b1` of `book:b1`).
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// A tag text that is not `key:value` with a non-empty key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tag {0:?}: expected `key:value` with a non-empty key")]
pub struct TagParseError(pub String);

impl FromStr for Tag {
    type Err = TagParseError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once(':') {
            Some((key, value)) if !key.is_empty() => Ok(Self { key: key.into(), value: value.into() }),
            _ => Err(TagParseError(text.into())),
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.key, self.value)
    }
}

impl Serialize for Tag {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The tags of one message, split as the DCB decision query needs them:
/// `scalar` tags come from single-valued fields (the query ANDs them), `many`
/// tags from collection fields (each adds an OR-ed query item).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagSet {
    /// Tags of single-valued fields (AND-ed in the default query).
    pub scalar: Vec<Tag>,
    /// Tags of collection fields (one OR-ed query item each).
    pub many: Vec<Tag>,
}

impl TagSet {
    /// Adds the tags of one field; used by the derive macros.
    pub fn add<V: TagValue + ?Sized>(&mut self, key: &str, value: &V) {
        let mut values = Vec::new();
        value.tag_values(&mut values);
        let target = if V::MANY { &mut self.many } else { &mut self.scalar };
        for value in values {
            let tag = Tag { key: key.to_string(), value };
            if !target.contains(&tag) {
                target.push(tag);
            }
        }
    }

    /// Every tag, scalar ones first.
    pub fn all(&self) -> Vec<Tag> {
        self.scalar.iter().chain(&self.many).cloned().collect()
    }
}

/// A field type that can be a tag value. Implemented for strings, integers,
/// UUIDs and collections of them; implement it for your own id newtypes.
pub trait TagValue {
    /// True when the field holds several values (one tag each).
    const MANY: bool = false;
    /// Appends this value's tag values to `out`.
    fn tag_values(&self, out: &mut Vec<String>);
}

macro_rules! display_tag_value {
    ($($ty:ty),*) => {$(
        impl TagValue for $ty {
            fn tag_values(&self, out: &mut Vec<String>) {
                out.push(self.to_string());
            }
        }
    )*};
}
display_tag_value!(String, str, u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, uuid::Uuid);

impl<T: TagValue + ?Sized> TagValue for &T {
    const MANY: bool = T::MANY;
    fn tag_values(&self, out: &mut Vec<String>) {
        (**self).tag_values(out);
    }
}

impl<T: TagValue> TagValue for Option<T> {
    const MANY: bool = T::MANY;
    fn tag_values(&self, out: &mut Vec<String>) {
        if let Some(value) = self {
            value.tag_values(out);
        }
    }
}

macro_rules! collection_tag_value {
    ($($ty:ident),*) => {$(
        impl<T: TagValue> TagValue for $ty<T> {
            const MANY: bool = true;
            fn tag_values(&self, out: &mut Vec<String>) {
                for value in self {
                    value.tag_values(out);
                }
            }
        }
    )*};
}
collection_tag_value!(Vec, BTreeSet, HashSet);

impl<T: TagValue> TagValue for [T] {
    const MANY: bool = true;
    fn tag_values(&self, out: &mut Vec<String>) {
        for value in self {
            value.tag_values(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_through_text_and_json() {
        let tag: Tag = "product:p:1".parse().unwrap();
        assert_eq!(tag.key(), "product");
        assert_eq!(tag.value(), "p:1");
        assert_eq!(serde_json::to_string(&tag).unwrap(), "\"product:p:1\"");
        assert!("noseparator".parse::<Tag>().is_err());
        assert!(":x".parse::<Tag>().is_err());
        assert!(serde_json::from_str::<Tag>("\"bad\"").is_err());
    }

    #[test]
    fn collections_are_many_and_deduplicated() {
        let mut set = TagSet::default();
        set.add("customer", "c1");
        set.add("product", &vec!["p1".to_string(), "p2".into(), "p1".into()]);
        set.add("coupon", &None::<String>);
        assert_eq!(set.scalar, vec![Tag::new("customer", "c1").unwrap()]);
        assert_eq!(set.many.len(), 2);
    }
}
