//! Where a read model's rows are. A replay fills a shadow table and then
//! points the read model at it: the pointer is one row of
//! [`READ_MODEL_TABLES`] (keyed by the read model's table name) in the same
//! query store, so it works alike on memory, SQLite, PostgreSQL and
//! DynamoDB, and for every process sharing the store. Queries resolve it
//! through [`ReadModelTables`] (trusted for [`POINTER_TTL`]); each projection
//! batch resolves it afresh (`BatchTables`), so a live worker writes the
//! new table from the batch after a switch, from the shadow's checkpoint.
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reventless_spec::EventEnvelope;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::{Checkpoint, ListRequest, Page, QueryStore, RowOp, StoreError};

/// The platform table of read-model pointers: one row per replayed read model.
pub const READ_MODEL_TABLES: &str = "Platform_ReadModelTables";
/// How long queries trust a pointer they read. A replay waits twice this
/// long after switching before it deletes the old rows, so a query that
/// still reads the old table finds them.
pub const POINTER_TTL: Duration = Duration::from_secs(1);

/// Which table holds a read model's rows (its pointer row).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TablePointer {
    /// The generation whose table serves the read model (0: the table of its own name).
    pub generation: u64,
    /// The generation a replay is filling, if one is under way.
    #[serde(default)]
    pub replaying: Option<u64>,
    /// The generation replaced by the last switch whose rows are not yet deleted.
    #[serde(default)]
    pub retired: Option<u64>,
}

/// The table of a read model's `generation` (`Shop_Orders~2`; generation 0 is `Shop_Orders`).
pub fn physical_table(logical: &str, generation: u64) -> String {
    if generation == 0 { logical.to_string() } else { format!("{logical}~{generation}") }
}

/// The read model a physical table belongs to (`Shop_Orders~2` → `Shop_Orders`).
pub fn logical_table(physical: &str) -> &str {
    physical.split_once('~').map_or(physical, |(logical, _)| logical)
}

/// The checkpoint of `generation` for a follower checkpoint `<table>@<log>`.
pub fn physical_checkpoint(checkpoint: &str, generation: u64) -> String {
    match checkpoint.rsplit_once('@') {
        Some((table, log)) => format!("{}@{log}", physical_table(table, generation)),
        None => physical_table(checkpoint, generation),
    }
}

/// The stored pointer of a read model (generation 0 when it was never replayed).
pub async fn read_pointer(store: &dyn QueryStore, logical: &str) -> Result<TablePointer, StoreError> {
    match store.get(READ_MODEL_TABLES, logical).await? {
        None => Ok(TablePointer::default()),
        Some(row) => serde_json::from_value(row).map_err(|error| StoreError::Corrupt {
            location: format!("{READ_MODEL_TABLES}/{logical}"),
            message: error.to_string(),
        }),
    }
}

/// Writes a read model's pointer (one row: the switch is atomic on every store).
pub async fn write_pointer(store: &dyn QueryStore, logical: &str, pointer: &TablePointer) -> Result<(), StoreError> {
    let row = serde_json::to_value(pointer).map_err(|e| StoreError::Invalid(e.to_string()))?;
    store.put(READ_MODEL_TABLES, logical, row).await
}

/// A query store whose read-model tables and checkpoints are resolved
/// through their pointers; every other table passes through. The runtime
/// hands this to everything that reads rows (the API, the explorer).
pub struct ReadModelTables {
    inner: Arc<dyn QueryStore>,
    read_models: BTreeSet<String>,
    cache: Mutex<HashMap<String, (u64, Instant)>>,
}

impl ReadModelTables {
    /// Resolves the tables in `read_models` (the replayable read models' tables) on `inner`.
    pub fn new(inner: Arc<dyn QueryStore>, read_models: BTreeSet<String>) -> Self {
        Self { inner, read_models, cache: Mutex::new(HashMap::new()) }
    }

    /// The store underneath, where tables are physical.
    pub fn inner(&self) -> &Arc<dyn QueryStore> {
        &self.inner
    }

    /// Whether `table` is a replayable read model's (others are not redirected).
    pub fn is_read_model(&self, table: &str) -> bool {
        self.read_models.contains(table)
    }

    /// The generation serving `logical` now, read afresh (and remembered for queries).
    pub async fn generation(&self, logical: &str) -> Result<u64, StoreError> {
        let generation = read_pointer(self.inner.as_ref(), logical).await?.generation;
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(logical.to_string(), (generation, Instant::now()));
        }
        Ok(generation)
    }

    /// The physical table to read for `table`, through a pointer at most [`POINTER_TTL`] old.
    async fn table(&self, table: &str) -> Result<String, StoreError> {
        if !self.is_read_model(table) {
            return Ok(table.to_string());
        }
        let cached = self.cache.lock().ok().and_then(|cache| cache.get(table).copied());
        let generation = match cached {
            Some((generation, at)) if at.elapsed() < POINTER_TTL => generation,
            _ => self.generation(table).await?,
        };
        Ok(physical_table(table, generation))
    }

    /// The physical checkpoint of a read model's follower checkpoint, read afresh.
    async fn checkpoint_name(&self, name: &str) -> Result<String, StoreError> {
        match name.rsplit_once('@') {
            Some((table, _)) if self.is_read_model(table) => {
                Ok(physical_checkpoint(name, self.generation(table).await?))
            }
            _ => Ok(name.to_string()),
        }
    }
}

#[async_trait]
impl QueryStore for ReadModelTables {
    async fn get(&self, table: &str, id: &str) -> Result<Option<Value>, StoreError> {
        self.inner.get(&self.table(table).await?, id).await
    }

    async fn get_many(&self, table: &str, ids: &[String]) -> Result<Vec<(String, Value)>, StoreError> {
        self.inner.get_many(&self.table(table).await?, ids).await
    }

    async fn list(&self, table: &str, request: &ListRequest) -> Result<Page, StoreError> {
        self.inner.list(&self.table(table).await?, request).await
    }

    async fn commit(&self, table: &str, ops: Vec<RowOp>, checkpoint: Option<Checkpoint>) -> Result<(), StoreError> {
        let checkpoint = match checkpoint {
            Some(Checkpoint { name, position }) => {
                Some(Checkpoint { name: self.checkpoint_name(&name).await?, position })
            }
            None => None,
        };
        self.inner.commit(&self.table(table).await?, ops, checkpoint).await
    }

    async fn checkpoint(&self, name: &str) -> Result<u64, StoreError> {
        self.inner.checkpoint(&self.checkpoint_name(name).await?).await
    }
}

/// One read model's table and checkpoints of one generation, on the
/// physical store: what a projection batch (or a replay) reads and
/// commits through, so all of one batch goes to one table.
pub struct Pinned {
    pub(crate) inner: Arc<dyn QueryStore>,
    pub(crate) logical: String,
    pub(crate) generation: u64,
}

impl Pinned {
    fn table<'a>(&self, table: &'a str) -> std::borrow::Cow<'a, str> {
        if table == self.logical { physical_table(table, self.generation).into() } else { table.into() }
    }

    fn checkpoint_name<'a>(&self, name: &'a str) -> std::borrow::Cow<'a, str> {
        match name.rsplit_once('@') {
            Some((table, _)) if table == self.logical => physical_checkpoint(name, self.generation).into(),
            _ => name.into(),
        }
    }
}

#[async_trait]
impl QueryStore for Pinned {
    async fn get(&self, table: &str, id: &str) -> Result<Option<Value>, StoreError> {
        self.inner.get(&self.table(table), id).await
    }

    async fn get_many(&self, table: &str, ids: &[String]) -> Result<Vec<(String, Value)>, StoreError> {
        self.inner.get_many(&self.table(table), ids).await
    }

    async fn list(&self, table: &str, request: &ListRequest) -> Result<Page, StoreError> {
        self.inner.list(&self.table(table), request).await
    }

    async fn commit(&self, table: &str, ops: Vec<RowOp>, checkpoint: Option<Checkpoint>) -> Result<(), StoreError> {
        let checkpoint = checkpoint.map(|c| Checkpoint { name: self.checkpoint_name(&c.name).into_owned(), ..c });
        self.inner.commit(&self.table(table), ops, checkpoint).await
    }

    async fn checkpoint(&self, name: &str) -> Result<u64, StoreError> {
        self.inner.checkpoint(&self.checkpoint_name(name)).await
    }
}

/// What a projection follower resolves per batch: the generation to write,
/// and whether the batch starts where that generation's checkpoint is.
pub(crate) struct BatchTables {
    tables: Arc<ReadModelTables>,
    /// The generation each of its checkpoints last committed to.
    committed: tokio::sync::Mutex<HashMap<String, Alignment>>,
}

#[derive(Clone, Copy)]
struct Alignment {
    generation: Option<u64>,
    /// The worker was sent back to read the checkpoint: its next batch starts there.
    realigning: bool,
}

impl BatchTables {
    pub(crate) fn new(tables: Arc<ReadModelTables>) -> Self {
        Self { tables, committed: tokio::sync::Mutex::new(HashMap::new()) }
    }

    /// The store a batch of `logical` reads and commits through. After a
    /// switch (or on its first batch) the batch must start right after the
    /// checkpoint of the generation it writes; otherwise it is refused with
    /// a `Conflict`, and the worker reads the checkpoint again (through
    /// [`ReadModelTables`], which resolves it to that generation's).
    pub(crate) async fn for_batch(
        &self,
        logical: &str,
        events: &[EventEnvelope],
        advance: &Checkpoint,
    ) -> Result<Arc<dyn QueryStore>, StoreError> {
        if !self.tables.is_read_model(logical) {
            return Ok(self.tables.clone());
        }
        let generation = self.tables.generation(logical).await?;
        let mut committed = self.committed.lock().await;
        let alignment =
            committed.entry(advance.name.clone()).or_insert(Alignment { generation: None, realigning: false });
        if alignment.generation != Some(generation) {
            let name = physical_checkpoint(&advance.name, generation);
            let stored = self.tables.inner.checkpoint(&name).await?;
            let first = events.first().map_or(advance.position, |e| e.position);
            let aligned = first == stored + 1 || (alignment.realigning && first > stored);
            if !aligned {
                alignment.realigning = true;
                return Err(StoreError::Conflict(format!(
                    "{logical} now reads generation {generation}, whose checkpoint {name} is at {stored}"
                )));
            }
            *alignment = Alignment { generation: Some(generation), realigning: false };
        }
        Ok(Arc::new(Pinned { inner: self.tables.inner.clone(), logical: logical.to_string(), generation }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_name_their_tables_and_checkpoints() {
        assert_eq!(physical_table("Shop_Orders", 0), "Shop_Orders");
        assert_eq!(physical_table("Shop_Orders", 3), "Shop_Orders~3");
        assert_eq!(logical_table("Shop_Orders~3"), "Shop_Orders");
        assert_eq!(logical_table("Shop_Orders"), "Shop_Orders");
        assert_eq!(physical_checkpoint("Shop_Orders@Shop", 2), "Shop_Orders~2@Shop");
        assert_eq!(physical_checkpoint("Shop_Orders@Shop", 0), "Shop_Orders@Shop");
    }
}
