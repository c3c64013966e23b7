//! Reading a log newest first, filtered, a page at a time, from the event
//! log's forward reads (`head` and `read` with a DCB query): windows of
//! positions walked backwards from the head.
use reventless_core::StoreError;
use reventless_core::store::EventLog;
use reventless_spec::{EventEnvelope, Query, QueryItem, Tag};
use serde_json::{Value, json};

/// Positions read per window at first; each further window doubles, up to
/// [`MAX_WINDOW`], so a rare filter over a long log costs few round trips.
const FIRST_WINDOW: u64 = 256;
const MAX_WINDOW: u64 = 1 << 16;

/// Which events of a log a page shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    /// Any of these types (any type when empty).
    pub types: Vec<String>,
    /// Carries this tag.
    pub tag: Option<Tag>,
    /// Belongs to this entity: its aggregate stream id, or any tag's value.
    pub entity: Option<String>,
}

impl EventFilter {
    fn query(&self) -> Query {
        Query::from_items(vec![QueryItem::new().types(self.types.clone()).tags(self.tag.clone())])
    }

    fn keeps(&self, event: &EventEnvelope) -> bool {
        self.entity.as_deref().is_none_or(|entity| {
            event.stream.as_ref().is_some_and(|stream| stream.id == entity)
                || event.tags.iter().any(|tag| tag.value() == entity)
        })
    }
}

/// One page of a log, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    pub head: u64,
    pub events: Vec<EventEnvelope>,
    /// The `before` of the next (older) page; `None` on the last page.
    pub next_before: Option<u64>,
}

/// Up to `limit` events of `log` matching `filter` with position below
/// `before` (below the head + 1 when absent), newest first.
pub async fn newest_first(
    events: &dyn EventLog,
    log: &str,
    filter: &EventFilter,
    before: Option<u64>,
    limit: usize,
) -> Result<EventPage, StoreError> {
    let head = events.head(log).await?;
    let query = filter.query();
    // Exclusive upper bound; positions start at 1.
    let mut upper = before.unwrap_or(u64::MAX).min(head.saturating_add(1));
    let mut window = FIRST_WINDOW.max(limit as u64 * 4);
    let mut found: Vec<EventEnvelope> = Vec::new();
    while upper > 1 && found.len() <= limit {
        let lower = upper.saturating_sub(window).max(1);
        // At most `upper - lower` events lie in [lower, upper), and they come first.
        let span = usize::try_from(upper - lower).unwrap_or(usize::MAX);
        let batch = events.read(log, &query, Some(lower - 1), Some(span)).await?;
        found.extend(batch.into_iter().rev().filter(|event| event.position < upper && filter.keeps(event)));
        upper = lower;
        window = (window * 2).min(MAX_WINDOW);
    }
    let next_before = (found.len() > limit).then(|| found[limit - 1].position);
    found.truncate(limit);
    Ok(EventPage { head, events: found, next_before })
}

/// An event as the explorer's API shows it.
pub fn event_json(event: &EventEnvelope) -> Value {
    json!({
        "position": event.position,
        "eventId": event.event_id,
        "type": event.event_type,
        "tags": event.tags,
        "data": event.data,
        "stream": event.stream,
        "recordedAt": event.recorded_at.0,
        "meta": event.meta,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::event_log::memory::MemoryEventLog;
    use reventless_spec::NewEvent;

    async fn log_of(count: u64) -> MemoryEventLog {
        let log = MemoryEventLog::default();
        for n in 1..=count {
            let kind = if n % 3 == 0 { "Third" } else { "Other" };
            let tag: Tag = format!("n:{n}").parse().unwrap();
            log.append("L", vec![NewEvent::new(kind, vec![tag], json!({"n": n}))], None).await.unwrap();
        }
        log
    }

    fn positions(page: &EventPage) -> Vec<u64> {
        page.events.iter().map(|e| e.position).collect()
    }

    #[tokio::test]
    async fn pages_walk_back_from_the_head_across_windows() {
        let log = log_of(700).await;
        let filter = EventFilter { types: vec!["Third".into()], ..Default::default() };
        let page = newest_first(&log, "L", &filter, None, 3).await.unwrap();
        assert_eq!(positions(&page), vec![699, 696, 693]);
        assert_eq!(page.next_before, Some(693));
        // A page deep enough to need several windows.
        let page = newest_first(&log, "L", &filter, Some(100), 40).await.unwrap();
        assert_eq!(page.events.len(), 33, "every third of 1..=99");
        assert_eq!(page.events.last().unwrap().position, 3);
        assert_eq!(page.next_before, None, "the last page");
    }

    #[tokio::test]
    async fn the_entity_filter_matches_a_tag_value_and_an_empty_log_is_one_empty_page() {
        let log = log_of(10).await;
        let filter = EventFilter { entity: Some("7".into()), ..Default::default() };
        let page = newest_first(&log, "L", &filter, None, 5).await.unwrap();
        assert_eq!(positions(&page), vec![7]);
        let empty = newest_first(&log, "Nothing", &EventFilter::default(), None, 5).await.unwrap();
        assert_eq!((empty.head, empty.events.len(), empty.next_before), (0, 0, None));
    }
}
