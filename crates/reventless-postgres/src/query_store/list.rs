//! A listing as SQL: filters, order and keyset cursor on a field's sort key
//! (`reventless_rank`, `reventless_number`, `reventless_text` of
//! `schema.sql`), which orders JSON values as `compare_values` does and
//! matches the expression indexes of `create_indexes`.
use reventless_core::store::{Cursor, Filter, FilterOp, ListRequest, OrderBy};
use serde_json::Value;
use tokio_postgres::types::ToSql;

use reventless_core::StoreError;

/// A parameter of a listing's SQL.
#[derive(Debug, Clone)]
pub(super) enum Arg {
    Text(String),
    Json(Value),
    Int(i64),
}

impl Arg {
    pub(super) fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Self::Text(text) => text,
            Self::Json(value) => value,
            Self::Int(number) => number,
        }
    }
}

/// The sort key of a top-level field, as SQL expressions over `data`.
pub(super) struct FieldKey {
    pub(super) rank: String,
    pub(super) number: String,
    pub(super) text: String,
}

impl FieldKey {
    /// The key of `field`, a plain name (letters, digits, `_`): inlined into
    /// the SQL so that the expression indexes match.
    pub(super) fn of(field: &str) -> Result<Self, StoreError> {
        let valid = field.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(StoreError::Invalid(format!("field name {field:?} must be letters, digits and _")));
        }
        Ok(Self::over(&format!("(data -> '{field}')")))
    }

    /// The key of a JSON value given as SQL (a column or a parameter).
    fn over(value: &str) -> Self {
        Self {
            rank: format!("reventless_rank({value})"),
            number: format!("reventless_number({value})"),
            text: format!("(reventless_text({value}) COLLATE \"C\")"),
        }
    }

    /// The columns of the field's expression index, in index order.
    pub(super) fn columns(&self) -> String {
        format!("{}, {}, {}", self.rank, self.number, self.text)
    }
}

/// The two statements of a listing and their parameters.
pub(super) struct ListSql {
    pub(super) count: String,
    pub(super) count_args: Vec<Arg>,
    pub(super) page: String,
    pub(super) page_args: Vec<Arg>,
}

struct Builder {
    clauses: Vec<String>,
    args: Vec<Arg>,
}

impl Builder {
    fn arg(&mut self, value: Arg) -> String {
        let cast = match value {
            Arg::Text(_) => "text",
            Arg::Json(_) => "jsonb",
            Arg::Int(_) => "bigint",
        };
        self.args.push(value);
        format!("${}::{cast}", self.args.len())
    }

    /// The filter as SQL with the meaning of `Filter::matches`. The key parts
    /// are never NULL (a missing field is null), so NOT needs no care.
    fn filter(&mut self, filter: &Filter) -> Result<String, StoreError> {
        let key = FieldKey::of(&filter.field)?;
        Ok(match filter.op {
            FilterOp::Eq => self.equal(filter, &key),
            FilterOp::Ne => format!("NOT {}", self.equal(filter, &key)),
            FilterOp::Lt => self.compare(filter, &key, "<"),
            FilterOp::Lte => self.compare(filter, &key, "<="),
            FilterOp::Gt => self.compare(filter, &key, ">"),
            FilterOp::Gte => self.compare(filter, &key, ">="),
            FilterOp::Contains => match &filter.value {
                Value::String(needle) => {
                    let value = self.arg(Arg::Text(needle.clone()));
                    format!("({} = 3 AND strpos({}, {value}) > 0)", key.rank, key.text)
                }
                _ => "FALSE".to_string(),
            },
        })
    }

    /// `field op value` for an order operator: numbers with numbers, strings
    /// with strings, nothing else.
    fn compare(&mut self, filter: &Filter, key: &FieldKey, op: &str) -> String {
        let FieldKey { rank, number, text } = key;
        match &filter.value {
            Value::Number(_) => {
                let value = self.arg(Arg::Json(filter.value.clone()));
                format!("({rank} = 2 AND {number} {op} reventless_number({value}))")
            }
            Value::String(string) => {
                let value = self.arg(Arg::Text(string.clone()));
                format!("({rank} = 3 AND {number} = 0 AND {text} {op} {value})")
            }
            _ => "FALSE".to_string(),
        }
    }

    /// `field = value` with the meaning of `Filter::matches`.
    fn equal(&mut self, filter: &Filter, key: &FieldKey) -> String {
        let FieldKey { rank, number, text } = key;
        match &filter.value {
            Value::Null => format!("({rank} = 0)"),
            Value::Bool(flag) => format!("({rank} = 1 AND {number} = {})", u8::from(*flag)),
            Value::Number(_) => {
                let value = self.arg(Arg::Json(filter.value.clone()));
                format!("({rank} = 2 AND {number} = reventless_number({value}) AND {text} = '')")
            }
            Value::String(string) => {
                let value = self.arg(Arg::Text(string.clone()));
                format!("({rank} = 3 AND {number} = 0 AND {text} = {value})")
            }
            other => {
                let value = self.arg(Arg::Json(other.clone()));
                format!("COALESCE((data -> '{}') = {value}, FALSE)", filter.field)
            }
        }
    }

    /// Rows after the cursor in the listing order: one row comparison, which
    /// an index on the order field serves as a range.
    fn after(&mut self, cursor: &Cursor, order_by: Option<&OrderBy>) -> Result<String, StoreError> {
        let Some(order) = order_by else {
            let id = self.arg(Arg::Text(cursor.id.clone()));
            return Ok(format!("id > {id}"));
        };
        let key = FieldKey::of(&order.field)?;
        let sort = self.arg(Arg::Json(cursor.sort.clone()));
        let id = self.arg(Arg::Text(cursor.id.clone()));
        let op = if order.descending { "<" } else { ">" };
        Ok(format!("({}, id) {op} ({}, {id})", key.columns(), FieldKey::over(&sort).columns()))
    }
}

/// The count and page statements of `request` on `table`.
pub(super) fn list_sql(table: &str, request: &ListRequest) -> Result<ListSql, StoreError> {
    let mut sql = Builder { clauses: Vec::new(), args: Vec::new() };
    let table_arg = sql.arg(Arg::Text(table.to_string()));
    sql.clauses.push(format!("tbl = {table_arg}"));
    for filter in &request.filters {
        let clause = sql.filter(filter)?;
        sql.clauses.push(clause);
    }
    let count = format!("SELECT count(*) FROM query_row WHERE {}", sql.clauses.join(" AND "));
    let count_args = sql.args.clone();
    let order_by = request.order_by.as_ref();
    if let Some(after) = request.after.as_deref() {
        let clause = sql.after(&Cursor::decode(after)?, order_by)?;
        sql.clauses.push(clause);
    }
    let order = match order_by {
        None => "id".to_string(),
        Some(order) => {
            let direction = if order.descending { "DESC" } else { "ASC" };
            let key = FieldKey::of(&order.field)?;
            format!(
                "{r} {direction}, {n} {direction}, {t} {direction}, id {direction}",
                r = key.rank,
                n = key.number,
                t = key.text
            )
        }
    };
    // One row more than asked tells whether a next page exists.
    let limit = sql.arg(Arg::Int(i64::try_from(request.first).unwrap_or(i64::MAX - 1).saturating_add(1)));
    let page =
        format!("SELECT id, data FROM query_row WHERE {} ORDER BY {order} LIMIT {limit}", sql.clauses.join(" AND "));
    Ok(ListSql { count, count_args, page, page_args: sql.args })
}
