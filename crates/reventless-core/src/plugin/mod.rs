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
mod topics;
pub(crate) mod upcast;

use checks::check_event_names;
pub use components::inbound_audit_table;
use components::{
    AggregateHandler, AsAutomation, AsOutbound, AutomationOf, ExtensionOf, InboundOf, PublisherOf, ReadModelHandler,
    SliceHandler, TodoWork, names,
};
pub use topics::{TopicLayout, command_topic};

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A decoded, validated command ready to run.
pub struct PreparedCommand {
    /// Commands with the same entity id run one after another.
    pub entity_id: String,
    pub is_async: bool,
    run: Box<dyn FnOnce(ExecutionContext) -> BoxFuture<Result<CommandOutcome, EngineError>> + Send>,
}

impl PreparedCommand {
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
    fn manifest(&self) -> ComponentManifest;
    /// The query table, also the checkpoint name.
    fn table(&self) -> &str;
    fn event_type(&self) -> TypeId;
    /// The wire names of its event type's variants (what `CONSUMES` may name).
    fn event_names(&self) -> &'static [&'static str];
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
    fn name(&self) -> &'static str;
    fn event_type(&self) -> TypeId;
    fn published_names(&self) -> &'static [&'static str];
    /// The published events of one stored event, in wire form (name, data).
    fn publish(&self, envelope: &EventEnvelope) -> Result<Vec<(&'static str, serde_json::Value)>, EngineError>;
}

/// A registered extension (type-erased): published events to this plugin's commands.
pub trait ExtensionHandler: Send + Sync {
    fn name(&self) -> &'static str;
    fn source_plugin(&self) -> &'static str;
    fn point_name(&self) -> &'static str;
    fn consumes(&self) -> &'static [&'static str];
    fn handle(&self, name: &str, data: serde_json::Value) -> Result<Vec<reventless_spec::Dispatch>, EngineError>;
}

/// A registered automation (type-erased): what to send for an open todo item.
pub trait AutomationHandler: Send + Sync {
    /// Its todo table (also registered as a projection).
    fn table(&self) -> &str;
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
    fn on_exhausted(&self, id: &str, item: &serde_json::Value) -> Result<Vec<reventless_spec::Dispatch>, EngineError>;
}

/// A registered inbound translation (type-erased).
pub trait InboundHandler: Send + Sync {
    fn name(&self) -> &'static str;
    fn roles(&self) -> &'static [&'static str];
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
    pub kind: LogKind,
    pub name: String,
}

/// Which log a component writes, and its event type.
#[derive(Debug, Clone)]
pub struct EventSource {
    pub log: LogRef,
    pub event_type: TypeId,
    pub event_type_name: &'static str,
    /// The wire names of the event type's variants.
    pub event_names: &'static [&'static str],
    /// The current version of a wire name of the event type.
    pub version_of: fn(&str) -> u32,
    /// A stored event of the event type in its current shape (see
    /// [`crate::engine::upcast_event`]).
    pub upcast: fn(&EventEnvelope) -> Result<EventEnvelope, EngineError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ComponentKind {
    Aggregate,
    StateChangeSlice,
    ReadModel,
    StateViewSlice,
    ExtensionPoint,
    Extension,
    AutomationSlice,
    OutboundTranslationSlice,
    InboundTranslationSlice,
}

/// One component in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentManifest {
    pub kind: ComponentKind,
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    pub consumes: Vec<String>,
    pub produces: Vec<String>,
    /// The log it appends to (command components).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogRef>,
    /// The logs it reads from (projections).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<LogRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<String>,
    /// The capabilities it needs (Rust type names), checked at startup.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    #[serde(rename = "async")]
    pub is_async: bool,
}

/// The storage a plugin needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageManifest {
    /// The plugin's event log (none for a plugin without command components).
    pub logs: Vec<String>,
    pub tables: Vec<TableManifest>,
    pub command_topics: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableManifest {
    pub name: String,
    pub indexes: Vec<String>,
}

/// What a plugin is, for deployers and for the platform's plugin list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub plugin: String,
    pub version: String,
    pub components: Vec<ComponentManifest>,
    pub storage: StorageManifest,
}

/// Why a plugin's registration is inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    #[error("plugin `{plugin}`: command `{command}` is registered twice")]
    DuplicateCommand { plugin: String, command: String },
    #[error("plugin `{plugin}`: component `{name}` is registered twice")]
    DuplicateComponent { plugin: String, name: String },
    #[error(
        "plugin `{plugin}`: event name `{name}` belongs to two event types ({first} and {second}); \
         the plugin's events share one log, so each name must mean one event"
    )]
    DuplicateEventName { plugin: String, name: String, first: &'static str, second: &'static str },
    #[error("{0}")]
    UnknownEventName(Box<EventNameTypo>),
    #[error(
        "plugin `{plugin}`: aggregates `{first}` and `{second}` would tag their entities with the same key `{key}`"
    )]
    DuplicateEntityTag { plugin: String, key: String, first: String, second: String },
    #[error(
        "plugin `{plugin}`: {component} consumes `{name}`, which no component of the plugin appends \
         (appended: {appended}): it could never see one"
    )]
    NeverAppended { plugin: String, component: String, name: String, appended: String },
    #[error("plugin `{plugin}`: projection `{projection}` reads events that no component of the plugin appends")]
    UnknownEventSource { plugin: String, projection: String },
    #[error("plugin `{plugin}`: extension point `{point}` publishes events that no component of the plugin appends")]
    UnknownPublisherSource { plugin: String, point: String },
    #[error("plugin `{plugin}`: extension `{extension}` needs extension point `{point}`, which is not hosted")]
    MissingExtensionPoint { plugin: String, extension: String, point: String },
    #[error("two plugins are named `{0}`")]
    DuplicatePlugin(String),
    #[error("plugin name `{0}` must be non-empty ASCII letters and digits starting with a letter")]
    InvalidName(String),
}

/// A name in `CONSUMES` / `PRODUCES` that is not an event of the component's event type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin `{plugin}`: {component} lists `{name}` in {list}, which is not an event of {event_type}{hint}")]
pub struct EventNameTypo {
    pub plugin: String,
    pub component: String,
    pub list: &'static str,
    pub name: String,
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
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("name", &self.name).field("version", &self.version).finish_non_exhaustive()
    }
}

impl Plugin {
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
        }
    }

    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn aggregate<A: Aggregate>(mut self) -> Self {
        let log = self.name.clone();
        let cache = Arc::new(StateCache::new(STATE_CACHE_CAPACITY));
        self.commands.push(Arc::new(AggregateHandler::<A> { log, cache, marker: PhantomData }));
        self
    }

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
            if !event_types.contains_key(&publisher.event_type()) {
                return Err(PluginError::UnknownPublisherSource {
                    plugin: plugin(),
                    point: publisher.name().to_string(),
                });
            }
            publishers.push(ResolvedPublisher { handler: publisher.clone(), sources: vec![log.clone()] });
        }
        for extension in &self.extensions {
            if !names.insert(extension.name().to_string()) {
                return Err(PluginError::DuplicateComponent { plugin: plugin(), name: extension.name().to_string() });
            }
        }
        Ok(ResolvedPlugin {
            name: self.name.clone(),
            version: self.version.clone(),
            routes,
            projections,
            publishers,
            extensions: self.extensions.clone(),
            automations: self.automations.clone(),
            inbound: self.inbound.clone(),
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
            components.push(ComponentManifest {
                kind: ComponentKind::ExtensionPoint,
                name: format!("{}.{}", self.name, publisher.handler.name()),
                commands: Vec::new(),
                consumes: Vec::new(),
                produces: names(publisher.handler.published_names()),
                log: None,
                sources: publisher.sources.clone(),
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
        let logs: BTreeSet<LogRef> = components.iter().filter_map(|c| c.log.clone()).collect();
        storage.logs = logs.into_iter().filter(|log| log.kind == LogKind::Plugin).map(|log| log.name).collect();
        if components.iter().any(|c| c.is_async) {
            storage.command_topics.push(command_topic(&self.name));
        }
        Ok(Manifest { plugin: self.name.clone(), version: self.version.clone(), components, storage })
    }
}

/// A plugin whose registration was checked.
#[derive(Clone)]
pub struct ResolvedPlugin {
    pub name: String,
    pub version: String,
    pub routes: BTreeMap<String, Arc<dyn CommandHandler>>,
    pub projections: Vec<ResolvedProjection>,
    pub publishers: Vec<ResolvedPublisher>,
    pub extensions: Vec<Arc<dyn ExtensionHandler>>,
    pub automations: Vec<Arc<dyn AutomationHandler>>,
    pub inbound: Vec<Arc<dyn InboundHandler>>,
}

#[derive(Clone)]
pub struct ResolvedPublisher {
    pub handler: Arc<dyn PublisherHandler>,
    /// The publisher's logs with its event type.
    pub sources: Vec<LogRef>,
}

#[derive(Clone)]
pub struct ResolvedProjection {
    pub handler: Arc<dyn ProjectionHandler>,
    /// Every log of the plugin whose events have the projection's event type.
    pub sources: Vec<LogRef>,
}
