//! Event versioning on AWS, against the emulator (moto): `BookAdded` items
//! of older shapes put raw into the events table are read as today's shape
//! by the Lambda handlers — the API function's GraphQL mutations (aggregate
//! and DCB decisions) and queries, and the read-model function driven by a
//! DynamoDB stream record — and an item of a newer version than the code
//! knows is a typed error: the mutation answers it, the stream batch is
//! reported failed (retried), nothing is misread.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
#[path = "../../reventless-core/tests/upcasting/library.rs"]
mod library;

use aws_sdk_dynamodb::types::AttributeValue;
use library::*;
use reventless_aws::emulator::Emulator;
use reventless_aws::lambda::{FunctionConfig, Handler, stream_log_key};
use reventless_aws::{SdkConfig, StoreNames, aws_stores, decode_event, provision};
use reventless_core::plugin::LogKind;
use reventless_spec::Capabilities;
use serde_json::{Value, json};

struct Stage {
    config: SdkConfig,
    names: StoreNames,
    client: aws_sdk_dynamodb::Client,
}

impl Stage {
    async fn new() -> Self {
        let emulator = Emulator::shared().expect("the AWS emulator (moto) must run for these tests");
        let config = emulator.sdk_config().await;
        let names = StoreNames::unique("upcast");
        provision::create_stores(&config, &names, &[]).await.unwrap();
        let client = aws_sdk_dynamodb::Client::new(&config);
        Self { config, names, client }
    }

    fn function(&self, role: &str) -> Handler {
        let config = FunctionConfig::new(role, "Library", self.names.clone());
        Handler::new(&self.config, &config, library(), Capabilities::new()).unwrap()
    }

    /// Puts `BookAdded` of `version` for `id` into the events table exactly
    /// as that version's build wrote the item: appended untyped, then its
    /// `event` attribute replaced by the envelope with that build's data
    /// and meta (v1: no version, snake_case meta).
    async fn put_raw(&self, version: u32, id: &str) {
        append_as_stored(&aws_stores(&self.config, &self.names), version, id).await;
        let items = self
            .client
            .scan()
            .table_name(&self.names.events_table)
            .filter_expression("#type = :type")
            .expression_attribute_names("#type", "type")
            .expression_attribute_values(":type", AttributeValue::S("BookAdded".into()))
            .send()
            .await
            .unwrap();
        let mut item = items
            .items()
            .iter()
            .find(|item| decode_event(item, "events").unwrap().data["book_id"] == id)
            .cloned()
            .unwrap();
        let mut envelope = serde_json::to_value(decode_event(&item, "events").unwrap()).unwrap();
        let (data, meta) = book_added_as_stored(version, id);
        (envelope["data"], envelope["meta"]) = (data, meta);
        item.insert("event".into(), AttributeValue::S(envelope.to_string()));
        self.client.put_item().table_name(&self.names.events_table).set_item(Some(item)).send().await.unwrap();
    }
}

/// Invokes the API function with a GraphQL request; the answer's JSON body.
async fn graphql(api: &Handler, query: &str) -> Value {
    let payload = json!({
        "requestContext": {"http": {"method": "POST"}},
        "rawPath": "/graphql",
        "headers": {},
        "body": json!({"query": query}).to_string(),
    });
    let answer = api.handle(payload).await.unwrap();
    assert_eq!(answer["statusCode"], 200, "{answer}");
    serde_json::from_str(answer["body"].as_str().unwrap()).unwrap()
}

/// What DynamoDB Streams sends the read-model function after an append.
fn stream_record() -> Value {
    let log = stream_log_key(LogKind::Plugin, "Library");
    json!({"Records": [{
        "eventSource": "aws:dynamodb",
        "dynamodb": {"SequenceNumber": "100", "NewImage": {"log": {"S": log}}}
    }]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_items_are_read_as_today_by_the_lambda_handlers() {
    let stage = Stage::new().await;
    stage.put_raw(1, "b1").await;
    stage.put_raw(2, "b2").await;
    let api = stage.function("LibraryApi");
    let again =
        graphql(&api, r#"mutation { Library_Book_Add(id: "b1", title: "Dune", pages: 1) { status errorCode } }"#);
    assert_eq!(again.await["data"]["Library_Book_Add"], json!({"status": "REJECTED", "errorCode": "AlreadyAdded"}));
    for (id, member) in [("b1", "ann"), ("b2", "bob")] {
        let lent = graphql(
            &api,
            &format!(r#"mutation {{ Library_LendBook(bookId: "{id}", member: "{member}") {{ status }} }}"#),
        )
        .await;
        assert_eq!(lent["data"]["Library_LendBook"]["status"], "ACCEPTED", "{id}: {lent}");
    }
    let log = aws_stores(&stage.config, &stage.names).events.read_all("Library", 0, 100).await.unwrap();
    let titles: Vec<&Value> = log.iter().filter(|e| e.event_type == "BookLent").map(|e| &e.data["title"]).collect();
    assert_eq!(titles, vec!["Dune", "Dune"], "the slice decided on the upcast title");
    // The read-model function, woken by the stream, projects both shapes.
    let read_models = stage.function("LibraryAllReadModels");
    let answer = read_models.handle(stream_record()).await.unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let books = graphql(
        &api,
        r#"{ b1: Library_Book(id: "b1") { title pages lentTo } b2: Library_Book(id: "b2") { title pages lentTo } }"#,
    )
    .await;
    assert_eq!(
        books["data"],
        json!({
            "b1": {"title": "Dune", "pages": 0, "lentTo": "ann"},
            "b2": {"title": "Dune", "pages": 0, "lentTo": "bob"},
        }),
        "{books}"
    );
    // Untyped readers get the JSON in today's shape; the item is left as stored.
    let v1 = log.iter().find(|e| e.data["book_id"] == "b1" && e.event_type == "BookAdded").unwrap();
    assert_eq!(v1.data, json!({"book_id": "b1", "name": "Dune"}));
    assert_eq!(
        api.runtime().upcast_event("Library", v1).unwrap().data,
        json!({"book_id": "b1", "title": "Dune", "pages": 0})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_of_a_newer_version_is_a_typed_error_on_aws() {
    let stage = Stage::new().await;
    stage.put_raw(4, "b9").await;
    let api = stage.function("LibraryApi");
    let refused = graphql(&api, r#"mutation { Library_LendBook(bookId: "b9", member: "ann") { status } }"#).await;
    let message = refused["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("`BookAdded` was stored at version 4, but this build knows versions up to 3"),
        "{refused}"
    );
    // The stream batch fails (Lambda retries it) instead of skipping the event.
    let read_models = stage.function("LibraryAllReadModels");
    let answer = read_models.handle(stream_record()).await.unwrap();
    assert_eq!(answer, json!({"batchItemFailures": [{"itemIdentifier": "100"}]}));
    let book = graphql(&api, r#"{ Library_Book(id: "b9") { title } }"#).await;
    assert_eq!(book["data"]["Library_Book"], Value::Null, "{book}");
    let log = aws_stores(&stage.config, &stage.names).events.read_all("Library", 0, 100).await.unwrap();
    assert_eq!(log.len(), 1, "nothing appended on a misread");
}
