//! `reventless task --stage S Plugin.Task FILE [--json]`: uploads FILE under
//! `tasks/<Task>/` of the stack's tasks bucket (with progress), then follows
//! the run row the task function writes until the run is done.
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use reventless_aws::deploy::apply::Clients;
use reventless_aws::deploy::config::ProjectConfig;
use reventless_aws::deploy::tasks::{run_row, task_target, upload, upload_key};
use reventless_core::task::{TaskFormat, TaskStatus};

/// How often the run row is read.
const POLL: Duration = Duration::from_secs(1);

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The stage (a `[stages.<name>]` table of the project file).
    #[arg(long)]
    pub stage: String,
    /// The task, `<Plugin>.<Task>` (e.g. `Catalog.ImportProducts`).
    task: String,
    /// The file: CSV (`.csv`) or JSON lines (`.jsonl`, `.ndjson`).
    file: PathBuf,
    /// Stop following the run after this many seconds (it goes on).
    #[arg(long, default_value_t = 900)]
    wait: u64,
}

pub async fn run(clients: &Clients, config: &ProjectConfig, args: Args, json: bool) -> Result<ExitCode, String> {
    let file_name = args.file.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    if TaskFormat::from_name(&file_name).is_none() {
        return Err(format!("{}: name it .csv, .jsonl or .ndjson (the name tells the format)", args.file.display()));
    }
    let account = clients.account().await.map_err(|e| e.to_string())?;
    let target = task_target(config, &account, &args.task).map_err(|e| e.to_string())?;
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let key = upload_key(&target.task, &file_name, millis);
    let progress = |sent: u64, total: u64| {
        if !json {
            let percent = (sent * 100).checked_div(total).unwrap_or(100);
            eprintln!("uploaded {sent} of {total} bytes ({percent}%)");
        }
    };
    let run_id = upload(clients, &target, &args.file, &key, &progress).await.map_err(|e| e.to_string())?;
    if !json {
        eprintln!("s3://{}/{key}: run {run_id}", target.bucket);
    }
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    let mut last = None;
    loop {
        let row = run_row(clients, &target, &run_id).await.map_err(|e| e.to_string())?;
        if let Some(row) = row {
            let counts = (row.records_read, row.accepted, row.rejected);
            if !json && last != Some(counts) {
                eprintln!("{:?}: {} read, {} accepted, {} rejected", row.status, counts.0, counts.1, counts.2);
                last = Some(counts);
            }
            if row.status != TaskStatus::Running {
                let failed = row.status == TaskStatus::Failed;
                if json {
                    println!("{}", serde_json::to_value(&row).map_err(|e| e.to_string())?);
                } else {
                    for rejected in &row.rejected_records {
                        println!("line {}: {} {}", rejected.line, rejected.code, rejected.detail);
                    }
                    if row.rejected_not_listed > 0 {
                        println!("… {} more rejected record(s)", row.rejected_not_listed);
                    }
                    match &row.error {
                        Some(error) => println!("run {run_id} {:?}: {error}", row.status),
                        None => println!("run {run_id} {:?}", row.status),
                    }
                }
                return Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS });
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "run {run_id} is not done after {} s (it goes on: see its row {}_{}Runs)",
                args.wait, target.plugin, target.task
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}
