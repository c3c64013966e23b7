//! A plugin's HTTP routes in its `Api` function: the gateway forwards
//! `/hooks/<Plugin>/<path>` requests unchanged (raw body, headers), and the
//! route's signature is checked here, with the secret only this plugin's
//! role may read (see [`reventless_core::hooks`]).
use std::time::SystemTime;

use base64::Engine;
use reventless_core::Runtime;
use reventless_core::hooks::{HookRequest, serve, split_hook_path};
use serde_json::{Value, json};

use super::events::http_response;

/// Whether an HTTP event is for a route (`/hooks/...`).
pub(crate) fn is_hook(payload: &Value) -> bool {
    raw_path(payload).starts_with("/hooks/")
}

fn raw_path(payload: &Value) -> &str {
    payload.get("rawPath").and_then(Value::as_str).unwrap_or("/")
}

fn error(status: u16, code: &str, message: &str) -> Value {
    http_response(status, &json!({ "error": { "code": code, "message": message } }))
}

/// Answers one HTTP event (payload 2.0) for a route of the hosted plugin.
pub(crate) async fn answer(runtime: &Runtime, payload: &Value) -> Value {
    let Some((plugin, path)) = split_hook_path(raw_path(payload)) else {
        return error(404, "NOT_FOUND", "routes are served at /hooks/<Plugin>/<path>");
    };
    let raw = payload.get("body").and_then(Value::as_str).unwrap_or_default();
    // The signature covers the bytes as sent: decoded, never re-encoded.
    let body = if payload.get("isBase64Encoded").and_then(Value::as_bool).unwrap_or(false) {
        match base64::engine::general_purpose::STANDARD.decode(raw) {
            Ok(bytes) => bytes,
            Err(_) => return error(400, "MALFORMED_BODY", "the body is not base64"),
        }
    } else {
        raw.as_bytes().to_vec()
    };
    let headers = payload
        .get("headers")
        .and_then(Value::as_object)
        .map(|headers| {
            headers.iter().filter_map(|(k, v)| Some((k.to_ascii_lowercase(), v.as_str()?.to_string()))).collect()
        })
        .unwrap_or_default();
    let method = payload.pointer("/requestContext/http/method").and_then(Value::as_str).unwrap_or("GET");
    let request = HookRequest { method: method.to_string(), path: path.to_string(), headers, body };
    let answer = serve(runtime, plugin, &request, SystemTime::now()).await;
    http_response(answer.status, &answer.body)
}
