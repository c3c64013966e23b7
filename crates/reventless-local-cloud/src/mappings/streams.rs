//! The DynamoDB streams driver: reads each shard in order from its
//! checkpoint, filters, invokes, and retries a failing batch the way Lambda
//! does (partial batch responses, bisection, retry limit, on-failure
//! destination) before it moves past it.
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodbstreams::error::DisplayErrorContext;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use aws_smithy_types::date_time::Format;
use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::{
    FUNCTION_CALL_FAILED, Filter, MappingConfig, OK, PROBLEM_PAUSE, Shared, SourceAccess, Status, enabled_config,
    failed_items, queue_url,
};
use crate::invoke::InvokeFailure;

/// How often an idle shard is read again (latency of a write reaching the function).
const IDLE_POLL: Duration = Duration::from_millis(250);
/// How often the shard list is read again (new shards after a split).
const SHARD_REFRESH: Duration = Duration::from_secs(5);
/// GetRecords returns at most this many records.
const MAX_GET_RECORDS: i32 = 1000;
/// Retry backoff: first wait, and cap (also for "until the record expires").
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
const RETRY_BACKOFF_CAP: Duration = Duration::from_secs(5);

const ACTIONS: [&str; 4] =
    ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"];

pub(super) async fn run(shared: Arc<Shared>, config: watch::Receiver<MappingConfig>, status: Status) {
    let stream_arn = config.borrow().event_source_arn.clone();
    let mut driver = Driver {
        shared,
        stream_arn,
        config,
        status,
        shards: BTreeMap::new(),
        refreshed: None,
        access: SourceAccess::default(),
    };
    driver.run().await;
}

/// Where a shard is read from next.
#[derive(Debug, Clone)]
enum Position {
    /// The mapping's `StartingPosition` (nothing processed yet).
    Start,
    At(String),
    After(String),
}

struct Shard {
    parent: Option<String>,
    position: Position,
    iterator: Option<String>,
    /// The shard is closed and read to its end.
    finished: bool,
}

struct Driver {
    shared: Arc<Shared>,
    stream_arn: String,
    config: watch::Receiver<MappingConfig>,
    status: Status,
    shards: BTreeMap<String, Shard>,
    refreshed: Option<Instant>,
    access: SourceAccess,
}

/// A record of Lambda's event with what retries need of it.
#[derive(Clone)]
struct Item {
    sequence_number: String,
    created: Option<aws_smithy_types::DateTime>,
    event: Value,
}

/// Part of a batch still to hand to the function.
struct Part {
    items: Vec<Item>,
    /// Retries used; a bisected half inherits its parent's (splitting is not a retry).
    retries: i32,
    /// Invocations that included these items, halves inheriting their parent's
    /// (the failure record's `approximateInvokeCount`).
    invocations: u32,
}

/// Why a batch stopped before it was handled.
enum Stopped {
    /// The mapping was disabled or reconfigured away mid-retry; resume here later.
    Disabled,
}

enum Outcome {
    Done,
    /// The items from this index failed (a partial batch response).
    FailedFrom(usize),
    /// The function failed the whole part.
    FunctionError,
    /// The function did not run (throttled, missing): no attempt consumed.
    NotRun,
}

impl Driver {
    async fn run(&mut self) {
        loop {
            let Some(config) = enabled_config(&mut self.config).await else { return };
            if let Err(problem) = self.access.check(&self.shared, &config, &ACTIONS).await {
                self.status.set(&problem);
                self.pause(PROBLEM_PAUSE).await;
                continue;
            }
            let filter = match Filter::parse(&config.filter_patterns) {
                Ok(filter) => filter,
                Err(invalid) => {
                    self.status.set(&format!("PROBLEM: {invalid}"));
                    // Nothing to do until the configuration changes.
                    if self.config.changed().await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            if self.refreshed.is_none_or(|at| at.elapsed() >= SHARD_REFRESH) {
                if let Err(problem) = self.refresh_shards().await {
                    self.status.set(&format!("PROBLEM: {problem}"));
                    self.pause(PROBLEM_PAUSE).await;
                    continue;
                }
                self.refreshed = Some(Instant::now());
            }
            let mut busy = false;
            let ready: Vec<String> = self
                .shards
                .iter()
                .filter(|(_, shard)| {
                    !shard.finished
                        && shard.parent.as_ref().is_none_or(|p| self.shards.get(p).is_none_or(|parent| parent.finished))
                })
                .map(|(id, _)| id.clone())
                .collect();
            for shard_id in ready {
                match self.read_shard(&config, &filter, &shard_id).await {
                    Ok(read) => busy |= read,
                    Err(problem) => {
                        self.status.set(&format!("PROBLEM: {problem}"));
                        if let Some(shard) = self.shards.get_mut(&shard_id) {
                            shard.iterator = None;
                        }
                    }
                }
            }
            if !busy {
                self.pause(IDLE_POLL).await;
            }
        }
    }

    /// Sleeps, waking early when the configuration changes.
    async fn pause(&mut self, duration: Duration) {
        let _ = tokio::time::timeout(duration, self.config.changed()).await;
    }

    async fn refresh_shards(&mut self) -> Result<(), String> {
        let mut start_after: Option<String> = None;
        loop {
            let output = self
                .shared
                .streams
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(start_after.clone())
                .send()
                .await
                .map_err(|e| format!("cannot describe {}: {}", self.stream_arn, DisplayErrorContext(&e)))?;
            let Some(description) = output.stream_description else { return Ok(()) };
            for shard in description.shards() {
                let Some(id) = shard.shard_id() else { continue };
                self.shards.entry(id.to_string()).or_insert_with(|| Shard {
                    parent: shard.parent_shard_id().map(str::to_string),
                    position: Position::Start,
                    iterator: None,
                    finished: false,
                });
            }
            match description.last_evaluated_shard_id {
                Some(last) => start_after = Some(last),
                None => return Ok(()),
            }
        }
    }

    async fn iterator(&mut self, config: &MappingConfig, shard_id: &str) -> Result<String, String> {
        let Some(shard) = self.shards.get(shard_id) else { return Err(format!("unknown shard {shard_id}")) };
        if let Some(iterator) = &shard.iterator {
            return Ok(iterator.clone());
        }
        let request = self.shared.streams.get_shard_iterator().stream_arn(&self.stream_arn).shard_id(shard_id);
        let request = match &shard.position {
            Position::Start if config.starting_position.as_deref() == Some("LATEST") => {
                request.shard_iterator_type(ShardIteratorType::Latest)
            }
            Position::Start => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            Position::At(sequence) => {
                request.shard_iterator_type(ShardIteratorType::AtSequenceNumber).sequence_number(sequence)
            }
            Position::After(sequence) => {
                request.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).sequence_number(sequence)
            }
        };
        let iterator = request
            .send()
            .await
            .map_err(|e| format!("cannot read {shard_id} of {}: {}", self.stream_arn, DisplayErrorContext(&e)))?
            .shard_iterator
            .ok_or_else(|| format!("no iterator for {shard_id}"))?;
        if let Some(shard) = self.shards.get_mut(shard_id) {
            shard.iterator = Some(iterator.clone());
        }
        Ok(iterator)
    }

    /// Reads one batch of a shard and sees it handled; true when records were read.
    async fn read_shard(&mut self, config: &MappingConfig, filter: &Filter, shard_id: &str) -> Result<bool, String> {
        let target = config.batch_size.clamp(1, MAX_GET_RECORDS);
        let window =
            Duration::from_secs(u64::try_from(config.maximum_batching_window_in_seconds.unwrap_or(0)).unwrap_or(0));
        let started = Instant::now();
        let mut records: Vec<Record> = Vec::new();
        let mut closed = false;
        loop {
            let iterator = self.iterator(config, shard_id).await?;
            let output = self
                .shared
                .streams
                .get_records()
                .shard_iterator(iterator)
                .limit(target - i32::try_from(records.len()).unwrap_or(0))
                .send()
                .await
                .map_err(|e| format!("cannot read {shard_id} of {}: {}", self.stream_arn, DisplayErrorContext(&e)))?;
            let got = output.records.as_ref().map_or(0, Vec::len);
            records.extend(output.records.unwrap_or_default());
            if let Some(shard) = self.shards.get_mut(shard_id) {
                closed = output.next_shard_iterator.is_none();
                shard.iterator = output.next_shard_iterator;
            }
            let full = i32::try_from(records.len()).unwrap_or(i32::MAX) >= target;
            if full || closed || records.is_empty() || started.elapsed() >= window {
                break;
            }
            if got == 0 {
                tokio::time::sleep(IDLE_POLL.min(window.saturating_sub(started.elapsed()))).await;
            }
        }
        let read = !records.is_empty();
        let last_read = records.last().and_then(|r| r.dynamodb()).and_then(|d| d.sequence_number()).map(str::to_string);
        let items: Vec<Item> =
            records.iter().filter_map(|r| self.item(r)).filter(|i| filter.matches(&i.event)).collect();
        if !items.is_empty() {
            match self.handle(config, shard_id, items).await {
                Ok(()) => {}
                Err(Stopped::Disabled) => return Ok(read),
            }
        }
        if let (Some(shard), Some(last)) = (self.shards.get_mut(shard_id), last_read) {
            shard.position = Position::After(last);
        }
        if closed && let Some(shard) = self.shards.get_mut(shard_id) {
            shard.finished = true;
        }
        Ok(read)
    }

    /// Hands the items to the function until each is processed or given up on.
    async fn handle(&mut self, config: &MappingConfig, shard_id: &str, items: Vec<Item>) -> Result<(), Stopped> {
        let mut parts = VecDeque::from([Part { items, retries: 0, invocations: 0 }]);
        while let Some(mut part) = parts.pop_front() {
            if !self.config.borrow().enabled {
                // Resume at the first unhandled item once enabled again.
                if let Some(shard) = self.shards.get_mut(shard_id) {
                    shard.position = Position::At(part.items[0].sequence_number.clone());
                    shard.iterator = None;
                }
                return Err(Stopped::Disabled);
            }
            part.invocations += 1;
            let outcome = self.invoke(config, &part.items).await;
            let failed = match outcome {
                Outcome::Done => {
                    self.checkpoint(shard_id, &part.items);
                    continue;
                }
                Outcome::NotRun => {
                    part.invocations -= 1;
                    parts.push_front(part);
                    self.pause(PROBLEM_PAUSE).await;
                    continue;
                }
                Outcome::FailedFrom(index) => {
                    // Checkpoint before the lowest failed item and retry from it.
                    let rest = part.items.split_off(index);
                    self.checkpoint(shard_id, &part.items);
                    Part { items: rest, retries: part.retries, invocations: part.invocations }
                }
                Outcome::FunctionError
                    if config.bisect_batch_on_function_error == Some(true) && part.items.len() > 1 =>
                {
                    // Splitting is not a retry: each half keeps the attempts used so far.
                    let second = part.items.split_off(part.items.len() / 2);
                    parts.push_front(Part { items: second, retries: part.retries, invocations: part.invocations });
                    parts.push_front(part);
                    continue;
                }
                Outcome::FunctionError => part,
            };
            let limit = config.maximum_retry_attempts.unwrap_or(-1);
            if limit >= 0 && failed.retries >= limit {
                self.give_up(config, shard_id, &failed).await;
                self.checkpoint(shard_id, &failed.items);
            } else {
                let retries = failed.retries + 1;
                let backoff = RETRY_BACKOFF
                    .saturating_mul(1 << u32::try_from(retries - 1).unwrap_or(0).min(10))
                    .min(RETRY_BACKOFF_CAP);
                tokio::time::sleep(backoff).await;
                parts.push_front(Part { retries, ..failed });
            }
        }
        Ok(())
    }

    fn checkpoint(&mut self, shard_id: &str, items: &[Item]) {
        if let (Some(shard), Some(last)) = (self.shards.get_mut(shard_id), items.last()) {
            shard.position = Position::After(last.sequence_number.clone());
        }
    }

    async fn invoke(&self, config: &MappingConfig, items: &[Item]) -> Outcome {
        let event = json!({"Records": items.iter().map(|i| i.event.clone()).collect::<Vec<_>>()});
        match self.shared.invoker.invoke(&config.function_name, event).await {
            Ok(response) => {
                self.status.set(OK);
                if !config.reports_batch_item_failures() {
                    return Outcome::Done;
                }
                let ids: Vec<&str> = items.iter().map(|i| i.sequence_number.as_str()).collect();
                match failed_items(&response, &ids) {
                    Some(failed) => match failed.first() {
                        None => Outcome::Done,
                        Some(first) => Outcome::FailedFrom(*first),
                    },
                    None => {
                        tracing::warn!(stream = %self.stream_arn, %response, "invalid batchItemFailures: the whole batch failed");
                        Outcome::FailedFrom(0)
                    }
                }
            }
            Err(InvokeFailure::Throttled) => {
                self.status.set("PROBLEM: Function call throttled");
                Outcome::NotRun
            }
            Err(InvokeFailure::NotFound(name)) => {
                self.status.set(&format!("PROBLEM: Function not found: {name}"));
                Outcome::NotRun
            }
            Err(failure) => {
                tracing::debug!(stream = %self.stream_arn, %failure, "batch failed");
                self.status.set(FUNCTION_CALL_FAILED);
                Outcome::FunctionError
            }
        }
    }

    /// Retries are exhausted: the batch's description goes to the on-failure
    /// destination (if any) and the mapping moves past it.
    async fn give_up(&self, config: &MappingConfig, shard_id: &str, part: &Part) {
        let (Some(first), Some(last)) = (part.items.first(), part.items.last()) else { return };
        let Some(destination) = &config.on_failure_destination else {
            tracing::warn!(stream = %self.stream_arn, shard_id, "retries exhausted; the batch is discarded (no on-failure destination)");
            return;
        };
        let arrival = |item: &Item| item.created.and_then(|t| t.fmt(Format::DateTime).ok());
        let now = aws_smithy_types::DateTime::from(std::time::SystemTime::now()).fmt(Format::DateTime).ok();
        let record = json!({
            "requestContext": {
                "requestId": uuid::Uuid::now_v7().to_string(),
                "functionArn": config.function_arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": part.invocations,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "version": "1.0",
            "timestamp": now,
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": first.sequence_number,
                "endSequenceNumber": last.sequence_number,
                "approximateArrivalOfFirstRecord": arrival(first),
                "approximateArrivalOfLastRecord": arrival(last),
                "batchSize": part.items.len(),
                "streamArn": self.stream_arn,
            },
        });
        if let Err(problem) = self.send_failure(config, destination, &record).await {
            self.status.set(&format!("PROBLEM: {problem}"));
        }
    }

    async fn send_failure(&self, config: &MappingConfig, destination: &str, record: &Value) -> Result<(), String> {
        let role = self.shared.invoker.role_of(&config.function_name).ok_or("the function is gone")?;
        self.shared.access.authorize(&role, "sqs:SendMessage", destination).await.map_err(|denied| {
            format!("Lambda cannot send to the on-failure destination {destination} with the execution role: {denied}")
        })?;
        let url = queue_url(&self.shared.sqs, destination).await?;
        self.shared
            .sqs
            .send_message()
            .queue_url(url)
            .message_body(record.to_string())
            .send()
            .await
            .map_err(|e| format!("cannot send to {destination}: {}", aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
        Ok(())
    }

    /// One record of Lambda's DynamoDB event; None without a sequence number.
    fn item(&self, record: &Record) -> Option<Item> {
        let change = record.dynamodb()?;
        let sequence_number = change.sequence_number()?.to_string();
        let mut dynamodb = serde_json::Map::new();
        if let Some(created) = change.approximate_creation_date_time() {
            dynamodb.insert("ApproximateCreationDateTime".into(), json!(created.secs()));
        }
        for (name, image) in
            [("Keys", change.keys()), ("NewImage", change.new_image()), ("OldImage", change.old_image())]
        {
            if let Some(image) = image {
                dynamodb.insert(name.into(), item_json(image));
            }
        }
        dynamodb.insert("SequenceNumber".into(), json!(sequence_number));
        if let Some(size) = change.size_bytes() {
            dynamodb.insert("SizeBytes".into(), json!(size));
        }
        if let Some(view) = change.stream_view_type() {
            dynamodb.insert("StreamViewType".into(), json!(view.as_str()));
        }
        let mut event = json!({
            "eventID": record.event_id(),
            "eventName": record.event_name().map(|n| n.as_str()),
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": record.aws_region().unwrap_or(&self.shared.region),
            "dynamodb": dynamodb,
            "eventSourceARN": self.stream_arn,
        });
        if let Some(identity) = record.user_identity() {
            event["userIdentity"] = json!({"type": identity.r#type(), "principalId": identity.principal_id()});
        }
        Some(Item { sequence_number, created: change.approximate_creation_date_time().copied(), event })
    }
}

/// An item (map of attributes) in DynamoDB's JSON wire format, keys sorted.
fn item_json(item: &HashMap<String, AttributeValue>) -> Value {
    let sorted: BTreeMap<&String, &AttributeValue> = item.iter().collect();
    Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), attribute_json(v))).collect())
}

fn attribute_json(value: &AttributeValue) -> Value {
    let encode = |blob: &aws_smithy_types::Blob| base64::engine::general_purpose::STANDARD.encode(blob.as_ref());
    match value {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::B(b) => json!({"B": encode(b)}),
        AttributeValue::Ss(set) => json!({"SS": set}),
        AttributeValue::Ns(set) => json!({"NS": set}),
        AttributeValue::Bs(set) => json!({"BS": set.iter().map(encode).collect::<Vec<_>>()}),
        AttributeValue::M(map) => json!({"M": item_json(map)}),
        AttributeValue::L(list) => json!({"L": list.iter().map(attribute_json).collect::<Vec<_>>()}),
        AttributeValue::Null(is_null) => json!({"NULL": is_null}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        _ => Value::Null,
    }
}
