//! Names and ARNs: every physical name of a stage derives from its project,
//! stage and stack here.
use super::PLATFORM;
use crate::deploy::config::ProjectConfig;
use crate::{StoreNames, shorten};
/// `{project}-{stage}-{plugin}-{name}`, kept within `max` characters (a long
/// name keeps its start and gets a hash of the whole for uniqueness).
pub fn resource_name(config: &ProjectConfig, stack: &str, name: &str, max: usize) -> String {
    shorten(&format!("{}-{}-{stack}-{name}", config.project, config.stage), max)
}

/// Lambda function names: at most 64 characters.
pub const FUNCTION_NAME_MAX: usize = 64;
/// IAM role names: at most 64 characters.
pub const ROLE_NAME_MAX: usize = 64;

/// Everything a stack's names derive from.
pub struct StackNames {
    pub stores: StoreNames,
    /// Where stream batches that exhausted their retries are recorded (a standard queue).
    pub stream_failures: String,
}

pub fn stack_names(config: &ProjectConfig, stack: &str) -> StackNames {
    let queue_prefix = format!("{}-{}-{stack}-", config.project, config.stage);
    StackNames {
        stream_failures: resource_name(config, stack, "stream-failures", 80),
        stores: StoreNames {
            events_table: resource_name(config, stack, "events", 255),
            rows_table: resource_name(config, stack, "rows", 255),
            queue_prefix,
        },
    }
}

/// The deploy lock table of a stage (platform stack).
pub fn lock_table(config: &ProjectConfig) -> String {
    resource_name(config, PLATFORM, "deploy", 255)
}

/// The platform's registry of connected plugins (rows layout).
pub fn registry_table(config: &ProjectConfig) -> String {
    resource_name(config, PLATFORM, "registry", 255)
}

/// The gateway's function (platform stack).
pub fn gateway_function(config: &ProjectConfig) -> String {
    resource_name(config, PLATFORM, GATEWAY, FUNCTION_NAME_MAX)
}

/// A plugin stack's `<Plugin>Api` function (what the gateway invokes).
pub fn api_function(config: &ProjectConfig, stack: &str) -> String {
    resource_name(config, stack, &format!("{}Api", config.plugin_name(stack)), FUNCTION_NAME_MAX)
}

/// The platform gateway's group name.
pub const GATEWAY: &str = "Gateway";

/// SSM path of a stack's outputs.
pub fn parameter_path(config: &ProjectConfig, stack: &str, key: &str) -> String {
    format!("/reventless/{}/{}/{stack}/{key}", config.project, config.stage)
}

pub(super) struct Arns<'a> {
    pub region: &'a str,
    pub account: &'a str,
}

impl Arns<'_> {
    pub(super) fn table(&self, name: &str) -> String {
        format!("arn:aws:dynamodb:{}:{}:table/{name}", self.region, self.account)
    }
    /// The indexes a stack's stores query: the events table's `by_log` and
    /// the rows table's index slots (`by_ix1`…, see `provision`).
    pub(super) fn indexes(&self, stores: &StoreNames) -> Vec<String> {
        let events = format!("{}/index/{}", self.table(&stores.events_table), crate::dynamo::BY_LOG_INDEX);
        let rows = (0..crate::query_store::INDEX_SLOTS)
            .map(|slot| format!("{}/index/{}", self.table(&stores.rows_table), crate::query_store::index_slot(slot).1));
        std::iter::once(events).chain(rows).collect()
    }
    pub(super) fn queue(&self, name: &str) -> String {
        format!("arn:aws:sqs:{}:{}:{name}", self.region, self.account)
    }
    pub(super) fn log_group(&self, function: &str) -> String {
        format!("arn:aws:logs:{}:{}:log-group:/aws/lambda/{function}:*", self.region, self.account)
    }
    pub(super) fn function(&self, name: &str) -> String {
        format!("arn:aws:lambda:{}:{}:function:{name}", self.region, self.account)
    }
    pub(super) fn parameter(&self, path: &str) -> String {
        format!("arn:aws:ssm:{}:{}:parameter{path}", self.region, self.account)
    }
}
