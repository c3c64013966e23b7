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

type Shared = State<Arc<Inner>>;

/// An answer that ends a request early (boxed: a response is large).
type Refusal = Box<Response>;

/// Lambda's request payload ceiling for synchronous invocations.
const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

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

/// Unpacks a base64 zip into `<work_dir>/code/<sha>/`; refuses a zip without an executable `bootstrap`.
fn store_code(inner: &Inner, zip_base64: &str) -> Result<Code, Refusal> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(zip_base64)
        .map_err(|_| Box::new(invalid("ZipFile is not base64")))?;
    let digest = sha2::Sha256::digest(&bytes);
    let sha256 = base64::engine::general_purpose::STANDARD.encode(digest);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let root = inner.options.work_dir.join("code").join(&hex);
    if !root.join("bootstrap").exists() {
        let unpacked = unpack(&bytes, &root);
        if let Err(message) = unpacked {
            let _ = std::fs::remove_dir_all(&root);
            return Err(Box::new(invalid(format!("Could not unzip uploaded file: {message}"))));
        }
        if !root.join("bootstrap").is_file() {
            let _ = std::fs::remove_dir_all(&root);
            return Err(Box::new(invalid("the zip has no `bootstrap` at its root (runtime provided.al2023)")));
        }
    }
    Ok(Code { sha256, size: bytes.len() as u64, root })
}

fn unpack(bytes: &[u8], root: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let staging = root.with_extension("partial");
    let _ = std::fs::remove_dir_all(&staging);
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|e| e.to_string())?;
        let Some(relative) = entry.enclosed_name() else { return Err(format!("unsafe path {}", entry.name())) };
        let path = staging.join(&relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&path).map_err(|e| e.to_string())?;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        let mut content = Vec::new();
        entry.read_to_end(&mut content).map_err(|e| e.to_string())?;
        std::fs::write(&path, content).map_err(|e| e.to_string())?;
        let mode = entry.unix_mode().unwrap_or(0o644) | if relative.as_os_str() == "bootstrap" { 0o755 } else { 0 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o7777)).map_err(|e| e.to_string())?;
    }
    std::fs::create_dir_all(&staging).map_err(|e| e.to_string())?;
    std::fs::rename(&staging, root).map_err(|e| e.to_string())
}

fn with_function<T>(inner: &Inner, name: &str, change: impl FnOnce(&mut FunctionRecord) -> T) -> Option<T> {
    let mut functions = inner.functions.lock().ok()?;
    functions.get_mut(function_name(name)).map(change)
}

// ---------------------------------------------------------------- functions

async fn create_function(State(inner): Shared, body: Bytes) -> Response {
    let request = match body_json(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let Some(name) = request["FunctionName"].as_str().map(str::to_string) else {
        return invalid("FunctionName is required");
    };
    if inner.function(&name).is_some() {
        return error(StatusCode::CONFLICT, "ResourceConflictException", format!("Function already exist: {name}"));
    }
    let Some(role) = request["Role"].as_str().filter(|r| r.starts_with("arn:aws:iam::")) else {
        return invalid("Role must be an IAM role ARN");
    };
    let Some(zip) = request.pointer("/Code/ZipFile").and_then(Value::as_str) else {
        return invalid("Code.ZipFile is required (the local Lambda service keeps no S3 code)");
    };
    let code = match store_code(&inner, zip) {
        Ok(code) => code,
        Err(response) => return *response,
    };
    let record = FunctionRecord {
        arn: format!("arn:aws:lambda:{}:{}:function:{name}", inner.options.region, inner.options.account),
        name: name.clone(),
        role: role.to_string(),
        runtime: request["Runtime"].as_str().unwrap_or("provided.al2023").to_string(),
        handler: request["Handler"].as_str().unwrap_or("bootstrap").to_string(),
        memory_size: request["MemorySize"].as_i64().unwrap_or(128),
        timeout_seconds: request["Timeout"].as_i64().unwrap_or(3),
        ephemeral_storage_mb: request.pointer("/EphemeralStorage/Size").and_then(Value::as_i64).unwrap_or(512),
        environment: string_map(&request.pointer("/Environment/Variables").cloned().unwrap_or(Value::Null)),
        architectures: Some(strings(&request["Architectures"]))
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| vec!["x86_64".into()]),
        layers: strings(&request["Layers"]),
        tags: string_map(&request["Tags"]),
        reserved_concurrency: None,
        code,
        revision: inner.revision(),
        last_modified: timestamp_now(),
        permissions: BTreeMap::new(),
        url: None,
    };
    if let Err(message) = validate(&record) {
        return invalid(message);
    }
    let configuration = record.configuration();
    if let Ok(mut functions) = inner.functions.lock() {
        functions.insert(name, record);
    }
    ok(StatusCode::CREATED, configuration)
}

/// The limits Lambda enforces on a configuration.
fn validate(record: &FunctionRecord) -> Result<(), String> {
    if !(128..=10_240).contains(&record.memory_size) {
        return Err(format!("MemorySize {} is outside 128..=10240", record.memory_size));
    }
    if !(1..=900).contains(&record.timeout_seconds) {
        return Err(format!("Timeout {} is outside 1..=900", record.timeout_seconds));
    }
    if !(512..=10_240).contains(&record.ephemeral_storage_mb) {
        return Err(format!("EphemeralStorage {} is outside 512..=10240", record.ephemeral_storage_mb));
    }
    let size: usize = record.environment.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > 4096 {
        return Err(format!(
            "Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit ({size} bytes)"
        ));
    }
    for reserved in
        ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_LAMBDA_RUNTIME_API"]
    {
        if record.environment.contains_key(reserved) {
            return Err(format!("Reserved keys used in this request: {reserved}"));
        }
    }
    Ok(())
}

async fn list_functions(State(inner): Shared) -> Response {
    let functions: Vec<Value> =
        inner.functions.lock().map(|f| f.values().map(FunctionRecord::configuration).collect()).unwrap_or_default();
    ok(StatusCode::OK, json!({"Functions": functions}))
}

async fn get_function(State(inner): Shared, Path(name): Path<String>) -> Response {
    match inner.function(function_name(&name)) {
        Some(function) => ok(StatusCode::OK, function.description()),
        None => not_found(&format!("Function {name}")),
    }
}

async fn get_configuration(State(inner): Shared, Path(name): Path<String>) -> Response {
    match inner.function(function_name(&name)) {
        Some(function) => ok(StatusCode::OK, function.configuration()),
        None => not_found(&format!("Function {name}")),
    }
}

async fn delete_function(State(inner): Shared, Path(name): Path<String>) -> Response {
    let name = function_name(&name).to_string();
    let removed = inner.functions.lock().ok().and_then(|mut f| f.remove(&name));
    let Some(removed) = removed else { return not_found(&format!("Function {name}")) };
    if let Some((_, server)) = inner.url_servers.lock().ok().and_then(|mut s| s.remove(&name)) {
        server.abort();
    }
    if let Ok(mut pools) = inner.pools.lock() {
        pools.remove(&name);
    }
    // Lambda keeps a deleted function's mappings (they fail); we stop them.
    let orphans: Vec<String> = inner
        .mapping_configs
        .lock()
        .map(|m| m.values().filter(|c| c.function_arn == removed.arn).map(|c| c.uuid.clone()).collect())
        .unwrap_or_default();
    for uuid in orphans {
        if let Some(mappings) = inner.mappings.get() {
            mappings.remove(&uuid);
        }
        if let Ok(mut configs) = inner.mapping_configs.lock() {
            configs.remove(&uuid);
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn update_code(State(inner): Shared, Path(name): Path<String>, body: Bytes) -> Response {
    let request = match body_json(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let Some(zip) = request["ZipFile"].as_str() else { return invalid("ZipFile is required") };
    let code = match store_code(&inner, zip) {
        Ok(code) => code,
        Err(response) => return *response,
    };
    let revision = inner.revision();
    let architectures = strings(&request["Architectures"]);
    match with_function(&inner, &name, |f| {
        f.code = code;
        f.revision = revision;
        f.last_modified = timestamp_now();
        if !architectures.is_empty() {
            f.architectures = architectures;
        }
        f.configuration()
    }) {
        Some(configuration) => ok(StatusCode::OK, configuration),
        None => not_found(&format!("Function {name}")),
    }
}

async fn update_configuration(State(inner): Shared, Path(name): Path<String>, body: Bytes) -> Response {
    let request = match body_json(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let Some(mut function) = inner.function(function_name(&name)) else {
        return not_found(&format!("Function {name}"));
    };
    if let Some(role) = request["Role"].as_str() {
        function.role = role.to_string();
    }
    if let Some(memory) = request["MemorySize"].as_i64() {
        function.memory_size = memory;
    }
    if let Some(timeout) = request["Timeout"].as_i64() {
        function.timeout_seconds = timeout;
    }
    if let Some(size) = request.pointer("/EphemeralStorage/Size").and_then(Value::as_i64) {
        function.ephemeral_storage_mb = size;
    }
    if let Some(variables) = request.pointer("/Environment/Variables") {
        function.environment = string_map(variables);
    }
    if request.get("Layers").is_some() {
        function.layers = strings(&request["Layers"]);
    }
    if let Some(handler) = request["Handler"].as_str() {
        function.handler = handler.to_string();
    }
    if let Err(message) = validate(&function) {
        return invalid(message);
    }
    function.revision = inner.revision();
    function.last_modified = timestamp_now();
    let configuration = function.configuration();
    if let Ok(mut functions) = inner.functions.lock() {
        functions.insert(function.name.clone(), function);
    }
    ok(StatusCode::OK, configuration)
}

// ---------------------------------------------------------------- concurrency

async fn put_concurrency(State(inner): Shared, Path(name): Path<String>, body: Bytes) -> Response {
    let request = match body_json(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let Some(reserved) = request["ReservedConcurrentExecutions"].as_i64().filter(|r| *r >= 0) else {
        return invalid("ReservedConcurrentExecutions must be a number ≥ 0");
    };
    match with_function(&inner, &name, |f| f.reserved_concurrency = Some(reserved)) {
        Some(()) => ok(StatusCode::OK, json!({"ReservedConcurrentExecutions": reserved})),
        None => not_found(&format!("Function {name}")),
    }
}

async fn delete_concurrency(State(inner): Shared, Path(name): Path<String>) -> Response {
    match with_function(&inner, &name, |f| f.reserved_concurrency = None) {
        Some(()) => StatusCode::NO_CONTENT.into_response(),
        None => not_found(&format!("Function {name}")),
    }
}

async fn get_concurrency(State(inner): Shared, Path(name): Path<String>) -> Response {
    match inner.function(function_name(&name)) {
        Some(f) => ok(
            StatusCode::OK,
            f.reserved_concurrency.map(|r| json!({"ReservedConcurrentExecutions": r})).unwrap_or(json!({})),
        ),
        None => not_found(&format!("Function {name}")),
    }
}

// ---------------------------------------------------------------- invoke

async fn invoke(State(inner): Shared, Path(name): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    if body.len() > MAX_PAYLOAD {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
        );
    }
    let payload: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(payload) => payload,
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContentException",
                    "Could not parse request body into json",
                );
            }
        }
    };
    let name = function_name(&name).to_string();
    let kind = headers.get("x-amz-invocation-type").and_then(|v| v.to_str().ok()).unwrap_or("RequestResponse");
    match kind {
        "DryRun" => match inner.function(&name) {
            Some(_) => StatusCode::NO_CONTENT.into_response(),
            None => not_found(&format!("Function {name}")),
        },
        "Event" => {
            if inner.function(&name).is_none() {
                return not_found(&format!("Function {name}"));
            }
            // Asynchronous invocation: queued, retried twice on error, as Lambda does.
            tokio::spawn(async move {
                for attempt in 0..3u32 {
                    if attempt > 0 {
                        tokio::time::sleep(std::time::Duration::from_secs(u64::from(attempt))).await;
                    }
                    match inner.run(&name, payload.clone(), false).await {
                        Ok(_) | Err(InvokeFailure::NotFound(_)) => return,
                        Err(failure) => {
                            tracing::warn!(function = name, %failure, attempt, "asynchronous invocation failed")
                        }
                    }
                }
            });
            (StatusCode::ACCEPTED, "").into_response()
        }
        _ => match inner.run(&name, payload, true).await {
            Ok(answer) => (StatusCode::OK, [("x-amz-executed-version", "$LATEST")], answer.to_string()).into_response(),
            Err(InvokeFailure::NotFound(_)) => not_found(&format!("Function {name}")),
            Err(InvokeFailure::Throttled) => {
                error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException", "Rate Exceeded.")
            }
            Err(failure) => {
                let body = match failure {
                    InvokeFailure::Function { error } => error,
                    InvokeFailure::Timeout(limit) => {
                        json!({"errorMessage": format!("Task timed out after {:.2} seconds", limit.as_secs_f64())})
                    }
                    other => json!({"errorType": "Runtime.Unknown", "errorMessage": other.to_string()}),
                };
                (
                    StatusCode::OK,
                    [("x-amz-function-error", "Unhandled"), ("x-amz-executed-version", "$LATEST")],
                    body.to_string(),
                )
                    .into_response()
            }
        },
    }
}

// ---------------------------------------------------------------- permissions

async fn add_permission(State(inner): Shared, Path(name): Path<String>, body: Bytes) -> Response {
    let request = match body_json(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let (Some(sid), Some(action), Some(principal)) =
        (request["StatementId"].as_str(), request["Action"].as_str(), request["Principal"].as_str())
    else {
        return invalid("StatementId, Action and Principal are required");
    };
    let Some(function) = inner.function(function_name(&name)) else { return not_found(&format!("Function {name}")) };
    if function.permissions.contains_key(sid) {
        return error(
            StatusCode::CONFLICT,
            "ResourceConflictException",
            format!(
                "The statement id ({sid}) provided already exists. Please provide a new statement id, or remove the existing statement."
            ),
        );
    }
    let principal = if principal == "*" || principal.ends_with(".amazonaws.com") && !principal.starts_with("arn:") {
        if principal == "*" { json!("*") } else { json!({"Service": principal}) }
    } else {
        json!({"AWS": principal})
    };
    let mut statement =
        json!({"Sid": sid, "Effect": "Allow", "Principal": principal, "Action": action, "Resource": function.arn});
    let mut condition = serde_json::Map::new();
    if let Some(kind) = request["FunctionUrlAuthType"].as_str() {
        condition.insert("StringEquals".into(), json!({"lambda:FunctionUrlAuthType": kind}));
    }
    if let Some(source) = request["SourceArn"].as_str() {
        condition.insert("ArnLike".into(), json!({"AWS:SourceArn": source}));
    }
    if !condition.is_empty() {
        statement["Condition"] = Value::Object(condition);
    }
    with_function(&inner, &name, |f| f.permissions.insert(sid.to_string(), statement.clone()));
    ok(StatusCode::CREATED, json!({"Statement": statement.to_string()}))
}

async fn get_policy(State(inner): Shared, Path(name): Path<String>) -> Response {
    match inner.function(function_name(&name)).map(|f| f.policy()) {
        Some(Some(policy)) => {
            ok(StatusCode::OK, json!({"Policy": policy.to_string(), "RevisionId": uuid::Uuid::new_v4().to_string()}))
        }
        Some(None) => not_found("The resource you requested does not exist. Policy"),
        None => not_found(&format!("Function {name}")),
    }
}

async fn remove_permission(State(inner): Shared, Path((name, sid)): Path<(String, String)>) -> Response {
    match with_function(&inner, &name, |f| f.permissions.remove(&sid)) {
        Some(Some(_)) => StatusCode::NO_CONTENT.into_response(),
        Some(None) => not_found(&format!("Statement {sid}")),
        None => not_found(&format!("Function {name}")),
    }
}

// ---------------------------------------------------------------- function URLs

async fn get_url(State(inner): Shared, Path(name): Path<String>) -> Response {
    match inner.function(function_name(&name)).map(|f| f.url_config()) {
        Some(Some(config)) => ok(StatusCode::OK, config),
        _ => not_found(&format!("Function URL config for {name}")),
    }
}

fn auth_type(request: &Value) -> Result<String, Refusal> {
    match request["AuthType"].as_str() {
        Some(kind @ ("AWS_IAM" | "NONE")) => Ok(kind.to_string()),
        other => Err(Box::new(invalid(format!("AuthType must be AWS_IAM or NONE, not {other:?}")))),
    }
}

async fn create_url(State(inner): Shared, Path(name): Path<String>, body: Bytes) -> Response {
    let request = match body_json(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let auth = match auth_type(&request) {
        Ok(auth) => auth,
        Err(response) => return *response,
    };
    let name = function_name(&name).to_string();
    let Some(function) = inner.function(&name) else { return not_found(&format!("Function {name}")) };
    if function.url.is_some() {
        return error(
            StatusCode::CONFLICT,
            "ResourceConflictException",
            format!(
                "Failed to create function url config for [functionArn = {}]. Error message:  FunctionUrlConfig exists for this Lambda function",
                function.arn
            ),
        );
    }
    let address = match super::urls::serve(inner.clone(), &name).await {
        Ok(address) => address,
        Err(e) => {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "ServiceException", format!("cannot serve the URL: {e}"));
        }
    };
    let now = timestamp_now();
    let url = UrlConfig {
        auth_type: auth,
        cors: request.get("Cors").cloned(),
        url: format!("http://{address}/"),
        created: now.clone(),
        modified: now,
    };
    let config = with_function(&inner, &name, |f| {
        f.url = Some(url);
        f.url_config()
    });
    ok(StatusCode::CREATED, config.flatten().unwrap_or(Value::Null))
}

async fn update_url(State(inner): Shared, Path(name): Path<String>, body: Bytes) -> Response {
    let request = match body_json(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let auth = if request.get("AuthType").is_some() {
        match auth_type(&request) {
            Ok(auth) => Some(auth),
            Err(response) => return *response,
        }
    } else {
        None
    };
    let updated = with_function(&inner, &name, |f| {
        let url = f.url.as_mut()?;
        if let Some(auth) = auth {
            url.auth_type = auth;
        }
        if let Some(cors) = request.get("Cors") {
            url.cors = Some(cors.clone());
        }
        url.modified = timestamp_now();
        f.url_config()
    });
    match updated.flatten() {
        Some(config) => ok(StatusCode::OK, config),
        None => not_found(&format!("Function URL config for {name}")),
    }
}

async fn delete_url(State(inner): Shared, Path(name): Path<String>) -> Response {
    let name = function_name(&name).to_string();
    let removed = with_function(&inner, &name, |f| f.url.take()).flatten();
    if removed.is_none() {
        return not_found(&format!("Function URL config for {name}"));
    }
    if let Some((_, server)) = inner.url_servers.lock().ok().and_then(|mut s| s.remove(&name)) {
        server.abort();
    }
    StatusCode::NO_CONTENT.into_response()
}

// ---------------------------------------------------------------- tags

fn function_by_arn(inner: &Inner, arn: &str) -> Option<String> {
    inner.functions.lock().ok()?.values().find(|f| f.arn == arn || f.name == function_name(arn)).map(|f| f.name.clone())
}

async fn list_tags(State(inner): Shared, Path(arn): Path<String>) -> Response {
    match function_by_arn(&inner, &arn).and_then(|name| inner.function(&name)) {
        Some(function) => ok(StatusCode::OK, json!({"Tags": function.tags})),
        None => not_found(&format!("Function {arn}")),
    }
}

async fn tag_resource(State(inner): Shared, Path(arn): Path<String>, body: Bytes) -> Response {
    let request = match body_json(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let Some(name) = function_by_arn(&inner, &arn) else { return not_found(&format!("Function {arn}")) };
    with_function(&inner, &name, |f| f.tags.extend(string_map(&request["Tags"])));
    StatusCode::NO_CONTENT.into_response()
}

async fn untag_resource(
    State(inner): Shared,
    Path(arn): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let Some(name) = function_by_arn(&inner, &arn) else { return not_found(&format!("Function {arn}")) };
    let keys: Vec<String> = query.into_iter().filter(|(k, _)| k == "tagKeys").map(|(_, v)| v).collect();
    with_function(&inner, &name, |f| f.tags.retain(|k, _| !keys.contains(k)));
    StatusCode::NO_CONTENT.into_response()
}

// ---------------------------------------------------------------- event source mappings

fn mapping_json(inner: &Inner, config: &MappingConfig) -> Value {
    let mut answer = json!({
        "UUID": config.uuid,
        "FunctionArn": config.function_arn,
        "EventSourceArn": config.event_source_arn,
        "BatchSize": config.batch_size,
        "State": if config.enabled { "Enabled" } else { "Disabled" },
        "StateTransitionReason": "USER_INITIATED",
        "LastModified": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0),
        "LastProcessingResult": inner.mappings.get().and_then(|m| m.last_processing_result(&config.uuid)).unwrap_or_else(|| "No records processed".into()),
        "FunctionResponseTypes": config.function_response_types,
    });
    if let Some(window) = config.maximum_batching_window_in_seconds {
        answer["MaximumBatchingWindowInSeconds"] = json!(window);
    }
    if let Some(position) = &config.starting_position {
        answer["StartingPosition"] = json!(position);
    }
    if let Some(bisect) = config.bisect_batch_on_function_error {
        answer["BisectBatchOnFunctionError"] = json!(bisect);
    }
    if let Some(retries) = config.maximum_retry_attempts {
        answer["MaximumRetryAttempts"] = json!(retries);
    }
    if !config.filter_patterns.is_empty() {
        let filters: Vec<Value> = config.filter_patterns.iter().map(|p| json!({"Pattern": p})).collect();
        answer["FilterCriteria"] = json!({"Filters": filters});
    }
    if let Some(destination) = &config.on_failure_destination {
        answer["DestinationConfig"] = json!({"OnFailure": {"Destination": destination}, "OnSuccess": {}});
    }
    answer
}

/// Applies a Create/UpdateEventSourceMapping request's fields to `config`.
fn apply_mapping_fields(config: &mut MappingConfig, request: &Value) {
    if let Some(size) = request["BatchSize"].as_i64() {
        config.batch_size = i32::try_from(size).unwrap_or(i32::MAX);
    }
    if let Some(window) = request["MaximumBatchingWindowInSeconds"].as_i64() {
        config.maximum_batching_window_in_seconds = i32::try_from(window).ok();
    }
    if let Some(bisect) = request["BisectBatchOnFunctionError"].as_bool() {
        config.bisect_batch_on_function_error = Some(bisect);
    }
    if let Some(retries) = request["MaximumRetryAttempts"].as_i64() {
        config.maximum_retry_attempts = i32::try_from(retries).ok();
    }
    if let Some(types) = request.get("FunctionResponseTypes") {
        config.function_response_types = strings(types);
    }
    if let Some(filters) = request.pointer("/FilterCriteria/Filters").and_then(Value::as_array) {
        config.filter_patterns = filters.iter().filter_map(|f| f["Pattern"].as_str().map(str::to_string)).collect();
    } else if request.get("FilterCriteria").is_some() {
        config.filter_patterns.clear();
    }
    if let Some(destination) = request.pointer("/DestinationConfig/OnFailure/Destination") {
        config.on_failure_destination = destination.as_str().filter(|d| !d.is_empty()).map(str::to_string);
    }
    if let Some(enabled) = request["Enabled"].as_bool() {
        config.enabled = enabled;
    }
}

/// What AWS refuses in a mapping: settings of the wrong source kind, values out of range.
fn validate_mapping(config: &MappingConfig) -> Result<(), String> {
    let sqs = config.event_source_arn.starts_with("arn:aws:sqs:");
    let fifo = sqs && config.event_source_arn.ends_with(".fifo");
    if sqs {
        if config.starting_position.is_some() {
            return Err("StartingPosition is not valid for SQS event sources.".into());
        }
        if config.bisect_batch_on_function_error.is_some() || config.maximum_retry_attempts.is_some() {
            return Err("Unsupported MaximumRetryAttempts/BisectBatchOnFunctionError for SQS event sources.".into());
        }
        let max = if fifo { 10 } else { 10_000 };
        if !(1..=max).contains(&config.batch_size) {
            return Err(format!("BatchSize {} is outside 1..={max} for this queue.", config.batch_size));
        }
    } else if config.event_source_arn.contains(":dynamodb:") && config.event_source_arn.contains("/stream/") {
        if config.starting_position.is_none() {
            return Err("StartingPosition is required for DynamoDB stream event sources.".into());
        }
        if !(1..=10_000).contains(&config.batch_size) {
            return Err(format!("BatchSize {} is outside 1..=10000.", config.batch_size));
        }
        if config.maximum_retry_attempts.is_some_and(|r| !(-1..=10_000).contains(&r)) {
            return Err("MaximumRetryAttempts must be within -1..=10000.".into());
        }
    } else {
        return Err(format!(
            "unsupported event source {} (SQS queues and DynamoDB streams only)",
            config.event_source_arn
        ));
    }
    if config.function_response_types.iter().any(|t| t != "ReportBatchItemFailures") {
        return Err(format!(
            "FunctionResponseTypes {:?}: only ReportBatchItemFailures is valid",
            config.function_response_types
        ));
    }
    for pattern in &config.filter_patterns {
        if serde_json::from_str::<serde_json::Map<String, Value>>(pattern).is_err() {
            return Err(format!("Invalid filter pattern definition: {pattern}"));
        }
    }
    Ok(())
}

/// The actions Lambda's poller performs on a source with the function's role;
/// AWS checks them when the mapping is created.
fn poller_actions(source: &str) -> &'static [&'static str] {
    if source.starts_with("arn:aws:sqs:") {
        &["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    } else {
        &["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
    }
}

async fn create_mapping(State(inner): Shared, body: Bytes) -> Response {
    let request = match body_json(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let (Some(function), Some(source)) = (request["FunctionName"].as_str(), request["EventSourceArn"].as_str()) else {
        return invalid("FunctionName and EventSourceArn are required");
    };
    let Some(record) = inner.function(function_name(function)) else {
        return not_found(&format!("Function {function}"));
    };
    let sqs = source.starts_with("arn:aws:sqs:");
    let mut config = MappingConfig {
        uuid: uuid::Uuid::new_v4().to_string(),
        function_name: record.name.clone(),
        function_arn: record.arn.clone(),
        event_source_arn: source.to_string(),
        batch_size: if sqs { 10 } else { 100 },
        maximum_batching_window_in_seconds: None,
        starting_position: request["StartingPosition"].as_str().map(str::to_string),
        bisect_batch_on_function_error: None,
        maximum_retry_attempts: None,
        function_response_types: Vec::new(),
        filter_patterns: Vec::new(),
        on_failure_destination: None,
        enabled: true,
    };
    apply_mapping_fields(&mut config, &request);
    if let Err(message) = validate_mapping(&config) {
        return invalid(message);
    }
    let exists = inner
        .mapping_configs
        .lock()
        .map(|m| {
            m.values().any(|c| c.function_arn == config.function_arn && c.event_source_arn == config.event_source_arn)
        })
        .unwrap_or(false);
    if exists {
        return error(
            StatusCode::CONFLICT,
            "ResourceConflictException",
            format!(
                "An event source mapping with {} and function {} already exists.",
                config.event_source_arn, record.name
            ),
        );
    }
    for action in poller_actions(source) {
        if let Err(denied) = inner.access.authorize(&record.role, action, source).await {
            return invalid(format!(
                "The function execution role does not have permissions to call {action} on {source}: {denied}"
            ));
        }
    }
    let answer = mapping_json(&inner, &config);
    if let Ok(mut configs) = inner.mapping_configs.lock() {
        configs.insert(config.uuid.clone(), config.clone());
    }
    if let Some(mappings) = inner.mappings.get() {
        mappings.put(config);
    }
    ok(StatusCode::ACCEPTED, answer)
}

async fn list_mappings(State(inner): Shared, Query(query): Query<HashMap<String, String>>) -> Response {
    let function = query.get("FunctionName").map(|f| function_name(f).to_string());
    if let Some(name) = &function
        && inner.function(name).is_none()
    {
        return not_found(&format!("Function {name}"));
    }
    let source = query.get("EventSourceArn");
    let listed: Vec<Value> = inner
        .mapping_configs
        .lock()
        .map(|m| {
            m.values()
                .filter(|c| function.as_ref().is_none_or(|f| &c.function_name == f))
                .filter(|c| source.is_none_or(|s| &c.event_source_arn == s))
                .map(|c| mapping_json(&inner, c))
                .collect()
        })
        .unwrap_or_default();
    ok(StatusCode::OK, json!({"EventSourceMappings": listed}))
}

async fn get_mapping(State(inner): Shared, Path(uuid): Path<String>) -> Response {
    match inner.mapping_configs.lock().ok().and_then(|m| m.get(&uuid).cloned()) {
        Some(config) => ok(StatusCode::OK, mapping_json(&inner, &config)),
        None => not_found(&format!("Event source mapping {uuid}")),
    }
}

async fn update_mapping(State(inner): Shared, Path(uuid): Path<String>, body: Bytes) -> Response {
    let request = match body_json(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let Some(mut config) = inner.mapping_configs.lock().ok().and_then(|m| m.get(&uuid).cloned()) else {
        return not_found(&format!("Event source mapping {uuid}"));
    };
    apply_mapping_fields(&mut config, &request);
    if let Some(function) = request["FunctionName"].as_str() {
        let Some(record) = inner.function(function_name(function)) else {
            return not_found(&format!("Function {function}"));
        };
        config.function_name = record.name;
        config.function_arn = record.arn;
    }
    if let Err(message) = validate_mapping(&config) {
        return invalid(message);
    }
    let answer = mapping_json(&inner, &config);
    if let Ok(mut configs) = inner.mapping_configs.lock() {
        configs.insert(uuid, config.clone());
    }
    if let Some(mappings) = inner.mappings.get() {
        mappings.put(config);
    }
    ok(StatusCode::ACCEPTED, answer)
}

async fn delete_mapping(State(inner): Shared, Path(uuid): Path<String>) -> Response {
    let Some(config) = inner.mapping_configs.lock().ok().and_then(|mut m| m.remove(&uuid)) else {
        return not_found(&format!("Event source mapping {uuid}"));
    };
    if let Some(mappings) = inner.mappings.get() {
        mappings.remove(&uuid);
    }
    let mut answer = mapping_json(&inner, &config);
    answer["State"] = json!("Deleting");
    ok(StatusCode::ACCEPTED, answer)
}
