//! Lambda's event filtering (`FilterCriteria`): which records of a batch the
//! function sees. Patterns are OR'd; a record matching none is dropped and
//! counts as processed. The matcher follows the content-filtering rules Lambda
//! shares with EventBridge: every key of a pattern must match (AND), a leaf is
//! an array of alternatives (OR), an object descends into the record.
use serde_json::{Map, Value};

/// A pattern Lambda would refuse at `CreateEventSourceMapping`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter pattern {pattern}: {reason}")]
pub struct InvalidPattern {
    pub pattern: String,
    pub reason: String,
}

/// The compiled `Filters` of one mapping; no pattern at all lets everything through.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    patterns: Vec<Pattern>,
}

impl Filter {
    /// Compiles the `Pattern` strings of `FilterCriteria.Filters`.
    pub fn parse(patterns: &[String]) -> Result<Filter, InvalidPattern> {
        let patterns = patterns
            .iter()
            .map(|text| {
                let invalid = |reason: String| InvalidPattern { pattern: text.clone(), reason };
                let value: Value = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
                match value {
                    Value::Object(fields) => Pattern::compile(&fields).map_err(invalid),
                    _ => Err(invalid("a pattern is a JSON object".to_string())),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Filter { patterns })
    }

    /// Whether the function sees this record (in the shape it has in the event).
    pub fn matches(&self, record: &Value) -> bool {
        self.patterns.is_empty() || self.patterns.iter().any(|p| p.matches(Some(record)))
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

/// An object pattern: each field must match.
#[derive(Debug, Clone)]
struct Pattern {
    fields: Vec<(String, Node)>,
}

#[derive(Debug, Clone)]
enum Node {
    Nested(Pattern),
    /// Any one of these.
    AnyOf(Vec<Matcher>),
}

#[derive(Debug, Clone)]
enum Matcher {
    /// A string, number, boolean or null, compared exactly (numbers by value).
    Exact(Value),
    Prefix(String),
    Suffix(String),
    EqualsIgnoreCase(String),
    /// Matches when none of these does (and the field exists).
    AnythingBut(Vec<Matcher>),
    Exists(bool),
    /// Every (operator, bound) pair must hold.
    Numeric(Vec<(NumericOp, f64)>),
}

#[derive(Debug, Clone, Copy)]
enum NumericOp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Pattern {
    fn compile(fields: &Map<String, Value>) -> Result<Pattern, String> {
        let fields = fields
            .iter()
            .map(|(key, value)| {
                let node = match value {
                    Value::Object(nested) => Node::Nested(Pattern::compile(nested)?),
                    Value::Array(alternatives) => {
                        Node::AnyOf(alternatives.iter().map(Matcher::compile).collect::<Result<_, _>>()?)
                    }
                    other => return Err(format!("the value of {key:?} must be an array or an object, not {other}")),
                };
                Ok((key.clone(), node))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Pattern { fields })
    }

    /// `value` is None when the field is absent.
    fn matches(&self, value: Option<&Value>) -> bool {
        match value {
            Some(Value::Object(object)) => self.fields.iter().all(|(key, node)| node.matches(object.get(key))),
            // An array of objects matches when one of its elements does.
            Some(Value::Array(items)) => items.iter().any(|item| self.matches(Some(item))),
            // Absent or a scalar: only `exists: false` leaves can match.
            _ => self.fields.iter().all(|(_, node)| node.matches(None)),
        }
    }
}

impl Node {
    fn matches(&self, value: Option<&Value>) -> bool {
        match self {
            Node::Nested(pattern) => pattern.matches(value),
            Node::AnyOf(matchers) => matchers.iter().any(|m| m.matches_field(value)),
        }
    }
}

impl Matcher {
    fn compile(value: &Value) -> Result<Matcher, String> {
        match value {
            Value::Object(rule) => {
                let mut entries = rule.iter();
                let (Some((name, argument)), None) = (entries.next(), entries.next()) else {
                    return Err(format!("a content filter has exactly one key: {value}"));
                };
                match (name.as_str(), argument) {
                    ("prefix", Value::String(s)) => Ok(Matcher::Prefix(s.clone())),
                    ("suffix", Value::String(s)) => Ok(Matcher::Suffix(s.clone())),
                    ("equals-ignore-case", Value::String(s)) => Ok(Matcher::EqualsIgnoreCase(s.clone())),
                    ("exists", Value::Bool(b)) => Ok(Matcher::Exists(*b)),
                    ("anything-but", Value::Array(values)) => {
                        Ok(Matcher::AnythingBut(values.iter().map(Matcher::compile_exact).collect::<Result<_, _>>()?))
                    }
                    ("anything-but", Value::Object(_)) => Ok(Matcher::AnythingBut(vec![Matcher::compile(argument)?])),
                    ("anything-but", single) => Ok(Matcher::AnythingBut(vec![Matcher::compile_exact(single)?])),
                    ("numeric", Value::Array(terms)) => Matcher::compile_numeric(terms),
                    _ => Err(format!("unsupported content filter {value}")),
                }
            }
            Value::Array(_) => Err(format!("nested arrays are not a filter: {value}")),
            scalar => Ok(Matcher::Exact(scalar.clone())),
        }
    }

    fn compile_exact(value: &Value) -> Result<Matcher, String> {
        match value {
            Value::String(_) | Value::Number(_) | Value::Null | Value::Bool(_) => Ok(Matcher::Exact(value.clone())),
            other => Err(format!("anything-but takes strings or numbers, not {other}")),
        }
    }

    fn compile_numeric(terms: &[Value]) -> Result<Matcher, String> {
        if terms.is_empty() || !terms.len().is_multiple_of(2) || terms.len() > 4 {
            return Err(format!("numeric takes one or two (operator, number) pairs: {terms:?}"));
        }
        let comparisons = terms
            .chunks(2)
            .map(|pair| {
                let op = match pair[0].as_str() {
                    Some("=") => NumericOp::Eq,
                    Some("<") => NumericOp::Lt,
                    Some("<=") => NumericOp::Le,
                    Some(">") => NumericOp::Gt,
                    Some(">=") => NumericOp::Ge,
                    _ => return Err(format!("unknown numeric operator {}", pair[0])),
                };
                let bound = pair[1].as_f64().ok_or_else(|| format!("numeric bound must be a number: {}", pair[1]))?;
                Ok((op, bound))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Matcher::Numeric(comparisons))
    }

    /// Matches a field (None = absent); an array field matches when one element does.
    fn matches_field(&self, value: Option<&Value>) -> bool {
        match (self, value) {
            (Matcher::Exists(wanted), _) => *wanted == value.is_some(),
            (_, None) => false,
            (Matcher::AnythingBut(excluded), Some(Value::Array(items))) => {
                items.iter().all(|item| !excluded.iter().any(|m| m.matches_value(item)))
            }
            (_, Some(Value::Array(items))) => items.iter().any(|item| self.matches_value(item)),
            (_, Some(value)) => self.matches_value(value),
        }
    }

    fn matches_value(&self, value: &Value) -> bool {
        match self {
            Matcher::Exact(expected) => match (expected, value) {
                (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
                _ => expected == value,
            },
            Matcher::Prefix(prefix) => value.as_str().is_some_and(|s| s.starts_with(prefix.as_str())),
            Matcher::Suffix(suffix) => value.as_str().is_some_and(|s| s.ends_with(suffix.as_str())),
            Matcher::EqualsIgnoreCase(text) => value.as_str().is_some_and(|s| s.eq_ignore_ascii_case(text)),
            Matcher::AnythingBut(excluded) => !excluded.iter().any(|m| m.matches_value(value)),
            Matcher::Exists(wanted) => *wanted,
            Matcher::Numeric(comparisons) => value.as_f64().is_some_and(|n| {
                comparisons.iter().all(|(op, bound)| match op {
                    NumericOp::Eq => n == *bound,
                    NumericOp::Lt => n < *bound,
                    NumericOp::Le => n <= *bound,
                    NumericOp::Gt => n > *bound,
                    NumericOp::Ge => n >= *bound,
                })
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn filter(patterns: &[Value]) -> Filter {
        Filter::parse(&patterns.iter().map(Value::to_string).collect::<Vec<_>>()).unwrap()
    }

    fn record(event_name: &str, log: &str, kind: &str) -> Value {
        json!({
            "eventName": event_name,
            "eventSource": "aws:dynamodb",
            "dynamodb": {"NewImage": {"log": {"S": log}, "type": {"S": kind}, "n": {"N": "5"}}}
        })
    }

    #[test]
    fn the_deployers_pattern_matches_log_type_and_event_name() {
        let f = filter(&[json!({
            "eventName": ["INSERT"],
            "dynamodb": {"NewImage": {"log": {"S": ["d#Catalog"]}, "type": {"S": ["A", "B"]}}}
        })]);
        assert!(f.matches(&record("INSERT", "d#Catalog", "A")));
        assert!(f.matches(&record("INSERT", "d#Catalog", "B")));
        assert!(!f.matches(&record("INSERT", "d#Catalog", "C")));
        assert!(!f.matches(&record("MODIFY", "d#Catalog", "A")));
        assert!(!f.matches(&record("INSERT", "d#Orders", "A")));
        // A REMOVE has no NewImage: the nested pattern cannot match.
        assert!(!f.matches(&json!({"eventName": "INSERT", "dynamodb": {"OldImage": {}}})));
    }

    #[test]
    fn patterns_are_ored_and_no_pattern_lets_everything_through() {
        let f = filter(&[json!({"eventName": ["INSERT"]}), json!({"eventName": ["REMOVE"]})]);
        assert!(f.matches(&json!({"eventName": "INSERT"})));
        assert!(f.matches(&json!({"eventName": "REMOVE"})));
        assert!(!f.matches(&json!({"eventName": "MODIFY"})));
        assert!(Filter::parse(&[]).unwrap().matches(&json!({"anything": 1})));
    }

    #[test]
    fn exact_values_numbers_null_and_arrays_in_the_record() {
        let f = filter(&[json!({"a": [1, null, "x"]})]);
        assert!(f.matches(&json!({"a": 1.0})));
        assert!(f.matches(&json!({"a": null})));
        assert!(f.matches(&json!({"a": "x"})));
        assert!(f.matches(&json!({"a": ["y", "x"]})));
        assert!(!f.matches(&json!({"a": "1"})));
        assert!(!f.matches(&json!({"b": 1})));
        assert!(!f.matches(&json!({"a": ["y"]})));
    }

    #[test]
    fn prefix_anything_but_exists_and_numeric() {
        let prefix = filter(&[json!({"k": [{"prefix": "d#"}]})]);
        assert!(prefix.matches(&json!({"k": "d#Catalog"})));
        assert!(!prefix.matches(&json!({"k": "x#d#"})));
        assert!(!prefix.matches(&json!({"k": 5})));

        let but = filter(&[json!({"k": [{"anything-but": ["a", "b"]}]})]);
        assert!(but.matches(&json!({"k": "c"})));
        assert!(!but.matches(&json!({"k": "a"})));
        assert!(!but.matches(&json!({})), "anything-but needs the field");
        let but_prefix = filter(&[json!({"k": [{"anything-but": {"prefix": "tmp"}}]})]);
        assert!(but_prefix.matches(&json!({"k": "real"})));
        assert!(!but_prefix.matches(&json!({"k": "tmp1"})));

        let exists = filter(&[json!({"k": [{"exists": true}]})]);
        assert!(exists.matches(&json!({"k": "v"})));
        assert!(!exists.matches(&json!({"j": "v"})));
        let absent = filter(&[json!({"dynamodb": {"NewImage": {"k": [{"exists": false}]}}})]);
        assert!(absent.matches(&json!({"dynamodb": {"NewImage": {"j": {"S": "v"}}}})));
        assert!(absent.matches(&json!({"dynamodb": {}})));
        assert!(!absent.matches(&json!({"dynamodb": {"NewImage": {"k": {"S": "v"}}}})));

        let range = filter(&[json!({"n": [{"numeric": [">", 0, "<=", 5]}]})]);
        assert!(range.matches(&json!({"n": 5})));
        assert!(range.matches(&json!({"n": 0.5})));
        assert!(!range.matches(&json!({"n": 0})));
        assert!(!range.matches(&json!({"n": 6})));
        assert!(!range.matches(&json!({"n": "3"})), "numeric compares numbers, not DynamoDB's N strings");
    }

    #[test]
    fn invalid_patterns_are_refused() {
        for bad in ["[1]", "{\"a\": 1}", "{\"a\": [{\"numeric\": [\"~\", 1]}]}", "{\"a\": [{\"nope\": 1}]}", "not json"]
        {
            assert!(Filter::parse(&[bad.to_string()]).is_err(), "{bad} should be refused");
        }
    }
}
