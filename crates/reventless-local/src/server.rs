//! The local HTTP server: GraphQL over HTTP and WebSocket, GraphiQL, health.
//!
//! - `POST /graphql`: queries and mutations (JSON body `{query, variables}`).
//! - `GET /graphql/ws`: subscriptions (graphql-transport-ws, graphql-ws).
//! - `GET /`: GraphiQL.
//! - `GET /health`: `{"status": "ok", "plugins": [...]}`.
//!
//! The caller comes from the headers `x-user-id` and `x-user-roles` (a comma
//! list): a local development convenience only, never trusted on AWS.
use std::future::Future;
use std::net::SocketAddr;

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use reventless_core::{Caller, Runtime};
use reventless_graphql::ApiSchema;
use tokio::net::TcpListener;

/// The address the dev server listens on unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4000";

#[derive(Clone)]
struct AppState {
    runtime: Runtime,
    schema: ApiSchema,
}

/// The caller a request claims through the local identity headers.
pub fn caller_from_headers(headers: &HeaderMap) -> Caller {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    Caller {
        user_id: text("x-user-id").map(str::to_string),
        roles: text("x-user-roles")
            .map(|roles| roles.split(',').map(str::trim).filter(|r| !r.is_empty()).map(str::to_string).collect())
            .unwrap_or_default(),
    }
}

/// The server's routes over a running platform.
pub fn router(runtime: Runtime, schema: ApiSchema) -> Router {
    Router::new()
        .route("/", get(graphiql))
        .route("/health", get(health))
        .route("/graphql", post(graphql))
        .route("/graphql/ws", get(subscriptions))
        .with_state(AppState { runtime, schema })
}

async fn graphiql() -> Html<String> {
    Html(GraphiQLSource::build().endpoint("/graphql").subscription_endpoint("/graphql/ws").finish())
}

async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    let plugins: Vec<_> =
        state.runtime.manifests().iter().map(|m| serde_json::json!({"name": m.plugin, "version": m.version})).collect();
    Json(serde_json::json!({"status": "ok", "plugins": plugins}))
}

async fn graphql(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<async_graphql::Request>,
) -> Response {
    let response = reventless_graphql::execute(&state.schema, request, caller_from_headers(&headers)).await;
    Json(response).into_response()
}

async fn subscriptions(
    State(state): State<AppState>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let mut data = async_graphql::Data::default();
    data.insert(caller_from_headers(&headers));
    let schema = state.schema.dynamic().clone();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| GraphQLWebSocket::new(socket, schema, protocol).with_data(data).serve())
}

/// Serves until `shutdown` completes; requests in flight finish first.
pub async fn serve(
    runtime: Runtime,
    schema: ApiSchema,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(runtime, schema)).with_graceful_shutdown(shutdown).await
}

/// Binds `address`; only loopback unless the caller asked for another interface.
pub async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await
}
