//! `status`: each planned resource as it exists (or not), with function code
//! hashes and queue depths, and each plugin's health ([`super::health`]).
use serde::Serialize;
use serde_json::{Value, json};

use super::apply::{Clients, DeployError};
use super::health::PluginHealth;
use super::plan::{Plan, ResourceKind};
use super::run::Inputs;

/// One planned resource's state.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    pub kind: ResourceKind,
    pub name: String,
    pub stack: String,
    /// `exists`, `drifted` or `missing`.
    pub state: String,
    pub drifted: Vec<String>,
    pub detail: Value,
}

/// What `reventless status` reports: the resources and each plugin's health.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StageStatus {
    pub stage: String,
    /// Every resource exists as planned.
    pub deployed: bool,
    /// Every plugin is healthy.
    pub healthy: bool,
    pub resources: Vec<ResourceStatus>,
    pub plugins: Vec<PluginHealth>,
}

impl StageStatus {
    /// For a person: one line per resource, then per plugin a summary line
    /// (healthy, or UNHEALTHY and why) and its facts.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for status in &self.resources {
            let drifted =
                if status.drifted.is_empty() { String::new() } else { format!(" ({})", status.drifted.join(", ")) };
            let detail = if status.detail.is_null() { String::new() } else { format!(" {}", status.detail) };
            text.push_str(&format!("{:<8} {:?} {}{drifted}{detail}\n", status.state, status.kind, status.name));
        }
        for plugin in &self.plugins {
            text.push_str(&format!("\nplugin {}\n", plugin.summary()));
            for queue in plugin.dead_letters.iter().chain(&plugin.stream_failures) {
                text.push_str(&format!("  {:<9} {} message(s) in {}\n", "queue", queue.messages, queue.queue));
            }
            let beat = match (plugin.heartbeat.age_seconds, plugin.heartbeat.stale) {
                (None, _) => "never".to_string(),
                (Some(age), true) => format!("{age} s ago (STALE)"),
                (Some(age), false) => format!("{age} s ago"),
            };
            text.push_str(&format!("  {:<9} {beat}\n", "heartbeat"));
            for automation in &plugin.automations {
                text.push_str(&format!(
                    "  {:<9} {}: {} failed, {} exhausted\n",
                    "todos", automation.automation, automation.failed, automation.exhausted
                ));
            }
        }
        text.push_str(&format!(
            "\nstage {}: {}, {}\n",
            self.stage,
            if self.deployed { "deployed as planned" } else { "NOT deployed as planned" },
            if self.healthy { "healthy" } else { "UNHEALTHY" }
        ));
        text
    }
}

/// Each planned resource: exists / drifted / missing; function code hashes,
/// queue depths and dead letters.
pub async fn status(clients: &Clients, inputs: &Inputs) -> Result<Vec<ResourceStatus>, DeployError> {
    let plan = super::run::plan_for(clients, inputs, None).await?;
    resource_statuses(clients, &plan).await
}

/// The resources of the stage and the health of its plugins.
pub async fn stage_status(clients: &Clients, inputs: &Inputs) -> Result<StageStatus, DeployError> {
    let plan = super::run::plan_for(clients, inputs, None).await?;
    let resources = resource_statuses(clients, &plan).await?;
    let plugins = super::health::plugin_health(clients, &inputs.config, &plan, &inputs.manifests).await;
    Ok(StageStatus {
        stage: inputs.config.stage.clone(),
        deployed: resources.iter().all(|r| r.state == "exists"),
        healthy: plugins.iter().all(|p| p.healthy),
        resources,
        plugins,
    })
}

async fn resource_statuses(clients: &Clients, plan: &Plan) -> Result<Vec<ResourceStatus>, DeployError> {
    let mut statuses = Vec::new();
    for planned in &plan.resources {
        // Compared as the diff compares: with the ids of the WebSocket APIs it names.
        let resolved = clients.resolve_late(planned, false).await.unwrap_or_else(|_| planned.clone());
        let resource = &resolved;
        let observed = clients.observe(resource).await?;
        let (state, drifted, mut detail) = match &observed {
            None => ("missing", Vec::new(), Value::Null),
            Some(actual) => {
                let fields = super::apply::changed_fields(&resource.spec, actual);
                (if fields.is_empty() { "exists" } else { "drifted" }, fields, Value::Null)
            }
        };
        if let Some(actual) = &observed {
            if resource.kind == ResourceKind::Function {
                detail = json!({"codeSha256": actual["codeSha256"]});
            }
            if resource.kind == ResourceKind::Table && resource.spec.get("deletionProtection").is_some() {
                // A plugin table's safety settings as they are (`drifted` names what differs).
                detail = json!({"pointInTimeRecovery": actual["pointInTimeRecovery"],
                    "deletionProtection": actual["deletionProtection"], "billingMode": actual["billingMode"]});
            }
            if resource.kind == ResourceKind::Queue
                && let Ok((visible, in_flight)) = queue_depth(clients, &resource.name).await
            {
                detail = json!({
                    "visible": visible,
                    "inFlight": in_flight,
                    "deadLetters": plan.resources.iter().any(|other| other.spec["redriveTo"] == resource.name.as_str()),
                });
            }
        }
        statuses.push(ResourceStatus {
            kind: resource.kind,
            name: resource.name.clone(),
            stack: resource.stack.clone(),
            state: state.into(),
            drifted,
            detail,
        });
    }
    Ok(statuses)
}

/// The approximate messages of a queue: (visible, in flight).
pub async fn queue_depth(clients: &Clients, queue: &str) -> Result<(u64, u64), String> {
    use aws_sdk_sqs::types::QueueAttributeName::{ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible};
    let url = clients.sqs.get_queue_url().queue_name(queue).send().await.map_err(|e| service_error(&e))?;
    let attributes = clients
        .sqs
        .get_queue_attributes()
        .queue_url(url.queue_url().unwrap_or_default())
        .attribute_names(ApproximateNumberOfMessages)
        .attribute_names(ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|e| service_error(&e))?;
    let map = attributes.attributes().cloned().unwrap_or_default();
    let get = |key| map.get(&key).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Ok((get(ApproximateNumberOfMessages), get(ApproximateNumberOfMessagesNotVisible)))
}

fn service_error<E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error>(error: &E) -> String {
    match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => aws_smithy_types::error::display::DisplayErrorContext(error).to_string(),
    }
}
