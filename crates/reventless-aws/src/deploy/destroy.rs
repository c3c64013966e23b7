//! `destroy` and `outputs`: the whole stage, or one plugin stack, found by
//! name prefix and tag.
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::Semaphore;

use super::apply::{Clients, DeployError, Existing, MAX_IN_FLIGHT};
use super::config::{DEPLOYED_FROM, ProjectConfig};
use super::plan::{PLATFORM, ResourceKind, parameter_path};
use super::run::Failure;

#[derive(Debug, Clone, Default)]
pub struct DestroyOptions {
    /// Only this plugin stack: it is disconnected from the gateway, the
    /// platform and the other stacks stay. Its tables go only with `allow_data_loss`.
    pub plugin: Option<String>,
    /// Delete tables with deletion protection too (turning it off first);
    /// destroying one plugin, delete its tables at all.
    pub allow_data_loss: bool,
}

/// What a destroy removed, kept and failed to remove.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DestroyReport {
    /// Everything of the stage (or the plugin) that was found.
    #[serde(skip)]
    pub found: Vec<Existing>,
    pub removed: Vec<Existing>,
    /// Why a resource stayed (a table without `--allow-data-loss`).
    pub kept: Vec<String>,
    pub failures: Vec<Failure>,
}

/// Removes everything of the stage (found by name prefix and tag); a table
/// with deletion protection fails (see [`destroy_with`]).
pub async fn destroy(
    clients: &Clients,
    config: &ProjectConfig,
    progress: &(dyn Fn(String) + Sync),
) -> Result<(Vec<Existing>, Vec<Failure>), DeployError> {
    let report = destroy_with(clients, config, &DestroyOptions::default(), progress).await?;
    Ok((report.found, report.failures))
}

/// Removes the stage, or with `plugin` one plugin stack. Tables with
/// deletion protection are refused unless `allow_data_loss` (which turns it
/// off, with a progress line); a plugin's tables are kept without it.
pub async fn destroy_with(
    clients: &Clients,
    config: &ProjectConfig,
    options: &DestroyOptions,
    progress: &(dyn Fn(String) + Sync),
) -> Result<DestroyReport, DeployError> {
    let mut existing = clients.discover(&config.project, &config.stage).await?;
    if let Some(plugin) = &options.plugin {
        if plugin == PLATFORM {
            return Err(DeployError::Refused(
                "the platform stack serves every plugin: destroy the whole stage instead".into(),
            ));
        }
        existing.retain(|e| e.stack == *plugin);
        if existing.is_empty() {
            return Err(DeployError::Refused(format!(
                "no plugin stack `{plugin}` in stage `{}` of {}",
                config.stage, config.project
            )));
        }
        // Removed last, once its tables are gone (see `finish_removal`).
        let output = parameter_path(config, plugin, DEPLOYED_FROM);
        existing.retain(|e| !(e.kind == ResourceKind::Parameter && e.name == output));
    }
    existing.sort_by_key(|e| std::cmp::Reverse((e.kind.wave(), e.kind)));
    let semaphore = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut report = DestroyReport::default();
    for kind_wave in (0..ResourceKind::WAVES).rev() {
        let batch: Vec<&Existing> = existing.iter().filter(|e| e.kind.wave() == kind_wave).collect();
        let results = futures::future::join_all(batch.into_iter().map(|resource| {
            let semaphore = semaphore.clone();
            async move {
                if resource.kind == ResourceKind::Table && options.plugin.is_some() && !options.allow_data_loss {
                    return (resource, None);
                }
                let _permit = semaphore.acquire().await;
                let result = if options.allow_data_loss {
                    clients.remove_losing_data(resource, progress).await
                } else {
                    clients.remove(resource).await
                };
                progress(format!(
                    "- {:?} {} {}",
                    resource.kind,
                    resource.name,
                    if result.is_ok() { "ok" } else { "FAILED" }
                ));
                (resource, Some(result))
            }
        }))
        .await;
        for (resource, result) in results {
            match result {
                None => report.kept.push(format!("table {} kept (deleting it needs --allow-data-loss)", resource.name)),
                Some(Ok(())) => report.removed.push(resource.clone()),
                Some(Err(error)) => report.failures.push(Failure {
                    kind: resource.kind,
                    name: resource.name.clone(),
                    error: error.to_string(),
                }),
            }
        }
    }
    if let Some(plugin) = &options.plugin
        && let Err(error) = clients.finish_removal(config, std::slice::from_ref(plugin), progress).await
    {
        report.failures.push(Failure { kind: ResourceKind::Parameter, name: plugin.clone(), error: error.to_string() });
    }
    report.found = existing;
    Ok(report)
}

/// The stage's outputs (SSM parameters under `/reventless/{project}/{stage}/`).
pub async fn outputs(clients: &Clients, config: &ProjectConfig) -> Result<BTreeMap<String, String>, DeployError> {
    let path = format!("/reventless/{}/{}/", config.project, config.stage);
    Ok(clients.parameters_under(&path).await?.into_iter().collect())
}
