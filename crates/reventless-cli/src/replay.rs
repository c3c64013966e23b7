//! `reventless replay --stage S Plugin.ReadModel [--json]`: rebuilds a read
//! model of a deployed stage from its first event (the plugin's read-model
//! function folds it slice by slice; see reventless_aws::deploy::replay),
//! with a progress bar on stderr, then says how it ended.
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reventless_aws::deploy::apply::Clients;
use reventless_aws::deploy::config::ProjectConfig;
use reventless_aws::deploy::replay::{STEP_BUDGET, drive, replay_function};
use reventless_aws::gateway::LambdaInvoke;
use serde_json::json;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The stage (a `[stages.<name>]` table of the project file).
    #[arg(long)]
    pub stage: String,
    /// The read model: `Plugin.ReadModel` (e.g. `Shop.Orders`).
    read_model: String,
}

pub async fn run(clients: &Clients, config: &ProjectConfig, args: Args, json: bool) -> Result<ExitCode, String> {
    let function = replay_function(config, &args.read_model).map_err(|e| e.to_string())?;
    if !json {
        eprintln!("replaying {} on stage {} through {function}", args.read_model, config.stage);
    }
    let bar = ProgressBar::with_draw_target(Some(1), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} positions, {per_sec}, ETA {eta}")
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(250));
    let started = Instant::now();
    let apis = LambdaInvoke(clients.lambda.clone());
    let mut out = std::io::stdout();
    let outcome = drive(&apis, &function, &args.read_model, STEP_BUDGET, |progress| {
        bar.set_length(progress.head.max(1));
        bar.set_position(progress.position);
        bar.set_message(format!("{} generation {}", progress.read_model, progress.generation));
        if json {
            let _ = writeln!(out, "{}", json!(progress));
        }
    })
    .await;
    bar.finish_and_clear();
    let outcome = outcome.map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    let rate = outcome.progress.events as f64 / elapsed.as_secs_f64().max(0.001);
    if json {
        let mut value = json!(outcome);
        value["elapsedMs"] = json!(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
        value["eventsPerSecond"] = json!(rate.round());
        writeln!(out, "{value}").map_err(|e| e.to_string())?;
    } else {
        writeln!(
            out,
            "{} rebuilt: {} events folded into generation {} in {:.1}s ({rate:.0} events/s); {} old rows deleted",
            outcome.progress.read_model,
            outcome.progress.events,
            outcome.progress.generation,
            elapsed.as_secs_f64(),
            outcome.deleted,
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(ExitCode::SUCCESS)
}
