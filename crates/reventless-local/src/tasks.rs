//! `POST /tasks/<Plugin>/<Task>`: runs a file task on an uploaded file,
//! streamed into the task runner (any size, constant memory).
//!
//! The file is the raw request body, or the first file field of a
//! `multipart/form-data` body. Query parameters: `name` (the file's name,
//! default `upload`; a multipart field's file name wins), `format` (`csv` or
//! `jsonl`; else the content type, else the name's extension), `runId` (a
//! run to resume; default a fresh id). The caller comes from `x-user-id` /
//! `x-user-roles` like `/graphql`.
//!
//! Answers the run row (`runId`, `status`, counts, rejected records):
//! 200 when completed, 422 when the run failed (its `error`; running the
//! same `runId` again resumes it), and a JSON error otherwise: 404 unknown
//! task, 403 missing role, 415 unknown or unsupported format, 400 bad
//! request, 409 run in progress. Nothing runs on an error.
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::TryStreamExt;
use reventless_core::Runtime;
use reventless_core::task::{TaskError, TaskFormat, TaskRun, TaskRunRow, TaskStatus, run_task};
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncRead;
use tokio_util::io::StreamReader;

/// The file tasks' route.
pub fn router(runtime: Runtime) -> Router {
    Router::new()
        .route("/tasks/{plugin}/{task}", post(upload))
        // Streamed: the size of a file costs no memory.
        .layer(DefaultBodyLimit::disable())
        .with_state(runtime)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Params {
    name: Option<String>,
    format: Option<String>,
    run_id: Option<String>,
}

async fn upload(
    State(runtime): State<Runtime>,
    Path((plugin, task)): Path<(String, String)>,
    Query(params): Query<Params>,
    request: Request,
) -> Response {
    let caller = crate::server::caller_from_headers(request.headers());
    let format = match params.format.as_deref() {
        None => None,
        Some("csv" | "CSV") => Some(TaskFormat::Csv),
        Some("jsonl" | "ndjson" | "JSON_LINES") => Some(TaskFormat::JsonLines),
        Some(other) => {
            let message = format!("format `{other}`: use csv or jsonl");
            return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnknownFormat", message);
        }
    };
    let content_type =
        request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let run_id = params.run_id.clone().unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let mut name = params.name.clone().unwrap_or_else(|| "upload".to_string());
    if content_type.to_ascii_lowercase().starts_with("multipart/form-data") {
        let mut multipart = match Multipart::from_request(request, &()).await {
            Ok(multipart) => multipart,
            Err(rejection) => return error(StatusCode::BAD_REQUEST, "MalformedBody", rejection.body_text()),
        };
        let field = loop {
            match multipart.next_field().await {
                Ok(Some(field)) if field.file_name().is_some() || field.name() == Some("file") => break field,
                Ok(Some(_)) => continue,
                Ok(None) => {
                    let message = "the multipart body has no file field (a part with a filename, or named `file`)";
                    return error(StatusCode::BAD_REQUEST, "MalformedBody", message.into());
                }
                Err(e) => return error(StatusCode::BAD_REQUEST, "MalformedBody", e.body_text()),
            }
        };
        if let Some(file_name) = field.file_name() {
            name = file_name.to_string();
        }
        let media_type = field.content_type().unwrap_or("").to_string();
        let run = describe(TaskRun::new(run_id, name, caller), format, &media_type);
        let reader = Box::pin(StreamReader::new(field.map_err(std::io::Error::other)));
        return execute(&runtime, &plugin, &task, run, reader).await;
    }
    let run = describe(TaskRun::new(run_id, name, caller), format, &content_type);
    let body: Body = request.into_body();
    let reader = Box::pin(StreamReader::new(body.into_data_stream().map_err(std::io::Error::other)));
    execute(&runtime, &plugin, &task, run, reader).await
}

/// The format a run reads: as asked, else as the content type says (else
/// the runner goes by the file's name).
fn describe(run: TaskRun, format: Option<TaskFormat>, media_type: &str) -> TaskRun {
    match format.or_else(|| TaskFormat::from_media_type(media_type)) {
        Some(format) => run.format(format),
        None => run,
    }
}

async fn execute(
    runtime: &Runtime,
    plugin: &str,
    task: &str,
    run: TaskRun,
    reader: impl AsyncRead + Unpin + Send,
) -> Response {
    let run_id = run.run_id.clone();
    match run_task(runtime, plugin, task, run, reader, &|_| {}).await {
        Ok(row) => report(row),
        Err(e) => {
            let status = match &e {
                TaskError::UnknownPlugin(_) | TaskError::UnknownTask { .. } => StatusCode::NOT_FOUND,
                TaskError::AccessRefused { .. } => StatusCode::FORBIDDEN,
                TaskError::UnknownFormat { .. } | TaskError::UnsupportedFormat { .. } => {
                    StatusCode::UNSUPPORTED_MEDIA_TYPE
                }
                TaskError::InvalidRunId(_) | TaskError::ResumeOffset { .. } => StatusCode::BAD_REQUEST,
                TaskError::RunInProgress(_) => StatusCode::CONFLICT,
                TaskError::CorruptRow { .. } | TaskError::Store(_) => {
                    tracing::error!(task, run = run_id, error = %e, "task run failed");
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            };
            error(status, code(&e), e.to_string())
        }
    }
}

/// The run row with its id as `runId`: 200 when completed, 422 when failed.
fn report(row: TaskRunRow) -> Response {
    let status = match row.status {
        TaskStatus::Completed => StatusCode::OK,
        TaskStatus::Running | TaskStatus::Failed => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let mut body = serde_json::to_value(&row).unwrap_or_else(|e| json!({ "error": e.to_string() }));
    if let Some(fields) = body.as_object_mut() {
        fields.insert("runId".into(), json!(row.id));
    }
    (status, axum::Json(body)).into_response()
}

fn code(error: &TaskError) -> &'static str {
    match error {
        TaskError::UnknownPlugin(_) => "UnknownPlugin",
        TaskError::UnknownTask { .. } => "UnknownTask",
        TaskError::AccessRefused { .. } => "AccessRefused",
        TaskError::UnknownFormat { .. } => "UnknownFormat",
        TaskError::UnsupportedFormat { .. } => "UnsupportedFormat",
        TaskError::InvalidRunId(_) => "InvalidRunId",
        TaskError::RunInProgress(_) => "RunInProgress",
        TaskError::ResumeOffset { .. } => "ResumeOffset",
        TaskError::CorruptRow { .. } => "CorruptRow",
        TaskError::Store(_) => "StoreError",
    }
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (status, axum::Json(json!({ "error": { "code": code, "message": message } }))).into_response()
}
