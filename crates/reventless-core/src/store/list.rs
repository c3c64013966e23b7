//! Listing rows: filters, order and keyset cursors, plus the in-Rust
//! evaluator shared by stores that cannot push this down to a database.
use std::cmp::Ordering;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::StoreError;

/// How a filter compares a row's field with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FilterOp {
    /// Equal.
    Eq,
    /// Not equal (also matches a missing field).
    Ne,
    /// Less than (numbers with numbers, strings with strings).
    Lt,
    /// Less than or equal.
    Lte,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Gte,
    /// The field (a string) contains the value (a string).
    Contains,
}

/// `field op value` on a top-level row field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    /// The row field (top level).
    pub field: String,
    /// The comparison.
    pub op: FilterOp,
    /// The value compared with.
    pub value: Value,
}

impl Filter {
    /// `field == value`.
    pub fn eq(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self { field: field.into(), op: FilterOp::Eq, value: value.into() }
    }

    /// Whether `row` passes this filter.
    pub fn matches(&self, row: &Value) -> bool {
        let field = row.get(&self.field).unwrap_or(&Value::Null);
        let ordering = compare_values(field, &self.value);
        match self.op {
            FilterOp::Eq => field == &self.value,
            FilterOp::Ne => field != &self.value,
            FilterOp::Lt => comparable(field, &self.value) && ordering == Ordering::Less,
            FilterOp::Lte => comparable(field, &self.value) && ordering != Ordering::Greater,
            FilterOp::Gt => comparable(field, &self.value) && ordering == Ordering::Greater,
            FilterOp::Gte => comparable(field, &self.value) && ordering != Ordering::Less,
            FilterOp::Contains => match (field, &self.value) {
                (Value::String(haystack), Value::String(needle)) => haystack.contains(needle.as_str()),
                _ => false,
            },
        }
    }
}

fn comparable(a: &Value, b: &Value) -> bool {
    matches!((a, b), (Value::Number(_), Value::Number(_)) | (Value::String(_), Value::String(_)))
}

/// The order of a listing: one row field, then the row id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderBy {
    /// The row field to order by.
    pub field: String,
    /// Largest first.
    pub descending: bool,
}

/// A page request: rows matching every filter, ordered by `order_by` then id
/// (by id alone when absent), the first `first` after `after`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListRequest {
    /// Every filter must match.
    pub filters: Vec<Filter>,
    /// The order (by id when absent).
    pub order_by: Option<OrderBy>,
    /// At most this many rows.
    pub first: usize,
    /// The cursor of the row to start after.
    pub after: Option<String>,
}

impl Default for ListRequest {
    fn default() -> Self {
        Self { filters: Vec::new(), order_by: None, first: 100, after: None }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// The rows, as (id, row), in order.
    pub rows: Vec<(String, Value)>,
    /// Whether more rows follow.
    pub has_next_page: bool,
    /// Cursor of the last row of this page.
    pub end_cursor: Option<String>,
    /// Rows matching the filters, over all pages.
    pub total_count: u64,
}

/// The position of a row in an ordered listing: its sort value and id. Opaque
/// to clients (URL-safe base64 of JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// The row's value of the order field (null when ordered by id).
    pub sort: Value,
    /// The row's id.
    pub id: String,
}

impl Cursor {
    /// The cursor as clients see it.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Reads a cursor from its text; malformed text is `StoreError::Invalid`.
    pub fn decode(text: &str) -> Result<Self, StoreError> {
        let invalid = || StoreError::Invalid(format!("malformed cursor {text:?}"));
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
        serde_json::from_slice(&bytes).map_err(|_| invalid())
    }

    /// The cursor of a row in a listing ordered by `order_by`.
    pub fn of(row_id: &str, row: &Value, order_by: Option<&OrderBy>) -> Self {
        let sort = order_by.and_then(|o| row.get(&o.field)).cloned().unwrap_or(Value::Null);
        Self { sort, id: row_id.to_string() }
    }
}

/// A total order over JSON values: null < bool < number < string < array < object.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            Value::Array(_) => 4,
            Value::Object(_) => 5,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => x.as_f64().unwrap_or(0.0).total_cmp(&y.as_f64().unwrap_or(0.0)),
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            x.iter().zip(y).map(|(x, y)| compare_values(x, y)).find(|o| o.is_ne()).unwrap_or(x.len().cmp(&y.len()))
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Orders two rows as a listing does (sort field, then id).
pub fn compare_rows(a: (&str, &Value), b: (&str, &Value), order_by: Option<&OrderBy>) -> Ordering {
    let Some(order) = order_by else {
        return a.0.cmp(b.0);
    };
    let null = Value::Null;
    let by_field = compare_values(a.1.get(&order.field).unwrap_or(&null), b.1.get(&order.field).unwrap_or(&null));
    let ordering = by_field.then_with(|| a.0.cmp(b.0));
    if order.descending { ordering.reverse() } else { ordering }
}

/// Evaluates a listing over every row of a table.
pub fn evaluate_list<'a>(
    rows: impl IntoIterator<Item = (&'a str, &'a Value)>,
    request: &ListRequest,
) -> Result<Page, StoreError> {
    let after = request.after.as_deref().map(Cursor::decode).transpose()?;
    let order_by = request.order_by.as_ref();
    let mut matching: Vec<(&str, &Value)> =
        rows.into_iter().filter(|(_, row)| request.filters.iter().all(|f| f.matches(row))).collect();
    let total_count = matching.len() as u64;
    matching.sort_by(|a, b| compare_rows(*a, *b, order_by));
    let start = match &after {
        None => 0,
        Some(cursor) => {
            // A stand-in row holding the cursor's sort value, compared like any row.
            let mut cursor_fields = serde_json::Map::new();
            if let Some(order) = order_by {
                cursor_fields.insert(order.field.clone(), cursor.sort.clone());
            }
            let cursor_value = Value::Object(cursor_fields);
            matching.partition_point(|row| compare_rows(*row, (&cursor.id, &cursor_value), order_by).is_le())
        }
    };
    let rest = &matching[start.min(matching.len())..];
    let page: Vec<(String, Value)> =
        rest.iter().take(request.first).map(|(id, row)| (id.to_string(), (*row).clone())).collect();
    let end_cursor = page.last().map(|(id, row)| Cursor::of(id, row, order_by).encode());
    Ok(Page { has_next_page: rest.len() > page.len(), rows: page, end_cursor, total_count })
}
