//! `seed`: loads an application's seed data through the public command path
//! (the same authorization and decisions as the API), phase by phase.
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use reventless_core::{CommandOutcome, CommandRequest, Plugin};
use serde::Serialize;
use serde_json::json;

use crate::AppError;
use crate::app::StorageArgs;

/// How much data `seed` loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SeedSize {
    /// The full data set.
    Full,
    /// A small sample (`seed --sample`).
    Sample,
}

/// Seed data: phases run in order; between phases the platform settles, so a
/// phase can rely on what earlier phases caused in other plugins (products
/// synced into Ordering before orders are placed).
#[derive(Debug, Clone, Default)]
pub struct Seed {
    phases: Vec<SeedPhase>,
    already_present: Vec<String>,
}

#[derive(Debug, Clone)]
struct SeedPhase {
    name: String,
    requests: Vec<CommandRequest>,
}

impl Seed {
    /// Seed data without phases.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a phase of commands (each with its caller).
    pub fn phase(mut self, name: impl Into<String>, requests: Vec<CommandRequest>) -> Self {
        self.phases.push(SeedPhase { name: name.into(), requests });
        self
    }

    /// Rejection codes that mean "seeded before" (`CategoryAlreadyExists`):
    /// counted as already present, so seeding twice succeeds.
    pub fn already_present(mut self, codes: &[&str]) -> Self {
        self.already_present.extend(codes.iter().map(|code| code.to_string()));
        self
    }

    /// Every command of every phase, in order.
    pub fn requests(&self) -> impl Iterator<Item = &CommandRequest> {
        self.phases.iter().flat_map(|phase| phase.requests.iter())
    }
}

/// What one phase did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PhaseReport {
    /// The phase's name.
    pub phase: String,
    /// Commands sent.
    pub commands: usize,
    /// Accepted with events appended.
    pub applied: usize,
    /// Accepted without events, or refused as already present.
    pub already_present: usize,
    /// Other refusals, by error code.
    pub rejected: BTreeMap<String, usize>,
    /// Commands that could not run.
    pub failed: usize,
    /// How long the phase took, settling included.
    pub millis: u128,
}

/// How long the platform may take to settle between phases.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);

pub(crate) async fn run_seed(
    plugins: Vec<Plugin>,
    capabilities: reventless_spec::Capabilities,
    storage: &StorageArgs,
    seed: Seed,
    size: SeedSize,
    as_json: bool,
) -> Result<(), AppError> {
    let runtime = storage.start(plugins, capabilities).await?;
    if !as_json {
        eprintln!(
            "seeding {} data into {}",
            if size == SeedSize::Full { "full" } else { "sample" },
            storage.describe()
        );
    }
    let mut out = std::io::stdout().lock();
    let mut reports = Vec::new();
    for phase in &seed.phases {
        let started = Instant::now();
        let mut report =
            PhaseReport { phase: phase.name.clone(), commands: phase.requests.len(), ..Default::default() };
        for (done, request) in phase.requests.iter().enumerate() {
            match runtime.execute(request.clone()).await {
                Ok(CommandOutcome::Accepted { position: Some(_), .. } | CommandOutcome::Pending { .. }) => {
                    report.applied += 1
                }
                Ok(CommandOutcome::Accepted { position: None, .. }) => report.already_present += 1,
                Ok(CommandOutcome::Rejected { error_code, .. }) if seed.already_present.contains(&error_code) => {
                    report.already_present += 1
                }
                Ok(CommandOutcome::Rejected { error_code, error_detail, entity_id, .. }) => {
                    if !as_json {
                        let entity = entity_id.unwrap_or_default();
                        eprintln!("  {}.{} {entity}: {error_code} {error_detail}", request.plugin, request.command);
                    }
                    *report.rejected.entry(error_code).or_default() += 1;
                }
                Err(error) => {
                    eprintln!("  {}.{}: {error}", request.plugin, request.command);
                    report.failed += 1;
                }
            }
            if !as_json && (done + 1) % 50 == 0 {
                eprintln!("  {}: {}/{}", phase.name, done + 1, phase.requests.len());
            }
        }
        runtime.settle_within(SETTLE_LIMIT).await?;
        report.millis = started.elapsed().as_millis();
        if as_json {
            writeln!(out, "{}", json!(report))?;
        } else {
            let rejected: usize = report.rejected.values().sum();
            writeln!(
                out,
                "{:<12} {:>4} commands: {:>4} applied, {:>4} already present, {:>3} rejected, {:>3} failed ({} ms)",
                report.phase,
                report.commands,
                report.applied,
                report.already_present,
                rejected,
                report.failed,
                report.millis
            )?;
        }
        reports.push(report);
    }
    runtime.shutdown().await;
    let total: usize = reports.iter().map(|r| r.commands).sum();
    let failed: usize = reports.iter().map(|r| r.failed + r.rejected.values().sum::<usize>()).sum();
    if failed > 0 {
        return Err(AppError::CommandsFailed { failed, total });
    }
    Ok(())
}
