//! A table's safety and capacity settings: billing mode (and provisioned
//! capacity), point-in-time recovery, deletion protection — read back in the
//! plan's terms and brought to the plan's values.
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    BillingMode, GlobalSecondaryIndexUpdate, PointInTimeRecoverySpecification, ProvisionedThroughput,
    UpdateGlobalSecondaryIndexAction,
};
use serde_json::{Value, json};

use super::{Clients, DeployError, aws, code_is};

/// Read and write capacity units (None: not reported).
type Capacity = (Option<i64>, Option<i64>);

/// How often UpdateContinuousBackups is retried while a new table's backups
/// are still being set up (`ContinuousBackupsUnavailableException`).
const BACKUPS_RETRIES: u32 = 8;

impl Clients {
    /// The settings DescribeTable reports, in the plan's keys: `billingMode`,
    /// `readCapacity` / `writeCapacity` (provisioned; when an index differs
    /// from the table, the capacities of each), `deletionProtection`.
    pub(super) fn table_settings(table: &aws_sdk_dynamodb::types::TableDescription) -> Value {
        // A table created provisioned may lack the summary: provisioned is the default.
        let mode =
            table.billing_mode_summary().and_then(|s| s.billing_mode()).cloned().unwrap_or(BillingMode::Provisioned);
        let mut observed = json!({
            "billingMode": mode.as_str(),
            "deletionProtection": table.deletion_protection_enabled().unwrap_or(false),
        });
        if mode == BillingMode::Provisioned {
            let capacity = |t: Option<&aws_sdk_dynamodb::types::ProvisionedThroughputDescription>| {
                (t.and_then(|t| t.read_capacity_units()), t.and_then(|t| t.write_capacity_units()))
            };
            let own = capacity(table.provisioned_throughput());
            let indexes: Vec<(String, Capacity)> = table
                .global_secondary_indexes()
                .iter()
                .map(|index| {
                    (index.index_name().unwrap_or_default().to_string(), capacity(index.provisioned_throughput()))
                })
                .collect();
            if indexes.iter().all(|(_, capacity)| *capacity == own) {
                observed["readCapacity"] = json!(own.0);
                observed["writeCapacity"] = json!(own.1);
            } else {
                // Reported as they are, so that the plan's numbers differ (drift).
                let each = |pick: fn(&Capacity) -> Option<i64>| {
                    let mut all = serde_json::Map::from_iter([("table".to_string(), json!(pick(&own)))]);
                    all.extend(indexes.iter().map(|(name, capacity)| (name.clone(), json!(pick(capacity)))));
                    Value::Object(all)
                };
                observed["readCapacity"] = each(|c| c.0);
                observed["writeCapacity"] = each(|c| c.1);
            }
        }
        observed
    }

    /// Whether point-in-time recovery is on.
    pub(super) async fn point_in_time_recovery(&self, name: &str) -> Result<bool, DeployError> {
        self.count();
        let backups = self
            .dynamodb
            .describe_continuous_backups()
            .table_name(name)
            .send()
            .await
            .map_err(aws("DescribeContinuousBackups", name))?;
        let status = backups
            .continuous_backups_description()
            .and_then(|d| d.point_in_time_recovery_description())
            .and_then(|p| p.point_in_time_recovery_status());
        Ok(status == Some(&aws_sdk_dynamodb::types::PointInTimeRecoveryStatus::Enabled))
    }

    /// Brings billing, deletion protection and point-in-time recovery to the
    /// planned values (those the spec names; each only when it differs).
    pub(super) async fn ensure_table_settings(&self, name: &str, spec: &Value) -> Result<(), DeployError> {
        self.count();
        let described =
            self.dynamodb.describe_table().table_name(name).send().await.map_err(aws("DescribeTable", name))?;
        let Some(table) = described.table() else {
            return Err(DeployError::Refused(format!("table {name} is not described")));
        };
        let actual = Self::table_settings(table);
        let differs =
            |key: &str| spec.get(key).is_some_and(|wanted| !wanted.is_null() && actual.get(key) != Some(wanted));
        if differs("billingMode") || differs("readCapacity") || differs("writeCapacity") {
            let mut update = self.dynamodb.update_table().table_name(name);
            match spec["billingMode"].as_str() {
                Some("PROVISIONED") => {
                    let throughput = || {
                        ProvisionedThroughput::builder()
                            .read_capacity_units(spec["readCapacity"].as_i64().unwrap_or(1))
                            .write_capacity_units(spec["writeCapacity"].as_i64().unwrap_or(1))
                            .build()
                    };
                    update = update.billing_mode(BillingMode::Provisioned).provisioned_throughput(
                        throughput().map_err(|e| DeployError::Refused(format!("table {name}: {e}")))?,
                    );
                    // AWS requires every global index's capacity with the switch.
                    for index in table.global_secondary_indexes() {
                        let action = UpdateGlobalSecondaryIndexAction::builder()
                            .index_name(index.index_name().unwrap_or_default())
                            .provisioned_throughput(
                                throughput().map_err(|e| DeployError::Refused(format!("table {name}: {e}")))?,
                            )
                            .build()
                            .map_err(|e| DeployError::Refused(format!("table {name}: {e}")))?;
                        update = update.global_secondary_index_updates(
                            GlobalSecondaryIndexUpdate::builder().update(action).build(),
                        );
                    }
                }
                _ => update = update.billing_mode(BillingMode::PayPerRequest),
            }
            self.count();
            update.send().await.map_err(aws("UpdateTable", name))?;
            // The next update is refused while this one runs.
            self.wait_until_active(name).await?;
        }
        if differs("deletionProtection") {
            let protect = spec["deletionProtection"].as_bool().unwrap_or(true);
            self.set_deletion_protection(name, protect).await?;
        }
        if let Some(wanted) = spec.get("pointInTimeRecovery").and_then(Value::as_bool)
            && self.point_in_time_recovery(name).await? != wanted
        {
            self.set_point_in_time_recovery(name, wanted).await?;
        }
        Ok(())
    }

    pub(super) async fn set_deletion_protection(&self, name: &str, protect: bool) -> Result<(), DeployError> {
        self.count();
        self.dynamodb
            .update_table()
            .table_name(name)
            .deletion_protection_enabled(protect)
            .send()
            .await
            .map_err(aws("UpdateTable", name))?;
        self.wait_until_active(name).await
    }

    async fn set_point_in_time_recovery(&self, name: &str, enabled: bool) -> Result<(), DeployError> {
        let specification = PointInTimeRecoverySpecification::builder()
            .point_in_time_recovery_enabled(enabled)
            .build()
            .map_err(|e| DeployError::Refused(format!("table {name}: {e}")))?;
        let mut delay = Duration::from_millis(500);
        for attempt in 0.. {
            self.count();
            let sent = self
                .dynamodb
                .update_continuous_backups()
                .table_name(name)
                .point_in_time_recovery_specification(specification.clone())
                .send()
                .await;
            match sent {
                Ok(_) => return Ok(()),
                // Right after CreateTable, AWS may still be setting up the table's backups.
                Err(error) if code_is(&error, "ContinuousBackupsUnavailableException") && attempt < BACKUPS_RETRIES => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
                Err(error) => return Err(aws("UpdateContinuousBackups", name)(error)),
            }
        }
        Ok(())
    }

    /// Whether the table's deletion protection is on (a missing table: no).
    pub async fn deletion_protected(&self, name: &str) -> Result<bool, DeployError> {
        self.count();
        match self.dynamodb.describe_table().table_name(name).send().await {
            Ok(described) => Ok(described.table().and_then(|t| t.deletion_protection_enabled()).unwrap_or(false)),
            Err(error) if code_is(&error, "ResourceNotFoundException") => Ok(false),
            Err(error) => Err(aws("DescribeTable", name)(error)),
        }
    }

    /// Turns a table's deletion protection off so that it can be deleted;
    /// answers whether it was on. Only for a removal the user allowed to lose
    /// data (`--allow-data-loss`).
    pub async fn unprotect_table(&self, name: &str) -> Result<bool, DeployError> {
        if !self.deletion_protected(name).await? {
            return Ok(false);
        }
        self.set_deletion_protection(name, false).await?;
        Ok(true)
    }
}
