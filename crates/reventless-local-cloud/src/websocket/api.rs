//! One WebSocket API on a loopback port: the handshake runs the `$connect`
//! integration (a non-200 answer refuses it with that status; its
//! `Sec-WebSocket-Protocol` header picks the subprotocol), each message runs
//! the route its selection expression picks (else `$default`) in arrival
//! order, a two-way route's answer body is sent back, and the close runs
//! `$disconnect`. Events have API Gateway's WebSocket shape.
use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{Connection, Outgoing, Shared};

type ApiState = (Arc<Shared>, String);

/// Serves `api` on `listener` until the task is aborted.
pub(super) fn serve(shared: Arc<Shared>, api: String, listener: std::net::TcpListener) -> JoinHandle<()> {
    tokio::spawn(async move {
        let listener = match listener.set_nonblocking(true).and_then(|()| tokio::net::TcpListener::from_std(listener)) {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(api, %error, "cannot serve a WebSocket API");
                return;
            }
        };
        let app =
            axum::Router::new().route("/{stage}", axum::routing::get(handshake)).with_state((shared, api.clone()));
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(api, %error, "a WebSocket API server stopped");
        }
    })
}

fn now_millis() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// API Gateway's event for one route of a WebSocket API.
#[allow(clippy::too_many_arguments)]
fn event(
    shared: &Shared,
    api: &str,
    stage: &str,
    route: &str,
    connection: &str,
    body: Option<&str>,
    headers: Option<&HeaderMap>,
    query: Option<&HashMap<String, String>>,
) -> Value {
    let event_type = match route {
        "$connect" => "CONNECT",
        "$disconnect" => "DISCONNECT",
        _ => "MESSAGE",
    };
    let now = now_millis();
    let mut context = json!({
        "routeKey": route, "eventType": event_type, "messageDirection": "IN",
        "connectionId": connection, "apiId": api, "stage": stage,
        "domainName": format!("{api}.execute-api.{}.amazonaws.com", shared.region),
        "requestId": uuid::Uuid::new_v4().to_string(), "requestTimeEpoch": now, "connectedAt": now,
        "identity": {"sourceIp": "127.0.0.1"},
    });
    if event_type == "MESSAGE" {
        context["messageId"] = json!(uuid::Uuid::new_v4().simple().to_string());
    }
    let mut event = json!({"requestContext": context, "isBase64Encoded": false});
    if let Some(headers) = headers {
        let map: serde_json::Map<String, Value> = headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().to_string(), json!(value.to_str().ok()?))))
            .collect();
        event["headers"] = Value::Object(map);
    }
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        event["queryStringParameters"] = json!(query);
    }
    if let Some(body) = body {
        event["body"] = json!(body);
    }
    event
}

/// Runs a route's integration: its answer, or None when the route has no
/// integration API Gateway may invoke or the function failed.
async fn run_route(shared: &Shared, api: &str, key: &str, event: Value) -> Option<(Value, bool)> {
    let (_, route) = shared.route(api, key)?;
    if !route.invokable {
        tracing::warn!(
            api,
            route = key,
            function = route.function,
            "API Gateway may not invoke the route's function (its resource policy has no statement for apigateway.amazonaws.com on this API)"
        );
        return None;
    }
    match shared.invoker.invoke(&route.function, event).await {
        Ok(answer) => Some((answer, route.two_way)),
        Err(failure) => {
            tracing::warn!(api, route = key, %failure, "a WebSocket route's function failed");
            None
        }
    }
}

async fn handshake(
    State((shared, api)): State<ApiState>,
    Path(stage): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if shared.stage_of(&api).as_deref() != Some(stage.as_str()) {
        return (StatusCode::FORBIDDEN, "no such stage").into_response();
    }
    let connection = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
    let mut protocol = None;
    if shared.route(&api, "$connect").is_some() {
        let connect = event(&shared, &api, &stage, "$connect", &connection, None, Some(&headers), Some(&query));
        let Some((answer, _)) = run_route(&shared, &api, "$connect", connect).await else {
            return (StatusCode::INTERNAL_SERVER_ERROR, "Internal server error").into_response();
        };
        let status = answer.get("statusCode").and_then(Value::as_u64).unwrap_or(200);
        if !(200..300).contains(&status) {
            let status = u16::try_from(status).ok().and_then(|s| StatusCode::from_u16(s).ok());
            return status.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR).into_response();
        }
        protocol = answer.get("headers").and_then(Value::as_object).and_then(|headers| {
            headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("sec-websocket-protocol"))
                .and_then(|(_, value)| value.as_str().map(str::to_string))
        });
    }
    let upgrade = match protocol {
        Some(protocol) => upgrade.protocols([protocol]),
        None => upgrade,
    };
    upgrade.on_upgrade(move |socket| connected(shared, api, stage, connection, socket))
}

async fn connected(shared: Arc<Shared>, api: String, stage: String, connection: String, mut socket: WebSocket) {
    let (sender, mut outgoing) = mpsc::unbounded_channel::<Outgoing>();
    let record = Connection {
        api: api.clone(),
        stage: stage.clone(),
        sender: sender.clone(),
        connected_at: crate::lambda::model::timestamp_now(),
        source_ip: "127.0.0.1".into(),
    };
    shared.connections.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(connection.clone(), record);
    // Messages run their routes one after the other (what the client sent
    // first is answered first); pushes and answers go out as they come.
    let (incoming, mut messages) = mpsc::unbounded_channel::<String>();
    let runner = {
        let (shared, api, stage, connection) = (shared.clone(), api.clone(), stage.clone(), connection.clone());
        tokio::spawn(async move {
            while let Some(body) = messages.recv().await {
                let key = shared.select(&api, &body);
                let message = event(&shared, &api, &stage, &key, &connection, Some(&body), None, None);
                if let Some((answer, true)) = run_route(&shared, &api, &key, message).await
                    && let Some(reply) = answer.get("body").and_then(Value::as_str).filter(|b| !b.is_empty())
                {
                    let _ = sender.send(Outgoing::Text(reply.to_string()));
                }
            }
        })
    };
    loop {
        tokio::select! {
            received = socket.recv() => match received {
                Some(Ok(Message::Text(text))) => {
                    let _ = incoming.send(text.to_string());
                }
                Some(Ok(Message::Binary(bytes))) => {
                    let _ = incoming.send(String::from_utf8_lossy(&bytes).into_owned());
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
            },
            sent = outgoing.recv() => match sent {
                Some(Outgoing::Text(text)) => {
                    if socket.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
                Some(Outgoing::Close) | None => {
                    let _ = socket.send(Message::Close(None)).await;
                    break;
                }
            },
        }
    }
    drop(incoming);
    let _ = runner.await;
    shared.connections.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&connection);
    let disconnect = event(&shared, &api, &stage, "$disconnect", &connection, None, None, None);
    let _ = run_route(&shared, &api, "$disconnect", disconnect).await;
}
