//! File tasks ([`reventless_spec::TaskSlice`]) run on any platform: a file
//! is streamed record by record (constant memory, any size), each record's
//! commands go through the runtime's normal command path in the caller's
//! name, and the run is kept in the row `<Plugin>_<Task>Runs/<run id>`.
//!
//! # Resuming without re-sending records
//!
//! The run row is written at the start, after every [`CHECKPOINT_EVERY`]
//! records (its [`TaskCheckpoint`]: records done, the byte offset and line
//! after them, the counts so far and the head of the plugin's log) and at
//! the end. Every command of record `n` has the deterministic command id
//! `<run id>/<n>.<k>`, which its events carry as their causation id.
//!
//! Running a run id again whose row is `RUNNING` (its process died) or
//! `FAILED` resumes it: records up to the checkpoint are skipped (read
//! past, or not read at all when the platform opens the file at the
//! checkpoint's byte offset); for the records after it, which may have run
//! before the crash, the runner first collects the command ids whose events
//! are in the plugin's log after the checkpoint's head (and, for async
//! commands, whose outcome row exists) and does not send those again.
//!
//! The guarantee: each record's commands append their events exactly once
//! over any number of crashes and resumes. A command that was refused or
//! appended nothing leaves no trace and runs again on resume (it appends
//! at most once then). Running a `COMPLETED` run id again returns its row
//! and executes nothing (a redelivered upload notification is harmless).
//! One run id runs in one place at a time (a lease; on AWS the queue's
//! visibility timeout must outlast the function, see the platform docs).
use serde::{Deserialize, Serialize};

use crate::outcome::Caller;
use crate::store::StoreError;
pub use reventless_spec::TaskFormat;

mod records;
mod runner;

pub use runner::{TaskProgress, run_task, task_run};

/// Records between two checkpoints of a run (also the most records a
/// resume checks for commands that already ran).
pub const CHECKPOINT_EVERY: u64 = 200;
/// Rejected records kept in the run row; past it only counted
/// ([`TaskRunRow::rejected_not_listed`]).
pub const REJECTED_LISTED: usize = 100;
/// The longest record (bytes) read; a longer one is rejected as
/// `RecordTooLong` and skipped to the next line.
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// The error code of a record that does not parse as the task's record type.
pub const MALFORMED_RECORD: &str = "MalformedRecord";
/// The error code of a record longer than [`MAX_RECORD_BYTES`].
pub const RECORD_TOO_LONG: &str = "RecordTooLong";
/// The error code of a record whose command cannot run (unknown command,
/// input that does not decode as the command).
pub const INVALID_COMMAND: &str = "InvalidCommand";

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    /// Reading records (or its process died: running it again resumes it).
    Running,
    /// Every record was read; rejected ones are listed with their codes.
    Completed,
    /// Stopped by an error of the file or the platform (`error`); running it again resumes it.
    Failed,
}

/// A record the run did not turn into commands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RejectedRecord {
    /// Its line in the file (1-based, where the record starts).
    pub line: u64,
    /// Its number among the file's records (1-based; a CSV header is not a record).
    pub record: u64,
    /// Why: `MalformedRecord`, `RecordTooLong`, the task's error code, or
    /// the refused command's error code (`AccessRefused`, a domain error).
    pub code: String,
    /// The error's fields (`message` for a malformed record).
    pub detail: serde_json::Value,
}

/// How far a run got, as last saved.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskCheckpoint {
    /// Records done.
    pub records: u64,
    /// Of those, accepted.
    pub accepted: u64,
    /// Of those, rejected.
    pub rejected: u64,
    /// The byte offset in the file after them (a resumed run may start reading here).
    pub byte_offset: u64,
    /// The line the next record starts on (1-based).
    pub next_line: u64,
    /// The head of the plugin's log when saved: commands after it are
    /// looked up there on resume.
    pub log_position: u64,
}

/// A task run: the row `<Plugin>_<Task>Runs/<id>`, and what running a task returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskRunRow {
    /// The run id (locally a fresh id; on AWS the object's key and ETag).
    pub id: String,
    /// `<Plugin>.<Task>`.
    pub task: String,
    /// The file's name (or the object's key).
    pub source_name: String,
    /// How the file was read.
    pub format: TaskFormat,
    /// Where it is.
    pub status: TaskStatus,
    /// Records read (a CSV header and blank lines are not records).
    pub records_read: u64,
    /// Records whose commands were all accepted (or queued).
    pub accepted: u64,
    /// Records rejected (listed in `rejectedRecords`, up to 100).
    pub rejected: u64,
    /// The first rejected records, in file order.
    pub rejected_records: Vec<RejectedRecord>,
    /// Rejected records past the list's cap (counted, not listed).
    pub rejected_not_listed: u64,
    /// Who started it.
    pub started_by: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub started_at: u64,
    /// When it completed or failed (milliseconds since the Unix epoch).
    pub finished_at: Option<u64>,
    /// When the row was last written (milliseconds since the Unix epoch).
    pub updated_at: u64,
    /// How often it was started (more than 1 after resumes).
    pub attempts: u32,
    /// Why it failed.
    pub error: Option<String>,
    /// The CSV header (kept for a resume that starts reading mid-file).
    #[serde(default)]
    pub header: Option<Vec<String>>,
    /// How far it got, as last saved.
    pub checkpoint: TaskCheckpoint,
}

impl TaskRunRow {
    /// The byte offset a platform may start reading the file at to resume
    /// this run (`None` when it is completed: nothing is left to do).
    pub fn resume_offset(&self) -> Option<u64> {
        (self.status != TaskStatus::Completed).then_some(self.checkpoint.byte_offset)
    }
}

/// One run of a task: which, on what, for whom.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRun {
    /// The run id; running an existing one resumes it (see the module docs).
    pub run_id: String,
    /// The file's name (its extension names the format unless `format` is set).
    pub source_name: String,
    /// Who runs it: the task's roles and every command's are checked for them.
    pub caller: Caller,
    /// The file's format (else from `source_name`'s extension).
    pub format: Option<TaskFormat>,
    /// The byte offset in the file of the reader's first byte: 0 for the
    /// whole file, or a resumed run's [`TaskRunRow::resume_offset`] when
    /// the platform opened the file there (a ranged read).
    pub start_offset: u64,
}

impl TaskRun {
    /// A run `run_id` of the file `source_name`, read from its start, for `caller`.
    pub fn new(run_id: impl Into<String>, source_name: impl Into<String>, caller: Caller) -> Self {
        Self { run_id: run_id.into(), source_name: source_name.into(), caller, format: None, start_offset: 0 }
    }

    /// Reads the file as `format` whatever its name says.
    pub fn format(mut self, format: TaskFormat) -> Self {
        self.format = Some(format);
        self
    }

    /// The reader starts at `offset` of the file (a resume's ranged read).
    pub fn start_offset(mut self, offset: u64) -> Self {
        self.start_offset = offset;
        self
    }
}

/// Why a task could not run (nothing was executed, except for `Store`,
/// after which running the run id again resumes it).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TaskError {
    /// No hosted plugin has this name.
    #[error("unknown plugin `{0}`")]
    UnknownPlugin(String),
    /// The plugin has no such task.
    #[error("plugin `{plugin}` has no task `{task}` (known: {known})")]
    UnknownTask {
        /// The plugin.
        plugin: String,
        /// The task asked for.
        task: String,
        /// The plugin's tasks.
        known: String,
    },
    /// The caller holds none of the task's roles.
    #[error("task `{task}` requires one of the roles {roles}")]
    AccessRefused {
        /// `<Plugin>.<Task>`.
        task: String,
        /// The roles that may start it.
        roles: String,
    },
    /// The file's format is not given and its name does not tell it.
    #[error("cannot tell the format of `{source_name}`: name it .csv or .jsonl, or give the format")]
    UnknownFormat {
        /// The file's name.
        source_name: String,
    },
    /// The task does not read this format.
    #[error("task `{task}` does not read {format} (it reads {accepted})")]
    UnsupportedFormat {
        /// `<Plugin>.<Task>`.
        task: String,
        /// The file's format.
        format: TaskFormat,
        /// The formats it reads.
        accepted: String,
    },
    /// A run id that is empty or longer than 1024 bytes.
    #[error("run id must be 1 to 1024 bytes, got {0} bytes")]
    InvalidRunId(usize),
    /// The run id runs elsewhere right now.
    #[error("run `{0}` is running elsewhere")]
    RunInProgress(String),
    /// A resumed run's reader starts at an offset that is not its checkpoint.
    #[error("run `{run_id}` resumes at byte {expected} (or 0), the reader starts at byte {given}")]
    ResumeOffset {
        /// The run.
        run_id: String,
        /// The checkpoint's byte offset.
        expected: u64,
        /// The reader's.
        given: u64,
    },
    /// The run's stored row does not read as a run.
    #[error("run `{run_id}`: stored row is not a task run: {message}")]
    CorruptRow {
        /// The run.
        run_id: String,
        /// Why.
        message: String,
    },
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why one record was not turned into commands (code and detail as the run row lists them).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordRejection {
    /// The error code.
    pub code: String,
    /// The error's fields.
    pub detail: serde_json::Value,
}
