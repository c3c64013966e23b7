//! Layer 2: a plugin registers its components; the platform hosts it. A
//! plugin describes itself as a [`Manifest`], from which deployers plan
//! resources without reading its code.
use std::any::TypeId;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use reventless_spec::{
    Aggregate, AutomationSlice, EventEnvelope, Extension, ExtensionPoint, OutboundTranslationSlice, ReadModel,
    StateChangeSlice,
};
use serde::{Deserialize, Serialize};

use crate::engine::{ExecutionContext, STATE_CACHE_CAPACITY, StateCache};
use crate::outcome::{CommandOutcome, CommandRequest, EngineError};
use crate::store::{QueryStore, RowOp};

mod checks;
mod components;
mod http_route;
mod own_events;
mod point_commands;
mod schedule;
mod task;
mod topics;
pub(crate) mod upcast;

use checks::check_event_names;
pub use components::inbound_audit_table;
use components::{
    AggregateHandler, AsAutomation, AsOutbound, AutomationOf, ExtensionOf, InboundOf, PublisherOf, ReadModelHandler,
    SliceHandler, TodoWork, names,
};
pub use http_route::{HttpRouteEntry, SECRET_NEED, hook_path, route_secrets};
pub use point_commands::{PointCommandMessage, PointCommandsHandler, PointTarget};
pub use schedule::{ResolvedSchedule, ScheduleHandler, ScheduleManifest};
pub use task::{TaskHandler, task_runs_table};
pub use topics::{TopicLayout, command_topic};

/// A boxed, sendable future (the type-erased handlers' return type).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A decoded, validated command ready to run.
pub struct PreparedCommand {
    /// Commands with the same entity id run one after another.
    pub entity_id: String,
    /// Whether the command goes through the command topic (`ASYNC` components).
    pub is_async: bool,
    run: Box<dyn FnOnce(ExecutionContext) -> BoxFuture<Result<CommandOutcome, EngineError>> + Send>,
}

impl PreparedCommand {
    /// Decides and appends the command in `ctx`.
    pub async fn run(self, ctx: ExecutionContext) -> Result<CommandOutcome, EngineError> {
        (self.run)(ctx).await
    }
}

impl std::fmt::Debug for PreparedCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedCommand").field("entity_id", &self.entity_id).finish_non_exhaustive()
    }
}

/// A registered component that accepts commands (type-erased).
pub trait CommandHandler: Send + Sync {
    /// The component as the manifest lists it.
    fn manifest(&self) -> ComponentManifest;
    /// The command names it answers, within its plugin.
    fn routes(&self) -> Vec<String>;
    /// Decodes the request's input; malformed input is `EngineError::BadInput`.
    fn prepare(&self, request: &CommandRequest) -> Result<PreparedCommand, EngineError>;
    /// The log it appends to and the Rust type of that log's events.
    fn event_source(&self) -> EventSource;
    /// Roles allowed to send its commands (anyone when empty).
    fn roles(&self) -> &'static [&'static str];
    /// Whether only identified callers may send its commands.
    fn requires_user(&self) -> bool;
    /// The command field stamped with the caller's id.
    fn owner(&self) -> Option<reventless_spec::Owner>;
    /// JSON Schema of its command type (every variant).
    fn command_schema(&self) -> schemars::Schema;
    /// The wire name of the variant a route carries (the route without an aggregate prefix).
    fn variant_of<'a>(&self, route: &'a str) -> &'a str;
    /// False when only the plugin's own components send these commands.
    fn in_api(&self) -> bool;
}

/// A registered projection (type-erased).
#[async_trait]
pub trait ProjectionHandler: Send + Sync {
    /// The component as the manifest lists it.
    fn manifest(&self) -> ComponentManifest;
    /// The query table, also the checkpoint name.
    fn table(&self) -> &str;
    /// The Rust type of the events it reads.
    fn event_type(&self) -> TypeId;
    /// The wire names of its event type's variants (what `CONSUMES` may name).
    fn event_names(&self) -> &'static [&'static str];
    /// The row operations for a batch of events (reading current rows from `store`).
    async fn project(&self, store: &dyn QueryStore, events: &[EventEnvelope]) -> Result<Vec<RowOp>, EngineError>;
    /// Singular and plural names (`Product`, `Products`).
    fn names(&self) -> (&'static str, &'static str);
    /// Roles allowed to query it (anyone when empty).
    fn roles(&self) -> &'static [&'static str];
    /// JSON Schema of its row type.
    fn row_schema(&self) -> schemars::Schema;
    /// Fields declared as indexes.
    fn indexes(&self) -> &'static [&'static str];
    /// Another read model's rows this one's field also appears on.
    fn shown_on(&self) -> Option<reventless_spec::ShownOn> {
        None
    }
}

/// What kind of log a follower reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LogKind {
    /// The plugin's own event log (named after the plugin): its aggregates'
    /// streams and its DCB slices' events in one position order.
    Plugin,
    /// Another plugin's published events (`<Plugin>.<Point>`).
    ExtensionPoint,
}

/// A registered extension point (type-erased): publishes internal events as public ones.
pub trait PublisherHandler: Send + Sync {
    /// The extension point's name (`Products` of `Catalog.Products`).
    fn name(&self) -> &'static str;
    /// The Rust type of the internal events it reads.
    fn event_type(&self) -> TypeId;
    /// The wire names of its published events.
    fn published_names(&self) -> &'static [&'static str];
    /// The published events of one stored event, in wire form (name, data).
    fn publish(&self, envelope: &EventEnvelope) -> Result<Vec<(&'static str, serde_json::Value)>, EngineError>;
}

/// A registered extension (type-erased): published events to this plugin's commands.
pub trait ExtensionHandler: Send + Sync {
    /// The extension's name.
    fn name(&self) -> &'static str;
    /// The plugin publishing the extension point it follows.
    fn source_plugin(&self) -> &'static str;
    /// The extension point's name within its plugin.
    fn point_name(&self) -> &'static str;
    /// The published events it handles (wire names).
    fn consumes(&self) -> &'static [&'static str];
    /// The commands for one published event in wire form (name, data).
    fn handle(&self, name: &str, data: serde_json::Value) -> Result<Vec<reventless_spec::Dispatch>, EngineError>;
}

/// A registered automation (type-erased): what to send for an open todo item.
pub trait AutomationHandler: Send + Sync {
    /// Its todo table (also registered as a projection).
    fn table(&self) -> &str;
    /// How often a failed item is retried before it is exhausted.
    fn max_retries(&self) -> u32;
    /// True when a successful attempt completes the item (outbound
    /// translations); else it waits for the event that resolves it.
    fn completes_on_success(&self) -> bool;
    /// The component's name (`SendOrderConfirmation`).
    fn name(&self) -> &'static str;
    /// The capabilities its work uses, checked when the app starts.
    fn needs(&self) -> &'static [reventless_spec::Need];
    /// The commands of an open item (an outbound translation calls out first).
    fn process(
        &self,
        id: &str,
        item: &serde_json::Value,
        capabilities: &reventless_spec::Capabilities,
    ) -> BoxFuture<Result<Vec<reventless_spec::Dispatch>, String>>;
    /// The commands to send when every retry of an item failed.
    fn on_exhausted(&self, id: &str, item: &serde_json::Value) -> Result<Vec<reventless_spec::Dispatch>, EngineError>;
}

/// A registered inbound translation (type-erased).
pub trait InboundHandler: Send + Sync {
    /// The mutation's name after the plugin (`ImportProduct`).
    fn name(&self) -> &'static str;
    /// Roles allowed to send input (anyone when empty).
    fn roles(&self) -> &'static [&'static str];
    /// JSON Schema of its input type.
    fn input_schema(&self) -> schemars::Schema;
    /// The commands for `input`, or a domain rejection (code, detail);
    /// malformed input is `EngineError::BadInput`.
    fn translate(
        &self,
        input: serde_json::Value,
    ) -> Result<Result<Vec<reventless_spec::Dispatch>, (String, serde_json::Value)>, EngineError>;
}

/// A log of a plugin.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LogRef {
    /// The plugin's own log or an extension point.
    pub kind: LogKind,
    /// The plugin name, or `<Plugin>.<Point>` for an extension point.
    pub name: String,
}

/// Which log a component writes, and its event type.
#[derive(Debug, Clone)]
pub struct EventSource {
    /// The log.
    pub log: LogRef,
    /// The Rust type of its events.
    pub event_type: TypeId,
    /// That type's name, for messages.
    pub event_type_name: &'static str,
    /// The wire names of the event type's variants.
    pub event_names: &'static [&'static str],
    /// The current version of a wire name of the event type.
    pub version_of: fn(&str) -> u32,
    /// A stored event of the event type in its current shape (see
    /// [`crate::engine::upcast_event`]).
    pub upcast: fn(&EventEnvelope) -> Result<EventEnvelope, EngineError>,
}

/// The kinds of components a plugin registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ComponentKind {
    /// A [`reventless_spec::Schedule`]: sends commands at the times of its
    /// expression (listed with it in [`Manifest::schedules`]).
    Schedule,
    /// An [`reventless_spec::Aggregate`].
    Aggregate,
    /// A DCB [`reventless_spec::StateChangeSlice`].
    StateChangeSlice,
    /// A [`reventless_spec::ReadModel`] (also counters).
    ReadModel,
    /// A read model over DCB events.
    StateViewSlice,
    /// An [`reventless_spec::ExtensionPoint`].
    ExtensionPoint,
    /// An [`reventless_spec::Extension`].
    Extension,
    /// An [`reventless_spec::AutomationSlice`].
    AutomationSlice,
    /// An [`reventless_spec::OutboundTranslationSlice`].
    OutboundTranslationSlice,
    /// An [`reventless_spec::InboundTranslationSlice`].
    InboundTranslationSlice,
    /// An HTTP route (`Plugin::http_route`): `name` is `METHOD
    /// /hooks/<Plugin>/<path>`, `commands` its inbound translation, `needs`
    /// its signature's secret as `secret:<name>`.
    HttpRoute,
    /// Another plugin's extension point this plugin sends commands to
    /// (`Plugin::sends_to`): named `<Plugin>.<Point>`, `commands` are the
    /// public commands it may send.
    SendsToExtensionPoint,
    /// A [`reventless_spec::TaskSlice`]: a file becomes commands; its runs
    /// are rows of `table` (`<Plugin>_<Task>Runs`).
    Task,
}

/// One component in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentManifest {
    /// What kind of component it is.
    pub kind: ComponentKind,
    /// Its name (`AddProduct`, `Products`).
    pub name: String,
    /// The command names it answers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    /// The event types it reads.
    pub consumes: Vec<String>,
    /// The event types it may append (or publish).
    pub produces: Vec<String>,
    /// The log it appends to (command components).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogRef>,
    /// The logs it reads from (projections).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<LogRef>,
    /// Its query table (read models, to-do lists, audits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The table's declared index fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<String>,
    /// The capabilities it needs (Rust type names), checked at startup.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// Whether its commands go through the command topic.
    #[serde(rename = "async")]
    pub is_async: bool,
}

/// The storage a plugin needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageManifest {
    /// The plugin's event log (none for a plugin without command components).
    pub logs: Vec<String>,
    /// The query tables of its read models, to-do lists and audits.
    pub tables: Vec<TableManifest>,
    /// The command topics of its async components.
    pub command_topics: Vec<String>,
}

/// A query table and its declared index fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableManifest {
    /// The table's name (`<Plugin>_<PLURAL>`).
    pub name: String,
    /// Row fields to index.
    pub indexes: Vec<String>,
}

/// What a plugin is, for deployers and for the platform's plugin list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The plugin's name.
    pub plugin: String,
    /// The plugin's version (`Plugin::version`).
    pub version: String,
    /// Every registered component.
    pub components: Vec<ComponentManifest>,
    /// The logs, tables and topics it needs.
    pub storage: StorageManifest,
    /// Its schedules with their expressions (one scheduler entry each).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<ScheduleManifest>,
}

/// Why a plugin's registration is inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// Two components answer the same command name.
    #[error("plugin `{plugin}`: command `{command}` is registered twice")]
    DuplicateCommand {
        /// The plugin.
        plugin: String,
        /// The command name.
        command: String,
    },
    /// Two components have the same name.
    #[error("plugin `{plugin}`: component `{name}` is registered twice")]
    DuplicateComponent {
        /// The plugin.
        plugin: String,
        /// The component name.
        name: String,
    },
    #[error(
        "plugin `{plugin}`: event name `{name}` belongs to two event types ({first} and {second}); \
         the plugin's events share one log, so each name must mean one event"
    )]
    /// Two event types of the plugin share a wire name.
    DuplicateEventName {
        /// The plugin.
        plugin: String,
        /// The wire name.
        name: String,
        /// One event type having it.
        first: &'static str,
        /// The other.
        second: &'static str,
    },
    /// `CONSUMES` / `PRODUCES` names an event the type does not have.
    #[error("{0}")]
    UnknownEventName(Box<EventNameTypo>),
    #[error(
        "plugin `{plugin}`: aggregates `{first}` and `{second}` would tag their entities with the same key `{key}`"
    )]
    /// Two aggregates would tag their entities with the same key.
    DuplicateEntityTag {
        /// The plugin.
        plugin: String,
        /// The tag key.
        key: String,
        /// One aggregate.
        first: String,
        /// The other.
        second: String,
    },
    #[error(
        "plugin `{plugin}`: {component} consumes `{name}`, which no component of the plugin appends \
         (appended: {appended}): it could never see one"
    )]
    /// A component consumes an event no component of the plugin appends.
    NeverAppended {
        /// The plugin.
        plugin: String,
        /// The consuming component.
        component: String,
        /// The event it consumes.
        name: String,
        /// What the plugin's components do append.
        appended: String,
    },
    /// A projection's event type is appended by no component of the plugin.
    #[error("plugin `{plugin}`: projection `{projection}` reads events that no component of the plugin appends")]
    UnknownEventSource {
        /// The plugin.
        plugin: String,
        /// The projection.
        projection: String,
    },
    /// An extension point's event type is appended by no component of the plugin.
    #[error("plugin `{plugin}`: extension point `{point}` publishes events that no component of the plugin appends")]
    UnknownPublisherSource {
        /// The plugin.
        plugin: String,
        /// The extension point.
        point: String,
    },
    /// An extension's extension point is not hosted.
    #[error("plugin `{plugin}`: extension `{extension}` needs extension point `{point}`, which is not hosted")]
    MissingExtensionPoint {
        /// The plugin.
        plugin: String,
        /// The extension.
        extension: String,
        /// The extension point it needs (`<Plugin>.<Point>`).
        point: String,
    },
    /// An HTTP route that cannot be served.
    #[error("plugin `{plugin}`: route `{route}`: {reason}")]
    InvalidHttpRoute {
        /// The plugin.
        plugin: String,
        /// `METHOD /path`.
        route: String,
        /// What is wrong.
        reason: String,
    },
    /// Two hosted plugins have the same name.
    #[error("two plugins are named `{0}`")]
    DuplicatePlugin(String),
    /// A plugin sends commands to an extension point that is not hosted,
    /// does not accept commands, or does not accept them from it.
    #[error("plugin `{plugin}` sends commands to extension point `{point}`, but {reason}")]
    CommandPointUnavailable {
        /// The sending plugin.
        plugin: String,
        /// The extension point (`<Plugin>.<Point>`).
        point: String,
        /// What is missing.
        reason: String,
    },
    /// `accepts_commands::<P>()` without a matching extension point.
    #[error("plugin `{plugin}`: extension point `{point}` accepts commands, but {reason}")]
    InvalidPointCommands {
        /// The plugin.
        plugin: String,
        /// The extension point.
        point: String,
        /// What is wrong.
        reason: String,
    },
    /// A schedule's expression is not one EventBridge Scheduler accepts.
    #[error("plugin `{plugin}`: schedule `{schedule}` has an invalid expression {reason}")]
    InvalidSchedule {
        /// The plugin.
        plugin: String,
        /// The schedule.
        schedule: String,
        /// The expression and what is wrong with it.
        reason: String,
    },
    /// A plugin name that is not ASCII letters and digits starting with a letter.
    #[error("plugin name `{0}` must be non-empty ASCII letters and digits starting with a letter")]
    InvalidName(String),
}

/// A name in `CONSUMES` / `PRODUCES` that is not an event of the component's event type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin `{plugin}`: {component} lists `{name}` in {list}, which is not an event of {event_type}{hint}")]
pub struct EventNameTypo {
    /// The plugin.
    pub plugin: String,
    /// The component listing the name.
    pub component: String,
    /// `CONSUMES` or `PRODUCES`.
    pub list: &'static str,
    /// The name that is not an event of the type.
    pub name: String,
    /// The component's event type.
    pub event_type: &'static str,
    /// ` (did you mean `X`?)` or the type's events.
    pub hint: String,
}

/// A plugin: a named set of components. Platform-agnostic.
///
/// ```ignore
/// Plugin::new("Catalog").state_change_slice::<AddCategory>().read_model::<Products>()
/// ```
///
/// Cloning shares its handlers (a host may run it in a second runtime).
#[derive(Clone)]
pub struct Plugin {
    name: String,
    version: String,
    commands: Vec<Arc<dyn CommandHandler>>,
    projections: Vec<Arc<dyn ProjectionHandler>>,
    publishers: Vec<Arc<dyn PublisherHandler>>,
    extensions: Vec<Arc<dyn ExtensionHandler>>,
    automations: Vec<Arc<dyn AutomationHandler>>,
    inbound: Vec<Arc<dyn InboundHandler>>,
    http_routes: Vec<HttpRouteEntry>,
    point_commands: Vec<Arc<dyn PointCommandsHandler>>,
    point_targets: Vec<PointTarget>,
    tasks: Vec<Arc<dyn TaskHandler>>,
    schedules: Vec<Arc<dyn ScheduleHandler>>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("name", &self.name).field("version", &self.version).finish_non_exhaustive()
    }
}

impl Plugin {
    /// A plugin named `name` (ASCII letters and digits, starting with a letter), without components.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: "0.0.0".into(),
            commands: Vec::new(),
            projections: Vec::new(),
            publishers: Vec::new(),
            extensions: Vec::new(),
            automations: Vec::new(),
            inbound: Vec::new(),
            http_routes: Vec::new(),
            point_commands: Vec::new(),
            point_targets: Vec::new(),
            schedules: Vec::new(),
            tasks: Vec::new(),
        }
    }

    /// The plugin's version, shown in its manifest and `Platform_Plugins` row (default `0.0.0`).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Registers an aggregate: its commands are `<Aggregate>_<Variant>` with an entity id.
    pub fn aggregate<A: Aggregate>(mut self) -> Self {
        let log = self.name.clone();
        let cache = Arc::new(StateCache::new(STATE_CACHE_CAPACITY));
        self.commands.push(Arc::new(AggregateHandler::<A> { log, cache, marker: PhantomData }));
        self
    }

    /// Registers a DCB state-change slice: its commands are the command type's wire names.
    pub fn state_change_slice<S: StateChangeSlice>(mut self) -> Self {
        let log = self.name.clone();
        self.commands.push(Arc::new(SliceHandler::<S> { log, marker: PhantomData }));
        self
    }

    /// A read model; over DCB events it is a state-view slice.
    pub fn read_model<R: ReadModel>(mut self) -> Self {
        let table = format!("{}_{}", self.name, R::PLURAL);
        self.projections.push(Arc::new(ReadModelHandler::<R> { table, marker: PhantomData }));
        self
    }

    /// A counter: counts events per key into `<Plugin>_<PLURAL>`.
    pub fn counter<C: reventless_spec::Counter>(self) -> Self {
        self.read_model::<reventless_spec::CounterView<C>>()
    }

    /// An automation: its todo list is a projection (`<Plugin>_<Name>Todos`),
    /// its open items are processed into commands.
    pub fn automation<A: AutomationSlice>(self) -> Self {
        self.todo_work::<AsAutomation<A>>()
    }

    /// An outbound translation: like an automation, its items call out
    /// through a capability (`<Plugin>_<Name>Todos`).
    pub fn outbound_translation<O: OutboundTranslationSlice>(self) -> Self {
        self.todo_work::<AsOutbound<O>>()
    }

    fn todo_work<W: TodoWork>(mut self) -> Self {
        let automation = Arc::new(AutomationOf::<W>::new(&self.name));
        self.projections.push(automation.clone());
        self.automations.push(automation);
        self
    }

    /// An inbound translation: a mutation `<Plugin>_<NAME>` turning outside
    /// input into commands, audited in `<Plugin>_<NAME>Audit`.
    pub fn inbound_translation<T: reventless_spec::InboundTranslationSlice>(mut self) -> Self {
        self.inbound.push(Arc::new(InboundOf::<T>(PhantomData)));
        self
    }

    /// A public contract other plugins can extend.
    pub fn extension_point<P: ExtensionPoint>(mut self) -> Self {
        self.publishers.push(Arc::new(PublisherOf::<P>(PhantomData)));
        self
    }

    /// A subscription to another plugin's extension point.
    pub fn extension<X: Extension>(mut self) -> Self {
        self.extensions.push(Arc::new(ExtensionOf::<X>(PhantomData)));
        self
    }

    /// An HTTP route (a webhook): requests to `route` below
    /// `/hooks/<Plugin>` are checked against its signature, and their JSON
    /// body is the input of the inbound translation `T` (registered with
    /// it; audited in `<Plugin>_<NAME>Audit`).
    pub fn http_route<T: reventless_spec::InboundTranslationSlice>(
        mut self,
        route: reventless_spec::HttpRoute,
    ) -> Self {
        if !self.inbound.iter().any(|h| h.name() == T::NAME) {
            self.inbound.push(Arc::new(InboundOf::<T>(PhantomData)));
        }
        self.http_routes.push(HttpRouteEntry { route, translation: T::NAME, roles: T::ROLES });
        self
    }

    /// The commands other plugins may send to this plugin's extension point
    /// `P` (registered with [`Plugin::extension_point`]): each is decided by
    /// the internal command `P::dispatch` maps it to, from the plugin's
    /// command topic.
    pub fn accepts_commands<P: reventless_spec::ExtensionPointCommands>(mut self) -> Self {
        self.point_commands.push(Arc::new(point_commands::PointCommandsOf::<P>(PhantomData)));
        self
    }

    /// Declares that this plugin's components send commands to another
    /// plugin's extension point `P` (`Dispatch::to_point::<P>`): listed in
    /// the manifest, so a deployer grants the send, and checked when the
    /// runtime hosting both starts.
    pub fn sends_to<P: reventless_spec::ExtensionPointCommands>(mut self) -> Self {
        self.point_targets.push(PointTarget::of::<P>());
        self
    }

    /// A file task: each record of an uploaded file becomes commands
    /// (see [`crate::task`]); its runs are rows of `<Plugin>_<NAME>Runs`.
    pub fn task<T: reventless_spec::TaskSlice>(mut self) -> Self {
        self.tasks.push(Arc::new(task::TaskOf::<T>::new(&self.name)));
        self
    }

    /// A schedule: sends the commands `S::fire` returns at the times of
    /// `S::EXPRESSION` (checked when the plugin resolves).
    pub fn schedule<S: reventless_spec::Schedule>(mut self) -> Self {
        self.schedules.push(Arc::new(schedule::ScheduleOf::<S>(PhantomData)));
        self
    }

    /// The registered command components.
    pub fn commands(&self) -> &[Arc<dyn CommandHandler>] {
        &self.commands
    }

    /// Checks the registration and resolves where each projection reads from.
    pub fn resolve(&self) -> Result<ResolvedPlugin, PluginError> {
        let plugin = || self.name.clone();
        let valid_name = self.name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && self.name.chars().all(|c| c.is_ascii_alphanumeric());
        if !valid_name {
            return Err(PluginError::InvalidName(self.name.clone()));
        }
        let mut names = BTreeSet::new();
        let mut routes = BTreeMap::new();
        // Every event type the plugin's command components append, and which
        // names each component may append: one log holds them all.
        let mut event_types: BTreeMap<TypeId, EventSource> = BTreeMap::new();
        let mut owner_of_name: BTreeMap<&'static str, &'static str> = BTreeMap::new();
        let mut appended: BTreeSet<String> = BTreeSet::new();
        let mut entity_keys: BTreeMap<String, String> = BTreeMap::new();
        // Checked once every appended name is known.
        let mut slice_consumes: Vec<(String, Vec<String>)> = Vec::new();
        for handler in &self.commands {
            let manifest = handler.manifest();
            if !names.insert(manifest.name.clone()) {
                return Err(PluginError::DuplicateComponent { plugin: plugin(), name: manifest.name });
            }
            for route in handler.routes() {
                if routes.insert(route.clone(), handler.clone()).is_some() {
                    return Err(PluginError::DuplicateCommand { plugin: plugin(), command: route });
                }
            }
            let source = handler.event_source();
            for list in [("CONSUMES", &manifest.consumes), ("PRODUCES", &manifest.produces)] {
                check_event_names(&self.name, &manifest.name, list.0, list.1, &source)?;
            }
            for name in source.event_names {
                match owner_of_name.insert(name, source.event_type_name) {
                    Some(first) if first != source.event_type_name => {
                        return Err(PluginError::DuplicateEventName {
                            plugin: plugin(),
                            name: name.to_string(),
                            first,
                            second: source.event_type_name,
                        });
                    }
                    _ => {}
                }
            }
            appended.extend(manifest.produces.iter().cloned());
            if manifest.kind == ComponentKind::StateChangeSlice {
                slice_consumes.push((manifest.name.clone(), manifest.consumes.clone()));
            }
            event_types.entry(source.event_type).or_insert(source);
            if manifest.kind == ComponentKind::Aggregate {
                let key = reventless_spec::entity_tag_key(&manifest.name);
                if let Some(other) = entity_keys.insert(key.clone(), manifest.name.clone()) {
                    return Err(PluginError::DuplicateEntityTag {
                        plugin: plugin(),
                        key,
                        first: other,
                        second: manifest.name,
                    });
                }
            }
        }
        let never_appended = |component: &str, consumes: &[String]| -> Result<(), PluginError> {
            match consumes.iter().find(|name| !appended.contains(*name)) {
                Some(name) => Err(PluginError::NeverAppended {
                    plugin: plugin(),
                    component: component.to_string(),
                    name: name.clone(),
                    appended: appended.iter().cloned().collect::<Vec<_>>().join(", "),
                }),
                None => Ok(()),
            }
        };
        for (slice, consumes) in &slice_consumes {
            never_appended(&format!("slice `{slice}`"), consumes)?;
        }
        let log = LogRef { kind: LogKind::Plugin, name: self.name.clone() };
        let mut projections = Vec::new();
        for handler in &self.projections {
            let manifest = handler.manifest();
            if !names.insert(manifest.name.clone()) {
                return Err(PluginError::DuplicateComponent { plugin: plugin(), name: manifest.name });
            }
            let Some(source) = event_types.get(&handler.event_type()) else {
                return Err(PluginError::UnknownEventSource { plugin: plugin(), projection: manifest.name });
            };
            let component = format!("`{}`", manifest.name);
            let own = EventSource { event_names: handler.event_names(), ..source.clone() };
            check_event_names(&self.name, &manifest.name, "CONSUMES", &manifest.consumes, &own)?;
            never_appended(&component, &manifest.consumes)?;
            projections.push(ResolvedProjection { handler: handler.clone(), sources: vec![log.clone()] });
        }
        let mut publishers = Vec::new();
        for publisher in &self.publishers {
            if !names.insert(format!("{}.{}", self.name, publisher.name())) {
                return Err(PluginError::DuplicateComponent { plugin: plugin(), name: publisher.name().to_string() });
            }
            let Some(source) = event_types.get(&publisher.event_type()) else {
                return Err(PluginError::UnknownPublisherSource {
                    plugin: plugin(),
                    point: publisher.name().to_string(),
                });
            };
            // The log may hold the plugin's other event types: not the point's.
            let handler = Arc::new(own_events::OwnEvents { inner: publisher.clone(), names: source.event_names });
            publishers.push(ResolvedPublisher { handler, sources: vec![log.clone()] });
        }
        for extension in &self.extensions {
            if !names.insert(extension.name().to_string()) {
                return Err(PluginError::DuplicateComponent { plugin: plugin(), name: extension.name().to_string() });
            }
        }
        for task in &self.tasks {
            if !names.insert(task.name().to_string()) {
                return Err(PluginError::DuplicateComponent { plugin: plugin(), name: task.name().to_string() });
            }
        }
        for accepted in &self.point_commands {
            let invalid = |reason: String| PluginError::InvalidPointCommands {
                plugin: plugin(),
                point: accepted.point().to_string(),
                reason,
            };
            if accepted.plugin() != self.name {
                return Err(invalid(format!("its type says plugin `{}` publishes it", accepted.plugin())));
            }
            if !self.publishers.iter().any(|p| p.name() == accepted.point()) {
                return Err(invalid("it is not registered with `extension_point`".into()));
            }
            if self.point_commands.iter().filter(|other| other.point() == accepted.point()).count() > 1 {
                return Err(invalid("its commands are registered twice".into()));
            }
        }
        let mut schedules = Vec::new();
        for handler in &self.schedules {
            if !names.insert(handler.name().to_string()) {
                return Err(PluginError::DuplicateComponent { plugin: plugin(), name: handler.name().to_string() });
            }
            let expression = handler.expression().parse().map_err(|e: reventless_spec::ScheduleExpressionError| {
                PluginError::InvalidSchedule {
                    plugin: plugin(),
                    schedule: handler.name().to_string(),
                    reason: e.to_string(),
                }
            })?;
            schedules.push(ResolvedSchedule { handler: handler.clone(), expression });
        }
        http_route::check_routes(&self.name, &self.http_routes, &self.inbound)?;
        Ok(ResolvedPlugin {
            name: self.name.clone(),
            version: self.version.clone(),
            routes,
            projections,
            publishers,
            extensions: self.extensions.clone(),
            automations: self.automations.clone(),
            inbound: self.inbound.clone(),
            http_routes: self.http_routes.clone(),
            point_commands: self.point_commands.clone(),
            point_targets: self.point_targets.clone(),
            schedules,
            tasks: self.tasks.clone(),
        })
    }

    /// The plugin's manifest (fails when the registration is inconsistent).
    pub fn manifest(&self) -> Result<Manifest, PluginError> {
        let resolved = self.resolve()?;
        let mut components: Vec<ComponentManifest> = self.commands.iter().map(|h| h.manifest()).collect();
        let slice_events: BTreeSet<String> = components
            .iter()
            .filter(|c| c.kind == ComponentKind::StateChangeSlice)
            .flat_map(|c| c.produces.iter().cloned())
            .collect::<BTreeSet<_>>()
            .difference(
                &components
                    .iter()
                    .filter(|c| c.kind == ComponentKind::Aggregate)
                    .flat_map(|c| c.produces.iter().cloned())
                    .collect(),
            )
            .cloned()
            .collect();
        let mut storage = StorageManifest::default();
        for projection in &resolved.projections {
            let mut manifest = projection.handler.manifest();
            // A read model over events only DCB slices append is a state-view slice.
            if manifest.kind == ComponentKind::ReadModel
                && manifest.consumes.iter().all(|name| slice_events.contains(name))
            {
                manifest.kind = ComponentKind::StateViewSlice;
            }
            manifest.sources = projection.sources.clone();
            storage.tables.push(TableManifest {
                name: projection.handler.table().to_string(),
                indexes: manifest.indexes.clone(),
            });
            components.push(manifest);
        }
        for publisher in &resolved.publishers {
            // A point that accepts commands lists them; they are queued on
            // the plugin's command topic (so it is async).
            let accepted = self.point_commands.iter().find(|p| p.point() == publisher.handler.name());
            components.push(ComponentManifest {
                kind: ComponentKind::ExtensionPoint,
                name: format!("{}.{}", self.name, publisher.handler.name()),
                commands: accepted.map(|p| names(p.commands())).unwrap_or_default(),
                consumes: Vec::new(),
                produces: names(publisher.handler.published_names()),
                log: None,
                sources: publisher.sources.clone(),
                table: None,
                indexes: Vec::new(),
                needs: Vec::new(),
                is_async: accepted.is_some(),
            });
        }
        for task in &self.tasks {
            components.push(task.manifest());
            storage.tables.push(TableManifest { name: task.table().to_string(), indexes: vec!["status".into()] });
        }
        for target in &self.point_targets {
            components.push(ComponentManifest {
                kind: ComponentKind::SendsToExtensionPoint,
                name: target.point_name(),
                commands: target.commands.clone(),
                consumes: Vec::new(),
                produces: Vec::new(),
                log: None,
                sources: Vec::new(),
                table: None,
                indexes: Vec::new(),
                needs: Vec::new(),
                is_async: false,
            });
        }
        for inbound in &self.inbound {
            components.push(ComponentManifest {
                kind: ComponentKind::InboundTranslationSlice,
                name: inbound.name().to_string(),
                commands: vec![inbound.name().to_string()],
                consumes: Vec::new(),
                produces: Vec::new(),
                log: None,
                sources: Vec::new(),
                table: Some(inbound_audit_table(&self.name, inbound.name())),
                indexes: Vec::new(),
                needs: Vec::new(),
                is_async: false,
            });
            storage
                .tables
                .push(TableManifest { name: inbound_audit_table(&self.name, inbound.name()), indexes: Vec::new() });
        }
        components.extend(http_route::route_manifests(&self.name, &self.http_routes));
        for extension in &self.extensions {
            components.push(ComponentManifest {
                kind: ComponentKind::Extension,
                name: extension.name().to_string(),
                commands: Vec::new(),
                consumes: names(extension.consumes()),
                produces: Vec::new(),
                log: None,
                sources: vec![LogRef {
                    kind: LogKind::ExtensionPoint,
                    name: format!("{}.{}", extension.source_plugin(), extension.point_name()),
                }],
                table: None,
                indexes: Vec::new(),
                needs: Vec::new(),
                is_async: false,
            });
        }
        let mut schedules = Vec::new();
        for scheduled in &resolved.schedules {
            components.push(schedule::schedule_component(scheduled.handler.as_ref()));
            let (name, expression) = (scheduled.handler.name(), scheduled.handler.expression());
            schedules.push(ScheduleManifest { name: name.to_string(), expression: expression.trim().to_string() });
        }
        let logs: BTreeSet<LogRef> = components.iter().filter_map(|c| c.log.clone()).collect();
        storage.logs = logs.into_iter().filter(|log| log.kind == LogKind::Plugin).map(|log| log.name).collect();
        if components.iter().any(|c| c.is_async) {
            storage.command_topics.push(command_topic(&self.name));
        }
        Ok(Manifest { plugin: self.name.clone(), version: self.version.clone(), components, storage, schedules })
    }
}

/// A plugin whose registration was checked.
#[derive(Clone)]
pub struct ResolvedPlugin {
    /// The plugin's name.
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// Command name → the component answering it.
    pub routes: BTreeMap<String, Arc<dyn CommandHandler>>,
    /// Its read models, to-do lists and counters.
    pub projections: Vec<ResolvedProjection>,
    /// Its extension points.
    pub publishers: Vec<ResolvedPublisher>,
    /// Its extensions on other plugins' extension points.
    pub extensions: Vec<Arc<dyn ExtensionHandler>>,
    /// Its automations and outbound translations.
    pub automations: Vec<Arc<dyn AutomationHandler>>,
    /// Its inbound translations.
    pub inbound: Vec<Arc<dyn InboundHandler>>,
    /// Its HTTP routes (webhooks).
    pub http_routes: Vec<HttpRouteEntry>,
    /// The commands its extension points accept from other plugins.
    pub point_commands: Vec<Arc<dyn PointCommandsHandler>>,
    /// Other plugins' extension points it sends commands to.
    pub point_targets: Vec<PointTarget>,
    /// Its schedules, their expressions parsed.
    pub schedules: Vec<ResolvedSchedule>,
    /// Its file tasks.
    pub tasks: Vec<Arc<dyn TaskHandler>>,
}

/// A resolved extension point and the logs it publishes from.
#[derive(Clone)]
pub struct ResolvedPublisher {
    /// The extension point.
    pub handler: Arc<dyn PublisherHandler>,
    /// The publisher's logs with its event type.
    pub sources: Vec<LogRef>,
}

/// A resolved projection and the logs it follows.
#[derive(Clone)]
pub struct ResolvedProjection {
    /// The projection.
    pub handler: Arc<dyn ProjectionHandler>,
    /// Every log of the plugin whose events have the projection's event type.
    pub sources: Vec<LogRef>,
}
