//! Composing the plugins' schema fragments into the one schema the gateway
//! serves: root types (`Query`, `Mutation`) get the union of the plugins'
//! fields; every other type, shared or not, must read the same in every
//! fragment that defines it (shared engine types do), else it is a conflict.
use std::collections::BTreeMap;
use std::fmt::Write;

use async_graphql::parser::types::{
    ConstDirective, DirectiveDefinition, FieldDefinition, InputValueDefinition, TypeDefinition, TypeKind,
    TypeSystemDefinition,
};
use async_graphql::parser::{Positioned, parse_schema};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComposeError {
    #[error("plugin `{plugin}`: its schema fragment does not parse: {message}")]
    Syntax { plugin: String, message: String },
    #[error("type `{name}` reads differently in plugins `{first}` and `{second}`")]
    TypeConflict { name: String, first: String, second: String },
    #[error("field `{root}.{field}` is defined differently by plugins `{first}` and `{second}`")]
    FieldConflict { root: String, field: String, first: String, second: String },
}

/// One root type being merged: its description and fields in first-seen order.
#[derive(Default)]
struct Root {
    description: Option<String>,
    fields: Vec<(String, String, String)>, // (name, printed, plugin)
}

/// Composes fragments (plugin → SDL) into one SDL document.
pub fn compose(fragments: &BTreeMap<String, String>) -> Result<String, ComposeError> {
    let mut parsed = Vec::new();
    for (plugin, sdl) in fragments {
        let document =
            parse_schema(sdl).map_err(|e| ComposeError::Syntax { plugin: plugin.clone(), message: e.to_string() })?;
        parsed.push((plugin, document));
    }
    let mut root_names = vec!["Query".to_string(), "Mutation".to_string(), "Subscription".to_string()];
    for (_, document) in &parsed {
        for definition in &document.definitions {
            if let TypeSystemDefinition::Schema(schema) = definition {
                let schema = &schema.node;
                for (slot, name) in [&schema.query, &schema.mutation, &schema.subscription].into_iter().enumerate() {
                    if let Some(name) = name {
                        root_names[slot] = name.node.to_string();
                    }
                }
            }
        }
    }
    let mut roots: BTreeMap<String, Root> = BTreeMap::new();
    // Other types and directives: key → (printed, plugin), in first-seen order.
    let mut others: Vec<(String, String, String)> = Vec::new();
    for (plugin, document) in &parsed {
        for definition in &document.definitions {
            match definition {
                TypeSystemDefinition::Schema(_) => {}
                TypeSystemDefinition::Type(ty) => {
                    let ty = &ty.node;
                    let name = ty.name.node.to_string();
                    if let (true, TypeKind::Object(object)) = (root_names.contains(&name), &ty.kind) {
                        let root = roots.entry(name.clone()).or_default();
                        if root.description.is_none() {
                            root.description = ty.description.as_ref().map(|d| d.node.clone());
                        }
                        for field in &object.fields {
                            let field_name = field.node.name.node.to_string();
                            let printed = field_text(&field.node, "  ");
                            match root.fields.iter().find(|(known, _, _)| *known == field_name) {
                                Some((_, known, _)) if *known == printed => {}
                                Some((_, _, first)) => {
                                    return Err(ComposeError::FieldConflict {
                                        root: name,
                                        field: field_name,
                                        first: first.clone(),
                                        second: plugin.to_string(),
                                    });
                                }
                                None => root.fields.push((field_name, printed, plugin.to_string())),
                            }
                        }
                    } else {
                        merge_other(&mut others, name, type_text(ty), plugin)?;
                    }
                }
                TypeSystemDefinition::Directive(directive) => {
                    let key = format!("@{}", directive.node.name.node);
                    let sdl = &fragments[plugin.as_str()];
                    merge_other(&mut others, key, directive_definition_text(&directive.node, sdl), plugin)?;
                }
            }
        }
    }
    let mut out = String::new();
    let present = |slot: usize| roots.contains_key(&root_names[slot]);
    let defaults = ["Query", "Mutation", "Subscription"];
    if (0..3).any(|slot| present(slot) && root_names[slot] != defaults[slot]) {
        out.push_str("schema {\n");
        for (slot, keyword) in ["query", "mutation", "subscription"].iter().enumerate() {
            if present(slot) {
                let _ = writeln!(out, "  {keyword}: {}", root_names[slot]);
            }
        }
        out.push_str("}\n\n");
    }
    for (_, printed, _) in &others {
        out.push_str(printed);
        out.push('\n');
    }
    for name in &root_names {
        if let Some(root) = roots.get(name) {
            description_text(&mut out, root.description.as_deref(), "");
            let _ = writeln!(out, "type {name} {{");
            for (_, printed, _) in &root.fields {
                out.push_str(printed);
            }
            out.push_str("}\n\n");
        }
    }
    Ok(out)
}

fn merge_other(
    others: &mut Vec<(String, String, String)>,
    key: String,
    printed: String,
    plugin: &str,
) -> Result<(), ComposeError> {
    match others.iter().find(|(known, _, _)| *known == key) {
        Some((_, known, _)) if *known == printed => Ok(()),
        Some((_, _, first)) => {
            Err(ComposeError::TypeConflict { name: key, first: first.clone(), second: plugin.to_string() })
        }
        None => {
            others.push((key, printed, plugin.to_string()));
            Ok(())
        }
    }
}

fn string_literal(text: &str) -> String {
    // JSON's string escapes are all valid GraphQL string escapes.
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

fn description_text(out: &mut String, description: Option<&str>, indent: &str) {
    if let Some(description) = description {
        let _ = writeln!(out, "{indent}{}", string_literal(description));
    }
}

fn directives_text(directives: &[Positioned<ConstDirective>]) -> String {
    directives.iter().map(|d| super::directive_text(&d.node.name.node, &d.node.arguments)).collect()
}

fn input_value_text(value: &InputValueDefinition) -> String {
    let mut out = String::new();
    if let Some(description) = &value.description {
        let _ = write!(out, "{} ", string_literal(&description.node));
    }
    let _ = write!(out, "{}: {}", value.name.node, value.ty.node);
    if let Some(default) = &value.default_value {
        let _ = write!(out, " = {}", default.node);
    }
    out.push_str(&directives_text(&value.directives));
    out
}

fn arguments_text(arguments: &[Positioned<InputValueDefinition>]) -> String {
    if arguments.is_empty() {
        return String::new();
    }
    let list: Vec<String> = arguments.iter().map(|a| input_value_text(&a.node)).collect();
    format!("({})", list.join(", "))
}

fn field_text(field: &FieldDefinition, indent: &str) -> String {
    let mut out = String::new();
    description_text(&mut out, field.description.as_ref().map(|d| d.node.as_str()), indent);
    let _ = writeln!(
        out,
        "{indent}{}{}: {}{}",
        field.name.node,
        arguments_text(&field.arguments),
        field.ty.node,
        directives_text(&field.directives)
    );
    out
}

fn type_text(ty: &TypeDefinition) -> String {
    let mut out = String::new();
    description_text(&mut out, ty.description.as_ref().map(|d| d.node.as_str()), "");
    let extend = if ty.extend { "extend " } else { "" };
    let name = &ty.name.node;
    let directives = directives_text(&ty.directives);
    let implements = |list: &[Positioned<async_graphql::Name>]| {
        if list.is_empty() {
            String::new()
        } else {
            format!(" implements {}", list.iter().map(|n| n.node.to_string()).collect::<Vec<_>>().join(" & "))
        }
    };
    let mut fields_block = |keyword: &str, header_extra: String, fields: &[Positioned<FieldDefinition>]| {
        let _ = writeln!(out, "{extend}{keyword} {name}{header_extra}{directives} {{");
        for field in fields {
            out.push_str(&field_text(&field.node, "  "));
        }
        out.push_str("}\n");
    };
    match &ty.kind {
        TypeKind::Object(object) => fields_block("type", implements(&object.implements), &object.fields),
        TypeKind::Interface(interface) => {
            fields_block("interface", implements(&interface.implements), &interface.fields)
        }
        TypeKind::Scalar => {
            let _ = writeln!(out, "{extend}scalar {name}{directives}");
        }
        TypeKind::Union(union) => {
            let members: Vec<String> = union.members.iter().map(|m| m.node.to_string()).collect();
            let _ = writeln!(out, "{extend}union {name}{directives} = {}", members.join(" | "));
        }
        TypeKind::Enum(values) => {
            let _ = writeln!(out, "{extend}enum {name}{directives} {{");
            for value in &values.values {
                description_text(&mut out, value.node.description.as_ref().map(|d| d.node.as_str()), "  ");
                let _ = writeln!(out, "  {}{}", value.node.value.node, directives_text(&value.node.directives));
            }
            out.push_str("}\n");
        }
        TypeKind::InputObject(input) => {
            let _ = writeln!(out, "{extend}input {name}{directives} {{");
            for field in &input.fields {
                let _ = writeln!(out, "  {}", input_value_text(&field.node));
            }
            out.push_str("}\n");
        }
    }
    out
}

/// `source` is the fragment the definition comes from: the parser (7.2)
/// reports every directive as `repeatable`, so the keyword is looked up in
/// the definition's own text.
fn directive_definition_text(directive: &DirectiveDefinition, source: &str) -> String {
    let header = format!("directive @{}", directive.name.node);
    let repeatable = source.find(&header).is_some_and(|start| {
        let rest = &source[start..];
        let end = rest.find(" on ").unwrap_or(rest.len());
        rest[..end].split(|c: char| !c.is_ascii_alphanumeric()).any(|word| word == "repeatable")
    });
    let mut out = String::new();
    description_text(&mut out, directive.description.as_ref().map(|d| d.node.as_str()), "");
    let locations: Vec<String> = directive.locations.iter().map(|l| screaming(&format!("{:?}", l.node))).collect();
    let _ = writeln!(
        out,
        "directive @{}{}{} on {}",
        directive.name.node,
        arguments_text(&directive.arguments),
        if repeatable { " repeatable" } else { "" },
        locations.join(" | ")
    );
    out
}

/// `FieldDefinition` → `FIELD_DEFINITION` (directive locations).
fn screaming(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fragments(list: &[(&str, &str)]) -> BTreeMap<String, String> {
        list.iter().map(|(p, s)| (p.to_string(), s.to_string())).collect()
    }

    #[test]
    fn root_fields_are_united_and_shared_types_kept_once() {
        let composed = compose(&fragments(&[
            (
                "Catalog",
                "type PageInfo { hasNextPage: Boolean! }\ntype Query { Catalog_Products(first: Int = 10): [String!]! }\ntype Mutation { Catalog_Add(name: String!): Boolean! }",
            ),
            ("Ordering", "\"pages\"\ntype PageInfo { hasNextPage: Boolean! }\n"),
        ]));
        assert!(matches!(composed, Err(ComposeError::TypeConflict { ref name, .. }) if name == "PageInfo"));
        let composed = compose(&fragments(&[
            ("Catalog", "type PageInfo { hasNextPage: Boolean! }\ntype Query { Catalog_Products(first: Int = 10): [String!]! }\ntype Mutation { Catalog_Add(name: String!): Boolean! }"),
            ("Ordering", "type PageInfo { hasNextPage: Boolean! }\n\"Reads\"\ntype Query { \"all orders\" Ordering_Orders: [String!]! }\nenum Lifecycle { OPEN SHIPPED }\ndirective @oneOf on INPUT_OBJECT\ndirective @tag(name: String!) repeatable on FIELD_DEFINITION"),
        ]))
        .unwrap();
        let document = parse_schema(&composed).unwrap();
        assert_eq!(composed.matches("type PageInfo").count(), 1);
        assert!(composed.contains("Catalog_Products(first: Int = 10): [String!]!"));
        assert!(composed.contains("\"all orders\"\n  Ordering_Orders: [String!]!"));
        assert!(composed.contains("directive @oneOf on INPUT_OBJECT\n"), "{composed}");
        assert!(composed.contains("directive @tag(name: String!) repeatable on FIELD_DEFINITION"), "{composed}");
        assert_eq!(composed.matches("type Query {").count(), 1);
        assert_eq!(document.definitions.len(), 6);
    }

    #[test]
    fn a_root_field_two_plugins_define_differently_is_a_conflict() {
        let result =
            compose(&fragments(&[("A", "type Query { shared: Int }"), ("B", "type Query { shared: String }")]));
        assert_eq!(
            result,
            Err(ComposeError::FieldConflict {
                root: "Query".into(),
                field: "shared".into(),
                first: "A".into(),
                second: "B".into()
            })
        );
        // The same definition twice is no conflict.
        assert!(
            compose(&fragments(&[("A", "type Query { shared: Int }"), ("B", "type Query { shared: Int }")])).is_ok()
        );
    }

    #[test]
    fn a_fragment_that_does_not_parse_is_named() {
        let result = compose(&fragments(&[("A", "type Query { broken")]));
        assert!(matches!(result, Err(ComposeError::Syntax { ref plugin, .. }) if plugin == "A"));
    }
}
