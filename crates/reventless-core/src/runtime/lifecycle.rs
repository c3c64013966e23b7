//! A hosted plugin's lifecycle row in `Platform_Plugins`: connected,
//! heartbeats, its API fragment, disconnected.
use super::*;

impl Runtime {
    /// Connects every hosted plugin (a `Platform_Plugins` row), beats its
    /// heart every [`HEARTBEAT_INTERVAL`], and disconnects it on shutdown.
    pub(super) async fn run_lifecycle(self) {
        let mut shutdown = self.inner.shutdown.subscribe();
        self.write_lifecycle(PluginStatus::Connected).await;
        loop {
            // `wait_for` also sees a shutdown that happened before this task subscribed.
            tokio::select! {
                _ = tokio::time::sleep(HEARTBEAT_INTERVAL) => {
                    self.write_lifecycle(PluginStatus::Connected).await;
                    if let Err(error) = self.sweep_outcomes().await {
                        tracing::warn!(%error, "could not sweep expired command outcomes");
                    }
                }
                _ = async { shutdown.wait_for(|stopped| *stopped).await.map(|_| ()) } => break,
            }
        }
        // The plugins stay connected while another process serves them.
        match self.inner.stores.leases.others_running().await {
            Ok(true) => tracing::info!("other processes still serve these plugins"),
            Ok(false) => self.write_lifecycle(PluginStatus::Disconnected).await,
            Err(error) => {
                tracing::warn!(%error, "cannot tell whether other processes run; marking the plugins disconnected");
                self.write_lifecycle(PluginStatus::Disconnected).await;
            }
        }
    }

    /// Registers a plugin's part of the API (GraphQL SDL): shown with the
    /// plugin in `Platform_Plugins`, where a gateway composing the API finds it.
    pub async fn register_schema_fragment(&self, plugin: &str, sdl: String) {
        if let Ok(mut fragments) = self.inner.schema_fragments.lock() {
            fragments.insert(plugin.to_string(), sdl);
        }
        if !*self.inner.shutdown.borrow() {
            self.write_lifecycle(PluginStatus::Connected).await;
        }
    }

    /// Writes every hosted plugin's `Platform_Plugins` row.
    pub(super) async fn write_lifecycle(&self, status: PluginStatus) {
        let _serialized = self.inner.lifecycle_writes.lock().await;
        let now = reventless_spec::Timestamp::now().0;
        let fragments = self.inner.schema_fragments.lock().map(|f| f.clone()).unwrap_or_default();
        let status_name = match status {
            PluginStatus::Connected => "CONNECTED",
            PluginStatus::Disconnected => "DISCONNECTED",
        };
        let ops: Vec<crate::store::RowOp> = self
            .inner
            .manifests
            .iter()
            .map(|manifest| {
                let row = serde_json::json!({
                    "name": manifest.plugin,
                    "version": manifest.version,
                    "status": status_name,
                    "connectedAt": self.inner.connected_at,
                    "lastHeartbeat": now,
                    "disconnectedAt": if status == PluginStatus::Disconnected { Some(now) } else { None },
                    "components": manifest.components.len(),
                    "schema": fragments.get(&manifest.plugin),
                });
                crate::store::RowOp::Put { id: manifest.plugin.clone(), row }
            })
            .collect();
        if let Err(error) = self.inner.stores.queries.commit(PLATFORM_PLUGINS, ops, None).await {
            tracing::warn!(%error, status = status_name, "plugin lifecycle row not written");
        }
    }
}
