//! A plugin's event log on DynamoDB (see `docs/aws.md` for where it
//! deviates from the dcb.events specification).
//!
//! - Every event has the log attribute `d#<log>` and its log position
//!   `gpos`; positions come from a counter item, so they are unique and
//!   increasing, with gaps where an append failed.
//! - Events of DCB slices: hash `d#<log>#<partition tag>` (the event's first
//!   tag), range the zero-padded position.
//! - Events of an aggregate: hash `a#<log>_<aggregate>#<entity id>`, range
//!   the zero-padded stream version; an append puts each new version only if
//!   absent and checks that the expected version exists, so exactly one of
//!   two racing appends wins.
//! - Fences: one item per (tag, event type) and per (tag, any type) holding
//!   the position of the last event with that tag and type. An append is one
//!   `TransactWriteItems`: its events, a condition on the fences its
//!   condition reads (no event after `after`), and bumps of the fences of
//!   the events it writes (an aggregate's append bumps them too, so a DCB
//!   decision over its entity tag sees it). A cancelled transaction is a
//!   conflict.
//! - Reads go through the `by_log` index (all partitions, merged by position).
use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem, Update};
use reventless_core::store::{Appended, EventLog, StoreError, StreamRef, require_events};
use reventless_spec::{AppendCondition, EventEnvelope, NewEvent, Query, StreamPosition, Timestamp};

use crate::dynamo::{
    EVENT_HASH, EVENT_RANGE, allocate_positions, decode_event, event_item, invalid_request, log_head, n, padded,
    put_if_absent, query_pages, read_log, s, transact,
};

/// A fence key's wildcard: "any type" for tag fences.
const ANY: &str = "*";

pub struct DynamoEventLog {
    client: Client,
    table: String,
}

/// What an append does with one fence item.
#[derive(Default)]
pub(crate) struct FenceUse {
    /// The condition's `after` (None: no matching event may exist at all).
    check: Option<Option<u64>>,
    /// The last position this append writes under the fence.
    bump: Option<u64>,
}

impl DynamoEventLog {
    /// The log on the events table `table` (keys `id` / `position`, index `by_log`).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    fn log_key(log: &str) -> String {
        crate::dynamo::log_key(log)
    }

    /// The hash key of an aggregate's stream (the same as before schema 2,
    /// when `<log>_<aggregate>` was the aggregate's own log).
    pub fn stream_key(log: &str, stream: StreamRef<'_>) -> String {
        format!("a#{log}_{}#{}", stream.aggregate, stream.id)
    }

    /// Records the fences an event bumps: each of its tags, with its type and with any type.
    pub(crate) fn bump_fences(log: &str, envelope: &EventEnvelope, fences: &mut BTreeMap<String, FenceUse>) {
        for tag in &envelope.tags {
            for event_type in [envelope.event_type.as_str(), ANY] {
                let fence = fences.entry(Self::fence_key(log, &tag.to_string(), event_type)).or_default();
                fence.bump = Some(fence.bump.map_or(envelope.position, |bump| bump.max(envelope.position)));
            }
        }
    }

    fn fence_key(log: &str, tag: &str, event_type: &str) -> String {
        format!("{}#~fence#{tag}#{event_type}", Self::log_key(log))
    }

    /// Fences a condition reads. A query item is covered by the fences of its
    /// first tag and each of its types (any event it matches bumps them).
    /// Items without tags cannot be fenced: they are checked by a read.
    fn condition_fences(log: &str, condition: &AppendCondition, fences: &mut BTreeMap<String, FenceUse>) -> Query {
        let mut unfenced = Query::none();
        for item in &condition.fail_if_events_match.items {
            let Some(tag) = item.tags.first() else {
                unfenced = unfenced.item(item.clone());
                continue;
            };
            let types: Vec<&str> =
                if item.types.is_empty() { vec![ANY] } else { item.types.iter().map(String::as_str).collect() };
            for event_type in types {
                let fence = fences.entry(Self::fence_key(log, &tag.to_string(), event_type)).or_default();
                let after = condition.after;
                fence.check = Some(match fence.check {
                    Some(existing) => existing.min(after),
                    None => after,
                });
            }
        }
        unfenced
    }

    fn fence_item(&self, key: String, fence: FenceUse) -> Result<TransactWriteItem, StoreError> {
        Self::fence_update(&self.table, key, fence)
    }

    /// The transaction item that checks and/or bumps one fence of `table`.
    pub(crate) fn fence_update(table: &str, key: String, fence: FenceUse) -> Result<TransactWriteItem, StoreError> {
        let check_expression = match fence.check {
            Some(Some(_)) => Some("(attribute_not_exists(#last) OR #last <= :after)"),
            Some(None) => Some("attribute_not_exists(#last)"),
            None => None,
        };
        let Some(position) = fence.bump else {
            let check = ConditionCheck::builder()
                .table_name(table)
                .key(EVENT_HASH, s(key))
                .key(EVENT_RANGE, s(padded(0)))
                .condition_expression(check_expression.unwrap_or("attribute_not_exists(#last)"))
                .expression_attribute_names("#last", "last")
                .set_expression_attribute_values(
                    fence.check.flatten().map(|after| [(":after".to_string(), n(after))].into()),
                )
                .build()
                .map_err(invalid_request)?;
            return Ok(TransactWriteItem::builder().condition_check(check).build());
        };
        // Never move a fence backwards (a later position may have landed first).
        let monotonic = "(attribute_not_exists(#last) OR #last < :position)";
        let condition = match check_expression {
            Some(check) => format!("{check} AND {monotonic}"),
            None => monotonic.to_string(),
        };
        let mut update = Update::builder()
            .table_name(table)
            .key(EVENT_HASH, s(key))
            .key(EVENT_RANGE, s(padded(0)))
            .update_expression("SET #last = :position")
            .condition_expression(condition)
            .expression_attribute_names("#last", "last")
            .expression_attribute_values(":position", n(position));
        if let Some(Some(after)) = fence.check {
            update = update.expression_attribute_values(":after", n(after));
        }
        Ok(TransactWriteItem::builder().update(update.build().map_err(invalid_request)?).build())
    }
}

#[async_trait]
impl EventLog for DynamoEventLog {
    async fn read(
        &self,
        log: &str,
        query: &Query,
        after: Option<u64>,
        limit: Option<usize>,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        if query.items.is_empty() {
            return Ok(Vec::new());
        }
        let keep = |event: &EventEnvelope| query.matches(&event.event_type, &event.tags);
        read_log(&self.client, &self.table, &Self::log_key(log), after.unwrap_or(0), limit, keep).await
    }

    async fn append(
        &self,
        log: &str,
        events: Vec<NewEvent>,
        condition: Option<&AppendCondition>,
    ) -> Result<Appended, StoreError> {
        require_events(&events)?;
        let mut fences: BTreeMap<String, FenceUse> = BTreeMap::new();
        if let Some(condition) = condition {
            let unfenced = Self::condition_fences(log, condition, &mut fences);
            if !unfenced.items.is_empty() {
                let after = condition.after.unwrap_or(0);
                let found = self.read(log, &unfenced, Some(after), Some(1)).await?;
                if let Some(event) = found.first() {
                    return Err(StoreError::Conflict(format!(
                        "event {} at position {} matches the append condition",
                        event.event_type, event.position
                    )));
                }
            }
        }
        let count = events.len() as u64;
        let log_key = Self::log_key(log);
        let first = allocate_positions(&self.client, &self.table, &log_key, count).await?;
        let recorded_at = Timestamp::now();
        let mut items = Vec::with_capacity(events.len() + fences.len());
        for (offset, event) in events.into_iter().enumerate() {
            let position = first + offset as u64;
            let envelope = EventEnvelope::recorded(event, position, None, recorded_at);
            Self::bump_fences(log, &envelope, &mut fences);
            let partition = envelope.tags.first().map_or_else(|| "~".to_string(), ToString::to_string);
            let item = event_item(format!("{log_key}#{partition}"), padded(position), &log_key, &envelope)?;
            items.push(put_if_absent(&self.table, item)?);
        }
        for (key, fence) in fences {
            items.push(self.fence_item(key, fence)?);
        }
        transact(&self.client, items).await?;
        Ok(Appended { first_position: first, last_position: first + count - 1 })
    }

    async fn append_to_stream(
        &self,
        log: &str,
        stream: StreamRef<'_>,
        expected_version: u64,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        require_events(&events)?;
        let count = events.len() as u64;
        let log_key = Self::log_key(log);
        let stream_key = Self::stream_key(log, stream);
        let first = allocate_positions(&self.client, &self.table, &log_key, count).await?;
        let recorded_at = Timestamp::now();
        let mut items = Vec::with_capacity(events.len() + 1);
        if expected_version > 0 {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .key(EVENT_HASH, s(stream_key.clone()))
                .key(EVENT_RANGE, s(padded(expected_version)))
                .condition_expression("attribute_exists(#id)")
                .expression_attribute_names("#id", EVENT_HASH)
                .build()
                .map_err(invalid_request)?;
            items.push(TransactWriteItem::builder().condition_check(check).build());
        }
        let mut fences = BTreeMap::new();
        for (offset, event) in events.into_iter().enumerate() {
            let version = expected_version + 1 + offset as u64;
            let position = StreamPosition { id: stream.id.to_string(), version };
            let envelope = EventEnvelope::recorded(event, first + offset as u64, Some(position), recorded_at);
            Self::bump_fences(log, &envelope, &mut fences);
            let item = event_item(stream_key.clone(), padded(version), &log_key, &envelope)?;
            items.push(put_if_absent(&self.table, item)?);
        }
        for (key, fence) in fences {
            items.push(self.fence_item(key, fence)?);
        }
        transact(&self.client, items).await?;
        Ok(Appended { first_position: first, last_position: first + count - 1 })
    }

    async fn read_stream(
        &self,
        log: &str,
        stream: StreamRef<'_>,
        after_version: u64,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        let mut events = Vec::new();
        let query = || {
            self.client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("#id = :id AND #position > :after")
                .expression_attribute_names("#id", EVENT_HASH)
                .expression_attribute_names("#position", EVENT_RANGE)
                .expression_attribute_values(":id", s(Self::stream_key(log, stream)))
                .expression_attribute_values(":after", s(padded(after_version)))
        };
        query_pages(query, |item| {
            events.push(decode_event(item, &self.table)?);
            Ok(true)
        })
        .await?;
        Ok(events)
    }

    async fn read_all(&self, log: &str, after: u64, limit: usize) -> Result<Vec<EventEnvelope>, StoreError> {
        read_log(&self.client, &self.table, &Self::log_key(log), after, Some(limit), |_| true).await
    }

    async fn head(&self, log: &str) -> Result<u64, StoreError> {
        log_head(&self.client, &self.table, &Self::log_key(log)).await
    }
}
