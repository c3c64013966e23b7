use async_trait::async_trait;
use reventless_core::store::{Appended, DcbEventLog, StoreError};
use reventless_spec::{AppendCondition, EventEnvelope, NewEvent, Query, QueryItem, Timestamp};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter};

use crate::sqlite::{EVENT_COLUMNS, RawEvent, SqliteDatabase, json_text, sql_error, to_position, to_sql_position};

/// A DCB log in the `dcb_event` / `dcb_tag` tables, positions gapless per log.
#[derive(Clone, Debug)]
pub struct SqliteDcbLog {
    db: SqliteDatabase,
}

impl SqliteDcbLog {
    pub fn new(db: SqliteDatabase) -> Self {
        Self { db }
    }
}

/// SQL selecting the positions (> `after`) of one log's events matching
/// `query`, one index-driven sub-select per item; `None` for a query without
/// items (it matches nothing).
fn matching_positions(log: &str, query: &Query, after: i64, args: &mut Vec<SqlValue>) -> Option<String> {
    let selects: Vec<String> = query.items.iter().map(|item| item_positions(log, item, after, args)).collect();
    (!selects.is_empty()).then(|| selects.join(" UNION "))
}

fn item_positions(log: &str, item: &QueryItem, after: i64, args: &mut Vec<SqlValue>) -> String {
    let mut push = |value: SqlValue| {
        args.push(value);
        format!("?{}", args.len())
    };
    let types = |push: &mut dyn FnMut(SqlValue) -> String, column: &str| {
        if item.types.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = item.types.iter().map(|t| push(SqlValue::Text(t.clone()))).collect();
            format!(" AND {column} IN ({})", list.join(", "))
        }
    };
    let log_arg = push(SqlValue::Text(log.to_string()));
    let after_arg = push(SqlValue::Integer(after));
    let Some((first, rest)) = item.tags.split_first() else {
        let types = types(&mut push, "type");
        return format!("SELECT position FROM dcb_event WHERE log = {log_arg} AND position > {after_arg}{types}");
    };
    let first_arg = push(SqlValue::Text(first.to_string()));
    let types = types(&mut push, "t0.type");
    let mut sql = format!(
        "SELECT t0.position FROM dcb_tag t0 WHERE t0.log = {log_arg} AND t0.tag = {first_arg} AND t0.position > {after_arg}{types}"
    );
    for tag in rest {
        let tag_arg = push(SqlValue::Text(tag.to_string()));
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM dcb_tag tn WHERE tn.log = t0.log AND tn.tag = {tag_arg} AND tn.position = t0.position)"
        ));
    }
    sql
}

#[async_trait]
impl DcbEventLog for SqliteDcbLog {
    async fn read(
        &self,
        log: &str,
        query: &Query,
        after: Option<u64>,
        limit: Option<usize>,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        let mut args = Vec::new();
        let after = to_sql_position(after.unwrap_or(0))?;
        let Some(positions) = matching_positions(log, query, after, &mut args) else {
            return Ok(Vec::new());
        };
        args.push(SqlValue::Text(log.to_string()));
        let log_arg = args.len();
        args.push(SqlValue::Integer(limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX))));
        let limit_arg = args.len();
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM dcb_event WHERE log = ?{log_arg} AND position IN ({positions}) \
             ORDER BY position LIMIT ?{limit_arg}"
        );
        let log = log.to_string();
        self.db
            .read(move |connection| {
                let mut statement = connection.prepare_cached(&sql).map_err(sql_error)?;
                let rows = statement
                    .query_map(params_from_iter(args), |row| RawEvent::from_row(row, false))
                    .map_err(sql_error)?;
                let mut events = Vec::new();
                for row in rows {
                    events.push(row.map_err(sql_error)?.into_envelope("dcb_event", &log)?);
                }
                Ok(events)
            })
            .await
    }

    async fn append(
        &self,
        log: &str,
        events: Vec<NewEvent>,
        condition: Option<&AppendCondition>,
    ) -> Result<Appended, StoreError> {
        if events.is_empty() {
            return Err(StoreError::Invalid("an append needs at least one event".into()));
        }
        let check = match condition {
            Some(condition) => {
                let mut args = Vec::new();
                let after = to_sql_position(condition.after.unwrap_or(0))?;
                matching_positions(log, &condition.fail_if_events_match, after, &mut args)
                    .map(|positions| (format!("SELECT position FROM ({positions}) LIMIT 1"), args))
            }
            None => None,
        };
        let rows = events
            .into_iter()
            .map(|e| {
                let mut tags: Vec<String> = e.tags.iter().map(ToString::to_string).collect();
                tags.sort_unstable();
                tags.dedup();
                Ok((
                    e.event_id.to_string(),
                    e.event_type,
                    json_text(&e.tags)?,
                    tags,
                    json_text(&e.data)?,
                    json_text(&e.meta)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let log = log.to_string();
        self.db
            .write(move |connection| {
                if let Some((sql, args)) = check {
                    let mut statement = connection.prepare_cached(&sql).map_err(sql_error)?;
                    let mut found = statement.query(params_from_iter(args)).map_err(sql_error)?;
                    if let Some(row) = found.next().map_err(sql_error)? {
                        let position: i64 = row.get(0).map_err(sql_error)?;
                        return Err(StoreError::Conflict(format!(
                            "the event at position {position} matches the append condition"
                        )));
                    }
                }
                let head: i64 = connection
                    .prepare_cached("SELECT COALESCE(MAX(position), 0) FROM dcb_event WHERE log = ?1")
                    .and_then(|mut s| s.query_row(params![log], |row| row.get(0)))
                    .map_err(sql_error)?;
                let recorded_at = i64::try_from(Timestamp::now().0).unwrap_or(i64::MAX);
                let mut insert_event = connection
                    .prepare_cached(
                        "INSERT INTO dcb_event (log, position, event_id, type, tags, data, meta, recorded_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )
                    .map_err(sql_error)?;
                let mut insert_tag = connection
                    .prepare_cached("INSERT INTO dcb_tag (log, tag, position, type) VALUES (?1, ?2, ?3, ?4)")
                    .map_err(sql_error)?;
                let count = rows.len() as i64;
                for (offset, (event_id, event_type, tags_json, tags, data, meta)) in rows.into_iter().enumerate() {
                    let position = head + offset as i64 + 1;
                    insert_event
                        .execute(params![log, position, event_id, event_type, tags_json, data, meta, recorded_at])
                        .map_err(sql_error)?;
                    for tag in tags {
                        insert_tag.execute(params![log, tag, position, event_type]).map_err(sql_error)?;
                    }
                }
                Ok(Appended {
                    first_position: to_position(head + 1).map_err(StoreError::Invalid)?,
                    last_position: to_position(head + count).map_err(StoreError::Invalid)?,
                })
            })
            .await
    }

    async fn head(&self, log: &str) -> Result<u64, StoreError> {
        let log = log.to_string();
        self.db
            .read(move |connection| {
                let head: i64 = connection
                    .prepare_cached("SELECT COALESCE(MAX(position), 0) FROM dcb_event WHERE log = ?1")
                    .and_then(|mut s| s.query_row(params![log], |row| row.get(0)))
                    .map_err(sql_error)?;
                to_position(head).map_err(StoreError::Invalid)
            })
            .await
    }
}
