//! `destroy` and `outputs`: the whole stage, found by name prefix and tag.
use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::apply::{Clients, DeployError, Existing, MAX_IN_FLIGHT};
use super::config::ProjectConfig;
use super::plan::ResourceKind;
use super::run::Failure;

/// Removes everything of the stage (found by name prefix and tag).
pub async fn destroy(
    clients: &Clients,
    config: &ProjectConfig,
    progress: &(dyn Fn(String) + Sync),
) -> Result<(Vec<Existing>, Vec<Failure>), DeployError> {
    let mut existing = clients.discover(&config.project, &config.stage).await?;
    existing.sort_by_key(|e| std::cmp::Reverse((e.kind.wave(), e.kind)));
    let semaphore = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut failures = Vec::new();
    for kind_wave in (0..ResourceKind::WAVES).rev() {
        let batch: Vec<&Existing> = existing.iter().filter(|e| e.kind.wave() == kind_wave).collect();
        let results = futures::future::join_all(batch.into_iter().map(|resource| {
            let semaphore = semaphore.clone();
            async move {
                let _permit = semaphore.acquire().await;
                let result = clients.remove(resource).await;
                progress(format!(
                    "- {:?} {} {}",
                    resource.kind,
                    resource.name,
                    if result.is_ok() { "ok" } else { "FAILED" }
                ));
                (resource, result)
            }
        }))
        .await;
        for (resource, result) in results {
            if let Err(error) = result {
                failures.push(Failure { kind: resource.kind, name: resource.name.clone(), error: error.to_string() });
            }
        }
    }
    Ok((existing, failures))
}

/// The stage's outputs (SSM parameters under `/reventless/{project}/{stage}/`).
pub async fn outputs(clients: &Clients, config: &ProjectConfig) -> Result<BTreeMap<String, String>, DeployError> {
    let path = format!("/reventless/{}/{}/", config.project, config.stage);
    Ok(clients.parameters_under(&path).await?.into_iter().collect())
}
