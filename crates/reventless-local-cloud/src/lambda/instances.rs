//! Function instances: a `bootstrap` process each, with a Runtime API of its
//! own on loopback, so that exactly one invocation runs in an instance at a
//! time and a timed-out instance can be killed without touching the others.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;
use tokio::sync::{mpsc, oneshot};

use super::logs::{LogLine, LogSink};
use super::model::FunctionRecord;
use crate::InvokeFailure;

const PREFIX: &str = "/2018-06-01/runtime";

/// What an instance needs besides the function's own configuration.
#[derive(Clone)]
pub struct Launch {
    /// `AWS_ENDPOINT_URL` of every function: the IAM-checking proxy.
    pub endpoint_url: String,
    /// `[access key id, secret, session token]` naming the function's role.
    pub credentials: [String; 3],
    pub region: String,
    pub logs: LogSink,
}

struct Pending {
    id: String,
    payload: Value,
    deadline_ms: u128,
    function_arn: String,
}

/// The invocation an instance is running: its request id and where its answer goes.
type Current = Option<(String, oneshot::Sender<Result<Value, InvokeFailure>>)>;

#[derive(Default)]
struct Shared {
    current: Mutex<Current>,
    init_error: Mutex<Option<String>>,
    /// When the process first asked for work (its init ended).
    ready_at: Mutex<Option<Instant>>,
}

#[derive(Clone)]
struct EndpointState {
    shared: Arc<Shared>,
    queue: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>>,
}

/// One running `bootstrap`.
pub struct Instance {
    /// Names the log stream (`YYYY/MM/DD/[$LATEST]<id>`).
    pub id: String,
    pub revision: u64,
    pub started: Instant,
    pub last_used: Instant,
    pub invocations: u64,
    /// Peak resident memory when last seen (MB).
    peak_mb: Option<u64>,
    child: tokio::process::Child,
    sender: mpsc::UnboundedSender<Pending>,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
    log_stream: String,
    log_group: String,
    logs: LogSink,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        self.server.abort();
    }
}

/// How one invocation in an instance ended.
pub struct Ran {
    pub result: Result<Value, InvokeFailure>,
    /// False when the instance must be discarded (timed out, exited, failed init).
    pub reusable: bool,
    /// Init time, on the instance's first invocation.
    pub init: Option<Duration>,
    pub duration: Duration,
}

impl Instance {
    /// Starts `bootstrap` from the function's code with the environment Lambda gives it.
    pub async fn start(function: &FunctionRecord, launch: &Launch) -> std::io::Result<Instance> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address: SocketAddr = listener.local_addr()?;
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::default());
        let state = EndpointState { shared: shared.clone(), queue: Arc::new(tokio::sync::Mutex::new(receiver)) };
        let app = Router::new()
            .route(&format!("{PREFIX}/invocation/next"), get(next))
            .route(&format!("{PREFIX}/invocation/{{id}}/response"), post(response))
            .route(&format!("{PREFIX}/invocation/{{id}}/error"), post(error))
            .route(&format!("{PREFIX}/init/error"), post(init_error))
            .with_state(state);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let id = uuid::Uuid::new_v4().simple().to_string();
        let log_group = format!("/aws/lambda/{}", function.name);
        let log_stream = format!("{}/[$LATEST]{id}", super::model::log_date());
        let [key, secret, token] = launch.credentials.clone();
        let mut command = tokio::process::Command::new(function.code.root.join("bootstrap"));
        command
            .env_clear()
            .current_dir(&function.code.root)
            .envs(&function.environment)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LAMBDA_TASK_ROOT", &function.code.root)
            .env("LAMBDA_RUNTIME_DIR", &function.code.root)
            .env("_HANDLER", &function.handler)
            .env("TZ", ":UTC")
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &function.name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", function.memory_size.to_string())
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", &log_group)
            .env("AWS_LAMBDA_LOG_STREAM_NAME", &log_stream)
            .env("AWS_REGION", &launch.region)
            .env("AWS_DEFAULT_REGION", &launch.region)
            .env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_SESSION_TOKEN", token)
            .env("AWS_ENDPOINT_URL", &launch.endpoint_url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = command.spawn()?;
        for output in [child.stdout.take().map(boxed), child.stderr.take().map(boxed)].into_iter().flatten() {
            let logs = launch.logs.clone();
            let (group, stream) = (log_group.clone(), log_stream.clone());
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(output).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    logs.write(LogLine::now(&group, &stream, line));
                }
            });
        }
        Ok(Instance {
            id,
            revision: function.revision,
            started,
            last_used: started,
            invocations: 0,
            peak_mb: None,
            child,
            sender,
            shared,
            server,
            log_stream,
            log_group,
            logs: launch.logs.clone(),
        })
    }

    /// Runs one invocation; the instance is killed when the function's
    /// timeout passes first (the invocation failed, as on Lambda).
    pub async fn run(&mut self, function: &FunctionRecord, payload: Value) -> Ran {
        let request_id = uuid::Uuid::new_v4().to_string();
        let timeout = Duration::from_secs(u64::try_from(function.timeout_seconds.max(1)).unwrap_or(3));
        let first = self.invocations == 0;
        self.invocations += 1;
        let began = Instant::now();
        let deadline_ms =
            SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() + timeout.as_millis();
        self.log(format!("START RequestId: {request_id} Version: $LATEST"));
        let (answer, answered) = oneshot::channel();
        if let Ok(mut current) = self.shared.current.lock() {
            *current = Some((request_id.clone(), answer));
        }
        if let Some(message) = self.shared.init_error.lock().ok().and_then(|e| e.clone()) {
            return self.finish(&request_id, began, first, Err(InvokeFailure::Init(message)), false);
        }
        let pending = Pending { id: request_id.clone(), payload, deadline_ms, function_arn: function.arn.clone() };
        if self.sender.send(pending).is_err() {
            return self.finish(&request_id, began, first, Err(InvokeFailure::Init("runtime API gone".into())), false);
        }
        let (result, reusable) = tokio::select! {
            answer = answered => match answer {
                Ok(Err(InvokeFailure::Init(message))) => (Err(InvokeFailure::Init(message)), false),
                Ok(result) => (result, true),
                Err(_) => (Err(InvokeFailure::Init("the runtime answered nothing".into())), false),
            },
            status = self.child.wait() => {
                let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                let message = format!("RequestId: {request_id} Error: Runtime exited with error: {status}");
                (Err(InvokeFailure::Function { error: serde_json::json!({"errorType": "Runtime.ExitError", "errorMessage": message}) }), false)
            }
            () = tokio::time::sleep(timeout) => {
                self.peak_mb = peak_rss_mb(self.child.id()).or(self.peak_mb);
                // Killed and reaped here, before the caller hears of the
                // timeout: a process merely signalled lingers (a zombie
                // until tokio's orphan reaper sees a SIGCHLD).
                let _ = self.child.start_kill();
                let _ = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
                (Err(InvokeFailure::Timeout(timeout)), false)
            }
        };
        self.finish(&request_id, began, first, result, reusable)
    }

    fn finish(
        &mut self,
        request_id: &str,
        began: Instant,
        first: bool,
        result: Result<Value, InvokeFailure>,
        reusable: bool,
    ) -> Ran {
        let duration = began.elapsed();
        self.last_used = Instant::now();
        let init = if first {
            self.shared.ready_at.lock().ok().and_then(|r| *r).map(|ready| ready.saturating_duration_since(self.started))
        } else {
            None
        };
        if let Err(InvokeFailure::Timeout(limit)) = &result {
            self.log(format!(
                "{} Task timed out after {:.2} seconds",
                super::model::timestamp_now(),
                limit.as_secs_f64()
            ));
        }
        self.log(format!("END RequestId: {request_id}"));
        // A process gone (timed out, exited) reports what was last seen of it.
        let memory = peak_rss_mb(self.child.id()).or(self.peak_mb);
        self.peak_mb = memory;
        let init_text =
            init.map(|i| format!("\tInit Duration: {:.2} ms", i.as_secs_f64() * 1000.0)).unwrap_or_default();
        self.log(format!(
            "REPORT RequestId: {request_id}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMax Memory Used: {} MB{init_text}",
            duration.as_secs_f64() * 1000.0,
            duration.as_millis().max(1),
            memory.unwrap_or(0),
        ));
        Ran { result, reusable: reusable && self.running(), init, duration }
    }

    fn log(&self, message: String) {
        self.logs.write(LogLine::now(&self.log_group, &self.log_stream, message));
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The process id (tests kill instances mid-batch with it).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

fn boxed<R: tokio::io::AsyncRead + Send + Unpin + 'static>(reader: R) -> Box<dyn tokio::io::AsyncRead + Send + Unpin> {
    Box::new(reader)
}

/// Peak resident memory of a process in MB (`VmHWM`), on Linux.
fn peak_rss_mb(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib.div_ceil(1024))
}

async fn next(State(state): State<EndpointState>) -> impl IntoResponse {
    if let Ok(mut ready) = state.shared.ready_at.lock() {
        ready.get_or_insert_with(Instant::now);
    }
    let pending = state.queue.lock().await.recv().await;
    let Some(pending) = pending else {
        return (StatusCode::GONE, HeaderMap::new(), String::new());
    };
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", pending.id);
    set("lambda-runtime-deadline-ms", pending.deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", pending.function_arn);
    set("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0".into());
    set("content-type", "application/json".into());
    (StatusCode::OK, headers, pending.payload.to_string())
}

fn answer(state: &EndpointState, id: &str, result: Result<Value, InvokeFailure>) -> StatusCode {
    let Ok(mut current) = state.shared.current.lock() else { return StatusCode::INTERNAL_SERVER_ERROR };
    match current.take() {
        Some((expected, sender)) if expected == id => {
            let _ = sender.send(result);
            StatusCode::ACCEPTED
        }
        other => {
            *current = other;
            StatusCode::BAD_REQUEST
        }
    }
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string()))
}

async fn response(State(state): State<EndpointState>, UrlPath(id): UrlPath<String>, body: String) -> StatusCode {
    answer(&state, &id, Ok(parse(&body)))
}

async fn error(State(state): State<EndpointState>, UrlPath(id): UrlPath<String>, body: String) -> StatusCode {
    answer(&state, &id, Err(InvokeFailure::Function { error: parse(&body) }))
}

async fn init_error(State(state): State<EndpointState>, body: String) -> StatusCode {
    let message = parse(&body).to_string();
    if let Ok(mut slot) = state.shared.init_error.lock() {
        *slot = Some(message.clone());
    }
    if let Some((_, sender)) = state.shared.current.lock().ok().and_then(|mut c| c.take()) {
        let _ = sender.send(Err(InvokeFailure::Init(message)));
    }
    StatusCode::ACCEPTED
}

/// Instances of one function: idle ones kept warm, busy ones counted against
/// the concurrency limit.
#[derive(Default)]
pub struct Pool {
    pub idle: Vec<Instance>,
    pub busy: usize,
    /// Pids of instances now running an invocation (tests kill them).
    pub busy_pids: HashMap<String, u32>,
}
