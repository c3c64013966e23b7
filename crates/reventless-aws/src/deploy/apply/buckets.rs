//! S3 buckets (a stack's tasks bucket): created private (every public
//! access blocked) with default encryption, tagged like every resource
//! (tags are the state), with the notifications the plan names; read back
//! in the plan's terms; emptied and deleted with their stack.
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, Delete, Event, FilterRule, FilterRuleName,
    NotificationConfiguration, NotificationConfigurationFilter, ObjectIdentifier, PublicAccessBlockConfiguration,
    QueueConfiguration, S3KeyFilter, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging,
};
use serde_json::{Value, json};

use super::{Clients, DeployError, Existing, aws, code};
use crate::deploy::plan::{Plan, Resource, ResourceKind, TAG_PLUGIN, TAG_PROJECT, TAG_STAGE};

fn refused(name: &str) -> impl Fn(aws_sdk_s3::error::BuildError) -> DeployError + '_ {
    move |error| DeployError::Refused(format!("bucket {name}: {error}"))
}

impl Clients {
    /// The bucket's settings in the plan's terms, or None when it does not
    /// exist. A bucket of that name owned by another account is an error
    /// (bucket names are global).
    pub(super) async fn observe_bucket(&self, name: &str) -> Result<Option<Value>, DeployError> {
        match self.s3.head_bucket().bucket(name).send().await {
            Ok(_) => {}
            Err(error) if error.raw_response().is_some_and(|r| r.status().as_u16() == 404) => return Ok(None),
            Err(error) if error.raw_response().is_some_and(|r| r.status().as_u16() == 403) => {
                return Err(DeployError::Refused(format!(
                    "bucket {name} exists but this account may not use it: S3 bucket names are global, and another \
                     account owns it (rename the project or stage to get another tasks bucket name)"
                )));
            }
            Err(error) => return Err(aws("HeadBucket", name)(error)),
        }
        self.count();
        let block = match self.s3.get_public_access_block().bucket(name).send().await {
            Ok(output) => output.public_access_block_configuration().is_some_and(|c| {
                c.block_public_acls() == Some(true)
                    && c.ignore_public_acls() == Some(true)
                    && c.block_public_policy() == Some(true)
                    && c.restrict_public_buckets() == Some(true)
            }),
            Err(error) if code(&error) == Some("NoSuchPublicAccessBlockConfiguration") => false,
            Err(error) => return Err(aws("GetPublicAccessBlock", name)(error)),
        };
        self.count();
        let encryption = match self.s3.get_bucket_encryption().bucket(name).send().await {
            Ok(output) => output
                .server_side_encryption_configuration()
                .and_then(|c| c.rules().first())
                .and_then(|rule| rule.apply_server_side_encryption_by_default())
                .map(|default| default.sse_algorithm().as_str().to_string()),
            Err(error) if code(&error) == Some("ServerSideEncryptionConfigurationNotFoundError") => None,
            Err(error) => return Err(aws("GetBucketEncryption", name)(error)),
        };
        self.count();
        let notifications = self
            .s3
            .get_bucket_notification_configuration()
            .bucket(name)
            .send()
            .await
            .map_err(aws("GetBucketNotificationConfiguration", name))?;
        let mut queues: Vec<Value> = notifications
            .queue_configurations()
            .iter()
            .map(|queue| {
                let rules = queue.filter().and_then(|f| f.key()).map(|k| k.filter_rules()).unwrap_or_default();
                let prefix = rules
                    .iter()
                    .find(|rule| rule.name().is_some_and(|n| n.as_str().eq_ignore_ascii_case("prefix")))
                    .and_then(|rule| rule.value());
                let events: Vec<&str> = queue.events().iter().map(Event::as_str).collect();
                json!({"id": queue.id(), "queueArn": queue.queue_arn(), "events": events, "prefix": prefix})
            })
            .collect();
        queues.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        Ok(Some(json!({"blockPublicAccess": block, "encryption": encryption, "notifications": queues})))
    }

    /// Creates the bucket when missing, then sets what the plan says
    /// (every call idempotent).
    pub(super) async fn ensure_bucket(
        &self,
        plan: &Plan,
        resource: &Resource,
        exists: bool,
    ) -> Result<(), DeployError> {
        let name = resource.name.as_str();
        if !exists {
            let mut create = self.s3.create_bucket().bucket(name);
            // us-east-1 is the default location, and S3 refuses it named.
            if plan.region != "us-east-1" {
                let location = BucketLocationConstraint::from(plan.region.as_str());
                create = create.create_bucket_configuration(
                    CreateBucketConfiguration::builder().location_constraint(location).build(),
                );
            }
            match create.send().await {
                Ok(_) => {}
                Err(error) if code(&error) == Some("BucketAlreadyOwnedByYou") => {}
                Err(error) if code(&error) == Some("BucketAlreadyExists") => {
                    return Err(DeployError::Refused(format!(
                        "bucket {name} is taken by another AWS account (bucket names are global): rename the \
                         project or stage to get another tasks bucket name"
                    )));
                }
                Err(error) => return Err(aws("CreateBucket", name)(error)),
            }
            self.count();
        }
        if resource.spec["blockPublicAccess"].as_bool().unwrap_or(true) {
            let block = PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build();
            self.s3
                .put_public_access_block()
                .bucket(name)
                .public_access_block_configuration(block)
                .send()
                .await
                .map_err(aws("PutPublicAccessBlock", name))?;
            self.count();
        }
        if let Some(algorithm) = resource.spec["encryption"].as_str() {
            let default = ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::from(algorithm))
                .build()
                .map_err(refused(name))?;
            let rule = ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(default).build();
            let configuration =
                ServerSideEncryptionConfiguration::builder().rules(rule).build().map_err(refused(name))?;
            self.s3
                .put_bucket_encryption()
                .bucket(name)
                .server_side_encryption_configuration(configuration)
                .send()
                .await
                .map_err(aws("PutBucketEncryption", name))?;
            self.count();
        }
        let tags = resource
            .tags
            .iter()
            .map(|(key, value)| Tag::builder().key(key).value(value).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(refused(name))?;
        let tagging = Tagging::builder().set_tag_set(Some(tags)).build().map_err(refused(name))?;
        self.s3
            .put_bucket_tagging()
            .bucket(name)
            .tagging(tagging)
            .send()
            .await
            .map_err(aws("PutBucketTagging", name))?;
        self.count();
        let mut queues = Vec::new();
        for notification in resource.spec["notifications"].as_array().into_iter().flatten() {
            let text = |key: &str| notification[key].as_str().unwrap_or_default().to_string();
            let prefix = FilterRule::builder().name(FilterRuleName::Prefix).value(text("prefix")).build();
            let filter = NotificationConfigurationFilter::builder()
                .key(S3KeyFilter::builder().filter_rules(prefix).build())
                .build();
            let events = notification["events"].as_array().into_iter().flatten().filter_map(Value::as_str);
            let queue = QueueConfiguration::builder()
                .id(text("id"))
                .queue_arn(text("queueArn"))
                .set_events(Some(events.map(Event::from).collect()))
                .filter(filter)
                .build()
                .map_err(refused(name))?;
            queues.push(queue);
        }
        // S3 checks each queue's policy lets it send (a test event) here.
        let configuration = NotificationConfiguration::builder().set_queue_configurations(Some(queues)).build();
        self.s3
            .put_bucket_notification_configuration()
            .bucket(name)
            .notification_configuration(configuration)
            .send()
            .await
            .map_err(aws("PutBucketNotificationConfiguration", name))?;
        Ok(())
    }

    /// Empties the bucket (every object version and delete marker) and
    /// deletes it; a missing bucket is fine. Its files are uploads already
    /// turned into commands (the task runs are rows of the rows table).
    pub(super) async fn remove_bucket(&self, name: &str) -> Result<(), DeployError> {
        let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
        loop {
            self.count();
            let page = match self
                .s3
                .list_object_versions()
                .bucket(name)
                .set_key_marker(key_marker.clone())
                .set_version_id_marker(version_marker.clone())
                .send()
                .await
            {
                Ok(page) => page,
                Err(error) if code(&error) == Some("NoSuchBucket") => return Ok(()),
                Err(error) => return Err(aws("ListObjectVersions", name)(error)),
            };
            let versions = page.versions().iter().map(|v| (v.key(), v.version_id()));
            let markers = page.delete_markers().iter().map(|m| (m.key(), m.version_id()));
            let objects = versions
                .chain(markers)
                .filter_map(|(key, version)| {
                    let version = version.filter(|v| *v != "null");
                    key.map(|key| {
                        ObjectIdentifier::builder().key(key).set_version_id(version.map(str::to_string)).build()
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(refused(name))?;
            if !objects.is_empty() {
                let delete = Delete::builder().set_objects(Some(objects)).quiet(true).build().map_err(refused(name))?;
                self.count();
                let deleted = self
                    .s3
                    .delete_objects()
                    .bucket(name)
                    .delete(delete)
                    .send()
                    .await
                    .map_err(aws("DeleteObjects", name))?;
                if let Some(error) = deleted.errors().first() {
                    return Err(DeployError::Aws {
                        call: "DeleteObjects".into(),
                        name: name.to_string(),
                        message: format!(
                            "{} not deleted: {}",
                            error.key().unwrap_or_default(),
                            error.message().unwrap_or_default()
                        ),
                    });
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
        }
        self.count();
        match self.s3.delete_bucket().bucket(name).send().await {
            Err(error) if code(&error) != Some("NoSuchBucket") => Err(aws("DeleteBucket", name)(error)),
            _ => Ok(()),
        }
    }

    /// The stage's buckets: named with its (S3-safe) prefix and tagged with
    /// its project and stage; the stack is the `reventless:plugin` tag.
    pub(super) async fn discover_buckets(&self, project: &str, stage: &str) -> Result<Vec<Existing>, DeployError> {
        // The prefix as `bucket_name` makes names: lowercase, `-` for the rest.
        let prefix: String = format!("{project}-{stage}-")
            .chars()
            .map(|c| c.to_ascii_lowercase())
            .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '-' })
            .collect();
        let prefix = prefix.trim_start_matches('-');
        self.count();
        let buckets = self.s3.list_buckets().send().await.map_err(aws("ListBuckets", "-"))?;
        let mut found = Vec::new();
        for name in buckets.buckets().iter().filter_map(|b| b.name()) {
            if !name.starts_with(prefix) {
                continue;
            }
            self.count();
            let tags = match self.s3.get_bucket_tagging().bucket(name).send().await {
                Ok(output) => output.tag_set().to_vec(),
                Err(error) if matches!(code(&error), Some("NoSuchTagSet" | "NoSuchBucket")) => continue,
                Err(error) => return Err(aws("GetBucketTagging", name)(error)),
            };
            let tag = |key: &str| tags.iter().find(|t| t.key() == key).map(|t| t.value().to_string());
            if tag(TAG_PROJECT).as_deref() == Some(project)
                && tag(TAG_STAGE).as_deref() == Some(stage)
                && let Some(stack) = tag(TAG_PLUGIN)
            {
                found.push(Existing::new(ResourceKind::Bucket, name, &stack));
            }
        }
        Ok(found)
    }
}
