//! Plugins' query tables and checkpoints on PostgreSQL: JSON rows by
//! (table, id) in `query_row` (jsonb), projection checkpoints in
//! `checkpoint`, written in one statement so that rows and progress commit
//! together. Listings filter and order in SQL (`list.rs`), on expression
//! indexes for the declared index fields.
mod list;

use std::collections::HashMap;

use async_trait::async_trait;
use reventless_core::store::{Checkpoint, Cursor, ListRequest, Page, QueryStore, RowOp, StoreError};
use serde_json::Value;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::PgDatabase;
use crate::database::{pg_error, to_position, to_sql_position};
use list::{FieldKey, list_sql};

const GET_MANY: &str = include_str!("get_many.sql");
const COMMIT: &str = include_str!("commit.sql");
const COMMIT_WITH_CHECKPOINT: &str = include_str!("commit_with_checkpoint.sql");

/// A lock number of its own: processes creating the same indexes at once
/// would otherwise race on the catalog.
const INDEX_LOCK: i64 = 7_472_657_666;

/// Query tables and checkpoints in one database.
#[derive(Clone, Debug)]
pub struct PgQueryStore {
    db: PgDatabase,
}

impl PgQueryStore {
    pub fn new(db: PgDatabase) -> Self {
        Self { db }
    }

    /// Creates the expression indexes for filtering and ordering on `fields`
    /// (a read model's declared index fields), so that a listing filtered or
    /// ordered by one reads an index range instead of the table.
    pub async fn create_indexes(&self, fields: Vec<String>) -> Result<(), StoreError> {
        let statements = fields
            .iter()
            .map(|field| {
                let key = FieldKey::of(field)?;
                Ok(format!(
                    "CREATE INDEX IF NOT EXISTS \"{}\" ON query_row (tbl, {}, id)",
                    index_name(field),
                    key.columns()
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        if statements.is_empty() {
            return Ok(());
        }
        let mut client = self.db.client().await?;
        let transaction = client.transaction().await.map_err(pg_error)?;
        transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&INDEX_LOCK]).await.map_err(pg_error)?;
        for statement in &statements {
            transaction.batch_execute(statement).await.map_err(pg_error)?;
        }
        transaction.commit().await.map_err(pg_error)
    }

    /// PostgreSQL's plan of the page query of `request` (`EXPLAIN`): which
    /// index a listing reads, for operators and tests.
    pub async fn explain_list(&self, table: &str, request: &ListRequest) -> Result<String, StoreError> {
        let sql = list_sql(table, request)?;
        let client = self.db.client().await?;
        let args: Vec<&(dyn ToSql + Sync)> = sql.page_args.iter().map(|a| a.as_sql()).collect();
        let rows = client.query(&format!("EXPLAIN {}", sql.page), &args).await.map_err(pg_error)?;
        let lines = rows.iter().map(|row| row.try_get::<_, String>(0)).collect::<Result<Vec<_>, _>>();
        Ok(lines.map_err(pg_error)?.join("\n"))
    }
}

/// `query_row_by_<field>`, kept within PostgreSQL's 63-byte names (a longer
/// field gets a hash suffix so that two long names never share an index).
fn index_name(field: &str) -> String {
    let name = format!("query_row_by_{field}");
    if name.len() <= 63 {
        return name;
    }
    // FNV-1a: stable across builds, unlike the std hasher.
    let hash = field
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3));
    format!("{}_{hash:016x}", &name[..46])
}

/// The row's JSON, or `Corrupt` naming it (a value the decoder refuses, such
/// as a number beyond f64 written by hand).
fn row_data(row: &Row, column: usize, table: &str, id: &str) -> Result<Value, StoreError> {
    row.try_get::<_, Value>(column)
        .map_err(|e| StoreError::Corrupt { location: format!("query_row {table}/{id}"), message: e.to_string() })
}

fn row_id(row: &Row, table: &str) -> Result<String, StoreError> {
    row.try_get::<_, String>(0)
        .map_err(|e| StoreError::Corrupt { location: format!("query_row {table}"), message: e.to_string() })
}

/// PostgreSQL refuses `\u0000` in jsonb and text: an invalid row (or
/// message body), not a broken store.
pub(crate) fn refuse_nul(id: &str, row: &Value) -> Result<(), StoreError> {
    fn has_nul(value: &Value) -> bool {
        match value {
            Value::String(text) => text.contains('\0'),
            Value::Array(items) => items.iter().any(has_nul),
            Value::Object(fields) => fields.iter().any(|(key, value)| key.contains('\0') || has_nul(value)),
            _ => false,
        }
    }
    if id.contains('\0') || has_nul(row) {
        return Err(StoreError::Invalid(format!("row {id:?} holds a NUL character, which PostgreSQL cannot store")));
    }
    Ok(())
}

/// What a commit leaves: rows put (ids and rows, index by index) and ids deleted.
#[derive(Default)]
struct NetChanges {
    put_ids: Vec<String>,
    put_rows: Vec<Value>,
    deleted: Vec<String>,
}

/// The net effect of `ops` applied in order: the last op per id (puts and
/// deletes disjoint), ids sorted so that concurrent commits lock rows in one order.
fn net_changes(ops: Vec<RowOp>) -> Result<NetChanges, StoreError> {
    let mut last: HashMap<String, Option<Value>> = HashMap::with_capacity(ops.len());
    for op in ops {
        match op {
            RowOp::Put { id, row } => {
                refuse_nul(&id, &row)?;
                last.insert(id, Some(row));
            }
            RowOp::Delete { id } => {
                last.insert(id, None);
            }
        }
    }
    let mut changes: Vec<(String, Option<Value>)> = last.into_iter().collect();
    changes.sort_by(|a, b| a.0.cmp(&b.0));
    let mut net = NetChanges::default();
    for (id, row) in changes {
        match row {
            Some(row) => {
                net.put_ids.push(id);
                net.put_rows.push(row);
            }
            None => net.deleted.push(id),
        }
    }
    Ok(net)
}

#[async_trait]
impl QueryStore for PgQueryStore {
    async fn get(&self, table: &str, id: &str) -> Result<Option<Value>, StoreError> {
        let client = self.db.client().await?;
        let statement = client
            .prepare_cached("SELECT data FROM query_row WHERE tbl = $1::text AND id = $2::text")
            .await
            .map_err(pg_error)?;
        let row = client.query_opt(&statement, &[&table, &id]).await.map_err(pg_error)?;
        row.map(|row| row_data(&row, 0, table, id)).transpose()
    }

    async fn get_many(&self, table: &str, ids: &[String]) -> Result<Vec<(String, Value)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.db.client().await?;
        let statement = client.prepare_cached(GET_MANY).await.map_err(pg_error)?;
        let rows = client.query(&statement, &[&table, &ids]).await.map_err(pg_error)?;
        let mut found: HashMap<String, Value> = HashMap::with_capacity(rows.len());
        for row in &rows {
            let id = row_id(row, table)?;
            let data = row_data(row, 1, table, &id)?;
            found.insert(id, data);
        }
        // In the order asked (an id asked twice, twice), as the other stores answer.
        Ok(ids.iter().filter_map(|id| found.get(id).map(|row| (id.clone(), row.clone()))).collect())
    }

    async fn list(&self, table: &str, request: &ListRequest) -> Result<Page, StoreError> {
        let sql = list_sql(table, request)?;
        let client = self.db.client().await?;
        let (count, page) =
            tokio::try_join!(client.prepare_cached(&sql.count), client.prepare_cached(&sql.page)).map_err(pg_error)?;
        let count_args: Vec<&(dyn ToSql + Sync)> = sql.count_args.iter().map(|a| a.as_sql()).collect();
        let page_args: Vec<&(dyn ToSql + Sync)> = sql.page_args.iter().map(|a| a.as_sql()).collect();
        // Both statements go out together: one round trip.
        let (total, rows) = tokio::try_join!(client.query_one(&count, &count_args), client.query(&page, &page_args))
            .map_err(pg_error)?;
        let total: i64 = total.try_get(0).map_err(pg_error)?;
        let mut page = Vec::with_capacity(rows.len());
        for row in &rows {
            let id = row_id(row, table)?;
            let data = row_data(row, 1, table, &id)?;
            page.push((id, data));
        }
        let has_next_page = page.len() > request.first;
        page.truncate(request.first);
        let end_cursor = page.last().map(|(id, row)| Cursor::of(id, row, request.order_by.as_ref()).encode());
        Ok(Page { rows: page, has_next_page, end_cursor, total_count: u64::try_from(total).unwrap_or(0) })
    }

    async fn commit(&self, table: &str, ops: Vec<RowOp>, checkpoint: Option<Checkpoint>) -> Result<(), StoreError> {
        if table.contains('\0') {
            return Err(StoreError::Invalid("a table name holds a NUL character".into()));
        }
        let NetChanges { put_ids, put_rows, deleted } = net_changes(ops)?;
        let client = self.db.client().await?;
        let Some(checkpoint) = checkpoint else {
            if put_ids.is_empty() && deleted.is_empty() {
                return Ok(());
            }
            let statement = client.prepare_cached(COMMIT).await.map_err(pg_error)?;
            client.execute(&statement, &[&table, &put_ids, &put_rows, &deleted]).await.map_err(pg_error)?;
            return Ok(());
        };
        let position = to_sql_position(checkpoint.position)?;
        let behind = || {
            StoreError::Conflict(format!(
                "checkpoint {} is already at or past {}",
                checkpoint.name, checkpoint.position
            ))
        };
        if position == 0 {
            return Err(behind());
        }
        let statement = client.prepare_cached(COMMIT_WITH_CHECKPOINT).await.map_err(pg_error)?;
        let row = client
            .query_one(&statement, &[&table, &put_ids, &put_rows, &deleted, &checkpoint.name, &position])
            .await
            .map_err(pg_error)?;
        let advanced: i64 = row.try_get(0).map_err(pg_error)?;
        if advanced == 0 {
            return Err(behind());
        }
        Ok(())
    }

    async fn checkpoint(&self, name: &str) -> Result<u64, StoreError> {
        let client = self.db.client().await?;
        let statement =
            client.prepare_cached("SELECT position FROM checkpoint WHERE name = $1::text").await.map_err(pg_error)?;
        let row = client.query_opt(&statement, &[&name]).await.map_err(pg_error)?;
        match row {
            None => Ok(0),
            Some(row) => to_position(row.try_get(0).map_err(pg_error)?, &format!("checkpoint {name}")),
        }
    }
}
