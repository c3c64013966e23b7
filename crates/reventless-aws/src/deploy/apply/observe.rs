//! Reading resources back in the plan's terms (what a diff compares, drift included).
use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Clients, DeployError, PUBLIC_URL_STATEMENTS, aws, code};
use crate::deploy::plan::{Resource, ResourceKind};

impl Clients {
    /// The settings of an existing resource in the plan's terms, or None.
    pub async fn observe(&self, resource: &Resource) -> Result<Option<Value>, DeployError> {
        let name = resource.name.as_str();
        self.count();
        match resource.kind {
            ResourceKind::Table => {
                let table = match self.dynamodb.describe_table().table_name(name).send().await {
                    Ok(output) => output,
                    Err(error) if code(&error) == Some("ResourceNotFoundException") => return Ok(None),
                    Err(error) => return Err(aws("DescribeTable", name)(error)),
                };
                let Some(table) = table.table() else { return Ok(None) };
                let keys: Vec<&str> = table.key_schema().iter().map(|k| k.attribute_name()).collect();
                let layout = match keys.as_slice() {
                    ["id", "position"] => "events",
                    ["t", "id"] => "rows",
                    ["id"] => "lock",
                    _ => "unknown",
                };
                let stream = table.stream_specification().is_some_and(|s| s.stream_enabled());
                let mut observed = Self::table_settings(table);
                observed["layout"] = json!(layout);
                observed["stream"] = json!(stream);
                // One more call, only for tables whose recovery is planned.
                if resource.spec.get("pointInTimeRecovery").is_some() {
                    observed["pointInTimeRecovery"] = json!(self.point_in_time_recovery(name).await?);
                }
                Ok(Some(observed))
            }
            ResourceKind::Queue => {
                let url = match self.sqs.get_queue_url().queue_name(name).send().await {
                    Ok(output) => output.queue_url().unwrap_or_default().to_string(),
                    Err(error) if code(&error).is_some_and(|c| c.contains("NonExistentQueue")) => return Ok(None),
                    Err(error) => return Err(aws("GetQueueUrl", name)(error)),
                };
                self.count();
                let attributes = self
                    .sqs
                    .get_queue_attributes()
                    .queue_url(&url)
                    .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
                    .send()
                    .await
                    .map_err(aws("GetQueueAttributes", name))?;
                let map = attributes.attributes().cloned().unwrap_or_default();
                let get = |key: aws_sdk_sqs::types::QueueAttributeName| map.get(&key).cloned();
                let fifo = get(aws_sdk_sqs::types::QueueAttributeName::FifoQueue).is_some_and(|v| v == "true");
                let visibility: i64 = get(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let redrive: Option<Value> = get(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
                    .and_then(|text| serde_json::from_str(&text).ok());
                let target = redrive
                    .as_ref()
                    .and_then(|r| r.get("deadLetterTargetArn"))
                    .and_then(Value::as_str)
                    .and_then(|arn| arn.rsplit(':').next())
                    .map(str::to_string);
                let receives = redrive
                    .as_ref()
                    .and_then(|r| r.get("maxReceiveCount"))
                    .and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())));
                let mut observed = json!({"fifo": fifo, "visibilityTimeout": visibility, "redriveTo": target, "maxReceiveCount": receives});
                // Only queues that plan a policy (the tasks queue S3 notifies).
                if resource.spec.get("policy").is_some() {
                    observed["policy"] = get(aws_sdk_sqs::types::QueueAttributeName::Policy)
                        .and_then(|text| serde_json::from_str(&text).ok())
                        .unwrap_or(Value::Null);
                }
                if fifo {
                    observed["deduplicationScope"] =
                        json!(get(aws_sdk_sqs::types::QueueAttributeName::DeduplicationScope));
                    observed["fifoThroughputLimit"] =
                        json!(get(aws_sdk_sqs::types::QueueAttributeName::FifoThroughputLimit));
                }
                Ok(Some(observed))
            }
            ResourceKind::LogGroup => {
                let groups = self
                    .logs
                    .describe_log_groups()
                    .log_group_name_prefix(name)
                    .send()
                    .await
                    .map_err(aws("DescribeLogGroups", name))?;
                Ok(groups
                    .log_groups()
                    .iter()
                    .find(|g| g.log_group_name() == Some(name))
                    .map(|g| json!({"retentionDays": g.retention_in_days()})))
            }
            ResourceKind::Role => {
                let role = match self.iam.get_role().role_name(name).send().await {
                    Ok(output) => output,
                    Err(error) if code(&error) == Some("NoSuchEntity") => return Ok(None),
                    Err(error) => return Err(aws("GetRole", name)(error)),
                };
                let trust = role
                    .role()
                    .and_then(|r| r.assume_role_policy_document())
                    .map(decode_policy)
                    .and_then(|doc| doc.pointer("/Statement/0/Principal/Service").cloned())
                    .unwrap_or(Value::Null);
                self.count();
                let policy = match self.iam.get_role_policy().role_name(name).policy_name("reventless").send().await {
                    Ok(output) => decode_policy(output.policy_document()),
                    Err(error) if code(&error) == Some("NoSuchEntity") => Value::Null,
                    Err(error) => return Err(aws("GetRolePolicy", name)(error)),
                };
                Ok(Some(json!({"trust": trust, "policy": policy})))
            }
            ResourceKind::Function => {
                let function = match self.lambda.get_function().function_name(name).send().await {
                    Ok(output) => output,
                    Err(error) if code(&error) == Some("ResourceNotFoundException") => return Ok(None),
                    Err(error) => return Err(aws("GetFunction", name)(error)),
                };
                let Some(configuration) = function.configuration() else { return Ok(None) };
                let environment: BTreeMap<String, String> = configuration
                    .environment()
                    .and_then(|e| e.variables())
                    .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                let role = configuration.role().and_then(|arn| arn.rsplit('/').next()).unwrap_or_default();
                let reserved = function.concurrency().and_then(|c| c.reserved_concurrent_executions()).map(i64::from);
                let layers: Vec<String> =
                    configuration.layers().iter().filter_map(|l| l.arn().map(str::to_string)).collect();
                Ok(Some(json!({
                    "role": role,
                    "memorySize": configuration.memory_size(),
                    "timeout": configuration.timeout(),
                    "ephemeralStorageMb": configuration.ephemeral_storage().map(|e| e.size()),
                    "reservedConcurrency": reserved,
                    "architecture": configuration.architectures().first().map(|a| a.as_str().to_string()),
                    "layers": layers,
                    "environment": environment,
                    "codeSha256": configuration.code_sha256(),
                })))
            }
            ResourceKind::EventSourceMapping => {
                let Some(mapping) = self.find_mapping(resource).await? else { return Ok(None) };
                // Everything as AWS reports it: a mapping repointed at another
                // queue or table, or without partial batch responses, is drift.
                let function = mapping.function_arn().and_then(|arn| arn.split("function:").nth(1));
                let function = function.and_then(|rest| rest.split(':').next());
                let response_types: Vec<&str> = mapping.function_response_types().iter().map(|t| t.as_str()).collect();
                let mut observed = json!({
                    "function": function,
                    "batchSize": mapping.batch_size(),
                    "functionResponseTypes": response_types,
                });
                if let Some((key, name)) = mapping.event_source_arn().and_then(mapping_source) {
                    observed[key] = json!(name);
                }
                if resource.spec.get("table").is_some() {
                    observed["bisectOnError"] = json!(mapping.bisect_batch_on_function_error());
                    observed["maximumRetryAttempts"] = json!(mapping.maximum_retry_attempts());
                    let on_failure = mapping
                        .destination_config()
                        .and_then(|d| d.on_failure())
                        .and_then(|f| f.destination())
                        .and_then(|arn| arn.rsplit(':').next());
                    observed["onFailure"] = json!(on_failure);
                    let pattern = mapping.filter_criteria().and_then(|f| f.filters().first()).and_then(|f| f.pattern());
                    observed["logs"] = pattern.map(|p| filtered_values(p, "log")).unwrap_or(Value::Null);
                    observed["types"] = pattern.map(|p| filtered_values(p, "type")).unwrap_or(Value::Null);
                }
                Ok(Some(observed))
            }
            ResourceKind::FunctionUrl => match self.lambda.get_function_url_config().function_name(name).send().await {
                Ok(output) => {
                    let public = self.public_url_statements(name).await?.len() == PUBLIC_URL_STATEMENTS.len();
                    let mut observed = json!({"authType": output.auth_type().as_str(), "public": public});
                    if resource.spec.get("cors").is_some() {
                        observed["cors"] = output
                            .cors()
                            .map(|cors| {
                                json!({"allowOrigins": cors.allow_origins(), "allowMethods": cors.allow_methods(),
                                "allowHeaders": cors.allow_headers(), "exposeHeaders": cors.expose_headers(),
                                "maxAge": cors.max_age()})
                            })
                            .unwrap_or(Value::Null);
                    }
                    Ok(Some(observed))
                }
                Err(error) if code(&error) == Some("ResourceNotFoundException") => Ok(None),
                Err(error) => Err(aws("GetFunctionUrlConfig", name)(error)),
            },
            ResourceKind::Parameter => match self.ssm.get_parameter().name(name).send().await {
                Ok(output) => Ok(Some(json!({"value": output.parameter().and_then(|p| p.value())}))),
                Err(error) if code(&error) == Some("ParameterNotFound") => Ok(None),
                Err(error) => Err(aws("GetParameter", name)(error)),
            },
            ResourceKind::WebSocketApi => self.observe_websocket(resource).await,
            ResourceKind::Bucket => self.observe_bucket(name).await,
            ResourceKind::Schedule => match self.scheduler.get_schedule().name(name).send().await {
                Ok(output) => {
                    let target = output.target();
                    let last = |arn: Option<&str>| arn.and_then(|a| a.rsplit([':', '/']).next()).map(str::to_string);
                    Ok(Some(json!({
                        "function": last(target.map(|t| t.arn())),
                        "expression": output.schedule_expression(),
                        "role": last(target.map(|t| t.role_arn())),
                        "input": target.and_then(|t| t.input()).and_then(|i| serde_json::from_str::<Value>(i).ok()),
                    })))
                }
                Err(error) if code(&error) == Some("ResourceNotFoundException") => Ok(None),
                Err(error) => Err(aws("GetSchedule", name)(error)),
            },
        }
    }

    /// Which of the public-URL statements the function's resource policy has
    /// (read back by statement id; no policy at all is none).
    pub(super) async fn public_url_statements(&self, function: &str) -> Result<Vec<&'static str>, DeployError> {
        self.count();
        let policy = match self.lambda.get_policy().function_name(function).send().await {
            Ok(output) => output.policy().map(decode_policy).unwrap_or(Value::Null),
            Err(error) if code(&error) == Some("ResourceNotFoundException") => return Ok(Vec::new()),
            Err(error) => return Err(aws("GetPolicy", function)(error)),
        };
        let statements = policy.get("Statement").and_then(Value::as_array).cloned().unwrap_or_default();
        Ok(PUBLIC_URL_STATEMENTS
            .into_iter()
            .filter(|sid| statements.iter().any(|s| s["Sid"] == *sid && s["Effect"] == "Allow"))
            .collect())
    }

    pub(super) async fn source_arn(&self, resource: &Resource) -> Result<String, DeployError> {
        self.count();
        if let Some(queue) = resource.spec.get("queue").and_then(Value::as_str) {
            let url = self.sqs.get_queue_url().queue_name(queue).send().await.map_err(aws("GetQueueUrl", queue))?;
            self.count();
            let attributes = self
                .sqs
                .get_queue_attributes()
                .queue_url(url.queue_url().unwrap_or_default())
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .send()
                .await
                .map_err(aws("GetQueueAttributes", queue))?;
            return attributes
                .attributes()
                .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
                .cloned()
                .ok_or_else(|| DeployError::Refused(format!("queue {queue} has no ARN")));
        }
        let table = resource.spec["table"].as_str().unwrap_or_default();
        let described =
            self.dynamodb.describe_table().table_name(table).send().await.map_err(aws("DescribeTable", table))?;
        described
            .table()
            .and_then(|t| t.latest_stream_arn())
            .map(str::to_string)
            .ok_or_else(|| DeployError::Refused(format!("table {table} has no stream")))
    }

    pub(super) async fn find_mapping(
        &self,
        resource: &Resource,
    ) -> Result<Option<aws_sdk_lambda::types::EventSourceMappingConfiguration>, DeployError> {
        let function = resource.spec["function"].as_str().unwrap_or_default();
        self.count();
        let mappings = match self.lambda.list_event_source_mappings().function_name(function).send().await {
            Ok(output) => output,
            Err(error) if code(&error) == Some("ResourceNotFoundException") => return Ok(None),
            Err(error) => return Err(aws("ListEventSourceMappings", function)(error)),
        };
        let queue_source = resource.spec.get("queue").is_some();
        let of_kind: Vec<&aws_sdk_lambda::types::EventSourceMappingConfiguration> = mappings
            .event_source_mappings()
            .iter()
            .filter(|m| m.event_source_arn().is_some_and(|arn| arn.starts_with("arn:aws:sqs") == queue_source))
            .collect();
        // The one on the planned queue or table, else another of its kind (drift).
        let planned = |m: &aws_sdk_lambda::types::EventSourceMappingConfiguration| {
            let source = m.event_source_arn().and_then(mapping_source);
            source.is_some_and(|(key, name)| resource.spec.get(key).and_then(Value::as_str) == Some(name.as_str()))
        };
        let found = of_kind.iter().find(|m| planned(m)).or(of_kind.first());
        Ok(found.map(|m| (*m).clone()))
    }
}

/// The spec key and name of an event source: `("queue", NAME)` for
/// `arn:aws:sqs:…:NAME`, `("table", NAME)` for `arn:aws:dynamodb:…:table/NAME/stream/…`.
fn mapping_source(arn: &str) -> Option<(&'static str, String)> {
    if arn.starts_with("arn:aws:sqs:") {
        return arn.rsplit(':').next().map(|name| ("queue", name.to_string()));
    }
    let table = arn.split(":table/").nth(1)?.split('/').next()?;
    Some(("table", table.to_string()))
}

/// The values of `attribute` a stream filter passes (what [`stream_filter`](super::ensure::stream_filter) wrote).
fn filtered_values(pattern: &str, attribute: &str) -> Value {
    let parsed: Value = serde_json::from_str(pattern).unwrap_or(Value::Null);
    parsed.pointer(&format!("/dynamodb/NewImage/{attribute}/S")).cloned().unwrap_or(Value::Null)
}

/// IAM returns policy documents URL-encoded.
fn decode_policy(document: &str) -> Value {
    let decoded = if document.starts_with('%') { percent_decode(document) } else { document.to_string() };
    serde_json::from_str(&decoded).unwrap_or(Value::String(decoded))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && index + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&text[index + 1..index + 3], 16)
        {
            out.push(byte);
            index += 3;
            continue;
        }
        out.push(if bytes[index] == b'+' { b' ' } else { bytes[index] });
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
