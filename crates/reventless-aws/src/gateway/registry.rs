//! The platform's registry of connected plugins: each plugin's heartbeat
//! writes its registration (version, schema fragment, API function); the
//! gateway reads them all. A rows-layout table (`t` = `~plugins`, `id` =
//! plugin), so the deployer needs no other table shape.
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use reventless_core::store::StoreError;
use serde::{Deserialize, Serialize};

use crate::dynamo::{s, unavailable};
use crate::query_store::{ROW_HASH, ROW_RANGE};

const PARTITION: &str = "~plugins";
const REGISTRATION: &str = "registration";

/// What a plugin tells the platform about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    pub plugin: String,
    pub version: String,
    /// The function answering the plugin's GraphQL (`<Plugin>Api`).
    pub api_function: String,
    /// The plugin's part of the API, as SDL.
    pub schema: String,
    /// Milliseconds since the epoch of the latest heartbeat.
    pub last_heartbeat: u64,
    /// Where the plugin takes other plugins' extension points' events, when
    /// it extends any: publishers deployed before it (from anywhere) find it here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbox: Option<Inbox>,
}

/// A subscriber's inbox: its queue and the points (`Catalog.Products`) it extends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inbox {
    pub queue: String,
    pub points: Vec<String>,
}

#[derive(Clone)]
pub struct Registry {
    client: Client,
    table: String,
}

impl Registry {
    pub fn new(config: &aws_config::SdkConfig, table: &str) -> Self {
        Self::with_client(Client::new(config), table)
    }

    /// The registry in `table` through an existing client (the deployer's).
    pub fn with_client(client: Client, table: &str) -> Self {
        Self { client, table: table.to_string() }
    }

    /// Disconnects a plugin: its row goes, so the gateway's next read of the
    /// registry (at most [`REGISTRY_TTL`](super::REGISTRY_TTL) later) composes
    /// the schema without it and routes nothing to it. Missing is fine.
    pub async fn remove(&self, plugin: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(ROW_HASH, s(PARTITION))
            .key(ROW_RANGE, s(plugin))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    pub async fn register(&self, registration: &Registration) -> Result<(), StoreError> {
        let json = serde_json::to_string(registration).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item(ROW_HASH, s(PARTITION))
            .item(ROW_RANGE, s(&registration.plugin))
            .item(REGISTRATION, s(json))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Every registration; an unreadable one is skipped with a warning (one
    /// broken plugin row must not take the whole API down).
    pub async fn list(&self) -> Result<Vec<Registration>, StoreError> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#t = :t")
                .expression_attribute_names("#t", ROW_HASH)
                .expression_attribute_values(":t", s(PARTITION))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            for item in page.items() {
                let text = item.get(REGISTRATION).and_then(|v: &AttributeValue| v.as_s().ok());
                match text.map(|t| serde_json::from_str::<Registration>(t)) {
                    Some(Ok(registration)) => found.push(registration),
                    other => tracing::warn!(?other, "a registry row that is not a registration; skipped"),
                }
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(found);
            }
        }
    }
}
