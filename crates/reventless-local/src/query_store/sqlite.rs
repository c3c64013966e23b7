use async_trait::async_trait;
use reventless_core::store::{
    Checkpoint, Cursor, Filter, FilterOp, ListRequest, OrderBy, Page, QueryStore, RowOp, StoreError,
};
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, params, params_from_iter};
use serde_json::Value;

use crate::sqlite::{SqliteDatabase, json_text, sql_error, to_position, to_sql_position};

/// Query rows as JSON in `query_row`; filters and order run in SQL on
/// `json_extract`, backed by expression indexes for declared index fields.
#[derive(Clone, Debug)]
pub struct SqliteQueryStore {
    db: SqliteDatabase,
}

impl SqliteQueryStore {
    pub fn new(db: SqliteDatabase) -> Self {
        Self { db }
    }

    /// Creates the expression indexes for filtering and ordering on `fields`.
    pub async fn create_indexes(&self, fields: Vec<String>) -> Result<(), StoreError> {
        let statements = fields
            .iter()
            .map(|field| {
                Ok(format!(
                    "CREATE INDEX IF NOT EXISTS \"query_row_by_{field}\" ON query_row (tbl, {}, id)",
                    field_expression(field)?
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.db
            .write(move |connection| {
                for statement in &statements {
                    connection.execute_batch(statement).map_err(sql_error)?;
                }
                Ok(())
            })
            .await
    }
}

/// `json_extract(data, '$.field')` for a plain field name (letters, digits,
/// `_`); the name is inlined so that expression indexes can match.
fn field_expression(field: &str) -> Result<String, StoreError> {
    let valid = field.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(StoreError::Invalid(format!("field name {field:?} must be letters, digits and _")));
    }
    Ok(format!("json_extract(data, '$.{field}')"))
}

fn json_type(field: &str) -> String {
    format!("json_type(data, '$.{field}')")
}

/// A JSON value as SQLite's `json_extract` returns it.
fn sql_value(value: &Value) -> SqlValue {
    match value {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

struct Sql {
    clauses: Vec<String>,
    args: Vec<SqlValue>,
}

impl Sql {
    fn arg(&mut self, value: SqlValue) -> String {
        self.args.push(value);
        format!("?{}", self.args.len())
    }

    /// The filter as SQL with the same meaning as `Filter::matches`.
    fn filter(&mut self, filter: &Filter) -> Result<String, StoreError> {
        let field = field_expression(&filter.field)?;
        let kind = json_type(&filter.field);
        let equal = match &filter.value {
            Value::Null => format!("({kind} IS NULL OR {kind} = 'null')"),
            Value::Bool(true) => format!("{kind} = 'true'"),
            Value::Bool(false) => format!("{kind} = 'false'"),
            Value::Number(_) => {
                format!("({kind} IN ('integer', 'real') AND {field} = {})", self.arg(sql_value(&filter.value)))
            }
            Value::String(_) => format!("({kind} = 'text' AND {field} = {})", self.arg(sql_value(&filter.value))),
            other => format!("({field} = json({}))", self.arg(SqlValue::Text(other.to_string()))),
        };
        let same_kind = match &filter.value {
            Value::Number(_) => format!("{kind} IN ('integer', 'real')"),
            Value::String(_) => format!("{kind} = 'text'"),
            _ => "0".to_string(),
        };
        let compare = |this: &mut Self, op: &str| {
            if same_kind == "0" {
                "0".to_string()
            } else {
                format!("({same_kind} AND {field} {op} {})", this.arg(sql_value(&filter.value)))
            }
        };
        Ok(match filter.op {
            FilterOp::Eq => equal,
            FilterOp::Ne => format!("NOT COALESCE({equal}, 0)"),
            FilterOp::Lt => compare(self, "<"),
            FilterOp::Lte => compare(self, "<="),
            FilterOp::Gt => compare(self, ">"),
            FilterOp::Gte => compare(self, ">="),
            FilterOp::Contains => match &filter.value {
                Value::String(needle) => {
                    format!("({kind} = 'text' AND instr({field}, {}) > 0)", self.arg(SqlValue::Text(needle.clone())))
                }
                _ => "0".to_string(),
            },
        })
    }

    /// Rows after the cursor in the listing order.
    fn after(&mut self, cursor: &Cursor, order_by: Option<&OrderBy>) -> Result<String, StoreError> {
        let id = self.arg(SqlValue::Text(cursor.id.clone()));
        let Some(order) = order_by else { return Ok(format!("id > {id}")) };
        let sort = field_expression(&order.field)?;
        Ok(match (order.descending, cursor.sort.is_null()) {
            (false, false) => {
                let value = self.arg(sql_value(&cursor.sort));
                format!("({sort} > {value} OR ({sort} = {value} AND id > {id}))")
            }
            (false, true) => format!("(({sort} IS NULL AND id > {id}) OR {sort} IS NOT NULL)"),
            (true, false) => {
                let value = self.arg(sql_value(&cursor.sort));
                format!("({sort} < {value} OR ({sort} = {value} AND id < {id}) OR {sort} IS NULL)")
            }
            (true, true) => format!("({sort} IS NULL AND id < {id})"),
        })
    }
}

fn parse_row(table: &str, id: &str, data: &str) -> Result<Value, StoreError> {
    serde_json::from_str(data)
        .map_err(|e| StoreError::Corrupt { location: format!("query_row {table}/{id}"), message: e.to_string() })
}

#[async_trait]
impl QueryStore for SqliteQueryStore {
    async fn get(&self, table: &str, id: &str) -> Result<Option<Value>, StoreError> {
        let (table, id) = (table.to_string(), id.to_string());
        self.db
            .read(move |connection| {
                let data: Option<String> = connection
                    .prepare_cached("SELECT data FROM query_row WHERE tbl = ?1 AND id = ?2")
                    .and_then(|mut s| s.query_row(params![table, id], |row| row.get(0)).optional())
                    .map_err(sql_error)?;
                data.map(|data| parse_row(&table, &id, &data)).transpose()
            })
            .await
    }

    async fn get_many(&self, table: &str, ids: &[String]) -> Result<Vec<(String, Value)>, StoreError> {
        let (table, ids) = (table.to_string(), ids.to_vec());
        self.db
            .read(move |connection| {
                let mut statement = connection
                    .prepare_cached("SELECT data FROM query_row WHERE tbl = ?1 AND id = ?2")
                    .map_err(sql_error)?;
                let mut found = Vec::new();
                for id in ids {
                    let data: Option<String> =
                        statement.query_row(params![table, id], |row| row.get(0)).optional().map_err(sql_error)?;
                    if let Some(data) = data {
                        let row = parse_row(&table, &id, &data)?;
                        found.push((id, row));
                    }
                }
                Ok(found)
            })
            .await
    }

    async fn list(&self, table: &str, request: &ListRequest) -> Result<Page, StoreError> {
        let mut sql = Sql { clauses: Vec::new(), args: Vec::new() };
        let table_arg = sql.arg(SqlValue::Text(table.to_string()));
        sql.clauses.push(format!("tbl = {table_arg}"));
        for filter in &request.filters {
            let clause = sql.filter(filter)?;
            sql.clauses.push(clause);
        }
        let count_sql = format!("SELECT COUNT(*) FROM query_row WHERE {}", sql.clauses.join(" AND "));
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
                format!("{} {direction}, id {direction}", field_expression(&order.field)?)
            }
        };
        let first = request.first;
        let limit = sql.arg(SqlValue::Integer(i64::try_from(first).unwrap_or(i64::MAX - 1) + 1));
        let page_sql = format!(
            "SELECT id, data FROM query_row WHERE {} ORDER BY {order} LIMIT {limit}",
            sql.clauses.join(" AND ")
        );
        let table = table.to_string();
        let order_by = request.order_by.clone();
        self.db
            .read(move |connection| {
                let total: i64 = connection
                    .prepare_cached(&count_sql)
                    .and_then(|mut s| s.query_row(params_from_iter(count_args), |row| row.get(0)))
                    .map_err(sql_error)?;
                let mut statement = connection.prepare_cached(&page_sql).map_err(sql_error)?;
                let rows = statement
                    .query_map(params_from_iter(sql.args), |row| {
                        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                    })
                    .map_err(sql_error)?;
                let mut page = Vec::new();
                for row in rows {
                    let (id, data) = row.map_err(sql_error)?;
                    let value = parse_row(&table, &id, &data)?;
                    page.push((id, value));
                }
                let has_next_page = page.len() > first;
                page.truncate(first);
                let end_cursor = page.last().map(|(id, row)| Cursor::of(id, row, order_by.as_ref()).encode());
                Ok(Page { rows: page, has_next_page, end_cursor, total_count: to_position(total).unwrap_or(0) })
            })
            .await
    }

    async fn commit(&self, table: &str, ops: Vec<RowOp>, checkpoint: Option<Checkpoint>) -> Result<(), StoreError> {
        let ops = ops
            .into_iter()
            .map(|op| match op {
                RowOp::Put { id, row } => Ok((id, Some(json_text(&row)?))),
                RowOp::Delete { id } => Ok((id, None)),
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let checkpoint = checkpoint.map(|c| Ok::<_, StoreError>((c.name, to_sql_position(c.position)?))).transpose()?;
        let table = table.to_string();
        self.db
            .write(move |connection| {
                if let Some((name, position)) = &checkpoint {
                    let stored: i64 = connection
                        .prepare_cached("SELECT position FROM checkpoint WHERE name = ?1")
                        .and_then(|mut s| s.query_row(params![name], |row| row.get(0)).optional())
                        .map_err(sql_error)?
                        .unwrap_or(0);
                    if *position <= stored {
                        return Err(StoreError::Conflict(format!(
                            "checkpoint {name} is already at {stored}, not behind {position}"
                        )));
                    }
                }
                let mut put = connection
                    .prepare_cached("INSERT OR REPLACE INTO query_row (tbl, id, data) VALUES (?1, ?2, ?3)")
                    .map_err(sql_error)?;
                let mut delete =
                    connection.prepare_cached("DELETE FROM query_row WHERE tbl = ?1 AND id = ?2").map_err(sql_error)?;
                for (id, data) in ops {
                    match data {
                        Some(data) => put.execute(params![table, id, data]),
                        None => delete.execute(params![table, id]),
                    }
                    .map_err(sql_error)?;
                }
                if let Some((name, position)) = checkpoint {
                    connection
                        .prepare_cached("INSERT OR REPLACE INTO checkpoint (name, position) VALUES (?1, ?2)")
                        .and_then(|mut s| s.execute(params![name, position]))
                        .map_err(sql_error)?;
                }
                Ok(())
            })
            .await
    }

    async fn checkpoint(&self, name: &str) -> Result<u64, StoreError> {
        let name = name.to_string();
        self.db
            .read(move |connection| {
                let position: Option<i64> = connection
                    .prepare_cached("SELECT position FROM checkpoint WHERE name = ?1")
                    .and_then(|mut s| s.query_row(params![name], |row| row.get(0)).optional())
                    .map_err(sql_error)?;
                to_position(position.unwrap_or(0)).map_err(StoreError::Invalid)
            })
            .await
    }
}
