//! `reventless emulate`: the stage, deployed into a local cloud, served
//! until Ctrl-C or SIGTERM; everything started is stopped on the way out.
use std::path::PathBuf;
use std::process::ExitCode;

use reventless_aws::deploy::config::ProjectConfig;
use reventless_aws::deploy::inputs::Bootstraps;
use reventless_local_cloud::stage::{build_native, deploy};
use reventless_local_cloud::{CloudOptions, LocalCloud};

pub struct Options {
    pub endpoint_url: Option<String>,
    pub bootstrap_dir: Option<PathBuf>,
    pub release: bool,
    pub work_dir: Option<PathBuf>,
    pub json: bool,
}

pub async fn run(config: ProjectConfig, options: Options) -> Result<ExitCode, String> {
    let progress = |line: String| eprintln!("{line}");
    let temporary = match &options.work_dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().map_err(|e| format!("cannot create a work directory: {e}"))?),
    };
    let work_dir =
        options.work_dir.clone().or_else(|| temporary.as_ref().map(|t| t.path().to_path_buf())).unwrap_or_default();
    let bootstraps = match &options.bootstrap_dir {
        Some(dir) => Bootstraps::Dir(dir.clone()),
        None => Bootstraps::Paths(build_native(&config, options.release, &progress).map_err(|e| e.to_string())?),
    };
    progress("starting the local cloud (emulator, Lambda service, IAM proxy, token issuer)".into());
    let mut cloud_options = CloudOptions::new(work_dir);
    cloud_options.endpoint_url = options.endpoint_url.clone();
    let cloud = LocalCloud::start(cloud_options).await.map_err(|e| e.to_string())?;
    let deployed = deploy(&cloud, config, &bootstraps, &progress).await.map_err(|e| e.to_string())?;
    if options.json {
        println!("{}", serde_json::json!(deployed));
    } else {
        println!(
            "stage {} ready: graphqlUrl {} · tokenUrl {} · endpointUrl {} · lambdaUrl {}",
            deployed.stage, deployed.graphql_url, deployed.token_url, deployed.endpoint_url, deployed.lambda_url
        );
        if let Some(url) = &deployed.websocket_url {
            println!("subscriptions (graphql-transport-ws): websocketUrl {url}");
        }
    }
    wait_for_stop().await;
    progress("stopping the local cloud".into());
    cloud.shutdown();
    drop(cloud);
    drop(temporary);
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM.
async fn wait_for_stop() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match terminate.as_mut() { Some(signal) => { signal.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
}
