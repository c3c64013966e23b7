//! The type-erased handlers the `Plugin` builder registers: one per kind of
//! component, each answering the runtime (and the manifest) for the user's
//! trait implementation.
use std::any::TypeId;
use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use reventless_spec::{
    Action, Aggregate, AutomationSlice, Event, EventEnvelope, Extension, ExtensionPoint, Message,
    OutboundTranslationSlice, ReadModel, StateChangeSlice, TodoRow, TodoStatus, from_wire, to_wire,
};

use super::{
    AutomationHandler, BoxFuture, CommandHandler, ComponentKind, ComponentManifest, EventSource, ExtensionHandler,
    InboundHandler, LogKind, LogRef, PreparedCommand, ProjectionHandler, PublisherHandler,
};
use crate::engine::{StateCache, execute_aggregate, execute_slice, project_batch, upcast_event};
use crate::outcome::{CommandRequest, EngineError};
use crate::store::{QueryStore, RowOp};

pub(super) fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

pub(super) struct AggregateHandler<A: Aggregate> {
    pub(super) log: String,
    pub(super) cache: Arc<StateCache<A::State>>,
    pub(super) marker: PhantomData<fn() -> A>,
}

impl<A: Aggregate> CommandHandler for AggregateHandler<A> {
    fn manifest(&self) -> ComponentManifest {
        ComponentManifest {
            kind: ComponentKind::Aggregate,
            name: A::NAME.to_string(),
            commands: self.routes(),
            consumes: names(<A::Event as Message>::NAMES),
            produces: names(<A::Event as Message>::NAMES),
            log: Some(self.event_source().log),
            sources: Vec::new(),
            table: None,
            indexes: Vec::new(),
            needs: Vec::new(),
            is_async: A::ASYNC,
        }
    }

    fn routes(&self) -> Vec<String> {
        <A::Command as Message>::NAMES.iter().map(|variant| format!("{}_{variant}", A::NAME)).collect()
    }

    fn prepare(&self, request: &CommandRequest) -> Result<PreparedCommand, EngineError> {
        let command: A::Command = from_wire("command", self.variant_of(&request.command), request.input.clone())
            .map_err(|e| EngineError::bad_input(&request.command, e))?;
        let entity_id = match request.entity_id.as_deref() {
            Some(id) if !id.is_empty() => id.to_string(),
            _ => return Err(EngineError::MissingEntityId(request.command.clone())),
        };
        let (log, cache, id) = (self.log.clone(), self.cache.clone(), entity_id.clone());
        Ok(PreparedCommand {
            entity_id,
            is_async: A::ASYNC,
            run: Box::new(move |ctx| {
                Box::pin(async move { execute_aggregate::<A>(&ctx, &cache, &log, &id, &command).await })
            }),
        })
    }

    fn roles(&self) -> &'static [&'static str] {
        A::ROLES
    }

    fn requires_user(&self) -> bool {
        A::REQUIRES_USER
    }

    fn owner(&self) -> Option<reventless_spec::Owner> {
        A::OWNER
    }

    fn command_schema(&self) -> schemars::Schema {
        schemars::schema_for!(A::Command)
    }

    fn variant_of<'a>(&self, route: &'a str) -> &'a str {
        route.strip_prefix(A::NAME).and_then(|rest| rest.strip_prefix('_')).unwrap_or("")
    }

    fn in_api(&self) -> bool {
        A::API
    }

    fn event_source(&self) -> EventSource {
        EventSource {
            log: LogRef { kind: LogKind::Plugin, name: self.log.clone() },
            event_type: TypeId::of::<A::Event>(),
            event_type_name: std::any::type_name::<A::Event>(),
            event_names: <A::Event as Message>::NAMES,
            version_of: <A::Event as Event>::version,
            upcast: upcast_event::<A::Event>,
        }
    }
}

pub(super) struct SliceHandler<S> {
    pub(super) log: String,
    pub(super) marker: PhantomData<fn() -> S>,
}

impl<S: StateChangeSlice> CommandHandler for SliceHandler<S> {
    fn manifest(&self) -> ComponentManifest {
        ComponentManifest {
            kind: ComponentKind::StateChangeSlice,
            name: S::NAME.to_string(),
            commands: self.routes(),
            consumes: names(S::CONSUMES),
            produces: names(S::PRODUCES),
            log: Some(self.event_source().log),
            sources: Vec::new(),
            table: None,
            indexes: Vec::new(),
            needs: Vec::new(),
            is_async: S::ASYNC,
        }
    }

    fn routes(&self) -> Vec<String> {
        names(<S::Command as Message>::NAMES)
    }

    fn prepare(&self, request: &CommandRequest) -> Result<PreparedCommand, EngineError> {
        let command: S::Command = from_wire("command", &request.command, request.input.clone())
            .map_err(|e| EngineError::bad_input(&request.command, e))?;
        let log = self.log.clone();
        Ok(PreparedCommand {
            entity_id: crate::engine::slice_entity_id(&command),
            is_async: S::ASYNC,
            run: Box::new(move |ctx| Box::pin(async move { execute_slice::<S>(&ctx, &log, &command).await })),
        })
    }

    fn roles(&self) -> &'static [&'static str] {
        S::ROLES
    }

    fn requires_user(&self) -> bool {
        S::REQUIRES_USER
    }

    fn owner(&self) -> Option<reventless_spec::Owner> {
        S::OWNER
    }

    fn command_schema(&self) -> schemars::Schema {
        schemars::schema_for!(S::Command)
    }

    fn variant_of<'a>(&self, route: &'a str) -> &'a str {
        route
    }

    fn in_api(&self) -> bool {
        S::API
    }

    fn event_source(&self) -> EventSource {
        EventSource {
            log: LogRef { kind: LogKind::Plugin, name: self.log.clone() },
            event_type: TypeId::of::<S::Event>(),
            event_type_name: std::any::type_name::<S::Event>(),
            event_names: <S::Event as Message>::NAMES,
            version_of: <S::Event as Event>::version,
            upcast: upcast_event::<S::Event>,
        }
    }
}

pub(super) struct ReadModelHandler<R> {
    pub(super) table: String,
    pub(super) marker: PhantomData<fn() -> R>,
}

#[async_trait]
impl<R: ReadModel> ProjectionHandler for ReadModelHandler<R> {
    fn manifest(&self) -> ComponentManifest {
        ComponentManifest {
            kind: ComponentKind::ReadModel,
            name: R::PLURAL.to_string(),
            commands: Vec::new(),
            consumes: names(R::CONSUMES),
            produces: Vec::new(),
            log: None,
            sources: Vec::new(),
            table: Some(self.table.clone()),
            indexes: names(R::INDEXES),
            needs: Vec::new(),
            is_async: false,
        }
    }

    fn table(&self) -> &str {
        &self.table
    }

    fn event_type(&self) -> TypeId {
        TypeId::of::<R::Event>()
    }

    fn event_names(&self) -> &'static [&'static str] {
        <R::Event as Message>::NAMES
    }

    async fn project(&self, store: &dyn QueryStore, events: &[EventEnvelope]) -> Result<Vec<RowOp>, EngineError> {
        project_batch::<R>(store, &self.table, events).await
    }

    fn names(&self) -> (&'static str, &'static str) {
        (R::NAME, R::PLURAL)
    }

    fn roles(&self) -> &'static [&'static str] {
        R::ROLES
    }

    fn row_schema(&self) -> schemars::Schema {
        schemars::schema_for!(R::Row)
    }

    fn indexes(&self) -> &'static [&'static str] {
        R::INDEXES
    }

    fn shown_on(&self) -> Option<reventless_spec::ShownOn> {
        R::SHOWN_ON
    }
}

pub(super) struct PublisherOf<P>(pub(super) PhantomData<fn() -> P>);

impl<P: ExtensionPoint> PublisherHandler for PublisherOf<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn event_type(&self) -> TypeId {
        TypeId::of::<P::Event>()
    }

    fn published_names(&self) -> &'static [&'static str] {
        <P::Published as Message>::NAMES
    }

    fn publish(&self, envelope: &EventEnvelope) -> Result<Vec<(&'static str, serde_json::Value)>, EngineError> {
        let event = crate::engine::decode_event::<P::Event>(envelope)?;
        P::publish(&event, envelope)
            .iter()
            .map(|published| to_wire(published).map_err(|e| EngineError::Contract(e.to_string())))
            .collect()
    }
}

pub(super) struct ExtensionOf<X>(pub(super) PhantomData<fn() -> X>);

impl<X: Extension> ExtensionHandler for ExtensionOf<X> {
    fn name(&self) -> &'static str {
        X::NAME
    }

    fn source_plugin(&self) -> &'static str {
        X::SOURCE_PLUGIN
    }

    fn point_name(&self) -> &'static str {
        <X::Point as ExtensionPoint>::NAME
    }

    fn consumes(&self) -> &'static [&'static str] {
        <<X::Point as ExtensionPoint>::Published as Message>::NAMES
    }

    fn handle(&self, name: &str, data: serde_json::Value) -> Result<Vec<reventless_spec::Dispatch>, EngineError> {
        let published = from_wire::<<X::Point as ExtensionPoint>::Published>("published event", name, data)
            .map_err(|e| EngineError::CorruptEvent(e.to_string()))?;
        Ok(X::handle(&published))
    }
}

/// What automations and outbound translations share: a todo list fed by
/// events, and work per open item.
pub(super) trait TodoWork: Send + Sync + 'static {
    const NAME: &'static str;
    const CONSUMES: &'static [&'static str];
    const MAX_RETRIES: u32;
    const KIND: ComponentKind;
    const COMPLETES_ON_SUCCESS: bool;
    const NEEDS: &'static [reventless_spec::Need];
    type Event: reventless_spec::Event;
    type Item: serde::Serialize + serde::de::DeserializeOwned + schemars::JsonSchema + Clone + Send + Sync + 'static;

    fn collect(event: &Self::Event, envelope: &EventEnvelope) -> Option<(String, Self::Item)>;
    fn resolve(event: &Self::Event, envelope: &EventEnvelope) -> Option<String>;
    fn work(
        id: String,
        item: Self::Item,
        capabilities: reventless_spec::Capabilities,
    ) -> BoxFuture<Result<Vec<reventless_spec::Dispatch>, String>>;
    fn on_exhausted(id: &str, item: &Self::Item) -> Vec<reventless_spec::Dispatch>;
}

pub(super) struct AsAutomation<A>(pub(super) PhantomData<fn() -> A>);

impl<A: AutomationSlice> TodoWork for AsAutomation<A> {
    const NAME: &'static str = A::NAME;
    const CONSUMES: &'static [&'static str] = A::CONSUMES;
    const MAX_RETRIES: u32 = A::MAX_RETRIES;
    const KIND: ComponentKind = ComponentKind::AutomationSlice;
    const COMPLETES_ON_SUCCESS: bool = false;
    const NEEDS: &'static [reventless_spec::Need] = &[];
    type Event = A::Event;
    type Item = A::Item;

    fn collect(event: &A::Event, envelope: &EventEnvelope) -> Option<(String, A::Item)> {
        A::collect(event, envelope)
    }

    fn resolve(event: &A::Event, envelope: &EventEnvelope) -> Option<String> {
        A::resolve(event, envelope)
    }

    fn work(
        id: String,
        item: A::Item,
        _: reventless_spec::Capabilities,
    ) -> BoxFuture<Result<Vec<reventless_spec::Dispatch>, String>> {
        Box::pin(std::future::ready(Ok(A::process(&id, &item))))
    }

    fn on_exhausted(id: &str, item: &A::Item) -> Vec<reventless_spec::Dispatch> {
        A::on_exhausted(id, item)
    }
}

pub(super) struct AsOutbound<O>(pub(super) PhantomData<fn() -> O>);

impl<O: OutboundTranslationSlice> TodoWork for AsOutbound<O> {
    const NAME: &'static str = O::NAME;
    const CONSUMES: &'static [&'static str] = O::CONSUMES;
    const MAX_RETRIES: u32 = O::MAX_RETRIES;
    const KIND: ComponentKind = ComponentKind::OutboundTranslationSlice;
    const COMPLETES_ON_SUCCESS: bool = true;
    const NEEDS: &'static [reventless_spec::Need] = O::NEEDS;
    type Event = O::Event;
    type Item = O::Item;

    fn collect(event: &O::Event, envelope: &EventEnvelope) -> Option<(String, O::Item)> {
        O::collect(event, envelope)
    }

    fn resolve(event: &O::Event, envelope: &EventEnvelope) -> Option<String> {
        O::resolve(event, envelope)
    }

    fn work(
        id: String,
        item: O::Item,
        capabilities: reventless_spec::Capabilities,
    ) -> BoxFuture<Result<Vec<reventless_spec::Dispatch>, String>> {
        Box::pin(async move { O::translate(&id, &item, &capabilities).await })
    }

    fn on_exhausted(id: &str, item: &O::Item) -> Vec<reventless_spec::Dispatch> {
        O::on_exhausted(id, item)
    }
}

/// An automation: a projection of events into its todo list, and the
/// processing of the list's open items.
pub(super) struct AutomationOf<A: TodoWork> {
    pub(super) table: String,
    /// `<Name>Todo` / `<Name>Todos`, made once per registration.
    pub(super) names: (&'static str, &'static str),
    pub(super) marker: PhantomData<fn() -> A>,
}

impl<A: TodoWork> AutomationOf<A> {
    pub(super) fn new(plugin: &str) -> Self {
        let singular: &'static str = Box::leak(format!("{}Todo", A::NAME).into_boxed_str());
        let plural: &'static str = Box::leak(format!("{}Todos", A::NAME).into_boxed_str());
        Self { table: format!("{plugin}_{plural}"), names: (singular, plural), marker: PhantomData }
    }

    fn project(event: &A::Event, envelope: &EventEnvelope) -> Vec<Action<TodoRow<A::Item>>> {
        let mut actions = Vec::new();
        if let Some((id, item)) = A::collect(event, envelope) {
            let row = TodoRow {
                id: id.clone(),
                item,
                status: TodoStatus::Pending,
                retry_count: 0,
                created_at: envelope.recorded_at.0,
                processed_at: None,
                completed_at: None,
                last_error: None,
                pending_commands: Vec::new(),
                correlation_id: envelope.meta.correlation_id.clone(),
                causation_id: Some(envelope.event_id.to_string()),
            };
            // The first item collected for an id wins.
            actions.push(Action::update_with_default(id, row, |_| {}));
        }
        if let Some(id) = A::resolve(event, envelope) {
            let completed_at = envelope.recorded_at.0;
            actions.push(Action::update(id, move |row: &mut TodoRow<A::Item>| {
                row.status = TodoStatus::Completed;
                row.completed_at = Some(completed_at);
            }));
        }
        actions
    }

    fn item(id: &str, item: &serde_json::Value) -> Result<A::Item, EngineError> {
        serde_json::from_value(item.clone()).map_err(|e| {
            EngineError::Store(crate::store::StoreError::Corrupt {
                location: format!("todo {id}"),
                message: e.to_string(),
            })
        })
    }
}

#[async_trait]
impl<A: TodoWork> ProjectionHandler for AutomationOf<A> {
    fn manifest(&self) -> ComponentManifest {
        ComponentManifest {
            kind: A::KIND,
            name: A::NAME.to_string(),
            commands: Vec::new(),
            consumes: names(A::CONSUMES),
            produces: Vec::new(),
            log: None,
            sources: Vec::new(),
            table: Some(self.table.clone()),
            indexes: vec!["status".into()],
            needs: A::NEEDS.iter().map(|need| need.name().to_string()).collect(),
            is_async: false,
        }
    }

    fn table(&self) -> &str {
        &self.table
    }

    fn event_type(&self) -> TypeId {
        TypeId::of::<A::Event>()
    }

    fn event_names(&self) -> &'static [&'static str] {
        <A::Event as Message>::NAMES
    }

    async fn project(&self, store: &dyn QueryStore, events: &[EventEnvelope]) -> Result<Vec<RowOp>, EngineError> {
        crate::engine::project_events::<A::Event, TodoRow<A::Item>>(
            store,
            &self.table,
            events,
            A::CONSUMES,
            Self::project,
        )
        .await
    }

    fn names(&self) -> (&'static str, &'static str) {
        self.names
    }

    fn roles(&self) -> &'static [&'static str] {
        &[]
    }

    fn row_schema(&self) -> schemars::Schema {
        schemars::schema_for!(TodoRow<A::Item>)
    }

    fn indexes(&self) -> &'static [&'static str] {
        &["status"]
    }
}

impl<A: TodoWork> AutomationHandler for AutomationOf<A> {
    fn table(&self) -> &str {
        &self.table
    }

    fn max_retries(&self) -> u32 {
        A::MAX_RETRIES
    }

    fn completes_on_success(&self) -> bool {
        A::COMPLETES_ON_SUCCESS
    }

    fn name(&self) -> &'static str {
        A::NAME
    }

    fn needs(&self) -> &'static [reventless_spec::Need] {
        A::NEEDS
    }

    fn process(
        &self,
        id: &str,
        item: &serde_json::Value,
        capabilities: &reventless_spec::Capabilities,
    ) -> BoxFuture<Result<Vec<reventless_spec::Dispatch>, String>> {
        match Self::item(id, item) {
            Ok(item) => A::work(id.to_string(), item, capabilities.clone()),
            Err(error) => Box::pin(std::future::ready(Err(error.to_string()))),
        }
    }

    fn on_exhausted(&self, id: &str, item: &serde_json::Value) -> Result<Vec<reventless_spec::Dispatch>, EngineError> {
        Ok(A::on_exhausted(id, &Self::item(id, item)?))
    }
}

/// The audit table of an inbound translation.
pub fn inbound_audit_table(plugin: &str, name: &str) -> String {
    format!("{plugin}_{name}Audit")
}

pub(super) struct InboundOf<T>(pub(super) PhantomData<fn() -> T>);

impl<T: reventless_spec::InboundTranslationSlice> InboundHandler for InboundOf<T> {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn roles(&self) -> &'static [&'static str] {
        T::ROLES
    }

    fn input_schema(&self) -> schemars::Schema {
        schemars::schema_for!(T::Input)
    }

    fn translate(
        &self,
        input: serde_json::Value,
    ) -> Result<Result<Vec<reventless_spec::Dispatch>, (String, serde_json::Value)>, EngineError> {
        let input: T::Input = serde_json::from_value(input)
            .map_err(|e| EngineError::BadInput { command: T::NAME.to_string(), message: e.to_string() })?;
        Ok(T::translate(&input).map_err(|error| {
            use reventless_spec::DomainError;
            (error.code(), error.detail())
        }))
    }
}
