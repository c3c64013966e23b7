//! A plugin stack's file tasks: one S3 bucket per stack whose uploads under
//! `tasks/<Task>/` notify a standard SQS queue (S3 cannot notify FIFO
//! queues), drained by the plugin's `<Plugin>Tasks` function.
//!
//! Bucket names are global across all AWS accounts, lowercase and 3–63
//! characters: `{project}-{stage}-{stack}-tasks-{account}-{region}`,
//! lowercased with every character S3 refuses as `-`. The account and region
//! keep two accounts (or regions) deploying the same project apart. When the
//! name had to be changed to fit (uppercase, `_`, too long), it ends in a
//! hash of the unchanged name, so `Shop` and `shop` never share a bucket. A
//! name still taken by another account fails the deploy naming the bucket
//! (see `apply::buckets`).
use reventless_core::Manifest;
use reventless_core::plugin::ComponentKind;
use serde_json::{Value, json};

use super::names::{Arns, FUNCTION_NAME_MAX, StackNames, resource_name};
use super::units::FunctionUnit;
use super::{Resource, ResourceKind, parameter, policies, tags};
use crate::deploy::config::ProjectConfig;
use crate::lambda::FunctionConfig;

/// The handler group of a plugin's task function.
pub const TASKS_GROUP: &str = "Tasks";
pub use crate::lambda::TASKS_PREFIX;
/// The stack output naming its tasks bucket.
pub const TASKS_BUCKET_OUTPUT: &str = "tasks-bucket";
/// S3's longest bucket name.
pub const BUCKET_NAME_MAX: usize = 63;
/// Files per invocation of the task function: one, so that a long file
/// never holds others back and a timeout returns only its own message.
pub const TASKS_BATCH_SIZE: i64 = 1;
/// Receives of an upload's message before it goes to the dead-letter queue.
pub const TASKS_MAX_RECEIVES: i64 = 5;

/// The names of a stack's task resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskNames {
    pub bucket: String,
    pub queue: String,
    pub dead_letters: String,
    pub function: String,
}

/// The tasks of a plugin's manifest (component names, e.g. `ImportProducts`).
pub fn manifest_tasks(manifest: &Manifest) -> Vec<String> {
    let mut tasks: Vec<String> =
        manifest.components.iter().filter(|c| c.kind == ComponentKind::Task).map(|c| c.name.clone()).collect();
    tasks.sort();
    tasks
}

/// The function unit draining the tasks queue, when the plugin has tasks.
pub fn task_unit(manifest: &Manifest) -> Option<FunctionUnit> {
    let plugin = &manifest.plugin;
    (!manifest_tasks(manifest).is_empty()).then(|| FunctionUnit::whole(TASKS_GROUP, format!("{plugin}{TASKS_GROUP}")))
}

/// The tasks bucket of plugin stack `stack` (see the module's doc).
pub fn tasks_bucket(config: &ProjectConfig, stack: &str, account: &str) -> String {
    bucket_name(&format!("{}-{}-{stack}-tasks-{account}-{}", config.project, config.stage, config.region))
}

/// A valid S3 bucket name for `wanted`: lowercase letters, digits and `-`,
/// starting and ending with a letter or digit, at most 63 characters; a
/// hash of `wanted` is appended whenever it had to change.
pub fn bucket_name(wanted: &str) -> String {
    let mut name: String = wanted
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '-' })
        .collect();
    let trimmed = name.trim_matches('-').to_string();
    name = trimmed;
    if name == wanted && name.len() <= BUCKET_NAME_MAX && name.len() >= 3 {
        return name;
    }
    use sha2::Digest;
    let hash: String = sha2::Sha256::digest(wanted.as_bytes()).iter().take(4).map(|b| format!("{b:02x}")).collect();
    let keep = BUCKET_NAME_MAX - hash.len() - 1;
    name.truncate(keep);
    let start = name.trim_end_matches('-');
    if start.is_empty() { format!("r-{hash}") } else { format!("{start}-{hash}") }
}

/// The names of plugin stack `stack`'s task resources.
pub fn task_names(config: &ProjectConfig, stack: &str, account: &str) -> TaskNames {
    let plugin = config.plugin_name(stack);
    TaskNames {
        bucket: tasks_bucket(config, stack, account),
        queue: resource_name(config, stack, "tasks", 80),
        dead_letters: resource_name(config, stack, "tasks-dlq", 80),
        function: resource_name(config, stack, &format!("{plugin}{TASKS_GROUP}"), FUNCTION_NAME_MAX),
    }
}

/// `arn:aws:s3:::<bucket>` (bucket ARNs name no region or account).
pub fn bucket_arn(bucket: &str) -> String {
    format!("arn:aws:s3:::{bucket}")
}

/// The queue policy letting exactly this bucket (of this account) notify the queue.
pub fn notification_queue_policy(queue_arn: &str, bucket: &str, account: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "reventless-s3-notifications",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {
                "ArnEquals": {"aws:SourceArn": bucket_arn(bucket)},
                "StringEquals": {"aws:SourceAccount": account},
            },
        }],
    })
}

/// What the stack's planner hands over.
pub(super) struct TaskStack<'a> {
    pub config: &'a ProjectConfig,
    pub arns: &'a Arns<'a>,
    pub stack: &'a str,
    pub manifest: &'a Manifest,
    pub names: &'a StackNames,
    /// The plugin's async command queues (a task's commands may go there).
    pub queue_arns: &'a [String],
}

/// The bucket, the queue with its policy and dead-letter queue, the task
/// function (role, log group, function) and its mapping, and the output
/// `tasks-bucket` — nothing when the plugin has no task.
pub(super) fn task_resources(context: &TaskStack) -> Vec<Resource> {
    let TaskStack { config, arns, stack, manifest, names, queue_arns } = *context;
    let Some(unit) = task_unit(manifest) else { return Vec::new() };
    let tasks = manifest_tasks(manifest);
    let task = task_names(config, stack, arns.account);
    let plugin = config.plugin_name(stack);
    let tuning = config.tuning(stack, &[unit.group, &unit.name]);
    let queue_arn = arns.queue(&task.queue);
    let mut resources = vec![
        Resource {
            kind: ResourceKind::Queue,
            name: task.dead_letters.clone(),
            stack: stack.to_string(),
            component: unit.name.clone(),
            tags: tags(config, stack, &unit.name),
            spec: json!({"fifo": false, "visibilityTimeout": 30, "redriveTo": null, "maxReceiveCount": null}),
        },
        Resource {
            kind: ResourceKind::Queue,
            name: task.queue.clone(),
            stack: stack.to_string(),
            component: unit.name.clone(),
            tags: tags(config, stack, &unit.name),
            // Lambda wants at least the function's timeout; six times leaves
            // room for its retries. A file that outlives it is resumed.
            spec: json!({"fifo": false, "visibilityTimeout": tuning.timeout * 6,
                         "redriveTo": task.dead_letters, "maxReceiveCount": TASKS_MAX_RECEIVES,
                         "policy": notification_queue_policy(&queue_arn, &task.bucket, arns.account)}),
        },
    ];
    let notifications: Vec<Value> = tasks
        .iter()
        .map(|name| {
            json!({"id": name, "queueArn": queue_arn, "events": ["s3:ObjectCreated:*"],
                   "prefix": format!("{TASKS_PREFIX}{name}/")})
        })
        .collect();
    resources.push(Resource {
        kind: ResourceKind::Bucket,
        name: task.bucket.clone(),
        stack: stack.to_string(),
        component: "tasks".into(),
        tags: tags(config, stack, "tasks"),
        spec: json!({"blockPublicAccess": true, "encryption": "AES256", "notifications": notifications}),
    });
    let mut statements = policies::unit_statements(&policies::UnitAccess {
        config,
        arns,
        stack,
        unit: &unit,
        names,
        queue_arns,
        own_queue: Some(&task.queue),
        inboxes: None,
        registry: None,
        discovers_in: None,
    });
    // Exactly the uploads of its tasks: nothing else of the bucket.
    let objects: Vec<String> =
        tasks.iter().map(|name| format!("{}/{TASKS_PREFIX}{name}/*", bucket_arn(&task.bucket))).collect();
    statements.push(json!({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": objects}));
    let function_config = FunctionConfig {
        topics: super::units::topic_layout(config.consolidation),
        ..FunctionConfig::new(format!("{plugin}{TASKS_GROUP}"), &plugin, names.stores.clone())
    };
    let mut environment = std::collections::BTreeMap::new();
    environment.insert(crate::lambda::CONFIG_ENV.into(), serde_json::to_string(&function_config).unwrap_or_default());
    environment.extend(crate::deploy::secrets::environment(config, stack));
    resources.extend(super::functions::function_resources(
        config,
        arns,
        stack,
        &unit,
        &task.function,
        statements,
        environment,
    ));
    resources.push(Resource {
        kind: ResourceKind::EventSourceMapping,
        // Named by its source's kind, as discovery names what exists.
        name: format!("{}:commands", task.function),
        stack: stack.to_string(),
        component: unit.name.clone(),
        tags: tags(config, stack, &unit.name),
        spec: json!({"function": task.function, "queue": task.queue, "batchSize": TASKS_BATCH_SIZE,
                     "functionResponseTypes": ["ReportBatchItemFailures"]}),
    });
    resources.push(parameter(config, stack, TASKS_BUCKET_OUTPUT, &task.bucket));
    resources
}

#[cfg(test)]
mod tests {
    use super::bucket_name;

    #[test]
    fn bucket_names_follow_s3_rules_and_stay_unique() {
        let plain = "shop-dev-catalog-tasks-123456789012-us-east-1";
        assert_eq!(bucket_name(plain), plain, "a valid name is kept as it is");
        let changed = bucket_name("Shop-dev-catalog-tasks-123456789012-us-east-1");
        assert!(changed.starts_with("shop-dev-catalog-tasks-123456789012-us-east-1-"), "{changed}");
        assert_ne!(changed, plain, "a name that had to change gets a hash: `Shop` and `shop` differ");
        let long = bucket_name(&format!("{}-dev-catalog-tasks-123456789012-eu-central-1", "p".repeat(60)));
        assert_eq!(long.len(), 63, "{long}");
        let other = bucket_name(&format!("{}-dev-catalog-tasks-123456789012-eu-central-2", "p".repeat(60)));
        assert_ne!(long, other, "names cut to the same start differ by their hash");
        for name in [changed, long, bucket_name("_x_"), bucket_name("A")] {
            assert!((3..=63).contains(&name.len()), "{name}");
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{name}");
            assert!(!name.starts_with('-') && !name.ends_with('-'), "{name}");
        }
    }
}
