//! Reading what exists, diffing it with the plan, and applying the diff with
//! idempotent `ensure_*` calls (at most 5 in flight, in dependency waves).
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, Tag as DynamoTag,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::plan::{
    PUBLIC_URL_INVOKE_STATEMENT, PUBLIC_URL_STATEMENT, Plan, Resource, ResourceKind, TAG_PLUGIN, TAG_STAGE,
};
use crate::package::Package;

/// The statements that make a function URL public (both, or it is not).
const PUBLIC_URL_STATEMENTS: [&str; 2] = [PUBLIC_URL_STATEMENT, PUBLIC_URL_INVOKE_STATEMENT];

/// Calls in flight at once.
pub const MAX_IN_FLIGHT: usize = 5;

/// The service clients of a deploy (made once).
#[derive(Clone)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub iam: aws_sdk_iam::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub sts: aws_sdk_sts::Client,
    pub scheduler: aws_sdk_scheduler::Client,
    /// Every API call made (for the summary).
    pub calls: Arc<std::sync::atomic::AtomicUsize>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Serialize)]
pub enum DeployError {
    #[error("{call} {name}: {message}")]
    Aws { call: String, name: String, message: String },
    #[error("{0}")]
    Refused(String),
    #[error("stage `{stage}` is being deployed by {owner} since {since} (lock in {table}); try again later")]
    Locked { stage: String, owner: String, since: u64, table: String },
}

fn aws<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug + Send + Sync + 'static>(
    call: &str,
    name: &str,
) -> impl FnOnce(aws_smithy_runtime_api_error::SdkError<E, R>) -> DeployError {
    let (call, name) = (call.to_string(), name.to_string());
    move |error| {
        let message = match error.code() {
            Some(code) => format!("{code}: {}", error.message().unwrap_or_default()),
            None => aws_sdk_dynamodb::error::DisplayErrorContext(&error).to_string(),
        };
        DeployError::Aws { call, name, message }
    }
}

/// The SDK's error type (the same across service crates).
mod aws_smithy_runtime_api_error {
    pub use aws_sdk_dynamodb::error::SdkError;
}

fn code<E: ProvideErrorMetadata, R>(error: &aws_smithy_runtime_api_error::SdkError<E, R>) -> Option<&str> {
    error.code()
}

impl Clients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            lambda: aws_sdk_lambda::Client::new(sdk),
            iam: aws_sdk_iam::Client::new(sdk),
            logs: aws_sdk_cloudwatchlogs::Client::new(sdk),
            ssm: aws_sdk_ssm::Client::new(sdk),
            sts: aws_sdk_sts::Client::new(sdk),
            scheduler: aws_sdk_scheduler::Client::new(sdk),
            calls: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        }
    }

    fn count(&self) {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn call_count(&self) -> usize {
        self.calls.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The account the credentials belong to.
    pub async fn account(&self) -> Result<String, DeployError> {
        self.count();
        let identity = self.sts.get_caller_identity().send().await.map_err(aws("GetCallerIdentity", "-"))?;
        identity
            .account()
            .map(str::to_string)
            .ok_or_else(|| DeployError::Refused("no account in the caller identity".into()))
    }

    // ------------------------------------------------------------ observe

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
                Ok(Some(json!({"layout": layout, "stream": stream})))
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
                Ok(Some(
                    json!({"fifo": fifo, "visibilityTimeout": visibility, "redriveTo": target, "maxReceiveCount": receives}),
                ))
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
                                "allowHeaders": cors.allow_headers(), "maxAge": cors.max_age()})
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
            ResourceKind::Schedule => match self.scheduler.get_schedule().name(name).send().await {
                Ok(output) => {
                    let target = output.target();
                    let last = |arn: Option<&str>| arn.and_then(|a| a.rsplit([':', '/']).next()).map(str::to_string);
                    Ok(Some(json!({
                        "function": last(target.map(|t| t.arn())),
                        "expression": output.schedule_expression(),
                        "role": last(target.map(|t| t.role_arn())),
                    })))
                }
                Err(error) if code(&error) == Some("ResourceNotFoundException") => Ok(None),
                Err(error) => Err(aws("GetSchedule", name)(error)),
            },
        }
    }

    /// Which of the public-URL statements the function's resource policy has
    /// (read back by statement id; no policy at all is none).
    async fn public_url_statements(&self, function: &str) -> Result<Vec<&'static str>, DeployError> {
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

    /// Grants (or withdraws) invoking the function through its URL by anyone:
    /// AWS answers a URL with `AuthType NONE` only when its resource policy allows it.
    async fn ensure_public_url(&self, function: &str, public: bool) -> Result<(), DeployError> {
        use aws_sdk_lambda::types::FunctionUrlAuthType;
        let present = self.public_url_statements(function).await?;
        for sid in PUBLIC_URL_STATEMENTS {
            self.count();
            if public && !present.contains(&sid) {
                let add = self.lambda.add_permission().function_name(function).statement_id(sid).principal("*");
                let add = if sid == PUBLIC_URL_STATEMENT {
                    add.action("lambda:InvokeFunctionUrl").function_url_auth_type(FunctionUrlAuthType::None)
                } else {
                    add.action("lambda:InvokeFunction").invoked_via_function_url(true)
                };
                match add.send().await {
                    // Added meanwhile by a concurrent deploy: what we wanted.
                    Err(error) if code(&error) == Some("ResourceConflictException") => {}
                    other => {
                        other.map_err(aws("AddPermission", function))?;
                    }
                }
            } else if !public && present.contains(&sid) {
                match self.lambda.remove_permission().function_name(function).statement_id(sid).send().await {
                    Err(error) if code(&error) != Some("ResourceNotFoundException") => {
                        return Err(aws("RemovePermission", function)(error));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    async fn source_arn(&self, resource: &Resource) -> Result<String, DeployError> {
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

    async fn find_mapping(
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

    // ------------------------------------------------------------ ensure

    /// Creates or updates one resource to match the plan.
    pub async fn ensure(
        &self,
        plan: &Plan,
        resource: &Resource,
        code: Option<&CodeZip>,
        exists: bool,
    ) -> Result<(), DeployError> {
        let name = resource.name.as_str();
        self.count();
        match resource.kind {
            ResourceKind::Table => {
                if !exists {
                    let layout = resource.spec["layout"].as_str().unwrap_or_default();
                    self.create_table(name, layout).await?;
                }
                let arn = format!("arn:aws:dynamodb:{}:{}:table/{name}", plan.region, plan.account);
                let tags: Vec<DynamoTag> = resource
                    .tags
                    .iter()
                    .filter_map(|(k, v)| DynamoTag::builder().key(k).value(v).build().ok())
                    .collect();
                self.count();
                self.dynamodb
                    .tag_resource()
                    .resource_arn(arn)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map_err(aws("TagResource", name))?;
            }
            ResourceKind::Queue => {
                let mut attributes = vec![(
                    aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
                    resource.spec["visibilityTimeout"].to_string(),
                )];
                if let Some(dlq) = resource.spec["redriveTo"].as_str() {
                    let arn = format!("arn:aws:sqs:{}:{}:{dlq}", plan.region, plan.account);
                    let receives = resource.spec["maxReceiveCount"].as_i64().unwrap_or(5);
                    let policy = json!({"deadLetterTargetArn": arn, "maxReceiveCount": receives}).to_string();
                    attributes.push((aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy, policy));
                }
                if exists {
                    let url =
                        self.sqs.get_queue_url().queue_name(name).send().await.map_err(aws("GetQueueUrl", name))?;
                    self.count();
                    self.sqs
                        .set_queue_attributes()
                        .queue_url(url.queue_url().unwrap_or_default())
                        .set_attributes(Some(attributes.into_iter().collect()))
                        .send()
                        .await
                        .map_err(aws("SetQueueAttributes", name))?;
                } else {
                    let mut create = self.sqs.create_queue().queue_name(name);
                    if resource.spec["fifo"].as_bool().unwrap_or(true) {
                        create = create.attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true");
                    }
                    for (key, value) in attributes {
                        create = create.attributes(key, value);
                    }
                    for (key, value) in &resource.tags {
                        create = create.tags(key, value);
                    }
                    create.send().await.map_err(aws("CreateQueue", name))?;
                }
            }
            ResourceKind::LogGroup => {
                if !exists {
                    let mut create = self.logs.create_log_group().log_group_name(name);
                    for (key, value) in &resource.tags {
                        create = create.tags(key, value);
                    }
                    create.send().await.map_err(aws("CreateLogGroup", name))?;
                    self.count();
                }
                let days = i32::try_from(resource.spec["retentionDays"].as_i64().unwrap_or(7)).unwrap_or(7);
                self.logs
                    .put_retention_policy()
                    .log_group_name(name)
                    .retention_in_days(days)
                    .send()
                    .await
                    .map_err(aws("PutRetentionPolicy", name))?;
            }
            ResourceKind::Role => {
                if !exists {
                    let service = resource.spec["trust"].as_str().unwrap_or("lambda.amazonaws.com");
                    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                        "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]});
                    let tags: Vec<aws_sdk_iam::types::Tag> = resource
                        .tags
                        .iter()
                        .filter_map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().ok())
                        .collect();
                    self.iam
                        .create_role()
                        .role_name(name)
                        .path(format!("/reventless/{}/{}/", plan.project, plan.stage))
                        .assume_role_policy_document(trust.to_string())
                        .set_tags(Some(tags))
                        .send()
                        .await
                        .map_err(aws("CreateRole", name))?;
                    self.count();
                }
                self.iam
                    .put_role_policy()
                    .role_name(name)
                    .policy_name("reventless")
                    .policy_document(resource.spec["policy"].to_string())
                    .send()
                    .await
                    .map_err(aws("PutRolePolicy", name))?;
            }
            ResourceKind::Function => self.ensure_function(plan, resource, code, exists).await?,
            ResourceKind::EventSourceMapping => {
                let function = resource.spec["function"].as_str().unwrap_or_default();
                let batch = i32::try_from(resource.spec["batchSize"].as_i64().unwrap_or(10)).unwrap_or(10);
                let source = self.source_arn(resource).await?;
                let mut found = self.find_mapping(resource).await?;
                // A mapping's source cannot be changed: one on another queue
                // or table is replaced.
                if let Some(stray) = found.take_if(|m| m.event_source_arn() != Some(source.as_str())) {
                    self.count();
                    let uuid = stray.uuid().unwrap_or_default();
                    match self.lambda.delete_event_source_mapping().uuid(uuid).send().await {
                        Err(error) if !code_is(&error, "ResourceNotFoundException") => {
                            return Err(aws("DeleteEventSourceMapping", name)(error));
                        }
                        _ => {}
                    }
                }
                if let Some(mapping) = found {
                    self.count();
                    let mut update = self
                        .lambda
                        .update_event_source_mapping()
                        .uuid(mapping.uuid().unwrap_or_default())
                        .batch_size(batch)
                        .set_function_response_types(Some(response_types(resource)));
                    if resource.spec.get("table").is_some() {
                        update =
                            update
                                .bisect_batch_on_function_error(
                                    resource.spec["bisectOnError"].as_bool().unwrap_or(true),
                                )
                                .maximum_retry_attempts(
                                    resource.spec["maximumRetryAttempts"].as_i64().unwrap_or(10) as i32
                                );
                    }
                    let update = update
                        .set_destination_config(failure_destination(plan, resource))
                        .set_filter_criteria(stream_filter(resource));
                    update.send().await.map_err(aws("UpdateEventSourceMapping", name))?;
                } else {
                    self.count();
                    let mut create = self
                        .lambda
                        .create_event_source_mapping()
                        .function_name(function)
                        .event_source_arn(source)
                        .batch_size(batch)
                        .set_function_response_types(Some(response_types(resource)));
                    if resource.spec.get("table").is_some() {
                        create =
                            create
                                .starting_position(aws_sdk_lambda::types::EventSourcePosition::TrimHorizon)
                                .bisect_batch_on_function_error(
                                    resource.spec["bisectOnError"].as_bool().unwrap_or(true),
                                )
                                .maximum_retry_attempts(
                                    resource.spec["maximumRetryAttempts"].as_i64().unwrap_or(10) as i32
                                );
                    }
                    let create = create
                        .set_destination_config(failure_destination(plan, resource))
                        .set_filter_criteria(stream_filter(resource));
                    create.send().await.map_err(aws("CreateEventSourceMapping", name))?;
                }
            }
            ResourceKind::FunctionUrl => {
                let auth = match resource.spec["authType"].as_str() {
                    Some("NONE") => aws_sdk_lambda::types::FunctionUrlAuthType::None,
                    _ => aws_sdk_lambda::types::FunctionUrlAuthType::AwsIam,
                };
                let cors = url_cors(&resource.spec["cors"]);
                if exists {
                    self.lambda
                        .update_function_url_config()
                        .function_name(name)
                        .auth_type(auth)
                        .set_cors(cors)
                        .send()
                        .await
                        .map_err(aws("UpdateFunctionUrlConfig", name))?;
                } else {
                    self.lambda
                        .create_function_url_config()
                        .function_name(name)
                        .auth_type(auth)
                        .set_cors(cors)
                        .send()
                        .await
                        .map_err(aws("CreateFunctionUrlConfig", name))?;
                }
                self.ensure_public_url(name, resource.spec["public"].as_bool().unwrap_or(false)).await?;
            }
            ResourceKind::Schedule => {
                let function = resource.spec["function"].as_str().unwrap_or_default();
                let role = resource.spec["role"].as_str().unwrap_or_default();
                let target = aws_sdk_scheduler::types::Target::builder()
                    .arn(format!("arn:aws:lambda:{}:{}:function:{function}", plan.region, plan.account))
                    .role_arn(format!(
                        "arn:aws:iam::{}:role/reventless/{}/{}/{role}",
                        plan.account, plan.project, plan.stage
                    ))
                    .input(json!({"reventless": crate::lambda::HEARTBEAT_EVENT}).to_string())
                    .build()
                    .map_err(|e| DeployError::Refused(e.to_string()))?;
                let window = aws_sdk_scheduler::types::FlexibleTimeWindow::builder()
                    .mode(aws_sdk_scheduler::types::FlexibleTimeWindowMode::Off)
                    .build()
                    .map_err(|e| DeployError::Refused(e.to_string()))?;
                let expression = resource.spec["expression"].as_str().unwrap_or("rate(1 minute)");
                if exists {
                    self.scheduler
                        .update_schedule()
                        .name(name)
                        .schedule_expression(expression)
                        .flexible_time_window(window)
                        .target(target)
                        .send()
                        .await
                        .map_err(aws("UpdateSchedule", name))?;
                } else {
                    self.scheduler
                        .create_schedule()
                        .name(name)
                        .schedule_expression(expression)
                        .flexible_time_window(window)
                        .target(target)
                        .send()
                        .await
                        .map_err(aws("CreateSchedule", name))?;
                }
            }
            ResourceKind::Parameter => {
                let value = resource.spec["value"].as_str().unwrap_or_default();
                self.ssm
                    .put_parameter()
                    .name(name)
                    .value(value)
                    .r#type(aws_sdk_ssm::types::ParameterType::String)
                    .overwrite(true)
                    .send()
                    .await
                    .map_err(aws("PutParameter", name))?;
                let tags: Vec<aws_sdk_ssm::types::Tag> = resource
                    .tags
                    .iter()
                    .filter_map(|(k, v)| aws_sdk_ssm::types::Tag::builder().key(k).value(v).build().ok())
                    .collect();
                self.count();
                self.ssm
                    .add_tags_to_resource()
                    .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
                    .resource_id(name)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map_err(aws("AddTagsToResource", name))?;
            }
        }
        Ok(())
    }

    async fn create_table(&self, name: &str, layout: &str) -> Result<(), DeployError> {
        let refused = |e: reventless_core::store::StoreError| DeployError::Aws {
            call: "CreateTable".into(),
            name: name.into(),
            message: e.to_string(),
        };
        match layout {
            "events" => crate::provision::create_events_table(&self.dynamodb, name).await.map_err(refused),
            "rows" => crate::provision::create_rows_table(&self.dynamodb, name).await.map_err(refused),
            _ => {
                let key = KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build();
                let attribute =
                    AttributeDefinition::builder().attribute_name("id").attribute_type(ScalarAttributeType::S).build();
                let (Ok(key), Ok(attribute)) = (key, attribute) else {
                    return Err(DeployError::Refused(format!("cannot describe table {name}")));
                };
                self.dynamodb
                    .create_table()
                    .table_name(name)
                    .billing_mode(BillingMode::PayPerRequest)
                    .key_schema(key)
                    .attribute_definitions(attribute)
                    .send()
                    .await
                    .map_err(aws("CreateTable", name))?;
                Ok(())
            }
        }
    }

    async fn ensure_function(
        &self,
        plan: &Plan,
        resource: &Resource,
        code: Option<&CodeZip>,
        exists: bool,
    ) -> Result<(), DeployError> {
        let name = resource.name.as_str();
        let spec = &resource.spec;
        let role_arn = format!(
            "arn:aws:iam::{}:role/reventless/{}/{}/{}",
            plan.account,
            plan.project,
            plan.stage,
            spec["role"].as_str().unwrap_or_default()
        );
        let variables: std::collections::HashMap<String, String> = spec["environment"]
            .as_object()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
            .unwrap_or_default();
        let environment = aws_sdk_lambda::types::Environment::builder().set_variables(Some(variables)).build();
        let storage = aws_sdk_lambda::types::EphemeralStorage::builder()
            .size(spec["ephemeralStorageMb"].as_i64().unwrap_or(512) as i32)
            .build()
            .map_err(|e| DeployError::Refused(e.to_string()))?;
        let layers: Vec<String> = spec["layers"]
            .as_array()
            .map(|l| l.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let memory = spec["memorySize"].as_i64().unwrap_or(1024) as i32;
        let timeout = spec["timeout"].as_i64().unwrap_or(30) as i32;
        let architecture = aws_sdk_lambda::types::Architecture::from(spec["architecture"].as_str().unwrap_or("x86_64"));
        if !exists {
            let code = code.ok_or_else(|| DeployError::Refused(format!("no code for function {name}")))?;
            let mut delay = Duration::from_millis(200);
            loop {
                let zip = aws_sdk_lambda::types::FunctionCode::builder()
                    .zip_file(aws_sdk_lambda::primitives::Blob::new(code.bytes.as_ref().clone()))
                    .build();
                let mut create = self
                    .lambda
                    .create_function()
                    .function_name(name)
                    .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
                    .handler("bootstrap")
                    .role(&role_arn)
                    .code(zip)
                    .memory_size(memory)
                    .timeout(timeout)
                    .environment(environment.clone())
                    .ephemeral_storage(storage.clone())
                    .architectures(architecture.clone())
                    .set_layers(Some(layers.clone()));
                for (key, value) in &resource.tags {
                    create = create.tags(key, value);
                }
                match create.send().await {
                    Ok(_) => break,
                    // A new role takes a moment before Lambda may assume it.
                    Err(error)
                        if code_is(&error, "InvalidParameterValueException")
                            && error.message().is_some_and(|m| m.contains("role"))
                            && delay < Duration::from_secs(30) =>
                    {
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                        self.count();
                    }
                    Err(error) => return Err(aws("CreateFunction", name)(error)),
                }
            }
        } else {
            if let Some(code) = code {
                self.count();
                retry_conflicts(|| async {
                    self.lambda
                        .update_function_code()
                        .function_name(name)
                        .zip_file(aws_sdk_lambda::primitives::Blob::new(code.bytes.as_ref().clone()))
                        .architectures(architecture.clone())
                        .send()
                        .await
                        .map(|_| ())
                })
                .await
                .map_err(aws("UpdateFunctionCode", name))?;
            }
            self.count();
            retry_conflicts(|| async {
                self.lambda
                    .update_function_configuration()
                    .function_name(name)
                    .role(&role_arn)
                    .memory_size(memory)
                    .timeout(timeout)
                    .environment(environment.clone())
                    .ephemeral_storage(storage.clone())
                    .set_layers(Some(layers.clone()))
                    .send()
                    .await
                    .map(|_| ())
            })
            .await
            .map_err(aws("UpdateFunctionConfiguration", name))?;
        }
        self.count();
        match spec["reservedConcurrency"].as_i64() {
            Some(reserved) => {
                self.lambda
                    .put_function_concurrency()
                    .function_name(name)
                    .reserved_concurrent_executions(reserved as i32)
                    .send()
                    .await
                    .map_err(aws("PutFunctionConcurrency", name))?;
            }
            None if exists => {
                self.lambda
                    .delete_function_concurrency()
                    .function_name(name)
                    .send()
                    .await
                    .map_err(aws("DeleteFunctionConcurrency", name))?;
            }
            None => {}
        }
        Ok(())
    }

    // ------------------------------------------------------------ delete

    /// Removes one resource (missing is fine).
    pub async fn remove(&self, existing: &Existing) -> Result<(), DeployError> {
        let name = existing.name.as_str();
        self.count();
        let gone = |c: Option<&str>| {
            c.is_some_and(|c| c.contains("NotFound") || c.contains("NoSuchEntity") || c.contains("NonExistent"))
        };
        match existing.kind {
            ResourceKind::Table => match self.dynamodb.delete_table().table_name(name).send().await {
                Err(error) if !gone(code(&error)) => return Err(aws("DeleteTable", name)(error)),
                _ => {}
            },
            ResourceKind::Queue => {
                if let Ok(url) = self.sqs.get_queue_url().queue_name(name).send().await {
                    self.count();
                    self.sqs
                        .delete_queue()
                        .queue_url(url.queue_url().unwrap_or_default())
                        .send()
                        .await
                        .map_err(aws("DeleteQueue", name))?;
                }
            }
            ResourceKind::LogGroup => match self.logs.delete_log_group().log_group_name(name).send().await {
                Err(error) if !gone(code(&error)) => return Err(aws("DeleteLogGroup", name)(error)),
                _ => {}
            },
            ResourceKind::Role => {
                let _ = self.iam.delete_role_policy().role_name(name).policy_name("reventless").send().await;
                self.count();
                match self.iam.delete_role().role_name(name).send().await {
                    Err(error) if !gone(code(&error)) => return Err(aws("DeleteRole", name)(error)),
                    _ => {}
                }
            }
            ResourceKind::Function => match self.lambda.delete_function().function_name(name).send().await {
                Err(error) if !gone(code(&error)) => return Err(aws("DeleteFunction", name)(error)),
                _ => {}
            },
            ResourceKind::EventSourceMapping => {
                if let Some(uuid) = &existing.id {
                    match self.lambda.delete_event_source_mapping().uuid(uuid).send().await {
                        Err(error) if !gone(code(&error)) => return Err(aws("DeleteEventSourceMapping", name)(error)),
                        _ => {}
                    }
                }
            }
            ResourceKind::FunctionUrl => {
                match self.lambda.delete_function_url_config().function_name(name).send().await {
                    Err(error) if !gone(code(&error)) => return Err(aws("DeleteFunctionUrlConfig", name)(error)),
                    _ => {}
                }
            }
            ResourceKind::Parameter => match self.ssm.delete_parameter().name(name).send().await {
                Err(error) if !gone(code(&error)) => return Err(aws("DeleteParameter", name)(error)),
                _ => {}
            },
            ResourceKind::Schedule => match self.scheduler.delete_schedule().name(name).send().await {
                Err(error) if !gone(code(&error)) => return Err(aws("DeleteSchedule", name)(error)),
                _ => {}
            },
        }
        Ok(())
    }

    // ------------------------------------------------------------ discover

    /// Every SSM parameter under `path` (recursively), name → value.
    pub async fn parameters_under(&self, path: &str) -> Result<Vec<(String, String)>, DeployError> {
        let mut parameters = Vec::new();
        let mut token = None;
        loop {
            self.count();
            let page = self
                .ssm
                .get_parameters_by_path()
                .path(path)
                .recursive(true)
                .set_next_token(token)
                .send()
                .await
                .map_err(aws("GetParametersByPath", path))?;
            for parameter in page.parameters() {
                let name = parameter.name().unwrap_or_default().to_string();
                parameters.push((name, parameter.value().unwrap_or_default().to_string()));
            }
            match page.next_token() {
                Some(next) => token = Some(next.to_string()),
                None => return Ok(parameters),
            }
        }
    }

    /// Every resource of the stage that exists (found by name prefix and
    /// checked by tag where the service lists tags).
    pub async fn discover(&self, project: &str, stage: &str) -> Result<Vec<Existing>, DeployError> {
        let prefix = format!("{project}-{stage}-");
        let stack_of = |name: &str| {
            name.strip_prefix(&prefix).and_then(|rest| rest.split('-').next()).unwrap_or_default().to_string()
        };
        let mut found = Vec::new();
        // Tables (tag-checked).
        let mut start = None;
        loop {
            self.count();
            let page = self
                .dynamodb
                .list_tables()
                .set_exclusive_start_table_name(start)
                .send()
                .await
                .map_err(aws("ListTables", "-"))?;
            for name in page.table_names().iter().filter(|n| n.starts_with(&prefix)) {
                self.count();
                let described =
                    self.dynamodb.describe_table().table_name(name).send().await.map_err(aws("DescribeTable", name))?;
                let arn = described.table().and_then(|t| t.table_arn()).unwrap_or_default().to_string();
                self.count();
                let tags = self
                    .dynamodb
                    .list_tags_of_resource()
                    .resource_arn(&arn)
                    .send()
                    .await
                    .map_err(aws("ListTagsOfResource", name))?;
                let tagged = tags.tags().iter().any(|t| t.key() == TAG_STAGE && t.value() == stage);
                let stack = tags.tags().iter().find(|t| t.key() == TAG_PLUGIN).map(|t| t.value().to_string());
                if tagged {
                    found.push(Existing::new(ResourceKind::Table, name, &stack.unwrap_or_else(|| stack_of(name))));
                }
            }
            match page.last_evaluated_table_name() {
                Some(last) => start = Some(last.to_string()),
                None => break,
            }
        }
        // Queues.
        self.count();
        let queues = self.sqs.list_queues().queue_name_prefix(&prefix).send().await.map_err(aws("ListQueues", "-"))?;
        for url in queues.queue_urls() {
            let name = url.rsplit('/').next().unwrap_or_default();
            found.push(Existing::new(ResourceKind::Queue, name, &stack_of(name)));
        }
        // Log groups.
        self.count();
        let groups = self
            .logs
            .describe_log_groups()
            .log_group_name_prefix(format!("/aws/lambda/{prefix}"))
            .send()
            .await
            .map_err(aws("DescribeLogGroups", "-"))?;
        for group in groups.log_groups() {
            let name = group.log_group_name().unwrap_or_default();
            found.push(Existing::new(ResourceKind::LogGroup, name, &stack_of(name.trim_start_matches("/aws/lambda/"))));
        }
        // Roles (the tagging API does not list them: by path).
        self.count();
        let roles = self
            .iam
            .list_roles()
            .path_prefix(format!("/reventless/{project}/{stage}/"))
            .send()
            .await
            .map_err(aws("ListRoles", "-"))?;
        for role in roles.roles() {
            found.push(Existing::new(ResourceKind::Role, role.role_name(), &stack_of(role.role_name())));
        }
        // Functions, their mappings and URLs.
        let mut marker = None;
        loop {
            self.count();
            let page =
                self.lambda.list_functions().set_marker(marker).send().await.map_err(aws("ListFunctions", "-"))?;
            for function in page.functions() {
                let Some(name) = function.function_name().filter(|n| n.starts_with(&prefix)) else { continue };
                let stack = stack_of(name);
                found.push(Existing::new(ResourceKind::Function, name, &stack));
                self.count();
                if let Ok(mappings) = self.lambda.list_event_source_mappings().function_name(name).send().await {
                    for mapping in mappings.event_source_mappings() {
                        let source = if mapping.event_source_arn().is_some_and(|a| a.starts_with("arn:aws:sqs")) {
                            "commands"
                        } else {
                            "events"
                        };
                        let mut existing =
                            Existing::new(ResourceKind::EventSourceMapping, &format!("{name}:{source}"), &stack);
                        existing.id = mapping.uuid().map(str::to_string);
                        found.push(existing);
                    }
                }
                self.count();
                if self.lambda.get_function_url_config().function_name(name).send().await.is_ok() {
                    found.push(Existing::new(ResourceKind::FunctionUrl, name, &stack));
                }
            }
            match page.next_marker() {
                Some(next) => marker = Some(next.to_string()),
                None => break,
            }
        }
        // Heartbeat schedules (the tagging API does not list them: by name).
        self.count();
        let schedules =
            self.scheduler.list_schedules().name_prefix(&prefix).send().await.map_err(aws("ListSchedules", "-"))?;
        for schedule in schedules.schedules() {
            if let Some(name) = schedule.name().filter(|n| n.starts_with(&prefix)) {
                found.push(Existing::new(ResourceKind::Schedule, name, &stack_of(name)));
            }
        }
        // Parameters.
        let path = format!("/reventless/{project}/{stage}/");
        for (name, _) in self.parameters_under(&path).await? {
            let stack = name.strip_prefix(&path).and_then(|rest| rest.split('/').next()).unwrap_or_default();
            found.push(Existing::new(ResourceKind::Parameter, &name, stack));
        }
        Ok(found)
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

/// The response types the plan asks of a mapping (`ReportBatchItemFailures`).
fn response_types(resource: &Resource) -> Vec<aws_sdk_lambda::types::FunctionResponseType> {
    let planned = resource.spec["functionResponseTypes"].as_array();
    planned
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(aws_sdk_lambda::types::FunctionResponseType::from)
        .collect()
}

/// Where a stream mapping records batches that exhausted their retries.
fn failure_destination(plan: &Plan, resource: &Resource) -> Option<aws_sdk_lambda::types::DestinationConfig> {
    let queue = resource.spec["onFailure"].as_str()?;
    let arn = format!("arn:aws:sqs:{}:{}:{queue}", plan.region, plan.account);
    let on_failure = aws_sdk_lambda::types::OnFailure::builder().destination(arn).build();
    Some(aws_sdk_lambda::types::DestinationConfig::builder().on_failure(on_failure).build())
}

/// A stream mapping's filter: new events of the planned logs only, and of
/// the planned types when the plan names them
/// (`{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"log": {"S": [...]}, "type": {"S": [...]}}}}`).
fn stream_filter(resource: &Resource) -> Option<aws_sdk_lambda::types::FilterCriteria> {
    let logs = resource.spec.get("logs")?.as_array()?;
    let mut image = json!({"log": {"S": logs}});
    if let Some(types) = resource.spec.get("types").and_then(Value::as_array) {
        image["type"] = json!({"S": types});
    }
    let pattern = json!({"eventName": ["INSERT"], "dynamodb": {"NewImage": image}});
    let filter = aws_sdk_lambda::types::Filter::builder().pattern(pattern.to_string()).build();
    Some(aws_sdk_lambda::types::FilterCriteria::builder().filters(filter).build())
}

/// A function URL's CORS settings from the plan (None: no CORS).
fn url_cors(spec: &Value) -> Option<aws_sdk_lambda::types::Cors> {
    let list = |key: &str| -> Option<Vec<String>> {
        spec.get(key)?.as_array().map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
    };
    spec.is_object().then(|| {
        aws_sdk_lambda::types::Cors::builder()
            .set_allow_origins(list("allowOrigins"))
            .set_allow_methods(list("allowMethods"))
            .set_allow_headers(list("allowHeaders"))
            .set_max_age(spec["maxAge"].as_i64().and_then(|age| i32::try_from(age).ok()))
            .build()
    })
}

/// The values of `attribute` a stream filter passes (what [`stream_filter`] wrote).
fn filtered_values(pattern: &str, attribute: &str) -> Value {
    let parsed: Value = serde_json::from_str(pattern).unwrap_or(Value::Null);
    parsed.pointer(&format!("/dynamodb/NewImage/{attribute}/S")).cloned().unwrap_or(Value::Null)
}

fn code_is<E: ProvideErrorMetadata, R>(error: &aws_smithy_runtime_api_error::SdkError<E, R>, expected: &str) -> bool {
    error.code() == Some(expected)
}

/// Retries a Lambda update while another update of the function is in progress.
async fn retry_conflicts<F, Fut, E, R>(call: F) -> Result<(), aws_smithy_runtime_api_error::SdkError<E, R>>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), aws_smithy_runtime_api_error::SdkError<E, R>>>,
    E: ProvideErrorMetadata,
{
    let mut delay = Duration::from_millis(200);
    loop {
        match call().await {
            Err(error) if code_is(&error, "ResourceConflictException") && delay < Duration::from_secs(30) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            other => return other,
        }
    }
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

/// A function's zipped code.
#[derive(Clone)]
pub struct CodeZip {
    pub package: Package,
    pub bytes: Arc<Vec<u8>>,
}

/// A resource that exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Existing {
    pub kind: ResourceKind,
    pub name: String,
    pub stack: String,
    /// The mapping's UUID (event source mappings).
    pub id: Option<String>,
}

impl Existing {
    fn new(kind: ResourceKind, name: &str, stack: &str) -> Self {
        Self { kind, name: name.to_string(), stack: stack.to_string(), id: None }
    }
}

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "action")]
pub enum Change {
    Create { kind: ResourceKind, name: String, stack: String },
    Update { kind: ResourceKind, name: String, stack: String, fields: Vec<String> },
    Delete { kind: ResourceKind, name: String, stack: String },
    Unchanged { kind: ResourceKind, name: String, stack: String },
}

impl Change {
    pub fn symbol(&self) -> char {
        match self {
            Change::Create { .. } => '+',
            Change::Update { .. } => '~',
            Change::Delete { .. } => '-',
            Change::Unchanged { .. } => '=',
        }
    }
}

/// The fields of `desired` whose value differs in `actual`.
pub fn changed_fields(desired: &Value, actual: &Value) -> Vec<String> {
    let Some(desired) = desired.as_object() else { return Vec::new() };
    desired
        .iter()
        .filter(|(key, value)| {
            let actual = actual.get(key.as_str()).unwrap_or(&Value::Null);
            !same(value, actual)
        })
        .map(|(key, _)| key.clone())
        .collect()
}

fn same(desired: &Value, actual: &Value) -> bool {
    match (desired, actual) {
        (Value::Array(a), Value::Null) | (Value::Null, Value::Array(a)) => a.is_empty(),
        (Value::Object(a), Value::Null) | (Value::Null, Value::Object(a)) => a.is_empty(),
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => desired == actual,
    }
}

/// A set of stacks to limit a diff to.
pub type Scope = BTreeSet<String>;

/// The diff of the plan (limited to `scope`) with what exists.
pub async fn diff(
    clients: &Clients,
    plan: &Plan,
    scope: &Scope,
    code: &BTreeMap<String, CodeZip>,
) -> Result<(Vec<Change>, Vec<Existing>), DeployError> {
    let semaphore = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut observations = Vec::new();
    for resource in plan.resources.iter().filter(|r| scope.contains(&r.stack)) {
        let semaphore = semaphore.clone();
        let clients = clients.clone();
        let resource = resource.clone();
        observations.push(tokio::spawn(async move {
            let _permit = semaphore.acquire().await;
            (clients.observe(&resource).await, resource)
        }));
    }
    let mut changes = Vec::new();
    for observation in observations {
        let (observed, resource) = observation.await.map_err(|e| DeployError::Refused(e.to_string()))?;
        let (kind, name, stack) = (resource.kind, resource.name.clone(), resource.stack.clone());
        match observed? {
            None => changes.push(Change::Create { kind, name, stack }),
            Some(actual) => {
                let mut fields = changed_fields(&resource.spec, &actual);
                if kind == ResourceKind::Function
                    && let Some(zip) = code.get(&stack)
                    && actual.get("codeSha256").and_then(Value::as_str) != Some(zip.package.code_sha256.as_str())
                {
                    fields.push("code".into());
                }
                if fields.is_empty() {
                    changes.push(Change::Unchanged { kind, name, stack });
                } else {
                    changes.push(Change::Update { kind, name, stack, fields });
                }
            }
        }
    }
    let existing = clients.discover(&plan.project, &plan.stage).await?;
    let planned: BTreeSet<(ResourceKind, String)> = plan.resources.iter().map(Resource::key).collect();
    for found in existing.iter().filter(|e| scope.contains(&e.stack)) {
        if !planned.contains(&(found.kind, found.name.clone())) {
            changes.push(Change::Delete { kind: found.kind, name: found.name.clone(), stack: found.stack.clone() });
        }
    }
    Ok((changes, existing))
}
