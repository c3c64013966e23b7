//! Runs a task over a file: records → commands through the runtime, the
//! run row saved at checkpoints (see the module docs of [`crate::task`]).
use std::collections::HashSet;
use std::sync::Arc;

use reventless_spec::{Dispatch, Timestamp};
use tokio::io::{AsyncRead, BufReader};

use super::records::{Located, RawRecord, Records, malformed};
use super::{
    CHECKPOINT_EVERY, INVALID_COMMAND, REJECTED_LISTED, RecordRejection, RejectedRecord, TaskCheckpoint, TaskError,
    TaskFormat, TaskRun, TaskRunRow, TaskStatus,
};
use crate::outcome::{CommandOutcome, CommandRequest, EngineError};
use crate::plugin::{ResolvedPlugin, TaskHandler};
use crate::runtime::Runtime;

/// Log events read per page while looking for a resumed run's commands.
const SCAN_PAGE: usize = 1000;

/// How far a run is, after each record (for progress bars).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskProgress {
    /// Records read so far (a resumed run counts the ones done before).
    pub records_read: u64,
    /// Of those, accepted.
    pub accepted: u64,
    /// Of those, rejected.
    pub rejected: u64,
    /// Bytes of the file read so far (its offset).
    pub bytes_read: u64,
}

/// Runs task `task` of `plugin` over `reader` (the file from
/// `run.start_offset`), in `run.caller`'s name, and returns the run row.
///
/// The caller must hold one of the task's roles (else `AccessRefused`,
/// nothing runs). Each record's commands run as API commands of the
/// caller (their components' roles apply). The row `<Plugin>_<Task>Runs/<run
/// id>` is saved every [`CHECKPOINT_EVERY`] records; running a run id
/// that exists resumes it, or returns it when it completed. A file or
/// store error ends the run `FAILED` (returned as the row, the error in
/// it); only when the row itself cannot be saved is the error returned.
pub async fn run_task<R>(
    runtime: &Runtime,
    plugin: &str,
    task: &str,
    run: TaskRun,
    reader: R,
    progress: &(dyn Fn(&TaskProgress) + Send + Sync),
) -> Result<TaskRunRow, TaskError>
where
    R: AsyncRead + Unpin + Send,
{
    let (hosted, handler) = find(runtime, plugin, task)?;
    let full_name = format!("{plugin}.{task}");
    if !handler.roles().is_empty() && !run.caller.has_any_role(handler.roles()) {
        return Err(TaskError::AccessRefused { task: full_name, roles: handler.roles().join(", ") });
    }
    if run.run_id.is_empty() || run.run_id.len() > 1024 {
        return Err(TaskError::InvalidRunId(run.run_id.len()));
    }
    let format = run
        .format
        .or_else(|| TaskFormat::from_name(&run.source_name))
        .ok_or_else(|| TaskError::UnknownFormat { source_name: run.source_name.clone() })?;
    if !handler.formats().contains(&format) {
        let accepted = handler.formats().iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ");
        return Err(TaskError::UnsupportedFormat { task: full_name, format, accepted });
    }
    let stores = runtime.stores().clone();
    let table = handler.table();
    // One place runs a run id at a time (two uploads of one object, a
    // redelivered notification while the first still runs).
    let Some(_lease) = stores.leases.try_acquire(&format!("task:{}/{}", handler.table(), run.run_id)).await? else {
        return Err(TaskError::RunInProgress(run.run_id));
    };
    let now = Timestamp::now().0;
    let mut row = match load(runtime, handler.table(), &run.run_id).await? {
        Some(row) if row.status == TaskStatus::Completed => return Ok(row),
        Some(mut row) => {
            // Back to the checkpoint: what came after it is done again (or found done).
            let checkpoint = row.checkpoint.clone();
            row.records_read = checkpoint.records;
            row.accepted = checkpoint.accepted;
            row.rejected = checkpoint.rejected;
            row.rejected_records.retain(|rejected| rejected.record <= checkpoint.records);
            row.rejected_not_listed = checkpoint.rejected - row.rejected_records.len() as u64;
            row.status = TaskStatus::Running;
            row.error = None;
            row.finished_at = None;
            row.attempts += 1;
            row
        }
        None => TaskRunRow {
            id: run.run_id.clone(),
            task: full_name.clone(),
            source_name: run.source_name.clone(),
            format,
            status: TaskStatus::Running,
            records_read: 0,
            accepted: 0,
            rejected: 0,
            rejected_records: Vec::new(),
            rejected_not_listed: 0,
            started_by: run.caller.user_id.clone(),
            started_at: now,
            finished_at: None,
            updated_at: now,
            attempts: 1,
            error: None,
            header: None,
            checkpoint: TaskCheckpoint {
                next_line: 1,
                log_position: stores.events.head(plugin).await?,
                ..TaskCheckpoint::default()
            },
        },
    };
    let resumed = row.attempts > 1;
    let checkpoint = row.checkpoint.clone();
    // Records before the reader's first byte are done; a reader from the
    // file's start reads past the checkpoint's records without running them.
    let (skip_until, start_line) = match run.start_offset {
        0 => (checkpoint.records, 1),
        offset if offset == checkpoint.byte_offset => (0, checkpoint.next_line),
        given => {
            return Err(TaskError::ResumeOffset { run_id: run.run_id, expected: checkpoint.byte_offset, given });
        }
    };
    let mut state = Run {
        runtime,
        plugin: hosted,
        handler: handler.as_ref(),
        run_id: run.run_id.clone(),
        caller: run.caller.clone(),
        done_before: HashSet::new(),
        lag_until: checkpoint.records + CHECKPOINT_EVERY,
        resumed,
    };
    if resumed {
        state.done_before = commands_in_log(runtime, plugin, &run.run_id, checkpoint.log_position).await?;
    }
    save(runtime, table, &mut row).await?;
    let mut records = Records::new(BufReader::new(reader), format, run.start_offset, start_line);
    // A reader from the file's start reads the header again; one from
    // the checkpoint has only the stored header.
    let mut header = (run.start_offset > 0).then(|| row.header.clone().map(csv::StringRecord::from)).flatten();
    // Records counted by this pass: the ordinal of the next record.
    let mut ordinal = if skip_until > 0 { 0 } else { checkpoint.records };
    loop {
        let located = match records.next().await {
            Ok(Some(located)) => located,
            Ok(None) => break,
            Err(error) => return fail(runtime, table, row, format!("reading `{}`: {error}", run.source_name)).await,
        };
        if format == TaskFormat::Csv && header.is_none() {
            match located.record {
                RawRecord::Csv(names) => {
                    let names: csv::StringRecord = names.iter().map(str::trim).collect();
                    row.header = Some(names.iter().map(str::to_string).collect());
                    header = Some(names);
                }
                RawRecord::Unreadable(rejection) => {
                    let message = rejection.detail.get("message").and_then(|m| m.as_str()).unwrap_or(&rejection.code);
                    let message = format!("the header row of `{}` is unreadable: {message}", run.source_name);
                    return fail(runtime, table, row, message).await;
                }
                RawRecord::Json(_) => {
                    let message = format!("the header row of `{}` is not a CSV row", run.source_name);
                    return fail(runtime, table, row, message).await;
                }
            }
            continue;
        }
        ordinal += 1;
        if ordinal <= skip_until {
            continue;
        }
        let outcome = match state.record(&located, ordinal, header.as_ref()).await {
            Ok(outcome) => outcome,
            Err(error) => return fail(runtime, table, row, format!("record at line {}: {error}", located.line)).await,
        };
        row.records_read = ordinal;
        match outcome {
            Ok(()) => row.accepted += 1,
            Err(rejection) => {
                row.rejected += 1;
                if row.rejected_records.len() < REJECTED_LISTED {
                    row.rejected_records.push(RejectedRecord {
                        line: located.line,
                        record: ordinal,
                        code: rejection.code,
                        detail: rejection.detail,
                    });
                } else {
                    row.rejected_not_listed += 1;
                }
            }
        }
        progress(&TaskProgress {
            records_read: row.records_read,
            accepted: row.accepted,
            rejected: row.rejected,
            bytes_read: located.end_offset,
        });
        if ordinal % CHECKPOINT_EVERY == 0 {
            row.checkpoint = checkpoint_of(runtime, plugin, &row, &located).await?;
            save(runtime, table, &mut row).await?;
        }
    }
    row.status = TaskStatus::Completed;
    row.finished_at = Some(Timestamp::now().0);
    save(runtime, table, &mut row).await?;
    Ok(row)
}

/// The run row `run_id` of task `task` of `plugin` (a platform reads it to
/// resume at [`TaskRunRow::resume_offset`]).
pub async fn task_run(
    runtime: &Runtime,
    plugin: &str,
    task: &str,
    run_id: &str,
) -> Result<Option<TaskRunRow>, TaskError> {
    let (_, handler) = find(runtime, plugin, task)?;
    load(runtime, handler.table(), run_id).await
}

fn find<'a>(
    runtime: &'a Runtime,
    plugin: &str,
    task: &str,
) -> Result<(&'a ResolvedPlugin, Arc<dyn TaskHandler>), TaskError> {
    let hosted = runtime
        .plugins()
        .find(|hosted| hosted.name == plugin)
        .ok_or_else(|| TaskError::UnknownPlugin(plugin.to_string()))?;
    let handler = hosted.tasks.iter().find(|handler| handler.name() == task).ok_or_else(|| TaskError::UnknownTask {
        plugin: plugin.to_string(),
        task: task.to_string(),
        known: hosted.tasks.iter().map(|h| h.name()).collect::<Vec<_>>().join(", "),
    })?;
    Ok((hosted, handler.clone()))
}

async fn load(runtime: &Runtime, table: &str, run_id: &str) -> Result<Option<TaskRunRow>, TaskError> {
    let Some(row) = runtime.stores().queries.get(table, run_id).await? else { return Ok(None) };
    serde_json::from_value(row)
        .map(Some)
        .map_err(|e| TaskError::CorruptRow { run_id: run_id.to_string(), message: e.to_string() })
}

async fn save(runtime: &Runtime, table: &str, row: &mut TaskRunRow) -> Result<(), TaskError> {
    row.updated_at = Timestamp::now().0;
    let value = serde_json::to_value(&*row)
        .map_err(|e| TaskError::CorruptRow { run_id: row.id.clone(), message: e.to_string() })?;
    runtime.stores().queries.put(table, &row.id, value).await?;
    Ok(())
}

/// Ends the run `FAILED` with `message` (its checkpoint stays: running it again resumes).
async fn fail(runtime: &Runtime, table: &str, mut row: TaskRunRow, message: String) -> Result<TaskRunRow, TaskError> {
    tracing::warn!(task = row.task, run = row.id, error = message, "task run failed");
    row.status = TaskStatus::Failed;
    row.error = Some(message);
    row.finished_at = Some(Timestamp::now().0);
    save(runtime, table, &mut row).await?;
    Ok(row)
}

async fn checkpoint_of(
    runtime: &Runtime,
    plugin: &str,
    row: &TaskRunRow,
    located: &Located,
) -> Result<TaskCheckpoint, TaskError> {
    Ok(TaskCheckpoint {
        records: row.records_read,
        accepted: row.accepted,
        rejected: row.rejected,
        byte_offset: located.end_offset,
        next_line: located.next_line,
        // Read after the chunk's commands returned: every event they
        // appended is at or before it, every later command's after it.
        log_position: runtime.stores().events.head(plugin).await?,
    })
}

/// The command ids of run `run_id` whose events are in `plugin`'s log after `after`.
async fn commands_in_log(
    runtime: &Runtime,
    plugin: &str,
    run_id: &str,
    mut after: u64,
) -> Result<HashSet<String>, TaskError> {
    let prefix = format!("{run_id}/");
    let mut found = HashSet::new();
    loop {
        let page = runtime.stores().events.read_all(plugin, after, SCAN_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        let ours = page.iter().filter_map(|event| event.meta.causation_id.as_ref());
        found.extend(ours.filter(|id| id.starts_with(&prefix)).cloned());
    }
    Ok(found)
}

/// What running one record needs.
struct Run<'a> {
    runtime: &'a Runtime,
    plugin: &'a ResolvedPlugin,
    handler: &'a dyn TaskHandler,
    run_id: String,
    caller: crate::outcome::Caller,
    /// Command ids that ran before a crash (found in the log on resume).
    done_before: HashSet<String>,
    /// Records up to this one may have run before a crash.
    lag_until: u64,
    resumed: bool,
}

impl Run<'_> {
    /// Runs one record's commands: `Ok(Ok)` when all were accepted (or
    /// queued), `Ok(Err)` when the record was rejected, `Err` when the
    /// platform failed (the run stops; resuming runs the record again).
    async fn record(
        &self,
        located: &Located,
        ordinal: u64,
        header: Option<&csv::StringRecord>,
    ) -> Result<Result<(), RecordRejection>, EngineError> {
        let dispatches = match &located.record {
            RawRecord::Unreadable(rejection) => Err(rejection.clone()),
            RawRecord::Json(line) => self.handler.json_record(line),
            RawRecord::Csv(row) => match header {
                Some(header) => self.handler.csv_record(header, row),
                None => Err(malformed("a CSV row without a header".into())),
            },
        };
        let dispatches = match dispatches {
            Ok(dispatches) => dispatches,
            Err(rejection) => return Ok(Err(rejection)),
        };
        for (index, dispatch) in dispatches.into_iter().enumerate() {
            let command_id = format!("{}/{ordinal}.{index}", self.run_id);
            if self.ran_before(&command_id, &dispatch, ordinal).await? {
                continue;
            }
            let command = dispatch.command.clone();
            let mut request = CommandRequest::new(self.plugin.name.clone(), dispatch.command, dispatch.input)
                .caller(self.caller.clone())
                .caused_by(Some(self.run_id.clone()), self.run_id.clone());
            request.entity_id = dispatch.entity_id;
            request.command_id = command_id;
            match self.runtime.execute(request).await {
                Ok(CommandOutcome::Accepted { .. } | CommandOutcome::Pending { .. }) => {}
                Ok(CommandOutcome::Rejected { error_code, error_detail, .. }) => {
                    let detail = serde_json::json!({ "command": command, "detail": error_detail });
                    return Ok(Err(RecordRejection { code: error_code, detail }));
                }
                // A command that can never run rejects its record; the run goes on.
                Err(
                    error @ (EngineError::BadInput { .. }
                    | EngineError::UnknownCommand { .. }
                    | EngineError::UnknownPlugin(_)
                    | EngineError::MissingEntityId(_)
                    | EngineError::Contract(_)
                    | EngineError::Conflict { .. }),
                ) => {
                    let code = match error {
                        EngineError::Conflict { .. } => "Conflict",
                        _ => INVALID_COMMAND,
                    };
                    let detail = serde_json::json!({ "command": command, "message": error.to_string() });
                    return Ok(Err(RecordRejection { code: code.into(), detail }));
                }
                Err(other) => return Err(other),
            }
        }
        Ok(Ok(()))
    }

    /// Whether a resumed run's command already ran before the crash.
    async fn ran_before(&self, command_id: &str, dispatch: &Dispatch, ordinal: u64) -> Result<bool, EngineError> {
        if !self.resumed || ordinal > self.lag_until {
            return Ok(false);
        }
        if self.done_before.contains(command_id) {
            return Ok(true);
        }
        // An async command leaves its outcome row when queued.
        let is_async = self.plugin.routes.get(&dispatch.command).is_some_and(|h| h.manifest().is_async);
        if is_async {
            let table = crate::outcomes::outcomes_table(&self.plugin.name);
            return Ok(self.runtime.stores().queries.get(&table, command_id).await?.is_some());
        }
        Ok(false)
    }
}
