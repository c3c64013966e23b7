//! The local Lambda service: the Lambda API the deployer calls ([`api`]),
//! the uploaded code, running instances ([`instances`]), function URLs
//! ([`urls`]) and the functions' logs ([`logs`]).
pub mod api;
pub mod instances;
pub mod logs;
pub mod model;
pub mod urls;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::iam::Access;
use crate::mappings::{MappingConfig, Mappings};
use crate::{InvokeFailure, Invoker};
use instances::{Instance, Launch, Pool};
use logs::LogSink;
use model::FunctionRecord;

/// Who a function instance is: the credentials naming its role, and back.
pub trait Identities: Send + Sync + 'static {
    /// `[access key id, secret access key, session token]` for the role.
    fn credentials_for(&self, role_arn: &str) -> [String; 3];
    fn role_for_access_key(&self, access_key_id: &str) -> Option<String>;
}

/// How the service runs.
#[derive(Debug, Clone)]
pub struct LambdaOptions {
    pub region: String,
    pub account: String,
    /// Uploaded code is unpacked under `<work_dir>/code/<sha>/`.
    pub work_dir: PathBuf,
    /// `AWS_ENDPOINT_URL` of every function (the IAM-checking proxy; see
    /// [`LambdaService::set_function_endpoint`]).
    pub function_endpoint_url: String,
    /// Instances per function without reserved concurrency.
    pub max_instances: usize,
    /// An idle instance is stopped after this long.
    pub keep_warm: Duration,
}

/// Invocations measured per function, the most recent kept.
const STATS_KEPT: usize = 10_000;

/// One invocation as measured (for `reventless emulate`'s benchmarks).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InvocationStat {
    /// The process was started for it: `init` is its start-up time.
    pub cold: bool,
    pub init: Option<Duration>,
    pub duration: Duration,
    pub ok: bool,
}

pub(crate) struct Inner {
    options: LambdaOptions,
    function_endpoint: Mutex<String>,
    functions: Mutex<BTreeMap<String, FunctionRecord>>,
    pools: Mutex<HashMap<String, Pool>>,
    freed: tokio::sync::Notify,
    mapping_configs: Mutex<BTreeMap<String, MappingConfig>>,
    mappings: OnceLock<Arc<Mappings>>,
    identities: Arc<dyn Identities>,
    access: Arc<dyn Access>,
    /// moto's SQS: what mapping validation reads of a queue (its visibility timeout).
    sqs: aws_sdk_sqs::Client,
    /// moto's IAM: whether Lambda may assume a function's role (its trust policy).
    iam: aws_sdk_iam::Client,
    logs: LogSink,
    url_servers: Mutex<HashMap<String, (SocketAddr, tokio::task::JoinHandle<()>)>>,
    stats: Mutex<HashMap<String, std::collections::VecDeque<InvocationStat>>>,
    next_revision: std::sync::atomic::AtomicU64,
}

/// The running service; dropping it stops its servers and instances.
pub struct LambdaService {
    inner: Arc<Inner>,
    address: SocketAddr,
    server: tokio::task::JoinHandle<()>,
    reaper: tokio::task::JoinHandle<()>,
}

impl Drop for LambdaService {
    fn drop(&mut self) {
        self.server.abort();
        self.reaper.abort();
        self.inner.stop_all();
    }
}

impl LambdaService {
    /// Serves the Lambda API on a free loopback port.
    pub async fn start(
        options: LambdaOptions,
        moto: &aws_config::SdkConfig,
        identities: Arc<dyn Identities>,
        access: Arc<dyn Access>,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(options.work_dir.join("code"))?;
        let logs = LogSink::start(moto, access.clone(), &options.region, &options.account);
        let inner = Arc::new(Inner {
            function_endpoint: Mutex::new(options.function_endpoint_url.clone()),
            options,
            functions: Mutex::default(),
            pools: Mutex::default(),
            freed: tokio::sync::Notify::new(),
            mapping_configs: Mutex::default(),
            mappings: OnceLock::new(),
            identities,
            access,
            sqs: aws_sdk_sqs::Client::new(moto),
            iam: aws_sdk_iam::Client::new(moto),
            logs,
            url_servers: Mutex::default(),
            stats: Mutex::default(),
            next_revision: std::sync::atomic::AtomicU64::new(1),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let app = api::router(inner.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let reaper = tokio::spawn(reap(Arc::downgrade(&inner)));
        Ok(Self { inner, address, server, reaper })
    }

    /// `AWS_ENDPOINT_URL_LAMBDA` for the deployer (and the proxy's target).
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Where instances started from now on send their AWS requests.
    pub fn set_function_endpoint(&self, url: &str) {
        if let Ok(mut endpoint) = self.inner.function_endpoint.lock() {
            *endpoint = url.to_string();
        }
    }

    /// The service as an [`Invoker`] (what mappings and the scheduler call).
    pub fn invoker(&self) -> Arc<dyn Invoker> {
        self.inner.clone()
    }

    /// Hands mapping configurations to their drivers from now on (those
    /// created before are started at once).
    pub fn attach_mappings(&self, mappings: Arc<Mappings>) {
        if self.inner.mappings.set(mappings.clone()).is_ok() {
            let configs: Vec<MappingConfig> =
                self.inner.mapping_configs.lock().map(|m| m.values().cloned().collect()).unwrap_or_default();
            for config in configs {
                mappings.put(config);
            }
        }
    }

    /// Pids of the instances of `function` now running an invocation.
    pub fn busy_pids(&self, function: &str) -> Vec<u32> {
        self.inner
            .pools
            .lock()
            .map(|p| p.get(function).map(|p| p.busy_pids.values().copied().collect()).unwrap_or_default())
            .unwrap_or_default()
    }

    /// Invocations measured so far, per function name.
    pub fn stats(&self) -> HashMap<String, Vec<InvocationStat>> {
        self.inner
            .stats
            .lock()
            .map(|s| s.iter().map(|(name, kept)| (name.clone(), kept.iter().copied().collect())).collect())
            .unwrap_or_default()
    }

    /// The last lines a function wrote (its log group's recent output).
    pub fn recent_output(&self, function: &str) -> Vec<String> {
        self.inner.logs.recent(&format!("/aws/lambda/{function}"))
    }

    /// Function names with their URL, for what `emulate` prints.
    pub fn function_urls(&self) -> BTreeMap<String, String> {
        self.inner
            .functions
            .lock()
            .map(|f| f.values().filter_map(|f| f.url.as_ref().map(|u| (f.name.clone(), u.url.clone()))).collect())
            .unwrap_or_default()
    }

    /// Stops every instance (they start again on the next invocation).
    pub fn stop_instances(&self) {
        self.inner.stop_all();
    }
}

/// Stops instances idle for longer than `keep_warm`.
async fn reap(inner: std::sync::Weak<Inner>) {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let Some(inner) = inner.upgrade() else { return };
        let keep = inner.options.keep_warm;
        if let Ok(mut pools) = inner.pools.lock() {
            for pool in pools.values_mut() {
                pool.idle.retain(|instance| instance.last_used.elapsed() < keep);
            }
        }
    }
}

impl Inner {
    fn stop_all(&self) {
        if let Ok(mut pools) = self.pools.lock() {
            for pool in pools.values_mut() {
                pool.idle.clear();
            }
        }
    }

    pub(crate) fn function(&self, name: &str) -> Option<FunctionRecord> {
        self.functions.lock().ok()?.get(name).cloned()
    }

    fn revision(&self) -> u64 {
        self.next_revision.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Takes an idle instance or the right to start one; waits while the
    /// function is at its limit, unless `throttle` and the limit is the
    /// function's reserved concurrency (then: `Throttled`, as on Lambda).
    /// Past `max_instances` (our machine's limit, not Lambda's) it waits.
    async fn acquire(&self, function: &FunctionRecord, throttle: bool) -> Result<Option<Instance>, InvokeFailure> {
        let limit = match function.reserved_concurrency {
            Some(reserved) => usize::try_from(reserved).unwrap_or(0),
            None => self.options.max_instances,
        };
        let throttle = throttle && function.reserved_concurrency.is_some();
        loop {
            let freed = self.freed.notified();
            {
                let mut pools = self.pools.lock().map_err(|_| InvokeFailure::Init("instance pool poisoned".into()))?;
                let pool = pools.entry(function.name.clone()).or_default();
                pool.idle.retain_mut(|i| i.revision == function.revision && i.running());
                if pool.busy < limit {
                    pool.busy += 1;
                    return Ok(pool.idle.pop());
                }
            }
            if throttle || limit == 0 {
                return Err(InvokeFailure::Throttled);
            }
            freed.await;
        }
    }

    fn release(&self, name: &str, instance: Option<Instance>) {
        // An instance of a function deleted or changed meanwhile is stopped
        // now, not kept warm (nothing would take it again).
        let current = self.function(name).map(|f| f.revision);
        let instance = instance.filter(|i| current == Some(i.revision));
        if let Ok(mut pools) = self.pools.lock() {
            let pool = pools.entry(name.to_string()).or_default();
            pool.busy = pool.busy.saturating_sub(1);
            if let Some(instance) = instance {
                pool.busy_pids.remove(&instance.id);
                pool.idle.push(instance);
            }
        }
        self.freed.notify_waiters();
    }

    pub(crate) async fn run(&self, name: &str, payload: Value, throttle: bool) -> Result<Value, InvokeFailure> {
        let function = self.function(name).ok_or_else(|| InvokeFailure::NotFound(name.to_string()))?;
        let reused = self.acquire(&function, throttle).await?;
        let cold = reused.is_none();
        let mut instance = match reused {
            Some(instance) => instance,
            None => {
                let credentials = self.identities.credentials_for(&function.role);
                let launch = Launch {
                    endpoint_url: self.function_endpoint.lock().map(|e| e.clone()).unwrap_or_default(),
                    credentials,
                    region: self.options.region.clone(),
                    logs: self.logs.clone(),
                };
                self.logs.register(&format!("/aws/lambda/{name}"), &function.role);
                match Instance::start(&function, &launch).await {
                    Ok(instance) => instance,
                    Err(error) => {
                        self.release(name, None);
                        return Err(InvokeFailure::Init(format!("cannot start bootstrap: {error}")));
                    }
                }
            }
        };
        if let (Ok(mut pools), Some(pid)) = (self.pools.lock(), instance.pid()) {
            pools.entry(name.to_string()).or_default().busy_pids.insert(instance.id.clone(), pid);
        }
        let began = Instant::now();
        let ran = instance.run(&function, payload).await;
        if let Ok(mut pools) = self.pools.lock() {
            pools.entry(name.to_string()).or_default().busy_pids.remove(&instance.id);
        }
        if let Ok(mut stats) = self.stats.lock() {
            let stat = InvocationStat {
                cold,
                init: ran.init,
                duration: if cold { began.elapsed() } else { ran.duration },
                ok: ran.result.is_ok(),
            };
            let kept = stats.entry(name.to_string()).or_default();
            // A long `emulate` session invokes without end: keep the recent ones.
            if kept.len() == STATS_KEPT {
                kept.pop_front();
            }
            kept.push_back(stat);
        }
        self.release(name, ran.reusable.then_some(instance));
        ran.result
    }
}

#[async_trait::async_trait]
impl Invoker for Inner {
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, InvokeFailure> {
        self.run(function, payload, false).await
    }

    fn role_of(&self, function: &str) -> Option<String> {
        self.function(function).map(|f| f.role)
    }
}

/// `name`, `arn:aws:lambda:…:function:name[:qualifier]` or `name:qualifier` → the name.
pub fn function_name(reference: &str) -> &str {
    let name = match reference.find("function:") {
        Some(at) if reference.starts_with("arn:") => &reference[at + "function:".len()..],
        _ => reference,
    };
    name.split(':').next().unwrap_or(name)
}
