//! Tags of functions, by ARN.
use super::*;

pub(super) fn function_by_arn(inner: &Inner, arn: &str) -> Option<String> {
    inner.functions.lock().ok()?.values().find(|f| f.arn == arn || f.name == function_name(arn)).map(|f| f.name.clone())
}

pub(super) async fn list_tags(State(inner): Shared, Path(arn): Path<String>) -> Response {
    match function_by_arn(&inner, &arn).and_then(|name| inner.function(&name)) {
        Some(function) => ok(StatusCode::OK, json!({"Tags": function.tags})),
        None => not_found(&format!("Function {arn}")),
    }
}

pub(super) async fn tag_resource(State(inner): Shared, Path(arn): Path<String>, body: Bytes) -> Response {
    let request = match body_json(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let Some(name) = function_by_arn(&inner, &arn) else { return not_found(&format!("Function {arn}")) };
    with_function(&inner, &name, |f| f.tags.extend(string_map(&request["Tags"])));
    StatusCode::NO_CONTENT.into_response()
}

pub(super) async fn untag_resource(
    State(inner): Shared,
    Path(arn): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let Some(name) = function_by_arn(&inner, &arn) else { return not_found(&format!("Function {arn}")) };
    let keys: Vec<String> = query.into_iter().filter(|(k, _)| k == "tagKeys").map(|(_, v)| v).collect();
    with_function(&inner, &name, |f| f.tags.retain(|k, _| !keys.contains(k)));
    StatusCode::NO_CONTENT.into_response()
}
