//! `script`: commands from a file, run on the local platform.
use std::io::Write;
use std::path::Path;

use reventless_core::store::ListRequest;
use reventless_core::{CommandOutcome, CommandRequest, Plugin, Runtime};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppError;
use crate::app::StorageArgs;

/// One line of a script.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ScriptLine {
    plugin: String,
    command: String,
    #[serde(default)]
    entity_id: Option<String>,
    #[serde(default)]
    input: Value,
    /// Who sends it: `{"user_id": "...", "roles": ["..."]}` (anonymous when absent).
    #[serde(default)]
    caller: reventless_core::Caller,
}

fn parse(path: &Path) -> Result<Vec<(usize, CommandRequest)>, AppError> {
    let text = std::fs::read_to_string(path)?;
    let mut requests = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let parsed: ScriptLine = serde_json::from_str(trimmed).map_err(|e| AppError::Script {
            path: path.display().to_string(),
            line: index + 1,
            message: e.to_string(),
        })?;
        let mut request = CommandRequest::new(parsed.plugin, parsed.command, parsed.input).caller(parsed.caller);
        request.entity_id = parsed.entity_id;
        requests.push((index + 1, request));
    }
    Ok(requests)
}

fn describe(outcome: &CommandOutcome) -> String {
    match outcome {
        CommandOutcome::Accepted { entity_id, event_count, position } => match position {
            Some(position) => format!("ACCEPTED {entity_id} ({event_count} event(s), position {position})"),
            None => format!("ACCEPTED {entity_id} (no change)"),
        },
        CommandOutcome::Rejected { entity_id, error_code, error_detail, .. } => {
            let entity = entity_id.as_deref().unwrap_or("-");
            if error_detail.is_null() {
                format!("REJECTED {entity} {error_code}")
            } else {
                format!("REJECTED {entity} {error_code} {error_detail}")
            }
        }
        CommandOutcome::Pending { entity_id, command_id } => format!("PENDING {entity_id} (command {command_id})"),
    }
}

pub(crate) async fn run_script(
    plugins: Vec<Plugin>,
    capabilities: reventless_spec::Capabilities,
    storage: &StorageArgs,
    path: &Path,
    as_json: bool,
) -> Result<(), AppError> {
    let requests = parse(path)?;
    let runtime = storage.start(plugins, capabilities).await?;
    if !as_json {
        eprintln!("storage: {}", storage.describe());
    }
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for (line, request) in &requests {
        let label = format!("{}.{}", request.plugin, request.command);
        match runtime.execute(request.clone()).await {
            Ok(outcome) if as_json => writeln!(out, "{}", json!({"line": line, "command": label, "outcome": outcome}))?,
            Ok(outcome) => writeln!(out, "{line:>4} {label:<32} {}", describe(&outcome))?,
            Err(error) => {
                failed += 1;
                if as_json {
                    writeln!(out, "{}", json!({"line": line, "command": label, "error": error.to_string()}))?;
                } else {
                    writeln!(out, "{line:>4} {label:<32} ERROR {error}")?;
                }
            }
        }
    }
    runtime.wait_for_projections().await?;
    print_tables(&runtime, &mut out, as_json).await?;
    runtime.shutdown().await;
    if failed > 0 {
        return Err(AppError::CommandsFailed { failed, total: requests.len() });
    }
    Ok(())
}

async fn print_tables(runtime: &Runtime, out: &mut impl Write, as_json: bool) -> Result<(), AppError> {
    let tables: Vec<String> =
        runtime.manifests().iter().flat_map(|m| m.storage.tables.iter().map(|t| t.name.clone())).collect();
    for table in tables {
        let mut request = ListRequest { first: 500, ..ListRequest::default() };
        if !as_json {
            writeln!(out, "\n{table}")?;
        }
        loop {
            let page = runtime.stores().queries.list(&table, &request).await?;
            for (id, row) in &page.rows {
                if as_json {
                    writeln!(out, "{}", json!({"table": table, "id": id, "row": row}))?;
                } else {
                    writeln!(out, "  {id}: {row}")?;
                }
            }
            if !page.has_next_page {
                break;
            }
            request.after = page.end_cursor;
        }
    }
    Ok(())
}
