//! The diff of the plan with what exists: one `Change` per resource.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::Semaphore;

use super::{Clients, CodeZip, DeployError, Existing, MAX_IN_FLIGHT};
use crate::deploy::config::DEPLOYED_FROM;
use crate::deploy::plan::{Plan, Resource, ResourceKind};

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "action")]
pub enum Change {
    Create { kind: ResourceKind, name: String, stack: String },
    Update { kind: ResourceKind, name: String, stack: String, fields: Vec<String> },
    Delete { kind: ResourceKind, name: String, stack: String },
    Unchanged { kind: ResourceKind, name: String, stack: String },
}

impl Change {
    pub fn symbol(&self) -> char {
        match self {
            Change::Create { .. } => '+',
            Change::Update { .. } => '~',
            Change::Delete { .. } => '-',
            Change::Unchanged { .. } => '=',
        }
    }
}

/// The fields of `desired` whose value differs in `actual`.
pub fn changed_fields(desired: &Value, actual: &Value) -> Vec<String> {
    let Some(desired) = desired.as_object() else { return Vec::new() };
    desired
        .iter()
        .filter(|(key, value)| {
            let actual = actual.get(key.as_str()).unwrap_or(&Value::Null);
            !same(value, actual)
        })
        .map(|(key, _)| key.clone())
        .collect()
}

fn same(desired: &Value, actual: &Value) -> bool {
    match (desired, actual) {
        (Value::Array(a), Value::Null) | (Value::Null, Value::Array(a)) => a.is_empty(),
        (Value::Object(a), Value::Null) | (Value::Null, Value::Object(a)) => a.is_empty(),
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => desired == actual,
    }
}

/// A set of stacks to limit a diff to.
pub type Scope = BTreeSet<String>;

/// The diff of the plan (limited to `scope`) with what exists.
pub async fn diff(
    clients: &Clients,
    plan: &Plan,
    scope: &Scope,
    code: &BTreeMap<String, CodeZip>,
) -> Result<(Vec<Change>, Vec<Existing>), DeployError> {
    let semaphore = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut observations = Vec::new();
    for resource in plan.resources.iter().filter(|r| scope.contains(&r.stack)) {
        let semaphore = semaphore.clone();
        let clients = clients.clone();
        let resource = resource.clone();
        observations.push(tokio::spawn(async move {
            let _permit = semaphore.acquire().await;
            // Compared with the ids of the WebSocket APIs it names, where they exist.
            let resource = clients.resolve_late(&resource, false).await.unwrap_or(resource);
            (clients.observe(&resource).await, resource)
        }));
    }
    let mut changes = Vec::new();
    for observation in observations {
        let (observed, resource) = observation.await.map_err(|e| DeployError::Refused(e.to_string()))?;
        let (kind, name, stack) = (resource.kind, resource.name.clone(), resource.stack.clone());
        match observed? {
            None => changes.push(Change::Create { kind, name, stack }),
            Some(actual) => {
                let mut fields = changed_fields(&resource.spec, &actual);
                if kind == ResourceKind::Function
                    && let Some(zip) = code.get(&stack)
                    && actual.get("codeSha256").and_then(Value::as_str) != Some(zip.package.code_sha256.as_str())
                {
                    fields.push("code".into());
                }
                if fields.is_empty() {
                    changes.push(Change::Unchanged { kind, name, stack });
                } else {
                    changes.push(Change::Update { kind, name, stack, fields });
                }
            }
        }
    }
    let existing = clients.discover(&plan.project, &plan.stage).await?;
    let planned: BTreeSet<(ResourceKind, String)> = plan.resources.iter().map(Resource::key).collect();
    // A stack in scope with nothing planned is being pruned: its
    // `deployed-from` output stays until its tables are gone (see
    // `finish_removal`), so a later deploy with --allow-data-loss still
    // recognizes it as its own.
    let planned_stacks: BTreeSet<&str> = plan.resources.iter().map(|r| r.stack.as_str()).collect();
    let kept_output = |found: &Existing| {
        found.kind == ResourceKind::Parameter
            && !planned_stacks.contains(found.stack.as_str())
            && found.name.ends_with(&format!("/{}/{DEPLOYED_FROM}", found.stack))
    };
    for found in existing.iter().filter(|e| scope.contains(&e.stack) && !kept_output(e)) {
        if !planned.contains(&(found.kind, found.name.clone())) {
            changes.push(Change::Delete { kind: found.kind, name: found.name.clone(), stack: found.stack.clone() });
        }
    }
    Ok((changes, existing))
}
