//! The deploy lock of a stage: one item in the platform's lock table, so two
//! deploys of one stage never interleave.
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::apply::{Clients, DeployError};
use super::config::ProjectConfig;
use super::plan::{Plan, Resource, lock_table};

/// The deploy lock of a stage: one item, written only when absent or expired.
pub struct Lock {
    table: String,
    owner: String,
}

/// How long a lock holds when its deploy died without releasing it.
const LOCK_LEASE_MS: u64 = 15 * 60 * 1000;

impl Lock {
    pub async fn acquire(
        clients: &Clients,
        config: &ProjectConfig,
        lock_resource: &Resource,
        plan: &Plan,
    ) -> Result<Self, DeployError> {
        let table = lock_table(config);
        if clients.observe(lock_resource).await?.is_none() {
            match clients.ensure(plan, lock_resource, None, false).await {
                Ok(()) => {}
                // Another deploy created it first.
                Err(DeployError::Aws { message, .. })
                    if message.contains("ResourceInUse") || message.contains("already exists") => {}
                Err(other) => return Err(other),
            }
        }
        let owner = format!("{}@{}", std::process::id(), uuid::Uuid::now_v7());
        let now = reventless_spec::Timestamp::now().0;
        let put = clients
            .dynamodb
            .put_item()
            .table_name(&table)
            .item("id", AttributeValue::S("deploy".into()))
            .item("owner", AttributeValue::S(owner.clone()))
            .item("since", AttributeValue::N(now.to_string()))
            .item("expires", AttributeValue::N((now + LOCK_LEASE_MS).to_string()))
            .condition_expression("attribute_not_exists(id) OR expires < :now")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(Self { table, owner }),
            Err(error) if error.code() == Some("ConditionalCheckFailedException") => {
                let held = clients
                    .dynamodb
                    .get_item()
                    .table_name(&table)
                    .key("id", AttributeValue::S("deploy".into()))
                    .consistent_read(true)
                    .send()
                    .await
                    .ok()
                    .and_then(|o| o.item().cloned())
                    .unwrap_or_default();
                let text = |key: &str| {
                    held.get(key).and_then(|v| v.as_s().ok().or_else(|| v.as_n().ok())).cloned().unwrap_or_default()
                };
                Err(DeployError::Locked {
                    stage: config.stage.clone(),
                    owner: text("owner"),
                    since: text("since").parse().unwrap_or(0),
                    table,
                })
            }
            Err(error) => Err(DeployError::Aws { call: "PutItem".into(), name: table, message: error.to_string() }),
        }
    }

    pub async fn release(self, clients: &Clients) {
        let _ = clients
            .dynamodb
            .delete_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S("deploy".into()))
            .condition_expression("#owner = :me")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":me", AttributeValue::S(self.owner))
            .send()
            .await;
    }
}
