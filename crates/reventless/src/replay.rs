//! `replay Plugin.ReadModel`: rebuilds a read model from its first event
//! into a new table and switches to it when caught up, while a `dev`
//! process on the same database keeps serving the old rows (see
//! `reventless_core::runtime::replay`).
use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reventless_core::Plugin;
use reventless_core::runtime::replay::{self, ReplayProgress};
use serde_json::json;

use crate::AppError;
use crate::app::StorageArgs;

/// How often `--json` prints a progress line.
const JSON_PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Runs the replay of `name` on `storage`, with a progress bar on stderr
/// (and, with `as_json`, progress lines on stdout), then the outcome.
pub async fn run_replay(
    plugins: Vec<Plugin>,
    capabilities: reventless_spec::Capabilities,
    storage: &StorageArgs,
    name: &str,
    as_json: bool,
) -> Result<(), AppError> {
    let runtime = storage.start(plugins, capabilities).await?;
    if !as_json {
        eprintln!("replaying {name} on {}", storage.describe());
    }
    let bar = progress_bar();
    let started = Instant::now();
    let mut last_json: Option<Instant> = None;
    let mut write_error = None;
    let outcome = replay::run(&runtime, name, |progress| {
        bar.set_length(progress.head.max(1));
        bar.set_position(progress.position);
        bar.set_message(format!("{} generation {}", progress.read_model, progress.generation));
        if as_json && last_json.is_none_or(|at| at.elapsed() >= JSON_PROGRESS_EVERY) {
            last_json = Some(Instant::now());
            let line = progress_json(progress, started.elapsed());
            if let Err(error) = writeln!(std::io::stdout(), "{line}") {
                write_error.get_or_insert(error);
            }
        }
    })
    .await;
    bar.finish_and_clear();
    runtime.shutdown().await;
    if let Some(error) = write_error {
        return Err(error.into());
    }
    let replayed = outcome?;
    let progress = &replayed.progress;
    let mut out = std::io::stdout().lock();
    let folding = Duration::from_millis(replayed.fold_ms);
    if as_json {
        let mut line = progress_json(progress, folding);
        line["deleted"] = json!(replayed.deleted);
        writeln!(out, "{line}")?;
    } else {
        writeln!(
            out,
            "{} rebuilt: {} events folded into {} in {:.1}s ({:.0} events/s); it now serves the new rows ({} old rows deleted)",
            progress.read_model,
            progress.events,
            replay::physical_table(&progress.table, progress.generation),
            folding.as_secs_f64(),
            per_second(progress.events, folding),
            replayed.deleted,
        )?;
    }
    Ok(())
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(1), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} positions, {per_sec}, ETA {eta}")
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

fn per_second(events: u64, elapsed: Duration) -> f64 {
    events as f64 / elapsed.as_secs_f64().max(0.001)
}

fn progress_json(progress: &ReplayProgress, elapsed: Duration) -> serde_json::Value {
    let mut value = serde_json::to_value(progress).unwrap_or_default();
    value["elapsedMs"] = json!(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
    value["eventsPerSecond"] = json!(per_second(progress.events, elapsed).round());
    value
}
