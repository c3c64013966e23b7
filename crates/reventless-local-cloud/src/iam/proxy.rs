//! The endpoint functions talk to (`AWS_ENDPOINT_URL`): every request is
//! attributed to a role by its access key, classified, checked against the
//! role's policies, and then forwarded unchanged — to our Lambda service for
//! `lambda`, to moto for everything else — or refused in the service's own
//! error shape, so that the SDK surfaces the code AWS would.
//!
//! Signatures are not verified (moto does not either); the access key and
//! its session token must be ones [`Iam`] issued.
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::request::{self, Classification, Need, Needs, Protocol, RequestParts};
use super::{Decision, Iam, account_of, principal};

/// Bodies above this are refused; Lambda's payload limit (6 MB) and
/// DynamoDB's batch limit (16 MB) are below it.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// The IAM-checking proxy; dropping it or [`Proxy::shutdown`] stops it.
pub struct Proxy {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

struct Shared {
    iam: Arc<Iam>,
    moto: String,
    lambda: String,
    /// The WebSocket Management API (`execute-api`), when served.
    execute_api: Option<String>,
    /// One client for all forwarding (connection reuse keeps it fast).
    client: reqwest::Client,
}

impl Proxy {
    /// Serves on 127.0.0.1 (free port). Functions get AWS_ENDPOINT_URL = proxy.url().
    pub async fn start(iam: Arc<Iam>, moto_endpoint: String, lambda_endpoint: String) -> std::io::Result<Self> {
        Self::start_with_execute_api(iam, moto_endpoint, lambda_endpoint, None).await
    }

    /// [`Proxy::start`], sending `execute-api` (Management API) requests to `execute_api`.
    pub async fn start_with_execute_api(
        iam: Arc<Iam>,
        moto_endpoint: String,
        lambda_endpoint: String,
        execute_api: Option<String>,
    ) -> std::io::Result<Self> {
        let client = reqwest::Client::builder()
            // Answers go back as they came (the SDK follows nothing either),
            // and never through a proxy from the environment.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .tcp_nodelay(true)
            .build()
            .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            iam,
            moto: moto_endpoint.trim_end_matches('/').to_string(),
            lambda: lambda_endpoint.trim_end_matches('/').to_string(),
            execute_api: execute_api.map(|url| url.trim_end_matches('/').to_string()),
            client,
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let app = axum::Router::new().fallback(handle).with_state(shared);
        let (stop, stopped) = oneshot::channel::<()>();
        // Without TCP_NODELAY, a response written as headers then body waits
        // for the client's delayed ACK: ~40 ms on every call.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::warn!(%error, "the IAM proxy cannot set TCP_NODELAY");
            }
        });
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(error) = serve.await {
                tracing::warn!(%error, "the IAM proxy stopped");
            }
        });
        Ok(Proxy { address, stop: Some(stop), task: Some(task) })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stops accepting requests and waits (up to 5 s) for those in flight.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(std::time::Duration::from_secs(5), task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(error) => return plain(StatusCode::PAYLOAD_TOO_LARGE, &format!("cannot read the request body: {error}")),
    };
    let path = parts.uri.path();
    let query = parts.uri.query();
    let request = RequestParts { method: &parts.method, path, query, headers: &parts.headers, body: &body };
    let Some(signature) = request::signature(&parts.headers, query) else {
        let classification = request::classify(&request, &unsigned(), "");
        return refuse(
            &classification.protocol,
            403,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        );
    };
    // The account of the caller is the role's: functions reach their own
    // account's resources, and the role ARN names it.
    let identity = shared.iam.key(&signature.access_key_id);
    let account = identity.as_ref().and_then(|(role, _)| account_of(role)).unwrap_or_default().to_string();
    let classification = request::classify(&request, &signature, &account);
    let token = request::session_token(&parts.headers, query);
    let role = match identity {
        Some((role, issued)) if token.as_deref() == Some(issued.as_str()) => role,
        _ => {
            tracing::warn!(access_key = signature.access_key_id, service = signature.service, "unknown credentials");
            return unrecognized(&classification.protocol);
        }
    };

    match &classification.needs {
        Needs::Check(needs) => {
            if let Err(refusal) = check(&shared.iam, &role, needs, &classification).await {
                return refusal;
            }
        }
        Needs::CallerIdentity => return caller_identity(&classification.protocol, &role, &account),
        Needs::Unknown { action } => {
            let action = action.clone().unwrap_or_else(|| format!("{}:<unknown>", signature.service));
            tracing::warn!(role, action, path, "denied: the local cloud cannot check this request");
            let message = format!(
                "User: {} is not authorized to perform: {action} because the local cloud cannot check this request",
                principal(&role)
            );
            return access_denied(&classification.protocol, &message);
        }
    }

    let base = match (signature.service.as_str(), &shared.execute_api) {
        ("lambda", _) => &shared.lambda,
        ("execute-api", Some(management)) => management,
        _ => &shared.moto,
    };
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    // Forwarded without its Host: a virtual-host-style S3 request names its
    // bucket in the path instead (the emulator reads both).
    let bucket = (signature.service == "s3").then(|| request::virtual_host_bucket(&parts.headers)).flatten();
    let path_and_query = match bucket {
        Some(bucket) => format!("/{bucket}{path_and_query}"),
        None => path_and_query.to_string(),
    };
    forward(&shared.client, parts.method, &format!("{base}{path_and_query}"), &parts.headers, body).await
}

/// Every pair must be allowed; the first refused one is reported.
async fn check(iam: &Iam, role: &str, needs: &[Need], classification: &Classification) -> Result<(), Response> {
    let policies = match iam.policies(role).await {
        Ok(policies) => policies,
        Err(error) => {
            tracing::warn!(role, %error, "denied: the role's policies cannot be read");
            let first = needs.first().map_or("<none>", |need| need.action.as_str());
            let message = format!(
                "User: {} is not authorized to perform: {first} because the local cloud cannot read its policies: {error}",
                principal(role)
            );
            return Err(access_denied(&classification.protocol, &message));
        }
    };
    for need in needs {
        let decision = policies.decide(&need.action, &need.resource);
        if decision != Decision::Allow {
            let denied = super::Denied {
                principal: principal(role),
                action: need.action.clone(),
                resource: need.resource.clone(),
            };
            tracing::warn!(
                role,
                action = need.action,
                resource = need.resource,
                "denied {}",
                decision.reason(&need.action)
            );
            let message = format!("{denied} {}", decision.reason(&need.action));
            return Err(access_denied(&classification.protocol, &message));
        }
    }
    Ok(())
}

/// Headers that describe one connection, not the message.
fn hop_by_hop(name: &HeaderName) -> bool {
    [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
    ]
    .contains(name)
        || name.as_str() == "keep-alive"
}

async fn forward(
    client: &reqwest::Client,
    method: axum::http::Method,
    url: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let mut outgoing = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if name != header::HOST && name != header::CONTENT_LENGTH && !hop_by_hop(name) {
            outgoing.append(name.clone(), value.clone());
        }
    }
    let upstream = match client.request(method, url).headers(outgoing).body(body).send().await {
        Ok(upstream) => upstream,
        Err(error) => {
            tracing::warn!(url, %error, "the IAM proxy cannot reach its upstream");
            return plain(StatusCode::BAD_GATEWAY, &format!("the local cloud cannot reach {url}: {error}"));
        }
    };
    let mut response = Response::builder().status(upstream.status());
    if let Some(response_headers) = response.headers_mut() {
        for (name, value) in upstream.headers() {
            if !hop_by_hop(name) {
                response_headers.append(name.clone(), value.clone());
            }
        }
    }
    // Streamed back as it arrives (long polls, large invocation results).
    let chunks = futures::stream::unfold(upstream, |mut upstream| async move {
        match upstream.chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), upstream)),
            Ok(None) => None,
            Err(error) => Some((Err(error), upstream)),
        }
    });
    response
        .body(Body::from_stream(chunks))
        .unwrap_or_else(|error| plain(StatusCode::BAD_GATEWAY, &format!("bad upstream response: {error}")))
}

fn request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn plain(status: StatusCode, message: &str) -> Response {
    let mut response = Response::new(Body::from(message.to_string()));
    *response.status_mut() = status;
    response
}

/// AccessDenied in the service's own shape.
fn access_denied(protocol: &Protocol, message: &str) -> Response {
    match protocol {
        Protocol::Query | Protocol::RestXml => refuse(protocol, 403, "AccessDenied", message),
        Protocol::RestJson => refuse(protocol, 403, "AccessDeniedException", message),
        Protocol::Json { query_compatible: true, .. } => {
            with_query_error(refuse(protocol, 400, "AccessDeniedException", message), "AccessDenied")
        }
        Protocol::Json { .. } => refuse(protocol, 400, "AccessDeniedException", message),
    }
}

/// Credentials we did not issue, as AWS refuses them.
fn unrecognized(protocol: &Protocol) -> Response {
    let message = "The security token included in the request is invalid.";
    match protocol {
        Protocol::Query => refuse(protocol, 403, "InvalidClientTokenId", message),
        Protocol::RestXml => refuse(protocol, 403, "InvalidAccessKeyId", message),
        Protocol::RestJson => refuse(protocol, 403, "UnrecognizedClientException", message),
        Protocol::Json { query_compatible: true, .. } => {
            with_query_error(refuse(protocol, 400, "UnrecognizedClientException", message), "InvalidClientTokenId")
        }
        Protocol::Json { .. } => refuse(protocol, 400, "UnrecognizedClientException", message),
    }
}

/// Query-compatible JSON services (SQS) also name the error the way their
/// query API did; the SDK reports that code.
fn with_query_error(mut response: Response, code: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(&format!("{code};Sender")) {
        response.headers_mut().insert("x-amzn-query-error", value);
    }
    response
}

fn refuse(protocol: &Protocol, status: u16, code: &str, message: &str) -> Response {
    let id = request_id();
    let (content_type, body, error_type) = match protocol {
        Protocol::Json { type_prefix, content_type, .. } => {
            let body = serde_json::json!({"__type": format!("{type_prefix}{code}"), "message": message});
            (*content_type, body.to_string(), None)
        }
        Protocol::RestJson => {
            ("application/json", serde_json::json!({"Type": "User", "Message": message}).to_string(), Some(code))
        }
        Protocol::Query => {
            let body = format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error>\
                 <RequestId>{id}</RequestId></ErrorResponse>",
                xml_escape(message)
            );
            ("text/xml", body, None)
        }
        Protocol::RestXml => {
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message>\
                 <RequestId>{id}</RequestId></Error>",
                xml_escape(message)
            );
            ("application/xml", body, None)
        }
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(id) = HeaderValue::from_str(&id) {
        headers.insert("x-amzn-requestid", id);
    }
    if let Some(Ok(error_type)) = error_type.map(HeaderValue::from_str) {
        headers.insert("x-amzn-errortype", error_type);
    }
    response
}

/// `GetCallerIdentity` answered here: moto would name its own default user,
/// while the function is the assumed role.
fn caller_identity(protocol: &Protocol, role: &str, account: &str) -> Response {
    let arn = principal(role);
    let session = super::role_name(role).unwrap_or(role);
    let user_id = format!("AROA{}:{session}", &super::Iam::role_id(role));
    let (content_type, body) = match protocol {
        Protocol::Json { content_type, .. } => {
            (*content_type, serde_json::json!({"Account": account, "Arn": arn, "UserId": user_id}).to_string())
        }
        _ => (
            "text/xml",
            format!(
                "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
                 <GetCallerIdentityResult><Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account></GetCallerIdentityResult>\
                 <ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
                xml_escape(&arn),
                xml_escape(&user_id),
                xml_escape(account),
                request_id()
            ),
        ),
    };
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A signature for classifying an unsigned request (to pick its error shape).
fn unsigned() -> request::Signature {
    request::Signature { access_key_id: String::new(), region: String::new(), service: String::new() }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
