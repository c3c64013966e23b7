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
