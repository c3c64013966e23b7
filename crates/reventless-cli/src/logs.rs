//! `reventless logs --stage S [--plugin P] [--function F] [--since 10m]
//! [--follow] [--filter PATTERN] [--json]`: the stage's function logs from
//! CloudWatch Logs (reventless_aws::deploy::logs), one line each: time,
//! function, level, message and fields, correlation id — or one JSON
//! object per line with `--json`.
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use reventless_aws::deploy::apply::Clients;
use reventless_aws::deploy::config::ProjectConfig;
use reventless_aws::deploy::logs::{LogQuery, parse_since, stage_prefix, tail};

/// How often `--follow` asks for new lines.
const POLL: Duration = Duration::from_secs(2);

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The stage (a `[stages.<name>]` table of the project file).
    #[arg(long)]
    pub stage: String,
    /// Only this plugin stack's functions (`platform`: the gateway).
    #[arg(long)]
    plugin: Option<String>,
    /// Only this function (`OrderingApi`, `ordering-OrderingApi` or its full name).
    #[arg(long)]
    function: Option<String>,
    /// How far back: 30s, 10m, 2h, 1d.
    #[arg(long, default_value = "10m", value_parser = parse_since)]
    since: Duration,
    /// Keep printing new lines until Ctrl-C.
    #[arg(long)]
    follow: bool,
    /// A CloudWatch Logs filter pattern, e.g. a correlation id in double quotes.
    #[arg(long)]
    filter: Option<String>,
}

pub async fn run(clients: &Clients, config: &ProjectConfig, args: Args, json: bool) -> Result<ExitCode, String> {
    let query = LogQuery { plugin: args.plugin, function: args.function, pattern: args.filter };
    let follow = args.follow.then_some(POLL);
    if follow.is_some() {
        eprintln!("following the logs of stage {}; Ctrl-C stops", config.stage);
    }
    let stop = async {
        if follow.is_some() {
            let _ = tokio::signal::ctrl_c().await;
        }
    };
    let prefix = stage_prefix(config).trim_start_matches("/aws/lambda/").to_string();
    let mut out = std::io::stdout();
    let mut print = |line: &reventless_aws::deploy::logs::LogLine| {
        let text = if json { line.json().to_string() } else { line.human(&prefix) };
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    };
    let shown =
        tail(&clients.logs, config, &query, args.since, follow, stop, &mut print).await.map_err(|e| e.to_string())?;
    if shown == 0 {
        eprintln!("no log lines in the last {}s", args.since.as_secs());
    }
    Ok(ExitCode::SUCCESS)
}
