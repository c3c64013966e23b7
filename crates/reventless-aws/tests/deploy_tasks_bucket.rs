//! The tasks bucket and its queue deployed on the emulator: created private
//! and encrypted, read back without drift, an upload under `tasks/<Task>/`
//! notifies the queue (other keys do not), drift is seen, discovery finds
//! the bucket by its tags, and removal empties and deletes it.
#![cfg(feature = "deploy")]
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::BTreeMap;
use std::path::PathBuf;

use reventless_aws::deploy::apply::{Clients, changed_fields};
use reventless_aws::deploy::config::ProjectConfig;
use reventless_aws::deploy::plan::{Plan, Resource, ResourceKind, plan};
use reventless_aws::emulator::Emulator;
use reventless_core::Manifest;
use serde_json::{Value, json};

fn manifest() -> Manifest {
    serde_json::from_value(json!({
        "plugin": "Catalog", "version": "1.0.0",
        "components": [
            {"kind": "StateChangeSlice", "name": "AddProduct", "consumes": [], "produces": [], "async": false,
             "log": {"kind": "Plugin", "name": "Catalog"}},
            {"kind": "Task", "name": "ImportProducts", "consumes": [], "produces": [], "async": false, "log": null,
             "table": "Catalog_ImportProductsRuns"},
        ],
        "storage": {"logs": ["Catalog"], "tables": [], "command_topics": []}
    }))
    .unwrap()
}

fn find<'a>(plan: &'a Plan, kind: ResourceKind, name: &str) -> &'a Resource {
    plan.resources.iter().find(|r| r.kind == kind && (name.is_empty() || r.name == name)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tasks_bucket_is_deployed_read_back_notifies_its_queue_and_is_emptied_on_removal() {
    let emulator = Emulator::shared().expect("the AWS emulator (moto) must run for these tests");
    let sdk = emulator.sdk_config().await;
    let clients = Clients::new(&sdk);
    let account = clients.account().await.unwrap();
    let stage = format!("t{}", &uuid::Uuid::now_v7().simple().to_string()[24..]);
    let file = format!("project = \"shop\"\n[plugins.catalog]\nname = \"Catalog\"\n[stages.{stage}]\n");
    let config = ProjectConfig::from_texts(&file, None, &stage, &|_| None, PathBuf::from(".")).unwrap();
    let plan = plan(&config, &account, &BTreeMap::from([("catalog".to_string(), manifest())])).unwrap();
    let dead_letters = find(&plan, ResourceKind::Queue, &format!("shop-{stage}-catalog-tasks-dlq"));
    let queue = find(&plan, ResourceKind::Queue, &format!("shop-{stage}-catalog-tasks"));
    let bucket = find(&plan, ResourceKind::Bucket, "");
    assert_eq!(bucket.name, format!("shop-{stage}-catalog-tasks-{account}-us-east-1"));

    for resource in [dead_letters, queue, bucket] {
        assert_eq!(clients.observe(resource).await.unwrap(), None, "{} is new", resource.name);
        clients.ensure(&plan, resource, None, false).await.unwrap();
        let observed = clients.observe(resource).await.unwrap().unwrap();
        assert_eq!(changed_fields(&resource.spec, &observed), Vec::<String>::new(), "{}: {observed}", resource.name);
    }
    // Ensuring again changes nothing (idempotent).
    clients.ensure(&plan, bucket, None, true).await.unwrap();
    clients.ensure(&plan, queue, None, true).await.unwrap();

    // An upload under tasks/ImportProducts/ reaches the queue; another key does not.
    let s3 = aws_sdk_s3::Client::new(&sdk);
    let put = s3
        .put_object()
        .bucket(&bucket.name)
        .key("tasks/ImportProducts/first products.csv")
        .body(b"productId,name\np1,One\n".to_vec().into())
        .send()
        .await
        .unwrap();
    s3.put_object().bucket(&bucket.name).key("elsewhere/x.csv").body(b"x".to_vec().into()).send().await.unwrap();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let url = sqs.get_queue_url().queue_name(&queue.name).send().await.unwrap().queue_url().unwrap().to_string();
    let mut bodies: Vec<Value> = Vec::new();
    for _ in 0..5 {
        let received =
            sqs.receive_message().queue_url(&url).max_number_of_messages(10).wait_time_seconds(1).send().await.unwrap();
        bodies.extend(received.messages().iter().map(|m| serde_json::from_str(m.body().unwrap()).unwrap()));
        if bodies.iter().any(|b| b.get("Records").is_some()) {
            break;
        }
    }
    let uploads: Vec<&Value> = bodies.iter().filter(|b| b.get("Records").is_some()).collect();
    assert_eq!(uploads.len(), 1, "{bodies:?}");
    let tasks = vec!["ImportProducts".to_string()];
    let found = reventless_aws::lambda::tasks::uploads(&uploads[0].to_string(), &tasks).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].key, "tasks/ImportProducts/first products.csv");
    assert_eq!(found[0].bucket, bucket.name);
    assert_eq!(found[0].etag.as_deref(), put.e_tag().map(|e| e.trim_matches('"')));
    for test_event in bodies.iter().filter(|b| b.get("Records").is_none()) {
        assert!(reventless_aws::lambda::tasks::uploads(&test_event.to_string(), &tasks).unwrap().is_empty());
    }

    // Drift made outside the deployer is seen, and the next ensure restores it.
    s3.delete_bucket_encryption().bucket(&bucket.name).send().await.unwrap();
    // (A notification pointed elsewhere: moto answers an emptied configuration
    // with a document the SDK cannot read.)
    let queue_arn = bucket.spec["notifications"][0]["queueArn"].as_str().unwrap();
    let elsewhere = aws_sdk_s3::types::QueueConfiguration::builder()
        .id("ImportProducts")
        .queue_arn(queue_arn)
        .events(aws_sdk_s3::types::Event::from("s3:ObjectCreated:*"))
        .build()
        .unwrap();
    s3.put_bucket_notification_configuration()
        .bucket(&bucket.name)
        .notification_configuration(
            aws_sdk_s3::types::NotificationConfiguration::builder().queue_configurations(elsewhere).build(),
        )
        .send()
        .await
        .unwrap();
    let drifted = clients.observe(bucket).await.unwrap().unwrap();
    let mut fields = changed_fields(&bucket.spec, &drifted);
    fields.sort();
    assert_eq!(fields, vec!["encryption", "notifications"], "{drifted}");
    clients.ensure(&plan, bucket, None, true).await.unwrap();
    assert!(changed_fields(&bucket.spec, &clients.observe(bucket).await.unwrap().unwrap()).is_empty());

    // Found by its tags as this stage's; removed with its objects.
    let existing = clients.discover("shop", &stage).await.unwrap();
    let found = existing.iter().find(|e| e.kind == ResourceKind::Bucket).unwrap();
    assert_eq!((found.name.as_str(), found.stack.as_str()), (bucket.name.as_str(), "catalog"));
    clients.remove(found).await.unwrap();
    assert_eq!(clients.observe(bucket).await.unwrap(), None, "emptied and deleted");
    clients.remove(found).await.unwrap();
    for resource in [queue, dead_letters] {
        let existing = existing.iter().find(|e| e.kind == ResourceKind::Queue && e.name == resource.name).unwrap();
        clients.remove(existing).await.unwrap();
    }
}
