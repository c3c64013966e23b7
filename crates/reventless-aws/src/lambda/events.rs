//! Handling one invocation: an SQS batch, a DynamoDB stream batch or an
//! HTTP request (API Gateway v2 / function URL, payload 2.0).
use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use futures::future::join_all;
use reventless_core::plugin::LogKind;
use reventless_core::store::CommandMessage;
use reventless_core::{Caller, Plugin, Runtime};
use reventless_graphql::ApiSchema;
use reventless_spec::Capabilities;
use serde_json::{Value, json};

use super::config::{ConfigError, FunctionConfig, HandlerGroup};

/// Why an invocation failed as a whole (the platform retries it).
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    #[error("this function ({0:?}) does not handle {1} events")]
    WrongGroup(HandlerGroup, &'static str),
    #[error("an event this function does not know: {0}")]
    UnknownEvent(String),
    #[error("cannot register with the platform: {0}")]
    Registry(reventless_core::store::StoreError),
}

/// The per-container state: the engine on the plugin's stores, and the API
/// schema when the function is the plugin's `Api`.
pub struct Handler {
    group: HandlerGroup,
    /// The components of the group it runs (all when empty).
    components: Vec<String>,
    runtime: Runtime,
    schema: Option<ApiSchema>,
    /// The plugin's name and its part of the API (heartbeats register it).
    fragment: Option<(String, String)>,
    /// Where heartbeats register the plugin for the platform gateway, its
    /// API function, and its inbox when it extends other plugins' points.
    registry: Option<(crate::gateway::Registry, String, Option<crate::gateway::Inbox>)>,
    /// Subscribers deployed after this plugin, found in the registry (publishers).
    discovery: Option<super::discovery::Discovery>,
    /// Pushes row changes to WebSocket subscribers (read-model functions of a stage with a WebSocket API).
    pusher: Option<crate::gateway::push::Pusher>,
    /// Runs uploaded files (the `Tasks` function).
    tasks: Option<super::tasks::Tasks>,
}

/// The input a heartbeat schedule sends.
pub const HEARTBEAT_EVENT: &str = "heartbeat";

#[derive(Debug, thiserror::Error)]
pub enum HandlerInitError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Runtime(#[from] reventless_core::RuntimeError),
    #[error(transparent)]
    Api(#[from] reventless_graphql::BuildError),
    #[error("invalid REVENTLESS_SUBSCRIPTIONS: {0}")]
    Subscriptions(serde_json::Error),
}

impl Handler {
    pub fn new(
        sdk: &aws_config::SdkConfig,
        config: &FunctionConfig,
        plugin: Plugin,
        capabilities: Capabilities,
    ) -> Result<Self, HandlerInitError> {
        let group = config.group()?;
        if plugin.name() != config.plugin {
            return Err(ConfigError::UnknownPlugin(config.plugin.clone()).into());
        }
        let manifest = plugin.manifest().map_err(reventless_core::RuntimeError::from)?;
        if let Some(unknown) = config.components.iter().find(|c| !manifest.components.iter().any(|m| &m.name == *c)) {
            let known: Vec<&str> = manifest.components.iter().map(|c| c.name.as_str()).collect();
            return Err(ConfigError::UnknownComponent {
                plugin: config.plugin.clone(),
                component: unknown.clone(),
                known: known.join(", "),
            }
            .into());
        }
        let indexes = manifest.storage.tables.iter().map(|t| (t.name.clone(), t.indexes.clone())).collect();
        let queues = crate::QueueDirectory { urls: config.queues.clone(), names: config.queue_names.clone() };
        let stores = crate::aws_stores_with(sdk, &config.stores, queues, indexes);
        let options = reventless_core::RuntimeOptions {
            topics: config.topics,
            subscribers: config.subscribers.clone(),
            ..Default::default()
        };
        let publishes =
            manifest.components.iter().any(|c| c.kind == reventless_core::plugin::ComponentKind::ExtensionPoint);
        let discovery = match &config.registry {
            Some(registry) if group == HandlerGroup::AllAutomationSlices && publishes => {
                Some(super::discovery::Discovery::new(
                    sdk,
                    registry,
                    config.stores.clone(),
                    plugin.clone(),
                    capabilities.clone(),
                    config.topics,
                    config.subscribers.clone(),
                )?)
            }
            _ => None,
        };
        let inbox = inbox_of(&manifest, &config.stores);
        let tasks = (group == HandlerGroup::Tasks).then(|| super::tasks::Tasks::new(sdk, &manifest));
        let runtime = Runtime::on_demand(stores, vec![plugin], capabilities, options)?;
        // Roles that run automations (their stream group, and the heartbeat
        // that retries due items) refuse to start without the capabilities
        // those need: a binary missing one fails at init, not item by item.
        let runs_automations =
            group == HandlerGroup::Heartbeat || group.followers().contains(&reventless_core::FollowerKind::Automation);
        if runs_automations {
            runtime.check_capabilities(&config.components)?;
        }
        let schema =
            if group == HandlerGroup::Api { Some(reventless_graphql::build_schema_of(&runtime, None)?) } else { None };
        let fragment = if group == HandlerGroup::Heartbeat {
            let sdl = reventless_graphql::build_schema_of(&runtime, Some(&config.plugin))?.sdl();
            Some((config.plugin.clone(), sdl))
        } else {
            None
        };
        let registry = match (&config.registry, &config.api_function) {
            (Some(table), Some(api_function)) => {
                Some((crate::gateway::Registry::new(sdk, table), api_function.clone(), inbox))
            }
            _ => None,
        };
        let pusher = if group.followers().contains(&reventless_core::FollowerKind::Projection) {
            crate::gateway::push::Pusher::from_env(sdk, &runtime).map_err(HandlerInitError::Subscriptions)?
        } else {
            None
        };
        Ok(Self {
            group,
            components: config.components.clone(),
            runtime,
            schema,
            fragment,
            registry,
            pusher,
            discovery,
            tasks,
        })
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Answers one invocation.
    pub async fn handle(&self, payload: Value) -> Result<Value, lambda_runtime::Error> {
        if payload.pointer("/requestContext/http").is_some() {
            return Ok(self.http(&payload).await?);
        }
        if payload.get("reventless").and_then(Value::as_str) == Some(HEARTBEAT_EVENT) {
            return Ok(self.heartbeat().await?);
        }
        if payload.get("reventless").and_then(Value::as_str) == Some(super::schedules::SCHEDULE_EVENT) {
            return super::schedules::handle(self.group, &self.runtime, &payload)
                .await
                .map_err(|e| InvocationError::UnknownEvent(format!("schedule: {e}")).into());
        }
        if payload.get("reventless").and_then(Value::as_str) == Some(super::replay::REPLAY_EVENT) {
            return Ok(super::replay::handle(self.group, &self.components, &self.runtime, &payload).await);
        }
        if payload.get("Records").and_then(Value::as_array).is_some_and(Vec::is_empty) {
            return Ok(json!({ "batchItemFailures": [] }));
        }
        let source = payload.pointer("/Records/0/eventSource").and_then(Value::as_str).unwrap_or_default();
        match source {
            "aws:sqs" => Ok(self.sqs(&payload).await?),
            "aws:dynamodb" => Ok(self.stream(&payload).await?),
            _ => {
                let shape = payload.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "));
                Err(InvocationError::UnknownEvent(format!("keys [{}]", shape.unwrap_or_default())).into())
            }
        }
    }

    /// The plugin says it is alive: its `Platform_Plugins` row (version,
    /// status, heartbeat time, schema fragment) is written again. It is also
    /// the plugin's clock: automation items whose retry is due are retried
    /// (nothing else would wake them without new events).
    ///
    /// When retrying fails (the todo list cannot be read or written) the
    /// answer says `DEGRADED` with each automation's error, and each is
    /// logged as an error: an invocation answering `CONNECTED` would hide
    /// automations that no longer move. The registry still shows the plugin
    /// (it is alive and its API answers; the gateway keeps routing to it) —
    /// the failure belongs to the function's log and answer, and the next
    /// beat tries again.
    async fn heartbeat(&self) -> Result<Value, InvocationError> {
        let Some((plugin, sdl)) = &self.fragment else {
            return Err(InvocationError::WrongGroup(self.group, "heartbeat"));
        };
        self.runtime.register_schema_fragment(plugin, sdl.clone()).await;
        if let Some((registry, api_function, inbox)) = &self.registry {
            let registration = crate::gateway::Registration {
                plugin: plugin.clone(),
                version: self.runtime.manifests().first().map(|m| m.version.clone()).unwrap_or_default(),
                api_function: api_function.clone(),
                schema: sdl.clone(),
                last_heartbeat: reventless_spec::Timestamp::now().0,
                inbox: inbox.clone(),
            };
            registry.register(&registration).await.map_err(InvocationError::Registry)?;
        }
        let failures: Vec<Value> = self
            .runtime
            .retry_due()
            .await
            .into_iter()
            .map(|(automation, error)| {
                tracing::error!(automation, %error, "retrying due items failed; the next beat tries again");
                json!({ "automation": automation, "error": error.to_string() })
            })
            .collect();
        if failures.is_empty() {
            return Ok(json!({ "plugin": plugin, "status": "CONNECTED" }));
        }
        Ok(json!({ "plugin": plugin, "status": "DEGRADED", "failures": failures }))
    }

    /// Commands from a FIFO queue: each group in order, groups in parallel.
    /// On the first failure in a group, that message and every later message
    /// of the group are reported failed (SQS redelivers them in order);
    /// a domain rejection is a success.
    async fn sqs(&self, payload: &Value) -> Result<Value, InvocationError> {
        if let Some(tasks) = &self.tasks {
            return Ok(tasks.handle(&self.runtime, payload).await);
        }
        if !self.group.runs_commands() {
            return Err(InvocationError::WrongGroup(self.group, "SQS"));
        }
        let records = payload.get("Records").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut groups: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
        let mut order = Vec::new();
        for record in &records {
            let group = record.pointer("/attributes/MessageGroupId").and_then(Value::as_str).unwrap_or_default();
            if !groups.contains_key(group) {
                order.push(group.to_string());
            }
            groups.entry(group.to_string()).or_default().push(record);
        }
        let runs = order.iter().map(|group| self.run_group(groups.get(group).cloned().unwrap_or_default()));
        let failed: Vec<Value> =
            join_all(runs).await.into_iter().flatten().map(|id| json!({ "itemIdentifier": id })).collect();
        Ok(json!({ "batchItemFailures": failed }))
    }

    /// Runs one group's messages in order; returns the ids of the failed and skipped ones.
    async fn run_group(&self, records: Vec<&Value>) -> Vec<String> {
        let mut failed = Vec::new();
        for record in records {
            let id = record.get("messageId").and_then(Value::as_str).unwrap_or_default().to_string();
            if !failed.is_empty() {
                failed.push(id);
                continue;
            }
            let body = record.get("body").and_then(Value::as_str).unwrap_or_default();
            let outcome = match serde_json::from_str::<CommandMessage>(body) {
                Ok(message) if self.group == HandlerGroup::Extensions => {
                    match serde_json::from_value::<reventless_core::PublishedMessage>(message.body) {
                        Ok(published) => self.runtime.run_published(&published).await.map_err(|e| e.to_string()),
                        Err(error) => Err(format!("not a published event: {error}")),
                    }
                }
                Ok(message) => self.runtime.run_queued(&message).await.map_err(|e| e.to_string()),
                Err(error) => Err(format!("not a command message: {error}")),
            };
            if let Err(error) = outcome {
                tracing::warn!(message_id = id, error, "command failed; it and the rest of its group go back");
                failed.push(id);
            }
        }
        failed
    }

    /// A batch of the events table's stream: the followers of this group
    /// catch up on every log the batch touched (idempotent by checkpoint, so
    /// a redelivered batch changes nothing). A log whose followers failed is
    /// reported from its first record on.
    async fn stream(&self, payload: &Value) -> Result<Value, InvocationError> {
        let kinds = self.group.followers();
        if kinds.is_empty() {
            return Err(InvocationError::WrongGroup(self.group, "DynamoDB stream"));
        }
        let discovered = match &self.discovery {
            Some(discovery) => discovery.runtime().await,
            None => None,
        };
        let mut followed = self.runtime.followed_logs(kinds, &self.components).await;
        if let Some(runtime) = &discovered {
            followed.extend(super::discovery::published_logs(runtime, &self.components).await);
        }
        let records = payload.get("Records").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut first_record: BTreeMap<String, String> = BTreeMap::new();
        for record in &records {
            let Some(log_key) = record.pointer("/dynamodb/NewImage/log/S").and_then(Value::as_str) else {
                continue; // counters, fences, removals
            };
            let Some(log) = followed.iter().find(|log| stream_log_key(log.kind, &log.name) == log_key) else {
                continue;
            };
            let sequence = record.pointer("/dynamodb/SequenceNumber").and_then(Value::as_str).unwrap_or_default();
            first_record.entry(log.name.clone()).or_insert_with(|| sequence.to_string());
        }
        let logs: Vec<String> = first_record.keys().cloned().collect();
        let mut changes = self.pusher.as_ref().map(|_| self.runtime.row_changes());
        let mut failures = self.runtime.catch_up(&logs, kinds, &self.components).await;
        if let Some(runtime) = &discovered {
            failures.extend(super::discovery::publish(runtime, &logs, &self.components).await);
        }
        if let (Some(pusher), Some(changes)) = (&self.pusher, changes.as_mut()) {
            pusher.push_all(&self.runtime, changes).await;
        }
        let failed_logs: BTreeSet<String> = failures
            .into_iter()
            .map(|(log, error)| {
                tracing::error!(log, %error, "followers failed; the batch is retried from this log's first record");
                log
            })
            .collect();
        let failed: Vec<Value> = failed_logs
            .iter()
            .filter_map(|log| first_record.get(log))
            .map(|sequence| json!({ "itemIdentifier": sequence }))
            .collect();
        Ok(json!({ "batchItemFailures": failed }))
    }

    /// The GraphQL endpoint: `POST` a GraphQL request; `GET /health`.
    async fn http(&self, payload: &Value) -> Result<Value, InvocationError> {
        let Some(schema) = &self.schema else {
            return Err(InvocationError::WrongGroup(self.group, "HTTP"));
        };
        let method = payload.pointer("/requestContext/http/method").and_then(Value::as_str).unwrap_or("GET");
        let path = payload.get("rawPath").and_then(Value::as_str).unwrap_or("/");
        if method == "GET" && path.ends_with("/health") {
            return Ok(http_response(200, &json!({"status": "ok"})));
        }
        if super::hooks::is_hook(payload) {
            return Ok(super::hooks::answer(&self.runtime, payload).await);
        }
        if method != "POST" {
            return Ok(http_response(405, &graphql_error("POST a GraphQL request", "METHOD_NOT_ALLOWED")));
        }
        let body = match request_body(payload) {
            Ok(body) => body,
            Err(response) => return Ok(response),
        };
        let request: async_graphql::Request = match serde_json::from_str(&body) {
            Ok(request) => request,
            Err(error) => {
                let message = format!("not a GraphQL request: {error}");
                return Ok(http_response(400, &graphql_error(&message, "BAD_REQUEST")));
            }
        };
        // The request's correlation (the gateway's, else new) goes with every
        // command it runs, into the log lines and back in the answer.
        use reventless_core::runtime::{CORRELATION_HEADER, correlation};
        let supplied = payload.get("headers").and_then(|h| h.get(CORRELATION_HEADER)).and_then(Value::as_str);
        let correlation_id = correlation::request_correlation(supplied);
        let span = tracing::info_span!("request", correlation_id = correlation_id.as_str());
        let executed = reventless_graphql::execute(schema, request, caller_from_claims(payload));
        let response =
            tracing::Instrument::instrument(correlation::with_correlation(correlation_id.clone(), executed), span)
                .await;
        let body = serde_json::to_value(&response).unwrap_or_else(|e| graphql_error(&e.to_string(), "INTERNAL"));
        let mut answer = http_response(200, &body);
        answer["headers"][CORRELATION_HEADER] = json!(correlation_id);
        Ok(answer)
    }
}

/// The inbox a plugin registers when it extends other plugins' points: its
/// queue (named as the deployer names it) and those points.
fn inbox_of(manifest: &reventless_core::Manifest, stores: &crate::StoreNames) -> Option<crate::gateway::Inbox> {
    let own = format!("{}.", manifest.plugin);
    let mut points: Vec<String> = manifest
        .components
        .iter()
        .filter(|c| c.kind == reventless_core::plugin::ComponentKind::Extension)
        .flat_map(|c| c.sources.iter())
        .filter(|log| log.kind == LogKind::ExtensionPoint && !log.name.starts_with(&own))
        .map(|log| log.name.clone())
        .collect();
    points.sort();
    points.dedup();
    let queue = crate::command_topic::queue_name(&stores.queue_prefix, &reventless_core::inbox_topic(&manifest.plugin));
    (!points.is_empty()).then_some(crate::gateway::Inbox { queue, points })
}

/// How a log appears in the events table's `log` attribute.
pub fn stream_log_key(kind: LogKind, name: &str) -> String {
    match kind {
        LogKind::Plugin | LogKind::ExtensionPoint => crate::dynamo::log_key(name),
    }
}

/// The caller as the API's JWT authorizer verified it: `sub` is the user,
/// roles come from `roles` / `custom:roles` (comma list) or `cognito:groups`.
/// Nothing is taken from request headers: on AWS they are the client's words.
pub fn caller_from_claims(payload: &Value) -> Caller {
    let Some(claims) = payload.pointer("/requestContext/authorizer/jwt/claims") else {
        return Caller::default();
    };
    let user_id = claims.get("sub").and_then(Value::as_str).map(str::to_string);
    let mut roles = Vec::new();
    for key in ["roles", "custom:roles", "cognito:groups"] {
        match claims.get(key) {
            Some(Value::String(list)) => {
                let list = list.trim_matches(|c| c == '[' || c == ']');
                roles.extend(list.split([',', ' ']).map(str::trim).filter(|r| !r.is_empty()).map(str::to_string));
            }
            Some(Value::Array(items)) => roles.extend(items.iter().filter_map(Value::as_str).map(str::to_string)),
            _ => {}
        }
    }
    Caller { user_id, roles }
}

/// The body of an HTTP event, decoded; a 400 response when it cannot be.
pub(crate) fn request_body(payload: &Value) -> Result<String, Value> {
    let raw = payload.get("body").and_then(Value::as_str).unwrap_or_default();
    if !payload.get("isBase64Encoded").and_then(Value::as_bool).unwrap_or(false) {
        return Ok(raw.to_string());
    }
    match base64::engine::general_purpose::STANDARD.decode(raw) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(_) => Err(http_response(400, &graphql_error("the body is not base64", "BAD_REQUEST"))),
    }
}

pub(crate) fn graphql_error(message: &str, code: &str) -> Value {
    json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
}

pub(crate) fn http_response(status: u16, body: &Value) -> Value {
    json!({
        "statusCode": status,
        "headers": { "content-type": "application/json" },
        "body": body.to_string(),
        "isBase64Encoded": false,
    })
}
