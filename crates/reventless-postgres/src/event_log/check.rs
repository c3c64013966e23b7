//! The checks of a batch in two statements, whatever its size: every append
//! condition's sources in `check_conditions.sql`, every stream's version in
//! `stream_versions.sql` (one statement per job cost about three times as
//! much server time at 64 jobs a batch).
use reventless_core::StoreError;
use reventless_spec::{AppendCondition, QueryItem};
use serde_json::json;
use tokio_postgres::Statement;

use super::batch::{Guard, Job};
use crate::database::to_sql_position;

pub(crate) const CHECK_CONDITIONS: &str = include_str!("check_conditions.sql");
pub(crate) const STREAM_VERSIONS: &str = include_str!("stream_versions.sql");

/// One place a condition's violating events can be found (see `check_conditions.sql`).
pub(crate) struct Source {
    kind: &'static str,
    after: i64,
    a: Option<String>,
    b: Option<String>,
    /// A JSON list of types; `None`: any type.
    types: Option<String>,
    /// A JSON list of the item's other tags.
    rest: Option<String>,
}

/// The sources of `condition`: an item with tags is driven by its first
/// tag, looked up as a tag row and as a stream; one without tags by its
/// types, or any event.
pub(crate) fn sources(condition: &AppendCondition) -> Result<Vec<Source>, StoreError> {
    let after = to_sql_position(condition.after.unwrap_or(0))?;
    let mut found = Vec::new();
    for item in &condition.fail_if_events_match.items {
        item_sources(item, after, &mut found);
    }
    Ok(found)
}

fn item_sources(item: &QueryItem, after: i64, found: &mut Vec<Source>) {
    let source = |kind, a: Option<&str>, b: Option<&str>| Source {
        kind,
        after,
        a: a.map(str::to_string),
        b: b.map(str::to_string),
        types: None,
        rest: None,
    };
    let Some((first, rest)) = item.tags.split_first() else {
        if item.types.is_empty() {
            found.push(source("all", None, None));
        }
        found.extend(item.types.iter().map(|event_type| source("type", Some(event_type), None)));
        return;
    };
    let types = (!item.types.is_empty()).then(|| json!(item.types).to_string());
    let rest = (!rest.is_empty()).then(|| {
        let tags: Vec<_> =
            rest.iter().map(|tag| json!({"tag": tag.to_string(), "key": tag.key(), "id": tag.value()})).collect();
        json!(tags).to_string()
    });
    let tag = first.to_string();
    for mut driven in [source("tag", Some(&tag), None), source("stream", Some(first.key()), Some(first.value()))] {
        driven.types.clone_from(&types);
        driven.rest.clone_from(&rest);
        found.push(driven);
    }
}

/// The parameters of both statements for a batch.
#[derive(Default)]
pub(crate) struct Checks<'a> {
    jobs: Vec<i32>,
    kinds: Vec<&'static str>,
    logs: Vec<&'a str>,
    afters: Vec<i64>,
    a: Vec<Option<&'a str>>,
    b: Vec<Option<&'a str>>,
    types: Vec<Option<&'a str>>,
    rest: Vec<Option<&'a str>>,
    stream_jobs: Vec<i32>,
    stream_logs: Vec<&'a str>,
    stream_keys: Vec<&'a str>,
    stream_ids: Vec<&'a str>,
}

impl<'a> Checks<'a> {
    pub(crate) fn of(batch: &'a [Job]) -> Self {
        let mut checks = Self::default();
        for (index, job) in batch.iter().enumerate() {
            let index = i32::try_from(index).unwrap_or(i32::MAX);
            match &job.guard {
                Guard::None => {}
                Guard::Condition { sources, .. } => {
                    for source in sources {
                        checks.jobs.push(index);
                        checks.kinds.push(source.kind);
                        checks.logs.push(&job.log);
                        checks.afters.push(source.after);
                        checks.a.push(source.a.as_deref());
                        checks.b.push(source.b.as_deref());
                        checks.types.push(source.types.as_deref());
                        checks.rest.push(source.rest.as_deref());
                    }
                }
                Guard::Stream { key, id, .. } => {
                    checks.stream_jobs.push(index);
                    checks.stream_logs.push(&job.log);
                    checks.stream_keys.push(key);
                    checks.stream_ids.push(id);
                }
            }
        }
        checks
    }

    /// Runs both (polled in order after the batch's head locks) and returns
    /// for each job its violating position or its stream's version.
    pub(crate) async fn run(
        &self,
        client: &tokio_postgres::Client,
        conditions: &Statement,
        versions: &Statement,
        jobs: usize,
    ) -> Result<Vec<Option<i64>>, tokio_postgres::Error> {
        let violations = async {
            if self.jobs.is_empty() {
                return Ok(Vec::new());
            }
            client
                .query(
                    conditions,
                    &[&self.jobs, &self.kinds, &self.logs, &self.afters, &self.a, &self.b, &self.types, &self.rest],
                )
                .await
        };
        let current = async {
            if self.stream_jobs.is_empty() {
                return Ok(Vec::new());
            }
            client.query(versions, &[&self.stream_jobs, &self.stream_logs, &self.stream_keys, &self.stream_ids]).await
        };
        let (violations, current) = futures::join!(violations, current);
        let mut found = vec![None; jobs];
        for row in violations?.iter().chain(current?.iter()) {
            let (job, value): (i32, i64) = (row.try_get(0)?, row.try_get(1)?);
            if let Some(slot) = usize::try_from(job).ok().and_then(|job| found.get_mut(job)) {
                *slot = Some(value);
            }
        }
        Ok(found)
    }
}
