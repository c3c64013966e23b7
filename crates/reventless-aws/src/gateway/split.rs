//! Routing one GraphQL request through the gateway: the operation's root
//! fields are grouped by the plugin their name starts with (`Catalog_…` →
//! `Catalog`), and each group becomes a document of its own, carrying only
//! the variables and fragments it uses, so every plugin validates exactly
//! its part. Introspection fields go to every plugin (their answers merge);
//! `__typename` is answered by the gateway.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use async_graphql::Name;
use async_graphql::parser::types::{
    Directive, DocumentOperations, ExecutableDocument, FragmentDefinition, InlineFragment, OperationDefinition,
    OperationType, Selection, SelectionSet,
};
use async_graphql::parser::{Positioned, parse_query};
use async_graphql_value::Value as GqlValue;
use serde_json::{Map, Value};

/// Who answers a root field.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    Plugin(String),
    /// `__schema` / `__type`: every plugin, answers merged.
    Introspection,
}

/// One plugin's part of the request.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub target: Target,
    pub query: String,
    pub operation_name: Option<String>,
    pub variables: Map<String, Value>,
}

/// A request split into parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Routing {
    /// Mutation parts run one after the other (GraphQL runs mutation fields serially).
    pub serial: bool,
    /// The root type's name (`__typename` at the root).
    pub root_type: &'static str,
    /// Response keys answered with the root type's name.
    pub typename_keys: Vec<String>,
    /// Response keys in document order (the merged answer keeps it).
    pub keys: Vec<String>,
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("the query does not parse: {0}")]
    Syntax(String),
    #[error("the document has no operation named `{0}`")]
    UnknownOperation(String),
    #[error("the document has several operations: name the one to run (operationName)")]
    OperationNameRequired,
    #[error("fragment `{0}` is not defined")]
    UnknownFragment(String),
    #[error("fragment `{0}` spreads itself")]
    FragmentCycle(String),
    #[error("root field `{0}` names no plugin (root fields are `<Plugin>_<name>`)")]
    Unroutable(String),
}

/// Splits `query` into per-target parts.
pub fn route(query: &str, operation_name: Option<&str>, variables: &Map<String, Value>) -> Result<Routing, RouteError> {
    let document = parse_query(query).map_err(|e| RouteError::Syntax(e.to_string()))?;
    let operation = select_operation(&document, operation_name)?;
    let mut groups: Vec<(Target, Vec<Positioned<Selection>>)> = Vec::new();
    let mut keys = Vec::new();
    let mut typename_keys = Vec::new();
    let mut visiting = BTreeSet::new();
    let root_items = &operation.selection_set.node.items;
    partition(&document, root_items, &mut groups, &mut keys, &mut typename_keys, &mut visiting)?;
    let mut parts = Vec::new();
    for (target, items) in groups {
        let fragments = used_fragments(&document, &items);
        let mut used_variables = BTreeSet::new();
        variables_of_items(&items, &mut used_variables);
        for fragment in fragments.values() {
            variables_of_items(&fragment.selection_set.node.items, &mut used_variables);
        }
        for directive in &operation.directives {
            variables_of_directive(&directive.node, &mut used_variables);
        }
        let text = print_operation(operation, operation_name, &items, &fragments, &used_variables);
        let variables: Map<String, Value> = variables
            .iter()
            .filter(|(name, _)| used_variables.contains(*name))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        parts.push(Part { target, query: text, operation_name: operation_name.map(str::to_string), variables });
    }
    let root_type = match operation.ty {
        OperationType::Query => "Query",
        OperationType::Mutation => "Mutation",
        OperationType::Subscription => "Subscription",
    };
    Ok(Routing { serial: operation.ty == OperationType::Mutation, root_type, typename_keys, keys, parts })
}

fn select_operation<'a>(
    document: &'a ExecutableDocument,
    name: Option<&str>,
) -> Result<&'a OperationDefinition, RouteError> {
    match (&document.operations, name) {
        (DocumentOperations::Single(operation), _) => Ok(&operation.node),
        (DocumentOperations::Multiple(operations), Some(name)) => operations
            .iter()
            .find(|(known, _)| known.as_str() == name)
            .map(|(_, operation)| &operation.node)
            .ok_or_else(|| RouteError::UnknownOperation(name.to_string())),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next().map(|operation| &operation.node).ok_or(RouteError::OperationNameRequired)
        }
        (DocumentOperations::Multiple(_), None) => Err(RouteError::OperationNameRequired),
    }
}

fn target_of(field: &str) -> Result<Option<Target>, RouteError> {
    match field {
        "__typename" => Ok(None),
        "__schema" | "__type" => Ok(Some(Target::Introspection)),
        _ => match field.split_once('_') {
            Some((plugin, rest)) if !plugin.is_empty() && !rest.is_empty() => Ok(Some(Target::Plugin(plugin.into()))),
            _ => Err(RouteError::Unroutable(field.to_string())),
        },
    }
}

fn group_of(groups: &mut Vec<(Target, Vec<Positioned<Selection>>)>, target: Target) -> &mut Vec<Positioned<Selection>> {
    let index = match groups.iter().position(|(known, _)| *known == target) {
        Some(index) => index,
        None => {
            groups.push((target, Vec::new()));
            groups.len() - 1
        }
    };
    &mut groups[index].1
}

/// Groups root selections by target; fragment spreads at the root become
/// inline fragments (same type condition and directives) split the same way.
fn partition(
    document: &ExecutableDocument,
    items: &[Positioned<Selection>],
    groups: &mut Vec<(Target, Vec<Positioned<Selection>>)>,
    keys: &mut Vec<String>,
    typename_keys: &mut Vec<String>,
    visiting: &mut BTreeSet<String>,
) -> Result<(), RouteError> {
    for item in items {
        let inline = match &item.node {
            Selection::Field(field) => {
                let name = field.node.name.node.as_str();
                let key = field.node.alias.as_ref().map(|a| a.node.to_string()).unwrap_or_else(|| name.to_string());
                if !keys.contains(&key) {
                    keys.push(key.clone());
                }
                match target_of(name)? {
                    None => typename_keys.push(key),
                    Some(target) => group_of(groups, target).push(item.clone()),
                }
                continue;
            }
            Selection::InlineFragment(fragment) => fragment.node.clone(),
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.to_string();
                let definition = document
                    .fragments
                    .get(&spread.node.fragment_name.node)
                    .ok_or_else(|| RouteError::UnknownFragment(name.clone()))?;
                if !visiting.insert(name.clone()) {
                    return Err(RouteError::FragmentCycle(name));
                }
                InlineFragment {
                    type_condition: Some(definition.node.type_condition.clone()),
                    directives: spread.node.directives.clone(),
                    selection_set: definition.node.selection_set.clone(),
                }
            }
        };
        let mut inner = Vec::new();
        partition(document, &inline.selection_set.node.items, &mut inner, keys, typename_keys, visiting)?;
        if let Selection::FragmentSpread(spread) = &item.node {
            visiting.remove(spread.node.fragment_name.node.as_str());
        }
        for (target, selections) in inner {
            let part = InlineFragment {
                type_condition: inline.type_condition.clone(),
                directives: inline.directives.clone(),
                selection_set: Positioned::new(SelectionSet { items: selections }, inline.selection_set.pos),
            };
            group_of(groups, target)
                .push(Positioned::new(Selection::InlineFragment(Positioned::new(part, item.pos)), item.pos));
        }
    }
    Ok(())
}

/// The fragments `items` spread, transitively.
fn used_fragments<'a>(
    document: &'a ExecutableDocument,
    items: &[Positioned<Selection>],
) -> BTreeMap<String, &'a FragmentDefinition> {
    let mut found: BTreeMap<String, &FragmentDefinition> = BTreeMap::new();
    let mut pending: Vec<&[Positioned<Selection>]> = Vec::new();
    let mut spreads = Vec::new();
    spreads_of(items, &mut spreads);
    loop {
        for name in spreads.drain(..) {
            if found.contains_key(name.as_str()) {
                continue;
            }
            if let Some(definition) = document.fragments.get(&name) {
                found.insert(name.to_string(), &definition.node);
                pending.push(&definition.node.selection_set.node.items);
            }
        }
        match pending.pop() {
            Some(items) => spreads_of(items, &mut spreads),
            None => break,
        }
    }
    found
}

fn spreads_of(items: &[Positioned<Selection>], out: &mut Vec<Name>) {
    for item in items {
        match &item.node {
            Selection::Field(field) => spreads_of(&field.node.selection_set.node.items, out),
            Selection::FragmentSpread(spread) => out.push(spread.node.fragment_name.node.clone()),
            Selection::InlineFragment(fragment) => spreads_of(&fragment.node.selection_set.node.items, out),
        }
    }
}

fn variables_of_value(value: &GqlValue, out: &mut BTreeSet<String>) {
    match value {
        GqlValue::Variable(name) => {
            out.insert(name.to_string());
        }
        GqlValue::List(items) => items.iter().for_each(|item| variables_of_value(item, out)),
        GqlValue::Object(fields) => fields.values().for_each(|item| variables_of_value(item, out)),
        _ => {}
    }
}

fn variables_of_directive(directive: &Directive, out: &mut BTreeSet<String>) {
    for (_, value) in &directive.arguments {
        variables_of_value(&value.node, out);
    }
}

fn variables_of_items(items: &[Positioned<Selection>], out: &mut BTreeSet<String>) {
    for item in items {
        for directive in item.node.directives() {
            variables_of_directive(&directive.node, out);
        }
        match &item.node {
            Selection::Field(field) => {
                for (_, value) in &field.node.arguments {
                    variables_of_value(&value.node, out);
                }
                variables_of_items(&field.node.selection_set.node.items, out);
            }
            Selection::FragmentSpread(_) => {}
            Selection::InlineFragment(fragment) => variables_of_items(&fragment.node.selection_set.node.items, out),
        }
    }
}

fn directives_text(directives: &[Positioned<Directive>]) -> String {
    directives.iter().map(|d| super::directive_text(&d.node.name.node, &d.node.arguments)).collect()
}

fn selection_set_text(out: &mut String, items: &[Positioned<Selection>], depth: usize) {
    out.push_str("{\n");
    let indent = "  ".repeat(depth + 1);
    for item in items {
        out.push_str(&indent);
        match &item.node {
            Selection::Field(field) => {
                let field = &field.node;
                if let Some(alias) = &field.alias {
                    let _ = write!(out, "{}: ", alias.node);
                }
                out.push_str(field.name.node.as_str());
                out.push_str(&super::argument_list(&field.arguments));
                out.push_str(&directives_text(&field.directives));
                if !field.selection_set.node.items.is_empty() {
                    out.push(' ');
                    selection_set_text(out, &field.selection_set.node.items, depth + 1);
                }
            }
            Selection::FragmentSpread(spread) => {
                let _ =
                    write!(out, "...{}{}", spread.node.fragment_name.node, directives_text(&spread.node.directives));
            }
            Selection::InlineFragment(fragment) => {
                out.push_str("...");
                if let Some(condition) = &fragment.node.type_condition {
                    let _ = write!(out, " on {}", condition.node.on.node);
                }
                out.push_str(&directives_text(&fragment.node.directives));
                out.push(' ');
                selection_set_text(out, &fragment.node.selection_set.node.items, depth + 1);
            }
        }
        out.push('\n');
    }
    out.push_str(&"  ".repeat(depth));
    out.push('}');
}

fn print_operation(
    operation: &OperationDefinition,
    name: Option<&str>,
    items: &[Positioned<Selection>],
    fragments: &BTreeMap<String, &FragmentDefinition>,
    used_variables: &BTreeSet<String>,
) -> String {
    let mut out = operation.ty.to_string();
    if let Some(name) = name {
        let _ = write!(out, " {name}");
    }
    let definitions: Vec<String> = operation
        .variable_definitions
        .iter()
        .filter(|definition| used_variables.contains(definition.node.name.node.as_str()))
        .map(|definition| {
            let definition = &definition.node;
            let mut text = format!("${}: {}", definition.name.node, definition.var_type.node);
            if let Some(default) = &definition.default_value {
                let _ = write!(text, " = {}", default.node);
            }
            text
        })
        .collect();
    if !definitions.is_empty() {
        let _ = write!(out, "({})", definitions.join(", "));
    }
    out.push_str(&directives_text(&operation.directives));
    out.push(' ');
    selection_set_text(&mut out, items, 0);
    out.push('\n');
    for (name, fragment) in fragments {
        let _ = write!(
            out,
            "\nfragment {name} on {}{} ",
            fragment.type_condition.node.on.node,
            directives_text(&fragment.directives)
        );
        selection_set_text(&mut out, &fragment.selection_set.node.items, 0);
        out.push('\n');
    }
    out
}

/// Merges the parts' answers into one GraphQL response: `data` in the
/// document's key order, every part's errors.
pub fn merge_answers(routing: &Routing, answers: Vec<(Target, Result<Value, String>)>) -> Value {
    let mut data = Map::new();
    let mut errors = Vec::new();
    let mut any_data = false;
    let mut introspection: Vec<Map<String, Value>> = Vec::new();
    for (target, answer) in answers {
        match answer {
            Ok(answer) => {
                if let Some(list) = answer.get("errors").and_then(Value::as_array) {
                    errors.extend(list.iter().cloned());
                }
                if let Some(Value::Object(part)) = answer.get("data") {
                    any_data = true;
                    if target == Target::Introspection {
                        introspection.push(part.clone());
                    } else {
                        data.extend(part.clone());
                    }
                }
            }
            Err(message) => errors.push(serde_json::json!({
                "message": message,
                "extensions": { "code": "PLUGIN_UNAVAILABLE" },
            })),
        }
    }
    for (key, value) in merge_introspection(introspection) {
        data.insert(key, value);
    }
    for key in &routing.typename_keys {
        any_data = true;
        data.insert(key.clone(), Value::String(routing.root_type.to_string()));
    }
    let mut ordered = Map::new();
    for key in &routing.keys {
        if let Some(value) = data.remove(key) {
            ordered.insert(key.clone(), value);
        }
    }
    ordered.extend(data);
    let mut response = Map::new();
    if any_data {
        response.insert("data".into(), Value::Object(ordered));
    }
    if !errors.is_empty() {
        response.insert("errors".into(), Value::Array(errors));
    }
    Value::Object(response)
}

/// The plugins' introspection answers as one: types (and directives) by
/// name, fields of types several plugins define (the root types) united.
fn merge_introspection(answers: Vec<Map<String, Value>>) -> Map<String, Value> {
    let mut merged = Map::new();
    for answer in answers {
        for (key, value) in answer {
            let slot = merged.entry(key).or_insert(Value::Null);
            merge_value(slot, value);
        }
    }
    merged
}

/// Merges at every depth, so a root type's fields unite wherever the query
/// reaches them (`types`, `queryType { fields }`, `__type(name: "Query")`);
/// where both answers hold a scalar, the first one stays.
fn merge_value(slot: &mut Value, value: Value) {
    match (slot, value) {
        (slot @ Value::Null, value) => *slot = value,
        (Value::Object(known), Value::Object(other)) => {
            for (key, more) in other {
                merge_value(known.entry(key).or_insert(Value::Null), more);
            }
        }
        (Value::Array(list), Value::Array(more)) => merge_named(list, more),
        _ => {}
    }
}

/// Items with a `name` (types, fields, arguments, enum values) merge with
/// the item of that name; others are added unless already present.
fn merge_named(list: &mut Vec<Value>, more: Vec<Value>) {
    for item in more {
        let name = item.get("name").cloned();
        let known = match &name {
            Some(name) => list.iter_mut().find(|known| known.get("name") == Some(name)),
            None => list.iter_mut().find(|known| **known == item),
        };
        match known {
            Some(known) => merge_value(known, item),
            None => list.push(item),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn root_fields_unite_wherever_introspection_reaches_them() {
        let routing = route("{ __schema { queryType { fields { name } } } }", None, &Map::new()).unwrap();
        let answer = |fields: Vec<&str>| {
            let fields: Vec<Value> = fields.into_iter().map(|name| json!({"name": name})).collect();
            Ok(json!({"data": {"__schema": {"queryType": {"fields": fields}}}}))
        };
        let merged = merge_answers(
            &routing,
            vec![
                (Target::Introspection, answer(vec!["Platform_Plugins", "Catalog_Products"])),
                (Target::Introspection, answer(vec!["Platform_Plugins", "Ordering_Orders"])),
            ],
        );
        let names: Vec<&str> = merged["data"]["__schema"]["queryType"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|field| field["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Platform_Plugins", "Catalog_Products", "Ordering_Orders"]);
    }

    fn vars(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn fields_split_by_plugin_with_only_their_variables_and_fragments() {
        let query = r#"
            query Shop($first: Int, $status: String = "OPEN", $unused: ID) {
              products: Catalog_Products(first: $first) { edges { node { ...ProductParts } } }
              Ordering_Orders(filter: {status: {eq: $status}}) { totalCount }
              __typename
            }
            fragment ProductParts on Catalog_Product { id name ...Price }
            fragment Price on Catalog_Product { price }
            fragment Unused on Ordering_Order { id }
        "#;
        let routing = route(query, Some("Shop"), &vars(json!({"first": 2, "status": "OPEN", "unused": "x"}))).unwrap();
        assert_eq!(routing.keys, vec!["products", "Ordering_Orders", "__typename"]);
        assert_eq!(routing.typename_keys, vec!["__typename"]);
        assert!(!routing.serial);
        assert_eq!(routing.parts.len(), 2);
        let catalog = &routing.parts[0];
        assert_eq!(catalog.target, Target::Plugin("Catalog".into()));
        assert_eq!(catalog.variables, vars(json!({"first": 2})));
        assert!(catalog.query.starts_with("query Shop($first: Int) {"));
        assert!(catalog.query.contains("fragment ProductParts on Catalog_Product"));
        assert!(catalog.query.contains("fragment Price on Catalog_Product"));
        assert!(!catalog.query.contains("Ordering_Orders") && !catalog.query.contains("Unused"));
        let ordering = &routing.parts[1];
        assert_eq!(ordering.variables, vars(json!({"status": "OPEN"})));
        assert!(ordering.query.contains("query Shop($status: String = \"OPEN\")"));
        assert!(ordering.query.contains("Ordering_Orders(filter: {status: {eq: $status}})"));
        assert!(!ordering.query.contains("fragment"));
        // Every part parses again.
        for part in &routing.parts {
            parse_query(&part.query).unwrap();
        }
    }

    #[test]
    fn root_fragments_split_and_keep_their_directives() {
        let query = "mutation($skip: Boolean!) { ...Both @skip(if: $skip) } fragment Both on Mutation { Catalog_AddCategory(input: {name: \"x\"}) { accepted } Ordering_RegisterCustomer(input: {}) { accepted } }";
        let routing = route(query, None, &vars(json!({"skip": false}))).unwrap();
        assert!(routing.serial);
        assert_eq!(routing.parts.len(), 2);
        for part in &routing.parts {
            assert!(part.query.contains("... on Mutation @skip(if: $skip)"), "{}", part.query);
            assert_eq!(part.variables, vars(json!({"skip": false})));
            parse_query(&part.query).unwrap();
        }
        assert_eq!(routing.keys, vec!["Catalog_AddCategory", "Ordering_RegisterCustomer"]);
    }

    #[test]
    fn bad_documents_are_refused_with_the_reason() {
        let none = Map::new();
        assert!(matches!(route("{ Catalog_Products ", None, &none), Err(RouteError::Syntax(_))));
        assert_eq!(route("{ products }", None, &none), Err(RouteError::Unroutable("products".into())));
        assert_eq!(route("{ ...Missing }", None, &none), Err(RouteError::UnknownFragment("Missing".into())));
        assert_eq!(
            route("query A { Catalog_X } query B { Catalog_Y }", None, &none),
            Err(RouteError::OperationNameRequired)
        );
        assert_eq!(route("query A { Catalog_X }", Some("C"), &none), Err(RouteError::UnknownOperation("C".into())));
        assert_eq!(
            route("{ ...A } fragment A on Query { ...A }", None, &none),
            Err(RouteError::FragmentCycle("A".into()))
        );
    }

    #[test]
    fn answers_merge_in_document_order_with_every_error() {
        let routing =
            route("{ b: Ordering_B __typename a: Catalog_A __schema { types { name } } }", None, &Map::new()).unwrap();
        let answers = vec![
            (Target::Plugin("Ordering".into()), Ok(json!({"data": {"b": 2}, "errors": [{"message": "late"}]}))),
            (Target::Plugin("Catalog".into()), Err("plugin `Catalog` is unavailable".to_string())),
            (
                Target::Introspection,
                Ok(json!({"data": {"__schema": {"types": [{"name": "Query", "fields": [{"name": "Ordering_B"}]}]}}})),
            ),
            (
                Target::Introspection,
                Ok(
                    json!({"data": {"__schema": {"types": [{"name": "Query", "fields": [{"name": "Catalog_A"}]}, {"name": "Catalog_Product"}]}}}),
                ),
            ),
        ];
        let merged = merge_answers(&routing, answers);
        let data = merged["data"].as_object().unwrap();
        assert_eq!(data.keys().collect::<Vec<_>>(), vec!["b", "__typename", "__schema"]);
        assert_eq!(data["__typename"], "Query");
        assert_eq!(
            data["__schema"],
            json!({"types": [{"name": "Query", "fields": [{"name": "Ordering_B"}, {"name": "Catalog_A"}]}, {"name": "Catalog_Product"}]})
        );
        let errors = merged["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[1]["extensions"]["code"], "PLUGIN_UNAVAILABLE");
    }
}
