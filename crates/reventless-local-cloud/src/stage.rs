//! A project's stage deployed into the local cloud: the plugin binaries
//! built for this machine (plain cargo: no zig, no Docker), deployed by the
//! same deployer as for AWS — Lambda calls to the local Lambda service,
//! everything else to the emulator — with the gateway trusting the local
//! OIDC issuer; ready once every plugin's heartbeat has registered it.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reventless_aws::deploy::apply::Clients;
use reventless_aws::deploy::config::ProjectConfig;
use reventless_aws::deploy::inputs::{Bootstraps, bin_of, prepare, workspace_root};
use reventless_aws::deploy::plan::{PLATFORM, gateway_function, registry_table};
use reventless_aws::deploy::run::{self, DeployOptions, DeployReport};
use reventless_aws::gateway::{AuthSettings, Registry};
use serde::Serialize;

use crate::cloud::{AUDIENCE, LocalCloud};

/// What `reventless emulate` prints.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployed {
    /// The gateway's GraphQL endpoint.
    pub graphql_url: String,
    /// `POST {"sub", "groups"}` → `{"token"}` from the local issuer.
    pub token_url: String,
    /// The emulator (DynamoDB, SQS, IAM, Logs, SSM, Scheduler).
    pub endpoint_url: String,
    /// The local Lambda service.
    pub lambda_url: String,
    /// The gateway's WebSocket API (GraphQL subscriptions, graphql-transport-ws), served locally.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub websocket_url: Option<String>,
    pub stage: String,
    #[serde(skip)]
    pub report: DeployReport,
}

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("building {bin}: {message}")]
    Build { bin: String, message: String },
    #[error("{0}")]
    Deploy(String),
    #[error("the deploy failed: {0}")]
    Failures(String),
    #[error("the gateway has no function URL")]
    NoGateway,
    #[error("plugins not registered after {seconds} s (their heartbeats did not run): {missing:?}")]
    NotRegistered { seconds: u64, missing: Vec<String> },
}

/// Deploy clients for the local cloud: Lambda to the local service, the rest to the emulator.
pub fn deploy_clients(cloud: &LocalCloud) -> Clients {
    let mut clients = Clients::new(&cloud.sdk);
    let lambda = aws_sdk_lambda::config::Builder::from(&cloud.sdk).endpoint_url(cloud.lambda_url()).build();
    clients.lambda = aws_sdk_lambda::Client::from_conf(lambda);
    clients
}

/// Builds every stack's binary for this machine with cargo (`--release` or
/// the dev profile) in the project's workspace; answers stack → binary.
pub fn build_native(
    config: &ProjectConfig,
    release: bool,
    progress: &(dyn Fn(String) + Sync),
) -> Result<BTreeMap<String, PathBuf>, StageError> {
    let mut stacks: Vec<(String, Option<String>, String)> = config
        .plugins
        .iter()
        .map(|(stack, plugin)| (stack.clone(), plugin.package.clone(), bin_of(config, stack)))
        .collect();
    if let Some(bin) = &config.platform.bin {
        stacks.push((PLATFORM.to_string(), config.platform.package.clone(), bin.clone()));
    }
    let mut built = BTreeMap::new();
    for (stack, package, bin) in stacks {
        progress(format!("building {bin} for this machine (cargo build{})", if release { " --release" } else { "" }));
        let executable = cargo_build(&workspace_root(&config.root), package.as_deref(), &bin, release)
            .map_err(|message| StageError::Build { bin: bin.clone(), message })?;
        built.insert(stack, executable);
    }
    Ok(built)
}

/// `cargo build --bin <bin> [-p <package>] [--release]` in `workspace`;
/// answers the executable cargo reports (whatever the target directory).
pub fn cargo_build(workspace: &Path, package: Option<&str>, bin: &str, release: bool) -> Result<PathBuf, String> {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(workspace).args(["build", "--message-format=json-render-diagnostics", "--bin", bin]);
    if let Some(package) = package {
        command.args(["-p", package]);
    }
    if release {
        command.arg("--release");
    }
    let output = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!("cargo build failed ({})", output.status));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact" && message["target"]["name"] == bin)
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| "cargo reported no executable".into())
}

/// Deploys the stage into the local cloud and waits until the gateway can
/// route to every plugin.
pub async fn deploy(
    cloud: &LocalCloud,
    mut config: ProjectConfig,
    bootstraps: &Bootstraps,
    progress: &(dyn Fn(String) + Sync),
) -> Result<Deployed, StageError> {
    config.auth = Some(AuthSettings::new(cloud.issuer.issuer_url(), AUDIENCE.to_string()));
    let stage = config.stage.clone();
    let plugins: Vec<String> = config.plugins.keys().map(|stack| config.plugin_name(stack)).collect();
    let gateway = gateway_function(&config);
    let websocket_api = reventless_aws::deploy::plan::websocket_api(&config);
    let registry = registry_table(&config);
    let inputs = prepare(config, bootstraps, progress).map_err(|e| StageError::Deploy(e.to_string()))?;
    let clients = deploy_clients(cloud);
    let report = run::deploy(&clients, &inputs, &DeployOptions::default(), progress)
        .await
        .map_err(|e| StageError::Deploy(e.to_string()))?;
    if !report.failures.is_empty() {
        let failures: Vec<String> =
            report.failures.iter().map(|f| format!("{:?} {}: {}", f.kind, f.name, f.error)).collect();
        return Err(StageError::Failures(failures.join("; ")));
    }
    let Some(url) = cloud.lambda.function_urls().get(&gateway).cloned() else { return Err(StageError::NoGateway) };
    progress(format!("waiting for {} plugin heartbeat(s)", plugins.len()));
    let registry = Registry::new(&cloud.sdk, &registry);
    let started = Instant::now();
    let limit = Duration::from_secs(90);
    loop {
        let registered: Vec<String> =
            registry.list().await.map(|r| r.into_iter().map(|r| r.plugin).collect()).unwrap_or_default();
        let missing: Vec<String> = plugins.iter().filter(|p| !registered.contains(p)).cloned().collect();
        if missing.is_empty() {
            break;
        }
        if started.elapsed() > limit {
            return Err(StageError::NotRegistered { seconds: limit.as_secs(), missing });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let clients_api = deploy_clients(cloud);
    let websocket_url = match clients_api.websocket_api_id(&websocket_api).await {
        Ok(Some(id)) => cloud.websockets.wait_url(&id, Duration::from_secs(30)).await,
        _ => None,
    };
    Ok(Deployed {
        websocket_url,
        graphql_url: format!("{url}graphql"),
        token_url: cloud.issuer.token_url(),
        endpoint_url: cloud.endpoint_url.clone(),
        lambda_url: cloud.lambda_url(),
        stage,
        report,
    })
}
