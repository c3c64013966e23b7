//! The Lambda entry point: one binary per plugin, told its handler group by
//! its environment ([`FunctionConfig`]). It answers SQS FIFO batches
//! (commands), DynamoDB stream batches (followers catching up) and HTTP
//! requests (the GraphQL API), on the same engine as the local platform.
mod config;
mod events;

use std::sync::Arc;

pub use config::{CONFIG_ENV, CONFIG_FILE_ENV, ConfigError, FunctionConfig, HandlerGroup};
pub use events::Handler;
use reventless_core::Plugin;
use reventless_spec::Capabilities;

/// Runs the plugin as a Lambda function until the runtime stops it.
/// SDK clients and the engine are made once per container, before the first
/// invocation; nothing else happens at init.
pub async fn run(plugin: Plugin, capabilities: Capabilities) -> Result<(), lambda_runtime::Error> {
    let config = FunctionConfig::from_env()?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let handler = Arc::new(Handler::new(&sdk, &config, plugin, capabilities)?);
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<serde_json::Value>| {
        let handler = handler.clone();
        async move { handler.handle(event.payload).await }
    }))
    .await
}

/// The `main` of a plugin's Lambda binary (`bootstrap`): with the argument
/// `manifest` it prints the plugin's manifest as JSON (what the deployer
/// plans from); otherwise it serves invocations on a current-thread runtime
/// (one invocation at a time per container).
pub fn main(plugin: Plugin, capabilities: Capabilities) -> std::process::ExitCode {
    if std::env::args().nth(1).as_deref() == Some("manifest") {
        return match plugin
            .manifest()
            .map_err(|e| e.to_string())
            .and_then(|m| serde_json::to_string(&m).map_err(|e| e.to_string()))
        {
            Ok(json) => {
                println!("{json}");
                std::process::ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(plugin, capabilities)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
