//! Command topics as SQS FIFO queues: the message group is the entity (so one
//! entity's commands run in order, different entities in parallel), and the
//! deduplication id drops a re-sent command within SQS's five-minute window.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use reventless_core::store::{CommandMessage, CommandTopic, Delivery, StoreError};
use sha2::{Digest, Sha256};

/// The longest group or deduplication id SQS accepts.
const MAX_FIFO_ID: usize = 128;
/// Most messages one receive returns.
const MAX_BATCH: usize = 10;

/// A group or deduplication id SQS accepts: as is when short enough and made
/// of the allowed characters, else its SHA-256 (hex).
pub fn fifo_id(id: &str) -> String {
    let allowed = |c: char| c.is_ascii_graphic();
    if id.len() <= MAX_FIFO_ID && !id.is_empty() && id.chars().all(allowed) {
        return id.to_string();
    }
    Sha256::digest(id.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The FIFO queue of a topic: `<prefix><topic>.fifo`, with characters SQS
/// refuses replaced by `-`.
pub fn queue_name(prefix: &str, topic: &str) -> String {
    let base: String = format!("{prefix}{topic}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .collect();
    format!("{}.fifo", crate::shorten(&base, 75))
}

pub struct SqsCommandTopic {
    client: Client,
    prefix: String,
    /// Queues of other stacks by topic (a publisher's subscribers' inboxes).
    names: HashMap<String, String>,
    urls: Mutex<HashMap<String, String>>,
}

fn unavailable<E: std::error::Error + 'static>(error: E) -> StoreError {
    StoreError::Unavailable(DisplayErrorContext(error).to_string())
}

impl SqsCommandTopic {
    /// Topics as the queues `<prefix><topic>.fifo`.
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Self { client, prefix: prefix.into(), names: HashMap::new(), urls: Mutex::new(HashMap::new()) }
    }

    /// Topics whose queue is not `<prefix><topic>.fifo`: topic → queue name.
    pub fn naming(mut self, names: impl IntoIterator<Item = (String, String)>) -> Self {
        self.names.extend(names);
        self
    }

    /// Adds queue URLs known in advance (from the function's configuration).
    pub fn knowing(self, urls: impl IntoIterator<Item = (String, String)>) -> Self {
        if let Ok(mut known) = self.urls.lock() {
            known.extend(urls);
        }
        self
    }

    async fn url(&self, topic: &str) -> Result<String, StoreError> {
        if let Some(url) = self.urls.lock().ok().and_then(|urls| urls.get(topic).cloned()) {
            return Ok(url);
        }
        let name = self.names.get(topic).cloned().unwrap_or_else(|| queue_name(&self.prefix, topic));
        let output = self.client.get_queue_url().queue_name(&name).send().await.map_err(unavailable)?;
        let url = output.queue_url().ok_or_else(|| StoreError::Unavailable(format!("no URL for queue {name}")))?;
        if let Ok(mut urls) = self.urls.lock() {
            urls.insert(topic.to_string(), url.to_string());
        }
        Ok(url.to_string())
    }
}

/// SQS counts seconds; shorter waits round up so a short timeout still expires.
fn whole_seconds(duration: Duration) -> i32 {
    let seconds = duration.as_millis().div_ceil(1000);
    i32::try_from(seconds).unwrap_or(i32::MAX)
}

#[async_trait]
impl CommandTopic for SqsCommandTopic {
    async fn send(&self, topic: &str, message: CommandMessage) -> Result<(), StoreError> {
        let url = self.url(topic).await?;
        let body = serde_json::to_string(&message).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .message_group_id(fifo_id(&message.group_id))
            .message_deduplication_id(fifo_id(&message.dedup_id))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn receive(
        &self,
        topic: &str,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Delivery>, StoreError> {
        let url = self.url(topic).await?;
        let output = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(i32::try_from(max.clamp(1, MAX_BATCH)).unwrap_or(1))
            .wait_time_seconds(whole_seconds(wait).min(20))
            .visibility_timeout(whole_seconds(visibility))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(unavailable)?;
        let mut deliveries = Vec::new();
        for message in output.messages() {
            let corrupt = |why: String| StoreError::Corrupt { location: format!("queue {topic}"), message: why };
            let body = message.body().ok_or_else(|| corrupt("a message without body".into()))?;
            let command: CommandMessage =
                serde_json::from_str(body).map_err(|e| corrupt(format!("undecodable message: {e}")))?;
            let receipt = message.receipt_handle().ok_or_else(|| corrupt("a message without receipt".into()))?;
            let receive_count = message
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|count| count.parse().ok())
                .unwrap_or(1);
            deliveries.push(Delivery { receipt: receipt.to_string(), message: command, receive_count });
        }
        Ok(deliveries)
    }

    async fn ack(&self, topic: &str, receipt: &str) -> Result<(), StoreError> {
        let url = self.url(topic).await?;
        self.client.delete_message().queue_url(url).receipt_handle(receipt).send().await.map_err(unavailable)?;
        Ok(())
    }

    async fn release(&self, topic: &str, receipt: &str) -> Result<(), StoreError> {
        let url = self.url(topic).await?;
        self.client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
