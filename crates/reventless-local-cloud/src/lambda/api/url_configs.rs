//! Function URL configurations (the URLs themselves are served by `lambda::urls`).
use super::*;

pub(super) async fn get_url(State(inner): Shared, Path(name): Path<String>) -> Response {
    match inner.function(function_name(&name)).map(|f| f.url_config()) {
        Some(Some(config)) => ok(StatusCode::OK, config),
        _ => not_found(&format!("Function URL config for {name}")),
    }
}

pub(super) fn auth_type(request: &Value) -> Result<String, Refusal> {
    match request["AuthType"].as_str() {
        Some(kind @ ("AWS_IAM" | "NONE")) => Ok(kind.to_string()),
        other => Err(Box::new(invalid(format!("AuthType must be AWS_IAM or NONE, not {other:?}")))),
    }
}

pub(super) async fn create_url(State(inner): Shared, Path(name): Path<String>, body: Bytes) -> Response {
    let request = match body_json(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let auth = match auth_type(&request) {
        Ok(auth) => auth,
        Err(response) => return *response,
    };
    let name = function_name(&name).to_string();
    let Some(function) = inner.function(&name) else { return not_found(&format!("Function {name}")) };
    if function.url.is_some() {
        return error(
            StatusCode::CONFLICT,
            "ResourceConflictException",
            format!(
                "Failed to create function url config for [functionArn = {}]. Error message:  FunctionUrlConfig exists for this Lambda function",
                function.arn
            ),
        );
    }
    let address = match crate::lambda::urls::serve(inner.clone(), &name).await {
        Ok(address) => address,
        Err(e) => {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "ServiceException", format!("cannot serve the URL: {e}"));
        }
    };
    let now = timestamp_now();
    let url = UrlConfig {
        auth_type: auth,
        cors: request.get("Cors").cloned(),
        url: format!("http://{address}/"),
        created: now.clone(),
        modified: now,
    };
    let config = with_function(&inner, &name, |f| {
        f.url = Some(url);
        f.url_config()
    });
    ok(StatusCode::CREATED, config.flatten().unwrap_or(Value::Null))
}

pub(super) async fn update_url(State(inner): Shared, Path(name): Path<String>, body: Bytes) -> Response {
    let request = match body_json(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let auth = if request.get("AuthType").is_some() {
        match auth_type(&request) {
            Ok(auth) => Some(auth),
            Err(response) => return *response,
        }
    } else {
        None
    };
    let updated = with_function(&inner, &name, |f| {
        let url = f.url.as_mut()?;
        if let Some(auth) = auth {
            url.auth_type = auth;
        }
        if let Some(cors) = request.get("Cors") {
            url.cors = Some(cors.clone());
        }
        url.modified = timestamp_now();
        f.url_config()
    });
    match updated.flatten() {
        Some(config) => ok(StatusCode::OK, config),
        None => not_found(&format!("Function URL config for {name}")),
    }
}

pub(super) async fn delete_url(State(inner): Shared, Path(name): Path<String>) -> Response {
    let name = function_name(&name).to_string();
    let removed = with_function(&inner, &name, |f| f.url.take()).flatten();
    if removed.is_none() {
        return not_found(&format!("Function URL config for {name}"));
    }
    if let Some((_, server)) = inner.url_servers.lock().ok().and_then(|mut s| s.remove(&name)) {
        server.abort();
    }
    StatusCode::NO_CONTENT.into_response()
}
