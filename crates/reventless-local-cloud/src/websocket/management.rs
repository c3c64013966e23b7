//! API Gateway's Management API for the served WebSocket APIs:
//! `POST /{api}/{stage}/@connections/{id}` sends the body to the connection,
//! `GET` describes it, `DELETE` closes it; a connection that is not open is
//! `410 GoneException`, as on AWS. Functions reach it through the IAM proxy
//! (`AWS_ENDPOINT_URL`; they put the API and stage first in the path, see
//! `reventless_aws::gateway::push::management_endpoint`), which checks
//! [`management_need`] first.
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::task::JoinHandle;

use super::{Outgoing, Shared};

/// API Gateway's limit on one message (128 KB).
pub const MAX_MESSAGE: usize = 128 * 1024;

/// The Management API server on loopback.
pub(super) struct Server {
    url: String,
    task: JoinHandle<()>,
}

impl Server {
    pub(super) async fn start(shared: Arc<Shared>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let app = axum::Router::new().fallback(handle).with_state(shared);
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::warn!(%error, "the WebSocket Management API stopped");
            }
        });
        Ok(Self { url, task })
    }

    pub(super) fn url(&self) -> String {
        self.url.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `(api, stage, connection)` of `/{api}/{stage}/@connections/{id}`.
fn parse(path: &str) -> Option<(String, String, String)> {
    let mut parts = path.trim_start_matches('/').splitn(4, '/');
    let (api, stage, marker, id) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if marker != "@connections" || api.is_empty() || stage.is_empty() || id.is_empty() || id.contains('/') {
        return None;
    }
    let id = percent_encoding::percent_decode_str(id).decode_utf8().ok()?.into_owned();
    Some((api.to_string(), stage.to_string(), id))
}

/// What IAM must allow for a Management API request: `execute-api:ManageConnections`
/// on `arn:aws:execute-api:{region}:{account}:{api}/{stage}/{METHOD}/@connections/{id}`.
pub fn management_need(method: &Method, path: &str, region: &str, account: &str) -> Option<(String, String)> {
    let (api, stage, id) = parse(path)?;
    let arn = format!("arn:aws:execute-api:{region}:{account}:{api}/{stage}/{method}/@connections/{id}");
    Some(("execute-api:ManageConnections".to_string(), arn))
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (status, axum::Json(json!({"message": message}))).into_response();
    if let Ok(value) = HeaderValue::from_str(code) {
        response.headers_mut().insert("x-amzn-errortype", value);
    }
    response
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Some((api, stage, id)) = parse(parts.uri.path()) else {
        return error(StatusCode::NOT_FOUND, "NotFoundException", "no such Management API path");
    };
    let body: Bytes = match axum::body::to_bytes(body, MAX_MESSAGE + 1).await {
        Ok(body) => body,
        Err(_) => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeException", "the message is over 128 KB");
        }
    };
    let mut connections = shared.connections.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let open = connections.get(&id).filter(|c| c.api == api && c.stage == stage);
    let Some(connection) = open else {
        return error(StatusCode::GONE, "GoneException", &format!("connection {id} is not open"));
    };
    match parts.method {
        Method::POST => {
            if body.len() > MAX_MESSAGE {
                return error(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeException", "the message is over 128 KB");
            }
            let text = String::from_utf8_lossy(&body).into_owned();
            if connection.sender.send(Outgoing::Text(text)).is_err() {
                connections.remove(&id);
                return error(StatusCode::GONE, "GoneException", &format!("connection {id} is closing"));
            }
            StatusCode::OK.into_response()
        }
        Method::GET => axum::Json(json!({
            "connectedAt": connection.connected_at,
            "lastActiveAt": connection.connected_at,
            "identity": {"sourceIp": connection.source_ip},
        }))
        .into_response(),
        Method::DELETE => {
            if let Some(connection) = connections.remove(&id) {
                let _ = connection.sender.send(Outgoing::Close);
            }
            StatusCode::NO_CONTENT.into_response()
        }
        _ => error(StatusCode::METHOD_NOT_ALLOWED, "BadRequestException", "POST, GET or DELETE"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_requests_need_manage_connections_on_their_exact_arn() {
        let need =
            management_need(&Method::POST, "/abc123/dev/@connections/L0SM9cOFvHc%3D", "us-east-1", "123456789012");
        assert_eq!(
            need,
            Some((
                "execute-api:ManageConnections".to_string(),
                "arn:aws:execute-api:us-east-1:123456789012:abc123/dev/POST/@connections/L0SM9cOFvHc=".to_string()
            ))
        );
        assert_eq!(management_need(&Method::POST, "/abc123/@connections/x", "us-east-1", "1"), None);
        assert_eq!(management_need(&Method::GET, "/abc123/dev/other/x", "us-east-1", "1"), None);
    }
}
