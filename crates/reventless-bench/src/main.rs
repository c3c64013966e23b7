//! `reventless-bench`: end-to-end throughput and latency of the local
//! platform, each line beside its raw-SQLite reference measured in the same
//! run. `cargo run --release -p reventless-bench -- [--quick] [--json]`;
//! `-- --postgres URL|auto` measures PostgreSQL against raw inserts and the
//! Rust peers instead (src/postgres/).
mod postgres;
mod reference;
mod workload;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use reventless::core::{CommandRequest, Runtime, Stores};
use reventless::local::sqlite::{SqliteDatabase, SqliteOptions, Synchronous};
use reventless_spec::NewEvent;
use serde::Serialize;
use serde_json::json;

#[derive(Parser, Debug)]
#[command(about = "Load harness of reventless against raw SQLite")]
struct Args {
    /// A short run (under a minute): fewer client counts, shorter phases.
    #[arg(long)]
    quick: bool,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Where the database files go (a temporary directory by default).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Run only the command scenarios whose `name/backend/sync/clients` contains this text (no references, lag or replay).
    #[arg(long)]
    only: Option<String>,
    /// Measure on PostgreSQL instead: a URL (a scratch database), or `auto`
    /// for a throwaway durable cluster; with raw inserts, cqrs-es and
    /// disintegrate as references in the same run.
    #[arg(long, value_name = "URL|auto")]
    postgres: Option<String>,
    /// With --postgres: a built `reventless-bench-peers` (else built with cargo on first use).
    #[arg(long, value_name = "PATH")]
    peers_bin: Option<PathBuf>,
    /// With --postgres: connections of reventless's pool and of each peer's pool.
    #[arg(long, default_value_t = 32)]
    pg_pool: usize,
}

/// Latencies in microseconds.
#[derive(Default)]
pub struct Latencies(Vec<u32>);

impl Latencies {
    pub fn record(&mut self, elapsed: Duration) {
        self.0.push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
    }

    fn merge(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    fn percentile(&mut self, p: f64) -> u32 {
        if self.0.is_empty() {
            return 0;
        }
        self.0.sort_unstable();
        let index = ((self.0.len() - 1) as f64 * p).round() as usize;
        self.0[index]
    }
}

#[derive(Serialize)]
struct Line {
    name: String,
    backend: String,
    synchronous: String,
    clients: usize,
    ops_per_sec: f64,
    p50_us: u32,
    p99_us: u32,
    reference: String,
    reference_ops_per_sec: f64,
    ratio: f64,
    event_bytes: usize,
}

struct Report {
    json: bool,
}

impl Report {
    fn header(&self) {
        if !self.json {
            println!(
                "{:<34} {:<8} {:<6} {:>7} {:>12} {:>9} {:>9} {:>14}  ratio",
                "name", "backend", "sync", "clients", "ops/s", "p50 µs", "p99 µs", "reference/s"
            );
        }
    }

    fn print(&self, line: &Line) {
        if self.json {
            println!("{}", serde_json::to_string(line).unwrap_or_default());
        } else {
            println!(
                "{:<34} {:<8} {:<6} {:>7} {:>12.0} {:>9} {:>9} {:>14.0}  {:.2} ({})",
                line.name,
                line.backend,
                line.synchronous,
                line.clients,
                line.ops_per_sec,
                line.p50_us,
                line.p99_us,
                line.reference_ops_per_sec,
                line.ratio,
                line.reference
            );
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Memory,
    Sqlite(Synchronous),
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Sqlite(_) => "sqlite",
        }
    }

    fn synchronous(self) -> &'static str {
        match self {
            Self::Memory => "-",
            Self::Sqlite(level) => level.as_str(),
        }
    }

    fn stores(self, dir: &Path, label: &str) -> Result<(Stores, Option<SqliteDatabase>), String> {
        match self {
            Self::Memory => Ok((reventless::local::memory_stores(), None)),
            Self::Sqlite(synchronous) => {
                let path = dir.join(format!("{label}-{}.db", synchronous.as_str()));
                let db = SqliteDatabase::open(path, SqliteOptions { synchronous }).map_err(|e| e.to_string())?;
                Ok((reventless::local::sqlite_stores(&db), Some(db)))
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Workload {
    /// As `AggregateDistinct`, with no read model following the log.
    AggregateDistinctNoViews,
    /// Each client adds to its own counter (an aggregate stream per client).
    AggregateDistinct,
    /// Every client adds to one counter.
    AggregateShared,
    /// Each command registers a new id (a DCB decision over an empty boundary).
    DcbRegister,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Self::AggregateDistinct => "commands/aggregate/distinct",
            Self::AggregateDistinctNoViews => "commands/aggregate/distinct/no-views",
            Self::AggregateShared => "commands/aggregate/shared",
            Self::DcbRegister => "commands/dcb/distinct",
        }
    }

    fn request(self, client: usize, n: u64) -> CommandRequest {
        match self {
            Self::AggregateDistinct | Self::AggregateDistinctNoViews => {
                CommandRequest::new("Bench", "Counter_Add", json!({"amount": 1})).entity(format!("c{client}"))
            }
            Self::AggregateShared => CommandRequest::new("Bench", "Counter_Add", json!({"amount": 1})).entity("hot"),
            Self::DcbRegister => CommandRequest::new("Bench", "Register", json!({"id": format!("r{client}-{n}")})),
        }
    }
}

/// Runs `clients` tasks issuing commands for `duration`; returns commands/s and latencies.
async fn drive(runtime: &Runtime, workload: Workload, clients: usize, duration: Duration) -> (f64, Latencies) {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for client in 0..clients {
        let runtime = runtime.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            let mut n = 0;
            while Instant::now() < deadline {
                n += 1;
                let begin = Instant::now();
                match runtime.execute(workload.request(client, n)).await {
                    Ok(outcome) if outcome.is_accepted() => latencies.record(begin.elapsed()),
                    other => panic!("benchmark command failed: {other:?}"),
                }
            }
            latencies
        }));
    }
    let mut all = Latencies::default();
    for task in tasks {
        if let Ok(latencies) = task.await {
            all.merge(latencies);
        }
    }
    let ops = all.0.len() as f64 / started.elapsed().as_secs_f64();
    (ops, all)
}

struct References {
    single_normal: f64,
    single_full: f64,
}

impl References {
    fn for_backend(&self, backend: Backend) -> (&'static str, f64) {
        match backend {
            Backend::Sqlite(Synchronous::Full) => ("raw single insert FULL", self.single_full),
            _ => ("raw single insert NORMAL", self.single_normal),
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    if let Some(target) = args.postgres.clone() {
        let options = postgres::Options {
            target,
            quick: args.quick,
            json: args.json,
            peers_bin: args.peers_bin.clone(),
            pool_size: args.pg_pool,
        };
        return postgres::run(options).await;
    }
    let temp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = args.dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let report = Report { json: args.json };
    let phase = if args.quick { Duration::from_millis(700) } else { Duration::from_secs(2) };
    let event_bytes =
        serde_json::to_string(&json!({"amount": 1, "note": workload::NOTE})).map(|s| s.len()).unwrap_or(0);
    report.header();

    // References first, in the same run and on the same disk.
    let mut references = References { single_normal: 0.0, single_full: 0.0 };
    let synchronous_levels: &[&str] = if args.only.is_some() { &[] } else { &["NORMAL", "FULL"] };
    for &synchronous in synchronous_levels {
        let (rate, mut latencies) = reference::single_insert(&dir, synchronous, phase).map_err(|e| e.to_string())?;
        let batched = reference::batched_insert(&dir, synchronous, if args.quick { 100_000 } else { 500_000 }, 1000)
            .map_err(|e| e.to_string())?;
        if synchronous == "NORMAL" {
            references.single_normal = rate;
        } else {
            references.single_full = rate;
        }
        for (name, ops, p50, p99, reference) in [
            ("reference/raw-sqlite/single-insert", rate, latencies.percentile(0.5), latencies.percentile(0.99), rate),
            ("reference/raw-sqlite/batched-1000", batched, 0, 0, rate),
        ] {
            report.print(&Line {
                name: name.into(),
                backend: "raw".into(),
                synchronous: synchronous.into(),
                clients: 1,
                ops_per_sec: ops,
                p50_us: p50,
                p99_us: p99,
                reference: format!("raw single insert {synchronous}"),
                reference_ops_per_sec: reference,
                ratio: ops / reference,
                event_bytes,
            });
        }
    }

    let backends: Vec<Backend> = if args.quick {
        vec![Backend::Memory, Backend::Sqlite(Synchronous::Normal)]
    } else {
        vec![Backend::Memory, Backend::Sqlite(Synchronous::Normal), Backend::Sqlite(Synchronous::Full)]
    };
    let client_counts: Vec<usize> = if args.quick { vec![1, 64] } else { vec![1, 8, 64, 256] };
    let workloads = [
        Workload::AggregateDistinct,
        Workload::AggregateDistinctNoViews,
        Workload::AggregateShared,
        Workload::DcbRegister,
    ];
    for backend in &backends {
        for workload in workloads {
            for &clients in &client_counts {
                let key = format!("{}/{}/{}/{clients}", workload.name(), backend.name(), backend.synchronous());
                if args.only.as_ref().is_some_and(|only| !key.contains(only.as_str())) {
                    continue;
                }
                let label = format!("{}-{clients}", workload.name().replace('/', "-"));
                let (stores, _db) = backend.stores(&dir, &label)?;
                let plugin = match workload {
                    Workload::AggregateDistinctNoViews => workload::plugin_without_views(),
                    _ => workload::plugin(),
                };
                let runtime = Runtime::start(stores, vec![plugin]).map_err(|e| e.to_string())?;
                let (ops, mut latencies) = drive(&runtime, workload, clients, phase).await;
                runtime.wait_for_projections_within(Duration::from_secs(120)).await.map_err(|e| e.to_string())?;
                runtime.shutdown().await;
                let (reference, reference_ops) = references.for_backend(*backend);
                report.print(&Line {
                    name: workload.name().into(),
                    backend: backend.name().into(),
                    synchronous: backend.synchronous().into(),
                    clients,
                    ops_per_sec: ops,
                    p50_us: latencies.percentile(0.5),
                    p99_us: latencies.percentile(0.99),
                    reference: reference.into(),
                    reference_ops_per_sec: reference_ops,
                    ratio: ops / reference_ops,
                    event_bytes,
                });
            }
        }
    }

    if args.only.as_deref() == Some("replay") {
        return replay(&dir, &report, if args.quick { 100_000 } else { 1_000_000 }, event_bytes).await;
    }
    if args.only.is_some() {
        return Ok(());
    }
    projection_lag(&dir, &report, &references, phase, event_bytes).await?;
    replay(&dir, &report, if args.quick { 100_000 } else { 1_000_000 }, event_bytes).await?;
    Ok(())
}

/// Commands paced at 1 000/s on SQLite NORMAL; for each, the time from its
/// acknowledgement until every projection has applied it.
async fn projection_lag(
    dir: &Path,
    report: &Report,
    references: &References,
    phase: Duration,
    event_bytes: usize,
) -> Result<(), String> {
    let backend = Backend::Sqlite(Synchronous::Normal);
    let (stores, _db) = backend.stores(dir, "lag")?;
    let runtime = Runtime::start(stores, vec![workload::plugin()]).map_err(|e| e.to_string())?;
    let rate = 1000.0;
    let clients = 4;
    let interval = Duration::from_secs_f64(clients as f64 / rate);
    let started = Instant::now();
    let deadline = started + phase.max(Duration::from_secs(2));
    let mut tasks = Vec::new();
    for client in 0..clients {
        let runtime = runtime.clone();
        tasks.push(tokio::spawn(async move {
            let mut lags = Latencies::default();
            let mut ticker = tokio::time::interval(interval);
            let mut n = 0;
            while Instant::now() < deadline {
                ticker.tick().await;
                n += 1;
                let workload = if n % 2 == 0 { Workload::DcbRegister } else { Workload::AggregateDistinct };
                if runtime.execute(workload.request(client, n)).await.is_err() {
                    continue;
                }
                let acked = Instant::now();
                if runtime.wait_for_projections().await.is_ok() {
                    lags.record(acked.elapsed());
                }
            }
            lags
        }));
    }
    let mut lags = Latencies::default();
    for task in tasks {
        if let Ok(task_lags) = task.await {
            lags.merge(task_lags);
        }
    }
    let ops = lags.0.len() as f64 / started.elapsed().as_secs_f64();
    runtime.shutdown().await;
    report.print(&Line {
        name: "projection-lag@1000cmd/s".into(),
        backend: "sqlite".into(),
        synchronous: "NORMAL".into(),
        clients,
        ops_per_sec: ops,
        p50_us: lags.percentile(0.5),
        p99_us: lags.percentile(0.99),
        reference: "raw single insert NORMAL".into(),
        reference_ops_per_sec: references.single_normal,
        ratio: ops / references.single_normal,
        event_bytes,
    });
    Ok(())
}

/// Replays `events` DCB events into a fresh read model; the reference is a
/// raw scan of the same rows.
async fn replay(dir: &Path, report: &Report, events: u64, event_bytes: usize) -> Result<(), String> {
    let path = dir.join("replay.db");
    let options = SqliteOptions { synchronous: Synchronous::Normal };
    let db = SqliteDatabase::open(&path, options.clone()).map_err(|e| e.to_string())?;
    let stores = reventless::local::sqlite_stores(&db);
    let mut written = 0;
    while written < events {
        let batch: Vec<NewEvent> = (0..1000.min(events - written))
            .map(|i| {
                let id = format!("r{}", written + i);
                NewEvent::new(
                    "Registered",
                    vec![format!("id:{id}").parse().expect("tag")],
                    json!({"id": id, "note": workload::NOTE}),
                )
            })
            .collect();
        written += batch.len() as u64;
        stores.events.append("Bench", batch, None).await.map_err(|e| e.to_string())?;
    }
    drop(stores);
    let scan_rate = reference::scan(&path, "Bench").map_err(|e| e.to_string())?;

    let started = Instant::now();
    let runtime = Runtime::start(reventless::local::sqlite_stores(&db), vec![workload::replay_plugin()])
        .map_err(|e| e.to_string())?;
    runtime.wait_for_projections_within(Duration::from_secs(600)).await.map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    runtime.shutdown().await;
    let rate = events as f64 / elapsed.as_secs_f64();
    report.print(&Line {
        name: format!("replay/{events}-events"),
        backend: "sqlite".into(),
        synchronous: "NORMAL".into(),
        clients: 1,
        ops_per_sec: rate,
        p50_us: 0,
        p99_us: 0,
        reference: "raw scan".into(),
        reference_ops_per_sec: scan_rate,
        ratio: rate / scan_rate,
        event_bytes,
    });
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
