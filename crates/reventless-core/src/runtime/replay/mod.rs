//! Rebuilding a read model from the start while the app keeps serving it:
//! a replay folds every event of the read model's logs into the table of a
//! new generation (a shadow, with its own checkpoints), switches the read
//! model's pointer to it once it has caught up with the log heads, and
//! then deletes the old generation's rows. Queries read the old rows until
//! the switch; live projection workers (in this process or any other on
//! the same store) write the new table from their next batch on (see
//! [`tables`]).
//!
//! The state lives in the store (the pointer row and the shadow's
//! checkpoints), so a replay can be driven in slices ([`Replay::step`]), by
//! a process that may end between them (an AWS function invocation).
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::outcome::EngineError;
use crate::plugin::{LogRef, ProjectionHandler};
use crate::store::{Checkpoint, ListRequest, QueryStore, RowOp, StoreError};

use super::Runtime;

pub mod tables;

pub use tables::{
    POINTER_TTL, READ_MODEL_TABLES, ReadModelTables, TablePointer, logical_table, physical_checkpoint, physical_table,
    read_pointer,
};

/// Events a replay reads per batch (one commit each; halved when too large for the store).
const REPLAY_BATCH: usize = 512;
/// Rows deleted per commit when the old generation is removed.
const DELETE_BATCH: usize = 25;

/// Why a replay could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReplayError {
    /// No hosted read model has this name.
    #[error("no read model `{name}` (known: {})", known.join(", "))]
    UnknownReadModel {
        /// The name asked for.
        name: String,
        /// The hosted read models (`Plugin.ReadModel`).
        known: Vec<String>,
    },
    /// The name is an automation's to-do list.
    #[error("`{0}` is an automation's todo list, not a read model: it cannot be replayed")]
    Automation(String),
    /// This read model is being replayed already.
    #[error("another replay of `{0}` is running")]
    Busy(String),
    /// A later replay of the read model took over.
    #[error("the replay of `{table}` generation {generation} was replaced by generation {current:?}")]
    Superseded {
        /// The read model's table.
        table: String,
        /// This replay's generation.
        generation: u64,
        /// The generation being replayed now.
        current: Option<u64>,
    },
    /// The projection failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The tables of the runtime's replayable read models (projections that are not automations).
pub(crate) fn read_model_tables(
    plugins: &std::collections::BTreeMap<String, crate::plugin::ResolvedPlugin>,
) -> BTreeSet<String> {
    plugins
        .values()
        .flat_map(|plugin| {
            let automations: BTreeSet<&str> = plugin.automations.iter().map(|a| a.table()).collect();
            plugin
                .projections
                .iter()
                .map(|p| p.handler.table().to_string())
                .filter(move |table| !automations.contains(table.as_str()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Where a replay stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayProgress {
    /// `Plugin.ReadModel`.
    pub read_model: String,
    /// The read model's table (generation 0).
    pub table: String,
    /// The generation being filled (its table is `table~generation`).
    pub generation: u64,
    /// Log positions folded so far, over all its logs.
    pub position: u64,
    /// The log heads, over all its logs, when last read.
    pub head: u64,
    /// Events folded by this process.
    pub events: u64,
    /// Whether the read model now reads the new generation.
    pub switched: bool,
}

/// A replay of one read model, started by [`Replay::begin`] or picked up by [`Replay::resume`].
pub struct Replay {
    runtime: Runtime,
    read_model: String,
    handler: Arc<dyn ProjectionHandler>,
    sources: Vec<LogRef>,
    consumes: BTreeSet<String>,
    generation: u64,
    batch: usize,
    progress: ReplayProgress,
}

impl Replay {
    /// Starts a replay of `name` (`Plugin.ReadModel`, the read model's plural
    /// or singular name, or its table): a new generation, empty, at position 0.
    /// The rows of an unfinished earlier replay are deleted first.
    pub async fn begin(runtime: &Runtime, name: &str) -> Result<Self, ReplayError> {
        let (read_model, projection) = find(runtime, name)?;
        let table = projection.handler.table().to_string();
        let store = inner(runtime);
        let mut pointer = read_pointer(store.as_ref(), &table).await?;
        if let Some(retired) = pointer.retired.take() {
            delete_rows(store.as_ref(), &physical_table(&table, retired)).await?;
        }
        if let Some(abandoned) = pointer.replaying.take() {
            delete_rows(store.as_ref(), &physical_table(&table, abandoned)).await?;
        }
        // A new generation each time: checkpoints never move back, so a
        // generation's table is filled once.
        let used = pointer.generation.max(highest_started(store.as_ref(), &table).await?);
        let generation = used + 1;
        // Claims the generation: of two replays begun at once, one conflicts.
        let claimed = store.commit(tables::READ_MODEL_TABLES, Vec::new(), Some(started_marker(&table, generation)));
        match claimed.await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(ReplayError::Busy(read_model)),
            Err(error) => return Err(error.into()),
        }
        pointer.replaying = Some(generation);
        tables::write_pointer(store.as_ref(), &table, &pointer).await?;
        tracing::info!(read_model, table, generation, "replay started");
        Ok(Self::new(runtime, read_model, projection, generation))
    }

    /// Picks up the replay of `name` filling `generation` (started by another process).
    pub async fn resume(runtime: &Runtime, name: &str, generation: u64) -> Result<Self, ReplayError> {
        let (read_model, projection) = find(runtime, name)?;
        let replay = Self::new(runtime, read_model, projection, generation);
        replay.check_current().await?;
        Ok(replay)
    }

    fn new(
        runtime: &Runtime,
        read_model: String,
        projection: crate::plugin::ResolvedProjection,
        generation: u64,
    ) -> Self {
        let table = projection.handler.table().to_string();
        let consumes = projection.handler.manifest().consumes.into_iter().collect();
        Self {
            runtime: runtime.clone(),
            progress: ReplayProgress {
                read_model: read_model.clone(),
                table,
                generation,
                position: 0,
                head: 0,
                events: 0,
                switched: false,
            },
            read_model,
            handler: projection.handler,
            sources: projection.sources,
            consumes,
            generation,
            batch: REPLAY_BATCH,
        }
    }

    /// Reads at most `events` per batch (default 512): smaller batches
    /// report progress more often and keep each commit small.
    pub fn with_batch(mut self, events: usize) -> Self {
        self.batch = events.max(1);
        self
    }

    /// Where it stands.
    pub fn progress(&self) -> &ReplayProgress {
        &self.progress
    }

    /// `Plugin.ReadModel`.
    pub fn read_model(&self) -> &str {
        &self.read_model
    }

    fn table(&self) -> &str {
        self.handler.table()
    }

    fn shadow(&self) -> tables::Pinned {
        tables::Pinned { inner: inner(&self.runtime), logical: self.table().to_string(), generation: self.generation }
    }

    async fn check_current(&self) -> Result<TablePointer, ReplayError> {
        let pointer = read_pointer(inner(&self.runtime).as_ref(), self.table()).await?;
        if pointer.replaying != Some(self.generation) {
            return Err(ReplayError::Superseded {
                table: self.table().to_string(),
                generation: self.generation,
                current: pointer.replaying,
            });
        }
        Ok(pointer)
    }

    /// Folds batches into the shadow for up to `budget`; once a pass finds
    /// nothing left in any of its logs, switches the read model to the
    /// shadow. Returns the progress (`switched` once it did).
    pub async fn step(&mut self, budget: Duration) -> Result<ReplayProgress, ReplayError> {
        let started = Instant::now();
        loop {
            let mut folded = false;
            for index in 0..self.sources.len() {
                folded |= self.fold_batch(index).await?;
            }
            self.measure().await?;
            if !folded {
                self.switch().await?;
                return Ok(self.progress.clone());
            }
            if started.elapsed() >= budget {
                return Ok(self.progress.clone());
            }
        }
    }

    /// Folds one batch of source `index` into the shadow; false when it had nothing new.
    async fn fold_batch(&mut self, index: usize) -> Result<bool, ReplayError> {
        let log = self.sources[index].clone();
        let shadow = self.shadow();
        let name = format!("{}@{}", self.table(), log.name);
        let after = shadow.checkpoint(&name).await?;
        let stores = self.runtime.stores().clone();
        let mut events = super::read_log(&stores, &log, after, self.batch, Some(&self.consumes)).await?;
        let settled = super::worker::settled_prefix(after, &events, reventless_spec::Timestamp::now());
        if settled == 0 && !events.is_empty() {
            // An append still in flight holds the next position: wait for it.
            tokio::time::sleep(Duration::from_millis(50)).await;
            return Ok(true);
        }
        events.truncate(settled);
        let Some(last) = events.last().map(|e| e.position) else { return Ok(false) };
        let consumed = events.iter().filter(|e| self.consumes.contains(&e.event_type)).count() as u64;
        let ops = if consumed == 0 { Vec::new() } else { self.handler.project(&shadow, &events).await? };
        match shadow.commit(self.table(), ops, Some(Checkpoint { name, position: last })).await {
            Ok(()) => {}
            Err(StoreError::TooLarge(_)) if self.batch > 1 => {
                self.batch /= 2;
                return Ok(true);
            }
            Err(error) => return Err(error.into()),
        }
        self.progress.events += consumed;
        Ok(true)
    }

    /// Reads the shadow's checkpoints and the log heads into the progress.
    async fn measure(&mut self) -> Result<(), ReplayError> {
        let shadow = self.shadow();
        let (mut position, mut head) = (0, 0);
        for log in &self.sources {
            position += shadow.checkpoint(&format!("{}@{}", self.table(), log.name)).await?;
            head += self.runtime.stores().events.head(&log.name).await?;
        }
        self.progress.position = position;
        self.progress.head = head.max(position);
        Ok(())
    }

    /// Points the read model at the shadow (one row write); the old
    /// generation is retired, its rows deleted by [`Replay::finish`].
    async fn switch(&mut self) -> Result<(), ReplayError> {
        let mut pointer = self.check_current().await?;
        let store = inner(&self.runtime);
        pointer.retired = Some(pointer.generation);
        pointer.generation = self.generation;
        pointer.replaying = None;
        tables::write_pointer(store.as_ref(), self.table(), &pointer).await?;
        self.progress.switched = true;
        tracing::info!(read_model = self.read_model, generation = self.generation, "read model switched");
        Ok(())
    }

    /// After the switch: waits until no query can still read the old
    /// generation (twice [`POINTER_TTL`]), then deletes its rows. Returns how many.
    pub async fn finish(&self) -> Result<u64, ReplayError> {
        tokio::time::sleep(POINTER_TTL * 2).await;
        retire(&self.runtime, self.table()).await
    }
}

/// Deletes the rows of the generation a switch retired (none: 0).
pub async fn retire(runtime: &Runtime, table: &str) -> Result<u64, ReplayError> {
    let store = inner(runtime);
    let mut pointer = read_pointer(store.as_ref(), table).await?;
    let Some(retired) = pointer.retired else { return Ok(0) };
    let deleted = delete_rows(store.as_ref(), &physical_table(table, retired)).await?;
    // A replay begun meanwhile may have written the pointer: keep its fields.
    pointer = read_pointer(store.as_ref(), table).await?;
    if pointer.retired == Some(retired) {
        pointer.retired = None;
        tables::write_pointer(store.as_ref(), table, &pointer).await?;
    }
    Ok(deleted)
}

/// How a whole replay ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replayed {
    /// Where it stood at the switch.
    pub progress: ReplayProgress,
    /// From the start to the switch (what events/s is measured over).
    pub fold_ms: u64,
    /// Rows of the old generation deleted after the switch.
    pub deleted: u64,
}

/// Runs a whole replay of `name` in this process: begin, fold until caught
/// up (reporting progress after every slice), switch, delete the old rows.
/// Held under a lease, so two processes of one machine never replay one
/// read model at once (elsewhere the later one takes over; see [`Replay::begin`]).
pub async fn run(
    runtime: &Runtime,
    name: &str,
    mut on_progress: impl FnMut(&ReplayProgress),
) -> Result<Replayed, ReplayError> {
    let started = Instant::now();
    let (_, projection) = find(runtime, name)?;
    let lease_name = format!("replay:{}", projection.handler.table());
    let Some(_lease) = runtime.stores().leases.try_acquire(&lease_name).await? else {
        return Err(ReplayError::Busy(name.to_string()));
    };
    let mut replay = Replay::begin(runtime, name).await?;
    loop {
        let progress = replay.step(Duration::from_millis(200)).await?;
        on_progress(&progress);
        if progress.switched {
            break;
        }
    }
    let fold_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let deleted = replay.finish().await?;
    Ok(Replayed { progress: replay.progress.clone(), fold_ms, deleted })
}

/// The table of the read model `name` names (as [`Replay::begin`] takes it).
pub fn table_of(runtime: &Runtime, name: &str) -> Result<String, ReplayError> {
    Ok(find(runtime, name)?.1.handler.table().to_string())
}

/// The physical query store under a runtime's read-model pointers.
fn inner(runtime: &Runtime) -> Arc<dyn QueryStore> {
    runtime.inner.read_model_tables.inner().clone()
}

/// The read model `name` names, with its `Plugin.ReadModel` name.
fn find(runtime: &Runtime, name: &str) -> Result<(String, crate::plugin::ResolvedProjection), ReplayError> {
    let mut known = Vec::new();
    for plugin in runtime.plugins() {
        let automations: BTreeSet<&str> = plugin.automations.iter().map(|a| a.table()).collect();
        for projection in &plugin.projections {
            let (singular, plural) = projection.handler.names();
            let table = projection.handler.table();
            let full = format!("{}.{plural}", plugin.name);
            let matches = name == full || name == format!("{}.{singular}", plugin.name) || name == table;
            if automations.contains(table) {
                if matches {
                    return Err(ReplayError::Automation(name.to_string()));
                }
                continue;
            }
            if matches {
                return Ok((full, projection.clone()));
            }
            known.push(full);
        }
    }
    Err(ReplayError::UnknownReadModel { name: name.to_string(), known })
}

/// The highest generation any replay of `table` ever started (its marker checkpoint).
async fn highest_started(store: &dyn QueryStore, table: &str) -> Result<u64, StoreError> {
    store.checkpoint(&started_name(table)).await
}

fn started_name(table: &str) -> String {
    format!("replay:{table}")
}

fn started_marker(table: &str, generation: u64) -> Checkpoint {
    Checkpoint { name: started_name(table), position: generation }
}

/// Deletes every row of a physical table, a few per commit. Returns how many.
async fn delete_rows(store: &dyn QueryStore, table: &str) -> Result<u64, StoreError> {
    let mut deleted = 0;
    loop {
        let page = store.list(table, &ListRequest { first: 100, ..Default::default() }).await?;
        if page.rows.is_empty() {
            return Ok(deleted);
        }
        for chunk in page.rows.chunks(DELETE_BATCH) {
            let ops = chunk.iter().map(|(id, _)| RowOp::Delete { id: id.clone() }).collect();
            store.commit(table, ops, None).await?;
            deleted += chunk.len() as u64;
        }
    }
}
