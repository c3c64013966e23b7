//! `/hooks/<Plugin>/<path>`: the plugins' HTTP routes (webhooks) on the dev
//! server, any method, the raw body as sent (see [`reventless_core::hooks`]).
//! A signed route reads its secret from the platform's secrets
//! (`REVENTLESS_SECRET_<NAME>` or `.reventless/secrets.toml`).
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use reventless_core::Runtime;
use reventless_core::hooks::{HookRequest, serve};

/// The routes of every hosted plugin, under `/hooks/`.
pub fn router(runtime: Runtime) -> Router {
    Router::new().route("/hooks/{plugin}/{*path}", any(hook)).with_state(runtime)
}

async fn hook(
    State(runtime): State<Runtime>,
    Path((plugin, path)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = HookRequest {
        method: method.as_str().to_string(),
        path: format!("/{path}"),
        // `HeaderMap` names are lower case already; a value that is not
        // text cannot be a signature or a timestamp.
        headers: headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().to_string(), value.to_str().ok()?.to_string())))
            .collect(),
        body: body.to_vec(),
    };
    let answer = serve(&runtime, &plugin, &request, std::time::SystemTime::now()).await;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(answer.body)).into_response()
}
