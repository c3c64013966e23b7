//! The `<Plugin>Tasks` function: S3 upload notifications (SQS messages whose
//! bodies are S3 event notifications) become task runs. Each object under
//! `tasks/<Task>/` is streamed with GetObject into the platform-independent
//! runner ([`reventless_core::task::run_task`]).
//!
//! - **Run id**: `<key>#<ETag>` (and `#<versionId>` in a versioned bucket).
//!   A redelivered message (the function died, timed out, or the message
//!   came back after its visibility timeout) is the same run: it resumes at
//!   its checkpoint — the object read from that byte on with a ranged
//!   GetObject — and never sends a record's commands twice. The same bytes
//!   uploaded again under the same key are that run too (already
//!   completed: nothing happens); upload under a new key to run again.
//! - **Reading exactly what was announced**: GetObject asks `If-Match` the
//!   event's ETag; an object replaced since is skipped here (its own
//!   notification runs it).
//! - **Caller**: S3 names the uploader only as an AWS principal, which is
//!   no user of the application, and object metadata is the uploader's own
//!   word. So the commands run as the system caller `s3:<principal id>`
//!   holding the task's roles: whoever may put objects under `tasks/<Task>/`
//!   (an IAM grant on the bucket) may run the task.
//! - `s3:TestEvent` messages (S3 sends one when notifications are set up)
//!   are acknowledged and ignored; so are keys of no task of this plugin.
use aws_sdk_s3::error::ProvideErrorMetadata;
use reventless_core::task::{TaskError, TaskRun, TaskStatus, run_task, task_run};
use reventless_core::{Caller, Runtime};
use serde::Deserialize;
use serde_json::{Value, json};

/// The key prefix uploads of a task go under: `tasks/<Task>/…`.
pub const TASKS_PREFIX: &str = "tasks/";

/// What an S3 notification message holds (only the fields used).
#[derive(Debug, Deserialize)]
struct Notification {
    #[serde(rename = "Records", default)]
    records: Vec<S3Record>,
    /// `s3:TestEvent` for the message S3 sends when notifications are set.
    #[serde(rename = "Event")]
    event: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct S3Record {
    #[serde(default)]
    event_name: String,
    s3: S3Entity,
    user_identity: Option<Identity>,
}

#[derive(Debug, Deserialize)]
struct S3Entity {
    bucket: Bucket,
    object: Object,
}

#[derive(Debug, Deserialize)]
struct Bucket {
    name: String,
}

#[derive(Debug, Deserialize)]
struct Object {
    /// URL-encoded, `+` for a space.
    key: String,
    #[serde(rename = "eTag", default)]
    etag: Option<String>,
    #[serde(rename = "versionId", default)]
    version_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Identity {
    #[serde(rename = "principalId")]
    principal_id: Option<String>,
}

/// One upload to run: which task, which object, as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub task: String,
    pub bucket: String,
    pub key: String,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    /// The AWS principal S3 names as the uploader.
    pub principal: Option<String>,
}

impl Upload {
    /// `<key>#<ETag>[#<versionId>]`, or its SHA-256 when that exceeds the
    /// runner's 1024 bytes (S3 keys may take 1024 themselves).
    pub fn run_id(&self) -> String {
        let mut id = format!("{}#{}", self.key, self.etag.as_deref().unwrap_or_default());
        if let Some(version) = &self.version_id {
            id.push('#');
            id.push_str(version);
        }
        if id.len() <= 1024 {
            return id;
        }
        use sha2::Digest;
        let digest: String = sha2::Sha256::digest(id.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{digest}")
    }
}

/// What a notification message asks of a plugin with `tasks`: the uploads
/// to run (none for a test event or keys of no task), or why it cannot be read.
pub fn uploads(body: &str, tasks: &[String]) -> Result<Vec<Upload>, String> {
    let notification: Notification =
        serde_json::from_str(body).map_err(|error| format!("not an S3 notification: {error}"))?;
    if notification.event.as_deref() == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    let mut uploads = Vec::new();
    for record in notification.records {
        if !record.event_name.starts_with("ObjectCreated:") {
            tracing::info!(event = record.event_name, "not an upload: ignored");
            continue;
        }
        let key = form_decode(&record.s3.object.key);
        let task = key
            .strip_prefix(TASKS_PREFIX)
            .and_then(|rest| rest.split_once('/'))
            .map(|(task, _)| task.to_string())
            .filter(|task| tasks.contains(task));
        let Some(task) = task else {
            tracing::warn!(key, "an upload outside tasks/<Task>/ of this plugin's tasks: ignored");
            continue;
        };
        uploads.push(Upload {
            task,
            bucket: record.s3.bucket.name,
            key,
            etag: record.s3.object.etag.map(|etag| etag.trim_matches('"').to_string()).filter(|e| !e.is_empty()),
            version_id: record.s3.object.version_id.filter(|v| !v.is_empty() && v != "null"),
            principal: record.user_identity.and_then(|identity| identity.principal_id),
        });
    }
    Ok(uploads)
}

/// `application/x-www-form-urlencoded` decoding, as S3 encodes event keys.
fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' => {
                let hex = text.get(index + 1..index + 3).filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()));
                match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        index += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The per-container part of a task function: its S3 client and the plugin's tasks.
pub struct Tasks {
    s3: aws_sdk_s3::Client,
    plugin: String,
    tasks: Vec<String>,
}

/// Why one upload did not run to its end (its message comes back).
#[derive(Debug, thiserror::Error)]
enum UploadError {
    #[error("GetObject {key}: {message}")]
    Read { key: String, message: String },
    #[error(transparent)]
    Task(#[from] TaskError),
    #[error("run {run_id} failed: {error}")]
    Failed { run_id: String, error: String },
}

impl Tasks {
    pub fn new(sdk: &aws_config::SdkConfig, manifest: &reventless_core::Manifest) -> Self {
        let tasks = manifest
            .components
            .iter()
            .filter(|c| c.kind == reventless_core::plugin::ComponentKind::Task)
            .map(|c| c.name.clone())
            .collect();
        Self { s3: aws_sdk_s3::Client::new(sdk), plugin: manifest.plugin.clone(), tasks }
    }

    /// A batch from the tasks queue: each message's uploads run in turn; a
    /// message whose run did not finish (crash aside: a read or store
    /// error, a run busy elsewhere) is reported failed and comes back.
    pub async fn handle(&self, runtime: &Runtime, payload: &Value) -> Value {
        let records = payload.get("Records").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut failed = Vec::new();
        for record in &records {
            let id = record.get("messageId").and_then(Value::as_str).unwrap_or_default().to_string();
            let body = record.get("body").and_then(Value::as_str).unwrap_or_default();
            let uploads = match uploads(body, &self.tasks) {
                Ok(uploads) => uploads,
                Err(error) => {
                    // Retrying cannot make it readable: dropped, and said.
                    tracing::error!(message_id = id, error, "not an S3 notification: dropped");
                    continue;
                }
            };
            for upload in uploads {
                match self.run(runtime, &upload).await {
                    Ok(()) => {}
                    Err(UploadError::Task(error)) if permanent(&error) => {
                        tracing::error!(key = upload.key, task = upload.task, %error, "the upload cannot run: dropped");
                    }
                    Err(error) => {
                        tracing::warn!(message_id = id, key = upload.key, %error, "the run stopped; its message comes back and resumes it");
                        failed.push(json!({ "itemIdentifier": id }));
                        break;
                    }
                }
            }
        }
        json!({ "batchItemFailures": failed })
    }

    /// Runs (or resumes) one upload's run.
    async fn run(&self, runtime: &Runtime, upload: &Upload) -> Result<(), UploadError> {
        let run_id = upload.run_id();
        let existing = task_run(runtime, &self.plugin, &upload.task, &run_id).await?;
        let offset = match existing.as_ref().map(|row| row.resume_offset()) {
            Some(None) => {
                tracing::info!(run_id, "the run is complete: nothing to do");
                return Ok(());
            }
            Some(Some(offset)) => offset,
            None => 0,
        };
        let mut get = self.s3.get_object().bucket(&upload.bucket).key(&upload.key);
        if let Some(etag) = &upload.etag {
            get = get.if_match(format!("\"{etag}\""));
        }
        if let Some(version) = &upload.version_id {
            get = get.version_id(version);
        }
        if offset > 0 {
            get = get.range(format!("bytes={offset}-"));
        }
        let object = match get.send().await {
            Ok(object) => object,
            Err(error) => {
                let status = error.raw_response().map(|r| r.status().as_u16());
                if matches!(status, Some(404 | 412)) || matches!(error.code(), Some("NoSuchKey" | "PreconditionFailed"))
                {
                    // Replaced or deleted since: its own notification (if any) runs what is there now.
                    tracing::warn!(key = upload.key, run_id, "the announced object is gone or replaced: skipped");
                    return Ok(());
                }
                let message = aws_sdk_s3::error::DisplayErrorContext(&error).to_string();
                return Err(UploadError::Read { key: upload.key.clone(), message });
            }
        };
        let reader = Box::pin(object.body.into_async_read());
        let caller = Caller {
            user_id: Some(format!("s3:{}", upload.principal.as_deref().unwrap_or("upload"))),
            roles: task_roles(runtime, &self.plugin, &upload.task),
        };
        let run = TaskRun::new(run_id.clone(), upload.key.clone(), caller).start_offset(offset);
        let row = run_task(runtime, &self.plugin, &upload.task, run, reader, &|_| {}).await?;
        match row.status {
            TaskStatus::Completed => {
                tracing::info!(
                    run_id,
                    records = row.records_read,
                    accepted = row.accepted,
                    rejected = row.rejected,
                    "task run completed"
                );
                Ok(())
            }
            _ => Err(UploadError::Failed { run_id, error: row.error.unwrap_or_default() }),
        }
    }
}

/// The roles of task `task` of `plugin` (the system caller holds them).
fn task_roles(runtime: &Runtime, plugin: &str, task: &str) -> Vec<String> {
    let hosted = runtime.plugins().find(|hosted| hosted.name == plugin);
    let handler = hosted.and_then(|hosted| hosted.tasks.iter().find(|handler| handler.name() == task));
    handler.map(|handler| handler.roles().iter().map(|role| role.to_string()).collect()).unwrap_or_default()
}

/// Errors that running again cannot change.
fn permanent(error: &TaskError) -> bool {
    matches!(
        error,
        TaskError::UnknownPlugin(_)
            | TaskError::UnknownTask { .. }
            | TaskError::AccessRefused { .. }
            | TaskError::UnknownFormat { .. }
            | TaskError::UnsupportedFormat { .. }
            | TaskError::InvalidRunId(_)
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tasks() -> Vec<String> {
        vec!["ImportProducts".to_string()]
    }

    #[test]
    fn notifications_become_uploads_and_test_events_nothing() {
        let test_event = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-12-01T10:20:01Z","Bucket":"b"}"#;
        assert_eq!(uploads(test_event, &tasks()).unwrap(), Vec::new());
        let body = json!({"Records": [
            {"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
             "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
             "s3": {"bucket": {"name": "b"}, "object": {"key": "tasks/ImportProducts/new+products%2B%C3%A9.csv",
                    "eTag": "abc", "size": 12, "sequencer": "0A"}}},
            {"eventName": "ObjectCreated:Put",
             "s3": {"bucket": {"name": "b"}, "object": {"key": "tasks%2FOther%2Fx.csv", "eTag": "d"}}},
            {"eventName": "ObjectRemoved:Delete",
             "s3": {"bucket": {"name": "b"}, "object": {"key": "tasks/ImportProducts/y.csv"}}},
        ]})
        .to_string();
        let found = uploads(&body, &tasks()).unwrap();
        assert_eq!(
            found,
            vec![Upload {
                task: "ImportProducts".into(),
                bucket: "b".into(),
                key: "tasks/ImportProducts/new products+é.csv".into(),
                etag: Some("abc".into()),
                version_id: None,
                principal: Some("AWS:AIDAEXAMPLE".into()),
            }],
            "another task's key and a removal are not runs"
        );
        assert_eq!(found[0].run_id(), "tasks/ImportProducts/new products+é.csv#abc");
        let versioned = Upload { version_id: Some("v2".into()), ..found[0].clone() };
        assert_eq!(versioned.run_id(), "tasks/ImportProducts/new products+é.csv#abc#v2");
        let long = Upload { key: format!("tasks/ImportProducts/{}", "k".repeat(1020)), ..found[0].clone() };
        assert!(long.run_id().starts_with("sha256:") && long.run_id().len() == 71, "{}", long.run_id());
        assert!(uploads("not json", &tasks()).unwrap_err().contains("not an S3 notification"));
    }

    #[test]
    fn keys_decode_as_s3_encodes_them() {
        assert_eq!(form_decode("a+b%2Fc%25"), "a b/c%");
        assert_eq!(form_decode("100%"), "100%");
        assert_eq!(form_decode("%zz%4"), "%zz%4");
    }
}
