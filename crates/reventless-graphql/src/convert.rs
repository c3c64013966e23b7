//! Values between GraphQL and the serde JSON of the Rust types.
use async_graphql::dynamic::FieldValue;
use async_graphql::{Name, Value as GqlValue};
use serde_json::{Map, Value};

use crate::shape::{Shape, Types, screaming_snake_case};

/// A GraphQL input value as the serde JSON the Rust type expects (field
/// names back to their serde names, enum values to their serde values).
pub fn input_to_json(shape: &Shape, value: &GqlValue, types: &Types) -> Value {
    match (shape, value) {
        (_, GqlValue::Null) => Value::Null,
        (Shape::Object(name), GqlValue::Object(fields)) => {
            let mut json = Map::new();
            for field in types.objects.get(name).into_iter().flatten() {
                if let Some(value) = fields.get(field.name.as_str()) {
                    json.insert(field.key.clone(), input_to_json(&field.shape, value, types));
                }
            }
            Value::Object(json)
        }
        (Shape::List(inner, _), GqlValue::List(items)) => {
            Value::Array(items.iter().map(|item| input_to_json(inner, item, types)).collect())
        }
        // An enum value written in the query, or given as a variable (a string).
        (Shape::Enum(enum_type), GqlValue::Enum(name)) => enum_input(enum_type, name, types),
        (Shape::Enum(enum_type), GqlValue::String(name)) => enum_input(enum_type, name, types),
        (_, other) => other.clone().into_json().unwrap_or(Value::Null),
    }
}

/// The serde value of a GraphQL enum value (unknown names pass unchanged:
/// GraphQL validation has already refused names outside the enum).
fn enum_input(enum_type: &str, name: &str, types: &Types) -> Value {
    Value::String(types.enum_serde_value(enum_type, name).unwrap_or(name).to_string())
}

/// A serde JSON value as a GraphQL output value of `shape` (enum values by
/// their GraphQL names; `types` holds the enums). Objects and lists borrow
/// from `value`: a row is read in place by its fields' resolvers, not
/// copied at every level of the answer.
pub fn output_value<'a>(shape: &Shape, value: &'a Value, types: &Types) -> Option<FieldValue<'a>> {
    match (shape, value) {
        (_, Value::Null) => None,
        (Shape::Object(_), object @ Value::Object(_)) => Some(FieldValue::borrowed_any(object)),
        (Shape::List(inner, _), Value::Array(items)) => Some(FieldValue::list(
            items.iter().map(|item| output_value(inner, item, types).unwrap_or(FieldValue::NULL)),
        )),
        (_, other) => Some(FieldValue::value(leaf_value(shape, other, types))),
    }
}

/// [`output_value`] of a value the answer owns (a row read by the resolver).
pub fn owned_output_value(shape: &Shape, value: Value, types: &Types) -> Option<FieldValue<'static>> {
    match (shape, value) {
        (_, Value::Null) => None,
        (Shape::Object(_), object @ Value::Object(_)) => Some(FieldValue::owned_any(object)),
        (Shape::List(inner, _), Value::Array(items)) => Some(FieldValue::list(
            items.into_iter().map(|item| owned_output_value(inner, item, types).unwrap_or(FieldValue::NULL)),
        )),
        (_, other) => Some(FieldValue::value(leaf_value(shape, &other, types))),
    }
}

/// A scalar or enum value (or a value that does not fit its shape, passed as it is).
fn leaf_value(shape: &Shape, value: &Value, types: &Types) -> GqlValue {
    match (shape, value) {
        (Shape::Enum(enum_type), Value::String(text)) => {
            let name = match types.enum_graphql_name(enum_type, text) {
                Some(name) => name.to_string(),
                // A value the type no longer declares: the name it would have.
                None => screaming_snake_case(text),
            };
            GqlValue::Enum(Name::new(name))
        }
        (_, other) => GqlValue::from_json(other.clone()).unwrap_or(GqlValue::Null),
    }
}
