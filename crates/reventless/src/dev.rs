//! `dev`: the local platform behind its GraphQL server until Ctrl-C / SIGTERM.
use std::net::SocketAddr;

use reventless_core::Plugin;

use crate::AppError;
use crate::app::StorageArgs;

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}

pub(crate) async fn run_dev(
    plugins: Vec<Plugin>,
    capabilities: reventless_spec::Capabilities,
    storage: &StorageArgs,
    listen: SocketAddr,
    options: reventless_local::server::ServerOptions,
) -> Result<(), AppError> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            // The driver logs the server's notices (e.g. `CREATE … IF NOT EXISTS` skipping) at info.
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,reventless=info,tokio_postgres=warn".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = storage.start(plugins, capabilities).await?;
    let schema = reventless_graphql::build_schema(&runtime).await?;
    let listener =
        reventless_local::server::bind(listen).await.map_err(|source| AppError::Listen { address: listen, source })?;
    let address = listener.local_addr().map_err(|source| AppError::Listen { address: listen, source })?;
    tracing::info!(
        storage = storage.describe(),
        "GraphQL at http://{address}/graphql, GraphiQL at http://{address}/, explorer at http://{address}/explorer"
    );
    reventless_local::server::serve(runtime.clone(), schema, options, listener, shutdown_signal())
        .await
        .map_err(|source| AppError::Listen { address, source })?;
    runtime.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}
