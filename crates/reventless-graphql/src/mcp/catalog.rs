//! What an MCP client may use, read off the API's GraphQL schema: a tool per
//! command mutation, resources per read model.
//!
//! The schema (SDL) is the description both platforms hold: locally the
//! runtime's [`ApiSchema`](crate::ApiSchema), on AWS the gateway's
//! composition of the plugins' fragments. Its argument and row types were
//! generated from the commands' and rows' schemars schemas ([`crate::shape`]),
//! so the JSON Schema of a tool's arguments is those types printed back as
//! JSON Schema (GraphQL names: camelCase fields, SCREAMING_SNAKE_CASE enum
//! values), exactly what the call takes.
use std::collections::{BTreeMap, BTreeSet};

use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{
    BaseType, FieldDefinition, InputValueDefinition, Type, TypeKind, TypeSystemDefinition,
};
use serde_json::{Map, Value, json};

/// The type every command mutation answers.
const OUTCOME_TYPE: &str = "CommandOutcome";
/// How deep nested row objects are selected.
const MAX_DEPTH: usize = 6;

/// A tool: one command mutation.
#[derive(Debug, Clone)]
pub struct Tool {
    /// The mutation's name, also the tool's (`Catalog_Product_ChangePrice`).
    pub name: String,
    /// What the tool does, for the assistant.
    pub description: String,
    /// The JSON Schema of its arguments (an object).
    pub input_schema: Value,
    /// Its arguments: name, GraphQL type (for the variable), required.
    pub arguments: Vec<(String, String, bool)>,
    /// The outcome's selection set.
    pub selection: String,
}

/// A read model: rows by id and in pages.
#[derive(Debug, Clone)]
pub struct ReadModel {
    /// The owning plugin (`Catalog`).
    pub plugin: String,
    /// The list's name after the plugin (`Categories`).
    pub plural: String,
    /// The query of one row (`Catalog_Category`), when there is one.
    pub single_field: Option<String>,
    /// The query of a page (`Catalog_Categories`).
    pub list_field: String,
    /// The selection set of a row.
    pub selection: String,
    /// The row type's description, if any.
    pub description: Option<String>,
}

/// The tools and read models of one API.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// By name.
    pub tools: BTreeMap<String, Tool>,
    /// In schema order.
    pub read_models: Vec<ReadModel>,
}

/// The schema does not parse (a composed schema always does).
#[derive(Debug, thiserror::Error)]
#[error("the API schema does not parse: {0}")]
pub struct CatalogError(String);

/// The types of a schema by name.
#[derive(Default)]
struct Types<'a> {
    objects: BTreeMap<String, &'a [async_graphql::parser::Positioned<FieldDefinition>]>,
    inputs: BTreeMap<String, &'a [async_graphql::parser::Positioned<InputValueDefinition>]>,
    enums: BTreeMap<String, Vec<String>>,
    descriptions: BTreeMap<String, String>,
}

impl Catalog {
    /// The catalog of the API described by `sdl`.
    pub fn from_sdl(sdl: &str) -> Result<Self, CatalogError> {
        let document = parse_schema(sdl).map_err(|e| CatalogError(e.to_string()))?;
        let mut types = Types::default();
        let (mut query_root, mut mutation_root) = ("Query".to_string(), "Mutation".to_string());
        for definition in &document.definitions {
            match definition {
                TypeSystemDefinition::Schema(schema) => {
                    if let Some(name) = &schema.node.query {
                        query_root = name.node.to_string();
                    }
                    if let Some(name) = &schema.node.mutation {
                        mutation_root = name.node.to_string();
                    }
                }
                TypeSystemDefinition::Type(ty) => {
                    let ty = &ty.node;
                    let name = ty.name.node.to_string();
                    if let Some(description) = &ty.description {
                        types.descriptions.insert(name.clone(), description.node.clone());
                    }
                    match &ty.kind {
                        TypeKind::Object(object) => {
                            types.objects.insert(name, &object.fields);
                        }
                        TypeKind::InputObject(input) => {
                            types.inputs.insert(name, &input.fields);
                        }
                        TypeKind::Enum(values) => {
                            let values = values.values.iter().map(|v| v.node.value.node.to_string()).collect();
                            types.enums.insert(name, values);
                        }
                        _ => {}
                    }
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        let mut catalog = Catalog::default();
        for field in types.objects.get(&mutation_root).copied().unwrap_or_default() {
            let field = &field.node;
            if named(&field.ty.node) == OUTCOME_TYPE {
                let tool = tool(field, &types);
                catalog.tools.insert(tool.name.clone(), tool);
            }
        }
        let queries = types.objects.get(&query_root).copied().unwrap_or_default();
        for field in queries {
            let field = &field.node;
            let Some(row) = named(&field.ty.node).strip_suffix("Connection") else { continue };
            let name = field.name.node.to_string();
            let Some((plugin, plural)) = name.split_once('_') else { continue };
            let single_field = queries
                .iter()
                .map(|q| &q.node)
                .find(|q| named(&q.ty.node) == row && q.arguments.iter().any(|a| a.node.name.node == "id"));
            catalog.read_models.push(ReadModel {
                plugin: plugin.to_string(),
                plural: plural.to_string(),
                single_field: single_field.map(|q| q.name.node.to_string()),
                list_field: name.clone(),
                selection: selection(row, &types, 0),
                description: types.descriptions.get(row).cloned(),
            });
        }
        Ok(catalog)
    }

    /// The read model `<plugin>/<plural>` (names compared without case: URIs
    /// pass through clients that lowercase their host part).
    pub fn read_model(&self, plugin: &str, plural: &str) -> Option<&ReadModel> {
        self.read_models.iter().find(|m| m.plugin.eq_ignore_ascii_case(plugin) && m.plural.eq_ignore_ascii_case(plural))
    }
}

/// The named type under lists and non-null.
fn named(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(inner) => named(inner),
    }
}

fn tool(field: &FieldDefinition, types: &Types<'_>) -> Tool {
    let name = field.name.node.to_string();
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut arguments = Vec::new();
    for argument in &field.arguments {
        let argument = &argument.node;
        let arg_name = argument.name.node.to_string();
        let mut schema = json_schema(&argument.ty.node, types, &mut BTreeSet::new());
        if let Some(description) = &argument.description {
            schema["description"] = json!(description.node);
        } else if arg_name == "id" {
            schema["description"] = json!("The id of the entity the command is for.");
        }
        let is_required = !argument.ty.node.nullable && argument.default_value.is_none();
        if is_required {
            required.push(json!(arg_name));
        }
        properties.insert(arg_name.clone(), schema);
        arguments.push((arg_name, argument.ty.node.to_string(), is_required));
    }
    let description = match &field.description {
        Some(description) => description.node.clone(),
        None => describe_command(&name, arguments.iter().any(|(arg, _, _)| arg == "id")),
    };
    Tool {
        description,
        input_schema: json!({
            "type": "object", "properties": properties, "required": required, "additionalProperties": false,
        }),
        arguments,
        selection: selection(OUTCOME_TYPE, types, 0),
        name,
    }
}

/// A description from the naming rules: `<Plugin>_<Aggregate>_<Variant>`
/// (with an entity id) or `<Plugin>_<Command>`.
fn describe_command(name: &str, with_id: bool) -> String {
    let parts: Vec<&str> = name.splitn(3, '_').collect();
    match (parts.as_slice(), with_id) {
        ([plugin, aggregate, variant], true) => format!(
            "Sends the command {variant} to the {aggregate} with the given id (plugin {plugin}). \
             Answers the outcome: status ACCEPTED, REJECTED (with errorCode) or PENDING."
        ),
        ([plugin, command, ..], _) => format!(
            "Sends the command {command} (plugin {plugin}). \
             Answers the outcome: status ACCEPTED, REJECTED (with errorCode) or PENDING."
        ),
        _ => format!("Sends the command {name}."),
    }
}

/// The JSON Schema of a value of GraphQL type `ty` (input types only).
fn json_schema(ty: &Type, types: &Types<'_>, seen: &mut BTreeSet<String>) -> Value {
    let mut schema = match &ty.base {
        BaseType::List(inner) => json!({"type": "array", "items": json_schema(inner, types, seen)}),
        BaseType::Named(name) => named_schema(name.as_str(), types, seen),
    };
    if ty.nullable
        && let Some(kind) = schema.get("type").cloned()
    {
        schema["type"] = json!([kind, "null"]);
        if let Some(Value::Array(values)) = schema.get_mut("enum") {
            values.push(Value::Null);
        }
    }
    schema
}

fn named_schema(name: &str, types: &Types<'_>, seen: &mut BTreeSet<String>) -> Value {
    let mut schema = match name {
        "ID" | "String" => json!({"type": "string"}),
        "Int" => json!({"type": "integer"}),
        "Float" => json!({"type": "number"}),
        "Boolean" => json!({"type": "boolean"}),
        _ if types.enums.contains_key(name) => json!({"type": "string", "enum": types.enums[name]}),
        // A recursive input type is described once; deeper levels take any object.
        _ if seen.contains(name) => json!({"type": "object"}),
        _ => match types.inputs.get(name) {
            Some(fields) => {
                seen.insert(name.to_string());
                let mut properties = Map::new();
                let mut required = Vec::new();
                for field in *fields {
                    let field = &field.node;
                    let mut schema = json_schema(&field.ty.node, types, seen);
                    if let Some(description) = &field.description {
                        schema["description"] = json!(description.node);
                    }
                    if !field.ty.node.nullable && field.default_value.is_none() {
                        required.push(json!(field.name.node.as_str()));
                    }
                    properties.insert(field.name.node.to_string(), schema);
                }
                seen.remove(name);
                json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
            }
            // JSON and other free-form scalars: any value.
            None => json!({}),
        },
    };
    if let Some(description) = types.descriptions.get(name) {
        schema["description"] = json!(description);
    }
    schema
}

/// Every field of an object type without required arguments, objects
/// nested up to [`MAX_DEPTH`].
fn selection(type_name: &str, types: &Types<'_>, depth: usize) -> String {
    let Some(fields) = types.objects.get(type_name) else { return String::new() };
    let mut picked = Vec::new();
    for field in *fields {
        let field = &field.node;
        if field.arguments.iter().any(|a| !a.node.ty.node.nullable && a.node.default_value.is_none()) {
            continue;
        }
        let inner = named(&field.ty.node);
        if types.objects.contains_key(inner) {
            if depth < MAX_DEPTH {
                let nested = selection(inner, types, depth + 1);
                if !nested.is_empty() {
                    picked.push(format!("{} {{ {nested} }}", field.name.node));
                }
            }
        } else {
            picked.push(field.name.node.to_string());
        }
    }
    picked.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDL: &str = r#"
        enum Priority { NORMAL ON_HOLD }
        "A support ticket."
        type SupportTicket { id: ID! title: String! tags: [String!]! priority: Priority owner: Person }
        type Person { name: String! }
        type SupportTicketConnection { edges: [SupportTicketEdge!]! totalCount: Int! }
        type SupportTicketEdge { cursor: String! node: SupportTicket! }
        enum CommandStatus { ACCEPTED REJECTED }
        type CommandOutcome { status: CommandStatus! errorCode: String errorDetail: JSON }
        input Line { sku: String! quantity: Int! }
        scalar JSON
        type Query {
            Support_Ticket(id: ID!): SupportTicket
            Support_Tickets(first: Int = 20, after: String): SupportTicketConnection!
            Platform_Plugins: [String!]!
        }
        type Mutation {
            Support_Ticket_Open(id: ID!, title: String!, priority: Priority, lines: [Line!]): CommandOutcome!
            Support_Ping: CommandOutcome!
            Support_Translate(text: String!): String!
        }
    "#;

    #[test]
    fn command_mutations_become_tools_with_json_schemas() {
        let catalog = Catalog::from_sdl(SDL).unwrap();
        assert_eq!(catalog.tools.keys().collect::<Vec<_>>(), ["Support_Ping", "Support_Ticket_Open"]);
        let open = &catalog.tools["Support_Ticket_Open"];
        assert_eq!(open.input_schema["required"], json!(["id", "title"]));
        assert_eq!(
            open.input_schema["properties"]["priority"],
            json!({"type": ["string", "null"], "enum": ["NORMAL", "ON_HOLD", null]})
        );
        let lines = &open.input_schema["properties"]["lines"];
        assert_eq!(lines["type"], json!(["array", "null"]));
        assert_eq!(lines["items"]["required"], json!(["sku", "quantity"]));
        assert_eq!(lines["items"]["properties"]["quantity"], json!({"type": "integer"}));
        assert_eq!(open.arguments[3], ("lines".to_string(), "[Line!]".to_string(), false));
        assert_eq!(open.selection, "status errorCode errorDetail");
        assert!(open.description.contains("Open") && open.description.contains("Ticket"));
    }

    #[test]
    fn connections_become_read_models_with_full_selections() {
        let catalog = Catalog::from_sdl(SDL).unwrap();
        assert_eq!(catalog.read_models.len(), 1);
        let tickets = catalog.read_model("support", "TICKETS").unwrap();
        assert_eq!(tickets.single_field.as_deref(), Some("Support_Ticket"));
        assert_eq!(tickets.list_field, "Support_Tickets");
        assert_eq!(tickets.selection, "id title tags priority owner { name }");
        assert_eq!(tickets.description.as_deref(), Some("A support ticket."));
    }

    #[test]
    fn a_schema_that_does_not_parse_is_an_error() {
        assert!(Catalog::from_sdl("type {").is_err());
    }
}
