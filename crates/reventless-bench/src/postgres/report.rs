//! The `--postgres` lines: server settings first, then one line per system
//! and client count with its ratio to each reference measured at the same
//! client count, the same-id races, and the targets — as a table or as one
//! JSON object per line.
use std::time::Duration;

use serde::Serialize;

use super::{Measured, Options, RaceResult};

/// The server and run settings every number depends on.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub server: String,
    pub server_version: String,
    pub throwaway_cluster: bool,
    pub fsync: String,
    pub synchronous_commit: String,
    pub full_page_writes: String,
    pub commit_delay: String,
    pub wal_sync_method: String,
    pub shared_buffers: String,
    pub max_connections: String,
    /// Connections of reventless's pool and of each peer's sqlx pool.
    pub pool_size: usize,
    pub raw_connections: &'static str,
    pub event_bytes: usize,
    pub phase_ms: u128,
    pub races: usize,
    pub racers: usize,
}

impl Settings {
    pub async fn read(
        url: &str,
        options: &Options,
        throwaway_cluster: bool,
        event_bytes: usize,
        phase: Duration,
        races: usize,
        racers: usize,
    ) -> Result<Self, String> {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.map_err(|e| {
            let target = reventless_postgres::describe_url(url).unwrap_or_else(|_| "the given URL".into());
            let cause = std::error::Error::source(&e).map(|c| format!(": {c}")).unwrap_or_default();
            format!("PostgreSQL at {target}: {e}{cause}")
        })?;
        tokio::spawn(connection);
        let mut values = Vec::new();
        for setting in [
            "server_version",
            "fsync",
            "synchronous_commit",
            "full_page_writes",
            "commit_delay",
            "wal_sync_method",
            "shared_buffers",
            "max_connections",
        ] {
            let row = client
                .query_one(&format!("SHOW {setting}"), &[])
                .await
                .map_err(|e| format!("reading {setting}: {e}"))?;
            values.push(row.get::<_, String>(0));
        }
        let place = client
            .query_one("SELECT coalesce(host(inet_server_addr()), 'socket'), coalesce(inet_server_port(), 0), current_database()", &[])
            .await
            .map_err(|e| format!("reading the server address: {e}"))?;
        let server = format!("{}:{}/{}", place.get::<_, String>(0), place.get::<_, i32>(1), place.get::<_, String>(2));
        let mut values = values.into_iter();
        let mut next = || values.next().unwrap_or_default();
        Ok(Self {
            server,
            server_version: next(),
            throwaway_cluster,
            fsync: next(),
            synchronous_commit: next(),
            full_page_writes: next(),
            commit_delay: next(),
            wal_sync_method: next(),
            shared_buffers: next(),
            max_connections: next(),
            pool_size: options.pool_size,
            raw_connections: "one per client",
            event_bytes,
            phase_ms: phase.as_millis(),
            races,
            racers,
        })
    }
}

/// The references' throughput at one client count.
#[derive(Debug, Clone, Copy)]
pub struct References {
    pub raw: f64,
    pub cqrs_es: f64,
    pub disintegrate: f64,
}

/// One distinct-id line.
#[derive(Debug, Serialize)]
pub struct Line {
    name: String,
    system: String,
    backend: &'static str,
    clients: usize,
    commands: u64,
    ops_per_sec: f64,
    p50_us: u32,
    p99_us: u32,
    /// Concurrency conflicts the peer met and retried (distinct ids).
    conflicts_retried: u64,
    /// Write transactions the server ran per command (1.0: one commit each).
    xacts_per_command: f64,
    wal_bytes_per_command: f64,
    /// CPU µs per command: this process and the peers' (client side), the server's processes.
    client_cpu_us_per_command: Option<f64>,
    server_cpu_us_per_command: Option<f64>,
    reference_raw_single_insert: f64,
    ratio_raw_single_insert: f64,
    reference_cqrs_es: f64,
    ratio_cqrs_es: f64,
    reference_disintegrate: f64,
    ratio_disintegrate: f64,
    fsync: String,
    synchronous_commit: String,
    pool_size: usize,
    event_bytes: usize,
}

fn ratio(ops: f64, reference: f64) -> f64 {
    if reference > 0.0 { ops / reference } else { 0.0 }
}

impl Line {
    pub fn new(
        name: &str,
        system: &str,
        clients: usize,
        measured: &Measured,
        conflicts_retried: u64,
        references: &References,
        settings: &Settings,
    ) -> Self {
        let ops = measured.ops_per_sec;
        Self {
            name: name.into(),
            system: system.into(),
            backend: "postgres",
            clients,
            commands: measured.commands,
            ops_per_sec: ops,
            p50_us: measured.p50_us,
            p99_us: measured.p99_us,
            conflicts_retried,
            xacts_per_command: measured.xacts_per_command,
            wal_bytes_per_command: measured.wal_bytes_per_command,
            client_cpu_us_per_command: measured.client_cpu_us,
            server_cpu_us_per_command: measured.server_cpu_us,
            reference_raw_single_insert: references.raw,
            ratio_raw_single_insert: ratio(ops, references.raw),
            reference_cqrs_es: references.cqrs_es,
            ratio_cqrs_es: ratio(ops, references.cqrs_es),
            reference_disintegrate: references.disintegrate,
            ratio_disintegrate: ratio(ops, references.disintegrate),
            fsync: settings.fsync.clone(),
            synchronous_commit: settings.synchronous_commit.clone(),
            pool_size: settings.pool_size,
            event_bytes: settings.event_bytes,
        }
    }
}

/// One same-id race line.
#[derive(Debug, Serialize)]
pub struct RaceLine {
    name: &'static str,
    system: String,
    backend: &'static str,
    clients: usize,
    races: u64,
    races_per_sec: f64,
    successes: u64,
    races_won_twice: u64,
    races_never_won: u64,
    rejections: u64,
    ids_stored_twice: u64,
    duplicates: u64,
    conflicts_retried: u64,
}

impl RaceLine {
    pub fn new(system: &str, clients: usize, result: &RaceResult) -> Self {
        Self {
            name: "race/same-id",
            system: system.into(),
            backend: "postgres",
            clients,
            races: result.races,
            races_per_sec: result.races_per_sec,
            successes: result.successes,
            races_won_twice: result.races_won_twice,
            races_never_won: result.races_never_won,
            rejections: result.rejections,
            ids_stored_twice: result.ids_stored_twice,
            duplicates: result.duplicates(),
            conflicts_retried: result.conflicts_retried,
        }
    }
}

/// A target at 64 clients, met or missed.
#[derive(Debug, Serialize)]
struct Target {
    target: String,
    wanted: f64,
    measured: f64,
    met: bool,
}

pub struct PgReport {
    json: bool,
}

impl PgReport {
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    fn emit(&self, value: &impl Serialize) {
        println!("{}", serde_json::to_string(value).unwrap_or_default());
    }

    pub fn settings(&self, settings: &Settings) {
        if self.json {
            self.emit(&serde_json::json!({ "settings": settings }));
            return;
        }
        println!(
            "PostgreSQL {} at {}{}: fsync={} synchronous_commit={} full_page_writes={} commit_delay={} \
             wal_sync_method={} shared_buffers={} max_connections={}",
            settings.server_version,
            settings.server,
            if settings.throwaway_cluster { " (throwaway cluster)" } else { "" },
            settings.fsync,
            settings.synchronous_commit,
            settings.full_page_writes,
            settings.commit_delay,
            settings.wal_sync_method,
            settings.shared_buffers,
            settings.max_connections,
        );
        println!(
            "pool: {} connections (reventless, each peer); raw inserts: {}; events: ~{} bytes of JSON data; \
             {} ms per phase; same-id race: {} clients × {} races",
            settings.pool_size,
            settings.raw_connections,
            settings.event_bytes,
            settings.phase_ms,
            settings.racers,
            settings.races
        );
    }

    pub fn header(&self) {
        if !self.json {
            println!(
                "{:<34} {:<40} {:>7} {:>9} {:>8} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}",
                "name",
                "system",
                "clients",
                "ops/s",
                "p50 µs",
                "p99 µs",
                "×raw",
                "×cqrs-es",
                "×disint.",
                "xacts/op",
                "WAL B/op",
                "cli µs/op",
                "srv µs/op"
            );
        }
    }

    pub fn line(&self, line: &Line) {
        if self.json {
            return self.emit(line);
        }
        println!(
            "{:<34} {:<40} {:>7} {:>9.0} {:>8} {:>8} {:>7.2} {:>8.2} {:>8.2} {:>8.2} {:>8.0} {:>9} {:>9}",
            line.name,
            line.system,
            line.clients,
            line.ops_per_sec,
            line.p50_us,
            line.p99_us,
            line.ratio_raw_single_insert,
            line.ratio_cqrs_es,
            line.ratio_disintegrate,
            line.xacts_per_command,
            line.wal_bytes_per_command,
            line.client_cpu_us_per_command.map(|us| format!("{us:.0}")).unwrap_or_else(|| "-".into()),
            line.server_cpu_us_per_command.map(|us| format!("{us:.0}")).unwrap_or_else(|| "-".into())
        );
    }

    pub fn race_header(&self) {
        if !self.json {
            println!(
                "\n{:<40} {:>7} {:>7} {:>8} {:>9} {:>10} {:>10} {:>10} {:>10}",
                "same-id race: system",
                "clients",
                "races",
                "races/s",
                "successes",
                "rejections",
                "duplicates",
                "never won",
                "conflicts"
            );
        }
    }

    pub fn race(&self, line: &RaceLine) {
        if self.json {
            return self.emit(line);
        }
        println!(
            "{:<40} {:>7} {:>7} {:>8.0} {:>9} {:>10} {:>10} {:>10} {:>10}",
            line.system,
            line.clients,
            line.races,
            line.races_per_sec,
            line.successes,
            line.rejections,
            line.duplicates,
            line.races_never_won,
            line.conflicts_retried
        );
    }

    /// The targets at 64 clients, and the race's duplicates.
    pub fn targets(&self, ours: &Measured, references: &References, duplicates: u64) {
        let targets = [
            ("×cqrs-es at 64 clients", 3.0, ratio(ours.ops_per_sec, references.cqrs_es)),
            ("×disintegrate at 64 clients", 10.0, ratio(ours.ops_per_sec, references.disintegrate)),
            ("×raw single-row inserts at 64 clients", 1.0, ratio(ours.ops_per_sec, references.raw)),
        ]
        .into_iter()
        .map(|(target, wanted, measured)| Target { target: target.into(), wanted, measured, met: measured >= wanted })
        .chain(std::iter::once(Target {
            target: "duplicates in the same-id race (reventless)".into(),
            wanted: 0.0,
            measured: duplicates as f64,
            met: duplicates == 0,
        }));
        if !self.json {
            println!();
        }
        for target in targets {
            if self.json {
                self.emit(&target);
            } else {
                let wanted = if target.target.starts_with("duplicates") {
                    "= 0".to_string()
                } else {
                    format!("≥ {:.1}", target.wanted)
                };
                println!(
                    "target {:<52} {:<7} measured {:>7.2}  {}",
                    target.target,
                    wanted,
                    target.measured,
                    if target.met { "met" } else { "MISSED" }
                );
            }
        }
    }
}
