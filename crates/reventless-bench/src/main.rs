//! `reventless-bench`: end-to-end throughput and latency of the local
//! platform. Every command line's headline is the settled rate (commands
//! acknowledged and applied by every read model, one clock), beside two raw
//! SQLite references measured in the same run (one insert per transaction,
//! and 1 000 per transaction). `cargo run --release -p reventless-bench --
//! [--quick] [--json]`; `-- --http [--memory]` drives the online shop's dev
//! server over HTTP (src/http/); `-- --postgres URL|auto` measures
//! PostgreSQL against raw inserts and the Rust peers instead (src/postgres/).
mod commands;
mod http;
mod postgres;
mod reference;
mod report;
mod workload;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use commands::Workload;
use report::{Line, Report};
use reventless::core::{Runtime, Stores};
use reventless::local::sqlite::{SqliteDatabase, SqliteOptions, Synchronous};
use reventless_spec::NewEvent;
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
    /// Run only the command scenarios whose `name/backend/sync/clients` contains this text (references still measured; no lag or replay).
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
    /// Drive the online shop's dev server over HTTP instead (GraphQL
    /// mutations and list queries beside `GET /health`, 1 and 64 connections).
    #[arg(long)]
    http: bool,
    /// With --http: the server keeps everything in memory (else SQLite, synchronous NORMAL, in a fresh temp dir).
    #[arg(long, requires = "http")]
    memory: bool,
    /// With --http: the `online-shop` binary (default: beside this one, i.e. `cargo build --release -p online-shop`).
    #[arg(long, value_name = "PATH", requires = "http")]
    shop_bin: Option<PathBuf>,
    /// With --http: seconds per measured phase (2 with --quick).
    #[arg(long, default_value_t = 5, requires = "http")]
    http_seconds: u64,
    /// With --http: do not run `wrk` on `/health` for comparison even when it is installed.
    #[arg(long, requires = "http")]
    no_wrk: bool,
}

/// Latencies in microseconds.
#[derive(Default)]
pub struct Latencies(Vec<u32>);

impl Latencies {
    pub fn record(&mut self, elapsed: Duration) {
        self.0.push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
    }

    pub fn merge(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    pub fn percentile(&mut self, p: f64) -> u32 {
        if self.0.is_empty() {
            return 0;
        }
        self.0.sort_unstable();
        let index = ((self.0.len() - 1) as f64 * p).round() as usize;
        self.0[index]
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

/// The raw-SQLite limits measured at the start of the run, per `synchronous` level.
#[derive(Clone, Copy, Default)]
struct Limits {
    /// One insert per transaction from one thread: the 1-client limit.
    single: f64,
    /// 1 000 inserts per transaction: the group-commit limit.
    batched: f64,
}

#[derive(Default)]
struct References {
    normal: Limits,
    full: Limits,
}

impl References {
    /// Both references of a line. Memory lines have no raw in-memory
    /// reference: they are divided by the SQLite NORMAL limits, for scale
    /// only, and say so.
    fn for_backend(&self, backend: Backend, per_sec: f64) -> (Vec<report::Reference>, Option<String>) {
        let (level, limits) = match backend {
            Backend::Sqlite(Synchronous::Full) => ("FULL", self.full),
            _ => ("NORMAL", self.normal),
        };
        let references = vec![
            report::Reference::new(format!("raw sqlite single insert {level}"), limits.single, per_sec),
            report::Reference::new(format!("raw sqlite batched insert x{BATCH} {level}"), limits.batched, per_sec),
        ];
        let note = (backend == Backend::Memory).then(|| {
            "memory store: no in-memory raw reference; divided by the SQLite NORMAL limits for scale only \
             (a memory line can exceed 1.0 without being near any limit of its own)"
                .to_string()
        });
        (references, note)
    }
}

/// Inserts per transaction of the batched reference.
const BATCH: i64 = 1000;

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
    if args.http {
        let options = http::Options {
            memory: args.memory,
            shop_bin: args.shop_bin.clone(),
            duration: if args.quick { Duration::from_secs(2) } else { Duration::from_secs(args.http_seconds) },
            json: args.json,
            wrk: !args.no_wrk,
        };
        return http::run(options).await;
    }
    let temp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = args.dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let report = Report { json: args.json };
    let phase = if args.quick { Duration::from_millis(700) } else { Duration::from_secs(2) };
    let event_bytes =
        serde_json::to_string(&json!({"amount": 1, "note": workload::NOTE})).map(|s| s.len()).unwrap_or(0);
    report.header();

    // References first, in the same run and on the same disk; always both
    // levels' references, so that every line has its two in this run.
    let mut references = References::default();
    let levels: &[Synchronous] = if args.quick && args.only.is_none() {
        &[Synchronous::Normal]
    } else {
        &[Synchronous::Normal, Synchronous::Full]
    };
    for &synchronous in levels {
        let sqlite = |e: rusqlite::Error| format!("raw sqlite reference: {e}");
        let (single, mut latencies) = reference::single_insert(&dir, synchronous, phase).map_err(sqlite)?;
        let single_load = report::load_average();
        let rows = if args.quick { 100_000 } else { 500_000 };
        let batched = reference::batched_insert(&dir, synchronous, rows, BATCH).map_err(sqlite)?;
        let limits = Limits { single, batched };
        match synchronous {
            Synchronous::Full => references.full = limits,
            _ => references.normal = limits,
        }
        let level = synchronous.as_str();
        let singles = latencies.0.len() as u64;
        for (name, count, per_sec, p50, p99, load) in [
            (
                "reference/raw-sqlite/single-insert",
                singles,
                single,
                latencies.percentile(0.5),
                latencies.percentile(0.99),
                single_load,
            ),
            ("reference/raw-sqlite/batched-1000", rows as u64, batched, 0, 0, report::load_average()),
        ] {
            let (refs, _) = references.for_backend(Backend::Sqlite(synchronous), per_sec);
            report.print(&Line {
                kind: "reference",
                name: name.into(),
                backend: "raw".into(),
                synchronous: level.into(),
                clients: 1,
                count,
                settled: false,
                per_sec,
                acked_per_sec: None,
                catch_up_ms: None,
                p50_us: p50,
                p99_us: p99,
                references: refs,
                note: None,
                event_bytes,
                load_avg_1m: load,
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
                if matches!(backend, Backend::Sqlite(Synchronous::Full)) && references.full.single == 0.0 {
                    continue;
                }
                let label = format!("{}-{clients}", workload.name().replace('/', "-"));
                let (stores, _db) = backend.stores(&dir, &label)?;
                let plugin = match workload {
                    Workload::AggregateDistinctNoViews => workload::plugin_without_views(),
                    _ => workload::plugin(),
                };
                let runtime = Runtime::start(stores, vec![plugin]).map_err(|e| e.to_string())?;
                let measured =
                    commands::measure(&runtime, clients, phase, move |client, n| workload.request(client, n)).await;
                runtime.shutdown().await;
                let mut measured = measured.map_err(|e| format!("{key}: {e}"))?;
                let (references, note) = references.for_backend(*backend, measured.settled_per_sec);
                report.print(&Line {
                    kind: "commands",
                    name: workload.name().into(),
                    backend: backend.name().into(),
                    synchronous: backend.synchronous().into(),
                    clients,
                    count: measured.commands,
                    settled: true,
                    per_sec: measured.settled_per_sec,
                    acked_per_sec: Some(measured.acked_per_sec),
                    catch_up_ms: Some(measured.catch_up.as_secs_f64() * 1000.0),
                    p50_us: measured.latencies.percentile(0.5),
                    p99_us: measured.latencies.percentile(0.99),
                    references,
                    note,
                    event_bytes,
                    load_avg_1m: report::load_average(),
                });
            }
        }
    }

    let replay_events = if args.quick { 100_000 } else { 1_000_000 };
    if args.only.as_deref() == Some("replay") {
        return replay(&dir, &report, replay_events, event_bytes).await;
    }
    if args.only.is_none() {
        projection_lag(&dir, &report, &references, phase, event_bytes).await?;
        replay(&dir, &report, replay_events, event_bytes).await?;
    }
    report.legend(&[
        ("settled/s", "commands acknowledged AND applied by every read model, one clock (the headline)"),
        ("acked/s", "commands acknowledged (clock stopped at the last answer)"),
        ("catchup", "from the last answer until every projection reached the log's head"),
        ("ref1", "raw SQLite, 1 INSERT per transaction, 1 thread, the store's pragmas (the 1-client limit)"),
        ("ref2", "raw SQLite, 1 000 INSERTs per transaction, the store's pragmas (the group-commit limit)"),
        ("memory lines", "ref1/ref2 are the SQLite NORMAL limits, for scale only"),
        ("replay", "ref1: raw scan of the same rows; ref2: the scan plus one row written per event, batched"),
        ("load", "1-minute load average right after the line (2 cores, shared with other builds)"),
    ]);
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
    let clients = 4;
    let lagged = commands::projection_lag(&runtime, clients, 1000.0, phase.max(Duration::from_secs(2))).await;
    runtime.shutdown().await;
    let (per_sec, mut lags) = lagged.map_err(|e| format!("projection-lag: {e}"))?;
    let (refs, _) = references.for_backend(backend, per_sec);
    report.print(&Line {
        kind: "projection-lag",
        name: "projection-lag@1000cmd/s".into(),
        backend: "sqlite".into(),
        synchronous: "NORMAL".into(),
        clients,
        count: lags.0.len() as u64,
        settled: true,
        per_sec,
        acked_per_sec: None,
        catch_up_ms: None,
        p50_us: lags.percentile(0.5),
        p99_us: lags.percentile(0.99),
        references: refs,
        note: Some("p50/p99: from each command's answer until every projection applied it".into()),
        event_bytes,
        load_avg_1m: report::load_average(),
    });
    Ok(())
}

/// Replays `events` DCB events into a fresh read model; the references are
/// a raw scan of the same rows, and the scan plus one row written per event
/// in batches.
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
    let sqlite = |e: rusqlite::Error| format!("raw replay reference: {e}");
    let scan_rate = reference::scan(&path, "Bench").map_err(sqlite)?;
    let scan_write_rate = reference::scan_and_write(&path, "Bench", dir).map_err(sqlite)?;

    let started = Instant::now();
    let runtime = Runtime::start(reventless::local::sqlite_stores(&db), vec![workload::replay_plugin()])
        .map_err(|e| e.to_string())?;
    let caught_up = runtime.wait_for_projections_within(Duration::from_secs(600)).await;
    let elapsed = started.elapsed();
    runtime.shutdown().await;
    caught_up.map_err(|e| format!("replay: {e}"))?;
    let rate = events as f64 / elapsed.as_secs_f64();
    report.print(&Line {
        kind: "replay",
        name: format!("replay/{events}-events"),
        backend: "sqlite".into(),
        synchronous: "NORMAL".into(),
        clients: 1,
        count: events,
        settled: true,
        per_sec: rate,
        acked_per_sec: None,
        catch_up_ms: None,
        p50_us: 0,
        p99_us: 0,
        references: vec![
            report::Reference::new("raw scan", scan_rate, rate),
            report::Reference::new("raw scan + one row written per event, 1000 per transaction", scan_write_rate, rate),
        ],
        note: None,
        event_bytes,
        load_avg_1m: report::load_average(),
    });
    Ok(())
}

// As the apps built on reventless (its template and the shop) do.
#[global_allocator]
static ALLOCATOR: reventless::Allocator = reventless::Allocator;

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
