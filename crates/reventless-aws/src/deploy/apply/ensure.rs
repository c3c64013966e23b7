//! Creating or updating one resource to match the plan (idempotent `ensure_*` calls).
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, Tag as DynamoTag,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde_json::{Value, json};

use super::{Clients, CodeZip, DeployError, PUBLIC_URL_STATEMENTS, aws, aws_smithy_runtime_api_error, code, code_is};
use crate::deploy::plan::{PUBLIC_URL_STATEMENT, Plan, Resource, ResourceKind, stream_filter_pattern};

impl Clients {
    /// Creates or updates one resource to match the plan.
    pub async fn ensure(
        &self,
        plan: &Plan,
        resource: &Resource,
        code: Option<&CodeZip>,
        exists: bool,
    ) -> Result<(), DeployError> {
        // The ids of WebSocket APIs it names (policies, outputs).
        let resolved = self.resolve_late(resource, true).await?;
        let resource = &resolved;
        let name = resource.name.as_str();
        self.count();
        match resource.kind {
            ResourceKind::WebSocketApi => self.ensure_websocket(plan, resource).await?,
            ResourceKind::Bucket => self.ensure_bucket(plan, resource, exists).await?,
            ResourceKind::Table => {
                if !exists {
                    let layout = resource.spec["layout"].as_str().unwrap_or_default();
                    self.create_table(name, layout).await?;
                    // TagResource on a table still CREATING is refused (ResourceInUseException).
                    self.wait_until_active(name).await?;
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
                if TABLE_SETTINGS.iter().any(|key| resource.spec.get(*key).is_some()) {
                    self.ensure_table_settings(name, &resource.spec).await?;
                }
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
                if let Some(policy) = resource.spec.get("policy").filter(|policy| policy.is_object()) {
                    attributes.push((aws_sdk_sqs::types::QueueAttributeName::Policy, policy.to_string()));
                }
                for (key, attribute) in [
                    ("deduplicationScope", aws_sdk_sqs::types::QueueAttributeName::DeduplicationScope),
                    ("fifoThroughputLimit", aws_sdk_sqs::types::QueueAttributeName::FifoThroughputLimit),
                ] {
                    if let Some(value) = resource.spec.get(key).and_then(Value::as_str) {
                        attributes.push((attribute, value.to_string()));
                    }
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
                if exists {
                    self.lambda
                        .update_function_url_config()
                        .function_name(name)
                        .auth_type(auth)
                        .cors(url_cors_update(&resource.spec["cors"]))
                        .send()
                        .await
                        .map_err(aws("UpdateFunctionUrlConfig", name))?;
                } else {
                    self.lambda
                        .create_function_url_config()
                        .function_name(name)
                        .auth_type(auth)
                        .set_cors(url_cors(&resource.spec["cors"]))
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
                    // A schedule's entry names it; the heartbeat's has no input in its spec.
                    .input(match resource.spec.get("input") {
                        Some(input) => input.to_string(),
                        None => json!({"reventless": crate::lambda::HEARTBEAT_EVENT}).to_string(),
                    })
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

    /// Waits until DescribeTable answers `ACTIVE` (see [`table_wait`]).
    pub(super) async fn wait_until_active(&self, name: &str) -> Result<(), DeployError> {
        let (mut delay, mut waited) = (TABLE_WAIT_FIRST, Duration::ZERO);
        loop {
            self.count();
            let described =
                self.dynamodb.describe_table().table_name(name).send().await.map_err(aws("DescribeTable", name))?;
            let status = described.table().and_then(|table| table.table_status());
            match table_wait(status, delay, waited) {
                TableWait::Active => return Ok(()),
                TableWait::Again(sleep) => {
                    tokio::time::sleep(sleep).await;
                    waited += sleep;
                    delay = sleep * 2;
                }
                TableWait::Never(message) => {
                    return Err(DeployError::Aws { call: "DescribeTable".into(), name: name.into(), message });
                }
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

    /// Grants (or withdraws) invoking the function through its URL by anyone:
    /// AWS answers a URL with `AuthType NONE` only when its resource policy allows it.
    pub(super) async fn ensure_public_url(&self, function: &str, public: bool) -> Result<(), DeployError> {
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
}

/// The spec keys of a table's settings beyond its shape (see `tables.rs`).
const TABLE_SETTINGS: [&str; 5] =
    ["billingMode", "readCapacity", "writeCapacity", "deletionProtection", "pointInTimeRecovery"];

/// The first pause while a new table is not `ACTIVE` yet; each next one doubles.
const TABLE_WAIT_FIRST: Duration = Duration::from_millis(100);
/// The longest single pause.
const TABLE_WAIT_STEP_MAX: Duration = Duration::from_secs(5);
/// How long a new table may take to become `ACTIVE` before the deploy gives up.
const TABLE_WAIT_MAX: Duration = Duration::from_secs(60);

/// What to do after DescribeTable answered `status` of a new table.
#[derive(Debug, PartialEq)]
enum TableWait {
    Active,
    /// Ask again after this pause.
    Again(Duration),
    /// It will not become active: why.
    Never(String),
}

/// `ACTIVE`: done. `CREATING` / `UPDATING` (or no status yet): ask again
/// after `delay` (at most [`TABLE_WAIT_STEP_MAX`]) while less than
/// [`TABLE_WAIT_MAX`] has been `waited`. Any other status (`DELETING`, …)
/// will not become active.
fn table_wait(status: Option<&aws_sdk_dynamodb::types::TableStatus>, delay: Duration, waited: Duration) -> TableWait {
    use aws_sdk_dynamodb::types::TableStatus;
    match status {
        Some(TableStatus::Active) => TableWait::Active,
        None | Some(TableStatus::Creating | TableStatus::Updating) if waited < TABLE_WAIT_MAX => {
            TableWait::Again(delay.min(TABLE_WAIT_STEP_MAX).min(TABLE_WAIT_MAX - waited))
        }
        None | Some(TableStatus::Creating | TableStatus::Updating) => TableWait::Never(format!(
            "the new table is not ACTIVE after {} s (status {})",
            waited.as_secs(),
            status.map_or("unknown", TableStatus::as_str)
        )),
        Some(other) => TableWait::Never(format!("the new table is {}, not ACTIVE", other.as_str())),
    }
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
/// the planned types when the plan names them (see [`stream_filter_pattern`]).
fn stream_filter(resource: &Resource) -> Option<aws_sdk_lambda::types::FilterCriteria> {
    let logs = resource.spec.get("logs").filter(|logs| logs.is_array())?;
    let types = resource.spec.get("types").filter(|types| types.is_array());
    let pattern = stream_filter_pattern(logs, types);
    let filter = aws_sdk_lambda::types::Filter::builder().pattern(pattern).build();
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
            .set_expose_headers(list("exposeHeaders"))
            .set_max_age(spec["maxAge"].as_i64().and_then(|age| i32::try_from(age).ok()))
            .build()
    })
}

/// The CORS settings an update of a function URL sends: the plan's, or
/// without any an empty one — UpdateFunctionUrlConfig without `Cors` keeps
/// the URL's current CORS settings, so they would never be cleared.
fn url_cors_update(spec: &Value) -> aws_sdk_lambda::types::Cors {
    url_cors(spec).unwrap_or_else(|| aws_sdk_lambda::types::Cors::builder().build())
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

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::TableStatus;

    use super::*;

    #[test]
    fn a_new_table_is_awaited_with_backoff_until_active_for_at_most_a_minute() {
        let ms = Duration::from_millis;
        assert_eq!(table_wait(Some(&TableStatus::Active), ms(100), ms(0)), TableWait::Active);
        assert_eq!(table_wait(Some(&TableStatus::Creating), ms(100), ms(0)), TableWait::Again(ms(100)));
        assert_eq!(table_wait(None, ms(400), ms(300)), TableWait::Again(ms(400)));
        assert_eq!(table_wait(Some(&TableStatus::Updating), ms(12_800), ms(12_700)), TableWait::Again(ms(5_000)));
        assert_eq!(table_wait(Some(&TableStatus::Creating), ms(5_000), ms(58_000)), TableWait::Again(ms(2_000)));
        let TableWait::Never(message) = table_wait(Some(&TableStatus::Creating), ms(5_000), ms(60_000)) else {
            panic!("a table CREATING for a minute is given up")
        };
        assert!(message.contains("not ACTIVE after 60 s") && message.contains("CREATING"), "{message}");
        let TableWait::Never(message) = table_wait(Some(&TableStatus::Deleting), ms(100), ms(0)) else {
            panic!("a table being deleted will not become active")
        };
        assert!(message.contains("DELETING"), "{message}");

        // The whole schedule: doubling from 100 ms, capped per pause and in total.
        let (mut delay, mut waited, mut pauses) = (TABLE_WAIT_FIRST, Duration::ZERO, Vec::new());
        while let TableWait::Again(sleep) = table_wait(Some(&TableStatus::Creating), delay, waited) {
            pauses.push(sleep.as_millis());
            waited += sleep;
            delay = sleep * 2;
        }
        assert_eq!(&pauses[..7], &[100, 200, 400, 800, 1600, 3200, 5000]);
        assert_eq!(waited, TABLE_WAIT_MAX);
    }

    #[test]
    fn a_url_update_without_planned_cors_clears_the_cors_settings() {
        let cleared = url_cors_update(&Value::Null);
        assert_eq!(cleared, aws_sdk_lambda::types::Cors::builder().build(), "sent, and empty");
        assert!(cleared.allow_origins().is_empty() && cleared.max_age().is_none());
        let planned = url_cors_update(&json!({"allowOrigins": ["*"], "allowMethods": ["GET"], "maxAge": 60}));
        assert_eq!((planned.allow_origins(), planned.max_age()), (&["*".to_string()][..], Some(60)));
        assert_eq!(url_cors(&Value::Null), None, "a new URL without planned CORS is created without");
    }
}
