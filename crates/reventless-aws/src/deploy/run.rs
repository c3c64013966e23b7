//! The deploy commands over the plan and the diff: `plan`, `deploy`,
//! `status`, `destroy`, `outputs`, with the per-stage deploy lock.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use reventless_core::Manifest;
use serde::Serialize;
use tokio::sync::Semaphore;

use super::apply::{Change, Clients, CodeZip, DeployError, Existing, MAX_IN_FLIGHT, Scope, diff};
use super::config::ProjectConfig;
pub use super::destroy::{destroy, outputs};
pub use super::lock::Lock;
use super::plan::{PLATFORM, Plan, Resource, ResourceKind, StageOutputs, lock_table, parameter_path, plan_with};
pub use super::status::{ResourceStatus, StageStatus, stage_status, status};

/// What the deploy is about: the configuration, each stack's manifest and code.
pub struct Inputs {
    pub config: ProjectConfig,
    pub manifests: BTreeMap<String, Manifest>,
    pub code: BTreeMap<String, CodeZip>,
}

#[derive(Debug, Clone, Default)]
pub struct DeployOptions {
    /// Only this plugin stack (its dependencies must be deployed).
    pub plugin: Option<String>,
    /// Delete tables of removed components too.
    pub allow_data_loss: bool,
}

/// What a deploy (or a plan) found and did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployReport {
    pub stage: String,
    pub changes: Vec<Change>,
    pub unchanged: usize,
    pub applied: usize,
    pub uploaded: usize,
    pub skipped: Vec<String>,
    pub failures: Vec<Failure>,
    pub api_calls: usize,
    pub millis: u128,
    /// The plan's warnings (it deploys, but deserves a second look).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub kind: ResourceKind,
    pub name: String,
    pub error: String,
}

fn scope_of(config: &ProjectConfig, only: Option<&str>) -> Result<(Scope, Vec<Vec<String>>), DeployError> {
    let waves = config.deploy_order().map_err(|e| DeployError::Refused(e.to_string()))?;
    match only {
        None => {
            let mut scope: Scope = config.plugins.keys().cloned().collect();
            scope.insert(PLATFORM.into());
            let mut ordered = vec![vec![PLATFORM.to_string()]];
            ordered.extend(waves);
            Ok((scope, ordered))
        }
        Some(stack) if config.plugins.contains_key(stack) => {
            Ok((BTreeSet::from([stack.to_string()]), vec![vec![stack.to_string()]]))
        }
        Some(PLATFORM) => Ok((BTreeSet::from([PLATFORM.to_string()]), vec![vec![PLATFORM.to_string()]])),
        Some(other) => Err(DeployError::Refused(format!(
            "no plugin stack `{other}` (known: {})",
            config.plugins.keys().cloned().collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// The plan of the stacks at hand: every stack of the file, or `only` (its
/// manifest the only one read); what other stacks of the stage publish
/// (extension points, see [`StageOutputs`]) comes from the stage's outputs.
pub async fn plan_for(clients: &Clients, inputs: &Inputs, only: Option<&str>) -> Result<Plan, DeployError> {
    let account = clients.account().await?;
    let mut stage =
        StageOutputs::from_parameters(&inputs.config, &super::destroy::outputs(clients, &inputs.config).await?);
    stage.planned = only.map(|only| BTreeSet::from([only.to_string()]));
    plan_with(&inputs.config, &account, &inputs.manifests, &stage).map_err(|e| DeployError::Refused(e.to_string()))
}

/// A full deploy from a project file without a gateway (`[platform] bin`)
/// leaves an existing platform stack alone: another project file deploying
/// into the stage (the one with the gateway) owns it. Answers whether it did.
async fn leave_foreign_platform(
    clients: &Clients,
    config: &ProjectConfig,
    options: &DeployOptions,
    scope: &mut Scope,
) -> Result<bool, DeployError> {
    if options.plugin.is_some() || config.platform.bin.is_some() {
        return Ok(false);
    }
    let path = parameter_path(config, PLATFORM, "registry-table");
    let exists = clients.ssm.get_parameter().name(&path).send().await.is_ok();
    if exists {
        scope.remove(PLATFORM);
    }
    Ok(exists)
}

/// The plan and its diff with what exists, without changing anything.
pub async fn plan_stage(
    clients: &Clients,
    inputs: &Inputs,
    options: &DeployOptions,
) -> Result<(Plan, DeployReport), DeployError> {
    let started = Instant::now();
    let plan = plan_for(clients, inputs, options.plugin.as_deref()).await?;
    let (mut scope, _) = scope_of(&inputs.config, options.plugin.as_deref())?;
    leave_foreign_platform(clients, &inputs.config, options, &mut scope).await?;
    if options.plugin.is_none() {
        // A full deploy also prunes the stacks removed from the file (its source's only).
        scope.extend(clients.removed_stacks(&inputs.config).await?);
    }
    let (changes, _) = diff(clients, &plan, &scope, &inputs.code).await?;
    let report = report(&plan, changes, started, clients);
    Ok((plan, report))
}

fn report(plan: &Plan, changes: Vec<Change>, started: Instant, clients: &Clients) -> DeployReport {
    let unchanged = changes.iter().filter(|c| matches!(c, Change::Unchanged { .. })).count();
    DeployReport {
        stage: plan.stage.clone(),
        changes: changes.into_iter().filter(|c| !matches!(c, Change::Unchanged { .. })).collect(),
        unchanged,
        applied: 0,
        uploaded: 0,
        skipped: Vec::new(),
        failures: Vec::new(),
        api_calls: clients.call_count(),
        millis: started.elapsed().as_millis(),
        warnings: plan.warnings.clone(),
    }
}

/// Applies the plan: platform first, then plugin stacks in `depends_on`
/// waves (a wave's stacks in parallel), each stack's resources in creation
/// waves, at most 5 calls in flight; failures are collected, unrelated
/// resources continue.
pub async fn deploy(
    clients: &Clients,
    inputs: &Inputs,
    options: &DeployOptions,
    progress: &(dyn Fn(String) + Sync),
) -> Result<DeployReport, DeployError> {
    let started = Instant::now();
    let config = &inputs.config;
    let plan = plan_for(clients, inputs, options.plugin.as_deref()).await?;
    let (mut scope, waves) = scope_of(config, options.plugin.as_deref())?;
    if leave_foreign_platform(clients, config, options, &mut scope).await? {
        progress("platform: deployed from another project file; used, left as it is".into());
    }
    check_dependencies(clients, config, &scope).await?;
    if options.plugin.is_none() {
        // A full deploy also prunes the stacks removed from the file (its source's only).
        scope.extend(clients.removed_stacks(config).await?);
    }
    let lock_resource = plan
        .resources
        .iter()
        .find(|r| r.kind == ResourceKind::Table && r.name == lock_table(config))
        .cloned()
        .ok_or_else(|| DeployError::Refused("the plan has no deploy lock table".into()))?;
    let lock = Lock::acquire(clients, config, &lock_resource, &plan).await?;
    let result = apply(clients, inputs, options, &plan, &scope, &waves, progress).await;
    lock.release(clients).await;
    let (changes, applied, uploaded, skipped, failures) = result?;
    let mut report = report(&plan, changes, started, clients);
    report.applied = applied;
    report.uploaded = uploaded;
    report.skipped = skipped;
    report.failures = failures;
    report.api_calls = clients.call_count();
    report.millis = started.elapsed().as_millis();
    Ok(report)
}

type Applied = (Vec<Change>, usize, usize, Vec<String>, Vec<Failure>);

async fn apply(
    clients: &Clients,
    inputs: &Inputs,
    options: &DeployOptions,
    plan: &Plan,
    scope: &Scope,
    waves: &[Vec<String>],
    progress: &(dyn Fn(String) + Sync),
) -> Result<Applied, DeployError> {
    let (changes, existing) = diff(clients, plan, scope, &inputs.code).await?;
    let by_key: BTreeMap<(ResourceKind, String), &Resource> = plan.resources.iter().map(|r| (r.key(), r)).collect();
    let semaphore = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let total = changes.iter().filter(|c| !matches!(c, Change::Unchanged { .. })).count();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let (mut applied, mut uploaded, mut skipped, mut failures) = (0, 0, Vec::new(), Vec::new());
    for wave in waves {
        let stacks: BTreeSet<&String> = wave.iter().collect();
        for creation_wave in 0..ResourceKind::WAVES {
            let mut work = Vec::new();
            for change in &changes {
                let (kind, name, stack, exists, fields) = match change {
                    Change::Create { kind, name, stack } => (*kind, name, stack, false, Vec::new()),
                    Change::Update { kind, name, stack, fields } => (*kind, name, stack, true, fields.clone()),
                    _ => continue,
                };
                let Some(resource) = by_key.get(&(kind, name.clone())) else { continue };
                if !stacks.contains(stack) || resource.wave() != creation_wave {
                    continue;
                }
                let code = if kind == ResourceKind::Function && (!exists || fields.iter().any(|f| f == "code")) {
                    inputs.code.get(stack)
                } else {
                    None
                };
                work.push((change.clone(), (*resource).clone(), code.cloned(), exists));
            }
            let results = futures::future::join_all(work.into_iter().map(|(change, resource, code, exists)| {
                let semaphore = semaphore.clone();
                let done = &done;
                async move {
                    let _permit = semaphore.acquire().await;
                    let result = clients.ensure(plan, &resource, code.as_ref(), exists).await;
                    let count = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    let outcome = if result.is_ok() { "ok" } else { "FAILED" };
                    progress(format!(
                        "[{count}/{total}] {} {:?} {} {outcome}",
                        change.symbol(),
                        resource.kind,
                        resource.name
                    ));
                    (resource, code.is_some(), result)
                }
            }))
            .await;
            for (resource, with_code, result) in results {
                match result {
                    Ok(()) => {
                        applied += 1;
                        uploaded += usize::from(with_code);
                    }
                    Err(error) => {
                        failures.push(Failure { kind: resource.kind, name: resource.name, error: error.to_string() })
                    }
                }
            }
            // Tables exist now; functions of this build come next: their
            // events tables must be on the layout they read.
            if creation_wave + 1 == ResourceKind::Function.wave() {
                for stack in &stacks {
                    upgrade_events_table(clients, inputs, stack, progress, &mut failures).await;
                }
            }
        }
    }
    // Removed components: dependents first (reverse creation order).
    let mut removals: Vec<&Existing> = existing
        .iter()
        .filter(|e| {
            changes.iter().any(|c| matches!(c, Change::Delete { kind, name, .. } if *kind == e.kind && *name == e.name))
        })
        .collect();
    removals.sort_by_key(|e| std::cmp::Reverse((e.kind.wave(), e.kind)));
    for kind_wave in (0..ResourceKind::WAVES).rev() {
        let batch: Vec<&Existing> = removals.iter().copied().filter(|e| e.kind.wave() == kind_wave).collect();
        let results = futures::future::join_all(batch.into_iter().map(|existing| {
            let semaphore = semaphore.clone();
            let done = &done;
            async move {
                if existing.kind == ResourceKind::Table && !options.allow_data_loss {
                    return (existing, Err(None));
                }
                let _permit = semaphore.acquire().await;
                let result = clients.remove_losing_data(existing, progress).await;
                let count = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                let outcome = if result.is_ok() { "ok" } else { "FAILED" };
                progress(format!("[{count}/{total}] - {:?} {} {outcome}", existing.kind, existing.name));
                (existing, result.map_err(Some))
            }
        }))
        .await;
        for (existing, result) in results {
            match result {
                Ok(()) => applied += 1,
                Err(None) => {
                    skipped.push(format!("table {} kept (deleting it needs --allow-data-loss)", existing.name))
                }
                Err(Some(error)) => failures.push(Failure {
                    kind: existing.kind,
                    name: existing.name.clone(),
                    error: error.to_string(),
                }),
            }
        }
    }
    // Pruned stacks (in scope, not in the file): out of the gateway's registry.
    let pruned: Vec<String> =
        scope.iter().filter(|s| *s != PLATFORM && !inputs.config.plugins.contains_key(*s)).cloned().collect();
    if let Err(error) = clients.finish_removal(&inputs.config, &pruned, progress).await {
        failures.push(Failure { kind: ResourceKind::Parameter, name: pruned.join(","), error: error.to_string() });
    }
    Ok((changes, applied, uploaded, skipped, failures))
}

/// Upgrades a plugin stack's events table to the layout this build reads
/// (one log per plugin); a no-op read of a marker when it is current.
async fn upgrade_events_table(
    clients: &Clients,
    inputs: &Inputs,
    stack: &str,
    progress: &(dyn Fn(String) + Sync),
    failures: &mut Vec<Failure>,
) {
    let Some(manifest) = inputs.manifests.get(stack) else { return };
    if manifest.storage.logs.is_empty() {
        return;
    }
    let names = super::plan::stack_names(&inputs.config, stack);
    let (events, rows) = (&names.stores.events_table, &names.stores.rows_table);
    match crate::event_log::upgrade::upgrade_plugin_log(&clients.dynamodb, events, rows, &manifest.plugin).await {
        Ok(report) if report.events_moved > 0 || report.checkpoints_moved > 0 => progress(format!(
            "upgraded {events}: {} events of old aggregate logs joined the log {}, {} checkpoints moved",
            report.events_moved, manifest.plugin, report.checkpoints_moved
        )),
        Ok(_) => {}
        Err(error) => {
            failures.push(Failure { kind: ResourceKind::Table, name: events.clone(), error: error.to_string() })
        }
    }
}

/// A stack's dependencies must be deployed (their outputs are in SSM) or be
/// deployed in this run.
async fn check_dependencies(clients: &Clients, config: &ProjectConfig, scope: &Scope) -> Result<(), DeployError> {
    if !scope.contains(PLATFORM) {
        let path = parameter_path(config, PLATFORM, "registry-table");
        if clients.ssm.get_parameter().name(&path).send().await.is_err() {
            return Err(DeployError::Refused(format!(
                "the platform stack is not deployed to stage `{}` (no {path}); deploy the stage (or `--plugin platform`) first",
                config.stage
            )));
        }
    }
    for stack in scope {
        let Some(plugin) = config.plugins.get(stack) else { continue };
        for dependency in plugin.depends_on.iter().filter(|d| !scope.contains(*d)) {
            let path = parameter_path(config, dependency, "events-table");
            let found = clients.ssm.get_parameter().name(&path).send().await;
            if found.is_err() {
                return Err(DeployError::Refused(format!(
                    "plugin `{stack}` depends on `{dependency}`, which is not deployed to stage `{}` (no {path}); deploy it first",
                    config.stage
                )));
            }
        }
    }
    Ok(())
}
