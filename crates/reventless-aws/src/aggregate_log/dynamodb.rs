//! Aggregate streams on DynamoDB: one item per event, hash `a#<log>#<stream>`,
//! range the zero-padded version. An append is one `TransactWriteItems`:
//! each new version is put only if absent, and the expected version must
//! exist, so exactly one of two racing appends wins.
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem};
use reventless_core::store::{AggregateEventLog, Appended, StoreError, require_events};
use reventless_spec::{EventEnvelope, NewEvent, StreamPosition, Timestamp};

use crate::dynamo::{
    EVENT_HASH, EVENT_RANGE, allocate_positions, decode_event, event_item, invalid_request, log_head, padded,
    put_if_absent, query_pages, read_log, s, transact,
};

pub struct DynamoAggregateLog {
    client: Client,
    table: String,
}

impl DynamoAggregateLog {
    /// The log on the events table `table` (keys `id` / `position`, index `by_log`).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    fn log_key(log: &str) -> String {
        crate::dynamo::aggregate_log_key(log)
    }

    fn stream_key(log: &str, stream_id: &str) -> String {
        format!("{}#{stream_id}", Self::log_key(log))
    }
}

#[async_trait]
impl AggregateEventLog for DynamoAggregateLog {
    async fn append(
        &self,
        log: &str,
        stream_id: &str,
        expected_version: u64,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        require_events(&events)?;
        let count = events.len() as u64;
        let log_key = Self::log_key(log);
        let stream_key = Self::stream_key(log, stream_id);
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
        for (offset, event) in events.into_iter().enumerate() {
            let version = expected_version + 1 + offset as u64;
            let stream = StreamPosition { id: stream_id.to_string(), version };
            let envelope = EventEnvelope::recorded(event, first + offset as u64, Some(stream), recorded_at);
            let item = event_item(stream_key.clone(), padded(version), &log_key, &envelope)?;
            items.push(put_if_absent(&self.table, item)?);
        }
        transact(&self.client, items).await?;
        Ok(Appended { first_position: first, last_position: first + count - 1 })
    }

    async fn read_stream(
        &self,
        log: &str,
        stream_id: &str,
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
                .expression_attribute_values(":id", s(Self::stream_key(log, stream_id)))
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
