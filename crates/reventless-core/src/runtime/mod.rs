//! The platform-independent host of plugins: dispatches commands (one entity
//! at a time, entities in parallel), runs async commands from the command
//! topic, and keeps every projection caught up from its log.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reventless_spec::EventMeta;
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedMutexGuard, broadcast, watch};
use tokio::task::JoinHandle;

use crate::engine::ExecutionContext;
use crate::outcome::{CommandOutcome, CommandRequest, EngineError, authorize};
use crate::outcomes::{OutcomeRecord, outcomes_table};
use crate::plugin::{
    CommandHandler, LogKind, LogRef, Manifest, Plugin, PluginError, ResolvedPlugin, TopicLayout, command_topic,
};
use reventless_spec::EventEnvelope;

use crate::store::{Checkpoint, CommandMessage, Delivery, StoreError, Stores};

mod async_commands;
mod command_worker;
pub mod correlation;
pub mod explore;
mod followers;
mod lifecycle;
mod locks;
mod point_commands;
pub mod replay;
mod row_notices;
mod schedules;
mod upcast;
mod worker;

pub use correlation::{CORRELATION_HEADER, current_correlation, with_correlation};
use followers::*;
use locks::*;
pub use schedules::{PLATFORM_SCHEDULES, ScheduleClock, ScheduleFiring};
use tracing::Instrument;
pub use worker::LEASE_RETRY;
use worker::*;

/// Events read per projection batch (one commit each); halved while a store
/// refuses the commit as too large.
const PROJECTION_BATCH: usize = 512;
/// How long a gap in positions may stay open before followers pass it: an
/// append that reserved a position and did not land within this time failed
/// (AWS positions have gaps; local ones never do).
pub const GAP_GRACE: Duration = Duration::from_secs(2);
/// How long a woken projection waits for more commits before applying them.
const PROJECTION_COALESCE: Duration = Duration::from_millis(1);
/// Async command messages received per poll.
const COMMAND_BATCH: usize = 10;

/// Why the runtime could not do what was asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuntimeError {
    /// A plugin's registration is inconsistent.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// A projection keeps failing (it retries).
    #[error("projection `{projection}` is failing: {error}")]
    ProjectionFailed {
        /// The projection's table.
        projection: String,
        /// Its last error.
        error: String,
    },
    /// A follower's task ended.
    #[error("follower `{follower}` stopped ({reason}): it applies nothing more until the runtime restarts")]
    FollowerStopped {
        /// The follower.
        follower: String,
        /// Why it ended.
        reason: String,
    },
    /// A wait ran out.
    #[error("projections did not catch up within {0:?}")]
    Timeout(Duration),
    #[error(
        "plugin `{plugin}`: `{component}` needs the capability `{capability}`, which is not provided \
         (App::capabilities, Runtime::start_with, or lambda::main's capabilities)"
    )]
    /// A component needs a capability the runtime was not given.
    MissingCapability {
        /// The plugin.
        plugin: String,
        /// The component needing it.
        component: String,
        /// The capability's Rust type.
        capability: &'static str,
    },
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Progress {
    position: u64,
    error: Option<String>,
    /// Why the follower's task ended, once it has.
    stopped: Option<String>,
}

struct HostedProjection {
    name: String,
    source: LogRef,
    progress: watch::Receiver<Progress>,
}

/// What an inbound translation did: its audit row and each command's outcome.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundOutcome {
    /// The input's row in the audit table `<Plugin>_<NAME>Audit`.
    pub audit_id: String,
    /// Each command's outcome, in order.
    pub outcomes: Vec<CommandOutcome>,
}

/// A read-model row that a projection just wrote or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowChange {
    /// The query table.
    pub table: String,
    /// The row's id.
    pub id: String,
}

/// The table of hosted plugins (`Platform_Plugins`): one row per plugin.
pub const PLATFORM_PLUGINS: &str = "Platform_Plugins";
/// How often a hosted plugin reports that it is alive.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);

/// Row changes a slow subscriber may fall behind by before it is told it lagged.
const ROW_CHANGE_CAPACITY: usize = 4096;

struct Inner {
    stores: Stores,
    capabilities: reventless_spec::Capabilities,
    /// How long async command outcomes are kept.
    outcome_retention: Duration,
    row_changes: broadcast::Sender<RowChange>,
    plugins: BTreeMap<String, ResolvedPlugin>,
    manifests: Vec<Manifest>,
    locks: EntityLocks,
    projections: Vec<HostedProjection>,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// When the plugins connected (milliseconds since the Unix epoch).
    connected_at: u64,
    /// Each plugin's part of the API (GraphQL SDL), registered by the API builder.
    schema_fragments: Mutex<BTreeMap<String, String>>,
    /// Serializes lifecycle writes, so a later write always carries the latest fragments.
    lifecycle_writes: tokio::sync::Mutex<()>,
    /// Workers run by [`Runtime::catch_up`] (on-demand runtimes, e.g. a Lambda).
    on_demand: tokio::sync::Mutex<Vec<Worker>>,
    /// The topic of each async command: plugin → command → topic.
    command_topics: BTreeMap<String, BTreeMap<String, String>>,
    /// Every extension of the hosted plugins: (plugin, extension).
    extensions: Vec<(String, Arc<dyn crate::plugin::ExtensionHandler>)>,
    /// The read models' table pointers (replays switch them).
    read_model_tables: Arc<replay::ReadModelTables>,
}

/// How a runtime runs its background work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RuntimeMode {
    /// Workers follow the logs in tasks; the command worker polls the topic;
    /// plugins connect and beat their heart (the local platform).
    #[default]
    Background,
    /// Nothing runs by itself: the host calls [`Runtime::catch_up`] when logs
    /// changed and [`Runtime::run_queued`] for queued commands (AWS Lambda).
    OnDemand,
}

/// How a runtime is hosted, beyond its stores and plugins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeOptions {
    /// Background workers, or work on demand (Lambda).
    pub mode: RuntimeMode,
    /// Which topic each async command is queued on.
    pub topics: TopicLayout,
    /// Plugins hosted elsewhere that extend this runtime's extension points:
    /// point (`Catalog.Products`) → subscriber plugins. Each gets the
    /// point's published events, in order, on its inbox topic
    /// ([`inbox_topic`]). An on-demand runtime also accepts extensions whose
    /// point is hosted elsewhere: their events arrive through
    /// [`Runtime::run_published`].
    pub subscribers: BTreeMap<String, Vec<String>>,
    /// How long async command outcomes are kept (default
    /// [`crate::outcomes::DEFAULT_OUTCOME_RETENTION`]).
    pub outcome_retention: Option<Duration>,
    /// The clock of the schedules' timers (background runtimes).
    pub schedule_clock: ScheduleClock,
}

/// The topic where a plugin receives the events of other plugins' extension points.
pub fn inbox_topic(plugin: &str) -> String {
    format!("{plugin}_Extensions")
}

/// One published event on its way to a subscriber hosted elsewhere (the body
/// of an inbox message).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishedMessage {
    /// The extension point, `<Plugin>.<Point>`.
    pub point: String,
    /// The published event's name and data (wire form).
    pub name: String,
    /// The published event's data.
    pub data: serde_json::Value,
    /// The correlation of the publisher's event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The id of the publisher's event it was mapped from (the causation of
    /// the extensions' commands).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
}

/// Which followers a [`Runtime::catch_up`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowerKind {
    /// Read models and state-view slices (and counters).
    Projection,
    /// Automations and outbound translations (their todo lists and work).
    Automation,
    /// Extensions on other plugins' extension points.
    Extension,
    /// Extension points handing their published events to subscribers hosted elsewhere.
    Publisher,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PluginStatus {
    Connected,
    Disconnected,
}

/// A running set of plugins on one set of stores. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("plugins", &self.inner.plugins.keys().collect::<Vec<_>>()).finish()
    }
}

impl Runtime {
    /// Checks the plugins and starts their projection and command workers.
    pub fn start(stores: Stores, plugins: Vec<Plugin>) -> Result<Self, RuntimeError> {
        Self::start_with(stores, plugins, reventless_spec::Capabilities::new())
    }

    /// As [`Runtime::start`], with the external services the plugins' outbound translations use.
    pub fn start_with(
        stores: Stores,
        plugins: Vec<Plugin>,
        capabilities: reventless_spec::Capabilities,
    ) -> Result<Self, RuntimeError> {
        Self::with_options(stores, plugins, capabilities, RuntimeOptions::default())
    }

    /// A runtime whose background work runs only when asked (see [`RuntimeMode::OnDemand`]).
    pub fn on_demand(
        stores: Stores,
        plugins: Vec<Plugin>,
        capabilities: reventless_spec::Capabilities,
        options: RuntimeOptions,
    ) -> Result<Self, RuntimeError> {
        Self::with_options(stores, plugins, capabilities, RuntimeOptions { mode: RuntimeMode::OnDemand, ..options })
    }

    /// Starts `plugins` on `stores` with `capabilities`, hosted as `options` say.
    pub fn with_options(
        stores: Stores,
        plugins: Vec<Plugin>,
        capabilities: reventless_spec::Capabilities,
        options: RuntimeOptions,
    ) -> Result<Self, RuntimeError> {
        let RuntimeOptions { mode, topics, subscribers, outcome_retention, schedule_clock } = options;
        let mut resolved = BTreeMap::new();
        let mut manifests = Vec::new();
        for plugin in &plugins {
            let plugin_resolved = plugin.resolve()?;
            manifests.push(plugin.manifest()?);
            if resolved.insert(plugin_resolved.name.clone(), plugin_resolved).is_some() {
                return Err(PluginError::DuplicatePlugin(plugin.name().to_string()).into());
            }
        }
        // A local runtime runs every component; an on-demand host checks
        // the components its role runs (`check_capabilities`).
        if mode == RuntimeMode::Background {
            missing_capability(resolved.values(), &capabilities, None)?;
        }
        let command_topics: BTreeMap<String, BTreeMap<String, String>> = resolved
            .values()
            .map(|plugin: &ResolvedPlugin| {
                let routes = plugin.routes.iter().filter_map(|(command, handler)| {
                    let component = handler.manifest();
                    component.is_async.then(|| (command.clone(), topics.topic(&plugin.name, &component)))
                });
                (plugin.name.clone(), routes.collect())
            })
            .collect();
        // The commands hosted extension points accept run from their plugin's topics.
        let mut command_topics = command_topics;
        for (plugin, route, topic) in point_commands::point_topics(&resolved, &manifests, topics) {
            command_topics.entry(plugin).or_default().insert(route, topic);
        }
        if mode == RuntimeMode::Background {
            point_commands::check_point_targets(&resolved)?;
        }
        // Extensions dispatch commands through the runtime: their workers start once it exists.
        let mut extensions = Vec::new();
        let mut all_extensions = Vec::new();
        for plugin in resolved.values() {
            for extension in &plugin.extensions {
                all_extensions.push((plugin.name.clone(), extension.clone()));
                let publisher = resolved
                    .get(extension.source_plugin())
                    .and_then(|source| source.publishers.iter().find(|p| p.handler.name() == extension.point_name()));
                match publisher {
                    Some(publisher) => extensions.push((plugin.name.clone(), publisher.clone(), extension.clone())),
                    // Hosted elsewhere: its events arrive on this plugin's inbox.
                    None if mode == RuntimeMode::OnDemand => {}
                    None => {
                        return Err(PluginError::MissingExtensionPoint {
                            plugin: plugin.name.clone(),
                            extension: extension.name().to_string(),
                            point: format!("{}.{}", extension.source_plugin(), extension.point_name()),
                        }
                        .into());
                    }
                }
            }
        }
        // Read models are read through their table pointers (see `replay`).
        let read_model_tables =
            Arc::new(replay::ReadModelTables::new(stores.queries.clone(), replay::read_model_tables(&resolved)));
        let stores = Stores { queries: read_model_tables.clone(), ..stores };
        let (shutdown, _) = watch::channel(false);
        let row_changes = broadcast::channel(ROW_CHANGE_CAPACITY).0;
        // Tells this runtime's row-change notices from other processes' ones.
        let origin = uuid::Uuid::now_v7().as_u64_pair().1;
        let mut tasks = Vec::new();
        let mut projections = Vec::new();
        let mut follow = |name: &str, logs: &[LogRef]| -> Vec<WorkerSource> {
            logs.iter()
                .map(|log| {
                    let (progress_tx, progress) = watch::channel(Progress::default());
                    let checkpoint = format!("{name}@{}", log.name);
                    projections.push(HostedProjection { name: checkpoint.clone(), source: log.clone(), progress });
                    WorkerSource { log: log.clone(), checkpoint, known_position: None, progress: progress_tx }
                })
                .collect()
        };
        let mut automation_workers = Vec::new();
        let mut workers = Vec::new();
        for plugin in resolved.values() {
            for projection in &plugin.projections {
                let projection_follower = ProjectionFollower {
                    handler: projection.handler.clone(),
                    stores: stores.clone(),
                    row_changes: row_changes.clone(),
                    consumes: projection.handler.manifest().consumes.into_iter().collect(),
                    origin,
                    tables: replay::tables::BatchTables::new(read_model_tables.clone()),
                };
                let sources = follow(projection.handler.table(), &projection.sources);
                let automation = plugin.automations.iter().find(|a| a.table() == projection.handler.table());
                if let Some(automation) = automation {
                    // Automations send commands through the runtime: started once it exists.
                    let component = projection.handler.manifest().name;
                    let started = (plugin.name.clone(), projection_follower, automation.clone(), sources, component);
                    automation_workers.push(started);
                    continue;
                }
                let follower = Arc::new(projection_follower);
                let component = projection.handler.manifest().name;
                let kind = FollowerKind::Projection;
                workers.push(Worker::new(&stores, sources, follower, shutdown.subscribe(), kind, component));
            }
        }
        let mut extension_workers = Vec::new();
        for (plugin, publisher, extension) in extensions {
            let sources = follow(&format!("{plugin}.{}", extension.name()), &publisher.sources);
            extension_workers.push((plugin, publisher.handler, extension, sources));
        }
        for plugin in resolved.values() {
            for publisher in &plugin.publishers {
                let point = format!("{}.{}", plugin.name, publisher.handler.name());
                let remote = subscribers.get(&point).into_iter().flatten().filter(|s| !resolved.contains_key(*s));
                for subscriber in remote {
                    let sources = follow(&format!("{point}>{subscriber}"), &publisher.sources);
                    let follower = Arc::new(PublisherFollower {
                        stores: stores.clone(),
                        point: point.clone(),
                        subscriber: subscriber.clone(),
                        publisher: publisher.handler.clone(),
                    });
                    let kind = FollowerKind::Publisher;
                    workers.push(Worker::new(&stores, sources, follower, shutdown.subscribe(), kind, point.clone()));
                }
            }
        }
        let runtime = Self {
            inner: Arc::new(Inner {
                stores: stores.clone(),
                capabilities,
                outcome_retention: outcome_retention.unwrap_or(crate::outcomes::DEFAULT_OUTCOME_RETENTION),
                row_changes,
                plugins: resolved,
                manifests,
                locks: EntityLocks::default(),
                projections,
                shutdown,
                tasks: Mutex::new(Vec::new()),
                connected_at: reventless_spec::Timestamp::now().0,
                schema_fragments: Mutex::new(BTreeMap::new()),
                lifecycle_writes: tokio::sync::Mutex::new(()),
                on_demand: tokio::sync::Mutex::new(Vec::new()),
                command_topics,
                extensions: all_extensions,
                read_model_tables,
            }),
        };
        for (plugin, projection, automation, sources, component) in automation_workers {
            // The follower holds the runtime: a weak-free cycle only while workers live (until shutdown).
            let follower = Arc::new(AutomationFollower { projection, automation, runtime: runtime.clone(), plugin });
            let shutdown = runtime.inner.shutdown.subscribe();
            workers.push(Worker::new(&stores, sources, follower, shutdown, FollowerKind::Automation, component));
        }
        for (plugin, publisher, extension, sources) in extension_workers {
            let component = extension.name().to_string();
            let follower = Arc::new(ExtensionFollower { runtime: runtime.clone(), plugin, publisher, extension });
            let shutdown = runtime.inner.shutdown.subscribe();
            workers.push(Worker::new(&stores, sources, follower, shutdown, FollowerKind::Extension, component));
        }
        if mode == RuntimeMode::OnDemand {
            if let Ok(mut slot) = runtime.inner.on_demand.try_lock() {
                *slot = workers;
            }
            return Ok(runtime);
        }
        let topics: BTreeSet<String> =
            runtime.inner.command_topics.values().flat_map(|t| t.values().cloned()).collect();
        for topic in topics {
            tasks.push(tokio::spawn(runtime.clone().run_command_worker(topic)));
        }
        tasks.push(tokio::spawn(runtime.clone().run_lifecycle()));
        tasks.extend(runtime.spawn_schedules(schedule_clock));
        let (notices, shutdown) = (stores.bus.subscribe(), runtime.inner.shutdown.subscribe());
        let row_changes = runtime.inner.row_changes.clone();
        tasks.push(tokio::spawn(row_notices::forward_row_changes(notices, row_changes, origin, shutdown)));
        for worker in workers {
            tasks.push(worker.spawn_supervised());
        }
        if let Ok(mut slot) = runtime.inner.tasks.lock() {
            *slot = tasks;
        }
        Ok(runtime)
    }

    /// Runs the followers of `kinds` (and, unless `components` is empty, only
    /// those components) that read any of `logs` until they have applied
    /// everything those logs hold (on-demand runtimes). Returns the logs whose
    /// followers failed, with the error; the others are done.
    pub async fn catch_up(
        &self,
        logs: &[String],
        kinds: &[FollowerKind],
        components: &[String],
    ) -> Vec<(String, EngineError)> {
        let mut workers = self.inner.on_demand.lock().await;
        let mut failures = Vec::new();
        for worker in workers.iter_mut().filter(|worker| worker.selected(kinds, components)) {
            for index in 0..worker.sources.len() {
                if !logs.contains(&worker.sources[index].log.name) {
                    continue;
                }
                loop {
                    match worker.step(index).await {
                        Ok(true) => continue,
                        Ok(false) => break,
                        Err(error) => {
                            failures.push((worker.sources[index].log.name.clone(), error));
                            break;
                        }
                    }
                }
            }
        }
        failures
    }

    /// Work that is due without new events (on-demand runtimes): automations
    /// retry their failed items whose retry interval passed, and process
    /// items still pending. Returns the automations that failed, with the error.
    pub async fn retry_due(&self) -> Vec<(String, EngineError)> {
        let workers = self.inner.on_demand.lock().await;
        let mut failures = Vec::new();
        for worker in workers.iter().filter(|worker| worker.kind == FollowerKind::Automation) {
            if let Err(error) = worker.follower.idle().await {
                failures.push((worker.component.clone(), error));
            }
        }
        failures
    }

    /// The logs the selected followers read (what a stream handler routes);
    /// the selection is [`Runtime::catch_up`]'s.
    pub async fn followed_logs(&self, kinds: &[FollowerKind], components: &[String]) -> Vec<LogRef> {
        let workers = self.inner.on_demand.lock().await;
        let mut logs: Vec<LogRef> = workers
            .iter()
            .filter(|worker| worker.selected(kinds, components))
            .flat_map(|worker| worker.sources.iter().map(|source| source.log.clone()))
            .collect();
        logs.sort();
        logs.dedup();
        logs
    }

    /// The capabilities (and secrets) the components are given.
    pub fn capabilities(&self) -> &reventless_spec::Capabilities {
        &self.inner.capabilities
    }

    /// The stores it runs on.
    pub fn stores(&self) -> &Stores {
        &self.inner.stores
    }

    /// The hosted plugins' manifests.
    pub fn manifests(&self) -> &[Manifest] {
        &self.inner.manifests
    }

    /// Rows written or deleted by projections from now on (for subscriptions).
    pub fn row_changes(&self) -> broadcast::Receiver<RowChange> {
        self.inner.row_changes.subscribe()
    }

    /// The hosted plugins, checked and resolved (for API generation).
    pub fn plugins(&self) -> impl Iterator<Item = &ResolvedPlugin> {
        self.inner.plugins.values()
    }

    /// Runs a command: decoded and validated first (bad input appends
    /// nothing), then executed inline, or queued when its component is async.
    ///
    /// A request without a correlation id takes the host's
    /// ([`with_correlation`]), else its own command id; a queued command
    /// carries it to whoever runs it. Each command runs in a `command` span
    /// (plugin, command, ids), so every line logged meanwhile names it.
    pub async fn execute(&self, mut request: CommandRequest) -> Result<CommandOutcome, EngineError> {
        if request.correlation_id.is_none() {
            request.correlation_id = Some(current_correlation().unwrap_or_else(|| request.command_id.clone()));
        }
        let span = command_span(&request);
        let executed = self.execute_in_span(request, &span).instrument(span.clone()).await;
        span.in_scope(|| log_outcome(&executed));
        executed
    }

    async fn execute_in_span(
        &self,
        mut request: CommandRequest,
        span: &tracing::Span,
    ) -> Result<CommandOutcome, EngineError> {
        // A command to another plugin's extension point is queued for it.
        if reventless_spec::PointCommandName::parse(&request.command).is_some() {
            return self.send_to_point(request).await;
        }
        let handler = self.route(&request)?;
        if !request.internal
            && let Err(refusal) = authorize(
                &request.caller,
                handler.roles(),
                handler.requires_user(),
                handler.owner(),
                &mut request.input,
            )
        {
            return Ok(refusal);
        }
        let prepared = handler.prepare(&request)?;
        span.record("entity_id", prepared.entity_id.as_str());
        if prepared.is_async {
            let message = CommandMessage {
                group_id: prepared.entity_id.clone(),
                dedup_id: request.command_id.clone(),
                body: serde_json::to_value(&request).map_err(|e| EngineError::Contract(e.to_string()))?,
            };
            let topic = self.inner.command_topics.get(&request.plugin).and_then(|topics| topics.get(&request.command));
            let topic = topic.cloned().unwrap_or_else(|| command_topic(&request.plugin));
            // Recorded before it is queued: the worker's outcome always lands after it.
            let pending = OutcomeRecord::pending(
                &request.command_id,
                &request.command,
                &prepared.entity_id,
                self.inner.outcome_retention,
            );
            self.record_outcome(&request.plugin, &pending).await?;
            self.inner.stores.commands.send(&topic, message).await?;
            return Ok(CommandOutcome::Pending { entity_id: prepared.entity_id, command_id: request.command_id });
        }
        let _guard = self.inner.locks.lock(format!("{}/{}", request.plugin, prepared.entity_id)).await;
        prepared.run(self.context(&request)).await
    }

    fn route(&self, request: &CommandRequest) -> Result<&Arc<dyn CommandHandler>, EngineError> {
        let plugin = self
            .inner
            .plugins
            .get(&request.plugin)
            .ok_or_else(|| EngineError::UnknownPlugin(request.plugin.clone()))?;
        plugin.routes.get(&request.command).ok_or_else(|| EngineError::UnknownCommand {
            plugin: plugin.name.clone(),
            command: request.command.clone(),
            known: plugin.routes.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    fn context(&self, request: &CommandRequest) -> ExecutionContext {
        ExecutionContext {
            stores: self.inner.stores.clone(),
            meta: EventMeta {
                correlation_id: Some(request.correlation_id.clone().unwrap_or_else(|| request.command_id.clone())),
                causation_id: Some(request.command_id.clone()),
                service: Some(request.plugin.clone()),
                user: request.caller.user_id.clone(),
                ..EventMeta::default()
            },
        }
    }

    /// Runs an inbound translation: the input becomes this plugin's commands
    /// (run as the plugin's own), and the input with every outcome is kept in
    /// the audit table. A refusal of the translation appends nothing.
    pub async fn translate_inbound(
        &self,
        plugin: &str,
        name: &str,
        input: serde_json::Value,
        caller: crate::outcome::Caller,
    ) -> Result<InboundOutcome, EngineError> {
        let hosted = self.inner.plugins.get(plugin).ok_or_else(|| EngineError::UnknownPlugin(plugin.to_string()))?;
        let handler = hosted.inbound.iter().find(|h| h.name() == name).ok_or_else(|| EngineError::UnknownCommand {
            plugin: plugin.to_string(),
            command: name.to_string(),
            known: hosted.inbound.iter().map(|h| h.name()).collect::<Vec<_>>().join(", "),
        })?;
        let audit_id = uuid::Uuid::now_v7().to_string();
        let mut outcomes = Vec::new();
        let mut refusal = None;
        let mut ignored = serde_json::Value::Null;
        if let Err(refused) = authorize(&caller, handler.roles(), false, None, &mut ignored) {
            refusal = Some(refused);
        } else {
            match handler.translate(input.clone())? {
                Err((error_code, error_detail)) => {
                    refusal = Some(CommandOutcome::Rejected {
                        entity_id: None,
                        error_code,
                        error_detail,
                        cause: crate::outcome::RejectionCause::DomainRejection,
                    })
                }
                Ok(dispatches) => {
                    // One request's correlation (the host's, else the audit row's);
                    // each command caused by the audited input.
                    let correlation = current_correlation().unwrap_or_else(|| audit_id.clone());
                    for dispatch in dispatches {
                        let mut request =
                            CommandRequest::internal(plugin, dispatch).caused_by(Some(correlation.clone()), &audit_id);
                        request.caller = caller.clone();
                        outcomes.push(self.execute(request).await?);
                    }
                }
            }
        }
        if let Some(refused) = refusal {
            outcomes.push(refused);
        }
        let audit = serde_json::json!({
            "id": audit_id,
            "input": input,
            "caller": caller.user_id,
            "receivedAt": reventless_spec::Timestamp::now().0,
            "outcomes": outcomes,
        });
        let table = crate::plugin::inbound_audit_table(plugin, name);
        self.inner.stores.queries.put(&table, &audit_id, audit).await?;
        Ok(InboundOutcome { audit_id, outcomes })
    }

    /// Waits until every projection has applied every event committed to its
    /// log before this call (instead of sleeping in tests).
    pub async fn wait_for_projections(&self) -> Result<(), RuntimeError> {
        self.wait_for_projections_within(Duration::from_secs(30)).await
    }

    /// As [`Runtime::wait_for_projections`], within `limit` (else `RuntimeError::Timeout`).
    pub async fn wait_for_projections_within(&self, limit: Duration) -> Result<(), RuntimeError> {
        let heads = self.heads().await?;
        let wait_all = async {
            for projection in &self.inner.projections {
                let target = heads.get(&projection.source).copied().unwrap_or(0);
                let mut progress = projection.progress.clone();
                let reached = progress
                    .wait_for(|p| p.position >= target || p.error.is_some() || p.stopped.is_some())
                    .await
                    .map(|p| p.clone());
                let follower = projection.name.clone();
                match reached {
                    Ok(progress) if progress.position >= target => {}
                    Ok(Progress { stopped: Some(reason), .. }) => {
                        return Err(RuntimeError::FollowerStopped { follower, reason });
                    }
                    Ok(Progress { error: Some(error), .. }) => {
                        return Err(RuntimeError::ProjectionFailed { projection: follower, error });
                    }
                    Ok(_) => {}
                    // Every sender is gone: nothing will move it any more.
                    Err(_) => {
                        let reason = "its task is gone".to_string();
                        return Err(RuntimeError::FollowerStopped { follower, reason });
                    }
                }
            }
            Ok(())
        };
        tokio::time::timeout(limit, wait_all).await.map_err(|_| RuntimeError::Timeout(limit))?
    }

    /// Waits until nothing is left to do in the background: every projection,
    /// extension and automation has caught up, including with the events
    /// their own commands appended (cross-plugin chains), within `limit`.
    pub async fn settle_within(&self, limit: Duration) -> Result<(), RuntimeError> {
        let started = std::time::Instant::now();
        loop {
            let before = self.heads().await?;
            let left = limit.checked_sub(started.elapsed()).ok_or(RuntimeError::Timeout(limit))?;
            self.wait_for_projections_within(left).await?;
            if self.heads().await? == before {
                return Ok(());
            }
        }
    }

    /// The head of every log a follower reads (each log read once).
    async fn heads(&self) -> Result<BTreeMap<LogRef, u64>, RuntimeError> {
        let mut heads = BTreeMap::new();
        for projection in &self.inner.projections {
            if !heads.contains_key(&projection.source) {
                heads.insert(projection.source.clone(), log_head(&self.inner.stores, &projection.source).await?);
            }
        }
        Ok(heads)
    }

    /// Refuses to go on when a component among `components` (every one
    /// when empty) needs a capability the runtime was not given.
    pub fn check_capabilities(&self, components: &[String]) -> Result<(), RuntimeError> {
        let selected = (!components.is_empty()).then_some(components);
        missing_capability(self.inner.plugins.values(), &self.inner.capabilities, selected)
    }

    /// Stops the workers; commands already running finish first.
    pub async fn shutdown(&self) {
        // `send` would drop the value while no task has subscribed yet (a
        // lifecycle task not yet polled), which then waited forever.
        self.inner.shutdown.send_replace(true);
        let tasks = self.inner.tasks.lock().map(|mut t| std::mem::take(&mut *t)).unwrap_or_default();
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Runs the commands one extension of `plugin` makes of one published event.
    async fn run_extension(
        &self,
        plugin: &str,
        extension: &dyn crate::plugin::ExtensionHandler,
        name: &str,
        data: serde_json::Value,
        correlation_id: Option<String>,
        causation_id: Option<String>,
    ) -> Result<(), EngineError> {
        let span = tracing::info_span!(
            "extension",
            component = extension.name(),
            correlation_id = correlation_id.as_deref(),
            causation_id = causation_id.as_deref()
        );
        let work = async {
            for dispatch in extension.handle(name, data)? {
                let mut request = CommandRequest::internal(plugin.to_string(), dispatch);
                request.correlation_id = correlation_id.clone();
                request.causation_id = causation_id.clone();
                match self.execute(request).await {
                    Ok(_) => {}
                    // A command that can never run would block the extension forever.
                    Err(
                        error @ (EngineError::BadInput { .. }
                        | EngineError::UnknownCommand { .. }
                        | EngineError::MissingEntityId(_)
                        | EngineError::Contract(_)),
                    ) => {
                        tracing::error!(extension = extension.name(), %error, "dropping a command that cannot run");
                    }
                    Err(other) => return Err(other),
                }
            }
            Ok(())
        };
        work.instrument(span).await
    }

    /// Runs every hosted extension on the message's point with its event
    /// (an inbox message from a plugin hosted elsewhere). An event no
    /// extension here follows, or one it cannot decode, is logged and dropped.
    pub async fn run_published(&self, message: &PublishedMessage) -> Result<(), EngineError> {
        let mut handled = false;
        for (plugin, extension) in &self.inner.extensions {
            if format!("{}.{}", extension.source_plugin(), extension.point_name()) != message.point {
                continue;
            }
            handled = true;
            let outcome = self
                .run_extension(
                    plugin,
                    extension.as_ref(),
                    &message.name,
                    message.data.clone(),
                    message.correlation_id.clone(),
                    message.causation_id.clone(),
                )
                .await;
            match outcome {
                Err(error @ EngineError::CorruptEvent(_)) => {
                    tracing::error!(extension = extension.name(), %error, "dropping a published event it cannot read");
                }
                other => other?,
            }
        }
        if !handled {
            tracing::warn!(point = message.point, "no extension here follows this extension point; dropped");
        }
        Ok(())
    }
}

fn missing_capability<'a>(
    plugins: impl Iterator<Item = &'a ResolvedPlugin>,
    capabilities: &reventless_spec::Capabilities,
    components: Option<&[String]>,
) -> Result<(), RuntimeError> {
    for plugin in plugins {
        for automation in &plugin.automations {
            if components.is_some_and(|names| !names.iter().any(|n| n == automation.name())) {
                continue;
            }
            if let Some(need) = automation.needs().iter().find(|need| !capabilities.provides(need)) {
                return Err(RuntimeError::MissingCapability {
                    plugin: plugin.name.clone(),
                    component: automation.name().to_string(),
                    capability: need.name(),
                });
            }
        }
    }
    Ok(())
}

async fn log_head(stores: &Stores, log: &LogRef) -> Result<u64, StoreError> {
    match log.kind {
        LogKind::Plugin => stores.events.head(&log.name).await,
        LogKind::ExtensionPoint => Ok(0),
    }
}

/// Up to `limit` events of `log` after `after`; with `consumed`, events of
/// other types may be position markers.
async fn read_log(
    stores: &Stores,
    log: &LogRef,
    after: u64,
    limit: usize,
    consumed: Option<&BTreeSet<String>>,
) -> Result<Vec<EventEnvelope>, StoreError> {
    match log.kind {
        LogKind::Plugin => match consumed {
            Some(types) => {
                let types: Vec<&str> = types.iter().map(String::as_str).collect();
                stores.events.read_all_of(&log.name, after, limit, &types).await
            }
            None => stores.events.read_all(&log.name, after, limit).await,
        },
        // Workers follow the publisher's own logs, never the point itself.
        LogKind::ExtensionPoint => Ok(Vec::new()),
    }
}

/// The span a command runs in: what a log line says about the command it
/// belongs to (the entity id is recorded once the command is decoded).
fn command_span(request: &CommandRequest) -> tracing::Span {
    tracing::info_span!(
        "command",
        plugin = request.plugin.as_str(),
        command = request.command.as_str(),
        command_id = request.command_id.as_str(),
        entity_id = request.entity_id.as_deref(),
        correlation_id = request.correlation_id.as_deref(),
        causation_id = request.causation_id.as_deref(),
    )
}

/// One line per executed command that did not go through: rejections and
/// refused input at `info` (the caller is told), failures at `error`.
fn log_outcome(executed: &Result<CommandOutcome, EngineError>) {
    match executed {
        Ok(CommandOutcome::Rejected { error_code, cause, .. }) => {
            tracing::info!(error_code, ?cause, "command rejected");
        }
        Ok(CommandOutcome::Accepted { event_count, .. }) => tracing::debug!(event_count, "command accepted"),
        Ok(CommandOutcome::Pending { .. }) => tracing::debug!("command queued"),
        Err(
            error @ (EngineError::BadInput { .. }
            | EngineError::UnknownCommand { .. }
            | EngineError::UnknownPlugin(_)
            | EngineError::MissingEntityId(_)),
        ) => tracing::info!(%error, "command refused"),
        Err(error) => tracing::error!(%error, "command failed"),
    }
}
