//! The Rust peers (cqrs-es + postgres-es, disintegrate + disintegrate-postgres),
//! run as the subprocess `reventless-bench-peers` (crates/reventless-bench/peers,
//! a workspace of its own: see its Cargo.toml for why). Each measurement is
//! one run of it against the same server; it answers one JSON object.
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;

/// A peer system as the subprocess names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    CqrsEs,
    Disintegrate,
}

impl Peer {
    pub const ALL: [Peer; 2] = [Peer::CqrsEs, Peer::Disintegrate];

    pub fn name(self) -> &'static str {
        match self {
            Self::CqrsEs => "cqrs-es",
            Self::Disintegrate => "disintegrate",
        }
    }

    /// What it runs on, for the table.
    pub fn stack(self) -> &'static str {
        match self {
            Self::CqrsEs => "cqrs-es 0.5 + postgres-es 0.5",
            Self::Disintegrate => "disintegrate 4 + disintegrate-postgres 4",
        }
    }
}

/// A `distinct` run's answer.
#[derive(Debug, Deserialize)]
pub struct DistinctRun {
    pub commands: u64,
    pub ops_per_sec: f64,
    pub p50_us: u32,
    pub p99_us: u32,
    pub conflicts_retried: u64,
}

/// A `race` run's answer.
#[derive(Debug, Deserialize)]
pub struct RaceRun {
    pub races: u64,
    pub races_per_sec: f64,
    pub successes: u64,
    pub races_won_twice: u64,
    pub races_never_won: u64,
    pub rejections: u64,
    pub conflicts_retried: u64,
    pub ids_stored_twice: u64,
}

/// The peers' binary, built on first use.
pub struct Peers {
    binary: PathBuf,
    url: String,
    pool: usize,
}

const MANIFEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/Cargo.toml");

impl Peers {
    /// Uses `binary` when given; otherwise builds the peers (release, locked)
    /// into this binary's target directory, progress on stderr.
    pub fn prepare(binary: Option<PathBuf>, url: &str, pool: usize) -> Result<Self, String> {
        let binary = match binary {
            Some(binary) => binary,
            None => build()?,
        };
        if !binary.is_file() {
            return Err(format!("the peers' binary {} does not exist", binary.display()));
        }
        Ok(Self { binary, url: url.to_string(), pool })
    }

    fn run(&self, peer: Peer, workload: &str, extra: &[String]) -> Result<String, String> {
        let output = Command::new(&self.binary)
            .args([peer.name(), workload, "--url", &self.url, "--pool", &self.pool.to_string()])
            .args(extra)
            .output()
            .map_err(|e| format!("starting {}: {e}", self.binary.display()))?;
        if !output.status.success() {
            return Err(format!(
                "{} {workload} failed ({}): {}",
                peer.name(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// `clients` clients registering fresh ids for `duration` (blocking: run it off the async workers).
    pub fn distinct(
        &self,
        peer: Peer,
        prefix: &str,
        clients: usize,
        duration: Duration,
    ) -> Result<DistinctRun, String> {
        let extra = [
            "--prefix".into(),
            prefix.into(),
            "--clients".into(),
            clients.to_string(),
            "--millis".into(),
            duration.as_millis().to_string(),
        ];
        let answer = self.run(peer, "distinct", &extra)?;
        serde_json::from_str(answer.trim()).map_err(|e| format!("{} answered {answer:?}: {e}", peer.name()))
    }

    /// `clients` clients racing `races` times to register one id each, `groups` races side by side.
    pub fn race(
        &self,
        peer: Peer,
        prefix: &str,
        clients: usize,
        races: usize,
        groups: usize,
    ) -> Result<RaceRun, String> {
        let extra = [
            "--prefix".into(),
            prefix.into(),
            "--clients".into(),
            clients.to_string(),
            "--races".into(),
            races.to_string(),
            "--groups".into(),
            groups.to_string(),
        ];
        let answer = self.run(peer, "race", &extra)?;
        serde_json::from_str(answer.trim()).map_err(|e| format!("{} answered {answer:?}: {e}", peer.name()))
    }
}

/// `cargo build --release --locked` of the peers into the target directory
/// this binary runs from (their shared dependencies are built once).
fn build() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let profile_dir = exe.parent().ok_or("no directory of the running binary")?;
    let target_dir = profile_dir.parent().ok_or("no target directory above the running binary")?;
    eprintln!("building the peers (cqrs-es, disintegrate): cargo build --release --locked --manifest-path {MANIFEST}");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--locked", "--manifest-path", MANIFEST, "--target-dir"])
        .arg(target_dir)
        .status()
        .map_err(|e| format!("running cargo to build the peers: {e} (or pass --peers-bin PATH)"))?;
    if !status.success() {
        return Err(format!("building the peers failed ({status}); pass --peers-bin PATH to use a built one"));
    }
    Ok(target_dir.join("release").join("reventless-bench-peers"))
}
