//! Plugins' event logs on PostgreSQL: the `event` / `event_tag` tables,
//! positions gapless per log; an aggregate's events also carry their stream
//! (`stream_type` = the entity tag key, `stream_id`, `version`, unique per
//! log), which is also how tag queries find them by their entity tag.
//!
//! Appends go through `batch` (group commit; the head row of a log
//! serializes its writers across processes). Reads are single READ
//! COMMITTED statements: a log's commits are serialized by its head row, so
//! its events become visible in position order, never with a gap.
mod batch;
mod check;
mod query;
mod row;

use std::sync::Arc;

use async_trait::async_trait;
use reventless_core::store::{Appended, EventLog, StoreError, StreamRef, require_events};
use reventless_spec::{AppendCondition, EventEnvelope, NewEvent, Query, entity_tag_key};

use crate::PgDatabase;
use crate::database::{pg_error, to_position, to_sql_position};
use batch::{EventRow, Guard, Writer};

const HEAD: &str = include_str!("head.sql");
const READ_STREAM: &str = include_str!("read_stream.sql");
const READ_ALL: &str = include_str!("read_all.sql");
const READ_ALL_OF: &str = include_str!("read_all_of.sql");

/// Plugins' event logs in one database. Clones share one append queue;
/// separate handles (or processes) on one database are serialized per log
/// by the database.
#[derive(Clone)]
pub struct PgEventLog {
    db: PgDatabase,
    writer: Arc<Writer>,
}

impl std::fmt::Debug for PgEventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgEventLog").field("db", &self.db).finish_non_exhaustive()
    }
}

impl PgEventLog {
    pub fn new(db: PgDatabase) -> Self {
        Self { writer: Arc::new(Writer::new(db.clone())), db }
    }

    async fn query_events(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        log: &str,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        let client = self.db.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(pg_error)?;
        let rows = client.query(&statement, params).await.map_err(pg_error)?;
        rows.iter().map(|row| row::decode(row, log)).collect()
    }
}

/// Text PostgreSQL cannot store (a NUL character) is refused before it can
/// fail a whole batch.
fn storable(what: &str, text: &str) -> Result<(), StoreError> {
    if text.contains('\0') {
        return Err(StoreError::Invalid(format!("{what} {text:?} contains a NUL character")));
    }
    Ok(())
}

fn json_text<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid(format!("value does not serialize: {e}")))
}

/// Checks and renders an append's events.
fn event_rows(log: &str, events: Vec<NewEvent>) -> Result<Vec<EventRow>, StoreError> {
    require_events(&events)?;
    storable("log name", log)?;
    events
        .into_iter()
        .map(|event| {
            storable("event type", &event.event_type)?;
            let mut tag_texts: Vec<String> = event.tags.iter().map(ToString::to_string).collect();
            for tag in &tag_texts {
                storable("tag", tag)?;
            }
            tag_texts.sort_unstable();
            tag_texts.dedup();
            Ok(EventRow {
                event_id: event.event_id,
                tags_json: json_text(&event.tags)?,
                data: json_text(&event.data)?,
                meta: json_text(&event.meta)?,
                event_type: event.event_type,
                tags: event.tags,
                tag_texts,
            })
        })
        .collect()
}

/// A query's texts (types, tags) checked like an append's.
fn storable_query(query: &Query) -> Result<(), StoreError> {
    for item in &query.items {
        for event_type in &item.types {
            storable("event type", event_type)?;
        }
        for tag in &item.tags {
            storable("tag", &tag.to_string())?;
        }
    }
    Ok(())
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[async_trait]
impl EventLog for PgEventLog {
    async fn read(
        &self,
        log: &str,
        query: &Query,
        after: Option<u64>,
        limit: Option<usize>,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        storable("log name", log)?;
        storable_query(query)?;
        let after = to_sql_position(after.unwrap_or(0))?;
        let Some((sql, args)) = query::read_sql(log, query, after, limit.map(sql_limit)) else {
            return Ok(Vec::new());
        };
        self.query_events(&sql, &args.values(), log).await
    }

    async fn append(
        &self,
        log: &str,
        events: Vec<NewEvent>,
        condition: Option<&AppendCondition>,
    ) -> Result<Appended, StoreError> {
        let rows = event_rows(log, events)?;
        let guard = match condition {
            Some(condition) => {
                storable_query(&condition.fail_if_events_match)?;
                Guard::Condition { sources: check::sources(condition)?, condition: condition.clone() }
            }
            None => Guard::None,
        };
        self.writer.submit(log.to_string(), rows, guard).await
    }

    async fn append_to_stream(
        &self,
        log: &str,
        stream: StreamRef<'_>,
        expected_version: u64,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        let rows = event_rows(log, events)?;
        let key = entity_tag_key(stream.aggregate);
        storable("aggregate", &key)?;
        storable("entity id", stream.id)?;
        let expected = to_sql_position(expected_version)?;
        let guard = Guard::Stream { key, id: stream.id.to_string(), expected };
        self.writer.submit(log.to_string(), rows, guard).await
    }

    async fn read_stream(
        &self,
        log: &str,
        stream: StreamRef<'_>,
        after_version: u64,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        let key = entity_tag_key(stream.aggregate);
        for (what, text) in [("log name", log), ("aggregate", key.as_str()), ("entity id", stream.id)] {
            storable(what, text)?;
        }
        let after = to_sql_position(after_version)?;
        self.query_events(READ_STREAM, &[&log, &key, &stream.id, &after], log).await
    }

    async fn read_all(&self, log: &str, after: u64, limit: usize) -> Result<Vec<EventEnvelope>, StoreError> {
        storable("log name", log)?;
        let (after, limit) = (to_sql_position(after)?, sql_limit(limit));
        self.query_events(READ_ALL, &[&log, &after, &limit], log).await
    }

    async fn read_all_of(
        &self,
        log: &str,
        after: u64,
        limit: usize,
        types: &[&str],
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        storable("log name", log)?;
        for event_type in types {
            storable("event type", event_type)?;
        }
        let (after, limit) = (to_sql_position(after)?, sql_limit(limit));
        self.query_events(READ_ALL_OF, &[&log, &after, &limit, &types], log).await
    }

    async fn head(&self, log: &str) -> Result<u64, StoreError> {
        storable("log name", log)?;
        let client = self.db.client().await?;
        let statement = client.prepare_cached(HEAD).await.map_err(pg_error)?;
        let row = client.query_opt(&statement, &[&log]).await.map_err(pg_error)?;
        let Some(row) = row else { return Ok(0) };
        let head: i64 = row
            .try_get(0)
            .map_err(|e| StoreError::Corrupt { location: format!("event_log_head {log}"), message: e.to_string() })?;
        to_position(head, &format!("event_log_head {log}"))
    }
}
