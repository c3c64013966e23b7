//! File tasks on the in-memory platform: records become commands in the
//! caller's name, bad records are rejected with codes (never lost), roles
//! are checked, and a run killed mid-file resumes without sending any
//! record's commands twice.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use reventless_core::task::{
    CHECKPOINT_EVERY, TaskError, TaskFormat, TaskProgress, TaskRun, TaskRunRow, TaskStatus, run_task, task_run,
};
use reventless_core::{Caller, Runtime};
use tokio::io::{AsyncRead, ReadBuf};

mod tasks_bank;
use tasks_bank::{clerk, plugin};

async fn run(runtime: &Runtime, task: &str, run: TaskRun, file: &[u8]) -> Result<TaskRunRow, TaskError> {
    run_task(runtime, "Bank", task, run, file, &|_| {}).await
}

async fn events(runtime: &Runtime) -> Vec<reventless_spec::EventEnvelope> {
    runtime.stores().events.read_all("Bank", 0, 1_000_000).await.unwrap()
}

#[tokio::test]
async fn csv_records_become_commands_and_bad_ones_are_rejected_with_their_codes() {
    let runtime = reventless_local::start_in_memory(vec![plugin()]).unwrap();
    let file = "account,kind,owner,amount\n\
                a1,open,Ann,\n\
                a1,deposit,,50\n\
                a1,deposit,,lots\n\
                a2,deposit,,5\n\
                a1,close,,\n\
                a1,open,Ann\n\
                \"a3\",\"open\",\"Bob, \"\"the builder\"\"\",\n";
    let report =
        run(&runtime, "ImportMovements", TaskRun::new("r1", "movements.csv", clerk()), file.as_bytes()).await.unwrap();
    assert_eq!(report.status, TaskStatus::Completed);
    assert_eq!((report.records_read, report.accepted, report.rejected), (7, 3, 4));
    let rejected: Vec<(u64, &str)> = report.rejected_records.iter().map(|r| (r.line, r.code.as_str())).collect();
    assert_eq!(
        rejected,
        [(4, "MalformedRecord"), (5, "NotOpen"), (6, "UnknownKind"), (7, "MalformedRecord")],
        "wrong type, a domain rejection, the task's own error, a short row"
    );
    let message = report.rejected_records[0].detail["message"].as_str().unwrap();
    assert!(message.contains("column `amount`"), "names the column: {message}");
    assert_eq!(report.rejected_records[2].detail, serde_json::json!({"kind": "close"}));
    assert_eq!(report.rejected_records[1].detail["command"], "Account_Deposit");
    // Only the accepted records appended, in the caller's name, correlated by the run.
    let appended = events(&runtime).await;
    assert_eq!(appended.len(), 3);
    assert_eq!(appended[2].data, serde_json::json!({"owner": "Bob, \"the builder\""}));
    assert!(appended.iter().all(|e| e.meta.user.as_deref() == Some("ann")));
    assert!(appended.iter().all(|e| e.meta.correlation_id.as_deref() == Some("r1")));
    // The run row is stored like a read model's row.
    let row = runtime.stores().queries.get("Bank_ImportMovementsRuns", "r1").await.unwrap().unwrap();
    assert_eq!(row["status"], "COMPLETED");
    assert_eq!(row["rejectedRecords"][1]["code"], "NotOpen");
    assert_eq!(task_run(&runtime, "Bank", "ImportMovements", "r1").await.unwrap(), Some(report));
}

#[tokio::test]
async fn json_lines_are_read_and_formats_a_task_does_not_read_are_refused() {
    let runtime = reventless_local::start_in_memory(vec![plugin()]).unwrap();
    let file = b"{\"account\":\"a1\",\"kind\":\"open\",\"owner\":\"Ann\"}\n\n\
                 {\"account\":\"a1\",\"kind\":\"deposit\",\"amount\":-1}\n\
                 not json\n\
                 {\"account\":\"a1\",\"kind\":\"deposit\",\"amount\":7}";
    let report = run(&runtime, "ImportJsonOnly", TaskRun::new("j1", "m.jsonl", clerk()), file).await.unwrap();
    assert_eq!((report.records_read, report.accepted, report.rejected), (4, 2, 2));
    assert_eq!(report.rejected_records.iter().map(|r| r.line).collect::<Vec<_>>(), [3, 4]);
    assert!(report.rejected_records.iter().all(|r| r.code == "MalformedRecord"));
    assert_eq!(events(&runtime).await.len(), 2);

    let csv = run(&runtime, "ImportJsonOnly", TaskRun::new("j2", "m.csv", clerk()), b"account\n").await;
    assert!(matches!(csv, Err(TaskError::UnsupportedFormat { format: TaskFormat::Csv, .. })), "{csv:?}");
    let unnamed = run(&runtime, "ImportMovements", TaskRun::new("j3", "upload", clerk()), b"x").await;
    assert!(matches!(unnamed, Err(TaskError::UnknownFormat { .. })), "{unnamed:?}");
    let given = TaskRun::new("j4", "upload", clerk()).format(TaskFormat::JsonLines);
    assert_eq!(run(&runtime, "ImportMovements", given, b"{}\n").await.unwrap().rejected, 1);
    let unknown = run(&runtime, "Nope", TaskRun::new("j5", "m.csv", clerk()), b"").await;
    assert!(matches!(unknown, Err(TaskError::UnknownTask { .. })), "{unknown:?}");
}

#[tokio::test]
async fn roles_of_the_task_and_of_its_commands_are_the_callers() {
    let runtime = reventless_local::start_in_memory(vec![plugin()]).unwrap();
    let file = b"account,kind,owner,amount\na1,open,Ann,\n";
    let guest = Caller { user_id: Some("eve".into()), roles: vec!["Guest".into()] };
    let refused = run(&runtime, "ImportMovements", TaskRun::new("g1", "m.csv", guest), file).await;
    assert!(matches!(refused, Err(TaskError::AccessRefused { .. })), "{refused:?}");
    assert_eq!(task_run(&runtime, "Bank", "ImportMovements", "g1").await.unwrap(), None, "no run row");
    // An auditor may start the task, but not send the account's commands.
    let auditor = Caller { user_id: Some("al".into()), roles: vec!["Auditor".into()] };
    let report = run(&runtime, "ImportMovements", TaskRun::new("g2", "m.csv", auditor), file).await.unwrap();
    assert_eq!((report.accepted, report.rejected), (0, 1));
    assert_eq!(report.rejected_records[0].code, "AccessRefused");
    assert!(events(&runtime).await.is_empty(), "nothing executed");
}

#[tokio::test]
async fn a_completed_run_id_runs_nothing_again_and_a_running_one_is_refused() {
    let runtime = reventless_local::start_in_memory(vec![plugin()]).unwrap();
    let file = b"account,kind,owner,amount\na1,open,Ann,\na1,deposit,,1\n";
    let first = run(&runtime, "ImportMovements", TaskRun::new("c1", "m.csv", clerk()), file).await.unwrap();
    let again = run(&runtime, "ImportMovements", TaskRun::new("c1", "m.csv", clerk()), file).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(events(&runtime).await.len(), 2);
    let _held = runtime.stores().leases.try_acquire("task:Bank_ImportMovementsRuns/c2").await.unwrap().unwrap();
    let busy = run(&runtime, "ImportMovements", TaskRun::new("c2", "m.csv", clerk()), file).await;
    assert!(matches!(busy, Err(TaskError::RunInProgress(_))), "{busy:?}");
}

/// A file of `n` deposits on one account (after opening it).
fn deposits(n: u64) -> String {
    let mut file = String::from("account,kind,owner,amount\na1,open,Ann,\n");
    for i in 1..=n {
        file.push_str(&format!("a1,deposit,,{i}\n"));
    }
    file
}

/// Serves its bytes, then never another one (a process that hangs on its
/// input until it is killed).
struct Stalls(Vec<u8>, usize);

impl AsyncRead for Stalls {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if self.1 >= self.0.len() {
            return Poll::Pending;
        }
        let end = (self.1 + 64).min(self.0.len()).min(self.1 + buf.remaining());
        buf.put_slice(&self.0[self.1..end]);
        self.1 = end;
        Poll::Ready(Ok(()))
    }
}

/// Runs `file` until `records` records are done, then kills the run (its
/// task is aborted, as a process dies).
async fn kill_after(runtime: &Runtime, run_id: &str, file: &str, records: u64) {
    // Up to the end of the line of record `records` (the header is line 1).
    let cut: usize = file.split_inclusive('\n').take(records as usize + 1).map(str::len).sum();
    let (runtime, run_id) = (runtime.clone(), run_id.to_string());
    let seen = Arc::new(Mutex::new(0));
    let progress = seen.clone();
    let reader = Stalls(file.as_bytes()[..cut].to_vec(), 0);
    let running = tokio::spawn(async move {
        let report = move |p: &TaskProgress| *progress.lock().unwrap() = p.records_read;
        let run = TaskRun::new(run_id, "deposits.csv", clerk());
        run_task(&runtime, "Bank", "ImportMovements", run, reader, &report).await
    });
    while *seen.lock().unwrap() < records {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    running.abort();
    assert!(running.await.unwrap_err().is_cancelled());
}

fn deposited(events: &[reventless_spec::EventEnvelope]) -> Vec<u64> {
    events.iter().filter(|e| e.event_type == "Deposited").map(|e| e.data["amount"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn a_run_killed_mid_file_resumes_and_sends_each_record_once() {
    let runtime = reventless_local::start_in_memory(vec![plugin()]).unwrap();
    let file = deposits(1000);
    // Past one checkpoint (200) and into the next chunk: records 201..=457
    // ran, but the row says 200.
    let killed_at = CHECKPOINT_EVERY * 2 + 57;
    kill_after(&runtime, "k1", &file, killed_at).await;
    let crashed = task_run(&runtime, "Bank", "ImportMovements", "k1").await.unwrap().unwrap();
    assert_eq!(crashed.status, TaskStatus::Running);
    assert_eq!(crashed.checkpoint.records, CHECKPOINT_EVERY * 2);
    assert_eq!(deposited(&events(&runtime).await).len() as u64, killed_at - 1, "the open, then deposits");

    // Resumed with the whole file again.
    let report =
        run(&runtime, "ImportMovements", TaskRun::new("k1", "deposits.csv", clerk()), file.as_bytes()).await.unwrap();
    assert_eq!(report.status, TaskStatus::Completed);
    assert_eq!((report.records_read, report.accepted, report.rejected), (1001, 1001, 0));
    assert_eq!(report.attempts, 2);
    assert_eq!(deposited(&events(&runtime).await), (1..=1000).collect::<Vec<_>>(), "each deposit exactly once");
}

#[tokio::test]
async fn a_resumed_run_may_read_from_its_checkpoints_byte_offset() {
    let runtime = reventless_local::start_in_memory(vec![plugin()]).unwrap();
    let file = deposits(500);
    kill_after(&runtime, "o1", &file, CHECKPOINT_EVERY + 10).await;
    let crashed = task_run(&runtime, "Bank", "ImportMovements", "o1").await.unwrap().unwrap();
    let offset = crashed.resume_offset().unwrap();
    assert!(offset > 0);
    let wrong = TaskRun::new("o1", "deposits.csv", clerk()).start_offset(offset + 1);
    let refused = run(&runtime, "ImportMovements", wrong, &file.as_bytes()[offset as usize + 1..]).await;
    assert!(matches!(refused, Err(TaskError::ResumeOffset { .. })), "{refused:?}");
    // A ranged read: the header is not in it, the run row kept it.
    let resumed = TaskRun::new("o1", "deposits.csv", clerk()).start_offset(offset);
    let report = run(&runtime, "ImportMovements", resumed, &file.as_bytes()[offset as usize..]).await.unwrap();
    assert_eq!((report.records_read, report.accepted), (501, 501));
    assert_eq!(deposited(&events(&runtime).await), (1..=500).collect::<Vec<_>>());
    assert_eq!(report.resume_offset(), None);
}

#[tokio::test]
async fn rejected_records_past_the_cap_are_counted() {
    let runtime = reventless_local::start_in_memory(vec![plugin()]).unwrap();
    let mut file = String::from("account,kind\n");
    for _ in 0..150 {
        file.push_str("a9,close\n");
    }
    let report = run(&runtime, "ImportMovements", TaskRun::new("x1", "m.csv", clerk()), file.as_bytes()).await.unwrap();
    assert_eq!(report.rejected, 150);
    assert_eq!(report.rejected_records.len(), 100);
    assert_eq!(report.rejected_not_listed, 50);
    assert_eq!(report.rejected_records[99].line, 101);
}
