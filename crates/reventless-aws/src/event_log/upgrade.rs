//! Schema 1 → 2 of a plugin's events table: the events of its old aggregate
//! logs (log attribute `a#<Plugin>_<Aggregate>`) join the plugin's log
//! `d#<Plugin>`. Their items keep their keys (stream reads are unchanged);
//! they get positions after the log's head (DCB items are keyed by their
//! position, so the log's own events stay where they are), their entity
//! tag, and the fence bumps a DCB condition checks. Followers' checkpoints
//! `<follower>@<old log>` become `<follower>@<Plugin>` at the prefix they
//! had applied (`reventless_core::store::relayout`).
//!
//! The deployer runs it for each plugin stack; a marker item records that
//! a table is on schema 2, so later deploys only read the marker. Run it
//! while no function writes (the deploy does, before functions change).
use std::collections::BTreeMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use reventless_core::store::StoreError;
use reventless_core::store::relayout::{OldEvent, merge_order, merged_checkpoint};
use reventless_spec::EventEnvelope;

use super::DynamoEventLog;
use crate::dynamo::{
    EVENT_HASH, EVENT_RANGE, GLOBAL_POSITION, Item, LOG_ATTRIBUTE, allocate_positions, decode_event, invalid_request,
    log_head, log_key, n, padded, query_pages, s, transact, unavailable,
};
use crate::query_store::{ROW_HASH, ROW_RANGE};

/// The schema of the events table this build writes.
pub const EVENTS_SCHEMA_VERSION: u64 = 2;
const SCHEMA_MARKER: &str = "~schema";
const CHECKPOINTS: &str = "~checkpoints";

/// What an upgrade did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct UpgradeReport {
    /// False when the table was on the current schema already.
    pub upgraded: bool,
    pub events_moved: usize,
    pub checkpoints_moved: usize,
}

/// The schema version recorded in an events table (1 when unmarked).
pub async fn events_schema(client: &Client, events_table: &str) -> Result<u64, StoreError> {
    let output = client
        .get_item()
        .table_name(events_table)
        .key(EVENT_HASH, s(SCHEMA_MARKER))
        .key(EVENT_RANGE, s(padded(0)))
        .consistent_read(true)
        .send()
        .await
        .map_err(unavailable)?;
    Ok(output
        .item()
        .and_then(|item| item.get("version"))
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(1))
}

/// Upgrades `plugin`'s events table (and the checkpoints in its rows table)
/// to schema 2. A table from a newer build is refused.
pub async fn upgrade_plugin_log(
    client: &Client,
    events_table: &str,
    rows_table: &str,
    plugin: &str,
) -> Result<UpgradeReport, StoreError> {
    let found = events_schema(client, events_table).await?;
    if found > EVENTS_SCHEMA_VERSION {
        return Err(StoreError::Invalid(format!(
            "{events_table} was written by a newer reventless (schema {found}; this build supports up to {EVENTS_SCHEMA_VERSION})"
        )));
    }
    if found == EVENTS_SCHEMA_VERSION {
        return Ok(UpgradeReport::default());
    }
    let prefix = format!("a#{plugin}_");
    let mut old_logs: BTreeMap<String, Vec<(Item, EventEnvelope)>> = BTreeMap::new();
    let mut start = None;
    loop {
        let output = client
            .scan()
            .table_name(events_table)
            .filter_expression("begins_with(#log, :prefix)")
            .expression_attribute_names("#log", LOG_ATTRIBUTE)
            .expression_attribute_values(":prefix", s(prefix.clone()))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(unavailable)?;
        for item in output.items() {
            let Some(AttributeValue::S(log)) = item.get(LOG_ATTRIBUTE) else { continue };
            let event = decode_event(item, events_table)?;
            old_logs.entry(log.clone()).or_default().push((item.clone(), event));
        }
        match output.last_evaluated_key() {
            Some(key) => start = Some(key.clone()),
            None => break,
        }
    }
    let new_log_key = log_key(plugin);
    let head = log_head(client, events_table, &new_log_key).await?;
    let logs: Vec<(String, Vec<(Item, EventEnvelope)>)> = old_logs
        .into_iter()
        .map(|(log, mut events)| {
            events.sort_by_key(|(_, event)| event.position);
            (log, events)
        })
        .collect();
    let sources: Vec<Vec<OldEvent>> = logs
        .iter()
        .enumerate()
        .map(|(source, (_, events))| {
            events
                .iter()
                .map(|(_, e)| OldEvent { source, position: e.position, recorded_at: e.recorded_at.0 })
                .collect()
        })
        .collect();
    let merged = merge_order(&sources);
    let mut report = UpgradeReport { upgraded: true, ..UpgradeReport::default() };
    let first = if merged.is_empty() {
        0
    } else {
        allocate_positions(client, events_table, &new_log_key, merged.len() as u64).await?
    };
    let mut next = vec![0usize; logs.len()];
    for (offset, old) in merged.iter().enumerate() {
        let (log, events) = &logs[old.source];
        let (item, event) = &events[next[old.source]];
        next[old.source] += 1;
        let aggregate = log.strip_prefix(&prefix).unwrap_or(log);
        let mut moved = event.clone();
        moved.position = first + offset as u64;
        if let Some(stream) = &moved.stream {
            let entity = reventless_spec::entity_tag(aggregate, &stream.id).map_err(invalid_request)?;
            if !moved.tags.contains(&entity) {
                moved.tags.insert(0, entity);
            }
        }
        let (Some(hash), Some(range)) = (item.get(EVENT_HASH), item.get(EVENT_RANGE)) else {
            return Err(StoreError::Corrupt {
                location: events_table.to_string(),
                message: "an event without keys".into(),
            });
        };
        let update = Update::builder()
            .table_name(events_table)
            .key(EVENT_HASH, hash.clone())
            .key(EVENT_RANGE, range.clone())
            .update_expression("SET #log = :log, #gpos = :gpos, #event = :event")
            .condition_expression("#log = :old")
            .expression_attribute_names("#log", LOG_ATTRIBUTE)
            .expression_attribute_names("#gpos", GLOBAL_POSITION)
            .expression_attribute_names("#event", crate::dynamo::EVENT_ATTRIBUTE)
            .expression_attribute_values(":log", s(new_log_key.clone()))
            .expression_attribute_values(":gpos", n(moved.position))
            .expression_attribute_values(":event", s(serde_json::to_string(&moved).map_err(invalid_request)?))
            .expression_attribute_values(":old", s(log.clone()))
            .build()
            .map_err(invalid_request)?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        let mut fences = BTreeMap::new();
        DynamoEventLog::bump_fences(plugin, &moved, &mut fences);
        for (key, fence) in fences {
            items.push(DynamoEventLog::fence_update(events_table, key, fence)?);
        }
        transact(client, items).await?;
        report.events_moved += 1;
    }
    report.checkpoints_moved = move_checkpoints(client, rows_table, plugin, &logs, &merged, head, first).await?;
    client
        .put_item()
        .table_name(events_table)
        .item(EVENT_HASH, s(SCHEMA_MARKER))
        .item(EVENT_RANGE, s(padded(0)))
        .item("version", n(EVENTS_SCHEMA_VERSION))
        .send()
        .await
        .map_err(unavailable)?;
    Ok(report)
}

/// `<follower>@<old log>` → `<follower>@<plugin>`: a follower behind on the
/// plugin's log keeps its place there; one caught up (or not following it)
/// moves to the prefix of the moved events it had applied.
async fn move_checkpoints(
    client: &Client,
    rows_table: &str,
    plugin: &str,
    logs: &[(String, Vec<(Item, EventEnvelope)>)],
    merged: &[OldEvent],
    head: u64,
    first: u64,
) -> Result<usize, StoreError> {
    let mut checkpoints: Vec<(String, u64)> = Vec::new();
    let query = || {
        client
            .query()
            .table_name(rows_table)
            .key_condition_expression("#t = :t")
            .expression_attribute_names("#t", ROW_HASH)
            .expression_attribute_values(":t", s(CHECKPOINTS))
            .consistent_read(true)
    };
    query_pages(query, |item| {
        let name = item.get(ROW_RANGE).and_then(|v| v.as_s().ok());
        let position = item.get("checkpoint").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok());
        if let (Some(name), Some(position)) = (name, position) {
            checkpoints.push((name.clone(), position));
        }
        Ok(true)
    })
    .await?;
    // Per follower: its checkpoint on the plugin's log and on each old log.
    let mut followers: BTreeMap<String, (Option<u64>, Vec<Option<u64>>)> = BTreeMap::new();
    for (name, position) in &checkpoints {
        let Some((follower, log)) = name.rsplit_once('@') else { continue };
        let old = logs.iter().position(|(key, _)| key.strip_prefix("a#") == Some(log));
        if log != plugin && old.is_none() {
            continue;
        }
        let entry = followers.entry(follower.to_string()).or_insert_with(|| (None, vec![None; logs.len()]));
        match old {
            Some(source) => entry.1[source] = Some(*position),
            None => entry.0 = Some(*position),
        }
    }
    let mut moved = 0;
    for (follower, (on_log, applied)) in followers {
        if applied.iter().all(Option::is_none) {
            continue;
        }
        let prefix = merged_checkpoint(merged, &applied);
        let position = match on_log {
            Some(at) if at < head => at,
            _ if prefix > 0 => first + prefix - 1,
            Some(at) => at,
            None => 0,
        };
        let mut items = Vec::new();
        for (source, at) in applied.iter().enumerate() {
            if at.is_some() {
                let old_name = format!("{follower}@{}", logs[source].0.trim_start_matches("a#"));
                let delete = aws_sdk_dynamodb::types::Delete::builder()
                    .table_name(rows_table)
                    .key(ROW_HASH, s(CHECKPOINTS))
                    .key(ROW_RANGE, s(old_name))
                    .build()
                    .map_err(invalid_request)?;
                items.push(TransactWriteItem::builder().delete(delete).build());
            }
        }
        if position > 0 {
            let update = Update::builder()
                .table_name(rows_table)
                .key(ROW_HASH, s(CHECKPOINTS))
                .key(ROW_RANGE, s(format!("{follower}@{plugin}")))
                .update_expression("SET #p = :p")
                .expression_attribute_names("#p", "checkpoint")
                .expression_attribute_values(":p", n(position))
                .build()
                .map_err(invalid_request)?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        transact(client, items).await?;
        moved += 1;
    }
    Ok(moved)
}
