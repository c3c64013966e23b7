use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Command, DomainError, Event, EventEnvelope, Query, QueryItem};

/// An event-sourced entity: its commands are decided on the state folded from
/// its own stream and appended with optimistic concurrency.
///
/// `decide` and `evolve` are pure: the platform replays, decides, appends and
/// retries on conflicts. The entity id is the command's `id` argument (never
/// a command field): `decide` receives it, and every event the aggregate
/// appends carries the entity tag `<name in snake_case>:<id>` (`member:m1`,
/// see [`entity_tag`]), so the plugin's DCB slices see the aggregate's
/// events through that tag.
pub trait Aggregate: Send + Sync + 'static {
    /// The aggregate's name, e.g. `Customer` (GraphQL: `<Plugin>_<Name>_<Variant>`).
    const NAME: &'static str;
    /// Async aggregates answer `Pending` and are executed from a command queue.
    const ASYNC: bool = false;
    /// Roles allowed to send its commands (any caller when empty).
    const ROLES: &'static [&'static str] = &[];
    /// Only identified callers (with a user id) may send its commands.
    const REQUIRES_USER: bool = false;
    /// A command field stamped with the caller's id (see [`Owner`]).
    const OWNER: Option<Owner> = None;
    /// False for commands only the plugin's own components send (not in the API).
    const API: bool = true;
    /// The aggregate's commands (an enum: one variant per command).
    type Command: Command;
    /// The plugin's event type (shared with its slices, so they see these events).
    type Event: Event;
    /// The entity's state, folded from its events (`Default` before the first).
    type State: Default + Clone + Send + Sync + 'static;
    /// Why a command is refused (the variant name is the error code).
    type Error: DomainError;

    /// Decides `command` for the entity `id` on its current state.
    fn decide(id: &str, state: &Self::State, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Error>;
    /// Folds one of the entity's events into its state.
    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;
}

/// The tag key of an aggregate's entities: its name in snake_case
/// (`Member` → `member`, `OrderLine` → `order_line`), the key a `#[tag]`
/// field `member_id` / `order_line_id` gives too.
pub fn entity_tag_key(aggregate: &str) -> String {
    let mut key = String::with_capacity(aggregate.len() + 2);
    for (index, c) in aggregate.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if index > 0 {
                key.push('_');
            }
            key.push(c.to_ascii_lowercase());
        } else {
            key.push(c);
        }
    }
    key
}

/// The tag every event of aggregate `aggregate`'s entity `id` carries.
pub fn entity_tag(aggregate: &str, id: &str) -> Result<crate::Tag, crate::TagParseError> {
    crate::Tag::new(entity_tag_key(aggregate), id)
}

/// A DCB state-change slice: one decision over the events matching the
/// command's tags, appended with an [`crate::AppendCondition`] instead of a
/// per-entity stream.
///
/// The consistency boundary is [`StateChangeSlice::query`]: by default one
/// item with the command's scalar tags (AND) and the consumed types, plus one
/// item per collection tag (OR).
pub trait StateChangeSlice: Send + Sync + 'static {
    /// The slice's name, e.g. `AddProduct`.
    const NAME: &'static str;
    /// Async slices answer `Pending` and are executed from a command queue.
    const ASYNC: bool = false;
    /// Roles allowed to send its commands (any caller when empty).
    const ROLES: &'static [&'static str] = &[];
    /// Only identified callers (with a user id) may send its commands.
    const REQUIRES_USER: bool = false;
    /// A command field stamped with the caller's id (see [`Owner`]).
    const OWNER: Option<Owner> = None;
    /// False for commands only the plugin's own components send (not in the API).
    const API: bool = true;
    /// Event types folded into the decision state.
    const CONSUMES: &'static [&'static str];
    /// Event types `decide` may return (checked at run time).
    const PRODUCES: &'static [&'static str];
    /// The command(s) it decides (a struct, or an enum of commands sharing the state).
    type Command: Command;
    /// The plugin's event type (shared by its slices).
    type Event: Event;
    /// The decision state, folded from the events the query matches.
    type State: Default + Clone + Send + Sync + 'static;
    /// Why a command is refused (the variant name is the error code).
    type Error: DomainError;

    /// The consistency boundary: the events read before deciding, and checked by the append condition.
    fn query(command: &Self::Command) -> Query {
        default_decision_query(command, Self::CONSUMES)
    }
    /// Folds one matching event into the state.
    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;
    /// Decides the command on the folded state: the events to append, or a refusal.
    fn decide(state: &Self::State, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Error>;
}

/// The default DCB decision query of a command (see [`StateChangeSlice`]).
/// A slice consuming no event types decides on nothing: its query matches no
/// event (an item without types would match every type).
pub fn default_decision_query<C: Command>(command: &C, consumes: &[&str]) -> Query {
    if consumes.is_empty() {
        return Query::none();
    }
    let tags = command.tag_set();
    let item = || QueryItem::new().types(consumes.iter().copied());
    let mut query = Query::none();
    if !tags.scalar.is_empty() || tags.many.is_empty() {
        query = query.item(item().tags(tags.scalar.iter().cloned()));
    }
    for tag in tags.many {
        query = query.item(item().tags([tag]));
    }
    query
}

/// Ownership of commands: the platform writes the caller's id into `field`
/// (its serde name) before the command is decided, so a caller cannot act in
/// another's name. Callers with one of `override_roles` may set it
/// themselves (an operator acting for a customer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// The command field (serde name) stamped with the caller's id.
    pub field: &'static str,
    /// Roles that may set the field to another id.
    pub override_roles: &'static [&'static str],
}

/// Where a read model's field also appears: on the rows of the read model
/// named `view` (its singular `NAME`, same plugin) as `field`, read from this
/// model's row with the same id, key `key` (absent row → the key's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShownOn {
    /// The read model (singular `NAME`) whose rows show the field.
    pub view: &'static str,
    /// The field's name on those rows.
    pub field: &'static str,
    /// The field of this model's row it is read from.
    pub key: &'static str,
}

/// A read model (or DCB state-view slice): rows kept current from events.
pub trait ReadModel: Send + Sync + 'static {
    /// Singular name, e.g. `Product` (GraphQL `<Plugin>_<Name>(id)`).
    const NAME: &'static str;
    /// Plural name, e.g. `Products` (GraphQL `<Plugin>_<Plural>`).
    const PLURAL: &'static str;
    /// Event types this projection reacts to; others are never delivered.
    const CONSUMES: &'static [&'static str];
    /// Row fields that can be filtered on efficiently.
    const INDEXES: &'static [&'static str] = &[];
    /// Roles allowed to query it (any caller when empty).
    const ROLES: &'static [&'static str] = &[];
    /// Also show one of its row fields on another read model's rows with the
    /// same id (e.g. a counter's `count` as `Category.productCount`).
    const SHOWN_ON: Option<ShownOn> = None;
    /// The event type it reads (its plugin's).
    type Event: Event;
    /// A row: its JSON schema becomes the GraphQL type.
    type Row: Serialize + DeserializeOwned + schemars::JsonSchema + Clone + Debug + PartialEq + Send + Sync + 'static;

    /// The row actions for one consumed event.
    fn project(event: &Self::Event, envelope: &EventEnvelope) -> Vec<Action<Self::Row>>;
}

/// What a projection does with one event.
pub enum Action<R> {
    /// Write the row, replacing any existing one.
    Set {
        /// The row's id.
        id: String,
        /// The new row.
        row: R,
    },
    /// Change an existing row; nothing happens when it does not exist.
    Update {
        /// The row's id.
        id: String,
        /// The change.
        update: Update<R>,
    },
    /// Change the row, starting from `default` when it does not exist.
    UpdateWithDefault {
        /// The row's id.
        id: String,
        /// The row to start from when there is none.
        default: R,
        /// The change.
        update: Update<R>,
    },
    /// Remove the row.
    Delete {
        /// The row's id.
        id: String,
    },
    /// Nothing to do.
    Ignore,
}

impl<R> Action<R> {
    /// Writes `row` under `id`, replacing any existing one.
    pub fn set(id: impl Into<String>, row: R) -> Self {
        Self::Set { id: id.into(), row }
    }

    /// Changes the row `id` if it exists.
    pub fn update(id: impl Into<String>, update: impl FnOnce(&mut R) + Send + 'static) -> Self {
        Self::Update { id: id.into(), update: Update::new(update) }
    }

    /// Changes the row `id`, starting from `default` when it does not exist.
    pub fn update_with_default(
        id: impl Into<String>,
        default: R,
        update: impl FnOnce(&mut R) + Send + 'static,
    ) -> Self {
        Self::UpdateWithDefault { id: id.into(), default, update: Update::new(update) }
    }

    /// Removes the row `id`.
    pub fn delete(id: impl Into<String>) -> Self {
        Self::Delete { id: id.into() }
    }
}

impl<R: Debug> Debug for Action<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Set { id, row } => f.debug_struct("Set").field("id", id).field("row", row).finish(),
            Self::Update { id, .. } => f.debug_struct("Update").field("id", id).finish_non_exhaustive(),
            Self::UpdateWithDefault { id, default, .. } => {
                f.debug_struct("UpdateWithDefault").field("id", id).field("default", default).finish_non_exhaustive()
            }
            Self::Delete { id } => f.debug_struct("Delete").field("id", id).finish(),
            Self::Ignore => f.write_str("Ignore"),
        }
    }
}

/// An in-place change of a row.
pub struct Update<R>(Box<dyn FnOnce(&mut R) + Send>);

impl<R> Update<R> {
    /// Wraps a change.
    pub fn new(update: impl FnOnce(&mut R) + Send + 'static) -> Self {
        Self(Box::new(update))
    }

    /// Applies the change to `row`.
    pub fn apply(self, row: &mut R) {
        (self.0)(row)
    }
}

/// A plugin's public contract: the events it publishes for other plugins,
/// mapped from its internal events. Its full name is `<Plugin>.<NAME>`.
/// Consumers depend on this type (and its `Published` events), never on the
/// publisher's internal events.
pub trait ExtensionPoint: Send + Sync + 'static {
    /// E.g. `Products` (full name `Catalog.Products`).
    const NAME: &'static str;
    /// The publisher's internal event type (the log it reads).
    type Event: Event;
    /// The published events.
    type Published: Event;

    /// The public events for one internal event (none to keep it private).
    fn publish(event: &Self::Event, envelope: &EventEnvelope) -> Vec<Self::Published>;
}

/// In a consuming plugin: another plugin's published events turned into this
/// plugin's commands. Delivery is at least once, so the commands it sends
/// must be idempotent.
pub trait Extension: Send + Sync + 'static {
    /// E.g. `CatalogProducts`.
    const NAME: &'static str;
    /// The plugin that publishes the extension point.
    const SOURCE_PLUGIN: &'static str;
    /// The extension point it follows (the publisher's contract type).
    type Point: ExtensionPoint;

    /// The commands for one published event (idempotent: delivery is at least once).
    fn handle(event: &<Self::Point as ExtensionPoint>::Published) -> Vec<Dispatch>;
}

/// A command a component sends to its own plugin (extensions, automations).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Dispatch {
    /// `<Variant>` for a DCB command, `<Aggregate>_<Variant>` for an aggregate's.
    pub command: String,
    /// The entity id for an aggregate's command.
    pub entity_id: Option<String>,
    /// The command's wire data.
    pub input: serde_json::Value,
}

impl Dispatch {
    /// A command for a DCB slice.
    pub fn slice<C: Command>(command: &C) -> Result<Self, crate::WireError> {
        let (name, input) = crate::to_wire(command)?;
        Ok(Self { command: name.to_string(), entity_id: None, input })
    }

    /// A command for the entity `id` of aggregate `A`.
    pub fn aggregate<A: Aggregate>(id: impl Into<String>, command: &A::Command) -> Result<Self, crate::WireError> {
        let (name, input) = crate::to_wire(command)?;
        Ok(Self { command: format!("{}_{name}", A::NAME), entity_id: Some(id.into()), input })
    }
}

/// The todo-list pattern: events put work items on a list (`collect`), a
/// later event marks them done (`resolve`), and the platform turns each open
/// item into commands (`process`), retrying failures up to `MAX_RETRIES`
/// times before `on_exhausted`. The list is a read model
/// (`<Plugin>_<Name>Todos`) anyone allowed can query.
pub trait AutomationSlice: Send + Sync + 'static {
    /// E.g. `AutoShipOrder` (rows in `<Plugin>_AutoShipOrderTodos`).
    const NAME: &'static str;
    /// Event types it collects and resolves items from.
    const CONSUMES: &'static [&'static str];
    /// How often a failed item is retried before it is `EXHAUSTED`.
    const MAX_RETRIES: u32 = 3;
    /// The event type it reads (its plugin's).
    type Event: Event;
    /// A work item (stored in the to-do table).
    type Item: Serialize + DeserializeOwned + schemars::JsonSchema + Clone + Debug + PartialEq + Send + Sync + 'static;

    /// A new work item, keyed by id; the first item collected for an id wins.
    fn collect(event: &Self::Event, envelope: &EventEnvelope) -> Option<(String, Self::Item)>;
    /// The id of an item this event completes.
    fn resolve(event: &Self::Event, envelope: &EventEnvelope) -> Option<String>;
    /// The commands that do the work.
    fn process(id: &str, item: &Self::Item) -> Vec<Dispatch>;
    /// The commands to send when every retry failed.
    fn on_exhausted(_id: &str, _item: &Self::Item) -> Vec<Dispatch> {
        Vec::new()
    }
}

/// Where a work item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TodoStatus {
    /// Collected, not yet processed.
    Pending,
    /// Its commands were sent; waiting for the event that resolves it.
    Processing,
    /// Done: resolved by an event (or translated, for outbound translations).
    Completed,
    /// Its commands could not be sent; retried while retries remain.
    Failed,
    /// Every retry failed; `on_exhausted` ran.
    Exhausted,
}

/// A row of an automation's todo list.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TodoRow<I> {
    /// The item's id (from `collect`).
    pub id: String,
    /// The work item.
    pub item: I,
    /// Where it is.
    pub status: TodoStatus,
    /// Failed attempts so far.
    pub retry_count: u32,
    /// Milliseconds since the Unix epoch.
    pub created_at: u64,
    /// When its commands were last sent (milliseconds since the Unix epoch).
    pub processed_at: Option<u64>,
    /// When it was completed (milliseconds since the Unix epoch).
    pub completed_at: Option<u64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Ids of the async commands its last attempt queued (their outcomes
    /// decide whether it failed).
    #[serde(default)]
    pub pending_commands: Vec<String>,
    /// The correlation id of the event that collected it (its commands carry it on).
    #[serde(default)]
    pub correlation_id: Option<String>,
    /// The id of the event that collected it: the causation of its commands.
    #[serde(default)]
    pub causation_id: Option<String>,
}

/// The external services a plugin needs (an `EmailService`, a payment
/// gateway), provided by the composition root: locally recording fakes, on
/// AWS the real clients. Looked up by type.
#[derive(Clone, Default)]
pub struct Capabilities {
    services: std::collections::HashMap<std::any::TypeId, std::sync::Arc<dyn std::any::Any + Send + Sync>>,
    /// The platform's secrets (see [`crate::Secrets`]).
    secrets: crate::Secrets,
}

impl Capabilities {
    /// No services and the platform's secrets.
    pub fn new() -> Self {
        Self::default()
    }

    /// Provides `service` as `T` (usually a trait object: `Arc<dyn EmailService>`).
    pub fn with<T: ?Sized + Send + Sync + 'static>(mut self, service: std::sync::Arc<T>) -> Self {
        self.services.insert(std::any::TypeId::of::<T>(), std::sync::Arc::new(service));
        self
    }

    /// The service provided as `T`, if any.
    pub fn get<T: ?Sized + Send + Sync + 'static>(&self) -> Option<std::sync::Arc<T>> {
        self.services.get(&std::any::TypeId::of::<T>())?.downcast_ref::<std::sync::Arc<T>>().cloned()
    }

    /// Whether the service a component declared it needs is provided.
    pub fn provides(&self, need: &Need) -> bool {
        self.services.contains_key(&need.type_id())
    }

    /// Reads secrets from `secrets` (a platform installs its own source
    /// when the composition root set none).
    pub fn with_secrets(mut self, secrets: crate::Secrets) -> Self {
        self.secrets = secrets;
        self
    }

    /// The secrets handle, for a capability that resolves them itself.
    pub fn secrets(&self) -> &crate::Secrets {
        &self.secrets
    }

    /// The secret `name` (fetched on first use, then cached).
    pub async fn secret(&self, name: &str) -> Result<crate::SecretValue, crate::SecretError> {
        self.secrets.get(name).await
    }
}

/// A capability a component needs (`Need::of::<dyn EmailService>()`): the
/// platform refuses to start a component whose needs are not provided, so
/// a binary that forgets one fails at startup, not on the first item.
#[derive(Clone, Copy)]
pub struct Need {
    type_id: fn() -> std::any::TypeId,
    type_name: fn() -> &'static str,
}

impl Need {
    /// The capability provided as `T` (see [`Capabilities::with`]).
    pub const fn of<T: ?Sized + 'static>() -> Self {
        Self { type_id: std::any::TypeId::of::<T>, type_name: std::any::type_name::<T> }
    }

    /// The `TypeId` of the capability's type.
    pub fn type_id(&self) -> std::any::TypeId {
        (self.type_id)()
    }

    /// The Rust type's name (`dyn shop::EmailService`).
    pub fn name(&self) -> &'static str {
        (self.type_name)()
    }
}

impl Debug for Need {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Debug for Capabilities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capabilities").field("services", &self.services.len()).finish()
    }
}

/// Like an automation, but its work calls the outside world through a
/// capability; it may answer with commands. A failure (`Err`) is retried up
/// to `MAX_RETRIES` times, then `on_exhausted` runs.
pub trait OutboundTranslationSlice: Send + Sync + 'static {
    /// E.g. `SendOrderConfirmation` (rows in `<Plugin>_SendOrderConfirmationTodos`).
    const NAME: &'static str;
    /// Event types it collects and resolves items from.
    const CONSUMES: &'static [&'static str];
    /// How often a failed `translate` is retried before the item is `EXHAUSTED`.
    const MAX_RETRIES: u32 = 3;
    /// The capabilities `translate` uses (`&[Need::of::<dyn EmailService>()]`),
    /// checked when the app (or a Lambda function running it) starts.
    const NEEDS: &'static [Need] = &[];
    /// The event type it reads (its plugin's).
    type Event: Event;
    /// A work item (stored in the to-do table).
    type Item: Serialize + DeserializeOwned + schemars::JsonSchema + Clone + Debug + PartialEq + Send + Sync + 'static;

    /// A new work item, keyed by id; the first item collected for an id wins.
    fn collect(event: &Self::Event, envelope: &EventEnvelope) -> Option<(String, Self::Item)>;
    /// Completes an item; by default an item is complete once translated.
    fn resolve(_event: &Self::Event, _envelope: &EventEnvelope) -> Option<String> {
        None
    }
    /// Does the item's work through `capabilities`; the commands to send after it, or why it failed.
    fn translate(
        id: &str,
        item: &Self::Item,
        capabilities: &Capabilities,
    ) -> impl std::future::Future<Output = Result<Vec<Dispatch>, String>> + Send;
    /// The commands to send when every retry failed.
    fn on_exhausted(_id: &str, _item: &Self::Item) -> Vec<Dispatch> {
        Vec::new()
    }
}

/// Counts events per key into a read model (`<Plugin>_<PLURAL>`, rows
/// `{id, count}`): `count` says which keys an event moves and by how much.
pub trait Counter: Send + Sync + 'static {
    /// Singular name, e.g. `CategoryProductCount`.
    const NAME: &'static str;
    /// Plural name, e.g. `CategoryProductCounts`.
    const PLURAL: &'static str;
    /// Event types it counts.
    const CONSUMES: &'static [&'static str];
    /// Show the count on another read model's rows with the same id:
    /// `(view NAME, field)`, e.g. `("Category", "productCount")`.
    const SHOWN_ON: Option<(&'static str, &'static str)> = None;
    /// The event type it reads (its plugin's).
    type Event: Event;

    /// The keys one event moves, and by how much.
    fn count(event: &Self::Event, envelope: &EventEnvelope) -> Vec<(String, i64)>;
}

/// A row of a counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct CountRow {
    /// The counted key.
    pub id: String,
    /// The count.
    pub count: i64,
}

/// A counter as the read model it is.
pub struct CounterView<C>(std::marker::PhantomData<fn() -> C>);

impl<C: Counter> ReadModel for CounterView<C> {
    const NAME: &'static str = C::NAME;
    const PLURAL: &'static str = C::PLURAL;
    const CONSUMES: &'static [&'static str] = C::CONSUMES;
    const SHOWN_ON: Option<ShownOn> = match C::SHOWN_ON {
        Some((view, field)) => Some(ShownOn { view, field, key: "count" }),
        None => None,
    };
    type Event = C::Event;
    type Row = CountRow;

    fn project(event: &C::Event, envelope: &EventEnvelope) -> Vec<Action<CountRow>> {
        C::count(event, envelope)
            .into_iter()
            .map(|(id, delta)| {
                Action::update_with_default(id.clone(), CountRow { id, count: 0 }, move |row| row.count += delta)
            })
            .collect()
    }
}

/// An anti-corruption layer for input from outside (another system's
/// format): the input becomes this plugin's commands, synchronously, and
/// every input is kept in an audit table (`<Plugin>_<NAME>Audit`).
pub trait InboundTranslationSlice: Send + Sync + 'static {
    /// The mutation's name after the plugin, e.g. `ImportProduct`.
    const NAME: &'static str;
    /// Roles allowed to send input (any caller when empty).
    const ROLES: &'static [&'static str] = &[];
    /// The outside system's input (its JSON schema becomes the mutation's arguments).
    type Input: Serialize + DeserializeOwned + schemars::JsonSchema + Clone + Debug + Send + Sync + 'static;
    /// Why an input is refused (the variant name is the error code).
    type Error: DomainError;

    /// The commands for one input, or a refusal.
    fn translate(input: &Self::Input) -> Result<Vec<Dispatch>, Self::Error>;
}
