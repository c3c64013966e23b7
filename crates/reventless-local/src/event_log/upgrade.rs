//! Schema 1 → 2: each plugin's aggregate logs (`aggregate_event`, log
//! `<Plugin>_<Aggregate>`) and its DCB log (`dcb_event`, log `<Plugin>`)
//! become one log `<Plugin>` in `event` / `event_tag`, in the order and with
//! the checkpoints `reventless_core::store::relayout` plans. Aggregate
//! events gain the entity tag their appends carry now.
use std::collections::BTreeMap;

use reventless_core::store::relayout::{OldEvent, merge_order, merged_checkpoint, old_log_owner};
use rusqlite::{Transaction, params};

const SCHEMA_2: &str = r#"
CREATE TABLE event (
    log TEXT NOT NULL,
    position INTEGER NOT NULL,
    -- An aggregate's events: its entity tag key (`member`), the entity id and
    -- the stream version; tag queries find them by `<key>:<id>` here (no
    -- tag row for the entity tag).
    stream_type TEXT,
    stream_id TEXT,
    version INTEGER,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    tags TEXT NOT NULL,
    data TEXT NOT NULL,
    meta TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (log, position)
) WITHOUT ROWID;
CREATE UNIQUE INDEX event_stream ON event (log, stream_type, stream_id, version) WHERE stream_id IS NOT NULL;
-- DCB events by type (an aggregate's appends skip it: one index page less
-- per commit; queries by type alone find them through stream_event_type).
CREATE INDEX event_type ON event (log, type, position) WHERE stream_id IS NULL;
-- The entity tag keys of a log's aggregates (`member`): a tag query looks in
-- the stream index only for these.
CREATE TABLE stream_key (
    log TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (log, key)
) WITHOUT ROWID;
-- The event types a log's aggregates have appended.
CREATE TABLE stream_event_type (
    log TEXT NOT NULL,
    type TEXT NOT NULL,
    PRIMARY KEY (log, type)
) WITHOUT ROWID;
-- One row per (event, tag): what DCB queries and conditions search by.
CREATE TABLE event_tag (
    log TEXT NOT NULL,
    tag TEXT NOT NULL,
    position INTEGER NOT NULL,
    type TEXT NOT NULL,
    PRIMARY KEY (log, tag, position)
) WITHOUT ROWID;
"#;

/// An event of the old layout, as stored.
struct OldRow {
    position: i64,
    stream: Option<(String, i64)>,
    event_id: String,
    event_type: String,
    tags: String,
    data: String,
    meta: String,
    recorded_at: i64,
}

/// One old log of a plugin: the aggregate it belonged to (None: the DCB log).
struct OldLog {
    name: String,
    aggregate: Option<String>,
    rows: Vec<OldRow>,
}

fn old_rows(transaction: &Transaction<'_>, log: &OldLog) -> rusqlite::Result<Vec<OldRow>> {
    let sql = match log.aggregate {
        Some(_) => {
            "SELECT position, stream_id, version, event_id, type, tags, data, meta, recorded_at \
             FROM aggregate_event WHERE log = ?1 ORDER BY position"
        }
        None => {
            "SELECT position, NULL, NULL, event_id, type, tags, data, meta, recorded_at \
             FROM dcb_event WHERE log = ?1 ORDER BY position"
        }
    };
    let mut statement = transaction.prepare(sql)?;
    let rows = statement.query_map([&log.name], |row| {
        let stream_id: Option<String> = row.get(1)?;
        let version: Option<i64> = row.get(2)?;
        Ok(OldRow {
            position: row.get(0)?,
            stream: stream_id.zip(version),
            event_id: row.get(3)?,
            event_type: row.get(4)?,
            tags: row.get(5)?,
            data: row.get(6)?,
            meta: row.get(7)?,
            recorded_at: row.get(8)?,
        })
    })?;
    rows.collect()
}

/// The tags of an old event, with the entity tag for an aggregate's event
/// (kept as text: a row whose tags do not parse is moved as it is), and the
/// tags that get a tag row (all but the entity tag, found by its stream).
fn tags_with_entity(row: &OldRow, aggregate: Option<&str>) -> (String, Vec<String>) {
    let Ok(mut tags) = serde_json::from_str::<Vec<String>>(&row.tags) else {
        return (row.tags.clone(), Vec::new());
    };
    if let (Some(aggregate), Some((id, _))) = (aggregate, &row.stream) {
        let entity = format!("{}:{id}", reventless_spec::entity_tag_key(aggregate));
        if !tags.contains(&entity) {
            tags.insert(0, entity);
        }
    }
    let json = serde_json::to_string(&tags).unwrap_or_else(|_| row.tags.clone());
    if let (Some(aggregate), Some((id, _))) = (aggregate, &row.stream) {
        let entity = format!("{}:{id}", reventless_spec::entity_tag_key(aggregate));
        tags.retain(|tag| *tag != entity);
    }
    let mut unique = tags;
    unique.sort_unstable();
    unique.dedup();
    (json, unique)
}

pub(crate) fn one_log_per_plugin(transaction: &Transaction<'_>) -> rusqlite::Result<()> {
    transaction.execute_batch(SCHEMA_2)?;
    let mut plugins: BTreeMap<String, Vec<OldLog>> = BTreeMap::new();
    let names: Vec<(String, bool)> = transaction
        .prepare("SELECT DISTINCT log, 0 FROM dcb_event UNION SELECT DISTINCT log, 1 FROM aggregate_event ORDER BY 1")?
        .query_map([], |row| Ok((row.get(0)?, row.get::<_, i64>(1)? == 1)))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, is_aggregate) in names {
        let (plugin, aggregate) = old_log_owner(&name);
        let aggregate = if is_aggregate { Some(aggregate.unwrap_or(plugin).to_string()) } else { None };
        let mut log = OldLog { name: name.clone(), aggregate, rows: Vec::new() };
        log.rows = old_rows(transaction, &log)?;
        plugins.entry(plugin.to_string()).or_default().push(log);
    }
    let checkpoints: Vec<(String, i64)> = transaction
        .prepare("SELECT name, position FROM checkpoint")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut insert_event = transaction.prepare(
        "INSERT INTO event (log, position, stream_type, stream_id, version, event_id, type, tags, data, meta, recorded_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    let mut insert_tag =
        transaction.prepare("INSERT INTO event_tag (log, tag, position, type) VALUES (?1, ?2, ?3, ?4)")?;
    for (plugin, logs) in &plugins {
        let sources: Vec<Vec<OldEvent>> = logs
            .iter()
            .enumerate()
            .map(|(source, log)| {
                log.rows
                    .iter()
                    .map(|row| OldEvent {
                        source,
                        position: u64::try_from(row.position).unwrap_or(0),
                        recorded_at: u64::try_from(row.recorded_at).unwrap_or(0),
                    })
                    .collect()
            })
            .collect();
        let merged = merge_order(&sources);
        let mut next_row = vec![0usize; logs.len()];
        for (index, old) in merged.iter().enumerate() {
            let log = &logs[old.source];
            let row = &log.rows[next_row[old.source]];
            next_row[old.source] += 1;
            let position = index as i64 + 1;
            let (tags_json, tags) = tags_with_entity(row, log.aggregate.as_deref());
            let (stream_id, version) = row.stream.clone().unzip();
            insert_event.execute(params![
                plugin,
                position,
                log.aggregate.as_deref().filter(|_| stream_id.is_some()).map(reventless_spec::entity_tag_key),
                stream_id,
                version,
                row.event_id,
                row.event_type,
                tags_json,
                row.data,
                row.meta,
                row.recorded_at
            ])?;
            for tag in tags {
                insert_tag.execute(params![plugin, tag, position, row.event_type])?;
            }
            if let (Some(aggregate), Some(_)) = (log.aggregate.as_deref(), &stream_id) {
                transaction.execute(
                    "INSERT OR IGNORE INTO stream_event_type (log, type) VALUES (?1, ?2)",
                    params![plugin, row.event_type],
                )?;
                transaction.execute(
                    "INSERT OR IGNORE INTO stream_key (log, key) VALUES (?1, ?2)",
                    params![plugin, reventless_spec::entity_tag_key(aggregate)],
                )?;
            }
        }
        // Followers' checkpoints `<follower>@<old log>` → `<follower>@<Plugin>`.
        let mut followers: BTreeMap<&str, Vec<Option<u64>>> = BTreeMap::new();
        for (name, position) in &checkpoints {
            let Some((follower, log)) = name.rsplit_once('@') else { continue };
            let Some(source) = logs.iter().position(|l| l.name == log) else { continue };
            let applied = followers.entry(follower).or_insert_with(|| vec![None; logs.len()]);
            applied[source] = Some(u64::try_from(*position).unwrap_or(0));
        }
        for (follower, applied) in followers {
            for log in logs {
                transaction.execute("DELETE FROM checkpoint WHERE name = ?1", [format!("{follower}@{}", log.name)])?;
            }
            let position = merged_checkpoint(&merged, &applied);
            if position > 0 {
                transaction.execute(
                    "INSERT INTO checkpoint (name, position) VALUES (?1, ?2)",
                    params![format!("{follower}@{plugin}"), i64::try_from(position).unwrap_or(i64::MAX)],
                )?;
            }
        }
    }
    drop(insert_event);
    drop(insert_tag);
    transaction.execute_batch("DROP TABLE aggregate_event; DROP TABLE dcb_event; DROP TABLE dcb_tag;")
}
