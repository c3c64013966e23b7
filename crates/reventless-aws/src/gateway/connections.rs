//! The WebSocket connections of a stage and their subscriptions, in the
//! platform's connections table (rows layout: hash `t`, range `id`).
//!
//! | item | `t` | `id` |
//! |---|---|---|
//! | a connection (its caller) | `c#<connection>` | `~` |
//! | a connection's subscription, for cleanup | `c#<connection>` | `s#<subscription>` (`target` = the `t` below) |
//! | a subscription, for pushes | `s#<field>#<row id>` | `<connection>#<subscription>` |
//!
//! A read-model function finds every subscriber of a changed row with one
//! `Query` on `s#<field>#<row id>`; `$disconnect` (or a push answered
//! `GoneException`) removes a connection with one `Query` on `c#<connection>`.
//! Every item carries `expires` (epoch seconds), the table's TTL attribute:
//! API Gateway closes every connection after two hours, so rows whose
//! `$disconnect` never arrived do not stay.
use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use reventless_core::Caller;
use reventless_core::store::StoreError;
use serde::{Deserialize, Serialize};

use crate::dynamo::{Item, n, query_pages, s, unavailable};
use crate::query_store::{ROW_HASH, ROW_RANGE};

/// The TTL attribute of the connections table.
pub const EXPIRES_ATTRIBUTE: &str = "expires";
/// API Gateway's maximum connection duration (2 h) plus a margin.
pub const CONNECTION_LIFETIME_SECONDS: u64 = 3 * 60 * 60;
/// The attribute holding an item's JSON.
const DATA: &str = "data";
/// A connection item's range key.
const CONNECTION_ITEM: &str = "~";

/// A connection as its `$connect` and `connection_init` left it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    pub caller: Caller,
    /// `connection_init` was answered with `connection_ack`.
    pub acknowledged: bool,
}

/// One subscription of one connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub connection: String,
    /// The client's id of the `subscribe` message (`next` messages carry it).
    pub id: String,
    /// The WebSocket API and its stage (where pushes are posted).
    pub api: String,
    pub stage: String,
    pub plugin: String,
    /// The subscription field (`Catalog_onProductChanged`).
    pub field: String,
    /// The row it follows.
    pub row: String,
    /// The subscription as a query of the row (`Catalog_Product(id)`, same
    /// selection, same response key): what a push executes.
    pub query: String,
    #[serde(default)]
    pub variables: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_name: Option<String>,
    pub caller: Caller,
}

/// The connections table.
#[derive(Clone)]
pub struct Connections {
    client: Client,
    table: String,
}

fn connection_key(connection: &str) -> String {
    format!("c#{connection}")
}

/// The partition of a row's subscribers.
pub fn subscribers_key(field: &str, row: &str) -> String {
    format!("s#{field}#{row}")
}

fn expires() -> AttributeValue {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    n(now + CONNECTION_LIFETIME_SECONDS)
}

fn invalid(error: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(error.to_string())
}

fn key(t: &str, id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([(ROW_HASH.to_string(), s(t)), (ROW_RANGE.to_string(), s(id))])
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

impl Connections {
    pub fn new(config: &aws_config::SdkConfig, table: &str) -> Self {
        Self { client: Client::new(config), table: table.to_string() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Records a connection (again: `connection_init` updates it).
    pub async fn put_connection(&self, id: &str, connection: &Connection) -> Result<(), StoreError> {
        let data = serde_json::to_string(connection).map_err(invalid)?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(key(&connection_key(id), CONNECTION_ITEM)))
            .item(DATA, s(data))
            .item(EXPIRES_ATTRIBUTE, expires())
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    pub async fn connection(&self, id: &str) -> Result<Option<Connection>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(&connection_key(id), CONNECTION_ITEM)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let data = output.item().and_then(|item| text(item, DATA));
        data.map(|data| serde_json::from_str(data).map_err(invalid)).transpose()
    }

    /// Stores a subscription and its cleanup entry together (a client id
    /// used again replaces the earlier subscription of that id).
    pub async fn subscribe(&self, subscription: &Subscription) -> Result<(), StoreError> {
        self.unsubscribe(&subscription.connection, &subscription.id).await?;
        let data = serde_json::to_string(subscription).map_err(invalid)?;
        let target = subscribers_key(&subscription.field, &subscription.row);
        let mut item = key(&target, &format!("{}#{}", subscription.connection, subscription.id));
        item.insert(DATA.into(), s(data));
        item.insert(EXPIRES_ATTRIBUTE.into(), expires());
        let mut entry = key(&connection_key(&subscription.connection), &format!("s#{}", subscription.id));
        entry.insert("target".into(), s(&target));
        entry.insert(EXPIRES_ATTRIBUTE.into(), expires());
        let puts = [item, entry].into_iter().map(|item| {
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .build()
                .map(|put| TransactWriteItem::builder().put(put).build())
        });
        let items = puts.collect::<Result<Vec<_>, _>>().map_err(invalid)?;
        crate::dynamo::transact(&self.client, items).await
    }

    /// Removes one subscription of a connection (nothing when it has none of that id).
    pub async fn unsubscribe(&self, connection: &str, id: &str) -> Result<(), StoreError> {
        let entry_key = key(&connection_key(connection), &format!("s#{id}"));
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(entry_key.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let Some(target) = output.item().and_then(|item| text(item, "target")).map(str::to_string) else {
            return Ok(());
        };
        let deletes = [entry_key, key(&target, &format!("{connection}#{id}"))].into_iter().map(|key| {
            Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key))
                .build()
                .map(|delete| TransactWriteItem::builder().delete(delete).build())
        });
        let items = deletes.collect::<Result<Vec<_>, _>>().map_err(invalid)?;
        crate::dynamo::transact(&self.client, items).await
    }

    /// A `Query` of every item under `partition`.
    fn partition_query(&self, partition: &str) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#t = :t")
            .expression_attribute_names("#t", ROW_HASH)
            .expression_attribute_values(":t", s(partition))
    }

    /// Removes a connection and every subscription of it.
    pub async fn remove_connection(&self, connection: &str) -> Result<(), StoreError> {
        let partition = connection_key(connection);
        let mut keys = Vec::new();
        query_pages(
            || self.partition_query(&partition).consistent_read(true),
            |item| {
                let id = text(item, ROW_RANGE).unwrap_or_default().to_string();
                if let (Some(subscription), Some(target)) = (id.strip_prefix("s#"), text(item, "target")) {
                    keys.push(key(target, &format!("{connection}#{subscription}")));
                }
                keys.push(key(&partition, &id));
                Ok(true)
            },
        )
        .await?;
        for key in keys {
            self.client.delete_item().table_name(&self.table).set_key(Some(key)).send().await.map_err(unavailable)?;
        }
        Ok(())
    }

    /// Every subscription of one row (one `Query`, page by page).
    pub async fn subscribers(&self, field: &str, row: &str) -> Result<Vec<Subscription>, StoreError> {
        let partition = subscribers_key(field, row);
        let mut found = Vec::new();
        query_pages(
            || self.partition_query(&partition),
            |item| {
                match text(item, DATA).map(serde_json::from_str::<Subscription>) {
                    Some(Ok(subscription)) => found.push(subscription),
                    other => tracing::warn!(?other, partition, "a subscription row that cannot be read; skipped"),
                }
                Ok(true)
            },
        )
        .await?;
        Ok(found)
    }
}
