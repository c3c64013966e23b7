//! Group commit of appends: appends queued while a batch commits are
//! committed together in one transaction (one WAL flush for many), each
//! keeping its own condition check and its own result.
//!
//! A batch, in two round trips:
//! 1. `BEGIN`, the head rows of its logs taken (`lock_heads.sql`: a row
//!    lock that serializes the writers of one log across processes), and
//!    the checks of all its jobs in two statements (DCB conditions'
//!    violations, streams' versions: see [`super::check`]), pipelined.
//!    Under READ COMMITTED each check's snapshot starts after the lock was
//!    granted, so it sees every earlier writer's commit.
//! 2. In queue order, each job is decided on its check plus the jobs
//!    accepted before it in the same batch (matched in memory: they are not
//!    written yet); the accepted ones get consecutive positions after their
//!    log's head, and one multi-row insert of events, one of tags, the new
//!    heads and `COMMIT` go out pipelined. A batch that accepted nothing
//!    rolls back (no WAL flush).
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use reventless_core::StoreError;
use reventless_core::store::Appended;
use reventless_spec::{AppendCondition, Tag, Timestamp};
use tokio::sync::oneshot;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use super::check::{CHECK_CONDITIONS, Checks, STREAM_VERSIONS, Source};
use crate::PgDatabase;
use crate::database::{pg_error, to_position};

/// Jobs one batch takes at most (the rest wait for the next).
const MAX_JOBS_PER_BATCH: usize = 512;
/// Times a batch is run again after a deadlock or serialization failure.
const RETRIES: usize = 3;

const LOCK_HEADS: &str = include_str!("lock_heads.sql");
const INSERT_EVENTS: &str = include_str!("insert_events.sql");
const INSERT_TAGS: &str = include_str!("insert_tags.sql");
const UPDATE_HEADS: &str = include_str!("update_heads.sql");

/// An event ready for its insert: JSON rendered, tags kept for matching.
pub(crate) struct EventRow {
    pub event_id: Uuid,
    pub event_type: String,
    pub tags: Vec<Tag>,
    /// The tag rows' texts, sorted, without duplicates.
    pub tag_texts: Vec<String>,
    pub tags_json: String,
    pub data: String,
    pub meta: String,
}

/// What an append must hold to be accepted.
pub(crate) enum Guard {
    None,
    /// A DCB condition, with the places its violating events are found.
    Condition {
        condition: AppendCondition,
        sources: Vec<Source>,
    },
    /// An aggregate's stream (`key` = its entity tag key) at `expected`.
    Stream {
        key: String,
        id: String,
        expected: i64,
    },
}

/// One append waiting for its batch.
pub(crate) struct Job {
    pub log: String,
    pub events: Vec<EventRow>,
    pub guard: Guard,
    pub reply: oneshot::Sender<Result<Appended, StoreError>>,
}

impl Job {
    /// The entity tag of a stream append's events (found through the
    /// stream, without a tag row).
    fn entity_tag(&self) -> Option<Tag> {
        match &self.guard {
            Guard::Stream { key, id, .. } => Tag::new(key.clone(), id.clone()).ok(),
            _ => None,
        }
    }
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    /// A task is committing batches (it takes what is queued before it stops).
    leading: bool,
}

/// The appends of one event log handle, committed in batches by one task at a time.
pub(crate) struct Writer {
    db: PgDatabase,
    queue: Mutex<Queue>,
}

impl Writer {
    pub(crate) fn new(db: PgDatabase) -> Self {
        Self { db, queue: Mutex::new(Queue::default()) }
    }

    /// Queues `job` and waits for its batch. The batch runs on a task of
    /// its own: a caller that stops waiting leaves its batch intact.
    pub(crate) async fn submit(
        self: &Arc<Self>,
        log: String,
        events: Vec<EventRow>,
        guard: Guard,
    ) -> Result<Appended, StoreError> {
        let (reply, answer) = oneshot::channel();
        let lead = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.jobs.push(Job { log, events, guard, reply });
            !std::mem::replace(&mut queue.leading, true)
        };
        if lead {
            tokio::spawn(Arc::clone(self).lead());
        }
        answer.await.map_err(|_| StoreError::Unavailable("the PostgreSQL append batch was dropped".into()))?
    }

    /// Commits batches until the queue is empty.
    async fn lead(self: Arc<Self>) {
        // Should this task end early (a panic), the next append leads again.
        let _leading = Leading(&self);
        let mut answered = 0;
        loop {
            self.gather(answered).await;
            let batch = {
                let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                if queue.jobs.is_empty() {
                    queue.leading = false;
                    return;
                }
                let take = queue.jobs.len().min(MAX_JOBS_PER_BATCH);
                queue.jobs.drain(..take).collect::<Vec<_>>()
            };
            answered = batch.len();
            self.commit(batch).await;
        }
    }

    /// Lets the callers just answered queue their next appends before the
    /// next batch is taken: taken at once, it would hold the one or two
    /// that came in meanwhile, and its WAL flush would serve only them
    /// (measured: batches of 63 and 1 alternating at 64 clients). Yields
    /// while the queue grows, up to as many jobs as were answered.
    async fn gather(&self, answered: usize) {
        let queued = || self.queue.lock().unwrap_or_else(PoisonError::into_inner).jobs.len();
        let mut seen = queued();
        for _ in 0..answered {
            if seen >= answered {
                return;
            }
            tokio::task::yield_now().await;
            let now = queued();
            if now == seen {
                return;
            }
            seen = now;
        }
    }

    /// Commits `batch` (again after a deadlock) and answers every job.
    async fn commit(&self, batch: Vec<Job>) {
        let mut attempt = 0;
        let outcomes = loop {
            match self.try_commit(&batch).await {
                Ok(outcomes) => break outcomes,
                Err(Failure { retry: true, .. }) if attempt < RETRIES => attempt += 1,
                Err(Failure { error, .. }) => break batch.iter().map(|_| Err(error.clone())).collect(),
            }
        };
        for (job, outcome) in batch.into_iter().zip(outcomes) {
            let _ = job.reply.send(outcome);
        }
    }

    async fn try_commit(&self, batch: &[Job]) -> Result<Vec<Result<Appended, StoreError>>, Failure> {
        let connection = Closing(Some(self.db.client().await.map_err(Failure::from)?));
        let outcome = self.run_batch(connection.client()?, batch).await;
        if outcome.is_ok() {
            connection.keep();
        }
        outcome
    }

    /// One batch transaction on `client`; `Ok` once it is over (committed or
    /// rolled back).
    async fn run_batch(
        &self,
        client: &deadpool_postgres::Object,
        batch: &[Job],
    ) -> Result<Vec<Result<Appended, StoreError>>, Failure> {
        let started = std::time::Instant::now();
        let mut logs: Vec<&str> = batch.iter().map(|job| job.log.as_str()).collect();
        logs.sort_unstable();
        logs.dedup();

        // Statements, prepared once per connection.
        let texts = [LOCK_HEADS, CHECK_CONDITIONS, STREAM_VERSIONS, INSERT_EVENTS, INSERT_TAGS, UPDATE_HEADS];
        let prepared = futures::future::try_join_all(texts.iter().map(|sql| client.prepare_cached(sql)))
            .await
            .map_err(Failure::from)?;
        let [lock_heads, check_conditions, stream_versions, insert_events, insert_tags, update_heads] =
            <[tokio_postgres::Statement; 6]>::try_from(prepared)
                .map_err(|_| Failure::internal("a prepared statement"))?;

        // Round trip 1: BEGIN, the head locks, then the checks (polled in this order).
        // Generic plans: the batch statements' plans do not depend on the
        // values, and planning them anew (PostgreSQL's choice for array
        // parameters) cost more than running them. A process that stalls
        // while it holds head rows (paused, cut off) loses its session
        // after a while instead of holding every writer of its logs.
        let begin = client.batch_execute(
            "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan; \
             SET LOCAL idle_in_transaction_session_timeout = '10s'",
        );
        let lock_values: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&logs];
        let lock = client.query(&lock_heads, &lock_values);
        let checks = Checks::of(batch);
        let checked = checks.run(client, &check_conditions, &stream_versions, batch.len());
        let (begun, locked, checked) = futures::join!(begin, lock, checked);
        begun.map_err(Failure::from)?;
        let (heads, checks) = match locked_heads(locked).and_then(|heads| Ok((heads, checked?))) {
            Ok(found) => found,
            Err(failure) => {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(failure);
            }
        };

        let checked_in = started.elapsed();
        let decided = decide(batch, heads, &checks);
        if decided.inserts.positions.is_empty() {
            client.batch_execute("ROLLBACK").await.map_err(Failure::from)?;
            return Ok(decided.outcomes);
        }

        // Round trip 2: the rows, the heads and COMMIT (polled in this order).
        let rows = &decided.inserts;
        let recorded_at = i64::try_from(Timestamp::now().0).unwrap_or(i64::MAX);
        let event_values: [&(dyn tokio_postgres::types::ToSql + Sync); 11] = [
            &rows.logs,
            &rows.positions,
            &rows.stream_types,
            &rows.stream_ids,
            &rows.versions,
            &rows.event_ids,
            &rows.types,
            &rows.tags,
            &rows.data,
            &rows.meta,
            &recorded_at,
        ];
        let events = client.execute(&insert_events, &event_values);
        let tags = async {
            if rows.tag_logs.is_empty() {
                return Ok(0);
            }
            client.execute(&insert_tags, &[&rows.tag_logs, &rows.tag_texts, &rows.tag_positions, &rows.tag_types]).await
        };
        let head_logs: Vec<&str> = decided.heads.iter().map(|(log, _)| *log).collect();
        let head_positions: Vec<i64> = decided.heads.iter().map(|(_, head)| *head).collect();
        let head_values: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&head_logs, &head_positions];
        let heads = client.execute(&update_heads, &head_values);
        let commit = client.batch_execute("COMMIT");
        let (events, tags, heads, committed) = futures::join!(events, tags, heads, commit);
        // A failed statement turns the COMMIT into a rollback: check them all.
        events.map_err(|error| {
            // Positions after a log's head are free unless the head row
            // fell behind the log (edited or restored apart).
            if error.code() == Some(&SqlState::UNIQUE_VIOLATION) {
                let logs = decided.heads.iter().map(|(log, _)| *log).collect::<Vec<_>>().join(", ");
                let error = StoreError::Corrupt {
                    location: format!("event_log_head {logs}"),
                    message: format!("behind the events of its log: {error}"),
                };
                return Failure { error, retry: false };
            }
            Failure::from(error)
        })?;
        tags.map_err(Failure::from)?;
        heads.map_err(Failure::from)?;
        committed.map_err(Failure::from)?;
        tracing::debug!(
            jobs = batch.len(),
            events = rows.positions.len(),
            checked_ms = checked_in.as_secs_f64() * 1e3,
            committed_ms = started.elapsed().as_secs_f64() * 1e3,
            "append batch committed"
        );
        Ok(decided.outcomes)
    }
}

/// Each log's head from the rows of `lock_heads.sql`.
fn locked_heads(
    rows: Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>,
) -> Result<HashMap<String, i64>, Failure> {
    let mut heads = HashMap::new();
    for row in rows? {
        let (log, head): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
        if head < 0 {
            return Err(Failure::corrupt(&log, head));
        }
        heads.insert(log, head);
    }
    Ok(heads)
}

/// The connection of a batch. Unless the batch ended cleanly — it failed,
/// or its task was cancelled half way (its runtime shut down) — the
/// connection is closed rather than returned to the pool, where the next
/// user would find it inside the transaction; the server then rolls it back
/// and releases its head rows.
struct Closing(Option<deadpool_postgres::Object>);

impl Closing {
    fn client(&self) -> Result<&deadpool_postgres::Object, Failure> {
        self.0.as_ref().ok_or_else(|| Failure::internal("the batch connection"))
    }

    /// Returns the connection to the pool.
    fn keep(mut self) {
        drop(self.0.take());
    }
}

impl Drop for Closing {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

/// Clears the leader flag when the leading task ends in a panic.
struct Leading<'a>(&'a Writer);

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.queue.lock().unwrap_or_else(PoisonError::into_inner).leading = false;
        }
    }
}

/// Why a batch failed, and whether running it again may succeed.
struct Failure {
    error: StoreError,
    retry: bool,
}

impl Failure {
    fn internal(what: &str) -> Self {
        Self { error: StoreError::Unavailable(format!("internal: {what} missing")), retry: false }
    }

    fn corrupt(log: &str, head: i64) -> Self {
        let error = StoreError::Corrupt {
            location: format!("event_log_head {log}"),
            message: format!("negative position {head}"),
        };
        Self { error, retry: false }
    }
}

impl From<tokio_postgres::Error> for Failure {
    fn from(error: tokio_postgres::Error) -> Self {
        let retry = error.code().is_some_and(|code| {
            *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE
        });
        Self { error: pg_error(error), retry }
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Self { error, retry: false }
    }
}

/// The columns of a batch's inserts, one element per row.
#[derive(Default)]
struct Inserts<'a> {
    logs: Vec<&'a str>,
    positions: Vec<i64>,
    stream_types: Vec<Option<&'a str>>,
    stream_ids: Vec<Option<&'a str>>,
    versions: Vec<Option<i64>>,
    event_ids: Vec<Uuid>,
    types: Vec<&'a str>,
    tags: Vec<&'a str>,
    data: Vec<&'a str>,
    meta: Vec<&'a str>,
    tag_logs: Vec<&'a str>,
    tag_texts: Vec<&'a str>,
    tag_positions: Vec<i64>,
    tag_types: Vec<&'a str>,
}

/// A batch decided: every job's answer (given that the batch commits), the
/// rows to insert and the new head of each log appended to.
struct Decided<'a> {
    outcomes: Vec<Result<Appended, StoreError>>,
    inserts: Inserts<'a>,
    heads: Vec<(&'a str, i64)>,
}

/// An event accepted earlier in the batch, as the later jobs' checks see it.
struct Pending<'a> {
    position: u64,
    event_type: &'a str,
    tags: Vec<Tag>,
}

/// Decides the jobs in queue order: each on its check (`checks[i]`: the
/// position of a violating event, or the stream's version) and on the
/// events accepted before it in this batch.
fn decide<'a>(batch: &'a [Job], mut heads: HashMap<String, i64>, checks: &[Option<i64>]) -> Decided<'a> {
    let mut inserts = Inserts::default();
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut pending: HashMap<&str, Vec<Pending<'a>>> = HashMap::new();
    let mut versions: HashMap<(&str, &str, &str), i64> = HashMap::new();
    let mut appended_logs: Vec<&str> = Vec::new();
    for (job, check) in batch.iter().zip(checks) {
        let earlier = pending.get(job.log.as_str()).map(Vec::as_slice).unwrap_or_default();
        let refusal = match &job.guard {
            Guard::None => None,
            Guard::Condition { condition, .. } => match check {
                Some(position) => Some(format!("the event at position {position} matches the append condition")),
                None => earlier
                    .iter()
                    .find(|event| condition.is_violated_by(event.position, event.event_type, &event.tags))
                    .map(|event| format!("the event at position {} matches the append condition", event.position)),
            },
            Guard::Stream { key, id, expected } => {
                let current = versions.get(&(job.log.as_str(), key.as_str(), id.as_str())).copied();
                let current = current.or(*check).unwrap_or(0);
                (current != *expected)
                    .then(|| format!("stream {key} {id} is at version {current}, expected {expected}"))
            }
        };
        if let Some(message) = refusal {
            outcomes.push(Err(StoreError::Conflict(message)));
            continue;
        }
        let head = heads.entry(job.log.clone()).or_insert(0);
        let first = *head + 1;
        let count = i64::try_from(job.events.len()).unwrap_or(i64::MAX);
        let last = head.saturating_add(count);
        *head = last;
        if !appended_logs.contains(&job.log.as_str()) {
            appended_logs.push(&job.log);
        }
        let stream = match &job.guard {
            Guard::Stream { key, id, expected } => {
                versions.insert((job.log.as_str(), key.as_str(), id.as_str()), expected + count);
                Some((key.as_str(), id.as_str(), *expected))
            }
            _ => None,
        };
        let entity_tag = job.entity_tag();
        let entity_text = entity_tag.as_ref().map(ToString::to_string);
        for (offset, event) in job.events.iter().enumerate() {
            let offset = i64::try_from(offset).unwrap_or(i64::MAX);
            let position = first + offset;
            inserts.logs.push(&job.log);
            inserts.positions.push(position);
            inserts.stream_types.push(stream.map(|(key, _, _)| key));
            inserts.stream_ids.push(stream.map(|(_, id, _)| id));
            inserts.versions.push(stream.map(|(_, _, version)| version + 1 + offset));
            inserts.event_ids.push(event.event_id);
            inserts.types.push(&event.event_type);
            inserts.tags.push(&event.tags_json);
            inserts.data.push(&event.data);
            inserts.meta.push(&event.meta);
            for tag in &event.tag_texts {
                if entity_text.as_deref() == Some(tag.as_str()) {
                    continue;
                }
                inserts.tag_logs.push(&job.log);
                inserts.tag_texts.push(tag);
                inserts.tag_positions.push(position);
                inserts.tag_types.push(&event.event_type);
            }
            let mut tags = event.tags.clone();
            if let Some(entity) = &entity_tag
                && !tags.contains(entity)
            {
                tags.push(entity.clone());
            }
            let position = to_position(position, "batch").unwrap_or(0);
            pending.entry(&job.log).or_default().push(Pending { position, event_type: &event.event_type, tags });
        }
        outcomes.push(appended(first, last));
    }
    let heads = appended_logs.into_iter().map(|log| (log, heads.get(log).copied().unwrap_or(0))).collect();
    Decided { outcomes, inserts, heads }
}

fn appended(first: i64, last: i64) -> Result<Appended, StoreError> {
    Ok(Appended { first_position: to_position(first, "append")?, last_position: to_position(last, "append")? })
}
