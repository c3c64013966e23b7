//! Values between GraphQL and the serde JSON of the Rust types.
use async_graphql::dynamic::FieldValue;
use async_graphql::{Name, Value as GqlValue};
use serde_json::{Map, Value};

use crate::shape::{Shape, Types};

/// A GraphQL input value as the serde JSON the Rust type expects (field
/// names back to their serde names, enum values to strings).
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
        (Shape::Enum(_), GqlValue::Enum(name)) => Value::String(name.to_string()),
        (_, other) => other.clone().into_json().unwrap_or(Value::Null),
    }
}

/// A serde JSON value as a GraphQL output value of `shape`.
pub fn output_value(shape: &Shape, value: &Value) -> Option<FieldValue<'static>> {
    match (shape, value) {
        (_, Value::Null) => None,
        (Shape::Object(_), object @ Value::Object(_)) => Some(FieldValue::owned_any(object.clone())),
        (Shape::List(inner, _), Value::Array(items)) => {
            Some(FieldValue::list(items.iter().map(|item| output_value(inner, item).unwrap_or(FieldValue::NULL))))
        }
        (Shape::Enum(_), Value::String(text)) => Some(FieldValue::value(GqlValue::Enum(Name::new(text)))),
        (_, other) => Some(FieldValue::value(GqlValue::from_json(other.clone()).unwrap_or(GqlValue::Null))),
    }
}
