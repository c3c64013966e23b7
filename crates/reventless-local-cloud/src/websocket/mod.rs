//! The WebSocket APIs deployed on the emulator, served: moto stores API
//! Gateway v2 APIs but serves none of them, so the local cloud reads them
//! back every `rescan` and serves each WebSocket API on a loopback port
//! (`ws://127.0.0.1:{port}/{stage}`, see [`api`]), invoking the Lambda
//! integrations of its `$connect`, `$default` and `$disconnect` routes with
//! API Gateway's event shape, if the function's resource policy lets API
//! Gateway invoke it. The Management API (`POST`/`GET`/`DELETE
//! /@connections/{id}`) is served to the functions through the IAM proxy
//! ([`management`]), which checks `execute-api:ManageConnections` on the
//! exact connection ARN.
pub mod api;
pub mod management;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_apigatewayv2::types::ProtocolType;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use management::management_need;

use crate::invoke::Invoker;

/// One route's integration, as last read.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub function: String,
    /// A route response exists: the function's answer goes back to the client.
    pub two_way: bool,
    /// The function's resource policy lets API Gateway invoke it for this route.
    pub invokable: bool,
}

/// One API as last read, and its server.
struct ServedApi {
    stage: Option<String>,
    /// `$request.body.<field>` routes by that field of a JSON message.
    selection: String,
    routes: HashMap<String, Route>,
    port: u16,
    task: JoinHandle<()>,
}

/// What a connection is sent.
#[derive(Debug)]
pub(crate) enum Outgoing {
    Text(String),
    Close,
}

/// An open connection.
pub(crate) struct Connection {
    pub api: String,
    pub stage: String,
    pub sender: mpsc::UnboundedSender<Outgoing>,
    pub connected_at: String,
    pub source_ip: String,
}

pub(crate) struct Shared {
    pub region: String,
    pub account: String,
    pub invoker: Arc<dyn Invoker>,
    apis: Mutex<HashMap<String, ServedApi>>,
    pub connections: Mutex<HashMap<String, Connection>>,
}

impl Shared {
    /// The stage, route selection and route of `key` (or `$default`) of an API.
    pub fn route(&self, api: &str, key: &str) -> Option<(String, Route)> {
        let apis = self.apis.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let served = apis.get(api)?;
        let route = served.routes.get(key)?.clone();
        Some((served.stage.clone()?, route))
    }

    /// The route key a message selects (`$request.body.type` → its `type`), when such a route exists.
    pub fn select(&self, api: &str, body: &str) -> String {
        let apis = self.apis.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(served) = apis.get(api) else { return "$default".into() };
        let field = served.selection.strip_prefix("$request.body.");
        let value = field.and_then(|field| {
            let message: Value = serde_json::from_str(body).ok()?;
            message.get(field).and_then(Value::as_str).map(str::to_string)
        });
        match value {
            Some(key) if !key.starts_with('$') && served.routes.contains_key(&key) => key,
            _ => "$default".into(),
        }
    }

    pub fn stage_of(&self, api: &str) -> Option<String> {
        self.apis.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(api).and_then(|a| a.stage.clone())
    }
}

/// The running WebSocket APIs; stops on [`WebSockets::shutdown`] or drop.
pub struct WebSockets {
    shared: Arc<Shared>,
    poller: JoinHandle<()>,
    management: management::Server,
}

impl std::fmt::Debug for WebSockets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSockets").field("management", &self.management.url()).finish()
    }
}

impl WebSockets {
    /// Serves the Management API at once and every WebSocket API found on
    /// the emulator (read every `rescan`). `lambda_url` is the local Lambda
    /// service (its functions' resource policies).
    pub async fn start(
        moto: &aws_config::SdkConfig,
        lambda_url: &str,
        invoker: Arc<dyn Invoker>,
        region: &str,
        account: &str,
        rescan: Duration,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            region: region.to_string(),
            account: account.to_string(),
            invoker,
            apis: Mutex::new(HashMap::new()),
            connections: Mutex::new(HashMap::new()),
        });
        let management = management::Server::start(shared.clone()).await?;
        let apigateway = aws_sdk_apigatewayv2::Client::new(moto);
        let lambda = aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::config::Builder::from(moto).endpoint_url(lambda_url).build(),
        );
        let poller = tokio::spawn(poll(shared.clone(), apigateway, lambda, rescan.max(Duration::from_millis(10))));
        Ok(Self { shared, poller, management })
    }

    /// Where the IAM proxy sends the functions' Management API calls.
    pub fn management_url(&self) -> String {
        self.management.url()
    }

    /// `ws://127.0.0.1:{port}/{stage}` of a served API.
    pub fn url(&self, api_id: &str) -> Option<String> {
        let apis = self.shared.apis.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let served = apis.get(api_id)?;
        Some(format!("ws://127.0.0.1:{}/{}", served.port, served.stage.as_ref()?))
    }

    /// [`WebSockets::url`], once the API is served with a stage (at most `limit`).
    pub async fn wait_url(&self, api_id: &str, limit: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(url) = self.url(api_id) {
                return Some(url);
            }
            if tokio::time::Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn shutdown(&self) {
        self.poller.abort();
        let mut apis = self.shared.apis.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (_, served) in apis.drain() {
            served.task.abort();
        }
        let mut connections = self.shared.connections.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (_, connection) in connections.drain() {
            let _ = connection.sender.send(Outgoing::Close);
        }
    }
}

impl Drop for WebSockets {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn poll(
    shared: Arc<Shared>,
    apigateway: aws_sdk_apigatewayv2::Client,
    lambda: aws_sdk_lambda::Client,
    rescan: Duration,
) {
    loop {
        if let Err(error) = scan(&shared, &apigateway, &lambda).await {
            tracing::warn!(error, "cannot read the WebSocket APIs from the emulator");
        }
        tokio::time::sleep(rescan).await;
    }
}

/// (api id, stage, route selection, routes) as the emulator has them.
type Read = (String, Option<String>, String, HashMap<String, Route>);

async fn scan(
    shared: &Arc<Shared>,
    apigateway: &aws_sdk_apigatewayv2::Client,
    lambda: &aws_sdk_lambda::Client,
) -> Result<(), String> {
    let error = |e: &dyn std::fmt::Display| e.to_string();
    let apis =
        apigateway.get_apis().send().await.map_err(|e| error(&aws_sdk_apigatewayv2::error::DisplayErrorContext(e)))?;
    let mut read: Vec<Read> = Vec::new();
    for api in apis.items().iter().filter(|api| api.protocol_type() == Some(&ProtocolType::Websocket)) {
        let Some(id) = api.api_id() else { continue };
        let display = |e| error(&aws_sdk_apigatewayv2::error::DisplayErrorContext(e));
        let stages = apigateway.get_stages().api_id(id).send().await.map_err(display)?;
        let stage = stages.items().iter().find_map(|s| s.stage_name().map(str::to_string));
        let integrations = apigateway
            .get_integrations()
            .api_id(id)
            .send()
            .await
            .map_err(|e| error(&aws_sdk_apigatewayv2::error::DisplayErrorContext(e)))?;
        let functions: HashMap<String, String> = integrations
            .items()
            .iter()
            .filter_map(|i| Some((i.integration_id()?.to_string(), function_of_uri(i.integration_uri()?)?)))
            .collect();
        let routes = apigateway
            .get_routes()
            .api_id(id)
            .send()
            .await
            .map_err(|e| error(&aws_sdk_apigatewayv2::error::DisplayErrorContext(e)))?;
        let mut served_routes = HashMap::new();
        for route in routes.items() {
            let (Some(key), Some(target)) = (route.route_key(), route.target()) else { continue };
            let Some(function) = target.strip_prefix("integrations/").and_then(|i| functions.get(i)) else { continue };
            let source = format!(
                "arn:aws:execute-api:{}:{}:{id}/{}/{key}",
                shared.region,
                shared.account,
                stage.as_deref().unwrap_or("*")
            );
            let invokable = api_gateway_may_invoke(lambda, function, &source).await;
            served_routes.insert(
                key.to_string(),
                Route {
                    function: function.clone(),
                    two_way: route.route_response_selection_expression().is_some(),
                    invokable,
                },
            );
        }
        let selection = api.route_selection_expression().unwrap_or("$request.body.action").to_string();
        read.push((id.to_string(), stage, selection, served_routes));
    }
    let mut apis = shared.apis.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    apis.retain(|id, served| {
        let kept = read.iter().any(|(known, ..)| known == id);
        if !kept {
            served.task.abort();
        }
        kept
    });
    for (id, stage, selection, routes) in read {
        match apis.get_mut(&id) {
            Some(served) => {
                served.stage = stage;
                served.selection = selection;
                served.routes = routes;
            }
            None => {
                let listener = match std::net::TcpListener::bind(("127.0.0.1", 0)) {
                    Ok(listener) => listener,
                    Err(error) => return Err(format!("cannot bind a port for WebSocket API {id}: {error}")),
                };
                let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
                let task = api::serve(shared.clone(), id.clone(), listener);
                tracing::info!(api = id, port, "serving a WebSocket API");
                apis.insert(id, ServedApi { stage, selection, routes, port, task });
            }
        }
    }
    Ok(())
}

/// The function an integration URI invokes
/// (`arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function ARN}/invocations`).
pub fn function_of_uri(uri: &str) -> Option<String> {
    let arn = uri.split("/functions/").nth(1)?.strip_suffix("/invocations")?;
    arn.split("function:").nth(1).map(|rest| rest.split(':').next().unwrap_or(rest).to_string())
}

/// Whether `function`'s resource policy allows `apigateway.amazonaws.com`
/// to invoke it from `source` (an `ArnLike` `AWS:SourceArn` condition, if any).
async fn api_gateway_may_invoke(lambda: &aws_sdk_lambda::Client, function: &str, source: &str) -> bool {
    let Ok(output) = lambda.get_policy().function_name(function).send().await else { return false };
    let policy: Value = output.policy().and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default();
    policy_allows(&policy, source)
}

/// See `api_gateway_may_invoke`.
pub fn policy_allows(policy: &Value, source: &str) -> bool {
    let statements = policy.get("Statement").and_then(Value::as_array).cloned().unwrap_or_default();
    statements.iter().any(|statement| {
        let service = statement.pointer("/Principal/Service").and_then(Value::as_str);
        let action = statement.get("Action").and_then(Value::as_str);
        let condition = statement.pointer("/Condition/ArnLike/AWS:SourceArn").and_then(Value::as_str);
        statement.get("Effect").and_then(Value::as_str) == Some("Allow")
            && service == Some("apigateway.amazonaws.com")
            && matches!(action, Some("lambda:InvokeFunction" | "lambda:*"))
            && condition.is_none_or(|pattern| glob(pattern.as_bytes(), source.as_bytes()))
    })
}

/// `*` matches any run of characters, `?` one.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&pattern[1..], text) || (!text.is_empty() && glob(pattern, &text[1..])),
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => glob(&pattern[1..], &text[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn api_gateway_needs_a_statement_naming_it_and_matching_the_source() {
        let source = "arn:aws:execute-api:us-east-1:123456789012:abc123/dev/$connect";
        let policy = |principal: &str, arn: &str| {
            json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": principal}, "Action": "lambda:InvokeFunction",
                "Condition": {"ArnLike": {"AWS:SourceArn": arn}}}]})
        };
        assert!(policy_allows(
            &policy("apigateway.amazonaws.com", "arn:aws:execute-api:us-east-1:123456789012:abc123/*"),
            source
        ));
        assert!(!policy_allows(
            &policy("apigateway.amazonaws.com", "arn:aws:execute-api:us-east-1:123456789012:other/*"),
            source
        ));
        assert!(!policy_allows(&policy("scheduler.amazonaws.com", "*"), source));
        assert!(!policy_allows(&json!({}), source));
    }

    #[test]
    fn integration_uris_name_functions() {
        let uri = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:shop-dev-platform-Gateway/invocations";
        assert_eq!(function_of_uri(uri).as_deref(), Some("shop-dev-platform-Gateway"));
    }
}
