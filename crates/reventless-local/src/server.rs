//! The local HTTP server: GraphQL over HTTP and WebSocket, GraphiQL, health.
//!
//! - `POST /graphql`: queries and mutations (JSON body `{query, variables}`).
//! - `GET /graphql/ws`: subscriptions (graphql-transport-ws, graphql-ws).
//! - `GET /`: GraphiQL.
//! - `GET /health`: `{"status": "ok", "plugins": [...]}`.
//! - `GET /explorer`: the event explorer and its API ([`crate::explorer`]).
//! - `POST /mcp`: the Model Context Protocol ([`crate::mcp`]).
//! - `/hooks/<Plugin>/<path>`: the plugins' HTTP routes ([`crate::hooks`]).
//! - `POST /tasks/<Plugin>/<Task>`: runs a file task on the uploaded file ([`crate::tasks`]).
//!
//! The caller comes from the headers `x-user-id` and `x-user-roles` (a comma
//! list): a local development convenience only, never trusted on AWS.
use std::future::Future;
use std::net::SocketAddr;

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::{Path, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
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
    graphiql_assets: Option<std::path::PathBuf>,
}

/// How the server is set up beyond its platform.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// A directory with GraphiQL's files (`scripts/fetch-graphiql DIR`),
    /// served under `/graphiql/`; without it the page loads them from a CDN.
    pub graphiql_assets: Option<std::path::PathBuf>,
}

/// The files served from the GraphiQL assets directory, with their types.
const GRAPHIQL_FILES: &[(&str, &str)] = &[
    ("graphiql.min.js", "text/javascript"),
    ("graphiql.min.css", "text/css"),
    ("react.production.min.js", "text/javascript"),
    ("react-dom.production.min.js", "text/javascript"),
];

/// GraphiQL on local files: nothing fetched from outside.
const LOCAL_GRAPHIQL_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>reventless GraphiQL</title>
<link rel="stylesheet" href="/graphiql/graphiql.min.css">
</head>
<body style="margin: 0">
<div id="graphiql" style="height: 100vh"></div>
<script src="/graphiql/react.production.min.js"></script>
<script src="/graphiql/react-dom.production.min.js"></script>
<script src="/graphiql/graphiql.min.js"></script>
<script>
  // `/?headers={"x-user-id":"ann","x-user-roles":"Admin"}` prefills the caller headers.
  const headers = new URLSearchParams(location.search).get('headers') || undefined;
  const fetcher = GraphiQL.createFetcher({ url: '/graphql' });
  ReactDOM.createRoot(document.getElementById('graphiql'))
    .render(React.createElement(GraphiQL, { fetcher, defaultHeaders: headers, defaultEditorToolsVisibility: true }));
</script>
</body>
</html>
"#;

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
pub fn router(runtime: Runtime, schema: ApiSchema, options: ServerOptions) -> Router {
    let mcp = crate::mcp::router(schema.clone());
    Router::new()
        .route("/", get(graphiql))
        .route("/graphiql/{file}", get(graphiql_file))
        .route("/health", get(health))
        .route("/graphql", post(graphql))
        .route("/graphql/ws", get(subscriptions))
        .with_state(AppState { runtime: runtime.clone(), schema, graphiql_assets: options.graphiql_assets })
        .merge(crate::explorer::router(runtime.clone()))
        .merge(mcp)
        .merge(crate::tasks::router(runtime.clone()))
        .merge(crate::hooks::router(runtime))
}

async fn graphiql(State(state): State<AppState>) -> Html<String> {
    match state.graphiql_assets {
        Some(_) => Html(LOCAL_GRAPHIQL_PAGE.to_string()),
        None => Html(GraphiQLSource::build().endpoint("/graphql").subscription_endpoint("/graphql/ws").finish()),
    }
}

async fn graphiql_file(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let known = GRAPHIQL_FILES.iter().find(|(name, _)| *name == file);
    let (Some(dir), Some((name, content_type))) = (state.graphiql_assets, known) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match tokio::fs::read(dir.join(name)).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, *content_type)], bytes).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
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
    options: ServerOptions,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(runtime, schema, options)).with_graceful_shutdown(shutdown).await
}

/// Binds `address`; only loopback unless the caller asked for another interface.
pub async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await
}
