//! `reventless-bench --postgres URL|auto`: the register-once command on
//! PostgreSQL — reventless, and in the same run against the same server raw
//! single-row INSERTs, cqrs-es + postgres-es and disintegrate +
//! disintegrate-postgres — at 1 / 8 / 64 clients on distinct ids, each line
//! with its ratio to each reference; then a same-id race per system,
//! counting duplicates.
pub(crate) mod cpu;
mod ours;
mod peers;
mod raw;
mod report;
mod server;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use reventless::core::Runtime;
use reventless_postgres::{PgDatabase, PgOptions};

use crate::{Latencies, workload};
use peers::{Peer, Peers};
use report::{Line, PgReport, RaceLine, References, Settings};

/// What `--postgres` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// A URL, or `auto` for a throwaway durable cluster.
    pub target: String,
    pub quick: bool,
    pub json: bool,
    /// A built `reventless-bench-peers` (built with cargo when absent).
    pub peers_bin: Option<PathBuf>,
    /// Connections of reventless's pool and of each peer's pool.
    pub pool_size: usize,
}

/// Throughput and latency of one measured phase.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub commands: u64,
    pub ops_per_sec: f64,
    pub p50_us: u32,
    pub p99_us: u32,
    /// Write transactions the server ran per command (see [`server`]).
    pub xacts_per_command: f64,
    /// WAL bytes the server wrote per command.
    pub wal_bytes_per_command: f64,
    /// CPU µs per command of this process and the peers' (clients, engine, driver).
    pub client_cpu_us: Option<f64>,
    /// CPU µs per command of the server's processes (when it runs on this machine).
    pub server_cpu_us: Option<f64>,
}

impl Measured {
    pub fn from_latencies(mut latencies: Latencies, elapsed: Duration) -> Self {
        let commands = latencies.0.len() as u64;
        Self {
            commands,
            ops_per_sec: commands as f64 / elapsed.as_secs_f64(),
            p50_us: latencies.percentile(0.5),
            p99_us: latencies.percentile(0.99),
            xacts_per_command: 0.0,
            wal_bytes_per_command: 0.0,
            client_cpu_us: None,
            server_cpu_us: None,
        }
    }
}

/// What a same-id race showed.
#[derive(Debug, Clone, Copy)]
pub struct RaceResult {
    pub races: u64,
    pub races_per_sec: f64,
    pub successes: u64,
    /// Races with more than one success reported.
    pub races_won_twice: u64,
    pub races_never_won: u64,
    /// Commands refused as already registered.
    pub rejections: u64,
    /// Ids whose event the store holds more than once.
    pub ids_stored_twice: u64,
    pub conflicts_retried: u64,
}

impl RaceResult {
    /// From the successes of each race.
    pub fn from_winners(
        winners: &[u64],
        racers: usize,
        elapsed: Duration,
        ids_stored_twice: u64,
        conflicts_retried: u64,
    ) -> Self {
        let successes: u64 = winners.iter().sum();
        Self {
            rejections: (winners.len() * racers) as u64 - successes,
            races: winners.len() as u64,
            races_per_sec: winners.len() as f64 / elapsed.as_secs_f64(),
            successes,
            races_won_twice: winners.iter().filter(|&&w| w > 1).count() as u64,
            races_never_won: winners.iter().filter(|&&w| w == 0).count() as u64,
            ids_stored_twice,
            conflicts_retried,
        }
    }

    /// Duplicates: a race won twice or an id stored twice.
    pub fn duplicates(&self) -> u64 {
        self.races_won_twice.max(self.ids_stored_twice)
    }
}

/// Client counts of the distinct-id lines; racers of the same-id race, and
/// how many such races run side by side (each set its own ids), so that
/// 10 000 races fit in the run.
const CLIENTS: [usize; 3] = [1, 8, 64];
const RACERS: usize = 8;
const RACE_GROUPS: usize = 8;

/// Races `0..races` cut into `groups` consecutive shares (none empty).
pub fn shares(races: usize, groups: usize) -> Vec<std::ops::Range<usize>> {
    let per_group = races.div_ceil(groups.max(1)).max(1);
    (0..races).step_by(per_group).map(|start| start..(start + per_group).min(races)).collect()
}

pub async fn run(options: Options) -> Result<(), String> {
    let phase = if options.quick { Duration::from_millis(1000) } else { Duration::from_secs(3) };
    let races = if options.quick { 1000 } else { 10_000 };
    let event_bytes = serde_json::to_string(&serde_json::json!({"id": "r0-0-1", "note": workload::NOTE}))
        .map(|s| s.len())
        .unwrap_or(0);

    let cluster = if options.target == "auto" {
        eprintln!("starting a throwaway PostgreSQL cluster (fsync on, synchronous_commit on)…");
        let cluster = tokio::task::spawn_blocking(reventless_postgres::testing::TestCluster::start)
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("starting a PostgreSQL cluster: {e}"))?;
        Some(cluster)
    } else {
        None
    };
    let url = cluster.as_ref().map(|c| c.url()).unwrap_or_else(|| options.target.clone());
    let settings = Settings::read(&url, &options, cluster.is_some(), event_bytes, phase, races, RACERS).await?;
    let report = PgReport::new(options.json);
    report.settings(&settings);

    let peers = {
        let (binary, url, pool) = (options.peers_bin.clone(), url.clone(), options.pool_size);
        tokio::task::spawn_blocking(move || Peers::prepare(binary, &url, pool)).await.map_err(|e| e.to_string())??
    };
    raw::prepare(&url).await?;
    let db = PgDatabase::connect(&url, PgOptions { pool_size: options.pool_size })
        .await
        .map_err(|e| format!("reventless on PostgreSQL: {e}"))?;
    // Ids of this run never met before on a reused database.
    let run_id = format!(
        "{:x}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
    );

    let probe = server::ServerProbe::connect(&url).await?;
    report.header();
    let mut at_64 = None;
    for clients in CLIENTS {
        eprintln!("{clients} client(s): raw inserts, cqrs-es, disintegrate, reventless…");
        let before = probe.read().await?;
        let raw = probe.attribute(before, raw::single_inserts(&url, clients, phase).await?).await?;
        let mut peer_runs = Vec::new();
        for peer in Peer::ALL {
            let before = probe.read().await?;
            let run = peer_distinct(&peers, peer, &format!("{run_id}-d{clients}"), clients, phase).await?;
            let measured = Measured {
                commands: run.commands,
                ops_per_sec: run.ops_per_sec,
                p50_us: run.p50_us,
                p99_us: run.p99_us,
                xacts_per_command: 0.0,
                wal_bytes_per_command: 0.0,
                client_cpu_us: None,
                server_cpu_us: None,
            };
            peer_runs.push((peer, probe.attribute(before, measured).await?, run.conflicts_retried));
        }
        let ops_of = |wanted: Peer| {
            peer_runs.iter().find(|(peer, ..)| *peer == wanted).map(|(_, m, _)| m.ops_per_sec).unwrap_or(0.0)
        };
        let references = References {
            raw: raw.ops_per_sec,
            cqrs_es: ops_of(Peer::CqrsEs),
            disintegrate: ops_of(Peer::Disintegrate),
        };
        report.line(&Line::new("reference/raw-pg/single-insert", "raw", clients, &raw, 0, &references, &settings));
        for (peer, measured, conflicts_retried) in &peer_runs {
            let name = format!("reference/{}/register", peer.name());
            report.line(&Line::new(&name, peer.stack(), clients, measured, *conflicts_retried, &references, &settings));
        }

        let runtime = Runtime::start(ours::stores(&db).await?, vec![workload::plugin_without_views()])
            .map_err(|e| e.to_string())?;
        let before = probe.read().await?;
        let ours = ours::distinct(&runtime, &format!("{run_id}-o{clients}"), clients, phase, false).await;
        runtime.shutdown().await;
        let ours = probe.attribute(before, ours?).await?;
        report.line(&Line::new("commands/dcb/register", "reventless", clients, &ours, 0, &references, &settings));

        // With the read models, timed until they have applied every command.
        let runtime = Runtime::start(ours::stores(&db).await?, vec![workload::plugin()]).map_err(|e| e.to_string())?;
        runtime.wait_for_projections_within(Duration::from_secs(600)).await.map_err(|e| e.to_string())?;
        let before = probe.read().await?;
        let settled = ours::distinct(&runtime, &format!("{run_id}-s{clients}"), clients, phase, true).await;
        runtime.shutdown().await;
        let settled = probe.attribute(before, settled?).await?;
        report.line(&Line::new(
            "commands/dcb/register/settled",
            "reventless",
            clients,
            &settled,
            0,
            &references,
            &settings,
        ));
        if clients == 64 {
            at_64 = Some((ours, references));
        }
    }

    eprintln!("same-id race: {RACERS} clients per id, {RACE_GROUPS} ids at a time, {races} races per system…");
    report.race_header();
    let runtime =
        Runtime::start(ours::stores(&db).await?, vec![workload::plugin_without_views()]).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let ours_race = ours::race(&runtime, &format!("{run_id}-race"), RACERS, races, RACE_GROUPS).await;
    runtime.shutdown().await;
    let ours_race = ours_race?;
    eprintln!("reventless: {races} races in {:.1} s", started.elapsed().as_secs_f64());
    report.race(&RaceLine::new("reventless", RACERS, &ours_race));
    for peer in Peer::ALL {
        let run = {
            let (peers, prefix) = (&peers, format!("{run_id}-race"));
            tokio::task::block_in_place(|| peers.race(peer, &prefix, RACERS, races, RACE_GROUPS))?
        };
        let result = RaceResult {
            races: run.races,
            races_per_sec: run.races_per_sec,
            successes: run.successes,
            races_won_twice: run.races_won_twice,
            races_never_won: run.races_never_won,
            rejections: run.rejections,
            ids_stored_twice: run.ids_stored_twice,
            conflicts_retried: run.conflicts_retried,
        };
        report.race(&RaceLine::new(peer.stack(), RACERS, &result));
    }

    if let Some((ours, references)) = at_64 {
        report.targets(&ours, &references, ours_race.duplicates());
    }
    if ours_race.duplicates() > 0 || ours_race.races_never_won > 0 {
        return Err(format!(
            "reventless registered {} id(s) twice and left {} race(s) without a winner",
            ours_race.duplicates(),
            ours_race.races_never_won
        ));
    }
    drop(cluster);
    Ok(())
}

async fn peer_distinct(
    peers: &Peers,
    peer: Peer,
    prefix: &str,
    clients: usize,
    phase: Duration,
) -> Result<peers::DistinctRun, String> {
    tokio::task::block_in_place(|| peers.distinct(peer, prefix, clients, phase))
}
