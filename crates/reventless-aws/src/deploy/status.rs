//! `status`: each planned resource as it exists (or not), with function code
//! hashes and queue depths.
use serde::Serialize;
use serde_json::{Value, json};

use super::apply::{Clients, DeployError};
use super::plan::ResourceKind;
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

/// Each planned resource: exists / drifted / missing; function code hashes,
/// queue depths and dead letters.
pub async fn status(clients: &Clients, inputs: &Inputs) -> Result<Vec<ResourceStatus>, DeployError> {
    let plan = super::run::plan_for(clients, inputs, None).await?;
    let mut statuses = Vec::new();
    for resource in &plan.resources {
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
                && let Ok(url) = clients.sqs.get_queue_url().queue_name(&resource.name).send().await
                && let Ok(attributes) = clients
                    .sqs
                    .get_queue_attributes()
                    .queue_url(url.queue_url().unwrap_or_default())
                    .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
                    .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                    .send()
                    .await
            {
                let map = attributes.attributes().cloned().unwrap_or_default();
                let get = |key| map.get(&key).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                detail = json!({
                    "visible": get(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages),
                    "inFlight": get(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
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
