//! What a function is told by its environment: which handler group it is,
//! which plugin, where the plugin's tables and queues are.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::StoreNames;

/// The environment variable holding the compact JSON configuration.
pub const CONFIG_ENV: &str = "REVENTLESS_CONFIG";
/// Over Lambda's 4 KB environment limit, the configuration is a file in the
/// zip: this variable names it (relative to `LAMBDA_TASK_ROOT`).
pub const CONFIG_FILE_ENV: &str = "REVENTLESS_CONFIG_FILE";

/// The handler groups one plugin binary can be (DESIGN §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HandlerGroup {
    /// Synchronous aggregate commands from the command queue.
    AllAggregates,
    /// Asynchronous aggregate commands from the command queue.
    AllAggregatesAsync,
    /// DCB slice commands from the command queue (`<Plugin>StateChanges`).
    StateChanges,
    /// Read models, from the events table's stream.
    AllReadModels,
    /// State-view slices, from the events table's stream.
    AllStateViewSlices,
    /// Automations, outbound translations and extensions, from the stream.
    AllAutomationSlices,
    /// Other plugins' published events, from the plugin's inbox queue
    /// (`<Plugin>Extensions`).
    Extensions,
    /// The GraphQL endpoint (`<Plugin>Api`), over HTTP.
    Api,
    /// The plugin's liveness (`<Plugin>Heartbeat`), on a schedule.
    Heartbeat,
    /// File tasks (`<Plugin>Tasks`): S3 upload notifications from the tasks queue.
    Tasks,
}

impl HandlerGroup {
    /// Reads a role name as the deployer writes it (`CatalogApi` → `Api`).
    pub fn parse(role: &str, plugin: &str) -> Option<Self> {
        let local = role.strip_prefix(plugin).filter(|rest| !rest.is_empty()).unwrap_or(role);
        match local {
            "AllAggregates" => Some(Self::AllAggregates),
            "AllAggregatesAsync" => Some(Self::AllAggregatesAsync),
            "StateChanges" | "StateChangesAsync" => Some(Self::StateChanges),
            "AllReadModels" => Some(Self::AllReadModels),
            "AllStateViewSlices" => Some(Self::AllStateViewSlices),
            "AllAutomationSlices" => Some(Self::AllAutomationSlices),
            "Extensions" => Some(Self::Extensions),
            "Api" => Some(Self::Api),
            "Heartbeat" => Some(Self::Heartbeat),
            "Tasks" => Some(Self::Tasks),
            _ => None,
        }
    }

    /// Whether the group drains an SQS queue (commands, or published events for `Extensions`).
    pub fn runs_commands(self) -> bool {
        matches!(self, Self::AllAggregates | Self::AllAggregatesAsync | Self::StateChanges | Self::Extensions)
    }

    /// The followers a stream batch wakes in this group.
    pub fn followers(self) -> &'static [reventless_core::FollowerKind] {
        use reventless_core::FollowerKind;
        match self {
            Self::AllReadModels | Self::AllStateViewSlices => &[FollowerKind::Projection],
            Self::AllAutomationSlices => &[FollowerKind::Automation, FollowerKind::Extension, FollowerKind::Publisher],
            _ => &[],
        }
    }
}

/// A function's configuration (`REVENTLESS_CONFIG`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionConfig {
    /// The handler group, e.g. `AllReadModels` or `CatalogApi`.
    pub role: String,
    pub plugin: String,
    pub stores: StoreNames,
    /// Known command queue URLs by topic (saves a lookup per container).
    #[serde(default)]
    pub queues: BTreeMap<String, String>,
    /// The platform's registry table (heartbeats register the plugin there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// The plugin's API function, as the registry records it for the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_function: Option<String>,
    /// How the plugin's async commands are spread over queues (the deploy's consolidation).
    #[serde(default, skip_serializing_if = "is_default")]
    pub topics: reventless_core::TopicLayout,
    /// The components this function runs, when it runs only some of its
    /// group's (micro consolidation); empty: all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<String>,
    /// Plugins of other stacks extending this plugin's extension points:
    /// point (`Catalog.Products`) → subscriber plugins.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub subscribers: BTreeMap<String, Vec<String>>,
    /// Queues of other stacks by topic (the subscribers' inboxes): topic → queue name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub queue_names: BTreeMap<String, String>,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("neither {CONFIG_ENV} nor {CONFIG_FILE_ENV} is set")]
    Missing,
    #[error("cannot read {path}: {source}")]
    File { path: String, source: std::io::Error },
    #[error("invalid function configuration: {0}")]
    Invalid(#[from] serde_json::Error),
    #[error("unknown role `{role}` for plugin {plugin}")]
    UnknownRole { role: String, plugin: String },
    #[error("this binary hosts no plugin named `{0}`")]
    UnknownPlugin(String),
    #[error("plugin {plugin} has no component `{component}` (known: {known})")]
    UnknownComponent { plugin: String, component: String, known: String },
}

impl FunctionConfig {
    /// The function `role` of `plugin` on `stores`, with nothing else set.
    pub fn new(role: impl Into<String>, plugin: impl Into<String>, stores: StoreNames) -> Self {
        Self {
            role: role.into(),
            plugin: plugin.into(),
            stores,
            queues: BTreeMap::new(),
            registry: None,
            api_function: None,
            topics: Default::default(),
            components: Vec::new(),
            subscribers: BTreeMap::new(),
            queue_names: BTreeMap::new(),
        }
    }

    /// From the environment: the JSON in `REVENTLESS_CONFIG`, or the file named by `REVENTLESS_CONFIG_FILE`.
    pub fn from_env() -> Result<Self, ConfigError> {
        if let Ok(json) = std::env::var(CONFIG_ENV) {
            return Ok(serde_json::from_str(&json)?);
        }
        let file = std::env::var(CONFIG_FILE_ENV).map_err(|_| ConfigError::Missing)?;
        let root = std::env::var("LAMBDA_TASK_ROOT").unwrap_or_else(|_| ".".into());
        let path = std::path::Path::new(&root).join(file);
        let text = std::fs::read_to_string(&path)
            .map_err(|source| ConfigError::File { path: path.display().to_string(), source })?;
        Ok(serde_json::from_str(&text)?)
    }

    pub fn group(&self) -> Result<HandlerGroup, ConfigError> {
        HandlerGroup::parse(&self.role, &self.plugin)
            .ok_or_else(|| ConfigError::UnknownRole { role: self.role.clone(), plugin: self.plugin.clone() })
    }
}
