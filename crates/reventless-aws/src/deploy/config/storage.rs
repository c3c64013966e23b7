//! `[tables]` and `[queues]`: how a plugin stack's events and rows tables are
//! kept (billing, point-in-time recovery, deletion protection) and how its
//! FIFO queues scale. Safe by default: recovery and protection are on unless
//! the stage is marked `ephemeral = true` (a throwaway test stage).
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// DynamoDB's capacity modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BillingMode {
    PayPerRequest,
    Provisioned,
}

/// `[tables]` in one layer (every key optional: unset inherits).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TablesLayer {
    /// `PAY_PER_REQUEST` (default) or `PROVISIONED` (then both capacities are required).
    pub billing_mode: Option<BillingMode>,
    /// Read / write capacity units of each table and each of its indexes (`PROVISIONED`).
    pub read_capacity: Option<i64>,
    pub write_capacity: Option<i64>,
    /// Default: on, off in an ephemeral stage.
    pub point_in_time_recovery: Option<bool>,
    /// Default: on, off in an ephemeral stage.
    pub deletion_protection: Option<bool>,
}

impl TablesLayer {
    pub(super) fn merge(&mut self, over: TablesLayer) {
        macro_rules! take {
            ($($field:ident),*) => { $( if over.$field.is_some() { self.$field = over.$field; } )* };
        }
        take!(billing_mode, read_capacity, write_capacity, point_in_time_recovery, deletion_protection);
    }

    /// The settings of a stage; `ephemeral` turns the safety defaults off.
    pub(super) fn resolve(&self, ephemeral: bool) -> Result<TableSettings, ConfigError> {
        let capacity = |key: &str, value: Option<i64>| -> Result<i64, ConfigError> {
            let value = value.ok_or_else(|| ConfigError::Missing { key: format!("tables.{key}") })?;
            if (1..=CAPACITY_MAX).contains(&value) {
                Ok(value)
            } else {
                Err(ConfigError::Value {
                    key: format!("tables.{key}"),
                    message: format!("{value} is not in 1..={CAPACITY_MAX}"),
                })
            }
        };
        let billing = match self.billing_mode.unwrap_or(BillingMode::PayPerRequest) {
            BillingMode::Provisioned => Billing::Provisioned {
                read: capacity("read_capacity", self.read_capacity)?,
                write: capacity("write_capacity", self.write_capacity)?,
            },
            BillingMode::PayPerRequest => {
                if let Some(key) = [("read_capacity", self.read_capacity), ("write_capacity", self.write_capacity)]
                    .into_iter()
                    .find_map(|(key, value)| value.map(|_| key))
                {
                    return Err(ConfigError::Value {
                        key: format!("tables.{key}"),
                        message: "capacities apply only with billing_mode = \"PROVISIONED\"".into(),
                    });
                }
                Billing::PayPerRequest
            }
        };
        Ok(TableSettings {
            billing,
            point_in_time_recovery: self.point_in_time_recovery.unwrap_or(!ephemeral),
            deletion_protection: self.deletion_protection.unwrap_or(!ephemeral),
        })
    }
}

/// DynamoDB's default quota of capacity units per table.
pub const CAPACITY_MAX: i64 = 40_000;

/// How a table is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "mode")]
pub enum Billing {
    PayPerRequest,
    /// Capacity units of the table and of each of its global indexes.
    Provisioned {
        read: i64,
        write: i64,
    },
}

/// The resolved `[tables]` of a stage (applied to plugin stacks' events and rows tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableSettings {
    pub billing: Billing,
    pub point_in_time_recovery: bool,
    pub deletion_protection: bool,
}

/// `[queues]` in one layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueuesLayer {
    /// FIFO high throughput (`DeduplicationScope = messageGroup`,
    /// `FifoThroughputLimit = perMessageGroupId`); default true.
    pub high_throughput: Option<bool>,
}

impl QueuesLayer {
    pub(super) fn merge(&mut self, over: QueuesLayer) {
        if over.high_throughput.is_some() {
            self.high_throughput = over.high_throughput;
        }
    }

    pub(super) fn resolve(&self) -> QueueSettings {
        QueueSettings { high_throughput: self.high_throughput.unwrap_or(true) }
    }
}

/// The resolved `[queues]` of a stage (applied to every FIFO queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueSettings {
    /// Messages are deduplicated and throttled per message group (each
    /// entity's group), not per queue: a queue's throughput grows with its groups.
    pub high_throughput: bool,
}

impl QueueSettings {
    /// `(DeduplicationScope, FifoThroughputLimit)` as SQS names them.
    pub fn fifo_attributes(&self) -> (&'static str, &'static str) {
        if self.high_throughput { ("messageGroup", "perMessageGroupId") } else { ("queue", "perQueue") }
    }
}
