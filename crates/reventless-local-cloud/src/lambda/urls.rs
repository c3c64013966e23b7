//! Function URLs on loopback: one port per URL (each its own origin, as
//! each URL is its own host on AWS). A request becomes Lambda's HTTP event
//! (payload 2.0); the answer becomes the response. `AWS_IAM` URLs need a
//! SigV4 caller whose role may `lambda:InvokeFunctionUrl` and
//! `lambda:InvokeFunction` on the function; `NONE` URLs need
//! the resource policy AWS requires of a public URL — otherwise 403, as on AWS.
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use super::Inner;
use super::model::timestamp_now;
use crate::InvokeFailure;

#[derive(Clone)]
struct UrlState {
    inner: Arc<Inner>,
    function: String,
}

/// Serves `function`'s URL on a free loopback port; answers the address.
pub(crate) async fn serve(inner: Arc<Inner>, function: &str) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(UrlState { inner: inner.clone(), function: function.to_string() })
        .into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    if let Ok(mut servers) = inner.url_servers.lock()
        && let Some((_, old)) = servers.insert(function.to_string(), (address, server))
    {
        old.abort();
    }
    Ok(address)
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        [("x-amzn-errortype", "AccessDeniedException")],
        json!({"Message": "Forbidden"}).to_string(),
    )
        .into_response()
}

/// The access key of a SigV4 `Authorization` header.
pub(crate) fn access_key(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let credential = value.split("Credential=").nth(1)?;
    credential.split('/').next()
}

async fn handle(
    State(state): State<UrlState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(function) = state.inner.function(&state.function) else { return forbidden() };
    let Some(url) = function.url.clone() else { return forbidden() };
    let origin = headers.get("origin").and_then(|o| o.to_str().ok()).map(str::to_string);
    let cors = url.cors.clone().unwrap_or(Value::Null);
    // Lambda answers CORS preflights itself, from the URL's CORS settings.
    if method == Method::OPTIONS && url.cors.is_some() && headers.contains_key("access-control-request-method") {
        let mut response = StatusCode::OK.into_response();
        add_cors(response.headers_mut(), &cors, origin.as_deref(), true);
        return response;
    }
    let mut authorizer = Value::Null;
    if url.auth_type == "AWS_IAM" {
        let Some(key) = access_key(&headers) else { return forbidden() };
        let Some(role) = state.inner.identities.role_for_access_key(key) else { return forbidden() };
        // AWS needs both: the URL call, and the invocation it makes.
        for action in ["lambda:InvokeFunctionUrl", "lambda:InvokeFunction"] {
            if state.inner.access.authorize(&role, action, &function.arn).await.is_err() {
                return forbidden();
            }
        }
        authorizer = json!({"iam": {"accessKey": key, "accountId": state.inner.options.account, "userArn": role}});
    } else if !function.url_is_public() {
        return forbidden();
    }
    let event = http_event(&state, &method, &uri, &headers, &body, peer, authorizer);
    // A synchronous invocation: throttled (429) past reserved concurrency, as on AWS.
    let answer = state.inner.run(&function.name, event, true).await;
    let mut response = match answer {
        Ok(answer) => http_response(answer),
        Err(InvokeFailure::Throttled) => {
            (StatusCode::TOO_MANY_REQUESTS, json!({"Message": "Rate Exceeded."}).to_string()).into_response()
        }
        Err(failure) => {
            tracing::warn!(function = function.name, %failure, "function URL invocation failed");
            (StatusCode::BAD_GATEWAY, json!({"Message": "Internal Server Error"}).to_string()).into_response()
        }
    };
    if url.cors.is_some() {
        add_cors(response.headers_mut(), &cors, origin.as_deref(), false);
    }
    response
}

fn add_cors(headers: &mut HeaderMap, cors: &Value, origin: Option<&str>, preflight: bool) {
    let list = |key: &str| -> Vec<String> {
        cors[key]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default()
    };
    let origins = list("AllowOrigins");
    let allowed = match origin {
        Some(origin) if origins.iter().any(|o| o == "*" || o == origin) => origin.to_string(),
        _ => return,
    };
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set("access-control-allow-origin", if origins.iter().any(|o| o == "*") { "*".into() } else { allowed });
    if cors["AllowCredentials"].as_bool() == Some(true) {
        set("access-control-allow-credentials", "true".into());
    }
    if preflight {
        set("access-control-allow-methods", list("AllowMethods").join(","));
        set("access-control-allow-headers", list("AllowHeaders").join(","));
        if let Some(age) = cors["MaxAge"].as_i64() {
            set("access-control-max-age", age.to_string());
        }
    } else if !list("ExposeHeaders").is_empty() {
        set("access-control-expose-headers", list("ExposeHeaders").join(","));
    }
}

/// Lambda's HTTP event, payload format 2.0.
fn http_event(
    state: &UrlState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    peer: SocketAddr,
    authorizer: Value,
) -> Value {
    let mut header_map = serde_json::Map::new();
    let mut cookies = Vec::new();
    for (name, value) in headers {
        let Ok(value) = value.to_str() else { continue };
        if name == "cookie" {
            cookies.extend(value.split(';').map(|c| c.trim().to_string()));
            continue;
        }
        let entry = header_map.entry(name.as_str().to_string()).or_insert(Value::String(String::new()));
        if let Value::String(existing) = entry {
            if !existing.is_empty() {
                existing.push(',');
            }
            existing.push_str(value);
        }
    }
    let query = uri.query().unwrap_or_default();
    let parameters: serde_json::Map<String, Value> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    let text = std::str::from_utf8(body).ok();
    let (body_value, encoded) = match text {
        _ if body.is_empty() => (Value::Null, false),
        Some(text) => (Value::String(text.to_string()), false),
        None => (Value::String(base64::engine::general_purpose::STANDARD.encode(body)), true),
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or_default().to_string();
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": uri.path(),
        "rawQueryString": query,
        "headers": header_map,
        "requestContext": {
            "accountId": state.inner.options.account,
            "apiId": state.function,
            "domainName": host,
            "domainPrefix": state.function,
            "http": {
                "method": method.as_str(),
                "path": uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": peer.ip().to_string(),
                "userAgent": headers.get("user-agent").and_then(|h| h.to_str().ok()).unwrap_or_default(),
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": "$default",
            "stage": "$default",
            "time": timestamp_now(),
            "timeEpoch": now as u64,
        },
        "isBase64Encoded": encoded,
    });
    if !parameters.is_empty() {
        event["queryStringParameters"] = Value::Object(parameters);
    }
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !body_value.is_null() {
        event["body"] = body_value;
    }
    if !authorizer.is_null() {
        event["requestContext"]["authorizer"] = authorizer;
    }
    event
}

/// The function's answer as an HTTP response: an object with `statusCode`
/// is a response; anything else is a 200 JSON body (Lambda's inference).
fn http_response(answer: Value) -> Response {
    let Some(status) = answer.get("statusCode").and_then(Value::as_u64) else {
        return (StatusCode::OK, [("content-type", "application/json")], answer.to_string()).into_response();
    };
    let mut builder = Response::builder().status(u16::try_from(status).unwrap_or(500));
    if let Some(headers) = answer.get("headers").and_then(Value::as_object) {
        for (name, value) in headers {
            if let Some(value) = value.as_str() {
                builder = builder.header(name.as_str(), value);
            }
        }
    }
    if let Some(cookies) = answer.get("cookies").and_then(Value::as_array) {
        for cookie in cookies.iter().filter_map(Value::as_str) {
            builder = builder.header("set-cookie", cookie);
        }
    }
    let text = answer.get("body").and_then(Value::as_str).unwrap_or_default();
    let body = if answer.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        base64::engine::general_purpose::STANDARD.decode(text).unwrap_or_default()
    } else {
        text.as_bytes().to_vec()
    };
    builder.body(Body::from(body)).unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}
