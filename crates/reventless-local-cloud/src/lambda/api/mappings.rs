//! Event source mappings: validated as AWS validates them, handed to the drivers.
use super::*;

pub(super) fn mapping_json(inner: &Inner, config: &MappingConfig) -> Value {
    let mut answer = json!({
        "UUID": config.uuid,
        "FunctionArn": config.function_arn,
        "EventSourceArn": config.event_source_arn,
        "BatchSize": config.batch_size,
        "State": if config.enabled { "Enabled" } else { "Disabled" },
        "StateTransitionReason": "USER_INITIATED",
        "LastModified": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0),
        "LastProcessingResult": inner.mappings.get().and_then(|m| m.last_processing_result(&config.uuid)).unwrap_or_else(|| "No records processed".into()),
        "FunctionResponseTypes": config.function_response_types,
    });
    if let Some(window) = config.maximum_batching_window_in_seconds {
        answer["MaximumBatchingWindowInSeconds"] = json!(window);
    }
    if let Some(position) = &config.starting_position {
        answer["StartingPosition"] = json!(position);
    }
    if let Some(bisect) = config.bisect_batch_on_function_error {
        answer["BisectBatchOnFunctionError"] = json!(bisect);
    }
    if let Some(retries) = config.maximum_retry_attempts {
        answer["MaximumRetryAttempts"] = json!(retries);
    }
    if !config.filter_patterns.is_empty() {
        let filters: Vec<Value> = config.filter_patterns.iter().map(|p| json!({"Pattern": p})).collect();
        answer["FilterCriteria"] = json!({"Filters": filters});
    }
    if let Some(destination) = &config.on_failure_destination {
        answer["DestinationConfig"] = json!({"OnFailure": {"Destination": destination}, "OnSuccess": {}});
    }
    answer
}

/// Applies a Create/UpdateEventSourceMapping request's fields to `config`.
pub(super) fn apply_mapping_fields(config: &mut MappingConfig, request: &Value) {
    if let Some(size) = request["BatchSize"].as_i64() {
        config.batch_size = i32::try_from(size).unwrap_or(i32::MAX);
    }
    if let Some(window) = request["MaximumBatchingWindowInSeconds"].as_i64() {
        config.maximum_batching_window_in_seconds = i32::try_from(window).ok();
    }
    if let Some(bisect) = request["BisectBatchOnFunctionError"].as_bool() {
        config.bisect_batch_on_function_error = Some(bisect);
    }
    if let Some(retries) = request["MaximumRetryAttempts"].as_i64() {
        config.maximum_retry_attempts = i32::try_from(retries).ok();
    }
    if let Some(types) = request.get("FunctionResponseTypes") {
        config.function_response_types = strings(types);
    }
    if let Some(filters) = request.pointer("/FilterCriteria/Filters").and_then(Value::as_array) {
        config.filter_patterns = filters.iter().filter_map(|f| f["Pattern"].as_str().map(str::to_string)).collect();
    } else if request.get("FilterCriteria").is_some() {
        config.filter_patterns.clear();
    }
    if let Some(destination) = request.pointer("/DestinationConfig/OnFailure/Destination") {
        config.on_failure_destination = destination.as_str().filter(|d| !d.is_empty()).map(str::to_string);
    }
    if let Some(enabled) = request["Enabled"].as_bool() {
        config.enabled = enabled;
    }
}

/// Lambda's limit on one filter pattern's length.
const MAX_FILTER_PATTERN: usize = 4096;

/// What AWS refuses in a mapping: settings of the wrong source kind, values out of range.
pub(super) fn validate_mapping(config: &MappingConfig) -> Result<(), String> {
    let sqs = config.event_source_arn.starts_with("arn:aws:sqs:");
    let fifo = sqs && config.event_source_arn.ends_with(".fifo");
    if sqs {
        if config.starting_position.is_some() {
            return Err("StartingPosition is not valid for SQS event sources.".into());
        }
        if config.bisect_batch_on_function_error.is_some() || config.maximum_retry_attempts.is_some() {
            return Err("Unsupported MaximumRetryAttempts/BisectBatchOnFunctionError for SQS event sources.".into());
        }
        let max = if fifo { 10 } else { 10_000 };
        if !(1..=max).contains(&config.batch_size) {
            return Err(format!("BatchSize {} is outside 1..={max} for this queue.", config.batch_size));
        }
    } else if config.event_source_arn.contains(":dynamodb:") && config.event_source_arn.contains("/stream/") {
        if config.starting_position.is_none() {
            return Err("StartingPosition is required for DynamoDB stream event sources.".into());
        }
        if !(1..=10_000).contains(&config.batch_size) {
            return Err(format!("BatchSize {} is outside 1..=10000.", config.batch_size));
        }
        if config.maximum_retry_attempts.is_some_and(|r| !(-1..=10_000).contains(&r)) {
            return Err("MaximumRetryAttempts must be within -1..=10000.".into());
        }
    } else {
        return Err(format!(
            "unsupported event source {} (SQS queues and DynamoDB streams only)",
            config.event_source_arn
        ));
    }
    if sqs && config.on_failure_destination.is_some() {
        // An SQS mapping's failures go to the queue's redrive policy, not a destination.
        return Err("Unsupported DestinationConfig parameter for given event source mapping type.".into());
    }
    if config.function_response_types.iter().any(|t| t != "ReportBatchItemFailures") {
        return Err(format!(
            "FunctionResponseTypes {:?}: only ReportBatchItemFailures is valid",
            config.function_response_types
        ));
    }
    for pattern in &config.filter_patterns {
        let length = pattern.chars().count();
        if length > MAX_FILTER_PATTERN {
            return Err(format!(
                "Invalid filter pattern definition: the pattern is {length} characters long, at most {MAX_FILTER_PATTERN} are allowed."
            ));
        }
        if serde_json::from_str::<serde_json::Map<String, Value>>(pattern).is_err() {
            return Err(format!("Invalid filter pattern definition: {pattern}"));
        }
    }
    Ok(())
}

/// The actions Lambda's poller performs on a source with the function's role;
/// AWS checks them when the mapping is created.
pub(super) fn poller_actions(source: &str) -> &'static [&'static str] {
    if source.starts_with("arn:aws:sqs:") {
        &["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    } else {
        &["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
    }
}

/// What AWS checks against the source and the function's role when a
/// mapping is created or updated: an SQS queue's visibility timeout must be
/// at least the function's timeout; a stream mapping's role must be allowed
/// to send to its on-failure destination.
async fn check_against_sources(inner: &Inner, config: &MappingConfig, function: &FunctionRecord) -> Result<(), String> {
    let source = &config.event_source_arn;
    if source.starts_with("arn:aws:sqs:") {
        let visibility = queue_visibility_timeout(inner, source).await?;
        if visibility < function.timeout_seconds {
            return Err(format!(
                "Invalid request provided: Queue visibility timeout: {visibility} seconds is less than Function timeout: {} seconds",
                function.timeout_seconds
            ));
        }
    }
    if let Some(destination) = &config.on_failure_destination {
        let action = if destination.starts_with("arn:aws:sns:") { "sns:Publish" } else { "sqs:SendMessage" };
        if let Err(denied) = inner.access.authorize(&function.role, action, destination).await {
            return Err(format!(
                "The provided execution role does not have permissions to call {action} on {destination}: {denied}"
            ));
        }
    }
    Ok(())
}

/// The queue's `VisibilityTimeout` in seconds, read from the emulator.
async fn queue_visibility_timeout(inner: &Inner, queue_arn: &str) -> Result<i64, String> {
    let nonexistent = || {
        format!(
            "Error occurred while ReceiveMessage. SQS Error Code: AWS.SimpleQueueService.NonExistentQueue. Error Message: The specified queue {queue_arn} does not exist."
        )
    };
    let url = crate::mappings::queue_url(&inner.sqs, queue_arn).await.map_err(|_| nonexistent())?;
    let attributes = inner
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .map_err(|_| nonexistent())?;
    attributes
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("the queue {queue_arn} has no VisibilityTimeout"))
}

pub(super) async fn create_mapping(State(inner): Shared, body: Bytes) -> Response {
    let request = match body_json(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let (Some(function), Some(source)) = (request["FunctionName"].as_str(), request["EventSourceArn"].as_str()) else {
        return invalid("FunctionName and EventSourceArn are required");
    };
    let Some(record) = inner.function(function_name(function)) else {
        return not_found(&format!("Function {function}"));
    };
    let sqs = source.starts_with("arn:aws:sqs:");
    let mut config = MappingConfig {
        uuid: uuid::Uuid::new_v4().to_string(),
        function_name: record.name.clone(),
        function_arn: record.arn.clone(),
        event_source_arn: source.to_string(),
        batch_size: if sqs { 10 } else { 100 },
        maximum_batching_window_in_seconds: None,
        starting_position: request["StartingPosition"].as_str().map(str::to_string),
        bisect_batch_on_function_error: None,
        maximum_retry_attempts: None,
        function_response_types: Vec::new(),
        filter_patterns: Vec::new(),
        on_failure_destination: None,
        enabled: true,
    };
    apply_mapping_fields(&mut config, &request);
    if let Err(message) = validate_mapping(&config) {
        return invalid(message);
    }
    let exists = inner
        .mapping_configs
        .lock()
        .map(|m| {
            m.values().any(|c| c.function_arn == config.function_arn && c.event_source_arn == config.event_source_arn)
        })
        .unwrap_or(false);
    if exists {
        return error(
            StatusCode::CONFLICT,
            "ResourceConflictException",
            format!(
                "An event source mapping with {} and function {} already exists.",
                config.event_source_arn, record.name
            ),
        );
    }
    for action in poller_actions(source) {
        if let Err(denied) = inner.access.authorize(&record.role, action, source).await {
            return invalid(format!(
                "The function execution role does not have permissions to call {action} on {source}: {denied}"
            ));
        }
    }
    if let Err(message) = check_against_sources(&inner, &config, &record).await {
        return invalid(message);
    }
    let answer = mapping_json(&inner, &config);
    if let Ok(mut configs) = inner.mapping_configs.lock() {
        configs.insert(config.uuid.clone(), config.clone());
    }
    if let Some(mappings) = inner.mappings.get() {
        mappings.put(config);
    }
    ok(StatusCode::ACCEPTED, answer)
}

pub(super) async fn list_mappings(State(inner): Shared, Query(query): Query<HashMap<String, String>>) -> Response {
    let function = query.get("FunctionName").map(|f| function_name(f).to_string());
    if let Some(name) = &function
        && inner.function(name).is_none()
    {
        return not_found(&format!("Function {name}"));
    }
    let source = query.get("EventSourceArn");
    let listed: Vec<Value> = inner
        .mapping_configs
        .lock()
        .map(|m| {
            m.values()
                .filter(|c| function.as_ref().is_none_or(|f| &c.function_name == f))
                .filter(|c| source.is_none_or(|s| &c.event_source_arn == s))
                .map(|c| mapping_json(&inner, c))
                .collect()
        })
        .unwrap_or_default();
    ok(StatusCode::OK, json!({"EventSourceMappings": listed}))
}

pub(super) async fn get_mapping(State(inner): Shared, Path(uuid): Path<String>) -> Response {
    match inner.mapping_configs.lock().ok().and_then(|m| m.get(&uuid).cloned()) {
        Some(config) => ok(StatusCode::OK, mapping_json(&inner, &config)),
        None => not_found(&format!("Event source mapping {uuid}")),
    }
}

pub(super) async fn update_mapping(State(inner): Shared, Path(uuid): Path<String>, body: Bytes) -> Response {
    let request = match body_json(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let Some(mut config) = inner.mapping_configs.lock().ok().and_then(|m| m.get(&uuid).cloned()) else {
        return not_found(&format!("Event source mapping {uuid}"));
    };
    apply_mapping_fields(&mut config, &request);
    if let Some(function) = request["FunctionName"].as_str() {
        let Some(record) = inner.function(function_name(function)) else {
            return not_found(&format!("Function {function}"));
        };
        config.function_name = record.name;
        config.function_arn = record.arn;
    }
    if let Err(message) = validate_mapping(&config) {
        return invalid(message);
    }
    let Some(record) = inner.function(&config.function_name) else {
        return not_found(&format!("Function {}", config.function_name));
    };
    if let Err(message) = check_against_sources(&inner, &config, &record).await {
        return invalid(message);
    }
    let answer = mapping_json(&inner, &config);
    if let Ok(mut configs) = inner.mapping_configs.lock() {
        configs.insert(uuid, config.clone());
    }
    if let Some(mappings) = inner.mappings.get() {
        mappings.put(config);
    }
    ok(StatusCode::ACCEPTED, answer)
}

pub(super) async fn delete_mapping(State(inner): Shared, Path(uuid): Path<String>) -> Response {
    let Some(config) = inner.mapping_configs.lock().ok().and_then(|mut m| m.remove(&uuid)) else {
        return not_found(&format!("Event source mapping {uuid}"));
    };
    if let Some(mappings) = inner.mappings.get() {
        mappings.remove(&uuid);
    }
    let mut answer = mapping_json(&inner, &config);
    answer["State"] = json!("Deleting");
    ok(StatusCode::ACCEPTED, answer)
}
