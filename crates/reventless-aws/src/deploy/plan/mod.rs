//! The plan: what a stage should have, derived from the plugins' manifests
//! and the configuration alone (no AWS call), so it is unit-tested.
use std::collections::BTreeMap;

use reventless_core::Manifest;
use serde::Serialize;
use serde_json::{Value, json};

use super::config::ProjectConfig;

mod checks;
mod functions;
mod gateway;
pub mod hooks;
mod links;
mod names;
mod point_commands;
mod policies;
mod schedules;
mod stack;
mod storage;
mod tasks;
mod units;

pub use checks::ROLE_POLICY_MAX;
use checks::{check_tuning_keys, oversized_policies};
pub use gateway::{
    PUBLIC_URL_INVOKE_STATEMENT, PUBLIC_URL_STATEMENT, WEBSOCKET_STATEMENT, connections_table, websocket_api,
    websocket_api_id,
};
pub use links::{EXTENDS_OUTPUT, EXTENSION_POINTS_OUTPUT, ExtensionLinks, StageOutputs};
use names::Arns;
pub use names::{
    FUNCTION_NAME_MAX, GATEWAY, ROLE_NAME_MAX, StackNames, api_function, gateway_function, lock_table, parameter_path,
    registry_table, resource_name, stack_names,
};
pub use schedules::{SCHEDULE_NAME_MAX, schedule_entry_name};
pub use tasks::{
    BUCKET_NAME_MAX, TASKS_BATCH_SIZE, TASKS_BUCKET_OUTPUT, TASKS_GROUP, TASKS_PREFIX, TaskNames, bucket_arn,
    bucket_name, manifest_tasks, notification_queue_policy, task_names, task_unit, tasks_bucket,
};
pub use units::{
    FILTER_PATTERN_MAX, FunctionUnit, STREAM_READERS_ADVISED, function_units, handler_groups, stream_filter_pattern,
    topic_layout,
};

pub const TAG_PROJECT: &str = "reventless:project";
pub const TAG_STAGE: &str = "reventless:stage";
pub const TAG_PLUGIN: &str = "reventless:plugin";
pub const TAG_COMPONENT: &str = "reventless:component";
/// The stack of shared resources (the deploy lock, platform outputs).
pub const PLATFORM: &str = "platform";

/// Kinds of resources, in the order they are created (deleted in reverse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
pub enum ResourceKind {
    Table,
    Queue,
    LogGroup,
    Role,
    Function,
    EventSourceMapping,
    FunctionUrl,
    Parameter,
    Schedule,
    /// An API Gateway WebSocket API with its routes, integration, stage and invoke permission.
    WebSocketApi,
    /// An S3 bucket (a stack's tasks bucket) with its public access block,
    /// default encryption, tags and notifications.
    Bucket,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 11] = [
        Self::Table,
        Self::Queue,
        Self::LogGroup,
        Self::Role,
        Self::Function,
        Self::EventSourceMapping,
        Self::FunctionUrl,
        Self::Parameter,
        Self::Schedule,
        Self::WebSocketApi,
        Self::Bucket,
    ];

    /// Creation wave: a resource only needs those of earlier waves (a queue
    /// redriving to a dead-letter queue comes one wave later, see [`Resource::wave`]).
    pub fn wave(self) -> usize {
        match self {
            Self::Table | Self::Queue | Self::LogGroup | Self::Role => 0,
            Self::Function => 2,
            // Its notifications need their queues (and the queues' policies) first.
            Self::Bucket => 2,
            Self::EventSourceMapping | Self::FunctionUrl | Self::Schedule | Self::WebSocketApi => 3,
            // Outputs name what exists (the WebSocket URL holds its API's id).
            Self::Parameter => 4,
        }
    }

    /// How many creation waves there are.
    pub const WAVES: usize = 5;
}

/// One desired resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub kind: ResourceKind,
    /// The physical name (a path for log groups and parameters).
    pub name: String,
    pub stack: String,
    pub component: String,
    pub tags: BTreeMap<String, String>,
    /// The settings compared with what exists, field by field.
    pub spec: Value,
}

impl Resource {
    pub fn key(&self) -> (ResourceKind, String) {
        (self.kind, self.name.clone())
    }

    /// Its creation wave: its kind's, except that a queue redriving to a
    /// dead-letter queue waits for that queue to exist.
    pub fn wave(&self) -> usize {
        if self.kind == ResourceKind::Queue && self.spec["redriveTo"].is_string() { 1 } else { self.kind.wave() }
    }
}

/// A function's code: which binary, for which stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Code {
    pub stack: String,
    pub bootstrap: std::path::PathBuf,
}

/// What a stage should have.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub project: String,
    pub stage: String,
    pub region: String,
    pub account: String,
    pub resources: Vec<Resource>,
    /// What deploys but deserves a second look (e.g. too many stream readers).
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error("stack `{stack}`: extension `{extension}` follows `{point}`, which no plugin stack of the stage publishes")]
    MissingExtensionPoint { stack: String, extension: String, point: String },
    #[error("stack `{stack}`: `groups.{key}` names no handler group or function of it (known: {known})")]
    UnknownTuningKey { stack: String, key: String, known: String },
    #[error("no manifest for plugin stack `{0}`")]
    MissingManifest(String),
    #[error("the manifest of stack `{stack}` is plugin `{found}`, the configuration expects `{expected}`")]
    WrongPlugin { stack: String, found: String, expected: String },
}

/// The plan of a stage: the platform stack and every plugin stack.
pub fn plan(config: &ProjectConfig, account: &str, manifests: &BTreeMap<String, Manifest>) -> Result<Plan, PlanError> {
    plan_with(config, account, manifests, &StageOutputs::default())
}

/// [`plan`], with what the stage's deployed stacks publish (their outputs)
/// standing in for the manifests of stacks that are not at hand.
pub fn plan_with(
    config: &ProjectConfig,
    account: &str,
    manifests: &BTreeMap<String, Manifest>,
    stage: &StageOutputs,
) -> Result<Plan, PlanError> {
    let arns = Arns { region: &config.region, account };
    let mut resources = Vec::new();
    let mut warnings = Vec::new();
    let lock = lock_table(config);
    resources.push(Resource {
        kind: ResourceKind::Table,
        name: lock.clone(),
        stack: PLATFORM.into(),
        component: "deploy-lock".into(),
        tags: tags(config, PLATFORM, "deploy-lock"),
        spec: json!({"layout": "lock", "stream": false}),
    });
    resources.push(parameter(config, PLATFORM, "region", &config.region));
    let registry = registry_table(config);
    resources.push(Resource {
        kind: ResourceKind::Table,
        name: registry.clone(),
        stack: PLATFORM.into(),
        component: "registry".into(),
        tags: tags(config, PLATFORM, "registry"),
        spec: json!({"layout": "rows", "stream": false}),
    });
    resources.push(parameter(config, PLATFORM, "registry-table", &registry));
    if config.platform.bin.is_some() {
        check_tuning_keys(config, PLATFORM, &[GATEWAY])?;
        resources.extend(gateway::gateway_resources(config, &arns, &registry));
    }
    let links = ExtensionLinks::of(config, manifests, stage)?;
    warnings.extend(links.warnings.iter().cloned());
    for stack in config.plugins.keys().filter(|stack| stage.plans(stack)) {
        let manifest = manifests.get(stack).ok_or_else(|| PlanError::MissingManifest(stack.clone()))?;
        warnings.extend(hooks::route_secret_warnings(config, stack, manifest));
        let context = stack::StackContext { config, arns: &arns, links: &links, registry: &registry };
        let planned = stack::plugin_stack(&context, stack, manifest)?;
        resources.extend(planned.resources);
        warnings.extend(planned.warnings);
    }
    warnings.extend(oversized_policies(&resources));
    resources.sort_by_key(|r| (r.wave(), r.kind, r.name.clone()));
    Ok(Plan {
        project: config.project.clone(),
        stage: config.stage.clone(),
        region: config.region.clone(),
        account: account.to_string(),
        resources,
        warnings,
    })
}

/// The tags of every resource: project, stage, stack, component.
fn tags(config: &ProjectConfig, stack: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TAG_PROJECT.to_string(), config.project.clone()),
        (TAG_STAGE.to_string(), config.stage.clone()),
        (TAG_PLUGIN.to_string(), stack.to_string()),
        (TAG_COMPONENT.to_string(), component.to_string()),
    ])
}

/// A stack output: an SSM parameter under [`parameter_path`].
fn parameter(config: &ProjectConfig, stack: &str, key: &str, value: &str) -> Resource {
    Resource {
        kind: ResourceKind::Parameter,
        name: parameter_path(config, stack, key),
        stack: stack.to_string(),
        component: "outputs".into(),
        tags: tags(config, stack, "outputs"),
        spec: json!({"value": value}),
    }
}
