//! The platform gateway: one GraphQL endpoint for every plugin of a stage.
//!
//! Plugins register themselves in the platform's registry (their heartbeat
//! writes version, schema fragment and API function). The gateway composes
//! the fragments into one schema (`GET` answers it as SDL), and answers a
//! `POST`ed request by splitting its root fields per plugin ([`split`]),
//! invoking each plugin's `<Plugin>Api` function with its part (the
//! caller's identity, verified by [`auth`], travels along unchanged) and
//! merging the answers.
//! Plugins deploy on their own: a new plugin is served from its first
//! heartbeat on, without redeploying the platform.
pub mod auth;
pub mod compose;
pub mod connections;
mod hooks;
mod mcp;
pub mod push;
pub mod registry;
pub mod split;
pub mod websocket;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::Name;
use async_graphql::parser::Positioned;
use futures::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use auth::{AuthError, AuthSettings, Authenticator};
pub use compose::{ComposeError, compose};
pub use registry::{Inbox, Registration, Registry};
pub use split::{Part, RouteError, Routing, Target, route};

use crate::lambda::{graphql_error, http_response, request_body};

/// `(name: value, …)` of a field or directive (empty without arguments);
/// values print as GraphQL literals, constant or not.
fn argument_list<V: std::fmt::Display>(arguments: &[(Positioned<Name>, Positioned<V>)]) -> String {
    if arguments.is_empty() {
        return String::new();
    }
    let list: Vec<String> = arguments.iter().map(|(name, value)| format!("{}: {}", name.node, value.node)).collect();
    format!("({})", list.join(", "))
}

/// ` @name(arguments)` of one directive (in a schema or in a query).
fn directive_text<V: std::fmt::Display>(name: &Name, arguments: &[(Positioned<Name>, Positioned<V>)]) -> String {
    format!(" @{name}{}", argument_list(arguments))
}

/// The environment variable holding the gateway's configuration.
pub const GATEWAY_ENV: &str = "REVENTLESS_GATEWAY";

/// How long a container trusts what it read from the registry.
pub const REGISTRY_TTL: Duration = Duration::from_secs(10);

/// How often the deployed heartbeats run (their schedule is `rate(1 minute)`).
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(60);

/// The root-field prefix the gateway answers itself (`Platform_Plugins`).
pub const PLATFORM_PREFIX: &str = "Platform";

/// The registry as the gateway last read it (shared with `Platform_Plugins`).
type SnapshotSlot = Arc<tokio::sync::Mutex<Option<Arc<Snapshot>>>>;

/// `Platform_Plugins` on AWS: the registry as the request being answered
/// routed by (read once per [`REGISTRY_TTL`], not again per field).
struct RegistryRows(SnapshotSlot);

impl reventless_graphql::PlatformRows for RegistryRows {
    fn plugin_rows(&self) -> futures::future::BoxFuture<'_, Result<Vec<Value>, reventless_core::EngineError>> {
        Box::pin(async move {
            let snapshot = self.0.lock().await.clone();
            Ok(snapshot
                .iter()
                .flat_map(|snapshot| snapshot.plugins.values())
                .map(|r| {
                    json!({
                        "name": r.plugin, "version": r.version, "status": "CONNECTED",
                        "lastHeartbeat": r.last_heartbeat, "schema": r.schema,
                    })
                })
                .collect())
        })
    }

    fn heartbeat_interval(&self) -> Duration {
        HEARTBEAT_EVERY
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// The registry table.
    pub registry: String,
    /// The end users' OIDC issuer (`[auth]`); without it every caller is
    /// anonymous and a bearer token is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSettings>,
    /// The WebSocket connections table (subscriptions); without it the
    /// gateway serves no WebSocket API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayConfigError {
    #[error("{GATEWAY_ENV} is not set")]
    Missing,
    #[error("invalid gateway configuration: {0}")]
    Invalid(#[from] serde_json::Error),
    #[error("invalid gateway configuration: auth.{0}: {1}")]
    Auth(&'static str, String),
}

impl GatewayConfig {
    pub fn from_env() -> Result<Self, GatewayConfigError> {
        let text = std::env::var(GATEWAY_ENV).map_err(|_| GatewayConfigError::Missing)?;
        let config: Self = serde_json::from_str(&text)?;
        if let Some((key, message)) = config.auth.as_ref().and_then(AuthSettings::problem) {
            return Err(GatewayConfigError::Auth(key, message));
        }
        Ok(config)
    }
}

/// Calls a plugin's API function with an HTTP event; answers its HTTP response.
#[async_trait::async_trait]
pub trait PluginApis: Send + Sync {
    async fn call(&self, function: &str, event: Value) -> Result<Value, String>;
}

/// [`PluginApis`] through Lambda's `Invoke`.
pub struct LambdaInvoke(pub aws_sdk_lambda::Client);

#[async_trait::async_trait]
impl PluginApis for LambdaInvoke {
    async fn call(&self, function: &str, event: Value) -> Result<Value, String> {
        let output = self
            .0
            .invoke()
            .function_name(function)
            .payload(aws_smithy_types::Blob::new(event.to_string()))
            .send()
            .await
            .map_err(|e| aws_sdk_lambda::error::DisplayErrorContext(e).to_string())?;
        let payload = output.payload().map(|blob| blob.as_ref().to_vec()).unwrap_or_default();
        if let Some(kind) = output.function_error() {
            return Err(format!("{kind}: {}", String::from_utf8_lossy(&payload)));
        }
        serde_json::from_slice(&payload).map_err(|e| format!("not an HTTP response: {e}"))
    }
}

/// What the registry said, composed.
struct Snapshot {
    read_at: Instant,
    plugins: BTreeMap<String, Registration>,
    schema: Result<String, ComposeError>,
}

pub struct Gateway {
    registry: Registry,
    apis: Arc<dyn PluginApis>,
    /// The fields the gateway answers itself (`Platform_`), over the registry.
    platform: reventless_graphql::ApiSchema,
    snapshot: SnapshotSlot,
    /// Who the caller is (before anything runs).
    auth: Authenticator,
    /// WebSocket connections and their subscriptions ([`websocket`]).
    connections: Option<connections::Connections>,
}

impl Gateway {
    pub fn new(registry: Registry, apis: Arc<dyn PluginApis>) -> Result<Self, reventless_graphql::BuildError> {
        let snapshot = SnapshotSlot::default();
        let platform = reventless_graphql::platform_schema(Arc::new(RegistryRows(snapshot.clone())))?;
        Ok(Self { registry, apis, platform, snapshot, auth: Authenticator::none(), connections: None })
    }

    /// The gateway verifying bearer tokens with `auth`.
    pub fn with_auth(self, auth: Authenticator) -> Self {
        Self { auth, ..self }
    }

    /// The gateway serving WebSocket subscriptions over `connections`.
    pub fn with_connections(self, connections: connections::Connections) -> Self {
        Self { connections: Some(connections), ..self }
    }

    async fn snapshot(&self) -> Result<Arc<Snapshot>, String> {
        let mut slot = self.snapshot.lock().await;
        if let Some(snapshot) = slot.as_ref().filter(|s| s.read_at.elapsed() < REGISTRY_TTL) {
            return Ok(snapshot.clone());
        }
        let registrations = self.registry.list().await.map_err(|e| e.to_string())?;
        let plugins: BTreeMap<String, Registration> =
            registrations.into_iter().map(|r| (r.plugin.clone(), r)).collect();
        let mut fragments: BTreeMap<String, String> =
            plugins.iter().map(|(name, r)| (name.clone(), r.schema.clone())).collect();
        fragments.insert(PLATFORM_PREFIX.to_string(), self.platform.sdl());
        let snapshot = Arc::new(Snapshot { read_at: Instant::now(), schema: compose(&fragments), plugins });
        *slot = Some(snapshot.clone());
        Ok(snapshot)
    }

    /// Answers one HTTP event (payload 2.0) under the request's correlation
    /// id (the caller's `x-correlation-id` when valid, else a new one): the
    /// plugins it calls run their commands under it, and the answer names it
    /// in the same header.
    pub async fn handle(&self, payload: Value) -> Value {
        use reventless_core::runtime::{CORRELATION_HEADER, correlation};
        let supplied = payload.get("headers").and_then(|h| h.get(CORRELATION_HEADER)).and_then(Value::as_str);
        let correlation_id = correlation::request_correlation(supplied);
        let span = tracing::info_span!("request", correlation_id = correlation_id.as_str());
        let work = correlation::with_correlation(correlation_id.clone(), self.handle_request(payload));
        let mut response = tracing::Instrument::instrument(work, span).await;
        if let Some(headers) = response.get_mut("headers").and_then(Value::as_object_mut) {
            headers.insert(CORRELATION_HEADER.into(), json!(correlation_id));
        }
        response
    }

    async fn handle_request(&self, payload: Value) -> Value {
        if payload.pointer("/requestContext/eventType").is_some() {
            return self.websocket(&payload).await;
        }
        let method = payload.pointer("/requestContext/http/method").and_then(Value::as_str).unwrap_or("GET");
        let path = payload.get("rawPath").and_then(Value::as_str).unwrap_or("/");
        if method == "GET" && path.ends_with("/health") {
            return http_response(200, &json!({"status": "ok"}));
        }
        if path.starts_with("/hooks/") {
            return self.hook(&payload).await;
        }
        let caller = match self.auth.caller(payload.get("headers")).await {
            Ok(caller) => caller,
            Err(AuthError::Unauthenticated(message)) => {
                let mut response = http_response(401, &graphql_error(&message, "UNAUTHENTICATED"));
                response["headers"]["www-authenticate"] = json!("Bearer");
                return response;
            }
            Err(AuthError::Unavailable(message)) => {
                return http_response(503, &graphql_error(&message, "UNAVAILABLE"));
            }
        };
        let snapshot = match self.snapshot().await {
            Ok(snapshot) => snapshot,
            Err(error) => {
                tracing::error!(error, "cannot read the plugin registry");
                return http_response(503, &graphql_error("the plugin registry cannot be read", "UNAVAILABLE"));
            }
        };
        let schema = match &snapshot.schema {
            Ok(schema) => schema,
            Err(error) => return http_response(500, &graphql_error(&error.to_string(), "SCHEMA_CONFLICT")),
        };
        // The Model Context Protocol over the same plugins ([`mcp`]).
        if path.ends_with("/mcp") {
            return self.mcp(&payload, &caller, &snapshot, schema).await;
        }
        if method == "GET" {
            return json!({
                "statusCode": 200,
                "headers": { "content-type": "text/plain; charset=utf-8" },
                "body": schema,
                "isBase64Encoded": false,
            });
        }
        if method != "POST" {
            return http_response(405, &graphql_error("POST a GraphQL request", "METHOD_NOT_ALLOWED"));
        }
        let body = match request_body(&payload) {
            Ok(body) => body,
            Err(response) => return response,
        };
        let request: GraphqlRequest = match serde_json::from_str(&body) {
            Ok(request) => request,
            Err(error) => {
                return http_response(400, &graphql_error(&format!("not a GraphQL request: {error}"), "BAD_REQUEST"));
            }
        };
        let routing = match route(&request.query, request.operation_name.as_deref(), &request.variables) {
            Ok(routing) => routing,
            Err(error) => {
                let code = if matches!(error, RouteError::Syntax(_)) {
                    "GRAPHQL_PARSE_FAILED"
                } else {
                    "GRAPHQL_VALIDATION_FAILED"
                };
                return http_response(400, &graphql_error(&error.to_string(), code));
            }
        };
        for part in &routing.parts {
            if let Target::Plugin(plugin) = &part.target
                && plugin != PLATFORM_PREFIX
                && !snapshot.plugins.contains_key(plugin)
            {
                let message = format!("no plugin `{plugin}` is connected (connected: {})", known(&snapshot));
                return http_response(400, &graphql_error(&message, "GRAPHQL_VALIDATION_FAILED"));
            }
        }
        let answers = if routing.serial {
            let mut answers = Vec::new();
            for part in &routing.parts {
                answers.extend(self.answer(&snapshot, &payload, &caller, part).await);
            }
            answers
        } else {
            join_all(routing.parts.iter().map(|part| self.answer(&snapshot, &payload, &caller, part)))
                .await
                .into_iter()
                .flatten()
                .collect()
        };
        http_response(200, &split::merge_answers(&routing, answers))
    }

    /// One part's answers (introspection: one per plugin, and the gateway's own).
    async fn answer(
        &self,
        snapshot: &Snapshot,
        event: &Value,
        caller: &reventless_core::Caller,
        part: &Part,
    ) -> Vec<(Target, Result<Value, String>)> {
        let mut own = Vec::new();
        let plugins: Vec<&Registration> = match &part.target {
            Target::Plugin(plugin) if plugin == PLATFORM_PREFIX => {
                return vec![(part.target.clone(), Ok(self.answer_platform(part).await))];
            }
            Target::Plugin(plugin) => snapshot.plugins.get(plugin).into_iter().collect(),
            Target::Introspection => {
                own.push((part.target.clone(), Ok(self.answer_platform(part).await)));
                snapshot.plugins.values().collect()
            }
        };
        let body = json!({ "query": part.query, "operationName": part.operation_name, "variables": part.variables });
        let calls = plugins.into_iter().map(|registration| {
            let mut event = auth::forwarded_event(event, caller, body.to_string());
            if let Some(id) = reventless_core::runtime::current_correlation() {
                event["headers"][reventless_core::runtime::CORRELATION_HEADER] = json!(id);
            }
            async move {
                let answer = match self.apis.call(&registration.api_function, event).await {
                    Ok(response) => response_body(&response),
                    Err(error) => {
                        tracing::error!(plugin = registration.plugin, error, "plugin API call failed");
                        Err(format!("plugin `{}` did not answer", registration.plugin))
                    }
                };
                (part.target.clone(), answer)
            }
        });
        own.extend(join_all(calls).await);
        own
    }

    /// A part the gateway answers itself (no identity is needed to list plugins).
    async fn answer_platform(&self, part: &Part) -> Value {
        let variables = async_graphql::Variables::from_json(Value::Object(part.variables.clone()));
        let mut request = async_graphql::Request::new(part.query.clone()).variables(variables);
        if let Some(name) = &part.operation_name {
            request = request.operation_name(name);
        }
        let response = reventless_graphql::execute(&self.platform, request, reventless_core::Caller::default()).await;
        serde_json::to_value(&response).unwrap_or_else(|e| graphql_error(&e.to_string(), "INTERNAL"))
    }
}

fn known(snapshot: &Snapshot) -> String {
    if snapshot.plugins.is_empty() {
        "none".into()
    } else {
        snapshot.plugins.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// The GraphQL body of a plugin's HTTP response.
fn response_body(response: &Value) -> Result<Value, String> {
    let body = response.get("body").and_then(Value::as_str).ok_or("a response without body")?;
    serde_json::from_str(body).map_err(|e| format!("a response that is not JSON: {e}"))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphqlRequest {
    query: String,
    #[serde(default)]
    operation_name: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    variables: serde_json::Map<String, Value>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<serde_json::Map<String, Value>, D::Error> {
    Ok(Option::<serde_json::Map<String, Value>>::deserialize(d)?.unwrap_or_default())
}

/// Runs the gateway as a Lambda function until the runtime stops it.
pub async fn run() -> Result<(), lambda_runtime::Error> {
    let config = GatewayConfig::from_env()?;
    let sdk = crate::lambda::sdk_config().await;
    let mut gateway =
        Gateway::new(Registry::new(&sdk, &config.registry), Arc::new(LambdaInvoke(aws_sdk_lambda::Client::new(&sdk))))?
            .with_auth(Authenticator::https(config.auth));
    if let Some(table) = &config.connections {
        gateway = gateway.with_connections(connections::Connections::new(&sdk, table));
    }
    let gateway = Arc::new(gateway);
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<Value>| {
        let gateway = gateway.clone();
        let span = crate::lambda::invocation_span(&event.context, None);
        let work = async move { Ok::<Value, lambda_runtime::Error>(gateway.handle(event.payload).await) };
        tracing::Instrument::instrument(work, span)
    }))
    .await
}

/// The `main` of the platform gateway's `bootstrap`.
pub fn main() -> std::process::ExitCode {
    crate::lambda::logging::init();
    crate::lambda::serve(run())
}
