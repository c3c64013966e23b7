//! The plan: what a stage should have, derived from the plugins' manifests
//! and the configuration alone (no AWS call), so it is unit-tested.
use std::collections::BTreeMap;

use reventless_core::plugin::ComponentKind;
use reventless_core::{Manifest, TopicLayout};
use serde::Serialize;
use serde_json::{Value, json};

use super::config::{Consolidation, ProjectConfig};
use crate::lambda::FunctionConfig;
use crate::{StoreNames, shorten};

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

    /// Creation wave: a resource only needs those of earlier waves (a queue
    /// redriving to a dead-letter queue comes one wave later, see [`Resource::wave`]).
    pub fn wave(self) -> usize {
        match self {
            Self::Table | Self::Queue | Self::LogGroup | Self::Role => 0,
            Self::Function => 2,
            Self::EventSourceMapping | Self::FunctionUrl | Self::Parameter | Self::Schedule => 3,
        }
    }

    /// How many creation waves there are.
    pub const WAVES: usize = 4;
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

/// The statement id of the resource-based permission that makes a function
/// URL public (`lambda:InvokeFunctionUrl` by `*`, `FunctionUrlAuthType NONE`).
pub const PUBLIC_URL_STATEMENT: &str = "reventless-public-url";
/// Its companion that AWS requires for function URLs created since October
/// 2025 (`lambda:InvokeFunction` by `*`, only when invoked via the URL).
pub const PUBLIC_URL_INVOKE_STATEMENT: &str = "reventless-public-url-invoke";

/// The gateway: reads the registry, invokes the stage's functions (the
/// registered plugins' API functions), and is served at a public URL (it
/// verifies end users' tokens itself, see [`crate::gateway::auth`]).
fn gateway_resources(config: &ProjectConfig, arns: &Arns, registry: &str) -> Vec<Resource> {
    let function = gateway_function(config);
    // By name prefix, not the exact `Api` functions of the plugins in this
    // plan: a plugin deployed later on its own (`deploy --plugin`) never
    // updates the platform's role, yet must be served from its first
    // heartbeat without redeploying the platform. The prefix is still a
    // named resource, never `*`: only this stage's functions
    // (`{project}-{stage}-…`, which no function name shortening cuts: project
    // ≤ 20, stage ≤ 10 characters), and only those the registry names — which
    // only this stage's heartbeat roles can write — are invoked.
    let stage_functions = arns.function(&format!("{}-{}-*", config.project, config.stage));
    let statements = vec![
        json!({"Effect": "Allow", "Action": ["dynamodb:Query"], "Resource": [arns.table(registry)]}),
        json!({"Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": [stage_functions]}),
    ];
    let gateway_config = crate::gateway::GatewayConfig { registry: registry.to_string(), auth: config.auth.clone() };
    let environment = BTreeMap::from([(
        crate::gateway::GATEWAY_ENV.to_string(),
        serde_json::to_string(&gateway_config).unwrap_or_default(),
    )]);
    let unit = FunctionUnit::whole(GATEWAY, GATEWAY.to_string());
    let mut resources = function_resources(config, arns, PLATFORM, &unit, &function, statements, environment);
    resources.push(Resource {
        kind: ResourceKind::FunctionUrl,
        name: function.clone(),
        stack: PLATFORM.into(),
        component: GATEWAY.into(),
        tags: tags(config, PLATFORM, GATEWAY),
        // Browsers on any origin may call it: callers prove who they are with
        // a bearer token, never with cookies, so `*` without credentials is safe.
        spec: json!({"authType": "NONE", "public": true, "cors": {
            "allowOrigins": ["*"], "allowMethods": ["GET", "POST"],
            "allowHeaders": ["authorization", "content-type"], "maxAge": 86400}}),
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
    /// The indexes a stack's stores query: the events table's `by_log` and
    /// the rows table's index slots (`by_ix1`…, see `provision`).
    fn indexes(&self, stores: &StoreNames) -> Vec<String> {
        let events = format!("{}/index/{}", self.table(&stores.events_table), crate::dynamo::BY_LOG_INDEX);
        let rows = (0..crate::query_store::INDEX_SLOTS)
            .map(|slot| format!("{}/index/{}", self.table(&stores.rows_table), crate::query_store::index_slot(slot).1));
        std::iter::once(events).chain(rows).collect()
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

/// One function of a plugin stack: a handler group, or part of one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionUnit {
    /// Its handler group (`Api`, `Heartbeat`, `StateChanges`, `AllReadModels`, `AllAutomationSlices`).
    pub group: &'static str,
    /// Its name in the stack: the function is `{project}-{stage}-{stack}-{name}`,
    /// and it is the `reventless:component` tag and a tuning key.
    pub name: String,
    /// The components it runs when only some of its group's (micro); empty: all.
    pub components: Vec<String>,
    /// The command topic it drains (command functions).
    pub topic: Option<String>,
}

impl FunctionUnit {
    fn whole(group: &'static str, name: String) -> Self {
        Self { group, name, components: Vec::new(), topic: None }
    }

    /// Whether it follows the events table's stream.
    pub fn follows_stream(&self) -> bool {
        self.group.starts_with("All")
    }
}

/// The events-table log keys (`log` attribute) a stream function's followers
/// read: its stream mapping passes only new events of these logs (fence and
/// counter items, and other followers' logs, never wake it).
fn followed_log_keys(manifest: &Manifest, unit: &FunctionUnit, extended: &[String]) -> Vec<String> {
    let point_sources = |point: &str| -> Vec<reventless_core::plugin::LogRef> {
        let published = manifest.components.iter().find(|c| c.kind == ComponentKind::ExtensionPoint && c.name == point);
        published.map(|c| c.sources.clone()).unwrap_or_default()
    };
    let selected = |name: &str| unit.components.is_empty() || unit.components.iter().any(|c| c == name);
    let mut logs = Vec::new();
    for component in stream_followers(manifest, unit.group, extended).filter(|c| selected(&c.name)) {
        if component.kind == ComponentKind::Extension {
            // A point of this plugin: its extension reads the point's own sources.
            logs.extend(followed_point(component).map(point_sources).unwrap_or_default());
        } else {
            logs.extend(component.sources.clone());
        }
    }
    let mut keys: Vec<String> = logs.iter().map(|log| crate::lambda::stream_log_key(log.kind, &log.name)).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The event types a stream function's followers consume, for its mapping's
/// filter (a plugin's log holds every component's events, so a read model is
/// not woken by events it never reads). `None` when a follower takes every
/// type (an extension point publishing its internal events) or none is known.
fn followed_types(manifest: &Manifest, unit: &FunctionUnit, extended: &[String]) -> Option<Vec<String>> {
    let selected = |name: &str| unit.components.is_empty() || unit.components.iter().any(|c| c == name);
    let mut types = Vec::new();
    for component in stream_followers(manifest, unit.group, extended).filter(|c| selected(&c.name)) {
        if !(PROJECTIONS.contains(&component.kind) || AUTOMATIONS.contains(&component.kind)) {
            return None;
        }
        types.extend(component.consumes.iter().cloned());
    }
    types.sort();
    types.dedup();
    (!types.is_empty()).then_some(types)
}

/// The longest filter pattern Lambda accepts (characters).
pub const FILTER_PATTERN_MAX: usize = 4096;

/// A stream mapping's filter pattern: new events of `logs` only, and of
/// `types` when given
/// (`{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"log": {"S": [...]}, "type": {"S": [...]}}}}`).
pub fn stream_filter_pattern(logs: &Value, types: Option<&Value>) -> String {
    let mut image = json!({"log": {"S": logs}});
    if let Some(types) = types {
        image["type"] = json!({"S": types});
    }
    json!({"eventName": ["INSERT"], "dynamodb": {"NewImage": image}}).to_string()
}

/// How a consolidation spreads async commands over queues.
pub fn topic_layout(consolidation: Consolidation) -> TopicLayout {
    match consolidation {
        Consolidation::Single => TopicLayout::PerPlugin,
        Consolidation::PerAggregate => TopicLayout::PerLog,
        Consolidation::Micro => TopicLayout::PerComponent,
    }
}

const PROJECTIONS: [ComponentKind; 2] = [ComponentKind::ReadModel, ComponentKind::StateViewSlice];
const AUTOMATIONS: [ComponentKind; 2] = [ComponentKind::AutomationSlice, ComponentKind::OutboundTranslationSlice];

/// The components a stream group runs on AWS: `AllReadModels` its
/// projections; `AllAutomationSlices` its automations, its extensions of its
/// own points, and its points in `extended` (publishing to other stacks).
fn stream_followers<'a>(
    manifest: &'a Manifest,
    group: &'a str,
    extended: &'a [String],
) -> impl Iterator<Item = &'a reventless_core::plugin::ComponentManifest> + 'a {
    manifest.components.iter().filter(move |c| match group {
        "AllReadModels" => PROJECTIONS.contains(&c.kind),
        "AllAutomationSlices" => {
            AUTOMATIONS.contains(&c.kind)
                || (c.kind == ComponentKind::Extension && !is_remote_extension(manifest, c))
                || (c.kind == ComponentKind::ExtensionPoint && extended.contains(&c.name))
        }
        _ => false,
    })
}

/// The extension point (`<Plugin>.<Point>`) an extension component follows.
fn followed_point(component: &reventless_core::plugin::ComponentManifest) -> Option<&str> {
    let source = component.sources.iter().find(|log| log.kind == reventless_core::plugin::LogKind::ExtensionPoint)?;
    Some(source.name.as_str())
}

/// Whether an extension follows a point of another plugin (which, on AWS,
/// runs in that plugin's stack and hands its events to this one's inbox).
fn is_remote_extension(manifest: &Manifest, component: &reventless_core::plugin::ComponentManifest) -> bool {
    component.kind == ComponentKind::Extension
        && followed_point(component).is_some_and(|point| !point.starts_with(&format!("{}.", manifest.plugin)))
}

/// Who extends whose extension points across the stage's stacks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtensionLinks {
    /// Point (`Catalog.Products`) → subscriber stacks.
    pub subscribers: BTreeMap<String, Vec<String>>,
}

impl ExtensionLinks {
    /// From every stack's manifest; an extension of a point no stack of the
    /// stage publishes is an error naming both.
    pub fn of(config: &ProjectConfig, manifests: &BTreeMap<String, Manifest>) -> Result<Self, PlanError> {
        let published: std::collections::BTreeSet<&str> = manifests
            .values()
            .flat_map(|manifest| manifest.components.iter())
            .filter(|c| c.kind == ComponentKind::ExtensionPoint)
            .map(|c| c.name.as_str())
            .collect();
        let mut links = Self::default();
        for (stack, manifest) in manifests.iter().filter(|(stack, _)| config.plugins.contains_key(*stack)) {
            for extension in manifest.components.iter().filter(|c| is_remote_extension(manifest, c)) {
                let point = followed_point(extension).unwrap_or_default();
                if !published.contains(point) {
                    return Err(PlanError::MissingExtensionPoint {
                        stack: stack.clone(),
                        extension: extension.name.clone(),
                        point: point.to_string(),
                    });
                }
                let subscribers = links.subscribers.entry(point.to_string()).or_default();
                if !subscribers.contains(stack) {
                    subscribers.push(stack.clone());
                }
            }
        }
        Ok(links)
    }

    /// The points of `plugin` that other stacks extend.
    fn points_of(&self, plugin: &str) -> Vec<String> {
        self.subscribers.keys().filter(|point| point.starts_with(&format!("{plugin}."))).cloned().collect()
    }
}

/// The functions a plugin needs under a consolidation (DESIGN §6):
/// `single` — `<Plugin>Api`, `<Plugin>Heartbeat`, `<Plugin>StateChanges`
/// (one queue), `AllReadModels`, `AllAutomationSlices`; `per-aggregate` —
/// one command function and queue per log (each aggregate; a plugin's DCB
/// slices share theirs), followers as `single`; `micro` — one command
/// function and queue per async component and one function per follower.
///
/// Extensions of other plugins' points get `<Plugin>Extensions`, draining the
/// plugin's inbox; the points in `extended` (those other stacks extend)
/// publish from `AllAutomationSlices` (`micro`: `<Point>Publisher` each).
pub fn function_units(manifest: &Manifest, consolidation: Consolidation, extended: &[String]) -> Vec<FunctionUnit> {
    let plugin = &manifest.plugin;
    let mut units = vec![
        FunctionUnit::whole("Api", format!("{plugin}Api")),
        FunctionUnit::whole("Heartbeat", format!("{plugin}Heartbeat")),
    ];
    if manifest.components.iter().any(|c| is_remote_extension(manifest, c)) {
        let unit = FunctionUnit::whole("Extensions", format!("{plugin}Extensions"));
        units.push(FunctionUnit { topic: Some(reventless_core::inbox_topic(plugin)), ..unit });
    }
    let layout = topic_layout(consolidation);
    for (topic, components) in layout.topics(manifest) {
        let name = match layout {
            TopicLayout::PerPlugin => format!("{plugin}StateChanges"),
            // `{plugin}_{log or component}_Commands` → `{LogOrComponent}Commands`.
            _ => topic.strip_prefix(&format!("{plugin}_")).unwrap_or(&topic).replace('_', ""),
        };
        units.push(FunctionUnit { group: "StateChanges", name, components, topic: Some(topic) });
    }
    for group in ["AllReadModels", "AllAutomationSlices"] {
        // (function name under `micro`, component)
        let followers: Vec<(String, String)> = stream_followers(manifest, group, extended)
            .map(|c| match c.kind {
                ComponentKind::ExtensionPoint => {
                    let point = c.name.rsplit('.').next().unwrap_or(&c.name);
                    (format!("{point}Publisher"), c.name.clone())
                }
                _ => (c.name.clone(), c.name.clone()),
            })
            .collect();
        if followers.is_empty() {
            continue;
        }
        if consolidation == Consolidation::Micro {
            units.extend(followers.into_iter().map(|(name, component)| FunctionUnit {
                group,
                name,
                components: vec![component],
                topic: None,
            }));
        } else {
            units.push(FunctionUnit::whole(group, group.to_string()));
        }
    }
    units
}

/// The handler groups a plugin needs, from its manifest (`single`).
pub fn handler_groups(manifest: &Manifest) -> Vec<&'static str> {
    function_units(manifest, Consolidation::Single, &[]).into_iter().map(|unit| unit.group).collect()
}

/// DynamoDB advises at most two readers per stream shard (more are throttled).
pub const STREAM_READERS_ADVISED: usize = 2;

/// The plan of a stage: the platform stack and every plugin stack.
pub fn plan(config: &ProjectConfig, account: &str, manifests: &BTreeMap<String, Manifest>) -> Result<Plan, PlanError> {
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
        resources.extend(gateway_resources(config, &arns, &registry));
    }
    let links = ExtensionLinks::of(config, manifests)?;

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
        let names = stack_names(config, stack);
        let extended = links.points_of(&plugin);
        let units = function_units(manifest, config.consolidation, &extended);
        // Where this plugin's published events go: each subscriber's inbox queue.
        let mut subscribers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut inboxes: BTreeMap<String, String> = BTreeMap::new();
        for point in &extended {
            for subscriber_stack in &links.subscribers[point] {
                let subscriber = config.plugin_name(subscriber_stack);
                let prefix = stack_names(config, subscriber_stack).stores.queue_prefix;
                let topic = reventless_core::inbox_topic(&subscriber);
                inboxes.insert(topic.clone(), crate::command_topic::queue_name(&prefix, &topic));
                subscribers.entry(point.clone()).or_default().push(subscriber);
            }
        }
        let keys: Vec<&str> = units.iter().flat_map(|unit| [unit.group, unit.name.as_str()]).collect();
        check_tuning_keys(config, stack, &keys)?;
        // Each drained topic: its FIFO queue and dead-letter queue.
        let queues: Vec<(&FunctionUnit, String, String)> = units
            .iter()
            .filter_map(|unit| {
                let topic = unit.topic.as_ref()?;
                let queue = crate::command_topic::queue_name(&names.stores.queue_prefix, topic);
                let dead_letters =
                    crate::command_topic::queue_name(&names.stores.queue_prefix, &format!("{topic}-dlq"));
                Some((unit, queue, dead_letters))
            })
            .collect();
        // Async commands may be sent from any function; the inbox only receives from publishers.
        let queue_arns: Vec<String> = queues
            .iter()
            .filter(|(unit, _, _)| unit.group == "StateChanges")
            .map(|(_, queue, _)| arns.queue(queue))
            .collect();
        let stream_readers = units.iter().filter(|unit| unit.follows_stream()).count();
        if stream_readers > STREAM_READERS_ADVISED {
            warnings.push(format!(
                "{stack}: {stream_readers} functions read the events stream (DynamoDB advises at most \
                 {STREAM_READERS_ADVISED} per shard; more are throttled): `micro` suits plugins with few followers"
            ));
        }
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
        for (unit, queue, dead_letters) in &queues {
            resources.push(Resource {
                kind: ResourceKind::Queue,
                name: dead_letters.clone(),
                stack: stack.clone(),
                component: unit.name.clone(),
                tags: tags(config, stack, &unit.name),
                spec: json!({"fifo": true, "visibilityTimeout": 30, "redriveTo": null, "maxReceiveCount": null}),
            });
            let visibility = config.tuning(stack, &[unit.group, &unit.name]).timeout * 6;
            resources.push(Resource {
                kind: ResourceKind::Queue,
                name: queue.clone(),
                stack: stack.clone(),
                component: unit.name.clone(),
                tags: tags(config, stack, &unit.name),
                spec: json!({"fifo": true, "visibilityTimeout": visibility, "redriveTo": dead_letters, "maxReceiveCount": 5}),
            });
        }
        if stream_readers > 0 {
            resources.push(Resource {
                kind: ResourceKind::Queue,
                name: names.stream_failures.clone(),
                stack: stack.clone(),
                component: "stream-failures".into(),
                tags: tags(config, stack, "stream-failures"),
                spec: json!({"fifo": false, "visibilityTimeout": 30, "redriveTo": null, "maxReceiveCount": null}),
            });
        }
        for unit in &units {
            let group = unit.group;
            let function = resource_name(config, stack, &unit.name, FUNCTION_NAME_MAX);
            let tuning = config.tuning(stack, &[group, &unit.name]);
            let mut statements = vec![
                json!({
                    "Effect": "Allow",
                    "Action": ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:PutItem",
                               "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"],
                    "Resource": [arns.table(&names.stores.events_table), arns.table(&names.stores.rows_table)],
                }),
                // A Query through an index is authorized on the index's own ARN:
                // without these, reading a log and every indexed list
                // (automations list their todos by status) is refused.
                json!({"Effect": "Allow", "Action": ["dynamodb:Query"], "Resource": arns.indexes(&names.stores)}),
            ];
            // Any function may send the plugin's async commands; only a
            // command function receives, and only from its own queue.
            if !queue_arns.is_empty() {
                statements.push(json!({
                    "Effect": "Allow",
                    "Action": ["sqs:SendMessage", "sqs:GetQueueUrl"],
                    "Resource": queue_arns,
                }));
            }
            let own_queue = queues.iter().find(|(drained, _, _)| drained.name == unit.name);
            if let Some((_, queue, _)) = own_queue {
                statements.push(json!({
                    "Effect": "Allow",
                    "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                               "sqs:GetQueueAttributes"],
                    "Resource": [arns.queue(queue)],
                }));
            }
            let publishes = group == "AllAutomationSlices"
                && (unit.components.is_empty() || unit.components.iter().any(|c| subscribers.contains_key(c)));
            if publishes && !inboxes.is_empty() {
                statements.push(json!({
                    "Effect": "Allow",
                    "Action": ["sqs:SendMessage", "sqs:GetQueueUrl"],
                    "Resource": inboxes.values().map(|queue| arns.queue(queue)).collect::<Vec<_>>(),
                }));
            }
            if unit.follows_stream() {
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
            let role = if unit.follows_stream() { group.to_string() } else { format!("{plugin}{group}") };
            let function_config = FunctionConfig {
                registry: heartbeat.then(|| registry.clone()),
                api_function: heartbeat.then(|| api_function(config, stack)),
                topics: topic_layout(config.consolidation),
                components: if unit.follows_stream() { unit.components.clone() } else { Vec::new() },
                subscribers: if publishes { subscribers.clone() } else { BTreeMap::new() },
                queue_names: if publishes { inboxes.clone() } else { BTreeMap::new() },
                ..FunctionConfig::new(role, &plugin, names.stores.clone())
            };
            let mut environment = BTreeMap::new();
            environment
                .insert(crate::lambda::CONFIG_ENV.into(), serde_json::to_string(&function_config).unwrap_or_default());
            if !config.plugins[stack].secrets.is_empty() {
                environment.insert("REVENTLESS_SECRETS".into(), config.plugins[stack].secrets.join(","));
            }
            resources.extend(function_resources(config, &arns, stack, unit, &function, statements, environment));
            let mapping = match own_queue {
                // Both handlers answer `batchItemFailures`: without
                // ReportBatchItemFailures Lambda ignores it and retries (or
                // drops) the whole batch.
                Some((_, queue, _)) => Some(json!({
                    "function": function, "queue": queue, "batchSize": tuning.sqs_batch_size,
                    "functionResponseTypes": ["ReportBatchItemFailures"],
                })),
                None if unit.follows_stream() => {
                    let logs = json!(followed_log_keys(manifest, unit, &extended));
                    let mut types = followed_types(manifest, unit, &extended).map(|types| json!(types));
                    let length = stream_filter_pattern(&logs, types.as_ref()).chars().count();
                    if types.is_some() && length > FILTER_PATTERN_MAX {
                        // Lambda refuses the mapping; the log filter alone still
                        // spares the function fence and counter items, and it
                        // skips the events no follower consumes.
                        types = None;
                        warnings.push(format!(
                            "{stack}: the stream filter of {function} would take {length} characters with its \
                             event types, more than Lambda's {FILTER_PATTERN_MAX} per pattern: it filters by log \
                             only, so events of other types also wake it (and are skipped)"
                        ));
                    }
                    Some(json!({
                        "function": function, "table": names.stores.events_table, "batchSize": 100,
                        "bisectOnError": true, "maximumRetryAttempts": 10, "onFailure": names.stream_failures,
                        "logs": logs, "types": types,
                        "functionResponseTypes": ["ReportBatchItemFailures"],
                    }))
                }
                None => None,
            };
            if let Some(spec) = mapping {
                resources.push(Resource {
                    kind: ResourceKind::EventSourceMapping,
                    name: format!("{function}:{}", if own_queue.is_some() { "commands" } else { "events" }),
                    stack: stack.clone(),
                    component: unit.name.clone(),
                    tags: tags(config, stack, &unit.name),
                    spec,
                });
            }
            if heartbeat {
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
                    component: unit.name.clone(),
                    tags: tags(config, stack, &unit.name),
                    spec: json!({"function": function, "expression": "rate(1 minute)", "role": scheduler_role}),
                });
            }
            if group == "Api" {
                resources.push(Resource {
                    kind: ResourceKind::FunctionUrl,
                    name: function.clone(),
                    stack: stack.clone(),
                    component: unit.name.clone(),
                    tags: tags(config, stack, &unit.name),
                    spec: json!({"authType": "AWS_IAM", "public": false}),
                });
            }
        }
        resources.push(parameter(config, stack, "events-table", &names.stores.events_table));
        resources.push(parameter(config, stack, "rows-table", &names.stores.rows_table));
        let command_queues: Vec<&str> = queues
            .iter()
            .filter(|(unit, _, _)| unit.group == "StateChanges")
            .map(|(_, queue, _)| queue.as_str())
            .collect();
        if !command_queues.is_empty() {
            resources.push(parameter(config, stack, "command-queues", &command_queues.join(",")));
        }
        if let Some((_, inbox, _)) = queues.iter().find(|(unit, _, _)| unit.group == "Extensions") {
            resources.push(parameter(config, stack, "inbox-queue", inbox));
        }
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

/// IAM's limit on the inline policies of one role, in characters without
/// whitespace (`PutRolePolicy` answers `LimitExceeded` past it).
pub const ROLE_POLICY_MAX: usize = 10_240;

/// A warning for each role whose policy IAM would refuse as too large (it
/// lists every queue and table its function uses: many components under
/// `micro`, or many plugins, grow it).
fn oversized_policies(resources: &[Resource]) -> Vec<String> {
    resources
        .iter()
        .filter(|r| r.kind == ResourceKind::Role)
        .filter_map(|role| {
            let size = serde_json::to_string(&role.spec["policy"]).map(|text| text.len()).unwrap_or(0);
            (size > ROLE_POLICY_MAX).then(|| {
                format!(
                    "role {} has a {size}-character policy, over IAM's {ROLE_POLICY_MAX} for a role: the deploy of it will fail (split the plugin, or choose a consolidation with fewer resources per function)",
                    role.name
                )
            })
        })
        .collect()
}

/// A tuning key under `groups` must name a group or a function of the stack
/// (or be `default`): a misspelt one would silently tune nothing.
fn check_tuning_keys(config: &ProjectConfig, stack: &str, known: &[&str]) -> Result<(), PlanError> {
    let configured =
        if stack == PLATFORM { Some(&config.platform.groups) } else { config.plugins.get(stack).map(|s| &s.groups) };
    for key in configured.into_iter().flat_map(|groups| groups.keys()) {
        if key != "default" && !known.contains(&key.as_str()) {
            let mut names: Vec<&str> = known.to_vec();
            names.sort_unstable();
            names.dedup();
            return Err(PlanError::UnknownTuningKey {
                stack: stack.to_string(),
                key: key.clone(),
                known: names.join(", "),
            });
        }
    }
    Ok(())
}

/// A function with its role (trusting Lambda, `statements` plus writing its
/// own logs) and its log group.
fn function_resources(
    config: &ProjectConfig,
    arns: &Arns,
    stack: &str,
    unit: &FunctionUnit,
    function: &str,
    mut statements: Vec<Value>,
    environment: BTreeMap<String, String>,
) -> Vec<Resource> {
    let tuning = config.tuning(stack, &[unit.group, &unit.name]);
    let component = unit.name.as_str();
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
            component: component.into(),
            tags: tags(config, stack, component),
            spec: json!({"trust": "lambda.amazonaws.com", "policy": {"Version": "2012-10-17", "Statement": statements}}),
        },
        Resource {
            kind: ResourceKind::LogGroup,
            name: format!("/aws/lambda/{function}"),
            stack: stack.to_string(),
            component: component.into(),
            tags: tags(config, stack, component),
            spec: json!({"retentionDays": tuning.log_retention_days}),
        },
        Resource {
            kind: ResourceKind::Function,
            name: function.to_string(),
            stack: stack.to_string(),
            component: component.into(),
            tags: tags(config, stack, component),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str, queues: usize) -> Resource {
        let arns: Vec<String> =
            (0..queues).map(|i| format!("arn:aws:sqs:us-east-1:123456789012:shop-dev-big-Queue{i:04}.fifo")).collect();
        Resource {
            kind: ResourceKind::Role,
            name: name.into(),
            stack: "big".into(),
            component: name.into(),
            tags: BTreeMap::new(),
            spec: json!({"trust": "lambda.amazonaws.com", "policy": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": arns}]}}),
        }
    }

    #[test]
    fn a_role_policy_over_iams_limit_is_a_plan_warning() {
        let small = role("shop-dev-big-Small", 10);
        let large = role("shop-dev-big-Large", 200);
        let warnings = oversized_policies(&[small, large]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("shop-dev-big-Large") && warnings[0].contains("10240"), "{}", warnings[0]);
    }
}
