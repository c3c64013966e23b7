use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use reventless_core::store::{CommandMessage, CommandTopic, Delivery, StoreError};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::memory_lock;

/// How long a dedup id suppresses a second send (as SQS FIFO).
const DEDUP_WINDOW: Duration = Duration::from_secs(300);

struct Queued {
    /// Send order: redelivered messages go back to their place.
    sequence: u64,
    message: CommandMessage,
    receive_count: u32,
}

struct InFlight {
    queued: Queued,
    visible_again_at: Instant,
}

#[derive(Default)]
struct Topic {
    next_sequence: u64,
    next_receipt: u64,
    queue: VecDeque<Queued>,
    in_flight: HashMap<String, InFlight>,
    dedup: HashMap<String, Instant>,
}

impl Topic {
    fn requeue(&mut self, queued: Queued) {
        let at = self.queue.partition_point(|q| q.sequence < queued.sequence);
        self.queue.insert(at, queued);
    }

    fn expire_in_flight(&mut self, now: Instant) {
        let expired: Vec<String> =
            self.in_flight.iter().filter(|(_, f)| f.visible_again_at <= now).map(|(r, _)| r.clone()).collect();
        for receipt in expired {
            if let Some(flight) = self.in_flight.remove(&receipt) {
                self.requeue(flight.queued);
            }
        }
    }

    fn take(&mut self, max: usize, visibility: Duration) -> Vec<Delivery> {
        let now = Instant::now();
        self.expire_in_flight(now);
        let locked: HashSet<String> = self.in_flight.values().map(|f| f.queued.message.group_id.clone()).collect();
        let mut taken = Vec::new();
        let mut index = 0;
        while index < self.queue.len() && taken.len() < max {
            if locked.contains(&self.queue[index].message.group_id) {
                index += 1;
                continue;
            }
            if let Some(mut queued) = self.queue.remove(index) {
                queued.receive_count += 1;
                self.next_receipt += 1;
                let receipt = format!("r{}", self.next_receipt);
                taken.push(Delivery {
                    receipt: receipt.clone(),
                    message: queued.message.clone(),
                    receive_count: queued.receive_count,
                });
                self.in_flight.insert(receipt, InFlight { queued, visible_again_at: now + visibility });
            }
        }
        taken
    }
}

/// FIFO command queues with message groups, held in memory.
#[derive(Default)]
pub struct MemoryCommandTopic {
    topics: Mutex<HashMap<String, Topic>>,
    sent: Notify,
}

#[async_trait]
impl CommandTopic for MemoryCommandTopic {
    async fn send(&self, topic: &str, message: CommandMessage) -> Result<(), StoreError> {
        {
            let mut topics = memory_lock(&self.topics)?;
            let topic = topics.entry(topic.to_string()).or_default();
            let now = Instant::now();
            topic.dedup.retain(|_, sent_at| now.duration_since(*sent_at) < DEDUP_WINDOW);
            if topic.dedup.contains_key(&message.dedup_id) {
                return Ok(());
            }
            topic.dedup.insert(message.dedup_id.clone(), now);
            topic.next_sequence += 1;
            let sequence = topic.next_sequence;
            topic.queue.push_back(Queued { sequence, message, receive_count: 0 });
        }
        self.sent.notify_waiters();
        Ok(())
    }

    async fn receive(
        &self,
        topic: &str,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Delivery>, StoreError> {
        let deadline = Instant::now() + wait;
        loop {
            let notified = self.sent.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (taken, next_expiry) = {
                let mut topics = memory_lock(&self.topics)?;
                let state = topics.entry(topic.to_string()).or_default();
                let taken = state.take(max, visibility);
                (taken, state.in_flight.values().map(|f| f.visible_again_at).min())
            };
            if !taken.is_empty() {
                return Ok(taken);
            }
            if Instant::now() >= deadline {
                return Ok(Vec::new());
            }
            // Wake for a send, a release, or an in-flight message becoming visible.
            let wake_at = next_expiry.map_or(deadline, |expiry| expiry.min(deadline));
            let _ = tokio::time::timeout_at(wake_at, notified).await;
        }
    }

    async fn ack(&self, topic: &str, receipt: &str) -> Result<(), StoreError> {
        let mut topics = memory_lock(&self.topics)?;
        let removed = topics.get_mut(topic).and_then(|t| t.in_flight.remove(receipt));
        match removed {
            Some(_) => Ok(()),
            None => Err(StoreError::Invalid(format!("receipt {receipt} is not in flight on {topic}"))),
        }
    }

    async fn release(&self, topic: &str, receipt: &str) -> Result<(), StoreError> {
        {
            let mut topics = memory_lock(&self.topics)?;
            let Some(topic_state) = topics.get_mut(topic) else {
                return Err(StoreError::Invalid(format!("unknown topic {topic}")));
            };
            let Some(flight) = topic_state.in_flight.remove(receipt) else {
                return Err(StoreError::Invalid(format!("receipt {receipt} is not in flight on {topic}")));
            };
            topic_state.requeue(flight.queued);
        }
        self.sent.notify_waiters();
        Ok(())
    }
}
