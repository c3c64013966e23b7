use async_trait::async_trait;
use reventless_core::store::{AggregateEventLog, Appended, StoreError, require_events};
use reventless_spec::{EventEnvelope, NewEvent, Timestamp};
use rusqlite::params;

use crate::sqlite::{
    EVENT_COLUMNS, EventTable, RawEvent, SqliteDatabase, appended_after, json_text, log_head, sql_error, to_position,
    to_sql_position,
};

/// Aggregate streams in the `aggregate_event` table.
#[derive(Clone, Debug)]
pub struct SqliteAggregateLog {
    db: SqliteDatabase,
}

impl SqliteAggregateLog {
    pub fn new(db: SqliteDatabase) -> Self {
        Self { db }
    }
}

fn read_events(
    connection: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
    log: &str,
) -> Result<Vec<EventEnvelope>, StoreError> {
    let mut statement = connection.prepare_cached(sql).map_err(sql_error)?;
    let rows = statement.query_map(params, |row| RawEvent::from_row(row, true)).map_err(sql_error)?;
    let mut events = Vec::new();
    for row in rows {
        events.push(row.map_err(sql_error)?.into_envelope("aggregate_event", log)?);
    }
    Ok(events)
}

#[async_trait]
impl AggregateEventLog for SqliteAggregateLog {
    async fn append(
        &self,
        log: &str,
        stream_id: &str,
        expected_version: u64,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        require_events(&events)?;
        let rows = events
            .into_iter()
            .map(|e| {
                Ok((
                    e.event_id.to_string(),
                    e.event_type,
                    json_text(&e.tags)?,
                    json_text(&e.data)?,
                    json_text(&e.meta)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let (log, stream_id) = (log.to_string(), stream_id.to_string());
        let expected = to_sql_position(expected_version)?;
        self.db
            .write(move |connection| {
                let version: i64 = connection
                    .prepare_cached(
                        "SELECT COALESCE(MAX(version), 0) FROM aggregate_event WHERE log = ?1 AND stream_id = ?2",
                    )
                    .and_then(|mut s| s.query_row(params![log, stream_id], |row| row.get(0)))
                    .map_err(sql_error)?;
                if version != expected {
                    return Err(StoreError::Conflict(format!(
                        "stream {stream_id} is at version {version}, expected {expected}"
                    )));
                }
                let head = log_head(connection, EventTable::Aggregate, &log)?;
                let appended = appended_after(head, rows.len())?;
                let recorded_at = i64::try_from(Timestamp::now().0).unwrap_or(i64::MAX);
                let mut insert = connection
                    .prepare_cached(
                        "INSERT INTO aggregate_event (log, position, stream_id, version, event_id, type, tags, data, meta, recorded_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    )
                    .map_err(sql_error)?;
                for (offset, (event_id, event_type, tags, data, meta)) in rows.into_iter().enumerate() {
                    let offset = offset as i64 + 1;
                    insert
                        .execute(params![log, head + offset, stream_id, version + offset, event_id, event_type, tags, data, meta, recorded_at])
                        .map_err(sql_error)?;
                }
                Ok(appended)
            })
            .await
    }

    async fn read_stream(
        &self,
        log: &str,
        stream_id: &str,
        after_version: u64,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        let (log, stream_id) = (log.to_string(), stream_id.to_string());
        let after = to_sql_position(after_version)?;
        self.db
            .read(move |connection| {
                let sql = format!(
                    "SELECT {EVENT_COLUMNS}, stream_id, version FROM aggregate_event \
                     WHERE log = ?1 AND stream_id = ?2 AND version > ?3 ORDER BY version"
                );
                read_events(connection, &sql, params![log, stream_id, after], &log)
            })
            .await
    }

    async fn read_all(&self, log: &str, after: u64, limit: usize) -> Result<Vec<EventEnvelope>, StoreError> {
        let log = log.to_string();
        let after = to_sql_position(after)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .read(move |connection| {
                let sql = format!(
                    "SELECT {EVENT_COLUMNS}, stream_id, version FROM aggregate_event \
                     WHERE log = ?1 AND position > ?2 ORDER BY position LIMIT ?3"
                );
                read_events(connection, &sql, params![log, after, limit], &log)
            })
            .await
    }

    async fn head(&self, log: &str) -> Result<u64, StoreError> {
        let log = log.to_string();
        self.db
            .read(move |connection| {
                to_position(log_head(connection, EventTable::Aggregate, &log)?).map_err(StoreError::Invalid)
            })
            .await
    }
}
