//! `reventless`: deploys a project's plugins to AWS (or the emulator) from
//! `reventless.toml`: `plan`, `deploy`, `status`, `logs`, `destroy`, `outputs`, `emulate`;
//! `new` starts a project.
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

mod emulate;
mod logs;
mod new;
mod replay;
mod task;

use clap::{Parser, Subcommand};
use reventless_aws::deploy::apply::{Change, Clients};
use reventless_aws::deploy::config::ProjectConfig;
use reventless_aws::deploy::destroy::{DestroyOptions, destroy_with};
use reventless_aws::deploy::inputs::{Bootstraps, Purpose, prepare_for};
use reventless_aws::deploy::run::{self, DeployOptions, DeployReport};
use serde_json::json;

#[derive(Parser, Debug)]
#[command(name = "reventless", about = "Deploy reventless plugins to AWS", version)]
struct Cli {
    /// The project file.
    #[arg(long, global = true, default_value = "reventless.toml")]
    config: PathBuf,
    /// Send every AWS call here (the emulator), e.g. http://127.0.0.1:5000.
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    endpoint_url: Option<String>,
    /// Send Lambda calls here (the local cloud's Lambda service of `emulate`).
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL_LAMBDA")]
    lambda_endpoint_url: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug, Clone)]
struct Target {
    /// The stage (a `[stages.<name>]` table of the project file).
    #[arg(long)]
    stage: String,
    /// Only this plugin stack.
    #[arg(long)]
    plugin: Option<String>,
    /// Use binaries already built in this directory (`<dir>/<bin>`) instead of building them.
    #[arg(long)]
    bootstrap_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start a project of your own in a new directory: a plugin with its tests, the app, `reventless.toml`.
    ///
    /// The Library plugin (an aggregate, DCB slices, a read model, an
    /// automation) with Given/When/Then tests, the app binary (`cargo run --
    /// dev`), Lambda bootstraps, `reventless.toml`, a README and a `.gitignore`.
    New(new::Args),
    /// Show what a deploy would change (+ create, ~ update, - delete).
    Plan {
        #[command(flatten)]
        target: Target,
    },
    /// Build, then create or update everything the plan needs; remove what it no longer has.
    Deploy {
        #[command(flatten)]
        target: Target,
        /// Also delete tables of removed components.
        #[arg(long)]
        allow_data_loss: bool,
        /// Do not ask before deleting resources of removed components.
        #[arg(long)]
        yes: bool,
    },
    /// Each planned resource: exists, drifted or missing; code hashes, queue depths;
    /// each plugin's health (dead letters, failed stream batches, heartbeat, failed
    /// automation items). Exit 3: resources missing or drifted; 4: a plugin unhealthy.
    Status {
        #[command(flatten)]
        target: Target,
    },
    /// Remove every resource of the stage, or of one plugin stack (`--plugin`).
    Destroy {
        #[arg(long)]
        stage: String,
        /// Only this plugin stack (disconnected from the gateway; its tables
        /// only with --allow-data-loss).
        #[arg(long)]
        plugin: Option<String>,
        /// Delete tables with deletion protection too (turns it off first).
        #[arg(long)]
        allow_data_loss: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// The stage's outputs (table names, queues, …).
    Outputs {
        #[arg(long)]
        stage: String,
    },
    /// Rebuild a read model of the stage from its first event into a new
    /// table (the plugin's read-model function folds it), switching to it
    /// when caught up; the old rows are served until then.
    Replay(replay::Args),
    /// The stage's function logs (CloudWatch Logs): time, function, level,
    /// message, correlation id; `--json`: one object per line.
    Logs(logs::Args),
    /// Run a file task on the stage: upload FILE under `tasks/<Task>/` of the
    /// plugin's tasks bucket (with progress), then follow its run until done.
    Task(task::Args),
    /// Run the stage offline: the emulator, a local Lambda service running the
    /// deployed functions under their roles, and a local token issuer; serves
    /// until Ctrl-C.
    Emulate {
        #[arg(long, default_value = "emulate")]
        stage: String,
        /// Use binaries already built in this directory (`<dir>/<bin>`) instead of building them.
        #[arg(long)]
        bootstrap_dir: Option<PathBuf>,
        /// Build with the release profile (the dev profile by default).
        #[arg(long)]
        release: bool,
        /// Where uploaded code is unpacked (default: a temporary directory).
        #[arg(long)]
        work_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_cli(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn clients(config: &ProjectConfig, endpoint: Option<&str>, lambda_endpoint: Option<&str>) -> Clients {
    let mut loader = aws_config_loader(config);
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    let sdk = loader.load().await;
    let mut clients = Clients::new(&sdk);
    // An explicit endpoint overrides aws-config's service-specific ones, so
    // the Lambda one is applied here.
    if let Some(lambda) = lambda_endpoint {
        clients.lambda =
            aws_sdk_lambda::Client::from_conf(aws_sdk_lambda::config::Builder::from(&sdk).endpoint_url(lambda).build());
    }
    clients
}

fn aws_config_loader(config: &ProjectConfig) -> reventless_aws::deploy::ConfigLoader {
    reventless_aws::deploy::config_loader(&config.region)
}

fn print_report(report: &DeployReport, as_json: bool) {
    if as_json {
        println!("{}", json!(report));
        return;
    }
    for change in &report.changes {
        match change {
            Change::Create { kind, name, .. } | Change::Delete { kind, name, .. } => {
                println!("{} {kind:?} {name}", change.symbol())
            }
            Change::Update { kind, name, fields, .. } => println!("~ {kind:?} {name} ({})", fields.join(", ")),
            Change::Unchanged { .. } => {}
        }
    }
    println!(
        "{} to change, {} unchanged; {} applied, {} uploaded, {} failed; {} API calls in {} ms",
        report.changes.len(),
        report.unchanged,
        report.applied,
        report.uploaded,
        report.failures.len(),
        report.api_calls,
        report.millis
    );
    for skipped in &report.skipped {
        println!("skipped: {skipped}");
    }
    for warning in &report.warnings {
        println!("warning: {warning}");
    }
    for failure in &report.failures {
        println!("FAILED {:?} {}: {}", failure.kind, failure.name, failure.error);
    }
}

/// Asks before a deploy deletes resources (`--yes` skips it); stacks no
/// longer in the file (pruned: deployed from this source) are named first.
fn confirm(deletions: &[&Change], config: &ProjectConfig) -> Result<bool, String> {
    let mut pruned: Vec<&str> = deletions
        .iter()
        .filter_map(|c| match c {
            Change::Delete { stack, .. } if stack != "platform" && !config.plugins.contains_key(stack) => {
                Some(stack.as_str())
            }
            _ => None,
        })
        .collect();
    pruned.dedup();
    for stack in pruned {
        eprintln!(
            "stack `{stack}` is no longer in reventless.toml (deployed from source `{}`): it is deleted and leaves the gateway",
            config.source
        );
    }
    for change in deletions {
        if let Change::Delete { kind, name, .. } = change {
            eprintln!("- {kind:?} {name}");
        }
    }
    eprint!("this deploy deletes {} resource(s) of removed components; continue? [y/N] ", deletions.len());
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).map_err(|e| e.to_string())?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

async fn run_cli(cli: Cli) -> Result<ExitCode, String> {
    if let Command::New(args) = &cli.command {
        return new::run(args, cli.json);
    }
    let progress = |line: String| eprintln!("{line}");
    let stage = match &cli.command {
        Command::New(_) => unreachable!("answered above"),
        Command::Plan { target } | Command::Deploy { target, .. } | Command::Status { target } => target.stage.clone(),
        Command::Destroy { stage, .. } | Command::Outputs { stage } | Command::Emulate { stage, .. } => stage.clone(),
        Command::Logs(args) => args.stage.clone(),
        Command::Replay(args) => args.stage.clone(),
        Command::Task(args) => args.stage.clone(),
    };
    let config = ProjectConfig::load(&cli.config, &stage).map_err(|e| format!("{}: {e}", cli.config.display()))?;
    if let Command::Emulate { bootstrap_dir, release, work_dir, .. } = cli.command {
        let options =
            emulate::Options { endpoint_url: cli.endpoint_url, bootstrap_dir, release, work_dir, json: cli.json };
        return emulate::run(config, options).await;
    }
    let clients = clients(&config, cli.endpoint_url.as_deref(), cli.lambda_endpoint_url.as_deref()).await;
    // Only `deploy` cross-builds; `plan` and `status` read manifests from
    // builds for this machine. `--plugin P` builds and reads only P.
    let inputs = |target: &Target, purpose: Purpose| {
        let bootstraps = match &target.bootstrap_dir {
            Some(dir) => Bootstraps::Dir(dir.clone()),
            None => Bootstraps::Build,
        };
        prepare_for(config.clone(), &bootstraps, purpose, target.plugin.as_deref(), &progress)
            .map_err(|e| e.to_string())
    };
    match cli.command {
        Command::Plan { target } => {
            let inputs = inputs(&target, Purpose::Inspect)?;
            let options = DeployOptions { plugin: target.plugin.clone(), allow_data_loss: false };
            let (_, mut report) = run::plan_stage(&clients, &inputs, &options).await.map_err(|e| e.to_string())?;
            if inputs.code.is_empty() {
                report.warnings.push(
                    "code not compared: plan builds no Lambda binary (deploy does; --bootstrap-dir <dir> compares \
                     binaries built elsewhere)"
                        .into(),
                );
            }
            print_report(&report, cli.json);
        }
        Command::Deploy { target, allow_data_loss, yes } => {
            let inputs = inputs(&target, Purpose::Deploy)?;
            let options = DeployOptions { plugin: target.plugin.clone(), allow_data_loss };
            if !yes {
                let (_, planned) = run::plan_stage(&clients, &inputs, &options).await.map_err(|e| e.to_string())?;
                let deletions: Vec<&Change> =
                    planned.changes.iter().filter(|c| matches!(c, Change::Delete { .. })).collect();
                if !deletions.is_empty() && !confirm(&deletions, &config)? {
                    eprintln!("not deployed");
                    return Ok(ExitCode::FAILURE);
                }
            }
            let report = run::deploy(&clients, &inputs, &options, &progress).await.map_err(|e| e.to_string())?;
            print_report(&report, cli.json);
            if !report.failures.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Status { target } => {
            // Every stack's state (`--plugin` builds no less: the plan is the stage's).
            let target = Target { plugin: None, ..target };
            let inputs = inputs(&target, Purpose::Inspect)?;
            let status = run::stage_status(&clients, &inputs).await.map_err(|e| e.to_string())?;
            if cli.json {
                println!("{}", json!(status));
            } else {
                print!("{}", status.to_text());
            }
            // 3: resources missing or drifted; 4: deployed, but a plugin is unhealthy.
            if !status.deployed {
                return Ok(ExitCode::from(3));
            }
            if !status.healthy {
                return Ok(ExitCode::from(4));
            }
        }
        Command::Destroy { stage, plugin: Some(plugin), allow_data_loss, yes } => {
            if !yes {
                eprint!(
                    "destroy plugin stack `{plugin}` of {} stage `{stage}`{}? [y/N] ",
                    config.project,
                    if allow_data_loss { ", tables included" } else { " (its tables are kept)" }
                );
                let _ = std::io::stderr().flush();
                let mut answer = String::new();
                std::io::stdin().read_line(&mut answer).map_err(|e| e.to_string())?;
                if !matches!(answer.trim(), "y" | "Y" | "yes") {
                    eprintln!("not destroyed");
                    return Ok(ExitCode::FAILURE);
                }
            }
            let options = DestroyOptions { plugin: Some(plugin), allow_data_loss };
            let report = destroy_with(&clients, &config, &options, &progress).await.map_err(|e| e.to_string())?;
            if cli.json {
                println!("{}", json!(report));
            } else {
                println!(
                    "{} removed, {} kept, {} failed",
                    report.removed.len(),
                    report.kept.len(),
                    report.failures.len()
                );
                for kept in &report.kept {
                    println!("kept: {kept}");
                }
                for failure in &report.failures {
                    println!("FAILED {:?} {}: {}", failure.kind, failure.name, failure.error);
                }
            }
            if !report.failures.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Destroy { stage, plugin: None, allow_data_loss, yes } => {
            if !yes {
                eprint!(
                    "destroy everything of {} stage `{stage}`, tables included? type the stage name: ",
                    config.project
                );
                let _ = std::io::stderr().flush();
                let mut answer = String::new();
                std::io::stdin().read_line(&mut answer).map_err(|e| e.to_string())?;
                if answer.trim() != stage {
                    eprintln!("not destroyed");
                    return Ok(ExitCode::FAILURE);
                }
            }
            let options = DestroyOptions { plugin: None, allow_data_loss };
            let report = destroy_with(&clients, &config, &options, &progress).await.map_err(|e| e.to_string())?;
            let (removed, failures) = (report.found, report.failures);
            if cli.json {
                println!("{}", json!({"removed": removed, "failures": failures}));
            } else {
                println!("{} removed, {} failed", removed.len() - failures.len(), failures.len());
                for failure in &failures {
                    println!("FAILED {:?} {}: {}", failure.kind, failure.name, failure.error);
                }
            }
            if !failures.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Emulate { .. } | Command::New(_) => unreachable!("answered above"),
        Command::Logs(args) => return logs::run(&clients, &config, args, cli.json).await,
        Command::Replay(args) => return replay::run(&clients, &config, args, cli.json).await,
        Command::Task(args) => return task::run(&clients, &config, args, cli.json).await,
        Command::Outputs { .. } => {
            let outputs = run::outputs(&clients, &config).await.map_err(|e| e.to_string())?;
            if cli.json {
                println!("{}", json!(outputs));
            } else {
                for (name, value) in outputs {
                    println!("{name} = {value}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
