//! The Lambda REST API the deployer (and the gateway's `Invoke`) calls:
//! functions, code, configuration, concurrency, event source mappings,
//! function URLs, permissions, tags and `Invoke`, with AWS's error shapes
//! (`x-amzn-ErrorType` + `{"Type","message"}`) so the SDK reports the codes
//! it would on AWS.
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use base64::Engine;
use serde_json::{Value, json};
use sha2::Digest;

use super::model::{Code, FunctionRecord, UrlConfig, timestamp_now};
use super::{Inner, function_name};
use crate::InvokeFailure;
use crate::mappings::MappingConfig;

mod functions;
mod invoke;
mod mappings;
mod permissions;
mod tags;
mod url_configs;

use functions::*;
use invoke::*;
use mappings::*;
use permissions::*;
use tags::*;
use url_configs::*;

type Shared = State<Arc<Inner>>;

/// An answer that ends a request early (boxed: a response is large).
type Refusal = Box<Response>;

pub(crate) fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/2015-03-31/functions", get(list_functions).post(create_function))
        .route("/2015-03-31/functions/", get(list_functions).post(create_function))
        .route("/2015-03-31/functions/{name}", get(get_function).delete(delete_function))
        .route("/2015-03-31/functions/{name}/configuration", get(get_configuration).put(update_configuration))
        .route("/2015-03-31/functions/{name}/code", put(update_code))
        .route("/2015-03-31/functions/{name}/invocations", post(invoke))
        .route("/2015-03-31/functions/{name}/policy", get(get_policy).post(add_permission))
        .route("/2015-03-31/functions/{name}/policy/{sid}", axum::routing::delete(remove_permission))
        .route("/2017-10-31/functions/{name}/concurrency", put(put_concurrency).delete(delete_concurrency))
        .route("/2019-09-30/functions/{name}/concurrency", get(get_concurrency))
        .route("/2021-10-31/functions/{name}/url", get(get_url).post(create_url).put(update_url).delete(delete_url))
        .route("/2015-03-31/event-source-mappings", post(create_mapping).get(list_mappings))
        .route("/2015-03-31/event-source-mappings/", post(create_mapping).get(list_mappings))
        .route("/2015-03-31/event-source-mappings/{uuid}", get(get_mapping).put(update_mapping).delete(delete_mapping))
        .route("/2017-03-31/tags/{arn}", get(list_tags).post(tag_resource).delete(untag_resource))
        .fallback(unknown)
        // Lambda takes zips of up to 50 MB in the request (base64 in JSON).
        .layer(axum::extract::DefaultBodyLimit::max(70 * 1024 * 1024))
        .with_state(inner)
}

/// An error as Lambda answers it.
pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let message = message.into();
    (status, [("x-amzn-errortype", code.to_string())], json!({"Type": "User", "message": message}).to_string())
        .into_response()
}

fn not_found(what: &str) -> Response {
    error(StatusCode::NOT_FOUND, "ResourceNotFoundException", format!("{what} not found"))
}

fn invalid(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "InvalidParameterValueException", message)
}

fn ok(status: StatusCode, body: Value) -> Response {
    (status, [("content-type", "application/json")], body.to_string()).into_response()
}

async fn unknown(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "UnknownOperationException",
        format!("the local Lambda service does not serve {method} {uri}"),
    )
}

fn body_json(body: &Bytes) -> Result<Value, Refusal> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| Box::new(invalid(format!("the request body is not JSON: {e}"))))
}

fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default()
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default()
}

fn with_function<T>(inner: &Inner, name: &str, change: impl FnOnce(&mut FunctionRecord) -> T) -> Option<T> {
    let mut functions = inner.functions.lock().ok()?;
    functions.get_mut(function_name(name)).map(change)
}
