//! The Model Context Protocol (MCP) over the API: assistants list and call
//! the plugins' commands as tools and read their read models as resources.
//!
//! Streamable HTTP, stateless: each `POST` carries JSON-RPC 2.0 messages
//! and is answered with a JSON body (no session is issued, nothing is kept
//! between requests, so a Lambda function serves it as well as the dev
//! server); `GET` (a server-sent event stream) and `DELETE` (ending a
//! session) answer 405. Everything runs as GraphQL through a
//! [`GraphqlExecutor`] bound to the caller, so roles apply exactly as for
//! `/graphql`: a refused command is the `AccessRefused` outcome (nothing is
//! appended), a refused read model a JSON-RPC error.
//!
//! The protocol layer is written here rather than taken from a crate: the
//! server transports of the Rust SDK (`rmcp`) are tower services that keep
//! sessions in memory, which a gateway answering API Gateway events on
//! Lambda cannot use, and the messages served are a handful of JSON shapes.
mod catalog;
pub mod jsonrpc;
mod resources;
mod tools;

use futures::future::BoxFuture;
use reventless_core::Caller;
use serde_json::{Map, Value, json};

pub use catalog::{Catalog, CatalogError, ReadModel, Tool};
use jsonrpc::{INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, Message, PARSE_ERROR, RpcError};

/// The protocol revisions served through `initialize`, oldest first; a
/// client asking for another gets the newest.
pub const PROTOCOL_VERSIONS: &[&str] = &["2025-03-26", "2025-06-18"];

/// The header naming a session (echoed when a client sends one; none is issued).
pub const SESSION_HEADER: &str = "mcp-session-id";

/// Runs a GraphQL request as one caller: the engine locally, the plugins
/// behind the gateway on AWS.
pub trait GraphqlExecutor: Send + Sync {
    /// The GraphQL response (`{data, errors}`) to `query` with `variables`.
    fn execute<'a>(&'a self, query: String, variables: Map<String, Value>) -> BoxFuture<'a, Value>;
}

/// The runtime's own schema as a [`GraphqlExecutor`] for `caller`.
pub struct SchemaGraphql<'a> {
    /// The API.
    pub schema: &'a crate::ApiSchema,
    /// Who asks.
    pub caller: Caller,
}

impl GraphqlExecutor for SchemaGraphql<'_> {
    fn execute<'a>(&'a self, query: String, variables: Map<String, Value>) -> BoxFuture<'a, Value> {
        Box::pin(async move {
            let variables = async_graphql::Variables::from_json(Value::Object(variables));
            let request = async_graphql::Request::new(query).variables(variables);
            let response = crate::execute(self.schema, request, self.caller.clone()).await;
            serde_json::to_value(&response).unwrap_or_else(|e| json!({"errors": [{"message": e.to_string()}]}))
        })
    }
}

/// What to answer an HTTP request to `/mcp`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpAnswer {
    /// 200 with a JSON body, 202 without (notifications only), 400 (not
    /// JSON-RPC), 405 (not a `POST`).
    pub status: u16,
    /// The JSON body, if any.
    pub body: Option<Value>,
}

/// Answers an HTTP request to `/mcp` with `method` and `body`.
pub async fn serve_http(method: &str, body: &str, catalog: &Catalog, graphql: &dyn GraphqlExecutor) -> HttpAnswer {
    if !method.eq_ignore_ascii_case("POST") {
        let error =
            RpcError::new(INVALID_REQUEST, "POST JSON-RPC messages to this endpoint (no event stream, no session)");
        return HttpAnswer { status: 405, body: Some(error.response(Value::Null)) };
    }
    let value: Value = match serde_json::from_str(body) {
        Ok(value) => value,
        Err(error) => {
            let error = RpcError::new(PARSE_ERROR, format!("the body is not JSON: {error}"));
            return HttpAnswer { status: 400, body: Some(error.response(Value::Null)) };
        }
    };
    match value {
        Value::Array(messages) if messages.is_empty() => {
            let error = RpcError::new(INVALID_REQUEST, "an empty batch");
            HttpAnswer { status: 400, body: Some(error.response(Value::Null)) }
        }
        Value::Array(messages) => {
            let mut answers = Vec::new();
            for message in messages {
                answers.extend(handle_message(message, catalog, graphql).await);
            }
            match answers.is_empty() {
                true => HttpAnswer { status: 202, body: None },
                false => HttpAnswer { status: 200, body: Some(Value::Array(answers)) },
            }
        }
        message => match handle_message(message, catalog, graphql).await {
            Some(answer) => HttpAnswer { status: 200, body: Some(answer) },
            None => HttpAnswer { status: 202, body: None },
        },
    }
}

/// The answer to one message (none to a notification or a response).
pub async fn handle_message(message: Value, catalog: &Catalog, graphql: &dyn GraphqlExecutor) -> Option<Value> {
    match jsonrpc::parse_message(message) {
        Err(rejected) => Some(rejected.1.response(rejected.0)),
        Ok(Message::Notification { .. } | Message::Response) => None,
        Ok(Message::Request { id, method, params }) => Some(match call(&method, &params, catalog, graphql).await {
            Ok(result) => jsonrpc::result(id, result),
            Err(error) => error.response(id),
        }),
    }
}

async fn call(
    method: &str,
    params: &Map<String, Value>,
    catalog: &Catalog,
    graphql: &dyn GraphqlExecutor,
) -> Result<Value, RpcError> {
    match method {
        "initialize" => initialize(params),
        "ping" => Ok(json!({})),
        "tools/list" => Ok(tools::list(catalog)),
        "tools/call" => tools::call(params, catalog, graphql).await,
        "resources/list" => Ok(resources::list(catalog)),
        "resources/templates/list" => Ok(resources::templates(catalog)),
        "resources/read" => resources::read(params, catalog, graphql).await,
        other => Err(RpcError::new(METHOD_NOT_FOUND, format!("no method `{other}`"))),
    }
}

fn initialize(params: &Map<String, Value>) -> Result<Value, RpcError> {
    let requested = jsonrpc::required_str(params, "protocolVersion")?;
    if !params.get("capabilities").is_none_or(Value::is_object) {
        return Err(RpcError::new(INVALID_PARAMS, "`capabilities` must be an object"));
    }
    let newest = PROTOCOL_VERSIONS[PROTOCOL_VERSIONS.len() - 1];
    let version = PROTOCOL_VERSIONS.iter().find(|v| **v == requested).copied().unwrap_or(newest);
    Ok(json!({
        "protocolVersion": version,
        "capabilities": {
            "tools": {"listChanged": false},
            "resources": {"subscribe": false, "listChanged": false},
        },
        "serverInfo": {"name": "reventless", "version": env!("CARGO_PKG_VERSION")},
        "instructions": "Tools send the application's commands (the outcome tells ACCEPTED or REJECTED with an \
            errorCode); resources read its read models: reventless://<Plugin>/<Plural>/{id} for one row, \
            reventless://<Plugin>/<Plural>?first=N&after=CURSOR for a page.",
    }))
}

#[cfg(test)]
mod tests;
