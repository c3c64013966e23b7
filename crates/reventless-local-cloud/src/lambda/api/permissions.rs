//! The function's resource-based policy: AddPermission, GetPolicy, RemovePermission.
use super::*;

pub(super) async fn add_permission(State(inner): Shared, Path(name): Path<String>, body: Bytes) -> Response {
    let request = match body_json(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let (Some(sid), Some(action), Some(principal)) =
        (request["StatementId"].as_str(), request["Action"].as_str(), request["Principal"].as_str())
    else {
        return invalid("StatementId, Action and Principal are required");
    };
    let Some(function) = inner.function(function_name(&name)) else { return not_found(&format!("Function {name}")) };
    if function.permissions.contains_key(sid) {
        return error(
            StatusCode::CONFLICT,
            "ResourceConflictException",
            format!(
                "The statement id ({sid}) provided already exists. Please provide a new statement id, or remove the existing statement."
            ),
        );
    }
    let principal = if principal == "*" || principal.ends_with(".amazonaws.com") && !principal.starts_with("arn:") {
        if principal == "*" { json!("*") } else { json!({"Service": principal}) }
    } else {
        json!({"AWS": principal})
    };
    let mut statement =
        json!({"Sid": sid, "Effect": "Allow", "Principal": principal, "Action": action, "Resource": function.arn});
    let mut condition = serde_json::Map::new();
    if let Some(kind) = request["FunctionUrlAuthType"].as_str() {
        condition.insert("StringEquals".into(), json!({"lambda:FunctionUrlAuthType": kind}));
    }
    // `InvokedViaFunctionUrl: true` limits the statement to calls through the
    // function's URL (what a public URL needs besides InvokeFunctionUrl).
    if request["InvokedViaFunctionUrl"].as_bool() == Some(true) {
        condition.insert("Bool".into(), json!({"lambda:InvokedViaFunctionUrl": "true"}));
    }
    if let Some(source) = request["SourceArn"].as_str() {
        condition.insert("ArnLike".into(), json!({"AWS:SourceArn": source}));
    }
    if !condition.is_empty() {
        statement["Condition"] = Value::Object(condition);
    }
    with_function(&inner, &name, |f| f.permissions.insert(sid.to_string(), statement.clone()));
    ok(StatusCode::CREATED, json!({"Statement": statement.to_string()}))
}

pub(super) async fn get_policy(State(inner): Shared, Path(name): Path<String>) -> Response {
    match inner.function(function_name(&name)).map(|f| f.policy()) {
        Some(Some(policy)) => {
            ok(StatusCode::OK, json!({"Policy": policy.to_string(), "RevisionId": uuid::Uuid::new_v4().to_string()}))
        }
        Some(None) => not_found("The resource you requested does not exist. Policy"),
        None => not_found(&format!("Function {name}")),
    }
}

pub(super) async fn remove_permission(State(inner): Shared, Path((name, sid)): Path<(String, String)>) -> Response {
    match with_function(&inner, &name, |f| f.permissions.remove(&sid)) {
        Some(Some(_)) => StatusCode::NO_CONTENT.into_response(),
        Some(None) => not_found(&format!("Statement {sid}")),
        None => not_found(&format!("Function {name}")),
    }
}
