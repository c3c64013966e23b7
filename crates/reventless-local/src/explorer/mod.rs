//! The event explorer of the dev server: one page (`/explorer`, its files
//! compiled into the binary) over a small JSON API (`/explorer/api/...`)
//! showing plugins, events newest first, read models with their lag, and
//! automations' to-do items. Read-only except the retry of an exhausted
//! to-do item, which takes the Admin role.
//!
//! JSON rather than GraphQL: the app's GraphQL schema is generated from the
//! plugins and stays theirs; a handful of fixed endpoints is all a page
//! without a build step needs, and each is one `curl` away.
pub mod events;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use reventless_core::runtime::explore::RetryError;
use reventless_core::store::{Cursor, Filter, ListRequest, Page};
use reventless_core::{Runtime, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::server::caller_from_headers;
use events::{EventFilter, event_json, newest_first};

/// The role a retry of an exhausted to-do item takes.
pub const RETRY_ROLE: &str = "Admin";
/// Events or rows per page unless the request says otherwise, and the most it may ask.
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;
/// The statuses a to-do item goes through.
const TODO_STATUSES: [&str; 5] = ["PENDING", "PROCESSING", "FAILED", "EXHAUSTED", "COMPLETED"];

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("app.js");
const STYLE: &str = include_str!("app.css");

/// The explorer's routes over a running runtime.
pub fn router(runtime: Runtime) -> Router {
    Router::new()
        .route("/explorer", get(page))
        .route("/explorer/app.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], SCRIPT) }))
        .route("/explorer/app.css", get(|| async { ([(header::CONTENT_TYPE, "text/css")], STYLE) }))
        .route("/explorer/api/plugins", get(plugins))
        .route("/explorer/api/events", get(list_events))
        .route("/explorer/api/read-models", get(read_models))
        .route("/explorer/api/read-models/{table}/rows", get(rows))
        .route("/explorer/api/automations", get(automations))
        .route("/explorer/api/automations/{table}/items", get(items))
        .route("/explorer/api/automations/{table}/items/{id}/retry", post(retry))
        .route("/explorer/api/{*rest}", any(|Path(rest): Path<String>| async move { unknown_endpoint(rest) }))
        .with_state(runtime)
}

/// A refused or failed API call: its status and `{"error": message}`.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl ApiError {
    fn bad_request(message: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, message.into())
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self(StatusCode::NOT_FOUND, message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Invalid(message) => Self::bad_request(message),
            other => Self(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

fn unknown_endpoint(rest: String) -> ApiError {
    ApiError::not_found(format!(
        "no endpoint /explorer/api/{rest} (plugins, events, read-models, read-models/TABLE/rows, automations, \
         automations/TABLE/items, automations/TABLE/items/ID/retry)"
    ))
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn plugins(State(runtime): State<Runtime>) -> ApiResult {
    Ok(Json(json!(runtime.manifests())))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventParams {
    log: Option<String>,
    /// One type or a comma list.
    #[serde(rename = "type")]
    event_type: Option<String>,
    tag: Option<String>,
    entity: Option<String>,
    before: Option<u64>,
    limit: Option<usize>,
}

fn page_size(asked: Option<usize>) -> Result<usize, ApiError> {
    match asked.unwrap_or(DEFAULT_PAGE) {
        size @ 1..=MAX_PAGE => Ok(size),
        other => Err(ApiError::bad_request(format!("limit/first must be 1 to {MAX_PAGE}, not {other}"))),
    }
}

/// A parameter given empty counts as absent (what an empty form field sends).
fn given(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}

fn logs(runtime: &Runtime) -> Vec<String> {
    runtime.manifests().iter().flat_map(|m| m.storage.logs.iter().cloned()).collect()
}

async fn list_events(State(runtime): State<Runtime>, params: Result<Query<EventParams>, QueryRejection>) -> ApiResult {
    let Query(params) = params?;
    let limit = page_size(params.limit)?;
    let known = logs(&runtime);
    let log = match given(params.log) {
        Some(log) if known.contains(&log) => log,
        Some(log) => return Err(ApiError::not_found(format!("no log `{log}` (logs: {})", known.join(", ")))),
        None => known.first().cloned().ok_or_else(|| ApiError::not_found("the hosted plugins have no log"))?,
    };
    let tag = match given(params.tag) {
        Some(text) => Some(
            text.parse()
                .map_err(|_| ApiError::bad_request(format!("tag `{text}` is not `key:value` (e.g. `account:a1`)")))?,
        ),
        None => None,
    };
    let types = given(params.event_type)
        .map(|types| types.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    let filter = EventFilter { types, tag, entity: given(params.entity) };
    let page = newest_first(runtime.stores().events.as_ref(), &log, &filter, params.before, limit).await?;
    // Shown in today's shape (upcast from older versions); one of a version
    // newer than this build knows is shown as stored, with the error.
    let events: Vec<Value> = page
        .events
        .iter()
        .map(|event| match runtime.upcast_event(&log, event) {
            Ok(current) => event_json(&current),
            Err(error) => {
                let mut shown = event_json(event);
                shown["upcastError"] = error.to_string().into();
                shown
            }
        })
        .collect();
    Ok(Json(json!({"log": log, "logs": known, "head": page.head, "events": events, "nextBefore": page.next_before})))
}

/// Every projection's table (read models, state views, to-do lists) with its plugin and component.
fn tables(runtime: &Runtime) -> Vec<(String, reventless_core::plugin::ComponentManifest)> {
    runtime
        .plugins()
        .flat_map(|plugin| plugin.projections.iter().map(|p| (plugin.name.clone(), p.handler.manifest())))
        .collect()
}

async fn read_models(State(runtime): State<Runtime>) -> ApiResult {
    let checkpoints = runtime.checkpoints().await?;
    let models: Vec<Value> = tables(&runtime)
        .into_iter()
        .filter_map(|(plugin, component)| {
            let table = component.table?;
            let prefix = format!("{table}@");
            let mine: Vec<_> = checkpoints.iter().filter(|c| c.name.starts_with(&prefix)).collect();
            Some(json!({
                "plugin": plugin,
                "name": component.name,
                "kind": component.kind,
                "table": table,
                "lag": mine.iter().map(|c| c.lag).sum::<u64>(),
                "checkpoints": mine,
            }))
        })
        .collect();
    Ok(Json(json!(models)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RowParams {
    first: Option<usize>,
    after: Option<String>,
    /// To-do items only: one status.
    status: Option<String>,
}

impl RowParams {
    fn request(self, status_allowed: bool) -> Result<ListRequest, ApiError> {
        let first = page_size(self.first)?;
        let after = given(self.after);
        if let Some(cursor) = &after {
            Cursor::decode(cursor)?;
        }
        let mut filters = Vec::new();
        match given(self.status) {
            Some(_) if !status_allowed => return Err(ApiError::bad_request("`status` filters to-do items only")),
            Some(status) if TODO_STATUSES.contains(&status.as_str()) => filters.push(Filter::eq("status", status)),
            Some(status) => {
                let known = TODO_STATUSES.join(", ");
                return Err(ApiError::bad_request(format!("status `{status}` is none of {known}")));
            }
            None => {}
        }
        Ok(ListRequest { filters, order_by: None, first, after })
    }
}

fn page_json(page: Page) -> Value {
    let rows: Vec<Value> = page.rows.into_iter().map(|(id, row)| json!({"id": id, "row": row})).collect();
    json!({"rows": rows, "totalCount": page.total_count, "hasNextPage": page.has_next_page, "endCursor": page.end_cursor})
}

async fn rows(
    State(runtime): State<Runtime>,
    Path(table): Path<String>,
    params: Result<Query<RowParams>, QueryRejection>,
) -> ApiResult {
    let Query(params) = params?;
    if !tables(&runtime).iter().any(|(_, c)| c.table.as_deref() == Some(table.as_str())) {
        return Err(ApiError::not_found(format!("no read model keeps table `{table}`")));
    }
    let request = params.request(false)?;
    Ok(Json(page_json(runtime.stores().queries.list(&table, &request).await?)))
}

async fn automations(State(runtime): State<Runtime>) -> ApiResult {
    let queries = &runtime.stores().queries;
    let mut found = Vec::new();
    for plugin in runtime.plugins() {
        for automation in &plugin.automations {
            let table = automation.table();
            let mut counts = serde_json::Map::new();
            for status in TODO_STATUSES {
                let request =
                    ListRequest { filters: vec![Filter::eq("status", status)], first: 1, ..Default::default() };
                counts.insert(status.to_string(), queries.list(table, &request).await?.total_count.into());
            }
            let kind =
                plugin.projections.iter().find(|p| p.handler.table() == table).map(|p| p.handler.manifest().kind);
            found.push(json!({
                "plugin": plugin.name,
                "name": automation.name(),
                "kind": kind,
                "table": table,
                "maxRetries": automation.max_retries(),
                "counts": counts,
            }));
        }
    }
    Ok(Json(json!(found)))
}

fn automation_known(runtime: &Runtime, table: &str) -> Result<(), ApiError> {
    match runtime.plugins().flat_map(|plugin| &plugin.automations).any(|a| a.table() == table) {
        true => Ok(()),
        false => Err(ApiError::not_found(format!("no automation keeps its to-do items in table `{table}`"))),
    }
}

async fn items(
    State(runtime): State<Runtime>,
    Path(table): Path<String>,
    params: Result<Query<RowParams>, QueryRejection>,
) -> ApiResult {
    let Query(params) = params?;
    automation_known(&runtime, &table)?;
    let request = params.request(true)?;
    Ok(Json(page_json(runtime.stores().queries.list(&table, &request).await?)))
}

async fn retry(
    State(runtime): State<Runtime>,
    Path((table, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    if !caller_from_headers(&headers).has_any_role(&[RETRY_ROLE]) {
        let message = format!("retrying an exhausted item needs the {RETRY_ROLE} role (header x-user-roles)");
        return Err(ApiError(StatusCode::FORBIDDEN, message));
    }
    match runtime.retry_exhausted(&table, &id).await {
        Ok(row) => Ok(Json(json!({"id": id, "row": row}))),
        Err(error @ (RetryError::UnknownAutomation(_) | RetryError::UnknownItem { .. })) => {
            Err(ApiError::not_found(error.to_string()))
        }
        Err(error @ RetryError::NotExhausted { .. }) => Err(ApiError(StatusCode::CONFLICT, error.to_string())),
        Err(RetryError::Store(error)) => Err(error.into()),
    }
}
