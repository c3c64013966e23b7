//! The SQS driver: long-polls a queue (standard or FIFO), hands batches to the
//! function and deletes what Lambda would delete.
//!
//! One poller always runs while the mapping is enabled; while it finds
//! messages it adds pollers (up to [`MAX_POLLERS`]) that stop at their first
//! empty receive, so an idle queue costs one long poll at a time. FIFO groups
//! are tracked across the pollers of a mapping: moto snapshots the groups in
//! flight at the start of each receive without a lock, so two concurrent
//! receives can both take the same group; the loser hands its messages back.
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName,
    QueueAttributeName,
};
use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{
    FUNCTION_CALL_FAILED, Filter, MappingConfig, OK, PROBLEM_PAUSE, Shared, SourceAccess, Status, enabled_config,
    failed_items, queue_url,
};
use crate::invoke::InvokeFailure;

/// Concurrent receivers per mapping (Lambda starts with five).
const MAX_POLLERS: usize = 5;
/// Long-poll wait of an idle receive.
const LONG_POLL_SECONDS: i32 = 1;
/// SQS's largest receive.
const MAX_RECEIVE: i32 = 10;

/// How long before the visibility timeout kept FIFO messages are released (see [`Poller::return_in_order`]).
const RETURN_MARGIN: Duration = Duration::from_millis(150);
/// SQS's default visibility timeout, when the queue's cannot be read.
const DEFAULT_VISIBILITY: Duration = Duration::from_secs(30);

const ACTIONS: [&str; 3] = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"];

pub(super) async fn run(shared: Arc<Shared>, mut config: watch::Receiver<MappingConfig>, status: Status) {
    let Some(initial) = enabled_config(&mut config).await else { return };
    let arn = initial.event_source_arn.clone();
    let url = loop {
        match queue_url(&shared.sqs, &arn).await {
            Ok(url) => break url,
            Err(problem) => {
                status.set(&format!("PROBLEM: {problem}"));
                tokio::time::sleep(PROBLEM_PAUSE).await;
            }
        }
    };
    let visibility = visibility_timeout(&shared.sqs, &url).await;
    let poller = Arc::new(Poller {
        visibility,
        shared,
        fifo: arn.ends_with(".fifo"),
        arn,
        url,
        status,
        groups_in_flight: Mutex::new(HashSet::new()),
    });
    let mut access = SourceAccess::default();
    let mut extra = JoinSet::new();
    loop {
        while extra.try_join_next().is_some() {}
        let Some(current) = enabled_config(&mut config).await else { return };
        match poller.poll_once(&current, &mut access).await {
            Polled::Busy => {
                if extra.len() + 1 < MAX_POLLERS {
                    extra.spawn(extra_poller(poller.clone(), config.clone()));
                }
            }
            Polled::Idle => {}
            Polled::Problem => tokio::time::sleep(PROBLEM_PAUSE).await,
        }
    }
}

async fn visibility_timeout(sqs: &aws_sdk_sqs::Client, url: &str) -> Duration {
    let read =
        sqs.get_queue_attributes().queue_url(url).attribute_names(QueueAttributeName::VisibilityTimeout).send().await;
    read.ok()
        .and_then(|output| output.attributes?.get(&QueueAttributeName::VisibilityTimeout)?.parse::<u64>().ok())
        .map_or(DEFAULT_VISIBILITY, Duration::from_secs)
}

/// A poller added while the queue has a backlog; it ends when the queue looks drained.
async fn extra_poller(poller: Arc<Poller>, config: watch::Receiver<MappingConfig>) {
    let mut access = SourceAccess::default();
    loop {
        let current = config.borrow().clone();
        if !current.enabled || !matches!(poller.poll_once(&current, &mut access).await, Polled::Busy) {
            return;
        }
    }
}

enum Polled {
    /// Messages were received (more may be waiting).
    Busy,
    Idle,
    Problem,
}

struct Poller {
    shared: Arc<Shared>,
    arn: String,
    url: String,
    fifo: bool,
    /// The queue's visibility timeout (receives use the queue's).
    visibility: Duration,
    status: Status,
    /// FIFO groups some poller of this mapping holds in a batch.
    groups_in_flight: Mutex<HashSet<String>>,
}

/// A received message with what the batch needs of it.
struct Received {
    message: Message,
    record: Value,
    /// When the receive that returned it was sent (its visibility timeout runs from there).
    received_at: Instant,
}

impl Poller {
    async fn poll_once(&self, config: &MappingConfig, access: &mut SourceAccess) -> Polled {
        if let Err(problem) = access.check(&self.shared, config, &ACTIONS).await {
            self.status.set(&problem);
            return Polled::Problem;
        }
        let filter = match Filter::parse(&config.filter_patterns) {
            Ok(filter) => filter,
            Err(invalid) => {
                self.status.set(&format!("PROBLEM: {invalid}"));
                return Polled::Problem;
            }
        };
        let mut owned_groups = HashSet::new();
        let batch = match self.receive_batch(config, &mut owned_groups).await {
            Ok(batch) => batch,
            Err(problem) => {
                self.release_groups(&owned_groups);
                self.status.set(&format!("PROBLEM: {problem}"));
                return Polled::Problem;
            }
        };
        if batch.is_empty() {
            self.release_groups(&owned_groups);
            return Polled::Idle;
        }
        // Lambda deletes the messages its filters drop: they count as processed.
        let (batch, dropped): (Vec<Received>, Vec<Received>) =
            batch.into_iter().partition(|r| filter.is_empty() || filter.matches(&filter_view(&r.record)));
        let mut to_delete: Vec<&Message> = dropped.iter().map(|r| &r.message).collect();
        if !batch.is_empty() {
            to_delete.extend(self.invoke(config, &batch).await);
        }
        // Groups are released before the delete: moto keeps a group blocked
        // while any of its messages is undeleted, so no other poller can take
        // the group's next message in between.
        self.release_groups(&owned_groups);
        self.delete(&to_delete).await;
        if self.fifo {
            let kept: Vec<&Received> =
                batch.iter().filter(|r| !to_delete.iter().any(|d| d.message_id == r.message.message_id)).collect();
            self.return_in_order(&kept);
        }
        Polled::Busy
    }

    /// Makes the kept messages of a FIFO batch visible together just before
    /// their visibility timeout ends. moto otherwise redelivers a group out of
    /// order: when several in-flight messages of a group time out at once, it
    /// skips each while a later one still counts as in flight, so the last
    /// message comes back first. Releasing them all (in order) before the
    /// timeout clears the group at once; then moto hands them out in order.
    fn return_in_order(&self, kept: &[&Received]) {
        let Some(earliest) = kept.iter().map(|r| r.received_at).min() else { return };
        let Some(at) = (earliest + self.visibility).checked_sub(RETURN_MARGIN) else { return };
        if at <= Instant::now() {
            // Too late: moto may already be handing them out; a second release could duplicate one.
            return;
        }
        let receipts: Vec<String> = kept.iter().filter_map(|r| r.message.receipt_handle.clone()).collect();
        let (sqs, url, arn) = (self.shared.sqs.clone(), self.url.clone(), self.arn.clone());
        tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            for chunk in receipts.chunks(10) {
                let entries = chunk.iter().enumerate().filter_map(|(i, receipt)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .visibility_timeout(0)
                        .build()
                        .ok()
                });
                if let Err(e) = sqs
                    .change_message_visibility_batch()
                    .queue_url(&url)
                    .set_entries(Some(entries.collect()))
                    .send()
                    .await
                {
                    tracing::warn!(queue = %arn, error = %DisplayErrorContext(&e), "cannot return kept messages in order");
                }
            }
        });
    }

    /// Invokes the function with the batch; the messages Lambda deletes afterwards.
    async fn invoke<'a>(&self, config: &MappingConfig, batch: &'a [Received]) -> Vec<&'a Message> {
        let event = json!({"Records": batch.iter().map(|r| r.record.clone()).collect::<Vec<_>>()});
        match self.shared.invoker.invoke(&config.function_name, event).await {
            Ok(response) => {
                self.status.set(OK);
                if !config.reports_batch_item_failures() {
                    // Without ReportBatchItemFailures the answer is ignored: the batch succeeded.
                    return batch.iter().map(|r| &r.message).collect();
                }
                let ids: Vec<&str> = batch.iter().map(|r| r.message.message_id.as_deref().unwrap_or("")).collect();
                match failed_items(&response, &ids) {
                    None => {
                        tracing::warn!(queue = %self.arn, %response, "invalid batchItemFailures: the whole batch failed");
                        Vec::new()
                    }
                    Some(failed) => {
                        // Lambda deletes every message not listed, FIFO or not: a
                        // FIFO handler must list the failed message *and* the later
                        // ones of its group itself, or they are lost (as on AWS).
                        batch.iter().enumerate().filter(|(i, _)| !failed.contains(i)).map(|(_, r)| &r.message).collect()
                    }
                }
            }
            Err(InvokeFailure::Throttled) => {
                self.status.set("PROBLEM: Function call throttled");
                Vec::new()
            }
            Err(InvokeFailure::NotFound(name)) => {
                self.status.set(&format!("PROBLEM: Function not found: {name}"));
                Vec::new()
            }
            Err(failure) => {
                tracing::debug!(queue = %self.arn, %failure, "batch failed; its messages return after the visibility timeout");
                self.status.set(FUNCTION_CALL_FAILED);
                Vec::new()
            }
        }
    }

    /// Up to `batch_size` messages: SQS hands out 10 per receive, so larger
    /// batches take several receives within the batching window.
    async fn receive_batch(
        &self,
        config: &MappingConfig,
        owned_groups: &mut HashSet<String>,
    ) -> Result<Vec<Received>, String> {
        let target = usize::try_from(config.batch_size.max(1)).unwrap_or(1);
        let window =
            Duration::from_secs(u64::try_from(config.maximum_batching_window_in_seconds.unwrap_or(0)).unwrap_or(0));
        let mut batch: Vec<Received> = Vec::new();
        let mut released_groups = HashSet::new();
        let mut deadline: Option<Instant> = None;
        loop {
            let wanted = i32::try_from(target - batch.len()).unwrap_or(MAX_RECEIVE).min(MAX_RECEIVE);
            let wait = match deadline {
                None => LONG_POLL_SECONDS,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    i32::try_from(left.as_secs_f64().ceil() as i64).unwrap_or(0).min(LONG_POLL_SECONDS)
                }
            };
            let received_at = Instant::now();
            let messages = match self.receive(wanted, wait).await {
                Ok(messages) => messages,
                // What was received is still a batch; it is not left to time out.
                Err(problem) if !batch.is_empty() => {
                    tracing::warn!(queue = %self.arn, problem, "receive failed while filling a batch");
                    break;
                }
                Err(problem) => return Err(problem),
            };
            let got = messages.len();
            for message in messages {
                if self.fifo
                    && let Some(group) =
                        message.attributes().and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
                    && !self.take_group(group, owned_groups, &mut released_groups)
                {
                    self.hand_back(&message).await;
                    continue;
                }
                let record = self.record(&message);
                batch.push(Received { message, record, received_at });
            }
            if batch.len() >= target {
                break;
            }
            let now = Instant::now();
            if got > 0 && deadline.is_none() {
                deadline = Some(now + window);
            }
            match deadline {
                None => return Ok(batch),
                Some(deadline) if now >= deadline && (got == 0 || window > Duration::ZERO) => break,
                Some(_) if got == 0 && window == Duration::ZERO => break,
                Some(_) => {}
            }
        }
        Ok(batch)
    }

    /// Claims a FIFO group for this batch; false when another poller holds it
    /// (then the group's later messages of this batch go back too).
    fn take_group(&self, group: &str, owned: &mut HashSet<String>, released: &mut HashSet<String>) -> bool {
        if owned.contains(group) {
            return true;
        }
        if released.contains(group) {
            return false;
        }
        let mut in_flight = self.groups_in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        if in_flight.insert(group.to_string()) {
            owned.insert(group.to_string());
            true
        } else {
            released.insert(group.to_string());
            false
        }
    }

    fn release_groups(&self, owned: &HashSet<String>) {
        if owned.is_empty() {
            return;
        }
        let mut in_flight = self.groups_in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        for group in owned {
            in_flight.remove(group);
        }
    }

    /// Makes a message visible again at once (a group another poller holds).
    async fn hand_back(&self, message: &Message) {
        let Some(receipt) = message.receipt_handle() else { return };
        if let Err(e) = self
            .shared
            .sqs
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await
        {
            tracing::warn!(queue = %self.arn, error = %DisplayErrorContext(&e), "cannot hand a message back");
        }
    }

    async fn receive(&self, max: i32, wait_seconds: i32) -> Result<Vec<Message>, String> {
        let output = self
            .shared
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, MAX_RECEIVE))
            .wait_time_seconds(wait_seconds.max(0))
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| format!("cannot receive from {}: {}", self.arn, DisplayErrorContext(&e)))?;
        Ok(output.messages.unwrap_or_default())
    }

    async fn delete(&self, messages: &[&Message]) {
        for chunk in messages.chunks(10) {
            let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle.clone()?)
                        .build()
                        .ok()
                })
                .collect();
            if entries.is_empty() {
                continue;
            }
            match self.shared.sqs.delete_message_batch().queue_url(&self.url).set_entries(Some(entries)).send().await {
                Ok(output) if !output.failed.is_empty() => {
                    tracing::warn!(queue = %self.arn, failed = ?output.failed, "some messages could not be deleted")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(queue = %self.arn, error = %DisplayErrorContext(&e), "cannot delete messages"),
            }
        }
    }

    /// One record of Lambda's SQS event.
    fn record(&self, message: &Message) -> Value {
        let attributes: BTreeMap<&str, &str> =
            message.attributes().map(|a| a.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()).unwrap_or_default();
        let message_attributes: serde_json::Map<String, Value> = message
            .message_attributes()
            .map(|attrs| {
                let sorted: BTreeMap<&String, _> = attrs.iter().collect();
                sorted
                    .into_iter()
                    .map(|(name, value)| {
                        let encode = |blob: &aws_smithy_types::Blob| {
                            Value::String(base64::engine::general_purpose::STANDARD.encode(blob.as_ref()))
                        };
                        let mut attribute = serde_json::Map::new();
                        if let Some(s) = value.string_value() {
                            attribute.insert("stringValue".into(), json!(s));
                        }
                        if let Some(b) = value.binary_value() {
                            attribute.insert("binaryValue".into(), encode(b));
                        }
                        attribute.insert("stringListValues".into(), json!(value.string_list_values()));
                        attribute.insert(
                            "binaryListValues".into(),
                            Value::Array(value.binary_list_values().iter().map(encode).collect()),
                        );
                        attribute.insert("dataType".into(), json!(value.data_type()));
                        (name.clone(), Value::Object(attribute))
                    })
                    .collect()
            })
            .unwrap_or_default();
        json!({
            "messageId": message.message_id(),
            "receiptHandle": message.receipt_handle(),
            "body": message.body().unwrap_or(""),
            "attributes": attributes,
            "messageAttributes": message_attributes,
            "md5OfMessageAttributes": message.md5_of_message_attributes(),
            "md5OfBody": message.md5_of_body(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.arn,
            "awsRegion": self.shared.region,
        })
    }
}

/// The record as Lambda's filters see it: a JSON body is matched as JSON.
fn filter_view(record: &Value) -> Value {
    let mut view = record.clone();
    if let Some(body) = record.get("body").and_then(Value::as_str)
        && let Ok(parsed) = serde_json::from_str::<Value>(body)
    {
        view["body"] = parsed;
    }
    view
}
