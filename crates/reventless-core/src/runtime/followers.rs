//! What each kind of follower does with a batch of its log: projections,
//! automations (todo lists and their commands), extensions, publishers.
use super::*;

/// How often an automation retries its failed items without new events.
pub(super) const AUTOMATION_RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Keeps an automation's todo list and sends the commands of its open items.
/// Items are processed at least once: after a crash between sending and
/// marking, an item is sent again (its commands are idempotent).
pub(super) struct AutomationFollower {
    pub(super) projection: ProjectionFollower,
    pub(super) automation: Arc<dyn crate::plugin::AutomationHandler>,
    pub(super) runtime: Runtime,
    pub(super) plugin: String,
}

impl AutomationFollower {
    pub(super) async fn process_open(&self) -> Result<(), EngineError> {
        let queries = &self.runtime.inner.stores.queries;
        let table = self.automation.table();
        for status in ["PENDING", "FAILED", "PROCESSING"] {
            let open = crate::store::ListRequest {
                filters: vec![crate::store::Filter::eq("status", status)],
                first: 100,
                ..Default::default()
            };
            let now_ms = reventless_spec::Timestamp::now().0;
            let retry_after = u64::try_from(AUTOMATION_RETRY_INTERVAL.as_millis()).unwrap_or(u64::MAX);
            for (id, mut row) in queries.list(table, &open).await?.rows {
                let cause = Cause::of(&row);
                let span = tracing::info_span!(
                    "automation",
                    component = self.automation.name(),
                    item = id.as_str(),
                    correlation_id = cause.correlation_id.as_deref(),
                    causation_id = cause.causation_id.as_deref(),
                );
                let item = row.get("item").cloned().unwrap_or(serde_json::Value::Null);
                let retries = row.get("retryCount").and_then(serde_json::Value::as_u64).unwrap_or(0);
                let last_attempt = row.get("processedAt").and_then(serde_json::Value::as_u64).unwrap_or(0);
                let now = serde_json::json!(reventless_spec::Timestamp::now().0);
                let failure = if status == "PROCESSING" {
                    // Sent; what became of its async commands?
                    match self.async_outcome(&row).await? {
                        AsyncOutcome::Nothing | AsyncOutcome::Waiting => continue,
                        AsyncOutcome::Accepted => {
                            row["pendingCommands"] = serde_json::json!([]);
                            queries.put(table, &id, row).await?;
                            continue;
                        }
                        AsyncOutcome::Failed(error) => Some(error),
                    }
                } else {
                    if status == "FAILED" && now_ms.saturating_sub(last_attempt) < retry_after {
                        continue;
                    }
                    let processed =
                        self.automation.process(&id, &item, &self.runtime.inner.capabilities).instrument(span.clone());
                    match processed.await {
                        Ok(dispatches) => match self.send(dispatches, &cause).instrument(span.clone()).await {
                            Ok(pending) => {
                                row["pendingCommands"] = serde_json::json!(pending);
                                None
                            }
                            Err(error) => Some(error),
                        },
                        Err(error) => Some(error),
                    }
                };
                match failure {
                    None => {
                        let done = self.automation.completes_on_success();
                        row["status"] = if done { "COMPLETED" } else { "PROCESSING" }.into();
                        row["processedAt"] = now.clone();
                        if done {
                            row["completedAt"] = now;
                        }
                        row["lastError"] = serde_json::Value::Null;
                    }
                    Some(error) if retries + 1 > u64::from(self.automation.max_retries()) => {
                        span.in_scope(|| tracing::warn!(automation = table, id, error, "retries exhausted"));
                        row["status"] = "EXHAUSTED".into();
                        row["retryCount"] = (retries + 1).into();
                        row["lastError"] = error.into();
                        match self.automation.on_exhausted(&id, &item) {
                            Ok(dispatches) => {
                                if let Err(error) = self.send(dispatches, &cause).instrument(span.clone()).await {
                                    let _in = span.enter();
                                    tracing::error!(automation = table, id, error, "on_exhausted commands failed");
                                }
                            }
                            Err(error) => {
                                let _in = span.enter();
                                tracing::error!(automation = table, id, %error, "on_exhausted failed");
                            }
                        }
                    }
                    Some(error) => {
                        span.in_scope(|| {
                            tracing::info!(automation = table, id, error, "work item failed; it is retried")
                        });
                        row["status"] = "FAILED".into();
                        row["retryCount"] = (retries + 1).into();
                        row["processedAt"] = now;
                        row["lastError"] = error.into();
                    }
                }
                queries.put(table, &id, row).await?;
            }
        }
        Ok(())
    }

    /// Sends the commands of one item and returns the ids of those queued
    /// (async). A rejection or an infrastructure failure is returned as
    /// text: the item failed and is retried.
    async fn send(&self, dispatches: Vec<reventless_spec::Dispatch>, cause: &Cause) -> Result<Vec<String>, String> {
        let mut pending = Vec::new();
        for dispatch in dispatches {
            let command = dispatch.command.clone();
            let mut request = CommandRequest::internal(self.plugin.clone(), dispatch);
            request.correlation_id = cause.correlation_id.clone();
            request.causation_id = cause.causation_id.clone();
            match self.runtime.execute(request).await {
                Ok(CommandOutcome::Rejected { error_code, .. }) => {
                    return Err(format!("{command} was rejected: {error_code}"));
                }
                Ok(CommandOutcome::Pending { command_id, .. }) => pending.push(command_id),
                Ok(CommandOutcome::Accepted { .. }) => {}
                Err(error) => return Err(error.to_string()),
            }
        }
        Ok(pending)
    }

    /// What became of the async commands a processed item sent.
    async fn async_outcome(&self, row: &serde_json::Value) -> Result<AsyncOutcome, EngineError> {
        let ids: Vec<&str> = row
            .get("pendingCommands")
            .and_then(serde_json::Value::as_array)
            .map(|ids| ids.iter().filter_map(serde_json::Value::as_str).collect())
            .unwrap_or_default();
        if ids.is_empty() {
            return Ok(AsyncOutcome::Nothing);
        }
        let mut waiting = false;
        for id in ids {
            // Unknown (expired) counts as done: the item waits for its event.
            let Some(record) = self.runtime.command_outcome(&self.plugin, id).await? else { continue };
            match record.status {
                crate::outcomes::OutcomeStatus::Pending => waiting = true,
                crate::outcomes::OutcomeStatus::Accepted => {}
                crate::outcomes::OutcomeStatus::Rejected | crate::outcomes::OutcomeStatus::Failed => {
                    let code = record.error_code.unwrap_or_default();
                    return Ok(AsyncOutcome::Failed(format!("{} was {:?}: {code}", record.command, record.status)));
                }
            }
        }
        Ok(if waiting { AsyncOutcome::Waiting } else { AsyncOutcome::Accepted })
    }
}

/// What a todo row says caused it: the correlation and the id of the event
/// that collected it (the causation of the commands it sends).
pub(super) struct Cause {
    correlation_id: Option<String>,
    causation_id: Option<String>,
}

impl Cause {
    fn of(row: &serde_json::Value) -> Self {
        let text = |key: &str| row.get(key).and_then(serde_json::Value::as_str).map(str::to_string);
        Self { correlation_id: text("correlationId"), causation_id: text("causationId") }
    }
}

/// The state of the async commands a processed work item sent.
pub(super) enum AsyncOutcome {
    /// It sent none.
    Nothing,
    Waiting,
    Accepted,
    Failed(String),
}

#[async_trait::async_trait]
impl Follower for AutomationFollower {
    async fn apply(&self, events: &[EventEnvelope], advance: Checkpoint) -> Result<(), EngineError> {
        self.projection.apply(events, advance).await?;
        self.process_open().await
    }

    async fn idle(&self) -> Result<(), EngineError> {
        self.process_open().await
    }

    fn idle_interval(&self) -> Option<Duration> {
        Some(AUTOMATION_RETRY_INTERVAL)
    }

    fn consumes(&self, event_type: &str) -> bool {
        self.projection.consumes(event_type)
    }

    fn consumed(&self) -> Option<&BTreeSet<String>> {
        self.projection.consumed()
    }
}

/// Keeps a read model's table current.
pub(super) struct ProjectionFollower {
    pub(super) handler: Arc<dyn crate::plugin::ProjectionHandler>,
    pub(super) stores: Stores,
    pub(super) row_changes: broadcast::Sender<RowChange>,
    /// The event types it projects.
    pub(super) consumes: BTreeSet<String>,
    /// Its runtime, as row-change notices name it.
    pub(super) origin: u64,
    /// The table each batch writes (a replay may have switched it).
    pub(super) tables: super::replay::tables::BatchTables,
}

#[async_trait::async_trait]
impl Follower for ProjectionFollower {
    fn consumes(&self, event_type: &str) -> bool {
        self.consumes.contains(event_type)
    }

    fn consumed(&self) -> Option<&BTreeSet<String>> {
        Some(&self.consumes)
    }

    async fn apply(&self, events: &[EventEnvelope], advance: Checkpoint) -> Result<(), EngineError> {
        let queries = self.tables.for_batch(self.handler.table(), events, &advance).await?;
        let ops = self.handler.project(queries.as_ref(), events).await?;
        let changed: Vec<String> = ops
            .iter()
            .map(|op| match op {
                crate::store::RowOp::Put { id, .. } | crate::store::RowOp::Delete { id } => id.clone(),
            })
            .collect();
        queries.commit(self.handler.table(), ops, Some(advance)).await?;
        // Other processes' subscribers hear of them through the bus.
        let mut distinct = changed.clone();
        distinct.sort_unstable();
        distinct.dedup();
        for notice in super::row_notices::row_notices(self.origin, self.handler.table(), &distinct) {
            self.stores.bus.publish(notice);
        }
        if self.row_changes.receiver_count() > 0 {
            for id in changed {
                let _ = self.row_changes.send(RowChange { table: self.handler.table().to_string(), id });
            }
        }
        Ok(())
    }
}

/// Table name of commits that only move a checkpoint.
pub(super) const CHECKPOINT_ONLY: &str = "_checkpoints";

/// Delivers another plugin's published events to an extension, at least
/// once: the checkpoint moves only after every command of the batch ran.
pub(super) struct ExtensionFollower {
    pub(super) runtime: Runtime,
    pub(super) plugin: String,
    pub(super) publisher: Arc<dyn crate::plugin::PublisherHandler>,
    pub(super) extension: Arc<dyn crate::plugin::ExtensionHandler>,
}

#[async_trait::async_trait]
impl Follower for ExtensionFollower {
    async fn apply(&self, events: &[EventEnvelope], advance: Checkpoint) -> Result<(), EngineError> {
        for envelope in events {
            for (name, data) in self.publisher.publish(envelope)? {
                let correlation = envelope.meta.correlation_id.clone();
                let causation = Some(envelope.event_id.to_string());
                let extension = self.extension.as_ref();
                self.runtime.run_extension(&self.plugin, extension, name, data, correlation, causation).await?;
            }
        }
        self.runtime.inner.stores.queries.commit(CHECKPOINT_ONLY, Vec::new(), Some(advance)).await?;
        Ok(())
    }
}

/// Hands an extension point's published events to one subscriber hosted
/// elsewhere, in order, on its inbox topic. At least once: after a crash
/// between sending and the checkpoint the batch is sent again (the topic
/// drops a repeated message id within its dedup window; extensions' commands
/// are idempotent anyway).
pub(super) struct PublisherFollower {
    pub(super) stores: Stores,
    pub(super) point: String,
    pub(super) subscriber: String,
    pub(super) publisher: Arc<dyn crate::plugin::PublisherHandler>,
}

#[async_trait::async_trait]
impl Follower for PublisherFollower {
    async fn apply(&self, events: &[EventEnvelope], advance: Checkpoint) -> Result<(), EngineError> {
        let topic = inbox_topic(&self.subscriber);
        for envelope in events {
            for (index, (name, data)) in self.publisher.publish(envelope)?.into_iter().enumerate() {
                let published = PublishedMessage {
                    point: self.point.clone(),
                    name: name.to_string(),
                    data,
                    correlation_id: envelope.meta.correlation_id.clone(),
                    causation_id: Some(envelope.event_id.to_string()),
                };
                let message = CommandMessage {
                    // One group per point: subscribers see its events in log order.
                    group_id: self.point.clone(),
                    dedup_id: format!("{}:{}:{index}", advance.name, envelope.position),
                    body: serde_json::to_value(&published).map_err(|e| EngineError::Contract(e.to_string()))?,
                };
                self.stores.commands.send(&topic, message).await?;
            }
        }
        self.stores.queries.commit(CHECKPOINT_ONLY, Vec::new(), Some(advance)).await?;
        Ok(())
    }
}
