//! Creating the tables and queues the adapters expect (used by tests on the
//! emulator; the deployer creates the same shapes from its plan).
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use reventless_core::store::StoreError;

use crate::dynamo::{
    BY_LOG_INDEX, EVENT_HASH, EVENT_RANGE, GLOBAL_POSITION, LOG_ATTRIBUTE, invalid_request, unavailable,
};
use crate::query_store::{INDEX_SLOTS, ROW_HASH, ROW_RANGE, index_slot};

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder().attribute_name(name).key_type(key_type).build().map_err(invalid_request)
}

fn attribute(name: &str, kind: ScalarAttributeType) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder().attribute_name(name).attribute_type(kind).build().map_err(invalid_request)
}

/// An events table: keys `id` / `position`, index `by_log` (`log` / `gpos`),
/// stream with new images.
pub async fn create_events_table(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), StoreError> {
    let by_log = GlobalSecondaryIndex::builder()
        .index_name(BY_LOG_INDEX)
        .key_schema(key(LOG_ATTRIBUTE, KeyType::Hash)?)
        .key_schema(key(GLOBAL_POSITION, KeyType::Range)?)
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()
        .map_err(invalid_request)?;
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(EVENT_HASH, KeyType::Hash)?)
        .key_schema(key(EVENT_RANGE, KeyType::Range)?)
        .attribute_definitions(attribute(EVENT_HASH, ScalarAttributeType::S)?)
        .attribute_definitions(attribute(EVENT_RANGE, ScalarAttributeType::S)?)
        .attribute_definitions(attribute(LOG_ATTRIBUTE, ScalarAttributeType::S)?)
        .attribute_definitions(attribute(GLOBAL_POSITION, ScalarAttributeType::N)?)
        .global_secondary_indexes(by_log)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .map_err(invalid_request)?,
        )
        .send()
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// A rows table: keys `t` (read model) / `id`, and one index per index slot
/// (`by_ixN`: hash `ixN`, range `id`).
pub async fn create_rows_table(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), StoreError> {
    let mut create = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(ROW_HASH, KeyType::Hash)?)
        .key_schema(key(ROW_RANGE, KeyType::Range)?)
        .attribute_definitions(attribute(ROW_HASH, ScalarAttributeType::S)?)
        .attribute_definitions(attribute(ROW_RANGE, ScalarAttributeType::S)?);
    for slot in 0..INDEX_SLOTS {
        let (attribute_name, index) = index_slot(slot);
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(index)
            .key_schema(key(&attribute_name, KeyType::Hash)?)
            .key_schema(key(ROW_RANGE, KeyType::Range)?)
            .projection(Projection::builder().projection_type(ProjectionType::All).build())
            .build()
            .map_err(invalid_request)?;
        create = create
            .attribute_definitions(attribute(&attribute_name, ScalarAttributeType::S)?)
            .global_secondary_indexes(gsi);
    }
    create.send().await.map_err(unavailable)?;
    Ok(())
}

/// A FIFO queue (no content-based dedup: commands carry their own dedup id); returns its URL.
pub async fn create_fifo_queue(client: &aws_sdk_sqs::Client, name: &str) -> Result<String, StoreError> {
    let output = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::VisibilityTimeout, "30")
        .send()
        .await
        .map_err(|e| StoreError::Unavailable(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
    output.queue_url().map(str::to_string).ok_or_else(|| StoreError::Unavailable(format!("no URL for queue {name}")))
}

/// The events and rows tables of `names`, and the FIFO queues of `topics`.
pub async fn create_stores(
    config: &aws_config::SdkConfig,
    names: &crate::StoreNames,
    topics: &[&str],
) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    create_events_table(&dynamodb, &names.events_table).await?;
    create_rows_table(&dynamodb, &names.rows_table).await?;
    let sqs = aws_sdk_sqs::Client::new(config);
    let mut urls = std::collections::BTreeMap::new();
    for topic in topics {
        let url = create_fifo_queue(&sqs, &crate::command_topic::queue_name(&names.queue_prefix, topic)).await?;
        urls.insert(topic.to_string(), url);
    }
    Ok(urls)
}
