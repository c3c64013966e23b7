use async_trait::async_trait;
use reventless_core::store::{Appended, EventLog, StoreError, StreamRef, require_events};
use reventless_spec::{AppendCondition, EventEnvelope, NewEvent, Query, QueryItem, Timestamp, entity_tag_key};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter};

use crate::sqlite::{
    EVENT_COLUMNS, RawEvent, SqliteDatabase, appended_after, json_text, log_head, sql_error, to_position,
    to_sql_position,
};

/// Plugins' event logs in the `event` / `event_tag` tables, positions
/// gapless per log; an aggregate's events also carry their stream
/// (`stream_type` = the entity tag key, `stream_id`, `version`, unique per
/// log), which is also how tag queries find them by their entity tag.
#[derive(Clone, Debug)]
pub struct SqliteEventLog {
    db: SqliteDatabase,
}

impl SqliteEventLog {
    pub fn new(db: SqliteDatabase) -> Self {
        Self { db }
    }
}

/// Collects positional SQL arguments.
struct Args(Vec<SqlValue>);

impl Args {
    fn push(&mut self, value: SqlValue) -> String {
        self.0.push(value);
        format!("?{}", self.0.len())
    }

    fn text(&mut self, text: &str) -> String {
        self.push(SqlValue::Text(text.to_string()))
    }
}

/// One `FROM … WHERE …` clause of a query item, with the column it is read
/// in order of and its position column.
struct Source {
    clause: String,
    order: &'static str,
    position: &'static str,
}

impl Source {
    fn by_position(clause: String, position: &'static str) -> Self {
        Self { clause, order: position, position }
    }
}

/// The `FROM … WHERE …` clauses that find one query item's events (aliased
/// `e`, with their position column) after `after`. An item with tags is
/// driven by its first tag, looked up twice: in the tag index (events that
/// carry it) and in the stream index (an aggregate's events carry their
/// entity tag `<key>:<id>` as their stream, without a tag row). An item
/// without tags reads the log by type.
fn item_sources(log: &str, item: &QueryItem, after: i64, args: &mut Args) -> Vec<Source> {
    let types = |args: &mut Args, column: &str| {
        if item.types.is_empty() {
            return String::new();
        }
        let list: Vec<String> = item.types.iter().map(|t| args.text(t)).collect();
        format!(" AND {column} IN ({})", list.join(", "))
    };
    // The other tags of the item: a tag row, or the event's own stream.
    let rest_tags = |args: &mut Args, rest: &[reventless_spec::Tag], position: &str| {
        let mut sql = String::new();
        for tag in rest {
            let (tag_arg, key_arg, id_arg) =
                (args.text(&tag.to_string()), args.text(tag.key()), args.text(tag.value()));
            sql.push_str(&format!(
                " AND (EXISTS (SELECT 1 FROM event_tag tn WHERE tn.log = e.log AND tn.tag = {tag_arg} AND tn.position = {position}) \
                 OR (e.stream_type = {key_arg} AND e.stream_id = {id_arg}))"
            ));
        }
        sql
    };
    let Some((first, rest)) = item.tags.split_first() else {
        let (log_arg, after_arg) = (args.text(log), args.push(SqlValue::Integer(after)));
        if item.types.is_empty() {
            return vec![Source::by_position(
                format!("FROM event e WHERE e.log = {log_arg} AND e.position > {after_arg}"),
                "e.position",
            )];
        }
        // DCB events through the type index; an aggregate's events (not in
        // it) by a scan of the log, only when its aggregates ever appended
        // one of the types (the gate is the outer loop: no rows, no scan).
        let dcb_types = types(args, "e.type");
        let indexed = format!(
            "FROM event e INDEXED BY event_type WHERE e.log = {log_arg} AND e.stream_id IS NULL{dcb_types} \
             AND e.position > {after_arg}"
        );
        let (log_arg, gate_log, after_arg) = (args.text(log), args.text(log), args.push(SqlValue::Integer(after)));
        let gate_types = types(args, "st.type");
        let stream_types = types(args, "e.type");
        let scanned = format!(
            "FROM (SELECT 1 WHERE EXISTS (SELECT 1 FROM stream_event_type st WHERE st.log = {gate_log}{gate_types})) gate \
             CROSS JOIN event e WHERE e.log = {log_arg} AND e.position > {after_arg} AND e.stream_id IS NOT NULL{stream_types}"
        );
        return vec![Source::by_position(indexed, "e.position"), Source::by_position(scanned, "e.position")];
    };
    let (log_arg, after_arg, first_arg) =
        (args.text(log), args.push(SqlValue::Integer(after)), args.text(&first.to_string()));
    let tag_types = types(args, "t0.type");
    let tagged = format!(
        "FROM event_tag t0 JOIN event e ON e.log = t0.log AND e.position = t0.position \
         WHERE t0.log = {log_arg} AND t0.tag = {first_arg} AND t0.position > {after_arg}{tag_types}{}",
        rest_tags(args, rest, "t0.position")
    );
    // Only when the tag's key is an entity key of the log's aggregates: the
    // gate is the outer loop, so for other tags the stream index is not read.
    let (gate_log, gate_key) = (args.text(log), args.text(first.key()));
    let (log_arg, after_arg) = (args.text(log), args.push(SqlValue::Integer(after)));
    let (key_arg, id_arg) = (args.text(first.key()), args.text(first.value()));
    let stream_types = types(args, "e.type");
    let streamed = format!(
        "FROM (SELECT 1 WHERE EXISTS (SELECT 1 FROM stream_key sk WHERE sk.log = {gate_log} AND sk.key = {gate_key})) gate \
         CROSS JOIN event e INDEXED BY event_stream WHERE e.log = {log_arg} AND e.stream_type = {key_arg} \
         AND e.stream_id = {id_arg} AND e.position > {after_arg}{stream_types}{}",
        rest_tags(args, rest, "e.position")
    );
    // Within one stream, version order is position order (and the index's).
    vec![
        Source::by_position(tagged, "t0.position"),
        Source { clause: streamed, order: "e.version", position: "e.position" },
    ]
}

/// The events of `log` matching `query` after `after`: index-driven selects
/// per item, each in position order and cut at `limit` (negative: none);
/// with the number of selects (more than one: the caller merges them, an
/// event may match several). `None` for a query without items.
fn read_sql(log: &str, query: &Query, after: i64, limit: i64, args: &mut Args) -> Option<(String, usize)> {
    let columns: Vec<String> = EVENT_COLUMNS.split(", ").map(|c| format!("e.{c}")).collect();
    let columns = columns.join(", ");
    let selects: Vec<String> = query
        .items
        .iter()
        .flat_map(|item| item_sources(log, item, after, args))
        .map(|source| {
            let Source { clause, order, .. } = source;
            format!("SELECT * FROM (SELECT {columns} {clause} ORDER BY {order} LIMIT {limit})")
        })
        .collect();
    (!selects.is_empty()).then(|| (selects.join(" UNION ALL "), selects.len()))
}

/// SQL finding one event that violates `condition` (empty result: none).
fn violation_sql(log: &str, condition: &AppendCondition, args: &mut Args) -> Result<Option<String>, StoreError> {
    let after = to_sql_position(condition.after.unwrap_or(0))?;
    let selects: Vec<String> = condition
        .fail_if_events_match
        .items
        .iter()
        .flat_map(|item| item_sources(log, item, after, args))
        .map(|Source { clause, position, .. }| format!("SELECT * FROM (SELECT {position} {clause} LIMIT 1)"))
        .collect();
    Ok((!selects.is_empty()).then(|| format!("SELECT * FROM ({}) LIMIT 1", selects.join(" UNION ALL "))))
}

/// An event ready for its insert: ids and JSON columns rendered, tags sorted.
struct EventRow {
    event_id: String,
    event_type: String,
    tags_json: String,
    tags: Vec<String>,
    data: String,
    meta: String,
}

fn event_rows(events: Vec<NewEvent>) -> Result<Vec<EventRow>, StoreError> {
    events
        .into_iter()
        .map(|e| {
            let mut tags: Vec<String> = e.tags.iter().map(ToString::to_string).collect();
            tags.sort_unstable();
            tags.dedup();
            Ok(EventRow {
                event_id: e.event_id.to_string(),
                tags_json: json_text(&e.tags)?,
                event_type: e.event_type,
                tags,
                data: json_text(&e.data)?,
                meta: json_text(&e.meta)?,
            })
        })
        .collect()
}

/// Inserts `rows` after the log's head with their tag rows; for an
/// aggregate's append `stream` is (entity tag key, id, version before): the
/// events get the versions after it, and their entity tag is found through
/// the stream index instead of a tag row (one index page less per commit).
fn insert_events(
    connection: &rusqlite::Connection,
    log: &str,
    rows: Vec<EventRow>,
    stream: Option<(&str, &str, i64)>,
) -> Result<Appended, StoreError> {
    let head = log_head(connection, log)?;
    let appended = appended_after(head, rows.len())?;
    let entity_tag = stream.map(|(key, id, _)| format!("{key}:{id}"));
    let recorded_at = i64::try_from(Timestamp::now().0).unwrap_or(i64::MAX);
    let mut insert_event = connection
        .prepare_cached(
            "INSERT INTO event (log, position, stream_type, stream_id, version, event_id, type, tags, data, meta, recorded_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )
        .map_err(sql_error)?;
    let mut insert_tag = connection
        .prepare_cached("INSERT INTO event_tag (log, tag, position, type) VALUES (?1, ?2, ?3, ?4)")
        .map_err(sql_error)?;
    let mut insert_stream_type = connection
        .prepare_cached("INSERT OR IGNORE INTO stream_event_type (log, type) VALUES (?1, ?2)")
        .map_err(sql_error)?;
    if let Some((key, _, _)) = stream {
        connection
            .prepare_cached("INSERT OR IGNORE INTO stream_key (log, key) VALUES (?1, ?2)")
            .and_then(|mut statement| statement.execute(params![log, key]))
            .map_err(sql_error)?;
    }
    for (offset, row) in rows.into_iter().enumerate() {
        let offset = offset as i64 + 1;
        let position = head + offset;
        let (stream_type, stream_id, version) = match stream {
            Some((aggregate, id, version)) => (Some(aggregate), Some(id), Some(version + offset)),
            None => (None, None, None),
        };
        insert_event
            .execute(params![
                log,
                position,
                stream_type,
                stream_id,
                version,
                row.event_id,
                row.event_type,
                row.tags_json,
                row.data,
                row.meta,
                recorded_at
            ])
            .map_err(sql_error)?;
        for tag in row.tags {
            if entity_tag.as_deref() == Some(tag.as_str()) {
                continue;
            }
            insert_tag.execute(params![log, tag, position, row.event_type]).map_err(sql_error)?;
        }
        if stream.is_some() {
            insert_stream_type.execute(params![log, row.event_type]).map_err(sql_error)?;
        }
    }
    Ok(appended)
}

fn read_events(
    connection: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
    log: &str,
) -> Result<Vec<EventEnvelope>, StoreError> {
    let mut statement = connection.prepare_cached(sql).map_err(sql_error)?;
    let rows = statement.query_map(params, RawEvent::from_row).map_err(sql_error)?;
    let mut events = Vec::new();
    for row in rows {
        events.push(row.map_err(sql_error)?.into_envelope("event", log)?);
    }
    Ok(events)
}

#[async_trait]
impl EventLog for SqliteEventLog {
    async fn read(
        &self,
        log: &str,
        query: &Query,
        after: Option<u64>,
        limit: Option<usize>,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        let mut args = Args(Vec::new());
        let after = to_sql_position(after.unwrap_or(0))?;
        let limit = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let Some((sql, selects)) = read_sql(log, query, after, limit, &mut args) else {
            return Ok(Vec::new());
        };
        let args = args.0;
        let merge = selects > 1;
        let log = log.to_string();
        self.db
            .read(move |connection| {
                let mut statement = connection.prepare_cached(&sql).map_err(sql_error)?;
                let rows = statement.query_map(params_from_iter(args), RawEvent::from_row).map_err(sql_error)?;
                let mut events = Vec::new();
                for row in rows {
                    events.push(row.map_err(sql_error)?.into_envelope("event", &log)?);
                }
                if merge {
                    events.sort_by_key(|e| e.position);
                    events.dedup_by_key(|e| e.position);
                    events.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
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
        require_events(&events)?;
        let check = match condition {
            Some(condition) => {
                let mut args = Args(Vec::new());
                violation_sql(log, condition, &mut args)?.map(|sql| (sql, args.0))
            }
            None => None,
        };
        let rows = event_rows(events)?;
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
                insert_events(connection, &log, rows, None)
            })
            .await
    }

    async fn append_to_stream(
        &self,
        log: &str,
        stream: StreamRef<'_>,
        expected_version: u64,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        require_events(&events)?;
        let rows = event_rows(events)?;
        let (log, aggregate, id) = (log.to_string(), entity_tag_key(stream.aggregate), stream.id.to_string());
        let expected = to_sql_position(expected_version)?;
        self.db
            .write(move |connection| {
                let version: i64 = connection
                    .prepare_cached(
                        "SELECT COALESCE(MAX(version), 0) FROM event \
                         WHERE log = ?1 AND stream_type = ?2 AND stream_id = ?3",
                    )
                    .and_then(|mut s| s.query_row(params![log, aggregate, id], |row| row.get(0)))
                    .map_err(sql_error)?;
                if version != expected {
                    return Err(StoreError::Conflict(format!(
                        "stream {aggregate} {id} is at version {version}, expected {expected}"
                    )));
                }
                insert_events(connection, &log, rows, Some((&aggregate, &id, version)))
            })
            .await
    }

    async fn read_stream(
        &self,
        log: &str,
        stream: StreamRef<'_>,
        after_version: u64,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        let (log, aggregate, id) = (log.to_string(), entity_tag_key(stream.aggregate), stream.id.to_string());
        let after = to_sql_position(after_version)?;
        self.db
            .read(move |connection| {
                let sql = format!(
                    "SELECT {EVENT_COLUMNS} FROM event \
                     WHERE log = ?1 AND stream_type = ?2 AND stream_id = ?3 AND version > ?4 ORDER BY version"
                );
                read_events(connection, &sql, params![log, aggregate, id, after], &log)
            })
            .await
    }

    async fn read_all_of(
        &self,
        log: &str,
        after: u64,
        limit: usize,
        types: &[&str],
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        let mut args = Args(vec![SqlValue::Text(log.to_string()), SqlValue::Integer(to_sql_position(after)?)]);
        args.push(SqlValue::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
        let list: Vec<String> = types.iter().map(|t| args.text(t)).collect();
        let list = if list.is_empty() { "NULL".to_string() } else { list.join(", ") };
        // Other types: no tags, data or meta to copy and parse.
        let sql = format!(
            "SELECT position, event_id, type, \
             CASE WHEN type IN ({list}) THEN tags ELSE '[]' END, \
             CASE WHEN type IN ({list}) THEN data ELSE 'null' END, \
             CASE WHEN type IN ({list}) THEN meta ELSE '{{}}' END, \
             recorded_at, stream_id, version FROM event WHERE log = ?1 AND position > ?2 ORDER BY position LIMIT ?3"
        );
        let (log, args) = (log.to_string(), args.0);
        self.db.read(move |connection| read_events(connection, &sql, params_from_iter(args), &log)).await
    }

    async fn read_all(&self, log: &str, after: u64, limit: usize) -> Result<Vec<EventEnvelope>, StoreError> {
        let log = log.to_string();
        let after = to_sql_position(after)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .read(move |connection| {
                let sql = format!(
                    "SELECT {EVENT_COLUMNS} FROM event WHERE log = ?1 AND position > ?2 ORDER BY position LIMIT ?3"
                );
                read_events(connection, &sql, params![log, after, limit], &log)
            })
            .await
    }

    async fn head(&self, log: &str) -> Result<u64, StoreError> {
        let log = log.to_string();
        self.db.read(move |connection| to_position(log_head(connection, &log)?).map_err(StoreError::Invalid)).await
    }
}
