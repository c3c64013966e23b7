//! What the DynamoDB adapters share: item encoding, position allocation,
//! log reads through the `by_log` index, and error mapping.
use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use reventless_core::store::StoreError;
use reventless_spec::EventEnvelope;

pub type Item = HashMap<String, AttributeValue>;

/// Key attributes of the events table: hash `id`, range `position`.
pub const EVENT_HASH: &str = "id";
pub const EVENT_RANGE: &str = "position";
/// The index that orders one log by position: hash `log`, range `gpos`.
pub const BY_LOG_INDEX: &str = "by_log";
pub const LOG_ATTRIBUTE: &str = "log";
pub const GLOBAL_POSITION: &str = "gpos";
/// The stored envelope (JSON), what stream handlers decode too.
pub const EVENT_ATTRIBUTE: &str = "event";

/// Most items one `TransactWriteItems` may hold.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// The `log` attribute of a plugin log's events (`d#<log>`; before schema
/// 2 an aggregate's own log was `a#<Plugin>_<Aggregate>`).
pub fn log_key(log: &str) -> String {
    format!("d#{log}")
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Range keys sort as strings: zero-padded so that 10 follows 9.
pub(crate) fn padded(position: u64) -> String {
    format!("{position:020}")
}

pub(crate) fn unavailable<E: std::error::Error + 'static>(error: E) -> StoreError {
    StoreError::Unavailable(DisplayErrorContext(error).to_string())
}

pub(crate) fn invalid_request(error: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(error.to_string())
}

/// A cancelled transaction is a concurrency conflict (a condition failed or
/// another transaction held an item); anything else is infrastructure.
pub(crate) fn transaction_error<R>(error: SdkError<TransactWriteItemsError, R>) -> StoreError
where
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if let SdkError::ServiceError(service) = &error
        && let TransactWriteItemsError::TransactionCanceledException(cancelled) = service.err()
    {
        let reasons: Vec<&str> = cancelled
            .cancellation_reasons()
            .iter()
            .filter_map(|reason| reason.code())
            .filter(|code| *code != "None")
            .collect();
        return StoreError::Conflict(format!("transaction cancelled: {}", reasons.join(", ")));
    }
    unavailable(error)
}

pub(crate) async fn transact(client: &Client, items: Vec<TransactWriteItem>) -> Result<(), StoreError> {
    if items.len() > MAX_TRANSACTION_ITEMS {
        return Err(StoreError::TooLarge(format!(
            "one transaction may write at most {MAX_TRANSACTION_ITEMS} items on DynamoDB, this one needs {}",
            items.len()
        )));
    }
    client.transact_write_items().set_transact_items(Some(items)).send().await.map_err(transaction_error)?;
    Ok(())
}

/// A put of `item` into `table` that fails the transaction when the key exists.
pub(crate) fn put_if_absent(table: &str, item: Item) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(#id)")
        .expression_attribute_names("#id", EVENT_HASH)
        .build()
        .map_err(invalid_request)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// Runs a query page by page (each page starts where the last ended) and
/// hands every item to `each` until it returns false or the items run out.
pub(crate) async fn query_pages(
    query: impl Fn() -> QueryFluentBuilder,
    mut each: impl FnMut(&Item) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let mut start = None;
    loop {
        let output = query().set_exclusive_start_key(start).send().await.map_err(unavailable)?;
        for item in output.items() {
            if !each(item)? {
                return Ok(());
            }
        }
        match output.last_evaluated_key() {
            Some(key) => start = Some(key.clone()),
            None => return Ok(()),
        }
    }
}

/// An event item: its keys, its log and position for the `by_log` index, the envelope.
pub(crate) fn event_item(
    hash: String,
    range: String,
    log_key: &str,
    envelope: &EventEnvelope,
) -> Result<Item, StoreError> {
    let json = serde_json::to_string(envelope).map_err(invalid_request)?;
    Ok(HashMap::from([
        (EVENT_HASH.to_string(), s(hash)),
        (EVENT_RANGE.to_string(), s(range)),
        (LOG_ATTRIBUTE.to_string(), s(log_key)),
        (GLOBAL_POSITION.to_string(), n(envelope.position)),
        ("type".to_string(), s(envelope.event_type.clone())),
        (EVENT_ATTRIBUTE.to_string(), s(json)),
    ]))
}

/// Decodes an event item (from a read or a stream image).
pub fn decode_event(item: &Item, table: &str) -> Result<EventEnvelope, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt { location: table.to_string(), message };
    let Some(AttributeValue::S(json)) = item.get(EVENT_ATTRIBUTE) else {
        return Err(corrupt(format!("an event item without its `{EVENT_ATTRIBUTE}` attribute")));
    };
    serde_json::from_str(json).map_err(|e| corrupt(format!("undecodable event: {e}")))
}

/// Reserves `count` consecutive positions of a log (an atomic counter item);
/// returns the first. A failed append leaves its positions unused (gaps).
pub(crate) async fn allocate_positions(
    client: &Client,
    table: &str,
    log_key: &str,
    count: u64,
) -> Result<u64, StoreError> {
    let output = client
        .update_item()
        .table_name(table)
        .key(EVENT_HASH, s(format!("{log_key}#~seq")))
        .key(EVENT_RANGE, s(padded(0)))
        .update_expression("ADD seq :count")
        .expression_attribute_values(":count", n(count))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
        .send()
        .await
        .map_err(unavailable)?;
    let last = output
        .attributes()
        .and_then(|attributes| attributes.get("seq"))
        .and_then(|value| value.as_n().ok())
        .and_then(|text| text.parse::<u64>().ok())
        .ok_or_else(|| StoreError::Corrupt { location: table.to_string(), message: format!("counter of {log_key}") })?;
    Ok(last + 1 - count)
}

/// Events of one log with position > `after`, in position order, through the
/// `by_log` index, page by page; `keep` filters, `limit` counts kept events.
pub(crate) async fn read_log(
    client: &Client,
    table: &str,
    log_key: &str,
    after: u64,
    limit: Option<usize>,
    keep: impl Fn(&EventEnvelope) -> bool,
) -> Result<Vec<EventEnvelope>, StoreError> {
    let mut events = Vec::new();
    let query = || {
        client
            .query()
            .table_name(table)
            .index_name(BY_LOG_INDEX)
            .key_condition_expression("#log = :log AND #gpos > :after")
            .expression_attribute_names("#log", LOG_ATTRIBUTE)
            .expression_attribute_names("#gpos", GLOBAL_POSITION)
            .expression_attribute_values(":log", s(log_key))
            .expression_attribute_values(":after", n(after))
    };
    query_pages(query, |item| {
        let event = decode_event(item, table)?;
        if keep(&event) {
            events.push(event);
        }
        Ok(limit.is_none_or(|limit| events.len() < limit))
    })
    .await?;
    Ok(events)
}

/// The position of a log's last stored event (0 when empty).
pub(crate) async fn log_head(client: &Client, table: &str, log_key: &str) -> Result<u64, StoreError> {
    let output = client
        .query()
        .table_name(table)
        .index_name(BY_LOG_INDEX)
        .key_condition_expression("#log = :log")
        .expression_attribute_names("#log", LOG_ATTRIBUTE)
        .expression_attribute_values(":log", s(log_key))
        .scan_index_forward(false)
        .limit(1)
        .send()
        .await
        .map_err(unavailable)?;
    match output.items().first() {
        Some(item) => Ok(decode_event(item, table)?.position),
        None => Ok(0),
    }
}
