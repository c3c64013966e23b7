//! Event source mappings against the emulator (moto) with a fake function:
//! what Lambda deletes, retries, bisects, filters and refuses.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use reventless_aws::emulator::Emulator;
use reventless_local_cloud::iam::{Access, Denied};
use reventless_local_cloud::invoke::{InvokeFailure, Invoker};
use reventless_local_cloud::mappings::{MappingConfig, Mappings};
use serde_json::{Value, json};

const ROLE: &str = "arn:aws:iam::123456789012:role/fake-function-role";

type Answer = Box<dyn Fn(&Value) -> Result<Value, InvokeFailure> + Send + Sync>;

/// A function that records its events and answers what the test programs.
struct FakeFunction {
    answer: Answer,
    delay: Duration,
    calls: Mutex<Vec<Value>>,
    /// Per SQS message group: invocations in flight now, and the most ever.
    groups: Mutex<(HashMap<String, usize>, usize)>,
    /// Invocations in flight now, and the most ever.
    concurrency: Mutex<(usize, usize)>,
}

impl FakeFunction {
    fn new(answer: impl Fn(&Value) -> Result<Value, InvokeFailure> + Send + Sync + 'static) -> Arc<Self> {
        Self::slow(Duration::ZERO, answer)
    }

    fn slow(
        delay: Duration,
        answer: impl Fn(&Value) -> Result<Value, InvokeFailure> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(FakeFunction {
            answer: Box::new(answer),
            delay,
            calls: Mutex::new(Vec::new()),
            groups: Mutex::new((HashMap::new(), 0)),
            concurrency: Mutex::new((0, 0)),
        })
    }

    fn calls(&self) -> Vec<Value> {
        self.calls.lock().unwrap().clone()
    }

    fn max_group_concurrency(&self) -> usize {
        self.groups.lock().unwrap().1
    }
}

fn groups_of(event: &Value) -> HashSet<String> {
    records(event).iter().filter_map(|r| r["attributes"]["MessageGroupId"].as_str().map(str::to_string)).collect()
}

#[async_trait::async_trait]
impl Invoker for FakeFunction {
    async fn invoke(&self, _function: &str, payload: Value) -> Result<Value, InvokeFailure> {
        self.calls.lock().unwrap().push(payload.clone());
        {
            let mut concurrency = self.concurrency.lock().unwrap();
            concurrency.0 += 1;
            concurrency.1 = concurrency.1.max(concurrency.0);
        }
        let groups = groups_of(&payload);
        {
            let mut state = self.groups.lock().unwrap();
            for group in &groups {
                let count = state.0.entry(group.clone()).or_default();
                *count += 1;
                let now = *count;
                state.1 = state.1.max(now);
            }
        }
        tokio::time::sleep(self.delay).await;
        {
            let mut state = self.groups.lock().unwrap();
            for group in &groups {
                *state.0.get_mut(group).unwrap() -= 1;
            }
        }
        self.concurrency.lock().unwrap().0 -= 1;
        (self.answer)(&payload)
    }

    fn role_of(&self, _function: &str) -> Option<String> {
        Some(ROLE.to_string())
    }
}

/// Allows everything while `allow` is set; records what was asked.
struct FakeAccess {
    allow: AtomicBool,
    asked: Mutex<Vec<(String, String, String)>>,
}

impl FakeAccess {
    fn new(allow: bool) -> Arc<Self> {
        Arc::new(FakeAccess { allow: AtomicBool::new(allow), asked: Mutex::new(Vec::new()) })
    }
}

#[async_trait::async_trait]
impl Access for FakeAccess {
    async fn authorize(&self, role_arn: &str, action: &str, resource: &str) -> Result<(), Denied> {
        self.asked.lock().unwrap().push((role_arn.to_string(), action.to_string(), resource.to_string()));
        if self.allow.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(Denied {
                principal: format!("{ROLE}/session"),
                action: action.to_string(),
                resource: resource.to_string(),
            })
        }
    }
}

async fn sdk() -> aws_config::SdkConfig {
    Emulator::shared().expect("moto must run for these tests").sdk_config().await
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

fn records(event: &Value) -> Vec<Value> {
    event["Records"].as_array().cloned().unwrap_or_default()
}

fn bodies(event: &Value) -> Vec<String> {
    records(event).iter().map(|r| r["body"].as_str().unwrap().to_string()).collect()
}

fn mapping(function: &str, source_arn: &str) -> MappingConfig {
    MappingConfig {
        uuid: uuid::Uuid::now_v7().to_string(),
        function_name: function.to_string(),
        function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{function}"),
        event_source_arn: source_arn.to_string(),
        batch_size: 10,
        maximum_batching_window_in_seconds: None,
        starting_position: None,
        bisect_batch_on_function_error: None,
        maximum_retry_attempts: None,
        function_response_types: Vec::new(),
        filter_patterns: Vec::new(),
        on_failure_destination: None,
        enabled: true,
    }
}

async fn wait_for(what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A queue with `attributes`; returns (url, arn).
async fn queue(sqs: &aws_sdk_sqs::Client, name: &str, attributes: &[(QueueAttributeName, String)]) -> (String, String) {
    let mut request = sqs.create_queue().queue_name(name);
    for (key, value) in attributes {
        request = request.attributes(key.clone(), value.clone());
    }
    let url = request.send().await.unwrap().queue_url.unwrap();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()
        .remove(&QueueAttributeName::QueueArn)
        .unwrap();
    (url, arn)
}

fn fifo(visibility_seconds: u32) -> Vec<(QueueAttributeName, String)> {
    vec![
        (QueueAttributeName::FifoQueue, "true".into()),
        (QueueAttributeName::ContentBasedDeduplication, "true".into()),
        (QueueAttributeName::VisibilityTimeout, visibility_seconds.to_string()),
    ]
}

async fn send(sqs: &aws_sdk_sqs::Client, url: &str, group: Option<&str>, body: &str) {
    sqs.send_message()
        .queue_url(url)
        .set_message_group_id(group.map(str::to_string))
        .message_body(body)
        .send()
        .await
        .unwrap();
}

/// Messages in the queue, visible or in flight.
async fn messages_left(sqs: &aws_sdk_sqs::Client, url: &str) -> usize {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    attributes.values().map(|v| v.parse::<usize>().unwrap()).sum()
}

fn failing(body: &'static str, times: usize) -> impl Fn(&Value) -> Result<Value, InvokeFailure> {
    let seen = Mutex::new(0usize);
    move |event| {
        let failed: Vec<Value> = records(event)
            .iter()
            .filter(|r| r["body"] == body)
            .map(|r| json!({"itemIdentifier": r["messageId"]}))
            .collect();
        let mut seen = seen.lock().unwrap();
        if !failed.is_empty() && *seen < times {
            *seen += 1;
            return Ok(json!({"batchItemFailures": failed}));
        }
        Ok(json!({"batchItemFailures": []}))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_partial_batch_response_keeps_only_the_listed_messages_as_lambda_does() {
    let config = sdk().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let (url, arn) = queue(&sqs, &format!("{}.fifo", unique("partial")), &fifo(1)).await;
    for body in ["m1", "m2", "m3"] {
        // An explicit deduplication id, as the framework sends: moto gives
        // SequenceNumber only to those.
        let attribute = aws_sdk_sqs::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(format!("attr-{body}"))
            .build()
            .unwrap();
        sqs.send_message()
            .queue_url(&url)
            .message_group_id("g")
            .message_deduplication_id(body)
            .message_attributes("kind", attribute)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let function = FakeFunction::new(failing("m2", 1));
    let mappings = Mappings::new(config.clone(), function.clone(), FakeAccess::new(true));
    let mut config = mapping("partial", &arn);
    config.function_response_types = vec!["ReportBatchItemFailures".into()];
    mappings.put(config.clone());

    wait_for("the redelivery", Duration::from_secs(10), async || function.calls().len() >= 2).await;
    wait_for("an empty queue", Duration::from_secs(10), async || messages_left(&sqs, &url).await == 0).await;
    let calls = function.calls();
    assert_eq!(bodies(&calls[0]), ["m1", "m2", "m3"]);
    assert_eq!(bodies(&calls[1]), ["m2"], "Lambda deletes what the answer does not list, m3 included");
    assert_eq!(records(&calls[1])[0]["attributes"]["ApproximateReceiveCount"], "2");
    assert_eq!(calls.len(), 2);
    assert_eq!(mappings.last_processing_result(&config.uuid).as_deref(), Some("OK"));

    // The event is Lambda's SQS event.
    let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(calls[0].clone()).unwrap();
    let first = &event.records[0];
    assert_eq!(first.event_source.as_deref(), Some("aws:sqs"));
    assert_eq!(first.event_source_arn.as_deref(), Some(arn.as_str()));
    assert_eq!(first.aws_region.as_deref(), Some("us-east-1"));
    assert!(first.receipt_handle.is_some() && first.md5_of_body.is_some());
    for attribute in
        ["MessageGroupId", "SequenceNumber", "MessageDeduplicationId", "SentTimestamp", "ApproximateReceiveCount"]
    {
        assert!(first.attributes.contains_key(attribute), "{attribute} missing from {:?}", first.attributes);
    }
    assert_eq!(first.message_attributes["kind"].string_value.as_deref(), Some("attr-m1"));
    assert_eq!(first.message_attributes["kind"].data_type.as_deref(), Some("String"));
    mappings.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_report_batch_item_failures_the_answer_is_ignored_and_the_batch_deleted() {
    let config = sdk().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let (url, arn) = queue(&sqs, &format!("{}.fifo", unique("ignored")), &fifo(1)).await;
    for body in ["m1", "m2", "m3"] {
        send(&sqs, &url, Some("g"), body).await;
    }
    let function = FakeFunction::new(failing("m2", usize::MAX));
    let mappings = Mappings::new(config.clone(), function.clone(), FakeAccess::new(true));
    mappings.put(mapping("ignored", &arn));

    wait_for("the batch", Duration::from_secs(10), async || !function.calls().is_empty()).await;
    wait_for("an empty queue", Duration::from_secs(10), async || messages_left(&sqs, &url).await == 0).await;
    // Longer than the visibility timeout: nothing comes back.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(function.calls().len(), 1, "the failed message was deleted with its batch");
    mappings.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_error_keeps_the_batch_and_a_poison_message_ends_in_the_dead_letter_queue() {
    let config = sdk().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let (dlq_url, dlq_arn) = queue(&sqs, &unique("poison-dlq"), &[]).await;
    let redrive = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}).to_string();
    let (url, arn) = queue(
        &sqs,
        &unique("poison"),
        &[(QueueAttributeName::VisibilityTimeout, "1".into()), (QueueAttributeName::RedrivePolicy, redrive)],
    )
    .await;
    send(&sqs, &url, None, "poison").await;
    let function = FakeFunction::new(|event| {
        if bodies(event).iter().any(|b| b == "poison") {
            Err(InvokeFailure::Function { error: json!({"errorMessage": "poison"}) })
        } else {
            Ok(Value::Null)
        }
    });
    let mappings = Mappings::new(config.clone(), function.clone(), FakeAccess::new(true));
    let mut config = mapping("poison", &arn);
    config.batch_size = 1;
    mappings.put(config.clone());

    wait_for("the first failure", Duration::from_secs(10), async || {
        function.calls().iter().any(|c| bodies(c) == ["poison"])
    })
    .await;
    assert_eq!(mappings.last_processing_result(&config.uuid).as_deref(), Some("PROBLEM: Function call failed"));
    assert_eq!(messages_left(&sqs, &url).await, 1, "the failed message stays (in flight)");
    // A failing message does not hold the others back.
    send(&sqs, &url, None, "good").await;
    wait_for("the dead-letter queue", Duration::from_secs(15), async || messages_left(&sqs, &dlq_url).await == 1).await;
    wait_for("an empty source queue", Duration::from_secs(10), async || messages_left(&sqs, &url).await == 0).await;
    let calls = function.calls();
    let poison = calls.iter().filter(|c| bodies(c) == ["poison"]).count();
    let good = calls.iter().filter(|c| bodies(c) == ["good"]).count();
    assert_eq!(poison, 2, "received maxReceiveCount times, then redriven");
    assert_eq!(good, 1);
    let moved = sqs.receive_message().queue_url(&dlq_url).send().await.unwrap().messages.unwrap();
    assert_eq!(moved[0].body(), Some("poison"));
    mappings.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_fifo_group_is_never_in_flight_twice_while_groups_run_concurrently() {
    let config = sdk().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let (url, arn) = queue(&sqs, &format!("{}.fifo", unique("groups")), &fifo(10)).await;
    let groups = ["a", "b", "c", "d"];
    for i in 0..5 {
        for group in groups {
            send(&sqs, &url, Some(group), &format!("{group}{i}")).await;
        }
    }
    let function = FakeFunction::slow(Duration::from_millis(200), |_| Ok(Value::Null));
    let mappings = Mappings::new(config.clone(), function.clone(), FakeAccess::new(true));
    let mut config = mapping("groups", &arn);
    config.batch_size = 2;
    mappings.put(config);

    wait_for("every message", Duration::from_secs(20), async || {
        function.calls().iter().map(|c| records(c).len()).sum::<usize>() >= 20
    })
    .await;
    wait_for("an empty queue", Duration::from_secs(10), async || messages_left(&sqs, &url).await == 0).await;
    assert_eq!(function.max_group_concurrency(), 1, "a group was in two invocations at once");
    let mut order: HashMap<char, Vec<String>> = HashMap::new();
    for call in function.calls() {
        for body in bodies(&call) {
            order.entry(body.chars().next().unwrap()).or_default().push(body);
        }
    }
    for group in groups {
        let expected: Vec<String> = (0..5).map(|i| format!("{group}{i}")).collect();
        assert_eq!(order[&group.chars().next().unwrap()], expected, "group {group} out of order or duplicated");
    }
    // The check is not vacuous: invocations of different groups overlapped.
    assert!(function.concurrency.lock().unwrap().1 >= 2, "the pollers never ran concurrently");
    mappings.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_role_reads_nothing_and_reports_the_problem_until_allowed() {
    let config = sdk().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let (url, arn) = queue(&sqs, &unique("denied"), &[(QueueAttributeName::VisibilityTimeout, "1".into())]).await;
    send(&sqs, &url, None, "hello").await;
    let function = FakeFunction::new(|_| Ok(Value::Null));
    let access = FakeAccess::new(false);
    let mappings = Mappings::new(config.clone(), function.clone(), access.clone());
    let config = mapping("denied", &arn);
    mappings.put(config.clone());

    wait_for("the problem", Duration::from_secs(5), async || {
        mappings.last_processing_result(&config.uuid).is_some_and(|r| r.starts_with("PROBLEM"))
    })
    .await;
    let result = mappings.last_processing_result(&config.uuid).unwrap();
    assert!(result.contains("not authorized") && result.contains("sqs:ReceiveMessage"), "{result}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(function.calls().is_empty());
    let received = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    assert_eq!(
        received.attributes.unwrap()[&QueueAttributeName::ApproximateNumberOfMessages],
        "1",
        "the queue was not even received from"
    );
    assert!(access.asked.lock().unwrap().iter().all(|(role, _, resource)| role == ROLE && *resource == arn));

    // Granted later: the mapping retries by itself.
    access.allow.store(true, Ordering::SeqCst);
    wait_for("the message", Duration::from_secs(10), async || function.calls().len() == 1).await;
    wait_for("OK", Duration::from_secs(5), async || {
        mappings.last_processing_result(&config.uuid).as_deref() == Some("OK")
    })
    .await;
    mappings.shutdown();
}

// ---- DynamoDB streams ----

/// A table with a NEW_AND_OLD_IMAGES stream; returns the stream ARN.
async fn table(dynamodb: &aws_sdk_dynamodb::Client, name: &str) -> String {
    dynamodb
        .create_table()
        .table_name(name)
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().unwrap())
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .table_description
        .unwrap()
        .latest_stream_arn
        .unwrap()
}

async fn put(dynamodb: &aws_sdk_dynamodb::Client, table: &str, pk: &str, kind: &str) {
    dynamodb
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(pk.into()))
        .item("type", AttributeValue::S(kind.into()))
        .item("n", AttributeValue::N("7".into()))
        .send()
        .await
        .unwrap();
}

fn keys(event: &Value) -> Vec<String> {
    records(event).iter().map(|r| r["dynamodb"]["Keys"]["pk"]["S"].as_str().unwrap().to_string()).collect()
}

fn stream_mapping(function: &str, stream_arn: &str) -> MappingConfig {
    MappingConfig { starting_position: Some("TRIM_HORIZON".into()), ..mapping(function, stream_arn) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_batches_respect_the_batch_size_and_the_filter_drops_the_rest() {
    let config = sdk().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let name = unique("filtered");
    let stream = table(&dynamodb, &name).await;
    let kinds = ["A", "B", "A", "A", "B", "A", "A", "B", "A", "A"];
    for (i, kind) in kinds.iter().enumerate() {
        put(&dynamodb, &name, &format!("k{i}"), kind).await;
    }
    let function = FakeFunction::new(|_| Ok(Value::Null));
    let mappings = Mappings::new(config.clone(), function.clone(), FakeAccess::new(true));
    let mut config = stream_mapping("filtered", &stream);
    config.batch_size = 3;
    config.filter_patterns =
        vec![json!({"eventName": ["INSERT"], "dynamodb": {"NewImage": {"type": {"S": ["A"]}}}}).to_string()];
    mappings.put(config.clone());

    let expected: Vec<String> =
        kinds.iter().enumerate().filter(|(_, k)| **k == "A").map(|(i, _)| format!("k{i}")).collect();
    wait_for("every A", Duration::from_secs(10), async || {
        function.calls().iter().map(|c| records(c).len()).sum::<usize>() >= expected.len()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let calls = function.calls();
    assert!(
        calls.iter().all(|c| (1..=3).contains(&records(c).len())),
        "batch sizes {:?}",
        calls.iter().map(keys).collect::<Vec<_>>()
    );
    assert_eq!(calls.iter().flat_map(keys).collect::<Vec<_>>(), expected, "only the A inserts, once, in order");
    assert_eq!(mappings.last_processing_result(&config.uuid).as_deref(), Some("OK"));

    let record = &records(&calls[0])[0];
    assert_eq!(record["eventVersion"], "1.1");
    assert_eq!(record["eventSourceARN"], stream.as_str());
    assert_eq!(record["dynamodb"]["NewImage"]["n"], json!({"N": "7"}));
    assert!(record["dynamodb"]["ApproximateCreationDateTime"].is_number());
    let event: aws_lambda_events::event::dynamodb::Event = serde_json::from_value(calls[0].clone()).unwrap();
    assert_eq!(event.records[0].event_source.as_deref(), Some("aws:dynamodb"));
    mappings.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_stream_batch_is_bisected_retried_sent_to_the_on_failure_queue_and_passed() {
    let config = sdk().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let (failures_url, failures_arn) = queue(&sqs, &unique("on-failure"), &[]).await;
    let name = unique("bisected");
    let stream = table(&dynamodb, &name).await;
    for pk in ["k0", "k1", "poison", "k3", "k4", "k5"] {
        put(&dynamodb, &name, pk, "A").await;
    }
    let function = FakeFunction::new(|event| {
        if keys(event).iter().any(|k| k == "poison") {
            Err(InvokeFailure::Function { error: json!({"errorMessage": "poison"}) })
        } else {
            Ok(Value::Null)
        }
    });
    let access = FakeAccess::new(true);
    let mappings = Mappings::new(config.clone(), function.clone(), access.clone());
    let mut config = stream_mapping("bisected", &stream);
    config.batch_size = 4;
    config.bisect_batch_on_function_error = Some(true);
    config.maximum_retry_attempts = Some(1);
    config.on_failure_destination = Some(failures_arn.clone());
    mappings.put(config.clone());

    wait_for("the records after the poison", Duration::from_secs(15), async || {
        function.calls().iter().any(|c| keys(c).contains(&"k5".to_string()))
    })
    .await;
    let calls: Vec<Vec<String>> = function.calls().iter().map(keys).collect();
    assert_eq!(
        calls,
        [
            vec!["k0", "k1", "poison", "k3"],
            vec!["k0", "k1"],
            vec!["poison", "k3"],
            vec!["poison"],
            vec!["poison"],
            vec!["k3"],
            vec!["k4", "k5"],
        ]
    );
    let failure = sqs.receive_message().queue_url(&failures_url).wait_time_seconds(2).send().await.unwrap();
    let failure: Value = serde_json::from_str(failure.messages.unwrap()[0].body().unwrap()).unwrap();
    let poison_sequence = records(&function.calls()[3])[0]["dynamodb"]["SequenceNumber"].clone();
    assert_eq!(failure["requestContext"]["condition"], "RetryAttemptsExhausted");
    // Every invocation that included the record: the whole batch, its half, and two alone.
    assert_eq!(failure["requestContext"]["approximateInvokeCount"], 4);
    assert_eq!(failure["requestContext"]["functionArn"], config.function_arn.as_str());
    assert_eq!(failure["responseContext"]["functionError"], "Unhandled");
    let info = &failure["DDBStreamBatchInfo"];
    assert_eq!(info["batchSize"], 1);
    assert_eq!(info["startSequenceNumber"], poison_sequence);
    assert_eq!(info["endSequenceNumber"], poison_sequence);
    assert_eq!(info["streamArn"], stream.as_str());
    assert!(info["shardId"].as_str().unwrap().starts_with("shardId-"));
    assert!(
        access
            .asked
            .lock()
            .unwrap()
            .iter()
            .any(|(_, action, resource)| action == "sqs:SendMessage" && *resource == failures_arn),
        "the role's right to the destination was checked"
    );
    assert!(
        access
            .asked
            .lock()
            .unwrap()
            .iter()
            .any(|(_, action, resource)| action == "dynamodb:GetRecords" && *resource == stream),
        "the role's right to the stream was checked"
    );
    mappings.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_stream_failures_checkpoint_before_the_lowest_failed_record() {
    let config = sdk().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let name = unique("partial-stream");
    let stream = table(&dynamodb, &name).await;
    for pk in ["k0", "k1", "k2", "k3"] {
        put(&dynamodb, &name, pk, "A").await;
    }
    let failed_once = Mutex::new(false);
    let function = FakeFunction::new(move |event| {
        let mut failed = failed_once.lock().unwrap();
        let k1 = records(event).into_iter().find(|r| r["dynamodb"]["Keys"]["pk"]["S"] == "k1");
        match k1 {
            Some(record) if !*failed => {
                *failed = true;
                Ok(json!({"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]}))
            }
            _ => Ok(json!({})),
        }
    });
    let mappings = Mappings::new(config.clone(), function.clone(), FakeAccess::new(true));
    let mut config = stream_mapping("partial-stream", &stream);
    config.function_response_types = vec!["ReportBatchItemFailures".into()];
    mappings.put(config);

    wait_for("the retry", Duration::from_secs(10), async || function.calls().len() >= 2).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let calls: Vec<Vec<String>> = function.calls().iter().map(keys).collect();
    assert_eq!(calls, [vec!["k0", "k1", "k2", "k3"], vec!["k1", "k2", "k3"]]);
    mappings.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_stream_mapping_pauses_and_resumes_where_it_was() {
    let config = sdk().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let name = unique("paused");
    let stream = table(&dynamodb, &name).await;
    put(&dynamodb, &name, "k0", "A").await;
    let function = FakeFunction::new(|_| Ok(Value::Null));
    let mappings = Mappings::new(config.clone(), function.clone(), FakeAccess::new(true));
    let mut config = stream_mapping("paused", &stream);
    mappings.put(config.clone());
    wait_for("k0", Duration::from_secs(10), async || function.calls().len() == 1).await;

    config.enabled = false;
    mappings.put(config.clone());
    put(&dynamodb, &name, "k1", "A").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(function.calls().len(), 1, "a disabled mapping does not poll");

    // Re-enabled with another batch size: the position is kept (TRIM_HORIZON would replay k0).
    config.enabled = true;
    config.batch_size = 5;
    mappings.put(config.clone());
    wait_for("k1", Duration::from_secs(10), async || function.calls().len() == 2).await;
    assert_eq!(keys(&function.calls()[1]), ["k1"]);

    mappings.remove(&config.uuid);
    assert_eq!(mappings.last_processing_result(&config.uuid), None);
    put(&dynamodb, &name, "k2", "A").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(function.calls().len(), 2, "a removed mapping does not poll");
}
