//! What a development tool (the event explorer) asks of a running runtime:
//! every follower's checkpoint against its log head, and a second chance
//! for an automation's exhausted to-do item.
use super::*;

/// How far one follower has applied one log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FollowerCheckpoint {
    /// The checkpoint's name: `<table>@<log>` for read models and automations.
    pub name: String,
    /// The log it follows.
    pub log: String,
    /// The last position it has passed: its stored checkpoint (other
    /// processes' work counts), or further where this process's follower
    /// passed events of types it ignores (it stores no checkpoint for those).
    pub position: u64,
    /// The log's last position.
    pub head: u64,
    /// Positions of the log it has not passed yet (`head - position`).
    pub lag: u64,
    /// Why it is not moving, if it is failing or stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Why an exhausted item could not be retried.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RetryError {
    /// No hosted automation keeps its to-do items in this table.
    #[error("no automation keeps its to-do items in table `{0}`")]
    UnknownAutomation(String),
    /// The table has no item with this id.
    #[error("automation table `{table}` has no item `{id}`")]
    UnknownItem {
        /// The automation's to-do table.
        table: String,
        /// The item asked for.
        id: String,
    },
    /// The item is not exhausted (it is pending, processing, failed with
    /// retries left, or completed): the automation handles it by itself.
    #[error("item `{id}` of `{table}` is {status}, not EXHAUSTED: only an exhausted item is retried by hand")]
    NotExhausted {
        /// The automation's to-do table.
        table: String,
        /// The item asked for.
        id: String,
        /// Its status now.
        status: String,
    },
    /// The query store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Runtime {
    /// Every follower's stored checkpoint per log, with the log's head.
    pub async fn checkpoints(&self) -> Result<Vec<FollowerCheckpoint>, StoreError> {
        let mut heads: BTreeMap<&LogRef, u64> = BTreeMap::new();
        let mut found = Vec::new();
        for projection in &self.inner.projections {
            let head = match heads.get(&projection.source) {
                Some(head) => *head,
                None => {
                    let head = log_head(&self.inner.stores, &projection.source).await?;
                    heads.insert(&projection.source, head);
                    head
                }
            };
            let stored = self.inner.stores.queries.checkpoint(&projection.name).await?;
            let progress = projection.progress.borrow().clone();
            let position = stored.max(progress.position);
            found.push(FollowerCheckpoint {
                name: projection.name.clone(),
                log: projection.source.name.clone(),
                position,
                head,
                lag: head.saturating_sub(position),
                error: progress.stopped.or(progress.error),
            });
        }
        Ok(found)
    }

    /// Puts an exhausted to-do item of the automation whose table is `table`
    /// back to PENDING with no retries used: the automation sends its
    /// commands again at its next tick (within a second
    /// locally; at the next [`Runtime::retry_due`] on demand). Its last error
    /// stays until an attempt succeeds. Returns the row as written.
    pub async fn retry_exhausted(&self, table: &str, id: &str) -> Result<serde_json::Value, RetryError> {
        let known = self.inner.plugins.values().flat_map(|plugin| &plugin.automations).any(|a| a.table() == table);
        if !known {
            return Err(RetryError::UnknownAutomation(table.to_string()));
        }
        let queries = &self.inner.stores.queries;
        let unknown = || RetryError::UnknownItem { table: table.to_string(), id: id.to_string() };
        let mut row = queries.get(table, id).await?.ok_or_else(unknown)?;
        let status = row.get("status").and_then(serde_json::Value::as_str).unwrap_or_default().to_string();
        if status != "EXHAUSTED" {
            return Err(RetryError::NotExhausted { table: table.to_string(), id: id.to_string(), status });
        }
        row["status"] = "PENDING".into();
        row["retryCount"] = 0.into();
        row["processedAt"] = serde_json::Value::Null;
        row["pendingCommands"] = serde_json::json!([]);
        queries.put(table, id, row.clone()).await?;
        tracing::info!(automation = table, id, "exhausted item put back to pending by hand");
        Ok(row)
    }
}
