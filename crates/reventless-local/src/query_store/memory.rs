use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use reventless_core::store::{Checkpoint, ListRequest, Page, QueryStore, RowOp, StoreError, evaluate_list};
use serde_json::Value;

use crate::memory_lock;

#[derive(Default)]
struct Tables {
    rows: HashMap<String, BTreeMap<String, Value>>,
    checkpoints: HashMap<String, u64>,
}

/// Query tables and checkpoints held in memory.
#[derive(Default)]
pub struct MemoryQueryStore {
    tables: Mutex<Tables>,
}

#[async_trait]
impl QueryStore for MemoryQueryStore {
    async fn get(&self, table: &str, id: &str) -> Result<Option<Value>, StoreError> {
        Ok(memory_lock(&self.tables)?.rows.get(table).and_then(|rows| rows.get(id)).cloned())
    }

    async fn get_many(&self, table: &str, ids: &[String]) -> Result<Vec<(String, Value)>, StoreError> {
        let tables = memory_lock(&self.tables)?;
        let Some(rows) = tables.rows.get(table) else { return Ok(Vec::new()) };
        Ok(ids.iter().filter_map(|id| rows.get(id).map(|row| (id.clone(), row.clone()))).collect())
    }

    async fn list(&self, table: &str, request: &ListRequest) -> Result<Page, StoreError> {
        let tables = memory_lock(&self.tables)?;
        let rows = tables.rows.get(table).into_iter().flatten().map(|(id, row)| (id.as_str(), row));
        evaluate_list(rows, request)
    }

    async fn commit(&self, table: &str, ops: Vec<RowOp>, checkpoint: Option<Checkpoint>) -> Result<(), StoreError> {
        let mut tables = memory_lock(&self.tables)?;
        if let Some(checkpoint) = &checkpoint {
            let stored = tables.checkpoints.get(&checkpoint.name).copied().unwrap_or(0);
            if checkpoint.position <= stored {
                return Err(StoreError::Conflict(format!(
                    "checkpoint {} is already at {stored}, not behind {}",
                    checkpoint.name, checkpoint.position
                )));
            }
        }
        let rows = tables.rows.entry(table.to_string()).or_default();
        for op in ops {
            match op {
                RowOp::Put { id, row } => {
                    rows.insert(id, row);
                }
                RowOp::Delete { id } => {
                    rows.remove(&id);
                }
            }
        }
        if let Some(checkpoint) = checkpoint {
            tables.checkpoints.insert(checkpoint.name, checkpoint.position);
        }
        Ok(())
    }

    async fn checkpoint(&self, name: &str) -> Result<u64, StoreError> {
        Ok(memory_lock(&self.tables)?.checkpoints.get(name).copied().unwrap_or(0))
    }
}
