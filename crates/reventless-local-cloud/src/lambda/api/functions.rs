//! Functions: their code (unpacked once per hash), configuration, limits and concurrency.
use super::*;

/// Unpacks a base64 zip into `<work_dir>/code/<sha>/`; refuses a zip without an executable `bootstrap`.
pub(super) fn store_code(inner: &Inner, zip_base64: &str) -> Result<Code, Refusal> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(zip_base64)
        .map_err(|_| Box::new(invalid("ZipFile is not base64")))?;
    let digest = sha2::Sha256::digest(&bytes);
    let sha256 = base64::engine::general_purpose::STANDARD.encode(digest);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let root = inner.options.work_dir.join("code").join(&hex);
    if !root.join("bootstrap").exists() {
        let unpacked = unpack(&bytes, &root);
        if let Err(message) = unpacked {
            let _ = std::fs::remove_dir_all(&root);
            return Err(Box::new(invalid(format!("Could not unzip uploaded file: {message}"))));
        }
        if !root.join("bootstrap").is_file() {
            let _ = std::fs::remove_dir_all(&root);
            return Err(Box::new(invalid("the zip has no `bootstrap` at its root (runtime provided.al2023)")));
        }
    }
    Ok(Code { sha256, size: bytes.len() as u64, root })
}

pub(super) fn unpack(bytes: &[u8], root: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| e.to_string())?;
    // A staging directory of this call's own: functions sharing one zip are
    // created concurrently (a deploy wave), each unpacking it.
    static STAGINGS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let attempt = STAGINGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let staging = root.with_extension(format!("partial-{}-{attempt}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|e| e.to_string())?;
        let Some(relative) = entry.enclosed_name() else { return Err(format!("unsafe path {}", entry.name())) };
        let path = staging.join(&relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&path).map_err(|e| e.to_string())?;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        let mut content = Vec::new();
        entry.read_to_end(&mut content).map_err(|e| e.to_string())?;
        std::fs::write(&path, content).map_err(|e| e.to_string())?;
        let mode = entry.unix_mode().unwrap_or(0o644) | if relative.as_os_str() == "bootstrap" { 0o755 } else { 0 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o7777)).map_err(|e| e.to_string())?;
    }
    std::fs::create_dir_all(&staging).map_err(|e| e.to_string())?;
    match std::fs::rename(&staging, root) {
        Ok(()) => Ok(()),
        // Another call unpacked the same zip first: its copy serves.
        Err(_) if root.join("bootstrap").is_file() => {
            let _ = std::fs::remove_dir_all(&staging);
            Ok(())
        }
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(error.to_string())
        }
    }
}

pub(super) async fn create_function(State(inner): Shared, body: Bytes) -> Response {
    let request = match body_json(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let Some(name) = request["FunctionName"].as_str().map(str::to_string) else {
        return invalid("FunctionName is required");
    };
    if inner.function(&name).is_some() {
        return error(StatusCode::CONFLICT, "ResourceConflictException", format!("Function already exist: {name}"));
    }
    let Some(role) = request["Role"].as_str().filter(|r| r.starts_with("arn:aws:iam::")) else {
        return invalid("Role must be an IAM role ARN");
    };
    if let Err(response) = check_role(&inner, role).await {
        return *response;
    }
    let Some(zip) = request.pointer("/Code/ZipFile").and_then(Value::as_str) else {
        return invalid("Code.ZipFile is required (the local Lambda service keeps no S3 code)");
    };
    let code = match store_code(&inner, zip) {
        Ok(code) => code,
        Err(response) => return *response,
    };
    let record = FunctionRecord {
        arn: format!("arn:aws:lambda:{}:{}:function:{name}", inner.options.region, inner.options.account),
        name: name.clone(),
        role: role.to_string(),
        runtime: request["Runtime"].as_str().unwrap_or("provided.al2023").to_string(),
        handler: request["Handler"].as_str().unwrap_or("bootstrap").to_string(),
        memory_size: request["MemorySize"].as_i64().unwrap_or(128),
        timeout_seconds: request["Timeout"].as_i64().unwrap_or(3),
        ephemeral_storage_mb: request.pointer("/EphemeralStorage/Size").and_then(Value::as_i64).unwrap_or(512),
        environment: string_map(&request.pointer("/Environment/Variables").cloned().unwrap_or(Value::Null)),
        architectures: Some(strings(&request["Architectures"]))
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| vec!["x86_64".into()]),
        layers: strings(&request["Layers"]),
        tags: string_map(&request["Tags"]),
        reserved_concurrency: None,
        code,
        revision: inner.revision(),
        last_modified: timestamp_now(),
        permissions: BTreeMap::new(),
        url: None,
    };
    if let Err(message) = validate(&record) {
        return invalid(message);
    }
    let configuration = record.configuration();
    if let Ok(mut functions) = inner.functions.lock() {
        functions.insert(name, record);
    }
    ok(StatusCode::CREATED, configuration)
}

/// AWS refuses a role whose trust policy does not let Lambda assume it (or
/// that does not exist).
async fn check_role(inner: &Inner, role: &str) -> Result<(), Refusal> {
    match crate::iam::service_may_assume(&inner.iam, role, "lambda.amazonaws.com").await {
        Ok(true) => Ok(()),
        Ok(false) => Err(Box::new(invalid("The role defined for the function cannot be assumed by Lambda."))),
        Err(problem) => Err(Box::new(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceException",
            format!("cannot read the role {role} from the emulator's IAM: {problem}"),
        ))),
    }
}

/// The limits Lambda enforces on a configuration.
pub(super) fn validate(record: &FunctionRecord) -> Result<(), String> {
    if !(128..=10_240).contains(&record.memory_size) {
        return Err(format!("MemorySize {} is outside 128..=10240", record.memory_size));
    }
    if !(1..=900).contains(&record.timeout_seconds) {
        return Err(format!("Timeout {} is outside 1..=900", record.timeout_seconds));
    }
    if !(512..=10_240).contains(&record.ephemeral_storage_mb) {
        return Err(format!("EphemeralStorage {} is outside 512..=10240", record.ephemeral_storage_mb));
    }
    let size: usize = record.environment.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > 4096 {
        return Err(format!(
            "Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit ({size} bytes)"
        ));
    }
    for reserved in
        ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_LAMBDA_RUNTIME_API"]
    {
        if record.environment.contains_key(reserved) {
            return Err(format!("Reserved keys used in this request: {reserved}"));
        }
    }
    Ok(())
}

pub(super) async fn list_functions(State(inner): Shared) -> Response {
    let functions: Vec<Value> =
        inner.functions.lock().map(|f| f.values().map(FunctionRecord::configuration).collect()).unwrap_or_default();
    ok(StatusCode::OK, json!({"Functions": functions}))
}

pub(super) async fn get_function(State(inner): Shared, Path(name): Path<String>) -> Response {
    match inner.function(function_name(&name)) {
        Some(function) => ok(StatusCode::OK, function.description()),
        None => not_found(&format!("Function {name}")),
    }
}

pub(super) async fn get_configuration(State(inner): Shared, Path(name): Path<String>) -> Response {
    match inner.function(function_name(&name)) {
        Some(function) => ok(StatusCode::OK, function.configuration()),
        None => not_found(&format!("Function {name}")),
    }
}

pub(super) async fn delete_function(State(inner): Shared, Path(name): Path<String>) -> Response {
    let name = function_name(&name).to_string();
    let removed = inner.functions.lock().ok().and_then(|mut f| f.remove(&name));
    let Some(removed) = removed else { return not_found(&format!("Function {name}")) };
    if let Some((_, server)) = inner.url_servers.lock().ok().and_then(|mut s| s.remove(&name)) {
        server.abort();
    }
    // Idle instances stop now; busy ones stop when their invocation ends
    // (`release` sees the function gone). The pool stays, so its count of
    // running invocations stays right if the name is created again.
    if let Ok(mut pools) = inner.pools.lock()
        && let Some(pool) = pools.get_mut(&name)
    {
        pool.idle.clear();
    }
    // Lambda keeps a deleted function's mappings (they fail); we stop them.
    let orphans: Vec<String> = inner
        .mapping_configs
        .lock()
        .map(|m| m.values().filter(|c| c.function_arn == removed.arn).map(|c| c.uuid.clone()).collect())
        .unwrap_or_default();
    for uuid in orphans {
        if let Some(mappings) = inner.mappings.get() {
            mappings.remove(&uuid);
        }
        if let Ok(mut configs) = inner.mapping_configs.lock() {
            configs.remove(&uuid);
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

pub(super) async fn update_code(State(inner): Shared, Path(name): Path<String>, body: Bytes) -> Response {
    let request = match body_json(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let Some(zip) = request["ZipFile"].as_str() else { return invalid("ZipFile is required") };
    let code = match store_code(&inner, zip) {
        Ok(code) => code,
        Err(response) => return *response,
    };
    let revision = inner.revision();
    let architectures = strings(&request["Architectures"]);
    match with_function(&inner, &name, |f| {
        f.code = code;
        f.revision = revision;
        f.last_modified = timestamp_now();
        if !architectures.is_empty() {
            f.architectures = architectures;
        }
        f.configuration()
    }) {
        Some(configuration) => ok(StatusCode::OK, configuration),
        None => not_found(&format!("Function {name}")),
    }
}

pub(super) async fn update_configuration(State(inner): Shared, Path(name): Path<String>, body: Bytes) -> Response {
    let request = match body_json(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let Some(mut function) = inner.function(function_name(&name)) else {
        return not_found(&format!("Function {name}"));
    };
    if let Some(role) = request["Role"].as_str() {
        if let Err(response) = check_role(&inner, role).await {
            return *response;
        }
        function.role = role.to_string();
    }
    if let Some(memory) = request["MemorySize"].as_i64() {
        function.memory_size = memory;
    }
    if let Some(timeout) = request["Timeout"].as_i64() {
        function.timeout_seconds = timeout;
    }
    if let Some(size) = request.pointer("/EphemeralStorage/Size").and_then(Value::as_i64) {
        function.ephemeral_storage_mb = size;
    }
    if let Some(variables) = request.pointer("/Environment/Variables") {
        function.environment = string_map(variables);
    }
    if request.get("Layers").is_some() {
        function.layers = strings(&request["Layers"]);
    }
    if let Some(handler) = request["Handler"].as_str() {
        function.handler = handler.to_string();
    }
    if let Err(message) = validate(&function) {
        return invalid(message);
    }
    function.revision = inner.revision();
    function.last_modified = timestamp_now();
    let configuration = function.configuration();
    if let Ok(mut functions) = inner.functions.lock() {
        functions.insert(function.name.clone(), function);
    }
    ok(StatusCode::OK, configuration)
}

// Reserved concurrency.

pub(super) async fn put_concurrency(State(inner): Shared, Path(name): Path<String>, body: Bytes) -> Response {
    let request = match body_json(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let Some(reserved) = request["ReservedConcurrentExecutions"].as_i64().filter(|r| *r >= 0) else {
        return invalid("ReservedConcurrentExecutions must be a number ≥ 0");
    };
    match with_function(&inner, &name, |f| f.reserved_concurrency = Some(reserved)) {
        Some(()) => ok(StatusCode::OK, json!({"ReservedConcurrentExecutions": reserved})),
        None => not_found(&format!("Function {name}")),
    }
}

pub(super) async fn delete_concurrency(State(inner): Shared, Path(name): Path<String>) -> Response {
    match with_function(&inner, &name, |f| f.reserved_concurrency = None) {
        Some(()) => StatusCode::NO_CONTENT.into_response(),
        None => not_found(&format!("Function {name}")),
    }
}

pub(super) async fn get_concurrency(State(inner): Shared, Path(name): Path<String>) -> Response {
    match inner.function(function_name(&name)) {
        Some(f) => ok(
            StatusCode::OK,
            f.reserved_concurrency.map(|r| json!({"ReservedConcurrentExecutions": r})).unwrap_or(json!({})),
        ),
        None => not_found(&format!("Function {name}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::Write;

    use super::unpack;

    fn zip_with_bootstrap() -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        writer.start_file("bootstrap", zip::write::SimpleFileOptions::default()).unwrap();
        writer.write_all(&vec![b'x'; 256 * 1024]).unwrap();
        writer.finish().unwrap().into_inner()
    }

    #[test]
    fn functions_sharing_a_zip_unpack_it_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("code").join("abc");
        let bytes = zip_with_bootstrap();
        let unpacked: Vec<Result<(), String>> = std::thread::scope(|scope| {
            let calls: Vec<_> = (0..8).map(|_| scope.spawn(|| unpack(&bytes, &root))).collect();
            calls.into_iter().map(|call| call.join().unwrap()).collect()
        });
        assert!(unpacked.iter().all(Result::is_ok), "{unpacked:?}");
        assert_eq!(std::fs::metadata(root.join("bootstrap")).unwrap().len(), 256 * 1024);
        let left: Vec<_> =
            std::fs::read_dir(dir.path().join("code")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("abc")], "no staging directory is left behind");
    }
}
