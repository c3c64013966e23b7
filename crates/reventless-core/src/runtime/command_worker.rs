//! The background worker of a runtime's command topics: receives queued
//! (async) commands and runs them, each entity's in order.
use super::*;

impl Runtime {
    /// Executes queued commands of one plugin: groups in parallel, each
    /// group's messages in order; a failure releases that message and every
    /// later one of its group (so the group's order survives redelivery).
    pub(super) async fn run_command_worker(self, topic: String) {
        let mut shutdown = self.inner.shutdown.subscribe();
        let visibility = Duration::from_secs(30);
        loop {
            if *shutdown.borrow() {
                return;
            }
            let received = tokio::select! {
                received = self.inner.stores.commands.receive(&topic, COMMAND_BATCH, Duration::from_millis(500), visibility) => received,
                _ = shutdown.changed() => return,
            };
            let deliveries = match received {
                Ok(deliveries) => deliveries,
                Err(error) => {
                    tracing::warn!(%error, topic, "receiving commands failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let mut groups: BTreeMap<String, Vec<Delivery>> = BTreeMap::new();
            for delivery in deliveries {
                groups.entry(delivery.message.group_id.clone()).or_default().push(delivery);
            }
            let mut running = Vec::new();
            for (_, group) in groups {
                let runtime = self.clone();
                let topic = topic.clone();
                running.push(tokio::spawn(async move { runtime.run_group(&topic, group).await }));
            }
            for task in running {
                let _ = task.await;
            }
        }
    }

    pub(super) async fn run_group(&self, topic: &str, group: Vec<Delivery>) {
        let commands = &self.inner.stores.commands;
        let mut failed = false;
        for delivery in group {
            if failed {
                let _ = commands.release(topic, &delivery.receipt).await;
                continue;
            }
            match self.run_queued(&delivery.message).await {
                Ok(()) => {
                    if let Err(error) = commands.ack(topic, &delivery.receipt).await {
                        tracing::warn!(%error, "acknowledging a command failed; it will be redelivered");
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, receive_count = delivery.receive_count, "async command failed; redelivering");
                    failed = true;
                    let _ = commands.release(topic, &delivery.receipt).await;
                }
            }
        }
    }
}
