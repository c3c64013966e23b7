//! `Invoke`: synchronous (throttled past reserved concurrency), `Event` (retried twice) and `DryRun`.
use super::*;

/// Lambda's request payload ceiling for synchronous invocations.
const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

pub(super) async fn invoke(
    State(inner): Shared,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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
                    InvokeFailure::Timeout(limit) => json!({"errorType": "Sandbox.Timedout",
                        "errorMessage": format!("Task timed out after {:.2} seconds", limit.as_secs_f64())}),
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
