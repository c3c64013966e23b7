//! Rust types as the API sees them: a walk over the JSON Schema that
//! schemars derives from the serde types, giving GraphQL type names, camelCase
//! field names and the serde names to map them back.
use std::collections::BTreeMap;

use serde_json::Value;

/// The GraphQL built-in scalars used, plus free-form JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    Id,
    String,
    Int,
    Float,
    Boolean,
    Json,
}

impl Scalar {
    pub fn type_name(self) -> &'static str {
        match self {
            Self::Id => "ID",
            Self::String => "String",
            Self::Int => "Int",
            Self::Float => "Float",
            Self::Boolean => "Boolean",
            Self::Json => "JSON",
        }
    }
}

/// The shape of a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Scalar(Scalar),
    /// A GraphQL enum (unit variants), by type name.
    Enum(String),
    /// An object type (output) or input object (input), by type name.
    Object(String),
    List(Box<Shape>, bool),
}

impl Shape {
    /// The GraphQL type name at the bottom of lists.
    pub fn named(&self) -> &str {
        match self {
            Self::Scalar(scalar) => scalar.type_name(),
            Self::Enum(name) | Self::Object(name) => name,
            Self::List(inner, _) => inner.named(),
        }
    }
}

/// One field of an object: GraphQL name, serde name, shape, nullability.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldShape {
    pub name: String,
    pub key: String,
    pub shape: Shape,
    pub required: bool,
    pub description: Option<String>,
}

/// One value of a GraphQL enum: its GraphQL name (SCREAMING_SNAKE_CASE) and
/// the serde value it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumValue {
    pub name: String,
    pub value: String,
}

impl EnumValue {
    /// A value whose GraphQL name is its serde value (the API's own enums,
    /// already in SCREAMING_SNAKE_CASE).
    pub fn same(name: &str) -> Self {
        Self { name: name.to_string(), value: name.to_string() }
    }
}

/// Types found while walking schemas, for one direction (input or output).
#[derive(Debug, Default, Clone)]
pub struct Types {
    pub objects: BTreeMap<String, Vec<FieldShape>>,
    pub enums: BTreeMap<String, Vec<EnumValue>>,
}

impl Types {
    /// The serde value of the GraphQL enum value `name` of `enum_type`.
    pub fn enum_serde_value(&self, enum_type: &str, name: &str) -> Option<&str> {
        let values = self.enums.get(enum_type)?;
        values.iter().find(|value| value.name == name).map(|value| value.value.as_str())
    }

    /// The GraphQL name of the serde value `value` of `enum_type`.
    pub fn enum_graphql_name(&self, enum_type: &str, value: &str) -> Option<&str> {
        let values = self.enums.get(enum_type)?;
        values.iter().find(|candidate| candidate.value == value).map(|candidate| candidate.name.as_str())
    }
}

/// Why a Rust type cannot be part of the API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{context}: {message}")]
pub struct ShapeError {
    pub context: String,
    pub message: String,
}

/// `product_id` → `productId`; names already in camelCase stay.
pub fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for (index, c) in name.chars().enumerate() {
        if c == '_' && index > 0 {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A GraphQL enum value name: `Shelved` → `SHELVED`, `on_shelf` / `OnShelf` /
/// `onShelf` / `on-shelf` → `ON_SHELF`, `HTTPError` → `HTTP_ERROR`; names
/// already in SCREAMING_SNAKE_CASE stay. Words start at a separator, at an
/// upper-case letter after a lower-case letter or digit, and at the last
/// upper-case letter of an acronym followed by a lower-case one.
pub fn screaming_snake_case(text: &str) -> String {
    let chars: Vec<char> = text.chars().filter(char::is_ascii).collect();
    let mut out = String::with_capacity(chars.len() + 4);
    let mut separated = false;
    for (index, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            separated = true;
            continue;
        }
        let previous = index.checked_sub(1).and_then(|i| chars.get(i)).copied();
        let next = chars.get(index + 1).copied();
        let starts_word = c.is_ascii_uppercase()
            && previous.is_some_and(|p| {
                p.is_ascii_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_ascii_uppercase() && next.is_some_and(|n| n.is_ascii_lowercase()))
            });
        if !out.is_empty() && !out.ends_with('_') && (separated || starts_word) {
            out.push('_');
        }
        separated = false;
        out.push(c.to_ascii_uppercase());
    }
    graphql_name(&out)
}

/// A valid GraphQL name made of the letters and digits of `text`.
pub fn graphql_name(text: &str) -> String {
    let mut name: String = text.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    if name.chars().next().is_none_or(|c| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

/// Walks schemas of one root (a command or row type).
pub struct Walker<'a> {
    root: &'a Value,
    /// Type name prefix (the plugin) and suffix (`Input` for inputs).
    prefix: &'a str,
    suffix: &'a str,
    pub types: &'a mut Types,
    context: String,
}

impl<'a> Walker<'a> {
    pub fn new(root: &'a Value, prefix: &'a str, suffix: &'a str, types: &'a mut Types, context: String) -> Self {
        Self { root, prefix, suffix, types, context }
    }

    fn error(&self, message: impl Into<String>) -> ShapeError {
        ShapeError { context: self.context.clone(), message: message.into() }
    }

    fn definition(&self, reference: &str) -> Result<(&'a Value, String), ShapeError> {
        let name = reference
            .strip_prefix("#/$defs/")
            .or_else(|| reference.strip_prefix("#/definitions/"))
            .ok_or_else(|| self.error(format!("unsupported reference {reference}")))?;
        let root: &'a Value = self.root;
        let found = root.get("$defs").or_else(|| root.get("definitions")).and_then(|defs| defs.get(name));
        found.map(|schema| (schema, name.to_string())).ok_or_else(|| self.error(format!("missing definition {name}")))
    }

    /// The shape of `schema` and whether it admits null.
    pub fn shape(&mut self, schema: &'a Value, name_hint: &str) -> Result<(Shape, bool), ShapeError> {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let (definition, name) = self.definition(reference)?;
            return self.shape(definition, &name);
        }
        for combinator in ["anyOf", "oneOf"] {
            if let Some(options) = schema.get(combinator).and_then(Value::as_array) {
                let non_null: Vec<&'a Value> = options.iter().filter(|o| !is_null_schema(o)).collect();
                let nullable = non_null.len() < options.len();
                if non_null.len() == 1 {
                    let (shape, inner_nullable) = self.shape(non_null[0], name_hint)?;
                    return Ok((shape, nullable || inner_nullable));
                }
                if let Some(values) = unit_enum_values(&non_null) {
                    return Ok((self.enum_shape(name_hint, values)?, nullable));
                }
                return Ok((Shape::Scalar(Scalar::Json), nullable));
            }
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            let values: Option<Vec<String>> = values.iter().map(|v| v.as_str().map(str::to_string)).collect();
            if let Some(values) = values {
                return Ok((self.enum_shape(name_hint, values)?, false));
            }
            return Ok((Shape::Scalar(Scalar::Json), true));
        }
        if let Some(constant) = schema.get("const").and_then(Value::as_str) {
            return Ok((self.enum_shape(name_hint, vec![constant.to_string()])?, false));
        }
        let (kind, nullable) = match schema.get("type") {
            Some(Value::String(kind)) => (kind.as_str(), false),
            Some(Value::Array(kinds)) => {
                let non_null: Vec<&str> = kinds.iter().filter_map(Value::as_str).filter(|k| *k != "null").collect();
                let nullable = non_null.len() < kinds.len();
                match non_null.as_slice() {
                    [kind] => (*kind, nullable),
                    _ => return Ok((Shape::Scalar(Scalar::Json), true)),
                }
            }
            // `true` / `{}`: anything goes.
            _ => return Ok((Shape::Scalar(Scalar::Json), true)),
        };
        let shape = match kind {
            "string" => Shape::Scalar(Scalar::String),
            "integer" => Shape::Scalar(Scalar::Int),
            "number" => Shape::Scalar(Scalar::Float),
            "boolean" => Shape::Scalar(Scalar::Boolean),
            "array" => {
                let items = schema.get("items").ok_or_else(|| self.error("an array without items"))?;
                let (inner, inner_nullable) = self.shape(items, name_hint)?;
                Shape::List(Box::new(inner), !inner_nullable)
            }
            "object" => match schema.get("properties").and_then(Value::as_object) {
                Some(_) => self.object_shape(schema, name_hint)?,
                None => Shape::Scalar(Scalar::Json),
            },
            "null" => return Ok((Shape::Scalar(Scalar::Json), true)),
            other => return Err(self.error(format!("unsupported JSON Schema type {other}"))),
        };
        Ok((shape, nullable))
    }

    /// Registers a GraphQL enum for the serde values `values`: each value is
    /// named in SCREAMING_SNAKE_CASE; two values with the same name are refused.
    fn enum_shape(&mut self, name_hint: &str, values: Vec<String>) -> Result<Shape, ShapeError> {
        let name = format!("{}{}", self.prefix, graphql_name(name_hint));
        let mut items: Vec<EnumValue> = Vec::with_capacity(values.len());
        for value in values {
            let graphql = screaming_snake_case(&value);
            if let Some(taken) = items.iter().find(|item| item.name == graphql) {
                return Err(self.error(format!(
                    "enum {name}: the values `{}` and `{value}` are both `{graphql}` in GraphQL",
                    taken.value
                )));
            }
            items.push(EnumValue { name: graphql, value });
        }
        self.types.enums.insert(name.clone(), items);
        Ok(Shape::Enum(name))
    }

    /// Registers an object type for `schema` (named after `name_hint`).
    pub fn object_shape(&mut self, schema: &'a Value, name_hint: &str) -> Result<Shape, ShapeError> {
        let name = format!("{}{}{}", self.prefix, graphql_name(name_hint), self.suffix);
        if self.types.objects.contains_key(&name) {
            return Ok(Shape::Object(name));
        }
        // Registered before its fields so that recursive types terminate.
        self.types.objects.insert(name.clone(), Vec::new());
        let fields = self.fields(schema)?;
        self.types.objects.insert(name.clone(), fields);
        Ok(Shape::Object(name))
    }

    /// The fields of an object schema (following a `$ref`).
    pub fn fields(&mut self, schema: &'a Value) -> Result<Vec<FieldShape>, ShapeError> {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let (definition, _) = self.definition(reference)?;
            return self.fields(definition);
        }
        let required: Vec<&str> =
            schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        let mut fields = Vec::new();
        for (key, property) in schema.get("properties").and_then(Value::as_object).into_iter().flatten() {
            let hint = property_type_hint(property).unwrap_or_else(|| title_case(&camel_case(key)));
            let (shape, nullable) = self.shape(property, &hint)?;
            fields.push(FieldShape {
                name: graphql_name(&camel_case(key)),
                key: key.clone(),
                shape,
                required: required.contains(&key.as_str()) && !nullable,
                description: property.get("description").and_then(Value::as_str).map(str::to_string),
            });
        }
        Ok(fields)
    }
}

/// A name for an anonymous nested type: its definition's title if any.
fn property_type_hint(property: &Value) -> Option<String> {
    property.get("title").and_then(Value::as_str).map(str::to_string)
}

fn title_case(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn is_null_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

/// `[{const: "A"}, {enum: ["B"]}]` → `["A", "B"]` when every option is a string constant.
fn unit_enum_values(options: &[&Value]) -> Option<Vec<String>> {
    let mut values = Vec::new();
    for option in options {
        if let Some(constant) = option.get("const").and_then(Value::as_str) {
            values.push(constant.to_string());
        } else if let Some(list) = option.get("enum").and_then(Value::as_array) {
            for value in list {
                values.push(value.as_str()?.to_string());
            }
        } else {
            return None;
        }
    }
    (!values.is_empty()).then_some(values)
}

/// The variants of a command type: (wire name, schema of its fields or None
/// for a unit variant). A struct command is one variant named `struct_name`.
pub fn command_variants<'a>(root: &'a Value, names: &[&str]) -> Vec<(String, Option<&'a Value>)> {
    let mut variants = Vec::new();
    let options: Vec<&Value> =
        ["oneOf", "anyOf"].iter().filter_map(|k| root.get(*k).and_then(Value::as_array)).flatten().collect();
    if options.is_empty() {
        if let [name] = names {
            variants.push((name.to_string(), Some(root)));
        }
        return variants;
    }
    for option in options {
        if let Some(constant) = option.get("const").and_then(Value::as_str) {
            variants.push((constant.to_string(), None));
        } else if let Some(list) = option.get("enum").and_then(Value::as_array) {
            variants.extend(list.iter().filter_map(Value::as_str).map(|v| (v.to_string(), None)));
        } else if let Some(properties) = option.get("properties").and_then(Value::as_object)
            && let Some((name, fields)) = properties.iter().next()
        {
            variants.push((name.clone(), Some(fields)));
        }
    }
    variants
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_camel_case_graphql_names() {
        assert_eq!(camel_case("product_id"), "productId");
        assert_eq!(camel_case("priceCents"), "priceCents");
        assert_eq!(camel_case("_private"), "_private");
        assert_eq!(graphql_name("9lives-x"), "_9livesx");
    }

    #[test]
    fn enum_values_become_screaming_snake_case() {
        for (serde, graphql) in [
            ("Shelved", "SHELVED"),
            ("on_shelf", "ON_SHELF"),
            ("OnShelf", "ON_SHELF"),
            ("onShelf", "ON_SHELF"),
            ("on-shelf", "ON_SHELF"),
            ("ON_SHELF", "ON_SHELF"),
            ("lentAt", "LENT_AT"),
            ("id", "ID"),
            ("HTTPError", "HTTP_ERROR"),
            ("Version2Beta", "VERSION2_BETA"),
            ("2fa", "_2FA"),
            ("", "_"),
        ] {
            assert_eq!(screaming_snake_case(serde), graphql, "{serde}");
        }
    }

    #[test]
    fn enum_values_keep_their_serde_value_and_clashes_are_refused() {
        let schema = serde_json::json!({"enum": ["on_shelf", "Lent"]});
        let mut types = Types::default();
        let shape = Walker::new(&schema, "Library", "", &mut types, "test".into()).shape(&schema, "Status");
        assert_eq!(shape, Ok((Shape::Enum("LibraryStatus".into()), false)));
        assert_eq!(types.enum_serde_value("LibraryStatus", "ON_SHELF"), Some("on_shelf"));
        assert_eq!(types.enum_graphql_name("LibraryStatus", "Lent"), Some("LENT"));
        assert_eq!(types.enum_serde_value("LibraryStatus", "on_shelf"), None);

        let clash = serde_json::json!({"enum": ["on_shelf", "OnShelf"]});
        let refused = Walker::new(&clash, "Library", "", &mut types, "test".into()).shape(&clash, "Status");
        assert!(refused.is_err_and(|e| e.message.contains("ON_SHELF")));
    }
}
