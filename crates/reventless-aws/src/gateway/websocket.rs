//! GraphQL subscriptions over API Gateway's WebSocket API: the gateway
//! function answers the API's `$connect`, `$default` and `$disconnect`
//! routes and speaks graphql-transport-ws; the connections and their
//! subscriptions live in the connections table ([`super::connections`]); the
//! read-model functions push row changes ([`super::push`]).
//!
//! - `$connect`: a token may come as `?token=` (browsers cannot set headers on
//!   a WebSocket); one that does not verify refuses the connection (401).
//! - `connection_init`: `payload.Authorization` (`Bearer …`) may name the
//!   caller instead; answered with `connection_ack`.
//! - `subscribe`: one root field of the composed schema's `Subscription`;
//!   anything else is answered with an `error` message and nothing is stored.
//!   The subscription is checked by the plugin's Api once, as the query of
//!   the row it follows (same selection, same caller), so an unknown
//!   sub-field or a refused role is an `error` too.
//! - `complete` removes it; `ping` is answered with `pong`; `$disconnect`
//!   removes the connection's rows.
//!
//! The gateway answers through the route's response (two-way routes), so it
//! needs no `execute-api:ManageConnections` of its own.
use async_graphql::parser::types::{DocumentOperations, OperationType, Selection, TypeKind};
use async_graphql::parser::{Pos, parse_query, parse_schema};
use async_graphql_value::Value as GqlValue;
use reventless_core::Caller;
use serde_json::{Map, Value, json};

use super::auth::{self, AuthError};
use super::connections::{Connection, Subscription};
use super::{Gateway, Snapshot};

/// The subprotocol spoken (the one graphql-ws clients ask for).
pub const SUBPROTOCOL: &str = "graphql-transport-ws";

/// A WebSocket route's answer: its status, and a message for the client.
fn answer(status: u16, message: Option<Value>) -> Value {
    let mut response = json!({ "statusCode": status });
    if let Some(message) = message {
        response["body"] = Value::String(message.to_string());
    }
    response
}

fn error_message(id: &str, message: &str, code: &str) -> Value {
    json!({"id": id, "type": "error", "payload": [{"message": message, "extensions": {"code": code}}]})
}

/// Why a subscription is refused (the `error` message's text and code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
    pub code: &'static str,
}

fn refusal(message: impl Into<String>, code: &'static str) -> Refusal {
    Refusal { message: message.into(), code }
}

/// A subscription document read: which field, which row, and the query that
/// answers it with the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionQuery {
    pub plugin: String,
    pub field: String,
    pub row: String,
    pub query: String,
}

/// The byte offset of a parser position (1-based line and column, columns in characters).
fn offset(text: &str, pos: Pos) -> Option<usize> {
    let mut line_start = 0;
    for _ in 1..pos.line {
        line_start += text[line_start..].find('\n')? + 1;
    }
    let line = &text[line_start..];
    let column = line.char_indices().nth(pos.column.checked_sub(1)?).map(|(i, _)| i).unwrap_or(line.len());
    Some(line_start + column)
}

/// Reads a subscription (`subscription { Catalog_onProductChanged(id: "p1") { … } }`)
/// and rewrites it as the query of that row (`query { Catalog_onProductChanged:
/// Catalog_Product(id: "p1") { … } }`): executed with the same variables,
/// it answers exactly what the subscription's `next` carries.
pub fn read_subscription(
    query: &str,
    operation_name: Option<&str>,
    variables: &Map<String, Value>,
) -> Result<SubscriptionQuery, Refusal> {
    let document = parse_query(query).map_err(|e| refusal(e.to_string(), "GRAPHQL_PARSE_FAILED"))?;
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), _) => operation,
        (DocumentOperations::Multiple(operations), Some(name)) => operations
            .iter()
            .find(|(known, _)| known.as_str() == name)
            .map(|(_, operation)| operation)
            .ok_or_else(|| refusal(format!("no operation `{name}`"), "GRAPHQL_VALIDATION_FAILED"))?,
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next().ok_or_else(|| refusal("no operation", "GRAPHQL_VALIDATION_FAILED"))?
        }
        (DocumentOperations::Multiple(_), None) => {
            return Err(refusal("several operations: name one (`operationName`)", "GRAPHQL_VALIDATION_FAILED"));
        }
    };
    if operation.node.ty != OperationType::Subscription {
        return Err(refusal("only subscriptions are served over the WebSocket", "GRAPHQL_VALIDATION_FAILED"));
    }
    let items = &operation.node.selection_set.node.items;
    let [item] = items.as_slice() else {
        return Err(refusal("a subscription selects exactly one root field", "GRAPHQL_VALIDATION_FAILED"));
    };
    let Selection::Field(field) = &item.node else {
        return Err(refusal("a subscription selects exactly one root field", "GRAPHQL_VALIDATION_FAILED"));
    };
    let name = field.node.name.node.as_str();
    let unknown = || refusal(format!("unknown subscription field `{name}`"), "GRAPHQL_VALIDATION_FAILED");
    let (plugin, rest) = name.split_once('_').ok_or_else(unknown)?;
    let singular = rest.strip_prefix("on").and_then(|r| r.strip_suffix("Changed")).filter(|s| !s.is_empty());
    let singular = singular.ok_or_else(unknown)?;
    let id = field.node.arguments.iter().find(|(argument, _)| argument.node.as_str() == "id");
    let row = match id.map(|(_, value)| &value.node) {
        Some(GqlValue::String(id)) => id.clone(),
        Some(GqlValue::Variable(variable)) => match variables.get(variable.as_str()) {
            Some(Value::String(id)) => id.clone(),
            Some(Value::Number(id)) => id.to_string(),
            _ => return Err(refusal(format!("variable `${variable}` must be an ID"), "BAD_USER_INPUT")),
        },
        Some(GqlValue::Number(id)) => id.to_string(),
        _ => return Err(refusal(format!("`{name}` needs its `id: ID!` argument"), "BAD_USER_INPUT")),
    };
    // Rewritten from the end, so earlier offsets stay valid.
    let keyword = offset(query, operation.pos).filter(|at| query[*at..].starts_with("subscription"));
    let keyword = keyword.ok_or_else(|| refusal("cannot read the operation", "GRAPHQL_PARSE_FAILED"))?;
    let at = offset(query, field.node.name.pos).filter(|at| query[*at..].starts_with(name));
    let at = at.ok_or_else(|| refusal("cannot read the field", "GRAPHQL_PARSE_FAILED"))?;
    let target = format!("{plugin}_{singular}");
    let replacement = if field.node.alias.is_some() { target } else { format!("{name}: {target}") };
    let mut rewritten = query.to_string();
    rewritten.replace_range(at..at + name.len(), &replacement);
    rewritten.replace_range(keyword..keyword + "subscription".len(), "query");
    Ok(SubscriptionQuery { plugin: plugin.to_string(), field: name.to_string(), row, query: rewritten })
}

/// Whether the composed schema's `Subscription` type has `field`.
pub fn has_subscription_field(schema: &str, field: &str) -> bool {
    let Ok(document) = parse_schema(schema) else { return false };
    document.definitions.iter().any(|definition| match definition {
        async_graphql::parser::types::TypeSystemDefinition::Type(ty) if ty.node.name.node == "Subscription" => {
            matches!(&ty.node.kind, TypeKind::Object(object) if object.fields.iter().any(|f| f.node.name.node == field))
        }
        _ => false,
    })
}

/// The bearer token of `connection_init`'s payload (`Authorization` in any case).
fn init_token(payload: Option<&Value>) -> Result<Option<String>, AuthError> {
    let Some(payload) = payload.and_then(Value::as_object) else { return Ok(None) };
    let value = payload.iter().find(|(key, _)| key.eq_ignore_ascii_case("authorization")).map(|(_, v)| v);
    let Some(value) = value else { return Ok(None) };
    let headers = json!({ "authorization": value.as_str().unwrap_or_default() });
    auth::bearer_token(Some(&headers)).map(|token| token.map(str::to_string))
}

impl Gateway {
    /// Answers one WebSocket route event of API Gateway.
    pub async fn websocket(&self, event: &Value) -> Value {
        let context = event.get("requestContext").cloned().unwrap_or_default();
        let text = |key: &str| context.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
        let connection = text("connectionId");
        let Some(connections) = &self.connections else {
            tracing::error!("a WebSocket event, but the gateway has no connections table configured");
            return answer(500, None);
        };
        match text("eventType").as_str() {
            "CONNECT" => {
                let token = event.pointer("/queryStringParameters/token").and_then(Value::as_str);
                let caller = match token {
                    None => Caller::default(),
                    Some(token) => match self.auth.verify(token).await {
                        Ok(caller) => caller,
                        Err(error) => {
                            tracing::info!(%error, "WebSocket connection refused");
                            return answer(if matches!(error, AuthError::Unavailable(_)) { 503 } else { 401 }, None);
                        }
                    },
                };
                let record = Connection { caller, acknowledged: false };
                if let Err(error) = connections.put_connection(&connection, &record).await {
                    tracing::error!(%error, "cannot record a WebSocket connection");
                    return answer(500, None);
                }
                let mut response = answer(200, None);
                let asked = event.get("headers").and_then(Value::as_object).and_then(|headers| {
                    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-protocol")).map(|(_, v)| v)
                });
                if asked.and_then(Value::as_str).is_some_and(|list| list.split(',').any(|p| p.trim() == SUBPROTOCOL)) {
                    response["headers"] = json!({ "Sec-WebSocket-Protocol": SUBPROTOCOL });
                }
                response
            }
            "DISCONNECT" => {
                if let Err(error) = connections.remove_connection(&connection).await {
                    tracing::error!(%error, connection, "cannot remove a closed connection (its rows expire)");
                }
                answer(200, None)
            }
            _ => {
                let body = crate::lambda::request_body(event).unwrap_or_default();
                let message: Value = serde_json::from_str(&body).unwrap_or_default();
                let reply = self.message(&connection, &context, &message).await;
                answer(200, reply)
            }
        }
    }

    /// One graphql-transport-ws message; the reply, if any.
    async fn message(&self, connection: &str, context: &Value, message: &Value) -> Option<Value> {
        let connections = self.connections.as_ref()?;
        let id = message.get("id").and_then(Value::as_str).unwrap_or_default();
        match message.get("type").and_then(Value::as_str).unwrap_or_default() {
            "connection_init" => {
                let mut record = match connections.connection(connection).await {
                    Ok(record) => record.unwrap_or_default(),
                    Err(error) => {
                        tracing::error!(%error, "cannot read a connection");
                        return Some(
                            json!({"type": "connection_error", "payload": {"message": "unavailable", "code": "UNAVAILABLE"}}),
                        );
                    }
                };
                let caller = match init_token(message.get("payload")) {
                    Ok(None) => Ok(record.caller.clone()),
                    Ok(Some(token)) => self.auth.verify(&token).await,
                    Err(error) => Err(error),
                };
                match caller {
                    Ok(caller) => {
                        record = Connection { caller, acknowledged: true };
                        if let Err(error) = connections.put_connection(connection, &record).await {
                            tracing::error!(%error, "cannot record a connection's caller");
                            return None;
                        }
                        Some(json!({"type": "connection_ack"}))
                    }
                    // graphql-transport-ws closes with 4403 here; a route's
                    // answer cannot close, so the connection stays
                    // unacknowledged and every subscribe on it is refused.
                    Err(error) => Some(json!({"type": "connection_error", "payload": {
                        "message": error.to_string(), "code": "UNAUTHENTICATED"}})),
                }
            }
            "ping" => Some(json!({"type": "pong"})),
            "pong" => None,
            "complete" => {
                if let Err(error) = connections.unsubscribe(connection, id).await {
                    tracing::error!(%error, "cannot remove a completed subscription");
                }
                None
            }
            "subscribe" => self.subscribe(connection, context, id, message.get("payload")).await,
            other => {
                tracing::info!(kind = other, "an unknown graphql-transport-ws message; ignored");
                None
            }
        }
    }

    async fn subscribe(&self, connection: &str, context: &Value, id: &str, payload: Option<&Value>) -> Option<Value> {
        match self.try_subscribe(connection, context, id, payload).await {
            Ok(()) => None,
            Err(refused) => Some(error_message(id, &refused.message, refused.code)),
        }
    }

    async fn try_subscribe(
        &self,
        connection: &str,
        context: &Value,
        id: &str,
        payload: Option<&Value>,
    ) -> Result<(), Refusal> {
        let connections = self.connections.as_ref().ok_or_else(|| refusal("no connections table", "INTERNAL"))?;
        if id.is_empty() {
            return Err(refusal("a subscribe message needs an id", "BAD_REQUEST"));
        }
        let record = connections.connection(connection).await.map_err(|e| refusal(e.to_string(), "UNAVAILABLE"))?;
        let Some(record) = record.filter(|r| r.acknowledged) else {
            return Err(refusal("send connection_init first (and have it acknowledged)", "UNAUTHENTICATED"));
        };
        let payload = payload.cloned().unwrap_or_default();
        let query = payload.get("query").and_then(Value::as_str).unwrap_or_default();
        let operation_name = payload.get("operationName").and_then(Value::as_str).map(str::to_string);
        let variables = payload.get("variables").and_then(Value::as_object).cloned().unwrap_or_default();
        let read = read_subscription(query, operation_name.as_deref(), &variables)?;
        let snapshot: std::sync::Arc<Snapshot> =
            self.snapshot().await.map_err(|_| refusal("the plugin registry cannot be read", "UNAVAILABLE"))?;
        let schema = snapshot.schema.as_ref().map_err(|e| refusal(e.to_string(), "SCHEMA_CONFLICT"))?;
        let registration = snapshot.plugins.get(&read.plugin);
        let (Some(registration), true) = (registration, has_subscription_field(schema, &read.field)) else {
            return Err(refusal(format!("unknown subscription field `{}`", read.field), "GRAPHQL_VALIDATION_FAILED"));
        };
        // The plugin checks the rest (sub-fields, variables, roles) as it
        // would check the row's query.
        let body = json!({"query": read.query, "operationName": operation_name, "variables": variables});
        let http = json!({"rawPath": "/graphql", "headers": {"content-type": "application/json"},
            "requestContext": {"http": {"method": "POST", "path": "/graphql"}}});
        let event = auth::forwarded_event(&http, &record.caller, body.to_string());
        let answer = self.apis.call(&registration.api_function, event).await.map_err(|error| {
            tracing::error!(plugin = read.plugin, error, "plugin API call failed");
            refusal(format!("plugin `{}` did not answer", read.plugin), "PLUGIN_UNAVAILABLE")
        })?;
        let answer = super::response_body(&answer).map_err(|e| refusal(e, "PLUGIN_UNAVAILABLE"))?;
        if let Some(error) = answer.get("errors").and_then(Value::as_array).and_then(|errors| errors.first()) {
            let message = error.get("message").and_then(Value::as_str).unwrap_or("refused").to_string();
            let code = match error.pointer("/extensions/code").and_then(Value::as_str) {
                Some("FORBIDDEN") => "FORBIDDEN",
                Some("BAD_USER_INPUT") => "BAD_USER_INPUT",
                _ => "GRAPHQL_VALIDATION_FAILED",
            };
            return Err(Refusal { message, code });
        }
        let text = |key: &str| context.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
        let subscription = Subscription {
            connection: connection.to_string(),
            id: id.to_string(),
            api: text("apiId"),
            stage: text("stage"),
            plugin: read.plugin,
            field: read.field,
            row: read.row,
            query: read.query,
            variables,
            operation_name,
            caller: record.caller,
        };
        connections.subscribe(&subscription).await.map_err(|e| refusal(e.to_string(), "UNAVAILABLE"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests report failures by panicking
    use super::*;

    #[test]
    fn a_subscription_becomes_the_query_of_its_row() {
        let read = read_subscription(
            "subscription {\n  Catalog_onProductChanged(id: \"p1\") { id priceCents }\n}",
            None,
            &Map::new(),
        )
        .unwrap();
        assert_eq!(
            (read.plugin.as_str(), read.field.as_str(), read.row.as_str()),
            ("Catalog", "Catalog_onProductChanged", "p1")
        );
        assert_eq!(read.query, "query {\n  Catalog_onProductChanged: Catalog_Product(id: \"p1\") { id priceCents }\n}");

        let variables: Map<String, Value> = serde_json::from_value(json!({"p": "p2"})).unwrap();
        let read = read_subscription(
            "subscription Watch($p: ID!) { mine: Catalog_onProductChanged(id: $p) { name } }",
            Some("Watch"),
            &variables,
        )
        .unwrap();
        assert_eq!(read.row, "p2");
        assert_eq!(read.query, "query Watch($p: ID!) { mine: Catalog_Product(id: $p) { name } }");
    }

    #[test]
    fn what_is_no_single_row_subscription_is_refused() {
        let none = Map::new();
        let query = read_subscription("{ Catalog_Product(id: \"p1\") { id } }", None, &none).unwrap_err();
        assert_eq!(query.code, "GRAPHQL_VALIDATION_FAILED");
        let two = read_subscription(
            "subscription { Catalog_onProductChanged(id: \"a\") { id } Catalog_onCategoryChanged(id: \"b\") { id } }",
            None,
            &none,
        )
        .unwrap_err();
        assert!(two.message.contains("exactly one"), "{two:?}");
        let no_id = read_subscription("subscription { Catalog_onProductChanged { id } }", None, &none).unwrap_err();
        assert_eq!(no_id.code, "BAD_USER_INPUT");
        let odd = read_subscription("subscription { Catalog_products(id: \"a\") { id } }", None, &none).unwrap_err();
        assert!(odd.message.contains("unknown subscription field"), "{odd:?}");
    }

    #[test]
    fn subscription_fields_are_looked_up_in_the_composed_schema() {
        let schema = "type Query { a: Int }\ntype Subscription { Catalog_onProductChanged(id: ID!): Int }";
        assert!(has_subscription_field(schema, "Catalog_onProductChanged"));
        assert!(!has_subscription_field(schema, "Catalog_onNothingChanged"));
    }
}
