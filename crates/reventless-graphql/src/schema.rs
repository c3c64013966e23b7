//! Builds the dynamic GraphQL schema from a runtime's plugins.
use std::sync::Arc;

use async_graphql::dynamic::{
    Enum, EnumItem, Field, FieldFuture, FieldValue, InputObject, InputValue, Object, ResolverContext,
    Scalar as GqlScalar, Schema, SchemaError, Subscription, SubscriptionField, SubscriptionFieldFuture, TypeRef,
};
use async_graphql::{ErrorExtensions, Request, Response, Value as GqlValue};
use futures::StreamExt;
use reventless_core::plugin::{ComponentKind, ProjectionHandler};
use reventless_core::store::{Cursor, Filter, FilterOp, ListRequest, OrderBy};
use reventless_core::{Caller, CommandOutcome, CommandRequest, EngineError, Runtime};
use serde_json::{Value, json};

use crate::convert::{input_to_json, output_value, owned_output_value};
use crate::documents::Documents;
use crate::shape::{
    EnumValue, FieldShape, Scalar, Shape, ShapeError, Types, Walker, command_variants, screaming_snake_case,
};

/// Rows per page when `first` is not given, and the most a page may hold.
const DEFAULT_PAGE: i64 = 20;
const MAX_PAGE: i64 = 1000;

/// Why a schema could not be built from the plugins.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Shape(#[from] ShapeError),
    #[error("invalid GraphQL schema: {0}")]
    Schema(#[from] SchemaError),
    #[error("cannot describe a type: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{plugin}_{source_view} is shown on `{target}`, which is not a read model of {plugin}")]
    UnknownShownOn { plugin: String, source_view: String, target: String },
    #[error("{plugin}_{source_view} shows its field `{key}`, which its rows do not have")]
    UnknownShownKey { plugin: String, source_view: String, key: String },
}

/// The executable API of a runtime.
#[derive(Clone)]
pub struct ApiSchema {
    schema: Schema,
    documents: Arc<Documents>,
}

impl std::fmt::Debug for ApiSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiSchema").finish_non_exhaustive()
    }
}

impl ApiSchema {
    /// The schema in SDL.
    pub fn sdl(&self) -> String {
        self.schema.sdl()
    }

    pub fn dynamic(&self) -> &Schema {
        &self.schema
    }
}

fn error(code: &str, message: impl Into<String>) -> async_graphql::Error {
    let code = code.to_string();
    async_graphql::Error::new(message).extend_with(move |_, extensions| extensions.set("code", code.clone()))
}

fn engine_error(failure: EngineError) -> async_graphql::Error {
    match &failure {
        EngineError::BadInput { .. } | EngineError::MissingEntityId(_) => error("BAD_USER_INPUT", failure.to_string()),
        EngineError::Conflict { .. } => error("CONFLICT", failure.to_string()),
        _ => error("INTERNAL_SERVER_ERROR", failure.to_string()),
    }
}

fn type_ref(shape: &Shape, required: bool) -> TypeRef {
    let base = match shape {
        Shape::List(inner, inner_required) => TypeRef::List(Box::new(type_ref(inner, *inner_required))),
        other => TypeRef::named(other.named()),
    };
    if required { TypeRef::NonNull(Box::new(base)) } else { base }
}

fn scalar_field(name: &str, key: &str, scalar: Scalar, required: bool) -> FieldShape {
    FieldShape { name: name.into(), key: key.into(), shape: Shape::Scalar(scalar), required, description: None }
}

fn field(name: &str, shape: Shape, required: bool) -> FieldShape {
    FieldShape { name: name.into(), key: name.into(), shape, required, description: None }
}

/// The types every API has: outcomes, paging.
fn register_common(outputs: &mut Types) {
    // FAILED: an async command that could never run (looked up by its id).
    outputs
        .enums
        .insert("CommandStatus".into(), ["ACCEPTED", "REJECTED", "PENDING", "FAILED"].map(EnumValue::same).to_vec());
    outputs.objects.insert(
        "CommandOutcome".into(),
        vec![
            field("status", Shape::Enum("CommandStatus".into()), true),
            scalar_field("entityId", "entityId", Scalar::Id, false),
            scalar_field("eventCount", "eventCount", Scalar::Int, false),
            scalar_field("position", "position", Scalar::Int, false),
            scalar_field("errorCode", "errorCode", Scalar::String, false),
            scalar_field("errorDetail", "errorDetail", Scalar::Json, false),
            scalar_field("commandId", "commandId", Scalar::Id, false),
        ],
    );
    outputs.objects.insert(
        "PageInfo".into(),
        vec![
            scalar_field("hasNextPage", "hasNextPage", Scalar::Boolean, true),
            scalar_field("endCursor", "endCursor", Scalar::String, false),
        ],
    );
    outputs.enums.insert("SortDirection".into(), ["ASC", "DESC"].map(EnumValue::same).to_vec());
    outputs.objects.insert(
        "InboundOutcome".into(),
        vec![
            scalar_field("auditId", "auditId", Scalar::Id, true),
            field("outcomes", Shape::List(Box::new(Shape::Object("CommandOutcome".into())), true), true),
        ],
    );
    register_platform_types(outputs);
}

/// `PlatformPlugin` and its `PluginStatus`.
fn register_platform_types(outputs: &mut Types) {
    outputs.enums.insert("PluginStatus".into(), ["CONNECTED", "STALE", "DISCONNECTED"].map(EnumValue::same).to_vec());
    outputs.objects.insert(
        "PlatformPlugin".into(),
        vec![
            scalar_field("name", "name", Scalar::String, true),
            scalar_field("version", "version", Scalar::String, true),
            field("status", Shape::Enum("PluginStatus".into()), true),
            scalar_field("connectedAt", "connectedAt", Scalar::Float, false),
            scalar_field("lastHeartbeat", "lastHeartbeat", Scalar::Float, false),
            scalar_field("disconnectedAt", "disconnectedAt", Scalar::Float, false),
            scalar_field("components", "components", Scalar::Int, false),
            scalar_field("schema", "schema", Scalar::String, false),
        ],
    );
}

/// Where `Platform_Plugins` reads the plugin rows (`PlatformPlugin` shape:
/// `name`, `version`, `status`, `lastHeartbeat`, …).
pub trait PlatformRows: Send + Sync {
    fn plugin_rows(&self) -> futures::future::BoxFuture<'_, Result<Vec<Value>, EngineError>>;
    /// How often the plugins beat: three intervals without one is `STALE`.
    fn heartbeat_interval(&self) -> std::time::Duration;
}

/// The local platform's rows: the runtime's `Platform_Plugins` table.
struct RuntimeRows(Runtime);

impl PlatformRows for RuntimeRows {
    fn plugin_rows(&self) -> futures::future::BoxFuture<'_, Result<Vec<Value>, EngineError>> {
        Box::pin(async move {
            let request = ListRequest { first: 1000, ..ListRequest::default() };
            let page = self.0.stores().queries.list(reventless_core::PLATFORM_PLUGINS, &request).await?;
            Ok(page.rows.into_iter().map(|(_, row)| row).collect())
        })
    }

    fn heartbeat_interval(&self) -> std::time::Duration {
        reventless_core::HEARTBEAT_INTERVAL
    }
}

/// `Platform_Plugins`: the plugins with their lifecycle status (a connected
/// plugin whose heartbeat is three intervals old shows `STALE`).
fn platform_plugins_field(source: Arc<dyn PlatformRows>) -> Field {
    Field::new("Platform_Plugins", TypeRef::named_nn_list_nn("PlatformPlugin"), move |_| {
        let source = source.clone();
        FieldFuture::new(async move {
            let rows = source.plugin_rows().await.map_err(engine_error)?;
            let stale_after = u64::try_from(source.heartbeat_interval().as_millis() * 3).unwrap_or(u64::MAX);
            let now = reventless_spec::Timestamp::now().0;
            let rows = rows.into_iter().map(|mut row| {
                let beat = row.get("lastHeartbeat").and_then(Value::as_u64).unwrap_or(0);
                if row["status"] == "CONNECTED" && now.saturating_sub(beat) > stale_after {
                    row["status"] = "STALE".into();
                }
                FieldValue::owned_any(row)
            });
            Ok(Some(FieldValue::list(rows)))
        })
    })
}

/// The platform's own part of an API: `Platform_Plugins` over `source` (a
/// gateway in front of plugins hosted elsewhere answers it from its registry).
pub fn platform_schema(source: Arc<dyn PlatformRows>) -> Result<ApiSchema, BuildError> {
    let mut outputs = Types::default();
    register_platform_types(&mut outputs);
    let query = Object::new("Query").field(platform_plugins_field(source));
    let mutation = Object::new("Mutation").field(noop_field());
    let subscription = Subscription::new("Subscription").field(noop_subscription_field());
    let mut schema = Schema::build(query.type_name(), Some(mutation.type_name()), Some(subscription.type_name()));
    for (name, values) in &outputs.enums {
        schema = schema.register(graphql_enum(name, values));
    }
    let enums = Arc::new(Types { objects: Default::default(), enums: outputs.enums.clone() });
    for (name, fields) in &outputs.objects {
        schema = schema.register(output_object(name, fields, &enums));
    }
    let schema = schema.register(query).register(mutation).register(subscription).finish()?;
    Ok(ApiSchema { schema, documents: Default::default() })
}

/// A mutation before it gets its resolver.
struct MutationSpec {
    field: String,
    plugin: String,
    route: String,
    aggregate: bool,
    /// A unit variant (no fields): its input is `null`, serde's unit form.
    unit: bool,
    args: Vec<FieldShape>,
}

/// A read model before it gets its resolvers.
struct ReadModelSpec {
    plugin: String,
    singular: String,
    plural: String,
    table: String,
    row_type: String,
    roles: &'static [&'static str],
    /// Filterable top-level fields: (GraphQL argument name, serde key, operator, shape).
    filters: Vec<(String, String, FilterOp, Shape)>,
    /// Sortable fields: enum value (the field name in SCREAMING_SNAKE_CASE) → serde key.
    order_fields: Vec<(String, String)>,
    shown_on: Option<reventless_spec::ShownOn>,
}

/// A field of one read model's rows read from another read model's row with the same id.
struct ShownField {
    name: String,
    table: String,
    key: String,
    shape: Shape,
}

/// Builds the API of every plugin the runtime hosts, and registers each
/// plugin's own part (its schema fragment) with the runtime.
pub async fn build_schema(runtime: &Runtime) -> Result<ApiSchema, BuildError> {
    let api = build_schema_of(runtime, None)?;
    let names: Vec<String> = runtime.plugins().map(|plugin| plugin.name.clone()).collect();
    for name in names {
        let fragment = build_schema_of(runtime, Some(&name))?;
        runtime.register_schema_fragment(&name, fragment.sdl()).await;
    }
    Ok(api)
}

/// The API of the hosted plugins, or of only one of them.
pub fn build_schema_of(runtime: &Runtime, only: Option<&str>) -> Result<ApiSchema, BuildError> {
    let mut inputs = Types::default();
    let mut outputs = Types::default();
    register_common(&mut outputs);
    let mut mutations = Vec::new();
    let mut inbounds = Vec::new();
    let mut read_models = Vec::new();
    let mut with_async = Vec::new();

    for plugin in runtime.plugins().filter(|plugin| only.is_none_or(|name| plugin.name == name)) {
        for (route, handler) in plugin.routes.iter().filter(|(_, handler)| handler.in_api()) {
            let schema = serde_json::to_value(handler.command_schema())?;
            let variant = handler.variant_of(route).to_string();
            let variants = command_variants(&schema, &[variant.as_str()]);
            let fields_schema = variants.iter().find(|(name, _)| *name == variant).and_then(|(_, fields)| *fields);
            let mut walker =
                Walker::new(&schema, &plugin.name, "Input", &mut inputs, format!("{}_{route}", plugin.name));
            // A unit variant, or a unit struct (`struct Ping;`, schema `{type: null}`).
            let unit = variants.iter().any(|(name, fields)| {
                *name == variant
                    && fields.is_none_or(|fields| fields.get("type").and_then(Value::as_str) == Some("null"))
            });
            let args = match fields_schema {
                Some(fields) => walker.fields(fields)?,
                None => Vec::new(),
            };
            mutations.push(MutationSpec {
                field: format!("{}_{route}", plugin.name),
                plugin: plugin.name.clone(),
                route: route.clone(),
                aggregate: handler.manifest().kind == ComponentKind::Aggregate,
                unit,
                args,
            });
        }
        if plugin.routes.values().any(|handler| handler.manifest().is_async) {
            with_async.push(plugin.name.clone());
        }
        for projection in &plugin.projections {
            read_models.push(read_model_spec(&plugin.name, projection.handler.as_ref(), &mut outputs, &mut inputs)?);
        }
        // A task's runs (`<Plugin>_<Task>Run(id)`, `<Plugin>_<Task>Runs`) read like a read model's rows.
        for task in &plugin.tasks {
            read_models.push(read_model_spec(&plugin.name, task.runs_view().as_ref(), &mut outputs, &mut inputs)?);
        }
        for inbound in &plugin.inbound {
            let schema = serde_json::to_value(inbound.input_schema())?;
            let context = format!("{}_{}", plugin.name, inbound.name());
            let args = Walker::new(&schema, &plugin.name, "Input", &mut inputs, context).fields(&schema)?;
            inbounds.push(MutationSpec {
                field: format!("{}_{}", plugin.name, inbound.name()),
                plugin: plugin.name.clone(),
                route: inbound.name().to_string(),
                aggregate: false,
                unit: false,
                args,
            });
        }
    }

    let inputs = Arc::new(inputs);
    let no_mutations = mutations.is_empty() && inbounds.is_empty();
    let mut query = Object::new("Query");
    let mut mutation = Object::new("Mutation");
    let mut subscription = Subscription::new("Subscription");
    let mut builder_types: Vec<async_graphql::dynamic::Type> = Vec::new();

    for spec in mutations {
        mutation = mutation.field(mutation_field(spec, runtime.clone(), inputs.clone()));
    }
    for spec in inbounds {
        mutation = mutation.field(inbound_field(spec, runtime.clone(), inputs.clone()));
    }
    for spec in &read_models {
        register_read_model_types(spec, &mut outputs, &mut builder_types);
        query = query.field(single_row_field(spec, runtime.clone()));
        query = query.field(list_field(spec, runtime.clone(), inputs.clone()));
        subscription = subscription.field(changes_field(spec, runtime.clone()));
    }
    for plugin in with_async {
        query = query.field(command_outcome_field(plugin, runtime.clone()));
    }
    query = query.field(platform_plugins_field(Arc::new(RuntimeRows(runtime.clone()))));

    let mut schema = Schema::build(query.type_name(), Some(mutation.type_name()), Some(subscription.type_name()))
        .register(GqlScalar::new("JSON").description("Free-form JSON"));
    let mut enums = outputs.enums.clone();
    enums.extend(inputs.enums.clone());
    for (name, values) in &enums {
        schema = schema.register(graphql_enum(name, values));
    }
    let enums = Arc::new(Types { objects: Default::default(), enums });
    let mut shown_fields = shown_fields(&read_models, &outputs)?;
    for (name, fields) in &outputs.objects {
        let mut object = output_object(name, fields, &enums);
        for shown in shown_fields.remove(name).unwrap_or_default() {
            object = object.field(shown_field(shown, runtime.clone(), enums.clone()));
        }
        schema = schema.register(object);
    }
    for (name, fields) in inputs.objects.iter() {
        let mut object = InputObject::new(name);
        for field in fields {
            object = object.field(InputValue::new(&field.name, type_ref(&field.shape, field.required)));
        }
        schema = schema.register(object);
    }
    for extra in builder_types {
        schema = schema.register(extra);
    }
    if no_mutations {
        mutation = mutation.field(noop_field());
    }
    if read_models.is_empty() {
        subscription = subscription.field(noop_subscription_field());
    }
    let schema = schema.register(query).register(mutation).register(subscription).finish()?;
    Ok(ApiSchema { schema, documents: Default::default() })
}

/// `_noop: Boolean`: GraphQL wants at least one field on a root type.
fn noop_field() -> Field {
    Field::new("_noop", TypeRef::named(TypeRef::BOOLEAN), |_| {
        FieldFuture::new(async { Ok(Some(FieldValue::value(true))) })
    })
}

/// `_noop: Boolean` on the subscription root (a stream of nothing).
fn noop_subscription_field() -> SubscriptionField {
    SubscriptionField::new("_noop", TypeRef::named(TypeRef::BOOLEAN), |_| {
        SubscriptionFieldFuture::new(async { Ok(futures::stream::empty::<async_graphql::Result<FieldValue>>()) })
    })
}

/// A GraphQL enum of the values' GraphQL names (a value named apart from
/// its serde value says which one it stands for).
fn graphql_enum(name: &str, values: &[EnumValue]) -> Enum {
    values.iter().fold(Enum::new(name), |graphql_enum, value| {
        let mut item = EnumItem::new(&value.name);
        if value.name != value.value {
            item = item.description(format!("Stored as `{}`.", value.value));
        }
        graphql_enum.item(item)
    })
}

/// An object type whose fields read the parent's serde JSON (`enums` names
/// enum values).
fn output_object(name: &str, fields: &[FieldShape], enums: &Arc<Types>) -> Object {
    let mut object = Object::new(name);
    for field in fields {
        // One allocation shared by every resolution of the field.
        let resolved = Arc::new((field.shape.clone(), field.key.clone(), enums.clone()));
        let mut graphql_field = Field::new(&field.name, type_ref(&field.shape, field.required), move |ctx| {
            let resolved = resolved.clone();
            FieldFuture::new(async move {
                let (shape, key, enums) = &*resolved;
                let parent = ctx.parent_value.try_downcast_ref::<Value>()?;
                Ok(parent.get(key).and_then(|value| output_value(shape, value, enums)))
            })
        });
        if let Some(description) = &field.description {
            graphql_field = graphql_field.description(description);
        }
        object = object.field(graphql_field);
    }
    object
}

/// The fields read models show on other read models' rows, by target row type.
fn shown_fields(
    read_models: &[ReadModelSpec],
    outputs: &Types,
) -> Result<std::collections::BTreeMap<String, Vec<ShownField>>, BuildError> {
    let mut by_target: std::collections::BTreeMap<String, Vec<ShownField>> = Default::default();
    for source in read_models {
        let Some(shown) = source.shown_on else { continue };
        let target = read_models
            .iter()
            .find(|target| target.plugin == source.plugin && target.singular == shown.view)
            .ok_or_else(|| BuildError::UnknownShownOn {
                plugin: source.plugin.clone(),
                source_view: source.plural.clone(),
                target: shown.view.to_string(),
            })?;
        let shape = outputs
            .objects
            .get(&source.row_type)
            .and_then(|fields| fields.iter().find(|field| field.key == shown.key))
            .map(|field| field.shape.clone())
            .ok_or_else(|| BuildError::UnknownShownKey {
                plugin: source.plugin.clone(),
                source_view: source.plural.clone(),
                key: shown.key.to_string(),
            })?;
        by_target.entry(target.row_type.clone()).or_default().push(ShownField {
            name: shown.field.to_string(),
            table: source.table.clone(),
            key: shown.key.to_string(),
            shape,
        });
    }
    Ok(by_target)
}

/// Resolves a shown field by reading the source row with the parent's id; a
/// missing row is 0 for numbers (nothing counted yet) and null otherwise.
fn shown_field(shown: ShownField, runtime: Runtime, enums: Arc<Types>) -> Field {
    let counts = matches!(shown.shape, Shape::Scalar(Scalar::Int | Scalar::Float));
    let ShownField { name, table, key, shape } = shown;
    let description = format!("From `{table}` (the row with this id).");
    Field::new(name, type_ref(&shape, counts), move |ctx| {
        let (runtime, table, key, shape, enums) =
            (runtime.clone(), table.clone(), key.clone(), shape.clone(), enums.clone());
        FieldFuture::new(async move {
            let parent = ctx.parent_value.try_downcast_ref::<Value>()?;
            let Some(id) = parent.get("id").and_then(Value::as_str) else { return Ok(None) };
            let row = runtime.stores().queries.get(&table, id).await.map_err(|e| engine_error(e.into()))?;
            let value = row.and_then(|mut row| row.as_object_mut().and_then(|row| row.remove(&key)));
            Ok(match value {
                Some(value) => owned_output_value(&shape, value, &enums),
                None if counts => Some(FieldValue::value(0)),
                None => None,
            })
        })
    })
    .description(description)
}

fn caller(ctx: &ResolverContext<'_>) -> Caller {
    ctx.data::<Caller>().cloned().unwrap_or_default()
}

/// A mutation's arguments as the serde JSON of its input type.
fn args_to_json(ctx: &ResolverContext<'_>, args: &[FieldShape], inputs: &Types) -> Value {
    let mut input = serde_json::Map::new();
    for arg in args {
        if let Some(value) = ctx.args.get(&arg.name) {
            input.insert(arg.key.clone(), input_to_json(&arg.shape, value.as_value(), inputs));
        }
    }
    Value::Object(input)
}

fn mutation_field(spec: MutationSpec, runtime: Runtime, inputs: Arc<Types>) -> Field {
    let mut field_def = Field::new(spec.field.clone(), TypeRef::named_nn("CommandOutcome"), {
        let args = spec.args.clone();
        let (plugin, route, aggregate, unit) = (spec.plugin.clone(), spec.route.clone(), spec.aggregate, spec.unit);
        move |ctx| {
            let (runtime, inputs, args) = (runtime.clone(), inputs.clone(), args.clone());
            let (plugin, route) = (plugin.clone(), route.clone());
            FieldFuture::new(async move {
                // A unit variant's wire data is null (`"Suspend"` in serde), not a map.
                let input = if unit { Value::Null } else { args_to_json(&ctx, &args, &inputs) };
                let mut request = CommandRequest::new(plugin, route, input).caller(caller(&ctx));
                if aggregate {
                    request.entity_id = Some(ctx.args.try_get("id")?.string()?.to_string());
                }
                let outcome = runtime.execute(request).await.map_err(engine_error)?;
                Ok(Some(FieldValue::owned_any(outcome_json(&outcome))))
            })
        }
    });
    if spec.aggregate {
        field_def = field_def.argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)));
    }
    for arg in &spec.args {
        field_def = field_def.argument(InputValue::new(&arg.name, type_ref(&arg.shape, arg.required)));
    }
    field_def
}

/// An inbound translation's mutation: outside input in, outcomes out.
fn inbound_field(spec: MutationSpec, runtime: Runtime, inputs: Arc<Types>) -> Field {
    let mut field_def = Field::new(spec.field.clone(), TypeRef::named_nn("InboundOutcome"), {
        let args = spec.args.clone();
        let (plugin, name) = (spec.plugin.clone(), spec.route.clone());
        move |ctx| {
            let (runtime, inputs, args) = (runtime.clone(), inputs.clone(), args.clone());
            let (plugin, name) = (plugin.clone(), name.clone());
            FieldFuture::new(async move {
                let input = args_to_json(&ctx, &args, &inputs);
                let outcome =
                    runtime.translate_inbound(&plugin, &name, input, caller(&ctx)).await.map_err(engine_error)?;
                let outcomes: Vec<Value> = outcome.outcomes.iter().map(outcome_json).collect();
                Ok(Some(FieldValue::owned_any(json!({"auditId": outcome.audit_id, "outcomes": outcomes}))))
            })
        }
    });
    for arg in &spec.args {
        field_def = field_def.argument(InputValue::new(&arg.name, type_ref(&arg.shape, arg.required)));
    }
    field_def
}

/// The outcome as the `CommandOutcome` type reads it.
fn outcome_json(outcome: &CommandOutcome) -> Value {
    let mut json = serde_json::to_value(outcome).unwrap_or(Value::Null);
    if let Value::Object(fields) = &mut json {
        fields.remove("cause");
    }
    json
}

fn read_model_spec(
    plugin: &str,
    handler: &dyn ProjectionHandler,
    outputs: &mut Types,
    inputs: &mut Types,
) -> Result<ReadModelSpec, BuildError> {
    let (singular, plural) = handler.names();
    let schema = serde_json::to_value(handler.row_schema())?;
    let mut walker = Walker::new(&schema, plugin, "", outputs, format!("{plugin}_{plural}"));
    let row_type = walker.object_shape(&schema, singular)?.named().to_string();
    let fields = outputs.objects.get(&row_type).cloned().unwrap_or_default();
    // Enums of the row used in filters must exist as input types too (same name).
    let mut filters = Vec::new();
    let mut order_fields = Vec::new();
    for field in &fields {
        match &field.shape {
            Shape::Scalar(Scalar::Json) | Shape::Object(_) | Shape::List(..) => continue,
            Shape::Enum(name) => {
                if let Some(values) = outputs.enums.get(name) {
                    inputs.enums.insert(name.clone(), values.clone());
                }
            }
            Shape::Scalar(_) => {}
        }
        for (suffix, op) in filter_operators(&field.shape) {
            filters.push((format!("{}{suffix}", field.name), field.key.clone(), *op, field.shape.clone()));
        }
        order_fields.push((screaming_snake_case(&field.name), field.key.clone()));
    }
    Ok(ReadModelSpec {
        plugin: plugin.to_string(),
        singular: singular.to_string(),
        plural: plural.to_string(),
        table: handler.table().to_string(),
        row_type,
        roles: handler.roles(),
        filters,
        order_fields,
        shown_on: handler.shown_on(),
    })
}

/// The filter operators of a field of `shape`, by argument suffix: the same
/// set for every field of a kind (`id` included): equality and `Ne` for all,
/// `Gt/Gte/Lt/Lte` for numbers and strings, `Contains` for strings.
fn filter_operators(shape: &Shape) -> &'static [(&'static str, FilterOp)] {
    const EQUALITY: &[(&str, FilterOp)] = &[("", FilterOp::Eq), ("Ne", FilterOp::Ne)];
    const NUMBER: &[(&str, FilterOp)] = &[
        ("", FilterOp::Eq),
        ("Ne", FilterOp::Ne),
        ("Gt", FilterOp::Gt),
        ("Gte", FilterOp::Gte),
        ("Lt", FilterOp::Lt),
        ("Lte", FilterOp::Lte),
    ];
    const STRING: &[(&str, FilterOp)] = &[
        ("", FilterOp::Eq),
        ("Ne", FilterOp::Ne),
        ("Gt", FilterOp::Gt),
        ("Gte", FilterOp::Gte),
        ("Lt", FilterOp::Lt),
        ("Lte", FilterOp::Lte),
        ("Contains", FilterOp::Contains),
    ];
    match shape {
        Shape::Scalar(Scalar::Int | Scalar::Float) => NUMBER,
        Shape::Scalar(Scalar::String | Scalar::Id) => STRING,
        _ => EQUALITY,
    }
}

fn register_read_model_types(spec: &ReadModelSpec, outputs: &mut Types, extra: &mut Vec<async_graphql::dynamic::Type>) {
    let base = &spec.row_type;
    outputs.objects.insert(
        format!("{base}Edge"),
        vec![scalar_field("cursor", "cursor", Scalar::String, true), field("node", Shape::Object(base.clone()), true)],
    );
    outputs.objects.insert(
        format!("{base}Connection"),
        vec![
            field("edges", Shape::List(Box::new(Shape::Object(format!("{base}Edge"))), true), true),
            field("pageInfo", Shape::Object("PageInfo".into()), true),
            scalar_field("totalCount", "totalCount", Scalar::Int, true),
        ],
    );
    let mut filter = InputObject::new(format!("{base}Filter"));
    for (name, _, _, shape) in &spec.filters {
        filter = filter.field(InputValue::new(name, type_ref(shape, false)));
    }
    extra.push(filter.into());
    if !spec.order_fields.is_empty() {
        let mut order_field = Enum::new(format!("{base}OrderField"));
        for (name, _) in &spec.order_fields {
            order_field = order_field.item(EnumItem::new(name));
        }
        extra.push(order_field.into());
        let order = InputObject::new(format!("{base}OrderBy"))
            .field(InputValue::new("field", TypeRef::named_nn(format!("{base}OrderField"))))
            .field(
                InputValue::new("direction", TypeRef::named_nn("SortDirection"))
                    .default_value(GqlValue::Enum(async_graphql::Name::new("ASC"))),
            );
        extra.push(order.into());
    }
}

fn check_roles(ctx: &ResolverContext<'_>, roles: &[&str]) -> async_graphql::Result<()> {
    if roles.is_empty() || caller(ctx).has_any_role(roles) {
        return Ok(());
    }
    Err(error("FORBIDDEN", format!("AccessRefused: requires one of the roles {}", roles.join(", "))))
}

/// `<Plugin>_CommandOutcome(commandId)`: what became of an async command
/// answered `PENDING` (null when unknown or no longer kept).
fn command_outcome_field(plugin: String, runtime: Runtime) -> Field {
    Field::new(format!("{plugin}_CommandOutcome"), TypeRef::named("CommandOutcome"), move |ctx| {
        let (runtime, plugin) = (runtime.clone(), plugin.clone());
        FieldFuture::new(async move {
            let id = ctx.args.try_get("commandId")?.string()?.to_string();
            let record = runtime.command_outcome(&plugin, &id).await.map_err(engine_error)?;
            let json = record.map(|record| serde_json::to_value(record).unwrap_or(Value::Null));
            Ok(json.map(FieldValue::owned_any))
        })
    })
    .argument(InputValue::new("commandId", TypeRef::named_nn(TypeRef::ID)))
    .description("The outcome of an async command (answered PENDING), by its commandId.")
}

fn single_row_field(spec: &ReadModelSpec, runtime: Runtime) -> Field {
    let (table, roles) = (spec.table.clone(), spec.roles);
    Field::new(format!("{}_{}", spec.plugin, spec.singular), TypeRef::named(&spec.row_type), move |ctx| {
        let (runtime, table) = (runtime.clone(), table.clone());
        FieldFuture::new(async move {
            check_roles(&ctx, roles)?;
            let id = ctx.args.try_get("id")?.string()?.to_string();
            let row = runtime.stores().queries.get(&table, &id).await.map_err(|e| engine_error(e.into()))?;
            Ok(row.map(FieldValue::owned_any))
        })
    })
    .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
}

fn list_field(spec: &ReadModelSpec, runtime: Runtime, inputs: Arc<Types>) -> Field {
    let base = spec.row_type.clone();
    let (table, roles) = (spec.table.clone(), spec.roles);
    let filters = Arc::new(spec.filters.clone());
    let order_fields = Arc::new(spec.order_fields.clone());
    let mut list = Field::new(
        format!("{}_{}", spec.plugin, spec.plural),
        TypeRef::named_nn(format!("{base}Connection")),
        move |ctx| {
            let (runtime, table, filters, order_fields, inputs) =
                (runtime.clone(), table.clone(), filters.clone(), order_fields.clone(), inputs.clone());
            FieldFuture::new(async move {
                check_roles(&ctx, roles)?;
                let request = list_request(&ctx, &filters, &order_fields, &inputs)?;
                let page = runtime.stores().queries.list(&table, &request).await.map_err(|e| match e {
                    reventless_core::StoreError::Invalid(message) => error("BAD_USER_INPUT", message),
                    other => engine_error(other.into()),
                })?;
                // Maps built by hand: `json!` would serialize a copy of every row.
                let edges: Vec<Value> = page
                    .rows
                    .into_iter()
                    .map(|(id, row)| {
                        let cursor = Cursor::of(&id, &row, request.order_by.as_ref()).encode();
                        let mut edge = serde_json::Map::with_capacity(2);
                        edge.insert("cursor".to_string(), Value::String(cursor));
                        edge.insert("node".to_string(), row);
                        Value::Object(edge)
                    })
                    .collect();
                let mut connection = serde_json::Map::with_capacity(3);
                connection.insert("edges".to_string(), Value::Array(edges));
                connection.insert(
                    "pageInfo".to_string(),
                    json!({"hasNextPage": page.has_next_page, "endCursor": page.end_cursor}),
                );
                connection.insert("totalCount".to_string(), Value::from(page.total_count));
                Ok(Some(FieldValue::owned_any(Value::Object(connection))))
            })
        },
    )
    .argument(InputValue::new("filter", TypeRef::named(format!("{base}Filter"))))
    .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)).default_value(GqlValue::from(DEFAULT_PAGE)))
    .argument(InputValue::new("after", TypeRef::named(TypeRef::STRING)));
    if !spec.order_fields.is_empty() {
        list = list.argument(InputValue::new("orderBy", TypeRef::named(format!("{base}OrderBy"))));
    }
    list
}

/// An argument that was given and is not null.
fn given<'a>(ctx: &'a ResolverContext<'_>, name: &str) -> Option<async_graphql::dynamic::ValueAccessor<'a>> {
    ctx.args.get(name).filter(|value| !value.is_null())
}

fn list_request(
    ctx: &ResolverContext<'_>,
    filters: &[(String, String, FilterOp, Shape)],
    order_fields: &[(String, String)],
    inputs: &Types,
) -> async_graphql::Result<ListRequest> {
    let mut request = ListRequest::default();
    if let Some(filter) = given(ctx, "filter") {
        let filter = filter.object()?;
        for (name, key, op, shape) in filters {
            if let Some(value) = filter.get(name).filter(|value| !value.is_null()) {
                let value = input_to_json(shape, value.as_value(), inputs);
                request.filters.push(Filter { field: key.clone(), op: *op, value });
            }
        }
    }
    if let Some(order) = given(ctx, "orderBy") {
        let order = order.object()?;
        let field = order.try_get("field")?.enum_name()?.to_string();
        let key = order_fields
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, key)| key.clone())
            .ok_or_else(|| error("BAD_USER_INPUT", format!("cannot order by {field}")))?;
        let descending =
            order.get("direction").map(|d| d.enum_name().map(|n| n == "DESC")).transpose()?.unwrap_or(false);
        request.order_by = Some(OrderBy { field: key, descending });
    }
    let first = given(ctx, "first").map(|f| f.i64()).transpose()?.unwrap_or(DEFAULT_PAGE);
    if !(0..=MAX_PAGE).contains(&first) {
        return Err(error("BAD_USER_INPUT", format!("first must be between 0 and {MAX_PAGE}, not {first}")));
    }
    request.first = usize::try_from(first).unwrap_or(0);
    request.after = given(ctx, "after").map(|a| a.string().map(str::to_string)).transpose()?;
    Ok(request)
}

fn changes_field(spec: &ReadModelSpec, runtime: Runtime) -> SubscriptionField {
    let (table, roles) = (spec.table.clone(), spec.roles);
    SubscriptionField::new(
        format!("{}_on{}Changed", spec.plugin, spec.singular),
        TypeRef::named(&spec.row_type),
        move |ctx| {
            let (runtime, table) = (runtime.clone(), table.clone());
            SubscriptionFieldFuture::new(async move {
                check_roles(&ctx, roles)?;
                let id = ctx.args.try_get("id")?.string()?.to_string();
                let changes = runtime.row_changes();
                let stream = futures::stream::unfold(changes, move |mut changes| {
                    let (runtime, table, id) = (runtime.clone(), table.clone(), id.clone());
                    async move {
                        loop {
                            match changes.recv().await {
                                Ok(change) if change.table == table && change.id == id => {
                                    let row = runtime.stores().queries.get(&table, &id).await;
                                    let item = row
                                        .map(|row| row.map(FieldValue::owned_any).unwrap_or(FieldValue::NULL))
                                        .map_err(|e| engine_error(e.into()));
                                    return Some((item, changes));
                                }
                                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                            }
                        }
                    }
                });
                Ok(stream.boxed())
            })
        },
    )
    .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
}

/// Executes a request as `caller`. Errors found before execution (unknown
/// fields, wrong argument types) carry `extensions.code`:
/// `BAD_USER_INPUT` when about an argument or variable, else
/// `GRAPHQL_VALIDATION_FAILED`.
pub async fn execute(schema: &ApiSchema, mut request: Request, caller: Caller) -> Response {
    schema.documents.prepare(&mut request);
    let mut response = schema.schema.execute(request.data(caller)).await;
    for error in &mut response.errors {
        let has_code = error.extensions.as_ref().is_some_and(|e| e.get("code").is_some());
        if has_code {
            continue;
        }
        let message = error.message.to_ascii_lowercase();
        let code = if message.contains("argument") || message.contains("variable") || message.contains("invalid value")
        {
            "BAD_USER_INPUT"
        } else if message.contains("parse") || message.contains("expected") {
            "GRAPHQL_PARSE_FAILED"
        } else {
            "GRAPHQL_VALIDATION_FAILED"
        };
        error.extensions.get_or_insert_with(Default::default).set("code", code);
    }
    response
}
