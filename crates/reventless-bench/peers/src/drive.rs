//! The two workloads, the same for every peer: clients registering distinct
//! ids for a while, and clients racing to register the same id.
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

/// How one attempt to register an id ended, as the peer reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The command succeeded: the id's event was stored.
    Registered,
    /// The command was refused by the domain: the id is already registered.
    Rejected,
    /// The peer reported a concurrency conflict (optimistic lock lost,
    /// serialization failure); its users retry the command.
    Conflict,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::Rejected => "rejected",
            Self::Conflict => "conflict",
        }
    }
}

/// A peer that registers ids once: the second registration of an id is refused.
#[async_trait::async_trait]
pub trait Registrar: Send + Sync {
    /// One attempt through the peer's command path. `Err` is a failure that
    /// is neither a rejection nor a conflict (it ends the run).
    async fn register(&self, id: &str) -> Result<Outcome, String>;

    /// How many ids starting with `prefix` the peer's tables hold more than once.
    async fn stored_twice(&self, prefix: &str) -> Result<u64, String>;
}

/// Conflicts retried per command before the run fails: a conflict means
/// another command committed, so retries end quickly unless something is wrong.
const MAX_ATTEMPTS: u32 = 100;

/// Registers `id`, retrying conflicts as the peer's users do; the final
/// outcome and the conflicts met on the way.
async fn register_retrying(registrar: &dyn Registrar, id: &str) -> Result<(Outcome, u32), String> {
    let mut conflicts = 0;
    loop {
        match registrar.register(id).await? {
            Outcome::Conflict if conflicts + 1 < MAX_ATTEMPTS => conflicts += 1,
            Outcome::Conflict => return Err(format!("{id}: still conflicting after {MAX_ATTEMPTS} attempts")),
            outcome => return Ok((outcome, conflicts)),
        }
    }
}

/// Races `0..races` cut into `groups` consecutive shares (none empty).
pub fn shares(races: usize, groups: usize) -> Vec<std::ops::Range<usize>> {
    let per_group = races.div_ceil(groups.max(1)).max(1);
    (0..races).step_by(per_group).map(|start| start..(start + per_group).min(races)).collect()
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// `clients` tasks register fresh ids `{prefix}-{client}-{n}` until `duration`
/// has passed; every command must succeed (retried on conflict).
pub async fn distinct(
    registrar: Arc<dyn Registrar>,
    prefix: &str,
    clients: usize,
    duration: Duration,
) -> Result<serde_json::Value, String> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for client in 0..clients {
        let registrar = registrar.clone();
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut conflicts = 0u64;
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let id = format!("{prefix}-{client}-{n}");
                let begin = Instant::now();
                let (outcome, retried) = register_retrying(registrar.as_ref(), &id).await?;
                if outcome != Outcome::Registered {
                    return Err(format!("{id}: a fresh id was {}", outcome.name()));
                }
                conflicts += u64::from(retried);
                latencies.push(u32::try_from(begin.elapsed().as_micros()).unwrap_or(u32::MAX));
            }
            Ok::<_, String>((latencies, conflicts))
        }));
    }
    let mut latencies = Vec::new();
    let mut conflicts = 0;
    for task in tasks {
        let (task_latencies, task_conflicts) = task.await.map_err(|e| e.to_string())??;
        latencies.extend(task_latencies);
        conflicts += task_conflicts;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    Ok(json!({
        "commands": latencies.len(),
        "ops_per_sec": latencies.len() as f64 / elapsed,
        "p50_us": percentile(&latencies, 0.5),
        "p99_us": percentile(&latencies, 0.99),
        "conflicts_retried": conflicts,
    }))
}

/// `clients` tasks race to register the same id, `races` times in all:
/// in race `k` each of them registers `{prefix}-{k}` at once (a barrier
/// before each). `groups` sets of `clients` race side by side, each through
/// its own share of the races. Counts what the peer reported — successes
/// per race, rejections, conflicts — and then the ids its tables hold more
/// than once.
pub async fn race(
    registrar: Arc<dyn Registrar>,
    prefix: &str,
    clients: usize,
    races: usize,
    groups: usize,
) -> Result<serde_json::Value, String> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for share in shares(races, groups) {
        let barrier = Arc::new(tokio::sync::Barrier::new(clients));
        for _ in 0..clients {
            let registrar = registrar.clone();
            let barrier = barrier.clone();
            let prefix = prefix.to_string();
            let share = share.clone();
            tasks.push(tokio::spawn(async move {
                let mut won = Vec::with_capacity(share.len());
                let mut rejected = 0u64;
                let mut conflicts = 0u64;
                for race in share {
                    barrier.wait().await;
                    let (outcome, retried) = register_retrying(registrar.as_ref(), &format!("{prefix}-{race}")).await?;
                    conflicts += u64::from(retried);
                    match outcome {
                        Outcome::Registered => won.push(race),
                        _ => rejected += 1,
                    }
                }
                Ok::<_, String>((won, rejected, conflicts))
            }));
        }
    }
    let mut winners = vec![0u32; races];
    let (mut rejected, mut conflicts) = (0, 0);
    for task in tasks {
        let (won, task_rejected, task_conflicts) = task.await.map_err(|e| e.to_string())??;
        for race in won {
            winners[race] += 1;
        }
        rejected += task_rejected;
        conflicts += task_conflicts;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stored_twice = registrar.stored_twice(&format!("{prefix}-")).await?;
    Ok(json!({
        "races": races,
        "races_per_sec": races as f64 / elapsed,
        "successes": winners.iter().map(|&w| u64::from(w)).sum::<u64>(),
        "races_won_twice": winners.iter().filter(|&&w| w > 1).count(),
        "races_never_won": winners.iter().filter(|&&w| w == 0).count(),
        "rejections": rejected,
        "conflicts_retried": conflicts,
        "ids_stored_twice": stored_twice,
    }))
}
