//! Running the shop's real Lambda binaries against the emulator: tables and
//! queues per test, events captured from the emulator in Lambda's format.
#![allow(dead_code)] // each test file uses part of it
use std::time::Duration;

use aws_sdk_dynamodbstreams::types::AttributeValue;
use reventless_aws::emulator::Emulator;
use reventless_aws::lambda::FunctionConfig;
use reventless_aws::runtime_api::{Function, RuntimeApi};
use reventless_aws::{StoreNames, provision};
use serde_json::{Value, json};

pub const LIMIT: Duration = Duration::from_secs(30);

/// One plugin's tables and queue on the emulator.
pub struct Deployment {
    pub emulator: &'static Emulator,
    pub config: reventless_aws::SdkConfig,
    pub plugin: String,
    pub names: StoreNames,
    pub queue_url: String,
}

impl Deployment {
    pub async fn new(plugin: &str) -> Self {
        let emulator = Emulator::shared().expect("the AWS emulator (moto) must run for these tests");
        let config = emulator.sdk_config().await;
        let names = StoreNames::unique(plugin);
        let topic = reventless_core::plugin::command_topic(plugin);
        let urls = provision::create_stores(&config, &names, &[&topic]).await.unwrap();
        let queue_url = urls[&topic].clone();
        Self { emulator, config, plugin: plugin.to_string(), names, queue_url }
    }

    /// The environment of one of the plugin's functions.
    pub fn env(&self, role: &str) -> Vec<(&'static str, String)> {
        self.env_of(&self.function_config(role))
    }

    /// What the deployer would tell the function `role` of this plugin.
    pub fn function_config(&self, role: &str) -> FunctionConfig {
        FunctionConfig::new(role, &self.plugin, self.names.clone())
    }

    /// The environment of a function that registers the plugin (a heartbeat):
    /// `(registry table, API function name)`.
    pub fn env_registering(&self, role: &str, registry: Option<(&str, &str)>) -> Vec<(&'static str, String)> {
        let config = FunctionConfig {
            registry: registry.map(|(table, _)| table.to_string()),
            api_function: registry.map(|(_, function)| function.to_string()),
            ..self.function_config(role)
        };
        self.env_of(&config)
    }

    /// The environment of a function configured with `config`, on the emulator.
    pub fn env_of(&self, config: &FunctionConfig) -> Vec<(&'static str, String)> {
        vec![
            ("REVENTLESS_CONFIG", serde_json::to_string(config).unwrap()),
            ("AWS_ENDPOINT_URL", self.emulator.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ]
    }

    /// Starts the function `role` of `bootstrap` on a fresh Runtime API.
    pub async fn function(&self, bootstrap: &str, role: &str) -> (RuntimeApi, Function) {
        self.function_with(bootstrap, &self.function_config(role)).await
    }

    /// Starts `bootstrap` configured with `config` on a fresh Runtime API.
    pub async fn function_with(&self, bootstrap: &str, config: &FunctionConfig) -> (RuntimeApi, Function) {
        let api = RuntimeApi::start().await.unwrap();
        let function = api.spawn(std::path::Path::new(bootstrap), &self.env_of(config)).unwrap();
        (api, function)
    }

    pub fn stores(&self) -> reventless_core::store::Stores {
        reventless_aws::aws_stores(&self.config, &self.names)
    }

    /// Everything the events table's stream holds, as one Lambda stream event.
    pub async fn stream_event(&self) -> Value {
        let dynamodb = aws_sdk_dynamodb::Client::new(&self.config);
        let table = dynamodb.describe_table().table_name(&self.names.events_table).send().await.unwrap();
        let arn = table.table().and_then(|t| t.latest_stream_arn()).unwrap().to_string();
        let streams = aws_sdk_dynamodbstreams::Client::new(&self.config);
        let description = streams.describe_stream().stream_arn(&arn).send().await.unwrap();
        let mut records = Vec::new();
        for shard in description.stream_description().map(|d| d.shards()).unwrap_or_default() {
            let iterator = streams
                .get_shard_iterator()
                .stream_arn(&arn)
                .shard_id(shard.shard_id().unwrap())
                .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
                .send()
                .await
                .unwrap();
            let output = streams.get_records().shard_iterator(iterator.shard_iterator().unwrap()).send().await.unwrap();
            for record in output.records() {
                let change = record.dynamodb().unwrap();
                let image = change.new_image().map(|image| {
                    image.iter().map(|(k, v)| (k.clone(), stream_value(v))).collect::<serde_json::Map<_, _>>()
                });
                records.push(json!({
                    "eventID": record.event_id(),
                    "eventName": record.event_name().map(|n| n.as_str()),
                    "eventVersion": "1.1",
                    "eventSource": "aws:dynamodb",
                    "awsRegion": "us-east-1",
                    "eventSourceARN": arn,
                    "dynamodb": {
                        "SequenceNumber": change.sequence_number(),
                        "NewImage": image,
                        "StreamViewType": "NEW_IMAGE",
                    },
                }));
            }
        }
        json!({ "Records": records })
    }

    /// Receives every message of the command queue (kept in flight) as one Lambda SQS event.
    pub async fn sqs_event(&self, expected: usize) -> Value {
        self.sqs_event_from(&self.queue_url, expected).await
    }

    /// As [`Deployment::sqs_event`], from the queue at `queue_url`.
    pub async fn sqs_event_from(&self, queue_url: &str, expected: usize) -> Value {
        let sqs = aws_sdk_sqs::Client::new(&self.config);
        let mut records = Vec::new();
        for _ in 0..20 {
            let output = sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(120)
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                .send()
                .await
                .unwrap();
            for message in output.messages() {
                let attributes: serde_json::Map<String, Value> = message
                    .attributes()
                    .map(|a| a.iter().map(|(k, v)| (k.as_str().to_string(), Value::String(v.clone()))).collect())
                    .unwrap_or_default();
                records.push(json!({
                    "messageId": message.message_id(),
                    "receiptHandle": message.receipt_handle(),
                    "body": message.body(),
                    "attributes": attributes,
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:commands.fifo",
                    "awsRegion": "us-east-1",
                }));
            }
            if records.len() >= expected {
                break;
            }
        }
        assert_eq!(records.len(), expected, "messages on the queue");
        // SQS hands a Lambda batch in queue order; moto's receives and
        // sequence numbers do not follow it, so order by send time, then by
        // deduplication id (the tests number their messages).
        let key = |r: &Value, name: &str| r["attributes"][name].as_str().unwrap_or("0").parse::<u128>().unwrap_or(0);
        records.sort_by_key(|r| (key(r, "SentTimestamp"), key(r, "MessageDeduplicationId")));
        json!({ "Records": records })
    }
}

/// An attribute value in the stream event's JSON form.
fn stream_value(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(text) => json!({ "S": text }),
        AttributeValue::N(number) => json!({ "N": number }),
        AttributeValue::Bool(flag) => json!({ "BOOL": flag }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::L(items) => json!({ "L": items.iter().map(stream_value).collect::<Vec<_>>() }),
        AttributeValue::M(map) => {
            json!({ "M": map.iter().map(|(k, v)| (k.clone(), stream_value(v))).collect::<serde_json::Map<_, _>>() })
        }
        other => json!({ "S": format!("{other:?}") }),
    }
}

/// An HTTP API (payload 2.0) request to the GraphQL endpoint.
pub fn http_request(method: &str, path: &str, body: Option<&str>, claims: Option<Value>) -> Value {
    let mut request = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": { "content-type": "application/json" },
        "requestContext": {
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1" },
            "requestId": "test",
            "stage": "$default",
        },
        "isBase64Encoded": false,
    });
    if let Some(body) = body {
        request["body"] = Value::String(body.to_string());
    }
    if let Some(claims) = claims {
        request["requestContext"]["authorizer"] = json!({ "jwt": { "claims": claims, "scopes": [] } });
    }
    request
}

/// The JSON body of an HTTP response.
pub fn body(response: &Value) -> Value {
    serde_json::from_str(response["body"].as_str().unwrap()).unwrap()
}

pub fn graphql(query: &str) -> String {
    json!({ "query": query }).to_string()
}
