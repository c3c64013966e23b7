//! Pushing row changes to subscribed WebSocket connections: a read-model
//! function, after its followers applied a batch, looks up the subscribers
//! of each changed row (one `Query` per row) and posts each a
//! graphql-transport-ws `next` message through API Gateway's Management API.
//! The message is what the local server sends: the subscription's
//! selection of the row as it is now, executed for the subscriber (its
//! roles are checked again), `{"id", "type": "next", "payload": {"data": …}}`.
//! A connection that is gone (`GoneException`) is removed.
use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_apigatewaymanagement::Client;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use reventless_core::{RowChange, Runtime};
use reventless_graphql::ApiSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::connections::{Connections, Subscription};

/// The environment variable that tells a read-model function to push
/// (`{"connections": "<table>"}`).
pub const SUBSCRIPTIONS_ENV: &str = "REVENTLESS_SUBSCRIPTIONS";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushConfig {
    /// The platform's connections table.
    pub connections: String,
}

/// The Management API endpoint of a WebSocket API's stage: AWS's own, or,
/// when `AWS_ENDPOINT_URL` sends every call to one endpoint (the local
/// cloud), that endpoint with the API and stage as the path's first segments.
pub fn management_endpoint(sdk: &aws_config::SdkConfig, api: &str, stage: &str) -> String {
    match sdk.endpoint_url() {
        Some(base) => format!("{}/{api}/{stage}", base.trim_end_matches('/')),
        None => {
            let region = sdk.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
            format!("https://{api}.execute-api.{region}.amazonaws.com/{stage}")
        }
    }
}

/// Per container: the connections table, the plugin's schema (built on the
/// first push), a Management API client per stage.
pub struct Pusher {
    sdk: aws_config::SdkConfig,
    connections: Connections,
    /// Read-model table → its subscription field (`Catalog_Products` → `Catalog_onProductChanged`).
    fields: BTreeMap<String, String>,
    schema: tokio::sync::OnceCell<Option<ApiSchema>>,
    clients: std::sync::Mutex<HashMap<String, Client>>,
}

impl Pusher {
    /// From `REVENTLESS_SUBSCRIPTIONS`; None when it is not set (no WebSocket API).
    pub fn from_env(sdk: &aws_config::SdkConfig, runtime: &Runtime) -> Result<Option<Self>, serde_json::Error> {
        let Ok(text) = std::env::var(SUBSCRIPTIONS_ENV) else { return Ok(None) };
        let config: PushConfig = serde_json::from_str(&text)?;
        Ok(Some(Self::new(sdk, runtime, &config)))
    }

    pub fn new(sdk: &aws_config::SdkConfig, runtime: &Runtime, config: &PushConfig) -> Self {
        let mut fields = BTreeMap::new();
        for plugin in runtime.plugins() {
            for projection in &plugin.projections {
                let (singular, _) = projection.handler.names();
                fields.insert(projection.handler.table().to_string(), format!("{}_on{singular}Changed", plugin.name));
            }
        }
        Self {
            sdk: sdk.clone(),
            connections: Connections::new(sdk, &config.connections),
            fields,
            schema: tokio::sync::OnceCell::new(),
            clients: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, api: &str, stage: &str) -> Client {
        let endpoint = management_endpoint(&self.sdk, api, stage);
        let mut clients = self.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        clients
            .entry(endpoint.clone())
            .or_insert_with(|| {
                Client::from_conf(
                    aws_sdk_apigatewaymanagement::config::Builder::from(&self.sdk).endpoint_url(endpoint).build(),
                )
            })
            .clone()
    }

    /// Everything queued on `changes` (the runtime's row changes since the
    /// receiver was made), pushed to the subscribers of each row once.
    pub async fn push_all(&self, runtime: &Runtime, changes: &mut tokio::sync::broadcast::Receiver<RowChange>) {
        let mut rows = BTreeSet::new();
        loop {
            match changes.try_recv() {
                Ok(change) => {
                    rows.insert((change.table, change.id));
                }
                Err(tokio::sync::broadcast::error::TryRecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "more row changes than the buffer holds; their subscribers miss a push");
                }
                Err(_) => break,
            }
        }
        for (table, row) in rows {
            let Some(field) = self.fields.get(&table) else { continue };
            let subscribers = match self.connections.subscribers(field, &row).await {
                Ok(subscribers) => subscribers,
                Err(error) => {
                    tracing::error!(%error, field, row, "cannot read the row's subscribers; no push");
                    continue;
                }
            };
            for subscription in subscribers {
                self.push(runtime, &subscription).await;
            }
        }
    }

    async fn push(&self, runtime: &Runtime, subscription: &Subscription) {
        let schema = self
            .schema
            .get_or_init(|| async {
                reventless_graphql::build_schema_of(runtime, None)
                    .inspect_err(|error| tracing::error!(%error, "cannot build the schema pushes execute on"))
                    .ok()
            })
            .await;
        let Some(schema) = schema else { return };
        let variables = async_graphql::Variables::from_json(Value::Object(subscription.variables.clone()));
        let mut request = async_graphql::Request::new(subscription.query.clone()).variables(variables);
        if let Some(name) = &subscription.operation_name {
            request = request.operation_name(name);
        }
        let response = reventless_graphql::execute(schema, request, subscription.caller.clone()).await;
        let payload = serde_json::to_value(&response)
            .unwrap_or_else(|e| crate::lambda::graphql_error(&e.to_string(), "INTERNAL"));
        let message = json!({"id": subscription.id, "type": "next", "payload": payload});
        let client = self.client(&subscription.api, &subscription.stage);
        let sent = client
            .post_to_connection()
            .connection_id(&subscription.connection)
            .data(aws_smithy_types::Blob::new(message.to_string()))
            .send()
            .await;
        match sent {
            Ok(_) => {}
            Err(error) if error.code() == Some("GoneException") => {
                tracing::info!(connection = subscription.connection, "a subscriber is gone; its connection is removed");
                if let Err(error) = self.connections.remove_connection(&subscription.connection).await {
                    tracing::warn!(%error, "cannot remove a gone connection (its rows expire)");
                }
            }
            Err(error) => tracing::warn!(
                connection = subscription.connection,
                error = %aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&error),
                "a push failed"
            ),
        }
    }
}
