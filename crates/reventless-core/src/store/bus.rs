//! The in-process event bus: commit notices over a broadcast channel.
use std::sync::Arc;

use super::{EventBus, Published};
use tokio::sync::broadcast;

/// Notices a slow subscriber may fall behind by before it is told it lagged
/// (it then catches up from the log; nothing is lost).
const CAPACITY: usize = 4096;

/// Commit notices to the tasks of one process.
pub struct InProcessBus {
    sender: broadcast::Sender<Arc<Published>>,
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self { sender: broadcast::channel(CAPACITY).0 }
    }
}

impl EventBus for InProcessBus {
    fn publish(&self, published: Published) {
        // No subscriber is fine: readers catch up from the log when they start.
        let _ = self.sender.send(Arc::new(published));
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Published>> {
        self.sender.subscribe()
    }
}
