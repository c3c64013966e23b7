//! Running a file task of a deployed stage from outside: the file is
//! uploaded under `tasks/<Task>/` of its stack's bucket (multipart past
//! [`PART_SIZE`], with progress), and its run row is read from the stack's
//! rows table while the task function works (`reventless task`).
use std::path::Path;

use reventless_core::store::QueryStore;
use reventless_core::task::TaskRunRow;
use tokio::io::AsyncReadExt;

use super::apply::Clients;
use super::config::ProjectConfig;
use super::plan::{TASKS_PREFIX, stack_names, tasks_bucket};
use crate::query_store::DynamoQueryStore;

/// Bytes per part of a multipart upload (and the largest single PutObject used).
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// Where a task of a stage takes its files and keeps its runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskTarget {
    pub stack: String,
    pub plugin: String,
    pub task: String,
    pub bucket: String,
    pub rows_table: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TaskUploadError {
    #[error("`{0}` is not <Plugin>.<Task> (e.g. Catalog.ImportProducts)")]
    BadName(String),
    #[error("no plugin stack of the project is plugin `{plugin}` (stacks: {known})")]
    UnknownPlugin { plugin: String, known: String },
    #[error("cannot read {path}: {message}")]
    File { path: String, message: String },
    #[error("{call} {name}: {message}")]
    Aws { call: String, name: String, message: String },
}

/// The stack running `<Plugin>.<Task>` (by plugin name or stack key) and its names.
pub fn task_target(config: &ProjectConfig, account: &str, name: &str) -> Result<TaskTarget, TaskUploadError> {
    let (plugin, task) = name
        .split_once('.')
        .filter(|(p, t)| !p.is_empty() && !t.is_empty() && !t.contains(['.', '/']))
        .ok_or_else(|| TaskUploadError::BadName(name.to_string()))?;
    let stack = config
        .plugins
        .keys()
        .find(|stack| config.plugin_name(stack) == plugin || stack.as_str() == plugin)
        .ok_or_else(|| TaskUploadError::UnknownPlugin {
            plugin: plugin.to_string(),
            known: config.plugins.keys().cloned().collect::<Vec<_>>().join(", "),
        })?;
    Ok(TaskTarget {
        stack: stack.clone(),
        plugin: config.plugin_name(stack),
        task: task.to_string(),
        bucket: tasks_bucket(config, stack, account),
        rows_table: stack_names(config, stack).stores.rows_table,
    })
}

/// The key an upload of `file_name` gets: `tasks/<Task>/<UTC time>-<file name>`
/// (a new key per upload: the same bytes under the same key are the same run).
pub fn upload_key(task: &str, file_name: &str, millis: u64) -> String {
    let name: String = file_name.chars().map(|c| if c.is_control() || c == '/' { '_' } else { c }).collect();
    format!("{TASKS_PREFIX}{task}/{millis}-{name}")
}

fn aws<E: std::error::Error + 'static>(call: &str, name: &str) -> impl FnOnce(E) -> TaskUploadError {
    let (call, name) = (call.to_string(), name.to_string());
    move |error| TaskUploadError::Aws {
        call,
        name,
        message: aws_sdk_s3::error::DisplayErrorContext(&error).to_string(),
    }
}

/// Uploads `path` as `key` of the task's bucket, calling `progress(sent,
/// total)` after each part; answers the run id the task function will use
/// (`<key>#<ETag>`).
pub async fn upload(
    clients: &Clients,
    target: &TaskTarget,
    path: &Path,
    key: &str,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<String, TaskUploadError> {
    let file_error =
        |error: std::io::Error| TaskUploadError::File { path: path.display().to_string(), message: error.to_string() };
    let total = tokio::fs::metadata(path).await.map_err(file_error)?.len();
    let mut file = tokio::fs::File::open(path).await.map_err(file_error)?;
    let bucket = target.bucket.as_str();
    let mut first = read_part(&mut file).await.map_err(file_error)?;
    if (first.len() as u64) == total {
        let put = clients
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(std::mem::take(&mut first).into())
            .send()
            .await
            .map_err(aws("PutObject", key))?;
        progress(total, total);
        return Ok(format!("{key}#{}", put.e_tag().unwrap_or_default().trim_matches('"')));
    }
    let created = clients
        .s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(aws("CreateMultipartUpload", key))?;
    let upload_id = created.upload_id().unwrap_or_default().to_string();
    let mut parts = Vec::new();
    let mut sent = 0u64;
    let mut chunk = first;
    let outcome: Result<(), TaskUploadError> = async {
        while !chunk.is_empty() {
            let number = i32::try_from(parts.len() + 1).unwrap_or(i32::MAX);
            let length = chunk.len() as u64;
            let part = clients
                .s3
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(&upload_id)
                .part_number(number)
                .body(std::mem::take(&mut chunk).into())
                .send()
                .await
                .map_err(aws("UploadPart", key))?;
            parts.push(
                aws_sdk_s3::types::CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(part.e_tag().map(str::to_string))
                    .build(),
            );
            sent += length;
            progress(sent, total);
            chunk = read_part(&mut file).await.map_err(file_error)?;
        }
        Ok(())
    }
    .await;
    if let Err(error) = outcome {
        // Parts of an unfinished upload are billed until aborted.
        let _ = clients.s3.abort_multipart_upload().bucket(bucket).key(key).upload_id(&upload_id).send().await;
        return Err(error);
    }
    let completed = aws_sdk_s3::types::CompletedMultipartUpload::builder().set_parts(Some(parts)).build();
    let done = clients
        .s3
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(&upload_id)
        .multipart_upload(completed)
        .send()
        .await
        .map_err(aws("CompleteMultipartUpload", key))?;
    Ok(format!("{key}#{}", done.e_tag().unwrap_or_default().trim_matches('"')))
}

/// Up to [`PART_SIZE`] bytes (fewer only at the end of the file).
async fn read_part(file: &mut tokio::fs::File) -> std::io::Result<Vec<u8>> {
    let mut part = Vec::with_capacity(PART_SIZE);
    while part.len() < PART_SIZE {
        let read = (&mut *file).take((PART_SIZE - part.len()) as u64).read_to_end(&mut part).await?;
        if read == 0 {
            break;
        }
    }
    Ok(part)
}

/// The run row `run_id` of the task, as the task function last saved it (None before it starts).
pub async fn run_row(
    clients: &Clients,
    target: &TaskTarget,
    run_id: &str,
) -> Result<Option<TaskRunRow>, TaskUploadError> {
    let store = DynamoQueryStore::new(clients.dynamodb.clone(), target.rows_table.clone());
    let table = reventless_core::plugin::task_runs_table(&target.plugin, &target.task);
    let row = store.get(&table, run_id).await.map_err(|error| TaskUploadError::Aws {
        call: "GetItem".into(),
        name: target.rows_table.clone(),
        message: error.to_string(),
    })?;
    row.map(|row| {
        serde_json::from_value(row).map_err(|error| TaskUploadError::Aws {
            call: "GetItem".into(),
            name: target.rows_table.clone(),
            message: format!("the run row does not read as a run: {error}"),
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn a_task_is_named_plugin_dot_task_and_found_by_plugin_or_stack() {
        let file = "project = \"shop\"\n[plugins.catalog]\nname = \"Catalog\"\n[stages.dev]\n";
        let config = ProjectConfig::from_texts(file, None, "dev", &|_| None, PathBuf::from(".")).unwrap();
        let target = task_target(&config, "123456789012", "Catalog.ImportProducts").unwrap();
        assert_eq!(target.stack, "catalog");
        assert_eq!(target.bucket, "shop-dev-catalog-tasks-123456789012-us-east-1");
        assert_eq!(target.rows_table, "shop-dev-catalog-rows");
        assert_eq!(task_target(&config, "1", "catalog.ImportProducts").unwrap().plugin, "Catalog");
        for bad in ["Catalog", "Catalog.", ".Import", "Catalog.a/b"] {
            assert_eq!(task_target(&config, "1", bad), Err(TaskUploadError::BadName(bad.into())));
        }
        let unknown = task_target(&config, "1", "Ordering.X").unwrap_err().to_string();
        assert!(unknown.contains("Ordering") && unknown.contains("catalog"), "{unknown}");
        assert_eq!(upload_key("ImportProducts", "a/b\n.csv", 7), "tasks/ImportProducts/7-a_b_.csv");
    }
}
