//! `reventless.toml`: the project, its stages, the platform stack and the
//! plugin stacks, handler-group tuning. Precedence, highest first: env
//! `REVENTLESS_<KEY>` > `reventless.local.toml` (git-ignored) >
//! `[stages.<stage>]` > the file's top level > defaults. Unknown keys and bad
//! values are errors naming the key.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::gateway::AuthSettings;
use crate::package::Architecture;

mod storage;
pub use storage::{Billing, BillingMode, CAPACITY_MAX, QueueSettings, QueuesLayer, TableSettings, TablesLayer};

/// Tuning of one handler group (every field optional: unset inherits).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuningLayer {
    pub memory_size: Option<i64>,
    pub timeout: Option<i64>,
    pub reserved_concurrency: Option<i64>,
    pub sqs_batch_size: Option<i64>,
    pub ephemeral_storage_mb: Option<i64>,
    pub log_retention_days: Option<i64>,
    pub env_vars: Option<BTreeMap<String, String>>,
    /// The functions' log level (`info`, `warn,reventless_core=debug`): `REVENTLESS_LOG`.
    pub log_level: Option<String>,
}

/// Resolved tuning of a function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tuning {
    pub memory_size: i64,
    pub timeout: i64,
    pub reserved_concurrency: Option<i64>,
    pub sqs_batch_size: i64,
    pub ephemeral_storage_mb: i64,
    pub log_retention_days: i64,
    pub env_vars: BTreeMap<String, String>,
    /// Unset: the functions log at `info`.
    pub log_level: Option<String>,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            memory_size: 1024,
            timeout: 30,
            reserved_concurrency: None,
            sqs_batch_size: 10,
            ephemeral_storage_mb: 512,
            log_retention_days: 7,
            env_vars: BTreeMap::new(),
            log_level: None,
        }
    }
}

impl Tuning {
    fn apply(&mut self, layer: &TuningLayer) {
        if let Some(v) = layer.memory_size {
            self.memory_size = v;
        }
        if let Some(v) = layer.timeout {
            self.timeout = v;
        }
        if layer.reserved_concurrency.is_some() {
            self.reserved_concurrency = layer.reserved_concurrency;
        }
        if let Some(v) = layer.sqs_batch_size {
            self.sqs_batch_size = v;
        }
        if let Some(v) = layer.ephemeral_storage_mb {
            self.ephemeral_storage_mb = v;
        }
        if let Some(v) = layer.log_retention_days {
            self.log_retention_days = v;
        }
        if let Some(vars) = &layer.env_vars {
            self.env_vars.extend(vars.clone());
        }
        if layer.log_level.is_some() {
            self.log_level.clone_from(&layer.log_level);
        }
    }

    fn validate(&self, at: &str) -> Result<(), ConfigError> {
        let check = |key: &str, value: i64, low: i64, high: i64| {
            if (low..=high).contains(&value) {
                Ok(())
            } else {
                Err(ConfigError::Value {
                    key: format!("{at}.{key}"),
                    message: format!("{value} is not in {low}..={high}"),
                })
            }
        };
        check("memory_size", self.memory_size, 128, 10_240)?;
        check("timeout", self.timeout, 1, 900)?;
        check("sqs_batch_size", self.sqs_batch_size, 1, 10)?;
        check("ephemeral_storage_mb", self.ephemeral_storage_mb, 512, 10_240)?;
        if let Some(concurrency) = self.reserved_concurrency {
            check("reserved_concurrency", concurrency, 0, 1000)?;
        }
        const RETENTION: [i64; 22] =
            [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];
        if !RETENTION.contains(&self.log_retention_days) {
            return Err(ConfigError::Value {
                key: format!("{at}.log_retention_days"),
                message: format!("{} is not a CloudWatch retention ({RETENTION:?})", self.log_retention_days),
            });
        }
        if let Some(level) = &self.log_level {
            crate::lambda::logging::check_level(level)
                .map_err(|message| ConfigError::Value { key: format!("{at}.log_level"), message })?;
        }
        for key in self.env_vars.keys() {
            if key.starts_with("AWS_") || key.starts_with("REVENTLESS_") {
                return Err(ConfigError::Value {
                    key: format!("{at}.env_vars.{key}"),
                    message: "reserved for the platform".into(),
                });
            }
        }
        Ok(())
    }
}

/// How many functions a plugin gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Consolidation {
    /// One function per handler group (DESIGN §6).
    #[default]
    Single,
    /// One command function and queue per aggregate (a plugin's DCB slices
    /// share one); followers as `single`.
    PerAggregate,
    /// One command function and queue per async component, one function per follower.
    Micro,
}

/// A plugin stack as the file describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginStack {
    /// The plugin's name in its manifest (default: the stack key, capitalized).
    pub name: Option<String>,
    /// The cargo package and binary of its Lambda `bootstrap`.
    pub package: Option<String>,
    pub bin: Option<String>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Names of `[secrets]` its functions may read (values fetched at runtime).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Tuning per handler group (`Api`, `AllReadModels`, …) or `default`.
    #[serde(default)]
    pub groups: BTreeMap<String, TuningLayer>,
}

/// The platform stack: the deploy lock, the plugin registry and, when its
/// binary is named, the gateway serving every plugin's API at one URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformStack {
    /// The cargo package and binary of the gateway's `bootstrap`
    /// (`reventless_aws::gateway::main`); no gateway when `bin` is unset.
    pub package: Option<String>,
    pub bin: Option<String>,
    /// Tuning of the `Gateway` group (or `default`).
    #[serde(default)]
    pub groups: BTreeMap<String, TuningLayer>,
}

/// `[auth]`: the OIDC issuer whose tokens the gateway accepts (every key
/// optional in a layer; later layers override single keys).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthLayer {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub user_claim: Option<String>,
    pub roles_claim: Option<String>,
    pub jwks_url: Option<String>,
}

impl AuthLayer {
    /// The gateway's settings; `issuer` and `audience` are required once any key is set.
    fn resolve(self) -> Result<AuthSettings, ConfigError> {
        let issuer = self.issuer.ok_or(ConfigError::Missing { key: "auth.issuer".into() })?;
        let audience = self.audience.ok_or(ConfigError::Missing { key: "auth.audience".into() })?;
        let mut settings = AuthSettings::new(issuer, audience);
        if let Some(claim) = self.user_claim {
            settings.user_claim = claim;
        }
        if let Some(claim) = self.roles_claim {
            settings.roles_claim = claim;
        }
        settings.jwks_url = self.jwks_url;
        if let Some((key, message)) = settings.problem() {
            return Err(ConfigError::Value { key: format!("auth.{key}"), message });
        }
        Ok(settings)
    }
}

/// One layer of the file (top level, a stage, or the local file).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Layer {
    project: Option<String>,
    region: Option<String>,
    architecture: Option<Architecture>,
    consolidation: Option<Consolidation>,
    layers: Option<Vec<String>>,
    defaults: Option<TuningLayer>,
    platform: Option<PlatformStack>,
    auth: Option<AuthLayer>,
    /// Secret name → SSM SecureString path (see [`super::secrets`]).
    secrets: Option<BTreeMap<String, String>>,
    /// The KMS key ARN of the secrets when not SSM's AWS-managed key.
    secrets_kms_key: Option<String>,
    /// Who deploys (default: the name of the directory holding the file).
    source: Option<String>,
    /// A throwaway stage: no point-in-time recovery or deletion protection by default.
    ephemeral: Option<bool>,
    tables: Option<TablesLayer>,
    queues: Option<QueuesLayer>,
    #[serde(default)]
    plugins: BTreeMap<String, PluginStack>,
    #[serde(default)]
    stages: BTreeMap<String, Layer>,
}

/// The resolved configuration of one stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectConfig {
    pub project: String,
    pub stage: String,
    pub region: String,
    pub architecture: Architecture,
    pub consolidation: Consolidation,
    pub layers: Vec<String>,
    pub defaults: Tuning,
    pub platform: PlatformStack,
    /// End-user authentication at the gateway (`[auth]`); None: anonymous callers only.
    pub auth: Option<AuthSettings>,
    /// Stack key → stack (e.g. `catalog`).
    pub plugins: BTreeMap<String, PluginStack>,
    /// Where the file is (builds run in its workspace).
    pub root: PathBuf,
    /// Who deploys this file's stacks (`source`; default: the name of the
    /// directory holding it). Recorded per plugin stack as its output
    /// `deployed-from`: a deploy prunes only removed stacks it deployed
    /// itself, never those of another project directory sharing the stage.
    pub source: String,
    /// `ephemeral = true`: a throwaway stage (safety defaults off).
    pub ephemeral: bool,
    /// How plugin stacks' events and rows tables are kept (`[tables]`).
    pub tables: TableSettings,
    /// How FIFO queues scale (`[queues]`).
    pub queues: QueueSettings,
    /// `[secrets]` and `secrets_kms_key`.
    pub secrets: super::secrets::SecretsSettings,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path}: {message}")]
    Syntax { path: String, message: String },
    #[error("`{key}`: {message}")]
    Value { key: String, message: String },
    #[error("`{key}` is required")]
    Missing { key: String },
    #[error("stage `{0}` is not in the file (known: {1})")]
    UnknownStage(String, String),
    #[error("plugin `{plugin}` depends on `{missing}`, which is no stack key (lowercase letters and digits)")]
    MissingDependency { plugin: String, missing: String },
    #[error("plugin stacks depend on each other in a cycle: {0}")]
    Cycle(String),
}

fn parse_layer(text: &str, path: &str) -> Result<Layer, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Syntax { path: path.to_string(), message: e.to_string() })
}

fn merge(base: &mut Layer, over: Layer) {
    macro_rules! take {
        ($($field:ident),*) => { $( if over.$field.is_some() { base.$field = over.$field; } )* };
    }
    take!(project, region, architecture, consolidation, layers, source, ephemeral);
    if let Some(tables) = over.tables {
        base.tables.get_or_insert_with(TablesLayer::default).merge(tables);
    }
    if let Some(queues) = over.queues {
        base.queues.get_or_insert_with(QueuesLayer::default).merge(queues);
    }
    if let Some(secrets) = over.secrets {
        base.secrets.get_or_insert_with(BTreeMap::new).extend(secrets);
    }
    take!(secrets_kms_key);
    if let Some(auth) = over.auth {
        let base = base.auth.get_or_insert_with(AuthLayer::default);
        macro_rules! take_auth {
            ($($field:ident),*) => { $( if auth.$field.is_some() { base.$field = auth.$field; } )* };
        }
        take_auth!(issuer, audience, user_claim, roles_claim, jwks_url);
    }
    if let Some(defaults) = over.defaults {
        let merged = base.defaults.get_or_insert_with(TuningLayer::default);
        merge_tuning(merged, defaults);
    }
    if let Some(platform) = over.platform {
        let entry = base.platform.get_or_insert_with(PlatformStack::default);
        if platform.package.is_some() {
            entry.package = platform.package;
        }
        if platform.bin.is_some() {
            entry.bin = platform.bin;
        }
        for (group, tuning) in platform.groups {
            merge_tuning(entry.groups.entry(group).or_default(), tuning);
        }
    }
    for (key, stack) in over.plugins {
        let entry = base.plugins.entry(key).or_default();
        if stack.name.is_some() {
            entry.name = stack.name;
        }
        if stack.package.is_some() {
            entry.package = stack.package;
        }
        if stack.bin.is_some() {
            entry.bin = stack.bin;
        }
        if !stack.depends_on.is_empty() {
            entry.depends_on = stack.depends_on;
        }
        if !stack.secrets.is_empty() {
            entry.secrets = stack.secrets;
        }
        for (group, tuning) in stack.groups {
            merge_tuning(entry.groups.entry(group).or_default(), tuning);
        }
    }
}

fn merge_tuning(base: &mut TuningLayer, over: TuningLayer) {
    macro_rules! take {
        ($($field:ident),*) => { $( if over.$field.is_some() { base.$field = over.$field; } )* };
    }
    take!(
        memory_size,
        timeout,
        reserved_concurrency,
        sqs_batch_size,
        ephemeral_storage_mb,
        log_retention_days,
        log_level
    );
    if let Some(vars) = over.env_vars {
        base.env_vars.get_or_insert_with(BTreeMap::new).extend(vars);
    }
}

/// Overrides from the environment (`REVENTLESS_REGION`, `REVENTLESS_MEMORY_SIZE`, …).
fn env_layer(env: &dyn Fn(&str) -> Option<String>) -> Result<Layer, ConfigError> {
    let mut layer = Layer {
        project: env("REVENTLESS_PROJECT"),
        region: env("REVENTLESS_REGION"),
        source: env("REVENTLESS_SOURCE"),
        ..Layer::default()
    };
    if let Some(text) = env("REVENTLESS_ARCHITECTURE") {
        layer.architecture = Some(
            text.parse().map_err(|message| ConfigError::Value { key: "REVENTLESS_ARCHITECTURE".into(), message })?,
        );
    }
    if let Some(text) = env("REVENTLESS_CONSOLIDATION") {
        let parsed = serde_json::from_value(serde_json::Value::String(text.trim().to_string()));
        layer.consolidation = Some(parsed.map_err(|_| ConfigError::Value {
            key: "REVENTLESS_CONSOLIDATION".into(),
            message: format!("`{text}` is not one of single, per-aggregate, micro"),
        })?);
    }
    let auth = AuthLayer {
        issuer: env("REVENTLESS_AUTH_ISSUER"),
        audience: env("REVENTLESS_AUTH_AUDIENCE"),
        user_claim: env("REVENTLESS_AUTH_USER_CLAIM"),
        roles_claim: env("REVENTLESS_AUTH_ROLES_CLAIM"),
        jwks_url: env("REVENTLESS_AUTH_JWKS_URL"),
    };
    if auth != AuthLayer::default() {
        layer.auth = Some(auth);
    }
    let mut tuning = TuningLayer::default();
    let number = |key: &str| -> Result<Option<i64>, ConfigError> {
        let name = format!("REVENTLESS_{}", key.to_ascii_uppercase());
        env(&name)
            .map(|text| {
                text.trim()
                    .parse()
                    .map_err(|_| ConfigError::Value { key: name.clone(), message: format!("`{text}` is not a number") })
            })
            .transpose()
    };
    tuning.memory_size = number("memory_size")?;
    tuning.timeout = number("timeout")?;
    tuning.reserved_concurrency = number("reserved_concurrency")?;
    tuning.sqs_batch_size = number("sqs_batch_size")?;
    tuning.ephemeral_storage_mb = number("ephemeral_storage_mb")?;
    tuning.log_retention_days = number("log_retention_days")?;
    tuning.log_level = env("REVENTLESS_LOG_LEVEL");
    if tuning != TuningLayer::default() {
        layer.defaults = Some(tuning);
    }
    Ok(layer)
}

/// The longest `source`.
pub const SOURCE_MAX: usize = 100;

/// The output (`/reventless/{project}/{stage}/{stack}/deployed-from`) that
/// records which source deployed a plugin stack.
pub const DEPLOYED_FROM: &str = "deployed-from";

/// The name of the directory holding the file (`root`; a relative one is
/// resolved first when it exists), or the project's name when it has none. Characters a
/// source may not hold become `-`.
fn default_source(root: &Path, project: &str) -> String {
    let root = if root.as_os_str().is_empty() { Path::new(".") } else { root };
    let resolved = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let named = resolved.file_name().map(|name| name.to_string_lossy().into_owned());
    let name = named.unwrap_or_else(|| project.to_string());
    let cleaned: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' })
        .take(SOURCE_MAX)
        .collect();
    if cleaned.is_empty() { project.to_string() } else { cleaned }
}

impl ProjectConfig {
    /// Loads `path` (and `reventless.local.toml` next to it) for `stage`,
    /// with overrides from the process environment.
    pub fn load(path: &Path, stage: &str) -> Result<Self, ConfigError> {
        Self::load_with_env(path, stage, &|key| std::env::var(key).ok())
    }

    pub fn load_with_env(path: &Path, stage: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path)
                .map_err(|e| ConfigError::Read { path: path.display().to_string(), message: e.to_string() })
        };
        let local_path = path.with_file_name("reventless.local.toml");
        let local = if local_path.exists() { Some(read(&local_path)?) } else { None };
        let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::from_texts(&read(path)?, local.as_deref(), stage, env, root)
    }

    /// Resolves the layers given as text (what `load` reads from disk).
    pub fn from_texts(
        file: &str,
        local: Option<&str>,
        stage: &str,
        env: &dyn Fn(&str) -> Option<String>,
        root: PathBuf,
    ) -> Result<Self, ConfigError> {
        let mut top = parse_layer(file, "reventless.toml")?;
        let mut stages = std::mem::take(&mut top.stages);
        let known = stages.keys().cloned().collect::<Vec<_>>().join(", ");
        let stage_layer = stages.remove(stage).ok_or_else(|| ConfigError::UnknownStage(stage.into(), known))?;
        if !stage_layer.stages.is_empty() {
            return Err(ConfigError::Value {
                key: format!("stages.{stage}.stages"),
                message: "stages do not nest".into(),
            });
        }
        let mut merged = top;
        merge(&mut merged, stage_layer);
        if let Some(local) = local {
            let local = parse_layer(local, "reventless.local.toml")?;
            merge(&mut merged, local);
        }
        merge(&mut merged, env_layer(env)?);

        let project = merged.project.ok_or(ConfigError::Missing { key: "project".into() })?;
        if project.is_empty() || !project.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') || project.len() > 20 {
            return Err(ConfigError::Value { key: "project".into(), message: "1–20 letters, digits or -".into() });
        }
        if stage.is_empty() || !stage.chars().all(|c| c.is_ascii_alphanumeric()) || stage.len() > 10 {
            return Err(ConfigError::Value { key: "stage".into(), message: "1–10 letters or digits".into() });
        }
        let mut defaults = Tuning::default();
        if let Some(layer) = &merged.defaults {
            defaults.apply(layer);
        }
        defaults.validate("defaults")?;
        let platform = merged.platform.unwrap_or_default();
        let auth = merged.auth.map(AuthLayer::resolve).transpose()?;
        for (group, layer) in &platform.groups {
            let mut tuning = defaults.clone();
            tuning.apply(layer);
            tuning.validate(&format!("platform.groups.{group}"))?;
        }
        let secrets =
            super::secrets::SecretsSettings::resolve(merged.secrets.unwrap_or_default(), merged.secrets_kms_key)?;
        for (key, stack) in &merged.plugins {
            if key == super::plan::PLATFORM {
                return Err(ConfigError::Value {
                    key: format!("plugins.{key}"),
                    message: "`platform` is the platform stack's name".into(),
                });
            }
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
                return Err(ConfigError::Value {
                    key: format!("plugins.{key}"),
                    message: "stack keys are lowercase letters and digits".into(),
                });
            }
            // A dependency may be a stack of another project file deploying
            // into the same stage: the deploy checks its outputs in SSM.
            for dependency in &stack.depends_on {
                if dependency.is_empty() || !dependency.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
                    return Err(ConfigError::MissingDependency { plugin: key.clone(), missing: dependency.clone() });
                }
            }
            for (group, layer) in &stack.groups {
                let mut tuning = defaults.clone();
                tuning.apply(layer);
                tuning.validate(&format!("plugins.{key}.groups.{group}"))?;
            }
            secrets.check_stack(key, &stack.secrets)?;
        }
        let ephemeral = merged.ephemeral.unwrap_or(false);
        let tables = merged.tables.unwrap_or_default().resolve(ephemeral)?;
        let queues = merged.queues.unwrap_or_default().resolve();
        let source = match merged.source {
            Some(source) => source,
            None => default_source(&root, &project),
        };
        if source.is_empty()
            || source.len() > SOURCE_MAX
            || !source.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(ConfigError::Value {
                key: "source".into(),
                message: format!("`{source}`: 1–{SOURCE_MAX} letters, digits, -, _ or ."),
            });
        }
        let config = ProjectConfig {
            project,
            stage: stage.to_string(),
            region: merged.region.unwrap_or_else(|| "us-east-1".into()),
            architecture: merged.architecture.unwrap_or_default(),
            consolidation: merged.consolidation.unwrap_or_default(),
            layers: merged.layers.unwrap_or_default(),
            defaults,
            platform,
            auth,
            plugins: merged.plugins,
            root,
            source,
            ephemeral,
            tables,
            queues,
            secrets,
        };
        config.deploy_order()?;
        Ok(config)
    }

    /// The tuning of one of a stack's functions: the defaults, then the
    /// stack's `groups.default`, then each of `keys` (its handler group, then
    /// its own name), later ones winning.
    pub fn tuning(&self, stack: &str, keys: &[&str]) -> Tuning {
        let mut tuning = self.defaults.clone();
        let groups = if stack == super::plan::PLATFORM {
            Some(&self.platform.groups)
        } else {
            self.plugins.get(stack).map(|stack| &stack.groups)
        };
        if let Some(groups) = groups {
            for layer in std::iter::once(&"default").chain(keys).filter_map(|key| groups.get(*key)) {
                tuning.apply(layer);
            }
        }
        tuning
    }

    /// Plugin stacks in waves: each wave depends only on earlier ones (deploy
    /// a wave's stacks in parallel).
    pub fn deploy_order(&self) -> Result<Vec<Vec<String>>, ConfigError> {
        let mut done: Vec<String> = Vec::new();
        let mut waves = Vec::new();
        while done.len() < self.plugins.len() {
            let wave: Vec<String> = self
                .plugins
                .iter()
                .filter(|(key, stack)| {
                    // Stacks of other project files are deployed already (checked then).
                    !done.contains(key)
                        && stack.depends_on.iter().all(|d| done.contains(d) || !self.plugins.contains_key(d))
                })
                .map(|(key, _)| key.clone())
                .collect();
            if wave.is_empty() {
                let left: Vec<String> = self.plugins.keys().filter(|k| !done.contains(k)).cloned().collect();
                return Err(ConfigError::Cycle(left.join(", ")));
            }
            done.extend(wave.iter().cloned());
            waves.push(wave);
        }
        Ok(waves)
    }

    /// The plugin's name in its manifest.
    pub fn plugin_name(&self, stack: &str) -> String {
        self.plugins.get(stack).and_then(|s| s.name.clone()).unwrap_or_else(|| {
            let mut chars = stack.chars();
            chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
    }
}
