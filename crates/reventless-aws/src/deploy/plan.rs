//! The plan: what a stage should have, derived from the plugins' manifests
//! and the configuration alone (no AWS call), so it is unit-tested.
use std::collections::BTreeMap;

use reventless_core::Manifest;
use reventless_core::plugin::ComponentKind;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::config::{Consolidation, ProjectConfig};
use crate::StoreNames;
use crate::lambda::FunctionConfig;

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
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 9] = [
        Self::Table,
        Self::Queue,
        Self::LogGroup,
        Self::Role,
        Self::Function,
        Self::EventSourceMapping,
        Self::FunctionUrl,
        Self::Parameter,
        Self::Schedule,
    ];

    /// Creation wave: a resource only needs those of earlier waves.
    pub fn wave(self) -> usize {
        match self {
            Self::Table | Self::Queue | Self::LogGroup | Self::Role => 0,
            Self::Function => 1,
            Self::EventSourceMapping | Self::FunctionUrl | Self::Parameter | Self::Schedule => 2,
        }
    }
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
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error("consolidation `{0:?}` is not supported yet (use `single`)")]
    Consolidation(Consolidation),
    #[error("no manifest for plugin stack `{0}`")]
    MissingManifest(String),
    #[error("the manifest of stack `{stack}` is plugin `{found}`, the configuration expects `{expected}`")]
    WrongPlugin { stack: String, found: String, expected: String },
}

/// `{project}-{stage}-{plugin}-{name}`, kept within `max` characters (a long
/// name keeps its start and gets a hash of the whole for uniqueness).
pub fn resource_name(config: &ProjectConfig, stack: &str, name: &str, max: usize) -> String {
    shorten(&format!("{}-{}-{stack}-{name}", config.project, config.stage), max)
}

pub fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let hash: String = Sha256::digest(name.as_bytes()).iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("{}-{hash}", &name[..max.saturating_sub(9)])
}

/// Lambda function names: at most 64 characters.
pub const FUNCTION_NAME_MAX: usize = 64;
/// IAM role names: at most 64 characters.
pub const ROLE_NAME_MAX: usize = 64;

/// Everything a stack's names derive from.
pub struct StackNames {
    pub stores: StoreNames,
    pub command_queue: String,
    pub dead_letters: String,
    /// Where stream batches that exhausted their retries are recorded (a standard queue).
    pub stream_failures: String,
}

pub fn stack_names(config: &ProjectConfig, stack: &str, plugin: &str) -> StackNames {
    let queue_prefix = format!("{}-{}-{stack}-", config.project, config.stage);
    let topic = reventless_core::plugin::command_topic(plugin);
    let command_queue = crate::command_topic::queue_name(&queue_prefix, &topic);
    let dead_letters = crate::command_topic::queue_name(&queue_prefix, &format!("{topic}-dlq"));
    StackNames {
        stream_failures: resource_name(config, stack, "stream-failures", 80),
        stores: StoreNames {
            events_table: resource_name(config, stack, "events", 255),
            rows_table: resource_name(config, stack, "rows", 255),
            queue_prefix,
        },
        command_queue,
        dead_letters,
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

/// The gateway: reads the registry, invokes exactly the plugins' API functions.
fn gateway_resources(config: &ProjectConfig, arns: &Arns, registry: &str) -> Vec<Resource> {
    let function = gateway_function(config);
    let apis: Vec<String> = config.plugins.keys().map(|stack| arns.function(&api_function(config, stack))).collect();
    let mut statements =
        vec![json!({"Effect": "Allow", "Action": ["dynamodb:Query"], "Resource": [arns.table(registry)]})];
    if !apis.is_empty() {
        statements.push(json!({"Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": apis}));
    }
    let gateway_config = crate::gateway::GatewayConfig { registry: registry.to_string() };
    let environment = BTreeMap::from([(
        crate::gateway::GATEWAY_ENV.to_string(),
        serde_json::to_string(&gateway_config).unwrap_or_default(),
    )]);
    let mut resources = function_resources(config, arns, PLATFORM, GATEWAY, &function, statements, environment);
    resources.push(Resource {
        kind: ResourceKind::FunctionUrl,
        name: function.clone(),
        stack: PLATFORM.into(),
        component: GATEWAY.into(),
        tags: tags(config, PLATFORM, GATEWAY),
        spec: json!({"authType": "AWS_IAM"}),
    });
    resources.push(parameter(config, PLATFORM, "gateway-function", &function));
    resources
}

/// SSM path of a stack's outputs.
pub fn parameter_path(config: &ProjectConfig, stack: &str, key: &str) -> String {
    format!("/reventless/{}/{}/{stack}/{key}", config.project, config.stage)
}

fn tags(config: &ProjectConfig, stack: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TAG_PROJECT.to_string(), config.project.clone()),
        (TAG_STAGE.to_string(), config.stage.clone()),
        (TAG_PLUGIN.to_string(), stack.to_string()),
        (TAG_COMPONENT.to_string(), component.to_string()),
    ])
}

struct Arns<'a> {
    region: &'a str,
    account: &'a str,
}

impl Arns<'_> {
    fn table(&self, name: &str) -> String {
        format!("arn:aws:dynamodb:{}:{}:table/{name}", self.region, self.account)
    }
    fn queue(&self, name: &str) -> String {
        format!("arn:aws:sqs:{}:{}:{name}", self.region, self.account)
    }
    fn log_group(&self, function: &str) -> String {
        format!("arn:aws:logs:{}:{}:log-group:/aws/lambda/{function}:*", self.region, self.account)
    }
    fn function(&self, name: &str) -> String {
        format!("arn:aws:lambda:{}:{}:function:{name}", self.region, self.account)
    }
    fn parameter(&self, path: &str) -> String {
        format!("arn:aws:ssm:{}:{}:parameter{path}", self.region, self.account)
    }
}

/// The handler groups a plugin needs, from its manifest.
pub fn handler_groups(manifest: &Manifest) -> Vec<&'static str> {
    let has = |kinds: &[ComponentKind]| manifest.components.iter().any(|c| kinds.contains(&c.kind));
    let mut groups = vec!["Api", "Heartbeat"];
    if !manifest.storage.command_topics.is_empty() {
        groups.push("StateChanges");
    }
    if has(&[ComponentKind::ReadModel, ComponentKind::StateViewSlice]) {
        groups.push("AllReadModels");
    }
    if has(&[ComponentKind::AutomationSlice, ComponentKind::OutboundTranslationSlice, ComponentKind::Extension]) {
        groups.push("AllAutomationSlices");
    }
    groups
}

/// The plan of a stage: the platform stack and every plugin stack.
pub fn plan(config: &ProjectConfig, account: &str, manifests: &BTreeMap<String, Manifest>) -> Result<Plan, PlanError> {
    if config.consolidation != Consolidation::Single {
        return Err(PlanError::Consolidation(config.consolidation));
    }
    let arns = Arns { region: &config.region, account };
    let mut resources = Vec::new();
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
        resources.extend(gateway_resources(config, &arns, &registry));
    }

    for stack in config.plugins.keys() {
        let manifest = manifests.get(stack).ok_or_else(|| PlanError::MissingManifest(stack.clone()))?;
        let plugin = config.plugin_name(stack);
        if manifest.plugin != plugin {
            return Err(PlanError::WrongPlugin {
                stack: stack.clone(),
                found: manifest.plugin.clone(),
                expected: plugin,
            });
        }
        let names = stack_names(config, stack, &plugin);
        let groups = handler_groups(manifest);
        let queued = groups.contains(&"StateChanges");
        resources.push(Resource {
            kind: ResourceKind::Table,
            name: names.stores.events_table.clone(),
            stack: stack.clone(),
            component: "events".into(),
            tags: tags(config, stack, "events"),
            spec: json!({"layout": "events", "stream": true}),
        });
        resources.push(Resource {
            kind: ResourceKind::Table,
            name: names.stores.rows_table.clone(),
            stack: stack.clone(),
            component: "rows".into(),
            tags: tags(config, stack, "rows"),
            spec: json!({"layout": "rows", "stream": false}),
        });
        if queued {
            resources.push(Resource {
                kind: ResourceKind::Queue,
                name: names.dead_letters.clone(),
                stack: stack.clone(),
                component: "commands-dlq".into(),
                tags: tags(config, stack, "commands-dlq"),
                spec: json!({"fifo": true, "visibilityTimeout": 30, "redriveTo": null, "maxReceiveCount": null}),
            });
            let visibility = config.tuning(stack, "StateChanges").timeout * 6;
            resources.push(Resource {
                kind: ResourceKind::Queue,
                name: names.command_queue.clone(),
                stack: stack.clone(),
                component: "commands".into(),
                tags: tags(config, stack, "commands"),
                spec: json!({"fifo": true, "visibilityTimeout": visibility, "redriveTo": names.dead_letters, "maxReceiveCount": 5}),
            });
        }
        let streamed = groups.iter().any(|group| group.starts_with("All"));
        if streamed {
            resources.push(Resource {
                kind: ResourceKind::Queue,
                name: names.stream_failures.clone(),
                stack: stack.clone(),
                component: "stream-failures".into(),
                tags: tags(config, stack, "stream-failures"),
                spec: json!({"fifo": false, "visibilityTimeout": 30, "redriveTo": null, "maxReceiveCount": null}),
            });
        }
        for group in groups {
            let role_name = if group.starts_with("All") { group.to_string() } else { format!("{plugin}{group}") };
            let function = resource_name(config, stack, &role_name, FUNCTION_NAME_MAX);
            let tuning = config.tuning(stack, group);
            let mut statements = vec![json!({
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:PutItem",
                           "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"],
                "Resource": [
                    arns.table(&names.stores.events_table),
                    format!("{}/index/{}", arns.table(&names.stores.events_table), crate::dynamo::BY_LOG_INDEX),
                    arns.table(&names.stores.rows_table),
                ],
            })];
            if queued {
                statements.push(json!({
                    "Effect": "Allow",
                    "Action": ["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:DeleteMessage",
                               "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"],
                    "Resource": [arns.queue(&names.command_queue)],
                }));
            }
            if group.starts_with("All") {
                statements.push(json!({
                    "Effect": "Allow",
                    "Action": ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"],
                    "Resource": [format!("{}/stream/*", arns.table(&names.stores.events_table))],
                }));
                statements.push(json!({
                    "Effect": "Allow",
                    "Action": ["sqs:SendMessage"],
                    "Resource": [arns.queue(&names.stream_failures)],
                }));
            }
            let secrets: Vec<String> = config.plugins[stack].secrets.iter().map(|path| arns.parameter(path)).collect();
            if !secrets.is_empty() {
                statements.push(json!({"Effect": "Allow", "Action": ["ssm:GetParameter", "ssm:GetParameters"], "Resource": secrets}));
            }
            let heartbeat = group == "Heartbeat";
            if heartbeat {
                statements.push(
                    json!({"Effect": "Allow", "Action": ["dynamodb:PutItem"], "Resource": [arns.table(&registry)]}),
                );
            }
            let function_config = FunctionConfig {
                role: role_name.clone(),
                plugin: plugin.clone(),
                stores: names.stores.clone(),
                queues: Default::default(),
                registry: heartbeat.then(|| registry.clone()),
                api_function: heartbeat.then(|| api_function(config, stack)),
            };
            let mut environment = BTreeMap::new();
            environment
                .insert(crate::lambda::CONFIG_ENV.into(), serde_json::to_string(&function_config).unwrap_or_default());
            if !config.plugins[stack].secrets.is_empty() {
                environment.insert("REVENTLESS_SECRETS".into(), config.plugins[stack].secrets.join(","));
            }
            resources.extend(function_resources(config, &arns, stack, group, &function, statements, environment));
            let mapping = match group {
                "StateChanges" => Some(json!({
                    "function": function, "queue": names.command_queue, "batchSize": tuning.sqs_batch_size,
                })),
                "AllReadModels" | "AllAutomationSlices" => Some(json!({
                    "function": function, "table": names.stores.events_table, "batchSize": 100,
                    "bisectOnError": true, "maximumRetryAttempts": 10, "onFailure": names.stream_failures,
                })),
                _ => None,
            };
            if let Some(spec) = mapping {
                resources.push(Resource {
                    kind: ResourceKind::EventSourceMapping,
                    name: format!("{function}:{}", if group == "StateChanges" { "commands" } else { "events" }),
                    stack: stack.clone(),
                    component: group.into(),
                    tags: tags(config, stack, group),
                    spec,
                });
            }
            if group == "Heartbeat" {
                // The schedule invokes the function with its own role (allowed exactly that).
                let scheduler_role = shorten(&format!("{function}-schedule"), ROLE_NAME_MAX);
                resources.push(Resource {
                    kind: ResourceKind::Role,
                    name: scheduler_role.clone(),
                    stack: stack.clone(),
                    component: "HeartbeatSchedule".into(),
                    tags: tags(config, stack, "HeartbeatSchedule"),
                    spec: json!({"trust": "scheduler.amazonaws.com", "policy": {"Version": "2012-10-17", "Statement": [
                        {"Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": [arns.function(&function)]}
                    ]}}),
                });
                resources.push(Resource {
                    kind: ResourceKind::Schedule,
                    name: function.clone(),
                    stack: stack.clone(),
                    component: group.into(),
                    tags: tags(config, stack, group),
                    spec: json!({"function": function, "expression": "rate(1 minute)", "role": scheduler_role}),
                });
            }
            if group == "Api" {
                resources.push(Resource {
                    kind: ResourceKind::FunctionUrl,
                    name: function.clone(),
                    stack: stack.clone(),
                    component: group.into(),
                    tags: tags(config, stack, group),
                    spec: json!({"authType": "AWS_IAM"}),
                });
            }
        }
        resources.push(parameter(config, stack, "events-table", &names.stores.events_table));
        resources.push(parameter(config, stack, "rows-table", &names.stores.rows_table));
        if queued {
            resources.push(parameter(config, stack, "command-queue", &names.command_queue));
        }
    }
    resources.sort_by_key(|r| (r.kind.wave(), r.kind, r.name.clone()));
    Ok(Plan {
        project: config.project.clone(),
        stage: config.stage.clone(),
        region: config.region.clone(),
        account: account.to_string(),
        resources,
    })
}

/// A function with its role (trusting Lambda, `statements` plus writing its
/// own logs) and its log group.
fn function_resources(
    config: &ProjectConfig,
    arns: &Arns,
    stack: &str,
    group: &str,
    function: &str,
    mut statements: Vec<Value>,
    environment: BTreeMap<String, String>,
) -> Vec<Resource> {
    let tuning = config.tuning(stack, group);
    statements.insert(
        0,
        json!({"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": [arns.log_group(function)]}),
    );
    let mut variables = tuning.env_vars.clone();
    variables.extend(environment);
    let role = shorten(function, ROLE_NAME_MAX);
    vec![
        Resource {
            kind: ResourceKind::Role,
            name: role.clone(),
            stack: stack.to_string(),
            component: group.into(),
            tags: tags(config, stack, group),
            spec: json!({"trust": "lambda.amazonaws.com", "policy": {"Version": "2012-10-17", "Statement": statements}}),
        },
        Resource {
            kind: ResourceKind::LogGroup,
            name: format!("/aws/lambda/{function}"),
            stack: stack.to_string(),
            component: group.into(),
            tags: tags(config, stack, group),
            spec: json!({"retentionDays": tuning.log_retention_days}),
        },
        Resource {
            kind: ResourceKind::Function,
            name: function.to_string(),
            stack: stack.to_string(),
            component: group.into(),
            tags: tags(config, stack, group),
            spec: json!({
                "role": role,
                "memorySize": tuning.memory_size,
                "timeout": tuning.timeout,
                "ephemeralStorageMb": tuning.ephemeral_storage_mb,
                "reservedConcurrency": tuning.reserved_concurrency,
                "architecture": config.architecture.lambda_name(),
                "layers": config.layers,
                "environment": variables,
            }),
        },
    ]
}

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
