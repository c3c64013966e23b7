//! `/mcp` on the dev server: the Model Context Protocol over the API
//! ([`reventless_graphql::mcp`]), the caller from the same headers as
//! `/graphql` (`x-user-id`, `x-user-roles`).
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use reventless_graphql::ApiSchema;
use reventless_graphql::mcp::{Catalog, SESSION_HEADER, SchemaGraphql, serve_http};

use crate::server::caller_from_headers;

#[derive(Clone)]
struct McpState {
    schema: ApiSchema,
    /// Read off the schema once (it does not change while the server runs).
    catalog: Arc<Result<Catalog, String>>,
}

/// The `/mcp` route over `schema`.
pub fn router(schema: ApiSchema) -> Router {
    let catalog = Arc::new(Catalog::from_sdl(&schema.sdl()).map_err(|e| e.to_string()));
    Router::new().route("/mcp", any(handle)).with_state(McpState { schema, catalog })
}

/// A browser page elsewhere may not drive the local API (DNS rebinding):
/// an `Origin`, when sent, must be a loopback one.
fn foreign_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else { return false };
    let origin = origin.to_str().unwrap_or("");
    let host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    let host = host.rsplit_once(':').filter(|(_, port)| port.parse::<u16>().is_ok()).map_or(host, |(h, _)| h);
    !matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

async fn handle(State(state): State<McpState>, method: Method, headers: HeaderMap, body: Bytes) -> Response {
    if foreign_origin(&headers) {
        return (StatusCode::FORBIDDEN, "the Origin is not a loopback one").into_response();
    }
    let catalog = match state.catalog.as_ref() {
        Ok(catalog) => catalog,
        Err(error) => return (StatusCode::INTERNAL_SERVER_ERROR, error.clone()).into_response(),
    };
    let body = String::from_utf8_lossy(&body);
    let graphql = SchemaGraphql { schema: &state.schema, caller: caller_from_headers(&headers) };
    let answer = serve_http(method.as_str(), &body, catalog, &graphql).await;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match answer.body {
        Some(body) => (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response(),
        None => status.into_response(),
    };
    if answer.status == 405 {
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    if let Some(session) = headers.get(SESSION_HEADER) {
        response.headers_mut().insert(SESSION_HEADER, session.clone());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_origins_pass() {
        let with = |origin: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
            foreign_origin(&headers)
        };
        assert!(!foreign_origin(&HeaderMap::new()));
        assert!(!with("http://127.0.0.1:4000"));
        assert!(!with("http://localhost"));
        assert!(with("https://evil.example"));
        assert!(with("http://127.0.0.1.evil.example:4000"));
    }
}
