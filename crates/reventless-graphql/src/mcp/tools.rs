//! `tools/list` and `tools/call`: a command mutation per tool, its outcome
//! as the result (`isError` when the command was not carried out).
use serde_json::{Map, Value, json};

use super::jsonrpc::{INTERNAL_ERROR, INVALID_PARAMS, RpcError, required_str};
use super::{Catalog, GraphqlExecutor};

/// Every tool with its argument schema.
pub fn list(catalog: &Catalog) -> Value {
    let tools: Vec<Value> = catalog
        .tools
        .values()
        .map(|tool| json!({"name": tool.name, "description": tool.description, "inputSchema": tool.input_schema}))
        .collect();
    json!({"tools": tools})
}

/// Runs a tool as the executor's caller.
pub async fn call(
    params: &Map<String, Value>,
    catalog: &Catalog,
    graphql: &dyn GraphqlExecutor,
) -> Result<Value, RpcError> {
    let name = required_str(params, "name")?;
    let tool = catalog.tools.get(name).ok_or_else(|| {
        RpcError::new(INVALID_PARAMS, format!("no tool `{name}` (tools/list names them)"))
            .with_data(json!({"tool": name}))
    })?;
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(arguments)) => arguments.clone(),
        Some(_) => return Err(RpcError::new(INVALID_PARAMS, "`arguments` must be an object")),
    };
    let known: Vec<&str> = tool.arguments.iter().map(|(name, _, _)| name.as_str()).collect();
    if let Some(unknown) = arguments.keys().find(|key| !known.contains(&key.as_str())) {
        let message = format!("tool `{name}` has no argument `{unknown}` (arguments: {})", known.join(", "));
        return Err(RpcError::new(INVALID_PARAMS, message));
    }
    let missing: Vec<&str> = tool
        .arguments
        .iter()
        .filter(|(arg, _, required)| *required && arguments.get(arg).is_none_or(Value::is_null))
        .map(|(arg, _, _)| arg.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(RpcError::new(INVALID_PARAMS, format!("tool `{name}` needs the arguments {}", missing.join(", "))));
    }
    // Only the arguments given: an optional one left out stays absent.
    let given: Vec<&(String, String, bool)> =
        tool.arguments.iter().filter(|(arg, _, _)| arguments.contains_key(arg)).collect();
    let declarations: Vec<String> = given.iter().map(|(arg, ty, _)| format!("${arg}: {ty}")).collect();
    let uses: Vec<String> = given.iter().map(|(arg, _, _)| format!("{arg}: ${arg}")).collect();
    let wrap = |items: Vec<String>| if items.is_empty() { String::new() } else { format!("({})", items.join(", ")) };
    let query = format!("mutation Tool{} {{ {}{} {{ {} }} }}", wrap(declarations), name, wrap(uses), tool.selection);
    let response = graphql.execute(query, arguments).await;
    if let Some(outcome) = response.pointer(&format!("/data/{name}")).filter(|o| o.is_object()) {
        return Ok(outcome_result(outcome));
    }
    let (code, message) = first_error(&response);
    match code.as_str() {
        // The arguments do not fit their types: the caller's to correct.
        "BAD_USER_INPUT" | "GRAPHQL_VALIDATION_FAILED" => {
            Err(RpcError::new(INVALID_PARAMS, message).with_data(json!({"code": code})))
        }
        "UNAVAILABLE" | "INTERNAL" => Err(RpcError::new(INTERNAL_ERROR, message).with_data(json!({"code": code}))),
        // The engine failed to carry it out (a conflict, a store error): told as the tool's result.
        _ => Ok(json!({
            "content": [{"type": "text", "text": format!("{code}: {message}")}],
            "isError": true,
        })),
    }
}

/// The outcome as text and structured content; not carried out is an error.
fn outcome_result(outcome: &Value) -> Value {
    let mut outcome = outcome.clone();
    if let Value::Object(fields) = &mut outcome {
        fields.retain(|_, value| !value.is_null());
    }
    let status = outcome.get("status").and_then(Value::as_str).unwrap_or("");
    json!({
        "content": [{"type": "text", "text": outcome.to_string()}],
        "structuredContent": outcome,
        "isError": matches!(status, "REJECTED" | "FAILED"),
    })
}

/// The code (`extensions.code`) and message of a GraphQL response's first error.
pub fn first_error(response: &Value) -> (String, String) {
    let error = response.pointer("/errors/0");
    let code = error.and_then(|e| e.pointer("/extensions/code")).and_then(Value::as_str).unwrap_or("INTERNAL");
    let message = error.and_then(|e| e.get("message")).and_then(Value::as_str).unwrap_or("no answer");
    (code.to_string(), message.to_string())
}
