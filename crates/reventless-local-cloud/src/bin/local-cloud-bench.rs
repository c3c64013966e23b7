//! What a user of `reventless emulate` waits for, measured inside the local
//! cloud, each line with its physical reference measured in the same run:
//!
//! 1. Cold and warm invocation of every deployed function through the local
//!    Lambda service's `Invoke` API (client wall time), against the minimal
//!    `lambda_runtime` echo (`echo-lambda`, same profile) deployed beside it.
//! 2. A mutation through the gateway until its effect is visible in another
//!    plugin (`Catalog_AddProduct` → `Ordering_AvailableProduct`), against
//!    the emulator's floor for one hop of that path: a DynamoDB `PutItem` seen
//!    on the table's stream (polled as the stream driver polls) and then an
//!    SQS FIFO message received by a long poll (as the queue driver receives).
//!
//! Any failed operation ends the run with a non-zero exit.
//!
//! `local-cloud-bench [--config examples/online-shop/reventless.toml] [--release | --bootstrap-dir DIR]
//!  [--echo PATH] [--samples 30] [--warm 30] [--cold 5] [--json]`
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType,
};
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use base64::Engine;
use clap::Parser;
use reventless_aws::deploy::config::ProjectConfig;
use reventless_aws::deploy::inputs::Bootstraps;
use reventless_aws::deploy::plan::gateway_function;
use reventless_local_cloud::stage::{build_native, deploy};
use reventless_local_cloud::{ACCOUNT, CloudOptions, LocalCloud};
use serde_json::{Value, json};
use tokio::sync::mpsc;

#[derive(Debug, Parser)]
#[command(about = "Benchmarks of the local cloud behind `reventless emulate`")]
struct Args {
    /// The project file.
    #[arg(long, default_value = "examples/online-shop/reventless.toml")]
    config: PathBuf,
    /// The stage to deploy (added to the project file's stages when missing).
    #[arg(long, default_value = "bench")]
    stage: String,
    /// Build the binaries (plugins and echo) with the release profile.
    #[arg(long)]
    release: bool,
    /// Use plugin binaries already built in this directory (`<dir>/<bin>`).
    #[arg(long)]
    bootstrap_dir: Option<PathBuf>,
    /// The echo reference binary (default: built with cargo, same profile).
    #[arg(long)]
    echo: Option<PathBuf>,
    /// Mutation → visible samples (and reference chain samples).
    #[arg(long, default_value_t = 30)]
    samples: usize,
    /// Warm invocations per function.
    #[arg(long, default_value_t = 30)]
    warm: usize,
    /// Cold invocations per function (each after stopping every instance).
    #[arg(long, default_value_t = 5)]
    cold: usize,
    /// An emulator already running (default: start moto).
    #[arg(long)]
    endpoint_url: Option<String>,
    /// One JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

type Failure = String;

/// One measured line: its samples (ms) and its reference's.
struct Line {
    name: String,
    what: String,
    samples: Vec<f64>,
    reference: String,
    reference_samples: Vec<f64>,
}

impl Line {
    fn json(&self) -> Value {
        let (p50, p99) = (percentile(&self.samples, 50.0), percentile(&self.samples, 99.0));
        let (r50, r99) = (percentile(&self.reference_samples, 50.0), percentile(&self.reference_samples, 99.0));
        json!({
            "name": self.name, "what": self.what, "samples": self.samples.len(),
            "p50Ms": round(p50), "p99Ms": round(p99), "minMs": round(min(&self.samples)),
            "reference": self.reference, "referenceP50Ms": round(r50), "referenceP99Ms": round(r99),
            "ratioP50": round(p50 / r50), "ratioP99": round(p99 / r99),
        })
    }
}

fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

/// Nearest-rank percentile (p99 of 30 samples is the largest).
fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// An untimed pause of 0–300 ms before a sample, so that it meets the
/// pollers (250 ms idle pause) at any phase instead of always just after
/// their previous read (back-to-back samples would each wait a full pause).
async fn random_pause() {
    let jitter = uuid::Uuid::new_v4().as_u128() % 300;
    tokio::time::sleep(Duration::from_millis(u64::try_from(jitter).unwrap_or(0))).await;
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("local-cloud-bench failed: {failure}");
            ExitCode::FAILURE
        }
    }
}

/// Progress on stderr, with the seconds since the start (where startup time goes).
fn progress(line: String) {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let start = START.get_or_init(Instant::now);
    eprintln!("[{:7.2} s] {line}", start.elapsed().as_secs_f64());
}

/// The 1-minute load average (others' work on the machine shows here).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

async fn run(args: &Args) -> Result<(), Failure> {
    if args.samples == 0 || args.warm == 0 || args.cold == 0 {
        return Err("--samples, --warm and --cold take at least 1".into());
    }
    progress(format!("load average at the start: {}", load_average()));
    let config = load_config(&args.config, &args.stage)?;
    let profile = match (&args.bootstrap_dir, args.release) {
        (Some(_), _) => "given (--bootstrap-dir)",
        (None, true) => "release",
        (None, false) => "dev",
    };
    let built = Instant::now();
    let bootstraps = match &args.bootstrap_dir {
        Some(dir) => Bootstraps::Dir(dir.clone()),
        None => Bootstraps::Paths(build_native(&config, args.release, &progress).map_err(|e| e.to_string())?),
    };
    let echo = match &args.echo {
        Some(path) => path.clone(),
        None => build_echo(&config.root, args.release)?,
    };
    let build_seconds = built.elapsed().as_secs_f64();

    let work_dir = std::env::temp_dir().join(format!("local-cloud-bench-{}", uuid::Uuid::new_v4().simple()));
    let result = bench(args, config, &bootstraps, &echo, &work_dir, profile, build_seconds).await;
    let _ = std::fs::remove_dir_all(&work_dir);
    result
}

/// The project file with the stage (appended as an empty stage when the file has none of that name).
fn load_config(path: &Path, stage: &str) -> Result<ProjectConfig, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = if text.contains(&format!("[stages.{stage}]")) { text } else { format!("{text}\n[stages.{stage}]\n") };
    let local_path = path.with_file_name("reventless.local.toml");
    let local = match local_path.exists() {
        true => Some(std::fs::read_to_string(&local_path).map_err(|e| format!("{}: {e}", local_path.display()))?),
        false => None,
    };
    let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
    ProjectConfig::from_texts(&text, local.as_deref(), stage, &|key| std::env::var(key).ok(), root)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// `echo-lambda` of reventless-aws, built with cargo in the project's workspace.
fn build_echo(root: &Path, release: bool) -> Result<PathBuf, Failure> {
    progress(format!("building echo-lambda (cargo build{})", if release { " --release" } else { "" }));
    reventless_local_cloud::stage::cargo_build(root, Some("reventless-aws"), "echo-lambda", release)
        .map_err(|e| format!("building echo-lambda: {e}"))
}

/// The moto version of the python that runs the emulator.
fn moto_version() -> String {
    let python = std::env::var("REVENTLESS_PYTHON").unwrap_or_else(|_| "python3".to_string());
    Command::new(python)
        .args(["-c", "import moto; print(moto.__version__)"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

async fn bench(
    args: &Args,
    config: ProjectConfig,
    bootstraps: &Bootstraps,
    echo: &Path,
    work_dir: &Path,
    profile: &str,
    build_seconds: f64,
) -> Result<(), Failure> {
    let load_at_start = load_average();
    let prefix = format!("{}-{}-", config.project, config.stage);
    let gateway = gateway_function(&config);
    let started = Instant::now();
    let mut options = CloudOptions::new(work_dir.to_path_buf());
    options.endpoint_url = args.endpoint_url.clone();
    let cloud = LocalCloud::start(options).await.map_err(|e| e.to_string())?;
    let cloud_seconds = started.elapsed().as_secs_f64();
    let deploying = Instant::now();
    let deployed = deploy(&cloud, config, bootstraps, &progress).await.map_err(|e| e.to_string())?;
    let deploy_seconds = deploying.elapsed().as_secs_f64();
    let client = reqwest::Client::new();
    let lambda = Lambda { client: client.clone(), url: cloud.lambda_url() };

    // 1. Cold and warm invocations.
    let echo_name = format!("{prefix}bench-echo");
    lambda.create_echo(&echo_name, echo).await?;
    let functions = lambda.functions(&prefix, &gateway, &echo_name).await?;
    if functions.is_empty() {
        return Err(format!("no function named {prefix}* was deployed"));
    }
    progress(format!(
        "invoking {} functions and the echo ({} cold, {} warm each)",
        functions.len(),
        args.cold,
        args.warm
    ));
    let echo_timing = measure_function(&cloud, &lambda, &echo_name, &Kind::Echo, args).await?;
    let mut lines = Vec::new();
    for (name, kind) in &functions {
        let timing = measure_function(&cloud, &lambda, name, kind, args).await?;
        let short = name.strip_prefix(&prefix).unwrap_or(name).to_string();
        lines.push(Line {
            name: format!("invoke/cold/{short}"),
            what: format!(
                "{} (init {:.1} ms p50 as the service measured)",
                kind.label(),
                percentile(&timing.init, 50.0)
            ),
            samples: timing.cold.clone(),
            reference: "echo-lambda cold".into(),
            reference_samples: echo_timing.cold.clone(),
        });
        lines.push(Line {
            name: format!("invoke/warm/{short}"),
            what: kind.label().to_string(),
            samples: timing.warm,
            reference: "echo-lambda warm".into(),
            reference_samples: echo_timing.warm.clone(),
        });
    }
    lines.insert(
        0,
        Line {
            name: "reference/invoke/cold/echo-lambda".into(),
            what: format!("echo (init {:.1} ms p50 as the service measured)", percentile(&echo_timing.init, 50.0)),
            samples: echo_timing.cold.clone(),
            reference: "echo-lambda cold".into(),
            reference_samples: echo_timing.cold.clone(),
        },
    );
    lines.insert(
        1,
        Line {
            name: "reference/invoke/warm/echo-lambda".into(),
            what: "echo".into(),
            samples: echo_timing.warm.clone(),
            reference: "echo-lambda warm".into(),
            reference_samples: echo_timing.warm.clone(),
        },
    );

    // 2. Mutation → visible in another plugin, and the emulator's floor.
    progress(format!("mutation → visible: {} samples (one unmeasured warm-up)", args.samples));
    let shop = Gateway::new(client.clone(), &deployed.graphql_url, &deployed.token_url).await?;
    let (mutations, visible) = shop.mutation_to_visible(args.samples).await?;
    progress(format!("reference chain: {} samples", args.samples));
    let chain = reference_chain(&cloud, args.samples).await?;
    let floor: Vec<f64> = chain.iter().map(|(stream, queue)| stream + queue).collect();
    lines.push(Line {
        name: "reference/putitem→stream→sqs-fifo".into(),
        what: "PutItem seen by a 250 ms idle stream poll, then SendMessage received by a 1 s long poll".into(),
        samples: floor.clone(),
        reference: "itself".into(),
        reference_samples: floor.clone(),
    });
    lines.push(Line {
        name: "reference/putitem→stream".into(),
        what: "the stream hop alone".into(),
        samples: chain.iter().map(|(stream, _)| *stream).collect(),
        reference: "putitem→stream→sqs-fifo".into(),
        reference_samples: floor.clone(),
    });
    lines.push(Line {
        name: "reference/sqs-fifo".into(),
        what: "the queue hop alone".into(),
        samples: chain.iter().map(|(_, queue)| *queue).collect(),
        reference: "putitem→stream→sqs-fifo".into(),
        reference_samples: floor.clone(),
    });
    lines.push(Line {
        name: "mutation/Catalog_AddProduct".into(),
        what: "the mutation through the gateway, until its answer".into(),
        samples: mutations,
        reference: "putitem→stream→sqs-fifo".into(),
        reference_samples: floor.clone(),
    });
    lines.push(Line {
        name: "visible/Ordering_AvailableProduct".into(),
        what: "from the mutation's answer until Ordering answers available=true (10 ms polls)".into(),
        samples: visible,
        reference: "putitem→stream→sqs-fifo".into(),
        reference_samples: floor,
    });

    let settings = json!({
        "machine": format!("{} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)),
        "profile": profile,
        "moto": moto_version(),
        "coldSamples": args.cold, "warmSamples": args.warm, "mutationSamples": args.samples,
        "functions": functions.len(),
        "loadAtStart": load_at_start, "loadAtEnd": load_average(),
        "buildSeconds": round(build_seconds), "cloudStartSeconds": round(cloud_seconds),
        "deploySeconds": round(deploy_seconds),
    });
    cloud.shutdown();
    if args.json {
        let lines: Vec<Value> = lines.iter().map(Line::json).collect();
        println!("{}", json!({"settings": settings, "lines": lines}));
    } else {
        print_table(&settings, &lines);
    }
    Ok(())
}

fn print_table(settings: &Value, lines: &[Line]) {
    println!(
        "settings: machine {} · binaries {} · moto {} · cold {} / warm {} / mutation {} samples · {} functions",
        settings["machine"].as_str().unwrap_or_default(),
        settings["profile"].as_str().unwrap_or_default(),
        settings["moto"].as_str().unwrap_or_default(),
        settings["coldSamples"],
        settings["warmSamples"],
        settings["mutationSamples"],
        settings["functions"],
    );
    println!(
        "startup: build {} s · local cloud {} s · deploy + heartbeats {} s · 1-min load average {} → {}",
        settings["buildSeconds"],
        settings["cloudStartSeconds"],
        settings["deploySeconds"],
        settings["loadAtStart"].as_str().unwrap_or_default(),
        settings["loadAtEnd"].as_str().unwrap_or_default(),
    );
    println!(
        "{:<44} {:>4} {:>10} {:>10} {:>10}  {:<26} {:>9} {:>9} {:>7} {:>7}",
        "name", "n", "p50 ms", "p99 ms", "min ms", "reference", "ref p50", "ref p99", "x p50", "x p99"
    );
    for line in lines {
        let (p50, p99) = (percentile(&line.samples, 50.0), percentile(&line.samples, 99.0));
        let (r50, r99) = (percentile(&line.reference_samples, 50.0), percentile(&line.reference_samples, 99.0));
        println!(
            "{:<44} {:>4} {:>10.2} {:>10.2} {:>10.2}  {:<26} {:>9.2} {:>9.2} {:>7.2} {:>7.2}",
            line.name,
            line.samples.len(),
            p50,
            p99,
            min(&line.samples),
            line.reference,
            r50,
            r99,
            p50 / r50,
            p99 / r99
        );
    }
    for line in lines {
        println!("  {}: {}", line.name, line.what);
    }
}

// ------------------------------------------------------------ invocations

/// What a function is given to answer.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Http,
    Heartbeat,
    Batch,
    Echo,
}

impl Kind {
    fn label(&self) -> &'static str {
        match self {
            Kind::Http => "HTTP GET /health",
            Kind::Heartbeat => "heartbeat",
            Kind::Batch => "empty batch {\"Records\": []}",
            Kind::Echo => "echo",
        }
    }

    fn payload(&self) -> Value {
        match self {
            Kind::Http => json!({
                "version": "2.0", "routeKey": "$default", "rawPath": "/health", "rawQueryString": "",
                "headers": {"host": "localhost"}, "isBase64Encoded": false,
                "requestContext": {
                    "http": {"method": "GET", "path": "/health", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "local-cloud-bench"},
                    "routeKey": "$default", "stage": "$default", "requestId": "bench",
                },
            }),
            Kind::Heartbeat => json!({"reventless": reventless_aws::lambda::HEARTBEAT_EVENT}),
            Kind::Batch => json!({"Records": []}),
            Kind::Echo => json!({"hello": "echo"}),
        }
    }

    /// Whether the answer is the success this payload asks for.
    fn check(&self, answer: &Value) -> Result<(), Failure> {
        let good = match self {
            Kind::Http => answer["statusCode"] == 200,
            Kind::Heartbeat => answer["status"] == "CONNECTED",
            Kind::Batch => answer["batchItemFailures"].as_array().is_some_and(Vec::is_empty),
            Kind::Echo => *answer == self.payload(),
        };
        if good { Ok(()) } else { Err(format!("unexpected answer to {}: {answer}", self.label())) }
    }
}

struct Lambda {
    client: reqwest::Client,
    url: String,
}

impl Lambda {
    /// Deploys the echo as a plain function.
    async fn create_echo(&self, name: &str, binary: &Path) -> Result<(), Failure> {
        let zip = reventless_aws::package::zip_bytes(binary, &[]).map_err(|e| e.to_string())?;
        let request = json!({
            "FunctionName": name,
            "Role": format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
            "Runtime": "provided.al2023",
            "Handler": "bootstrap",
            "MemorySize": 128,
            "Timeout": 30,
            "Code": {"ZipFile": base64::engine::general_purpose::STANDARD.encode(zip)},
        });
        let response = self
            .client
            .post(format!("{}/2015-03-31/functions", self.url))
            .json(&request)
            .send()
            .await
            .map_err(|e| format!("CreateFunction {name}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(format!("CreateFunction {name}: {status} {text}"));
        }
        Ok(())
    }

    /// The stage's functions (name → what to send), from ListFunctions.
    async fn functions(&self, prefix: &str, gateway: &str, echo: &str) -> Result<BTreeMap<String, Kind>, Failure> {
        let response = self
            .client
            .get(format!("{}/2015-03-31/functions", self.url))
            .send()
            .await
            .map_err(|e| format!("ListFunctions: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("ListFunctions: {}", response.status()));
        }
        let listed: Value = response.json().await.map_err(|e| format!("ListFunctions: {e}"))?;
        let mut functions = BTreeMap::new();
        for function in listed["Functions"].as_array().into_iter().flatten() {
            let Some(name) = function["FunctionName"].as_str() else { continue };
            if !name.starts_with(prefix) || name == echo {
                continue;
            }
            let role = function
                .pointer("/Environment/Variables/REVENTLESS_CONFIG")
                .and_then(Value::as_str)
                .and_then(|config| serde_json::from_str::<Value>(config).ok())
                .and_then(|config| config["role"].as_str().map(str::to_string))
                .unwrap_or_default();
            let kind = if name == gateway || role.ends_with("Api") {
                Kind::Http
            } else if role.ends_with("Heartbeat") {
                Kind::Heartbeat
            } else if role.is_empty() {
                return Err(format!("{name} has no REVENTLESS_CONFIG role: what would it answer?"));
            } else {
                Kind::Batch
            };
            functions.insert(name.to_string(), kind);
        }
        Ok(functions)
    }

    /// One synchronous invocation: client wall time; fails on any error.
    async fn invoke(&self, name: &str, kind: &Kind) -> Result<f64, Failure> {
        let began = Instant::now();
        let response = self
            .client
            .post(format!("{}/2015-03-31/functions/{name}/invocations", self.url))
            .json(&kind.payload())
            .send()
            .await
            .map_err(|e| format!("Invoke {name}: {e}"))?;
        let status = response.status();
        let function_error = response.headers().get("x-amz-function-error").cloned();
        let body = response.bytes().await.map_err(|e| format!("Invoke {name}: {e}"))?;
        let elapsed = millis(began.elapsed());
        let text = String::from_utf8_lossy(&body);
        if !status.is_success() {
            return Err(format!("Invoke {name}: {status} {text}"));
        }
        if let Some(error) = function_error {
            return Err(format!("Invoke {name}: function error {error:?}: {text}"));
        }
        let answer: Value = serde_json::from_slice(&body).map_err(|e| format!("Invoke {name}: {e}: {text}"))?;
        kind.check(&answer).map_err(|e| format!("{name}: {e}"))?;
        Ok(elapsed)
    }
}

struct Timing {
    cold: Vec<f64>,
    init: Vec<f64>,
    warm: Vec<f64>,
}

/// The service's invocations of `name` recorded so far.
fn recorded(cloud: &LocalCloud, name: &str) -> Vec<reventless_local_cloud::lambda::InvocationStat> {
    cloud.lambda.stats().remove(name).unwrap_or_default()
}

/// Cold: after stopping every instance, the first invocation (kept only when
/// the service says it started the process for it — a heartbeat or a mapping
/// could have used the instance first); warm: the invocations after it
/// (kept only when no process was started meanwhile).
async fn measure_function(
    cloud: &LocalCloud,
    lambda: &Lambda,
    name: &str,
    kind: &Kind,
    args: &Args,
) -> Result<Timing, Failure> {
    let mut timing = Timing { cold: Vec::new(), init: Vec::new(), warm: Vec::new() };
    let mut discarded = 0;
    while timing.cold.len() < args.cold {
        cloud.lambda.stop_instances();
        let before = recorded(cloud, name).len();
        let elapsed = lambda.invoke(name, kind).await?;
        let new: Vec<_> = recorded(cloud, name).into_iter().skip(before).collect();
        match new.as_slice() {
            [stat] if stat.cold => {
                timing.cold.push(elapsed);
                timing.init.push(stat.init.map_or(f64::NAN, millis));
            }
            _ => discarded += 1,
        }
        if discarded > 3 * args.cold {
            return Err(format!("{name}: cold invocations keep meeting other invocations ({discarded} discarded)"));
        }
    }
    while timing.warm.len() < args.warm {
        let before = recorded(cloud, name).len();
        let elapsed = lambda.invoke(name, kind).await?;
        let new: Vec<_> = recorded(cloud, name).into_iter().skip(before).collect();
        if new.iter().any(|stat| stat.cold) {
            discarded += 1;
            if discarded > 3 * args.warm {
                return Err(format!("{name}: warm invocations keep starting processes ({discarded} discarded)"));
            }
            continue;
        }
        timing.warm.push(elapsed);
    }
    if discarded > 0 {
        progress(format!("{name}: {discarded} sample(s) discarded (another invocation ran meanwhile)"));
    }
    Ok(timing)
}

// ------------------------------------------------------------ the gateway

struct Gateway {
    client: reqwest::Client,
    graphql_url: String,
    merchandiser: String,
    customer: String,
    run: String,
}

impl Gateway {
    async fn new(client: reqwest::Client, graphql_url: &str, token_url: &str) -> Result<Self, Failure> {
        let token = |sub: &'static str, groups: &'static [&'static str]| {
            let client = client.clone();
            async move {
                let response = client
                    .post(token_url)
                    .json(&json!({"sub": sub, "groups": groups}))
                    .send()
                    .await
                    .map_err(|e| format!("token: {e}"))?;
                if !response.status().is_success() {
                    return Err(format!("token: {}", response.status()));
                }
                let answer: Value = response.json().await.map_err(|e| format!("token: {e}"))?;
                answer["token"].as_str().map(str::to_string).ok_or_else(|| format!("token: no token in {answer}"))
            }
        };
        let merchandiser = token("bench-merchandiser", &["Merchandiser"]).await?;
        let customer = token("bench-customer", &[]).await?;
        let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
        Ok(Self { client, graphql_url: graphql_url.to_string(), merchandiser, customer, run })
    }

    /// A GraphQL request that must succeed: its data.
    async fn gql(&self, token: &str, query: &str) -> Result<Value, Failure> {
        let response = self
            .client
            .post(&self.graphql_url)
            .bearer_auth(token)
            .json(&json!({"query": query}))
            .send()
            .await
            .map_err(|e| format!("{query}: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| format!("{query}: {e}"))?;
        let body: Value = serde_json::from_str(&text).map_err(|_| format!("{query}: {status} {text}"))?;
        if !status.is_success() || !body["errors"].is_null() {
            return Err(format!("{query}: {status} {body}"));
        }
        Ok(body["data"].clone())
    }

    async fn accepted(&self, query: &str, field: &str) -> Result<(), Failure> {
        let data = self.gql(&self.merchandiser, query).await?;
        if data[field]["status"] != "ACCEPTED" {
            return Err(format!("{query}: {data}"));
        }
        Ok(())
    }

    /// Per sample: the mutation's time until its answer, and from the answer
    /// until Ordering shows the product (ms); the first product is a warm-up.
    /// Each sample starts after an untimed [`random_pause`].
    async fn mutation_to_visible(&self, samples: usize) -> Result<(Vec<f64>, Vec<f64>), Failure> {
        let category = format!("bench{}", self.run);
        self.accepted(
            &format!(r#"mutation {{ Catalog_AddCategory(categoryId: "{category}", name: "Bench") {{ status }} }}"#),
            "Catalog_AddCategory",
        )
        .await?;
        let (mut mutations, mut visible) = (Vec::new(), Vec::new());
        for sample in 0..=samples {
            let id = format!("{}-{sample:03}", self.run);
            let mutation = format!(
                r#"mutation {{ Catalog_AddProduct(productId: "{id}", name: "{id}", description: "", priceCents: 100, currency: "EUR", categoryId: "{category}") {{ status }} }}"#
            );
            let query = format!(r#"{{ Ordering_AvailableProduct(id: "{id}") {{ available }} }}"#);
            random_pause().await;
            let sent = Instant::now();
            self.accepted(&mutation, "Catalog_AddProduct").await?;
            let answered = Instant::now();
            let deadline = answered + Duration::from_secs(60);
            loop {
                let data = self.gql(&self.customer, &query).await?;
                if data["Ordering_AvailableProduct"]["available"] == true {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!("{id} not visible in Ordering after 60 s; last answer {data}"));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if sample > 0 {
                mutations.push(millis(answered - sent));
                visible.push(millis(answered.elapsed()));
            }
        }
        Ok((mutations, visible))
    }
}

// ------------------------------------------------------------ the emulator's floor

/// PutItem → seen on the stream (a poller reading every shard, 250 ms idle
/// pause as the stream driver) → SendMessage to a FIFO queue → received by a
/// long poll (1 s, as the queue driver): (stream ms, queue ms) per sample,
/// the first a warm-up, each after an untimed [`random_pause`].
async fn reference_chain(cloud: &LocalCloud, samples: usize) -> Result<Vec<(f64, f64)>, Failure> {
    let dynamodb = aws_sdk_dynamodb::Client::new(&cloud.sdk);
    let streams = aws_sdk_dynamodbstreams::Client::new(&cloud.sdk);
    let sqs = aws_sdk_sqs::Client::new(&cloud.sdk);
    let name = format!("bench-reference-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let created = dynamodb
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| e.to_string())?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .map_err(|e| e.to_string())?,
        )
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .map_err(|e| e.to_string())?,
        )
        .send()
        .await
        .map_err(|e| format!("CreateTable {name}: {}", aws_sdk_dynamodb::error::DisplayErrorContext(&e)))?;
    let stream_arn = created
        .table_description()
        .and_then(|t| t.latest_stream_arn())
        .ok_or_else(|| format!("{name} has no stream"))?
        .to_string();
    let queue = sqs
        .create_queue()
        .queue_name(format!("{name}.fifo"))
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .map_err(|e| format!("CreateQueue: {}", aws_sdk_sqs::error::DisplayErrorContext(&e)))?
        .queue_url()
        .ok_or("CreateQueue answered no URL")?
        .to_string();

    // The stream poller: LATEST iterators on every shard, then GetRecords.
    let description = streams
        .describe_stream()
        .stream_arn(&stream_arn)
        .send()
        .await
        .map_err(|e| format!("DescribeStream: {}", aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e)))?;
    let mut iterators = Vec::new();
    for shard in description.stream_description().map(|d| d.shards()).unwrap_or_default() {
        let Some(shard_id) = shard.shard_id() else { continue };
        let iterator = streams
            .get_shard_iterator()
            .stream_arn(&stream_arn)
            .shard_id(shard_id)
            .shard_iterator_type(ShardIteratorType::Latest)
            .send()
            .await
            .map_err(|e| format!("GetShardIterator: {}", aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e)))?
            .shard_iterator()
            .ok_or("GetShardIterator answered no iterator")?
            .to_string();
        iterators.push(iterator);
    }
    if iterators.is_empty() {
        return Err(format!("the stream of {name} has no shard"));
    }
    let (seen_tx, mut seen) = mpsc::unbounded_channel::<Result<String, Failure>>();
    let stream_poller = tokio::spawn(async move {
        loop {
            let mut read = false;
            for iterator in &mut iterators {
                match streams.get_records().shard_iterator(iterator.clone()).send().await {
                    Ok(output) => {
                        for record in output.records() {
                            read = true;
                            let id = record
                                .dynamodb()
                                .and_then(|d| d.new_image())
                                .and_then(|image| image.get("id"))
                                .and_then(|id| id.as_s().ok())
                                .cloned()
                                .unwrap_or_default();
                            let _ = seen_tx.send(Ok(id));
                        }
                        if let Some(next) = output.next_shard_iterator() {
                            *iterator = next.to_string();
                        }
                    }
                    Err(e) => {
                        let _ = seen_tx.send(Err(format!(
                            "GetRecords: {}",
                            aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e)
                        )));
                        return;
                    }
                }
            }
            if !read {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    });
    // The queue receiver: long polls of 1 s, deleting what it receives.
    let (received_tx, mut received) = mpsc::unbounded_channel::<Result<String, Failure>>();
    let receiver = {
        let (sqs, queue) = (sqs.clone(), queue.clone());
        tokio::spawn(async move {
            loop {
                match sqs
                    .receive_message()
                    .queue_url(&queue)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .send()
                    .await
                {
                    Ok(output) => {
                        for message in output.messages() {
                            // Received is what is timed; the delete follows (as the driver's, after the handler).
                            let _ = received_tx.send(Ok(message.body().unwrap_or_default().to_string()));
                            let Some(handle) = message.receipt_handle() else { continue };
                            if let Err(e) = sqs.delete_message().queue_url(&queue).receipt_handle(handle).send().await {
                                let _ = received_tx.send(Err(format!(
                                    "DeleteMessage: {}",
                                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                                )));
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        let _ = received_tx
                            .send(Err(format!("ReceiveMessage: {}", aws_sdk_sqs::error::DisplayErrorContext(&e))));
                        return;
                    }
                }
            }
        })
    };

    let result = async {
        let mut chain = Vec::new();
        for sample in 0..=samples {
            let id = format!("r{sample:03}");
            random_pause().await;
            let began = Instant::now();
            dynamodb
                .put_item()
                .table_name(&name)
                .item("id", AttributeValue::S(id.clone()))
                .item("data", AttributeValue::S("x".repeat(100)))
                .send()
                .await
                .map_err(|e| format!("PutItem: {}", aws_sdk_dynamodb::error::DisplayErrorContext(&e)))?;
            wait_for(&mut seen, &id, "the stream record").await?;
            let streamed = Instant::now();
            sqs.send_message()
                .queue_url(&queue)
                .message_body(&id)
                .message_group_id("bench")
                .message_deduplication_id(&id)
                .send()
                .await
                .map_err(|e| format!("SendMessage: {}", aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
            wait_for(&mut received, &id, "the message").await?;
            // The first is a warm-up, as for the mutations.
            if sample > 0 {
                chain.push((millis(streamed - began), millis(streamed.elapsed())));
            }
        }
        Ok::<_, Failure>(chain)
    }
    .await;
    stream_poller.abort();
    receiver.abort();
    let _ = dynamodb.delete_table().table_name(&name).send().await;
    let _ = sqs.delete_queue().queue_url(&queue).send().await;
    result
}

/// Waits (30 s at most) until `id` comes out of `channel`.
async fn wait_for(
    channel: &mut mpsc::UnboundedReceiver<Result<String, Failure>>,
    id: &str,
    what: &str,
) -> Result<(), Failure> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, channel.recv()).await {
            Ok(Some(Ok(seen))) if seen == id => return Ok(()),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(failure))) => return Err(failure),
            Ok(None) => return Err(format!("the poller of {what} stopped")),
            Err(_) => return Err(format!("{what} of {id} not seen within 30 s")),
        }
    }
}
