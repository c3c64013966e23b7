//! `/mcp` through the gateway: the Model Context Protocol
//! ([`reventless_graphql::mcp`]) over the composed schema. Tools and
//! resources are read off the schema the registry's fragments compose to;
//! a tool call or a resource read is a GraphQL request routed to the owning
//! plugin's API function like any `POST /graphql`, with the caller the
//! gateway verified (bearer JWT), so roles apply there as for GraphQL.
//! Stateless: every request stands alone, as a Lambda function needs.
use futures::future::{BoxFuture, join_all};
use reventless_core::Caller;
use reventless_graphql::mcp::{Catalog, GraphqlExecutor, SESSION_HEADER, serve_http};
use serde_json::{Map, Value, json};

use super::{Gateway, PLATFORM_PREFIX, Snapshot, Target, known, route, split};
use crate::lambda::{graphql_error, http_response, request_body};

/// GraphQL as the gateway runs it for one caller.
struct Routed<'a> {
    gateway: &'a Gateway,
    snapshot: &'a Snapshot,
    event: &'a Value,
    caller: &'a Caller,
}

impl GraphqlExecutor for Routed<'_> {
    fn execute<'a>(&'a self, query: String, variables: Map<String, Value>) -> BoxFuture<'a, Value> {
        Box::pin(async move {
            let routing = match route(&query, None, &variables) {
                Ok(routing) => routing,
                Err(error) => return graphql_error(&error.to_string(), "GRAPHQL_VALIDATION_FAILED"),
            };
            for part in &routing.parts {
                if let Target::Plugin(plugin) = &part.target
                    && plugin != PLATFORM_PREFIX
                    && !self.snapshot.plugins.contains_key(plugin)
                {
                    let message = format!("no plugin `{plugin}` is connected (connected: {})", known(self.snapshot));
                    return graphql_error(&message, "UNAVAILABLE");
                }
            }
            // A tool or a resource is one root field: one part, one plugin.
            let answers = join_all(
                routing.parts.iter().map(|part| self.gateway.answer(self.snapshot, self.event, self.caller, part)),
            )
            .await;
            split::merge_answers(&routing, answers.into_iter().flatten().collect())
        })
    }
}

impl Gateway {
    /// Answers an HTTP event to `/mcp` as `caller`, over the composed `schema`.
    pub(super) async fn mcp(&self, event: &Value, caller: &Caller, snapshot: &Snapshot, schema: &str) -> Value {
        let method = event.pointer("/requestContext/http/method").and_then(Value::as_str).unwrap_or("GET");
        let body = match method {
            "POST" => match request_body(event) {
                Ok(body) => body,
                Err(response) => return response,
            },
            _ => String::new(),
        };
        let catalog = match Catalog::from_sdl(schema) {
            Ok(catalog) => catalog,
            Err(error) => return http_response(500, &graphql_error(&error.to_string(), "SCHEMA_CONFLICT")),
        };
        // What the plugins receive is a GraphQL request, whatever `/mcp` was sent as.
        let mut graphql_event = event.clone();
        if let Some(fields) = graphql_event.as_object_mut() {
            fields.insert("rawPath".into(), json!("/graphql"));
        }
        if let Some(http) = graphql_event.pointer_mut("/requestContext/http").and_then(Value::as_object_mut) {
            http.insert("method".into(), json!("POST"));
        }
        let graphql = Routed { gateway: self, snapshot, event: &graphql_event, caller };
        let answer = serve_http(method, &body, &catalog, &graphql).await;
        let mut headers = json!({"content-type": "application/json"});
        if answer.status == 405 {
            headers["allow"] = json!("POST");
        }
        if let Some(session) = event.get("headers").and_then(|h| h.get(SESSION_HEADER)) {
            headers[SESSION_HEADER] = session.clone();
        }
        json!({
            "statusCode": answer.status,
            "headers": headers,
            "body": answer.body.map(|body| body.to_string()).unwrap_or_default(),
            "isBase64Encoded": false,
        })
    }
}
