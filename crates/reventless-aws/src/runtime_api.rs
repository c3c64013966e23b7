//! A Lambda Runtime API on loopback, for running a real `bootstrap` in
//! tests and benchmarks: queue an event with [`RuntimeApi::invoke`], the
//! binary fetches it from `/invocation/next` and posts its answer.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

const PREFIX: &str = "/2018-06-01/runtime";

/// Why an invocation did not answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvokeError {
    /// The function reported an error (`/invocation/{id}/error`), e.g. a panic.
    #[error("the function failed: {0}")]
    Function(Value),
    /// The function failed to start (`/init/error`).
    #[error("the function failed to start: {0}")]
    Init(Value),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

struct Pending {
    id: String,
    payload: Value,
}

#[derive(Default)]
struct Shared {
    answers: Mutex<HashMap<String, oneshot::Sender<Result<Value, InvokeError>>>>,
    init_error: Mutex<Option<Value>>,
    /// When the first answer of each invocation arrived.
    answered_at: Mutex<Vec<Instant>>,
}

#[derive(Clone)]
struct AppState {
    shared: Arc<Shared>,
    queue: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>>,
}

/// A Runtime API server; dropping it stops it.
pub struct RuntimeApi {
    address: SocketAddr,
    sender: mpsc::UnboundedSender<Pending>,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
    next_id: std::sync::atomic::AtomicU64,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    /// Serves on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::default());
        let state = AppState { shared: shared.clone(), queue: Arc::new(tokio::sync::Mutex::new(receiver)) };
        let app = Router::new()
            .route(&format!("{PREFIX}/invocation/next"), get(next))
            .route(&format!("{PREFIX}/invocation/{{id}}/response"), post(response))
            .route(&format!("{PREFIX}/invocation/{{id}}/error"), post(error))
            .route(&format!("{PREFIX}/init/error"), post(init_error))
            .with_state(state);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { address, sender, shared, server, next_id: std::sync::atomic::AtomicU64::new(1) })
    }

    /// `AWS_LAMBDA_RUNTIME_API` for the function.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Sends one event and waits for the function's answer.
    pub async fn invoke(&self, payload: Value, limit: Duration) -> Result<Value, InvokeError> {
        let number = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("00000000-0000-4000-8000-{number:012}");
        let (answer, answered) = oneshot::channel();
        if let Ok(mut answers) = self.shared.answers.lock() {
            answers.insert(id.clone(), answer);
        }
        let _ = self.sender.send(Pending { id, payload });
        let deadline = Instant::now() + limit;
        let mut answered = answered;
        loop {
            let tick = tokio::time::timeout(Duration::from_millis(50), &mut answered).await;
            match tick {
                Ok(Ok(result)) => return result,
                Ok(Err(_)) => return Err(InvokeError::Timeout(limit)),
                Err(_) => {}
            }
            if let Some(error) = self.shared.init_error.lock().ok().and_then(|e| e.clone()) {
                return Err(InvokeError::Init(error));
            }
            if Instant::now() > deadline {
                return Err(InvokeError::Timeout(limit));
            }
        }
    }

    /// When each answer arrived, in order.
    pub fn answered_at(&self) -> Vec<Instant> {
        self.shared.answered_at.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Starts `bootstrap` against this API with the environment Lambda gives
    /// (plus `env`); the process is killed when the handle drops.
    pub fn spawn(&self, bootstrap: &Path, env: &[(&str, String)]) -> std::io::Result<Function> {
        self.spawn_with_args(bootstrap, &[], env)
    }

    /// As [`RuntimeApi::spawn`], with arguments for the program.
    pub fn spawn_with_args(
        &self,
        bootstrap: &Path,
        args: &[&str],
        env: &[(&str, String)],
    ) -> std::io::Result<Function> {
        let mut command = Command::new(bootstrap);
        command.args(args);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", self.address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "reventless-test")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_REGION", crate::emulator::REGION)
            .env("LAMBDA_TASK_ROOT", bootstrap.parent().unwrap_or(Path::new(".")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let started = Instant::now();
        Ok(Function { child: command.spawn()?, started })
    }
}

/// A running function process.
pub struct Function {
    child: Child,
    /// Taken just before the process was spawned (cold start counts from here).
    pub started: Instant,
}

impl Function {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory so far (`VmHWM`, KiB), on Linux.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the process and returns what it wrote to stderr.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut text = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        }
        text
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn next(State(state): State<AppState>) -> impl IntoResponse {
    let pending = state.queue.lock().await.recv().await;
    let Some(pending) = pending else {
        return (StatusCode::GONE, HeaderMap::new(), String::new());
    };
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() + 900_000).unwrap_or(0);
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", pending.id);
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:reventless-test".into());
    set("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000".into());
    set("content-type", "application/json".into());
    (StatusCode::OK, headers, pending.payload.to_string())
}

fn answer(state: &AppState, id: &str, result: Result<Value, InvokeError>) {
    if let Ok(mut times) = state.shared.answered_at.lock() {
        times.push(Instant::now());
    }
    if let Some(sender) = state.shared.answers.lock().ok().and_then(|mut answers| answers.remove(id)) {
        let _ = sender.send(result);
    }
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string()))
}

async fn response(State(state): State<AppState>, UrlPath(id): UrlPath<String>, body: String) -> StatusCode {
    answer(&state, &id, Ok(parse(&body)));
    StatusCode::ACCEPTED
}

async fn error(State(state): State<AppState>, UrlPath(id): UrlPath<String>, body: String) -> StatusCode {
    answer(&state, &id, Err(InvokeError::Function(parse(&body))));
    StatusCode::ACCEPTED
}

async fn init_error(State(state): State<AppState>, body: String) -> StatusCode {
    if let Ok(mut slot) = state.shared.init_error.lock() {
        *slot = Some(parse(&body));
    }
    StatusCode::ACCEPTED
}

/// Lambda's `Invoke` API on loopback, answering from functions running on
/// [`RuntimeApi`]s: what a function that invokes others (the platform
/// gateway) is pointed at in tests (`AWS_ENDPOINT_URL_LAMBDA`). A function
/// error answers with `X-Amz-Function-Error`, as Lambda does.
pub struct InvokeEndpoint {
    address: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for InvokeEndpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

type Functions = Arc<HashMap<String, Arc<RuntimeApi>>>;

impl InvokeEndpoint {
    /// Serves function name → its Runtime API on a free loopback port.
    pub async fn start(functions: HashMap<String, Arc<RuntimeApi>>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let app = Router::new()
            .route("/2015-03-31/functions/{name}/invocations", post(invoke_function))
            .with_state(Arc::new(functions));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { address, server })
    }

    /// The endpoint URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

async fn invoke_function(
    State(functions): State<Functions>,
    UrlPath(name): UrlPath<String>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let Some(api) = functions.get(&name) else {
        let message = serde_json::json!({"Type": "User", "message": format!("Function not found: {name}")});
        return (StatusCode::NOT_FOUND, [("x-amzn-errortype", "ResourceNotFoundException")], message.to_string())
            .into_response();
    };
    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match api.invoke(payload, Duration::from_secs(30)).await {
        Ok(answer) => (StatusCode::OK, answer.to_string()).into_response(),
        Err(InvokeError::Function(error)) | Err(InvokeError::Init(error)) => {
            (StatusCode::OK, [("x-amz-function-error", "Unhandled")], error.to_string()).into_response()
        }
        Err(InvokeError::Timeout(limit)) => {
            let message = serde_json::json!({"errorMessage": format!("Task timed out after {limit:?}")});
            (StatusCode::OK, [("x-amz-function-error", "Unhandled")], message.to_string()).into_response()
        }
    }
}
