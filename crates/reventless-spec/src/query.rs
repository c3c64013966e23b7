use serde::{Deserialize, Serialize};

use crate::Tag;

/// One criterion of a [`Query`] (dcb.events): an event matches when its type
/// is one of `types` (any type when empty) and it carries every tag in `tags`
/// (no constraint when empty).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryItem {
    /// Event types, any of which matches (any type when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    /// Tags an event must all carry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

impl QueryItem {
    /// An item matching every event (narrow it with `types` and `tags`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds event types (OR).
    pub fn types<I, S>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.types.extend(types.into_iter().map(Into::into));
        self
    }

    /// Adds required tags (AND).
    pub fn tags<I: IntoIterator<Item = Tag>>(mut self, tags: I) -> Self {
        self.tags.extend(tags);
        self
    }

    /// Whether an event of `event_type` carrying `tags` matches.
    pub fn matches(&self, event_type: &str, tags: &[Tag]) -> bool {
        (self.types.is_empty() || self.types.iter().any(|t| t == event_type))
            && self.tags.iter().all(|wanted| tags.contains(wanted))
    }
}

/// A DCB query (dcb.events): its items are OR-ed. A query without items
/// matches no event; [`Query::all`] matches every event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    /// The items, OR-ed.
    pub items: Vec<QueryItem>,
}

impl Query {
    /// Matches every event.
    pub fn all() -> Self {
        Self { items: vec![QueryItem::default()] }
    }

    /// Matches no event.
    pub fn none() -> Self {
        Self { items: Vec::new() }
    }

    /// A query of these items.
    pub fn from_items(items: Vec<QueryItem>) -> Self {
        Self { items }
    }

    /// Adds an item (OR).
    pub fn item(mut self, item: QueryItem) -> Self {
        self.items.push(item);
        self
    }

    /// Whether an event of `event_type` carrying `tags` matches some item.
    pub fn matches(&self, event_type: &str, tags: &[Tag]) -> bool {
        self.items.iter().any(|item| item.matches(event_type, tags))
    }

    /// Every event type named by the query, or `None` when some item accepts
    /// any type (used by stores to narrow a scan).
    pub fn event_types(&self) -> Option<Vec<&str>> {
        let mut types = Vec::new();
        for item in &self.items {
            if item.types.is_empty() {
                return None;
            }
            types.extend(item.types.iter().map(String::as_str));
        }
        types.sort_unstable();
        types.dedup();
        Some(types)
    }
}

/// The condition of a DCB append (dcb.events): the append fails when any event
/// matching `fail_if_events_match` exists at a position greater than `after`
/// (any position when `after` is `None`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendCondition {
    /// The events that must not have been appended since the decision read.
    pub fail_if_events_match: Query,
    /// The last position the decision read (`None`: nothing was read).
    pub after: Option<u64>,
}

impl AppendCondition {
    /// A condition failing on events matching `fail_if_events_match` after `after`.
    pub fn new(fail_if_events_match: Query, after: Option<u64>) -> Self {
        Self { fail_if_events_match, after }
    }

    /// True when an event at `position` with this type and tags violates the condition.
    pub fn is_violated_by(&self, position: u64, event_type: &str, tags: &[Tag]) -> bool {
        self.after.is_none_or(|after| position > after) && self.fail_if_events_match.matches(event_type, tags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(text: &str) -> Tag {
        text.parse().unwrap()
    }

    #[test]
    fn item_needs_one_of_its_types_and_all_of_its_tags() {
        let item = QueryItem::new().types(["A", "B"]).tags([tag("x:1"), tag("y:2")]);
        assert!(item.matches("A", &[tag("x:1"), tag("y:2"), tag("z:3")]));
        assert!(item.matches("B", &[tag("y:2"), tag("x:1")]));
        assert!(!item.matches("C", &[tag("x:1"), tag("y:2")]));
        assert!(!item.matches("A", &[tag("x:1")]));
    }

    #[test]
    fn items_are_ored_and_empty_parts_are_wildcards() {
        let query = Query::none().item(QueryItem::new().types(["A"])).item(QueryItem::new().tags([tag("x:1")]));
        assert!(query.matches("A", &[]));
        assert!(query.matches("Z", &[tag("x:1")]));
        assert!(!query.matches("Z", &[tag("x:2")]));
        assert!(Query::all().matches("anything", &[]));
        assert!(!Query::none().matches("anything", &[]));
        assert_eq!(query.event_types(), None);
    }

    #[test]
    fn condition_ignores_events_at_or_before_after() {
        let condition = AppendCondition::new(Query::all(), Some(5));
        assert!(!condition.is_violated_by(5, "A", &[]));
        assert!(condition.is_violated_by(6, "A", &[]));
        let from_start = AppendCondition::new(Query::all(), None);
        assert!(from_start.is_violated_by(1, "A", &[]));
    }
}
