//! Async commands on the host side: running a queued command and keeping
//! its outcome by command id (`<Plugin>_CommandOutcomes`).
use super::*;

impl Runtime {
    /// Runs one queued command (a message of a plugin's command topic).
    /// Domain rejections and undecodable messages count as handled; only
    /// infrastructure failures are errors (the message is to be redelivered).
    pub async fn run_queued(&self, message: &CommandMessage) -> Result<(), EngineError> {
        // A public command for one of the hosted extension points.
        match crate::plugin::PointCommandMessage::from_body(&message.body) {
            Some(Ok(point_message)) => return self.run_point_command(point_message).await,
            Some(Err(error)) => {
                tracing::error!(%error, "dropping an undecodable extension point command message");
                return Ok(());
            }
            None => {}
        }
        let request: CommandRequest = match serde_json::from_value(message.body.clone()) {
            Ok(request) => request,
            Err(error) => {
                tracing::error!(%error, "dropping an undecodable command message");
                return Ok(());
            }
        };
        let span = command_span(&request);
        self.run_decoded(request).instrument(span).await
    }

    /// Runs a queued command inside its span (see [`Runtime::run_queued`]).
    pub(super) async fn run_decoded(&self, request: CommandRequest) -> Result<(), EngineError> {
        let retention = self.inner.outcome_retention;
        // A redelivery of a command that already ran (its process died, or
        // lost the message, between recording the outcome and the ack): its
        // outcome stands and it does not run again.
        if let Some(done) = self.command_outcome(&request.plugin, &request.command_id).await?
            && done.status != crate::outcomes::OutcomeStatus::Pending
        {
            tracing::info!(command = request.command, command_id = request.command_id, "already ran; not run again");
            return Ok(());
        }
        // Built from the message, not read back: the final record replaces
        // the PENDING one written when the command was queued.
        let entity_id = request.entity_id.as_deref().unwrap_or_default();
        let record = OutcomeRecord::pending(&request.command_id, &request.command, entity_id, retention);
        let prepared = match self.route(&request).and_then(|handler| handler.prepare(&request)) {
            Ok(prepared) => prepared,
            Err(error) => {
                tracing::error!(
                    %error,
                    command = request.command,
                    command_id = request.command_id,
                    error_code = crate::outcomes::failure_code(&error),
                    "async command failed: it cannot run"
                );
                return self.record_outcome(&request.plugin, &record.fail(&error, retention)).await;
            }
        };
        tracing::Span::current().record("entity_id", prepared.entity_id.as_str());
        let _guard = self.inner.locks.lock(format!("{}/{}", request.plugin, prepared.entity_id)).await;
        let outcome = match prepared.run(self.context(&request)).await {
            Ok(outcome) => outcome,
            Err(error @ (EngineError::Contract(_) | EngineError::CorruptEvent(_) | EngineError::BadInput { .. })) => {
                tracing::error!(
                    %error,
                    command = request.command,
                    command_id = request.command_id,
                    error_code = crate::outcomes::failure_code(&error),
                    "async command failed"
                );
                return self.record_outcome(&request.plugin, &record.fail(&error, retention)).await;
            }
            // Infrastructure: the message comes back and the command runs again.
            Err(other) => return Err(other),
        };
        if let CommandOutcome::Rejected { error_code, entity_id, .. } = &outcome {
            tracing::warn!(
                command = request.command,
                command_id = request.command_id,
                entity_id = entity_id.as_deref().unwrap_or_default(),
                error_code,
                "async command rejected"
            );
        } else {
            tracing::debug!(?outcome, command = request.command, "async command handled");
        }
        self.record_outcome(&request.plugin, &record.finish(&outcome, retention)).await
    }

    /// Stores an async command's outcome in its plugin's outcomes table.
    pub(super) async fn record_outcome(&self, plugin: &str, record: &OutcomeRecord) -> Result<(), EngineError> {
        let row = serde_json::to_value(record).map_err(|e| EngineError::Contract(e.to_string()))?;
        self.inner.stores.queries.put(&outcomes_table(plugin), &record.command_id, row).await?;
        Ok(())
    }

    /// The outcome of the async command `command_id` of `plugin`: `None`
    /// when unknown or expired.
    pub async fn command_outcome(&self, plugin: &str, command_id: &str) -> Result<Option<OutcomeRecord>, EngineError> {
        let Some(row) = self.inner.stores.queries.get(&outcomes_table(plugin), command_id).await? else {
            return Ok(None);
        };
        let record: OutcomeRecord = serde_json::from_value(row).map_err(|e| {
            EngineError::Store(StoreError::Corrupt {
                location: format!("{}/{command_id}", outcomes_table(plugin)),
                message: e.to_string(),
            })
        })?;
        Ok((!record.is_expired(reventless_spec::Timestamp::now().0)).then_some(record))
    }

    /// Deletes the outcomes kept longer than the retention (the local
    /// platform does it on every heartbeat).
    pub async fn sweep_outcomes(&self) -> Result<usize, EngineError> {
        let now = reventless_spec::Timestamp::now().0;
        let mut removed = 0;
        for plugin in self.inner.plugins.keys() {
            let table = outcomes_table(plugin);
            let expired = crate::store::ListRequest {
                filters: vec![crate::store::Filter {
                    field: "expiresAt".into(),
                    op: crate::store::FilterOp::Lte,
                    value: now.into(),
                }],
                first: 1000,
                ..Default::default()
            };
            let page = self.inner.stores.queries.list(&table, &expired).await?;
            let ops: Vec<crate::store::RowOp> =
                page.rows.into_iter().map(|(id, _)| crate::store::RowOp::Delete { id }).collect();
            removed += ops.len();
            if !ops.is_empty() {
                self.inner.stores.queries.commit(&table, ops, None).await?;
            }
        }
        Ok(removed)
    }
}
