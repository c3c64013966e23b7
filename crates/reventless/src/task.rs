//! `task Plugin.Task FILE`: runs a file task on the local platform, with a
//! progress bar (records/s) on a terminal, then a summary (or the run row
//! as JSON). A failed run (or one refused) exits non-zero.
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reventless_core::task::{TaskProgress, TaskRun, TaskRunRow, TaskStatus, run_task};
use reventless_core::{Caller, Plugin};
use serde_json::json;

use crate::AppError;
use crate::app::StorageArgs;

/// Rejected records the text summary shows (the run row lists up to 100).
const SHOWN_REJECTIONS: usize = 20;

/// Who runs a task from the command line.
#[derive(Debug, Clone, Default)]
pub struct TaskCaller {
    /// The user id (`--user`).
    pub user: String,
    /// The roles (`--roles`); none: the task's own roles (the local operator
    /// may start any task; the commands' roles are still checked).
    pub roles: Vec<String>,
}

/// What `task` was asked to do.
#[derive(Debug, Clone)]
pub struct TaskArgs {
    /// `Plugin.Task`.
    pub task: String,
    /// The file.
    pub file: PathBuf,
    /// A run to resume (default: a fresh one).
    pub run_id: Option<String>,
    /// Who runs it.
    pub caller: TaskCaller,
    /// The run row as JSON instead of a summary.
    pub json: bool,
}

/// Runs the task over the file on `storage` and reports it.
pub async fn run_task_file(
    plugins: Vec<Plugin>,
    capabilities: reventless_spec::Capabilities,
    storage: &StorageArgs,
    args: TaskArgs,
) -> Result<(), AppError> {
    let TaskArgs { task, file, run_id, caller, json: as_json } = args;
    let Some((plugin_name, task_name)) = task.split_once('.') else {
        return Err(AppError::TaskName(task));
    };
    let opened =
        tokio::fs::File::open(&file).await.map_err(|source| AppError::TaskFile { path: file.clone(), source })?;
    let size = opened.metadata().await?.len();
    let runtime = storage.start(plugins, capabilities).await?;
    let roles = match caller.roles.is_empty() {
        false => caller.roles,
        true => task_roles(&runtime, plugin_name, task_name),
    };
    let caller = Caller { user_id: Some(caller.user), roles };
    let source = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "file".into());
    let run_id = run_id.unwrap_or_else(fresh_run_id);
    let run = TaskRun::new(run_id, source, caller);
    let bar = progress_bar(size, !as_json && std::io::stderr().is_terminal());
    let started = Instant::now();
    let progress = |p: &TaskProgress| {
        bar.set_position(p.bytes_read);
        bar.set_message(format!("{} records ({} rejected)", p.records_read, p.rejected));
    };
    let outcome = run_task(&runtime, plugin_name, task_name, run, opened, &progress).await;
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    // Projections catch up before the process ends (the next reader sees the rows).
    let settled = runtime.settle_within(Duration::from_secs(60)).await;
    runtime.shutdown().await;
    let row = outcome?;
    settled?;
    let mut out = std::io::stdout().lock();
    if as_json {
        let mut value = serde_json::to_value(&row)?;
        value["elapsedMs"] = json!(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
        value["recordsPerSecond"] = json!(per_second(row.records_read, elapsed).round());
        writeln!(out, "{value}")?;
    } else {
        write_summary(&mut out, &row, elapsed)?;
    }
    match row.status {
        TaskStatus::Completed => Ok(()),
        _ => Err(AppError::TaskFailed { run_id: row.id, error: row.error.unwrap_or_default() }),
    }
}

fn task_roles(runtime: &reventless_core::Runtime, plugin: &str, task: &str) -> Vec<String> {
    let hosted = runtime.plugins().find(|p| p.name == plugin);
    let handler = hosted.and_then(|p| p.tasks.iter().find(|t| t.name() == task));
    handler.map(|t| t.roles().iter().map(|r| r.to_string()).collect()).unwrap_or_default()
}

/// A fresh run id: the time and the process.
fn fresh_run_id() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("cli-{}-{}", now.as_millis(), std::process::id())
}

fn progress_bar(size: u64, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(size.max(1)), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes}, {per_sec}, ETA {eta}")
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

fn per_second(records: u64, elapsed: Duration) -> f64 {
    records as f64 / elapsed.as_secs_f64().max(0.001)
}

fn write_summary(out: &mut impl Write, row: &TaskRunRow, elapsed: Duration) -> std::io::Result<()> {
    let status = match row.status {
        TaskStatus::Completed => "COMPLETED",
        TaskStatus::Running => "RUNNING",
        TaskStatus::Failed => "FAILED",
    };
    writeln!(out, "{} on {} (run {}): {status}", row.task, row.source_name, row.id)?;
    writeln!(
        out,
        "  {} records read, {} accepted, {} rejected in {:.1}s ({:.0} records/s)",
        row.records_read,
        row.accepted,
        row.rejected,
        elapsed.as_secs_f64(),
        per_second(row.records_read, elapsed)
    )?;
    if let Some(error) = &row.error {
        writeln!(out, "  error: {error} (run it again with --run-id {} to resume)", row.id)?;
    }
    for rejected in row.rejected_records.iter().take(SHOWN_REJECTIONS) {
        let detail = if rejected.detail.is_null() { String::new() } else { format!(" {}", rejected.detail) };
        writeln!(out, "  line {}: {}{detail}", rejected.line, rejected.code)?;
    }
    let more = row.rejected - row.rejected_records.len().min(SHOWN_REJECTIONS) as u64;
    if more > 0 {
        writeln!(out, "  … and {more} more rejected (the run row {} lists the first 100)", row.id)?;
    }
    Ok(())
}
