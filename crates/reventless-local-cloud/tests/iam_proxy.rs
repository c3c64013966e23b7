//! The IAM proxy against moto: requests made with a role's credentials go
//! through only when the role's inline policy allows the action on the exact
//! resource, and are refused in the shape the SDK reads as AccessDenied.
#![allow(clippy::unwrap_used)]
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, Delete, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, Put, ScalarAttributeType, TransactWriteItem,
};
use reventless_aws::emulator::Emulator;
use reventless_local_cloud::iam::{Credentials, Iam, Proxy};
use serde_json::{Value, json};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

struct Cloud {
    moto: SdkConfig,
    iam: Arc<Iam>,
    proxy: Proxy,
    /// Requests that reached the stand-in Lambda service: (method, path).
    lambda_calls: Arc<Mutex<Vec<(String, String)>>>,
}

/// moto, an Iam reading its IAM, the proxy, and a stand-in for our Lambda
/// service that answers every invocation with `{"from":"lambda"}`.
async fn cloud() -> Cloud {
    let emulator = Emulator::shared().unwrap();
    let moto = emulator.sdk_config().await;
    let lambda_calls = Arc::new(Mutex::new(Vec::new()));
    let calls = lambda_calls.clone();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let calls = calls.clone();
        async move {
            calls.lock().unwrap().push((request.method().to_string(), request.uri().path().to_string()));
            axum::Json(json!({"from": "lambda"}))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lambda_endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let iam = Arc::new(Iam::new(&moto));
    let proxy = Proxy::start(iam.clone(), emulator.endpoint.clone(), lambda_endpoint).await.unwrap();
    Cloud { moto, iam, proxy, lambda_calls }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::now_v7().simple().to_string()[16..])
}

fn table_arn(table: &str) -> String {
    format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}")
}

fn queue_arn(queue: &str) -> String {
    format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}")
}

/// The deployer's way: one role, one inline policy named "reventless".
async fn role(moto: &SdkConfig, statements: Value) -> (String, String) {
    let name = unique("fn-role");
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let created = aws_sdk_iam::Client::new(moto)
        .create_role()
        .role_name(&name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .unwrap();
    let arn = created.role().unwrap().arn().to_string();
    put_policy(moto, &name, statements).await;
    (name, arn)
}

async fn put_policy(moto: &SdkConfig, role: &str, statements: Value) {
    aws_sdk_iam::Client::new(moto)
        .put_role_policy()
        .role_name(role)
        .policy_name("reventless")
        .policy_document(json!({"Version": "2012-10-17", "Statement": statements}).to_string())
        .send()
        .await
        .unwrap();
}

/// A table keyed by `pk` with a global secondary index `by_ix` on `ix`.
async fn table(moto: &SdkConfig) -> String {
    let name = unique("table");
    let attribute = |name: &str| {
        AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build().unwrap()
    };
    let hash = |name: &str| KeySchemaElement::builder().attribute_name(name).key_type(KeyType::Hash).build().unwrap();
    aws_sdk_dynamodb::Client::new(moto)
        .create_table()
        .table_name(&name)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("ix"))
        .key_schema(hash("pk"))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by_ix")
                .key_schema(hash("ix"))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .unwrap(),
        )
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    name
}

fn sdk_credentials(credentials: &Credentials) -> aws_sdk_dynamodb::config::Credentials {
    aws_sdk_dynamodb::config::Credentials::new(
        &credentials.access_key_id,
        &credentials.secret_access_key,
        Some(credentials.session_token.clone()),
        None,
        "function",
    )
}

fn dynamodb_as(cloud: &Cloud, credentials: &Credentials) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::config::Builder::from(&cloud.moto)
        .endpoint_url(cloud.proxy.url())
        .credentials_provider(sdk_credentials(credentials))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

fn sqs_as(cloud: &Cloud, credentials: &Credentials) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::config::Builder::from(&cloud.moto)
        .endpoint_url(cloud.proxy.url())
        .credentials_provider(sdk_credentials(credentials))
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

fn item(pk: &str) -> std::collections::HashMap<String, AttributeValue> {
    [("pk".to_string(), AttributeValue::S(pk.to_string())), ("ix".to_string(), AttributeValue::S("i".to_string()))]
        .into()
}

fn key(pk: &str) -> std::collections::HashMap<String, AttributeValue> {
    [("pk".to_string(), AttributeValue::S(pk.to_string()))].into()
}

/// Whether the item is in moto (read directly, not through the proxy).
async fn stored(moto: &SdkConfig, table: &str, pk: &str) -> bool {
    let output =
        aws_sdk_dynamodb::Client::new(moto).get_item().table_name(table).set_key(Some(key(pk))).send().await.unwrap();
    output.item.is_some()
}

/// Longer than the policy cache's TTL (1 s).
const POLICY_SETTLES: Duration = Duration::from_millis(1500);

#[tokio::test]
async fn dynamodb_calls_need_the_action_on_the_exact_table() {
    let cloud = cloud().await;
    let (a, b) = (table(&cloud.moto).await, table(&cloud.moto).await);
    let (role_name, role) = role(
        &cloud.moto,
        json!([{"Effect": "Allow", "Action": ["dynamodb:PutItem", "dynamodb:GetItem"], "Resource": [table_arn(&a)]}]),
    )
    .await;
    let dynamodb = dynamodb_as(&cloud, &cloud.iam.credentials_for(&role));

    dynamodb.put_item().table_name(&a).set_item(Some(item("1"))).send().await.unwrap();
    let read = dynamodb.get_item().table_name(&a).set_key(Some(key("1"))).send().await.unwrap();
    assert_eq!(read.item.unwrap()["pk"], AttributeValue::S("1".to_string()));

    let error = dynamodb.put_item().table_name(&b).set_item(Some(item("1"))).send().await.unwrap_err();
    assert_eq!(error.code(), Some("AccessDeniedException"), "{error:?}");
    let message = error.message().unwrap();
    assert!(
        message.contains(&format!(
            "User: arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{role_name} is not authorized to perform: \
             dynamodb:PutItem on resource: {}",
            table_arn(&b)
        )),
        "{message}"
    );
    assert!(message.contains("because no identity-based policy allows the dynamodb:PutItem action"), "{message}");
    assert!(!stored(&cloud.moto, &b, "1").await, "a refused write must not reach moto");

    let error = dynamodb.delete_item().table_name(&a).set_key(Some(key("1"))).send().await.unwrap_err();
    assert_eq!(error.code(), Some("AccessDeniedException"));
    assert!(stored(&cloud.moto, &a, "1").await);
}

#[tokio::test]
async fn a_query_on_an_index_needs_the_index_arn() {
    let cloud = cloud().await;
    let a = table(&cloud.moto).await;
    let (role_name, role) =
        role(&cloud.moto, json!([{"Effect": "Allow", "Action": "dynamodb:Query", "Resource": table_arn(&a)}])).await;
    let dynamodb = dynamodb_as(&cloud, &cloud.iam.credentials_for(&role));
    let query = |index: Option<&str>| {
        let (attribute, value) = if index.is_some() { ("ix", "i") } else { ("pk", "1") };
        dynamodb
            .query()
            .table_name(&a)
            .set_index_name(index.map(str::to_string))
            .key_condition_expression("#k = :v")
            .expression_attribute_names("#k", attribute)
            .expression_attribute_values(":v", AttributeValue::S(value.to_string()))
            .send()
    };
    query(None).await.unwrap();
    let error = query(Some("by_ix")).await.unwrap_err();
    assert_eq!(error.code(), Some("AccessDeniedException"));
    assert!(error.message().unwrap().contains(&format!("{}/index/by_ix", table_arn(&a))), "{error:?}");

    put_policy(
        &cloud.moto,
        &role_name,
        json!([{"Effect": "Allow", "Action": "dynamodb:Query",
                "Resource": [table_arn(&a), format!("{}/index/by_ix", table_arn(&a))]}]),
    )
    .await;
    tokio::time::sleep(POLICY_SETTLES).await;
    query(Some("by_ix")).await.unwrap();
}

#[tokio::test]
async fn a_transaction_needs_each_items_own_action() {
    let cloud = cloud().await;
    let a = table(&cloud.moto).await;
    aws_sdk_dynamodb::Client::new(&cloud.moto)
        .put_item()
        .table_name(&a)
        .set_item(Some(item("old")))
        .send()
        .await
        .unwrap();
    let (_, role) =
        role(&cloud.moto, json!([{"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": table_arn(&a)}])).await;
    let dynamodb = dynamodb_as(&cloud, &cloud.iam.credentials_for(&role));
    let put = |pk: &str| {
        TransactWriteItem::builder()
            .put(Put::builder().table_name(&a).set_item(Some(item(pk))).build().unwrap())
            .build()
    };
    let delete = |pk: &str| {
        TransactWriteItem::builder()
            .delete(Delete::builder().table_name(&a).set_key(Some(key(pk))).build().unwrap())
            .build()
    };

    let error = dynamodb.transact_write_items().transact_items(put("new")).transact_items(delete("old")).send().await;
    let error = error.unwrap_err();
    assert_eq!(error.code(), Some("AccessDeniedException"));
    assert!(error.message().unwrap().contains("dynamodb:DeleteItem"), "{error:?}");
    assert!(!stored(&cloud.moto, &a, "new").await, "nothing of a refused transaction is written");
    assert!(stored(&cloud.moto, &a, "old").await);

    dynamodb.transact_write_items().transact_items(put("new")).send().await.unwrap();
    assert!(stored(&cloud.moto, &a, "new").await);
}

#[tokio::test]
async fn sqs_messages_need_send_message_on_the_queue() {
    let cloud = cloud().await;
    let moto_sqs = aws_sdk_sqs::Client::new(&cloud.moto);
    let (allowed, refused) = (unique("q"), unique("q"));
    let mut urls = Vec::new();
    for queue in [&allowed, &refused] {
        urls.push(moto_sqs.create_queue().queue_name(queue).send().await.unwrap().queue_url.unwrap());
    }
    let (_, role) = role(
        &cloud.moto,
        json!([{"Effect": "Allow", "Action": ["sqs:SendMessage", "sqs:GetQueueUrl"], "Resource": queue_arn(&allowed)}]),
    )
    .await;
    let credentials = cloud.iam.credentials_for(&role);
    let sqs = sqs_as(&cloud, &credentials);

    // The SDK's JSON protocol.
    let url = sqs.get_queue_url().queue_name(&allowed).send().await.unwrap().queue_url.unwrap();
    sqs.send_message().queue_url(&url).message_body("json").send().await.unwrap();
    let error = sqs.send_message().queue_url(&urls[1]).message_body("json").send().await.unwrap_err();
    assert_eq!(error.code(), Some("AccessDenied"), "{error:?}");
    assert!(error.message().unwrap().contains(&queue_arn(&refused)), "{error:?}");
    let error = sqs.receive_message().queue_url(&url).send().await.unwrap_err();
    assert_eq!(error.code(), Some("AccessDenied"), "receiving is not granted: {error:?}");

    // The query protocol (older SDKs), signed by the same key.
    let http = reqwest::Client::new();
    let send = |queue_url: &str, body: &str| {
        let form = form(&[
            ("Action", "SendMessage"),
            ("Version", "2012-11-05"),
            ("QueueUrl", queue_url),
            ("MessageBody", body),
        ]);
        http.post(cloud.proxy.url())
            .header("authorization", authorization(&credentials.access_key_id, "sqs"))
            .header("x-amz-security-token", &credentials.session_token)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
    };
    let answer = send(&urls[0], "query").await.unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.text().await.unwrap().contains("<MessageId>"));
    let answer = send(&urls[1], "query").await.unwrap();
    assert_eq!(answer.status(), 403);
    let text = answer.text().await.unwrap();
    assert!(text.contains("<Code>AccessDenied</Code>") && text.contains(&queue_arn(&refused)), "{text}");

    let mut bodies = Vec::new();
    for url in &urls {
        let received =
            moto_sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap().messages;
        bodies.push(received.unwrap_or_default().into_iter().filter_map(|m| m.body).collect::<Vec<_>>());
    }
    bodies[0].sort();
    assert_eq!(bodies, [vec!["json".to_string(), "query".to_string()], vec![]]);
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut form = String::new();
    for (key, value) in pairs {
        if !form.is_empty() {
            form.push('&');
        }
        form.push_str(key);
        form.push('=');
        form.extend(
            percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).map(str::to_string),
        );
    }
    form
}

/// A SigV4 header naming the key (the proxy, like moto, does not verify the
/// signature itself).
fn authorization(access_key_id: &str, service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={access_key_id}/20250101/{REGION}/{service}/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature=0000"
    )
}

#[tokio::test]
async fn a_removed_statement_stops_granting_within_a_second() {
    let cloud = cloud().await;
    let a = table(&cloud.moto).await;
    let (role_name, role) = role(
        &cloud.moto,
        json!([
            {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": table_arn(&a)},
            {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": table_arn(&a)},
        ]),
    )
    .await;
    let dynamodb = dynamodb_as(&cloud, &cloud.iam.credentials_for(&role));
    dynamodb.put_item().table_name(&a).set_item(Some(item("1"))).send().await.unwrap();

    put_policy(
        &cloud.moto,
        &role_name,
        json!([{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": table_arn(&a)}]),
    )
    .await;
    tokio::time::sleep(POLICY_SETTLES).await;
    let error = dynamodb.put_item().table_name(&a).set_item(Some(item("2"))).send().await.unwrap_err();
    assert_eq!(error.code(), Some("AccessDeniedException"));
    dynamodb.get_item().table_name(&a).set_key(Some(key("1"))).send().await.unwrap();
    assert!(!stored(&cloud.moto, &a, "2").await);
}

#[tokio::test]
async fn unknown_credentials_are_refused() {
    let cloud = cloud().await;
    let a = table(&cloud.moto).await;
    let (_, role) = role(&cloud.moto, json!([{"Effect": "Allow", "Action": "*", "Resource": "*"}])).await;
    let issued = cloud.iam.credentials_for(&role);

    let unknown = Credentials {
        access_key_id: "ASIAUNKNOWNUNKNOWN00".to_string(),
        secret_access_key: issued.secret_access_key.clone(),
        session_token: issued.session_token.clone(),
    };
    let error = dynamodb_as(&cloud, &unknown).put_item().table_name(&a).set_item(Some(item("1"))).send().await;
    assert_eq!(error.unwrap_err().code(), Some("UnrecognizedClientException"));
    let error = sqs_as(&cloud, &unknown).get_queue_url().queue_name("any").send().await.unwrap_err();
    assert_eq!(error.code(), Some("InvalidClientTokenId"), "{error:?}");

    let wrong_token = Credentials { session_token: "forged".to_string(), ..issued.clone() };
    let error = dynamodb_as(&cloud, &wrong_token).put_item().table_name(&a).set_item(Some(item("1"))).send().await;
    assert_eq!(error.unwrap_err().code(), Some("UnrecognizedClientException"));
    assert!(!stored(&cloud.moto, &a, "1").await);

    dynamodb_as(&cloud, &issued).put_item().table_name(&a).set_item(Some(item("1"))).send().await.unwrap();
}

#[tokio::test]
async fn what_the_proxy_cannot_check_is_refused_even_under_a_star_policy() {
    let cloud = cloud().await;
    let (_, role) = role(&cloud.moto, json!([{"Effect": "Allow", "Action": "*", "Resource": "*"}])).await;
    let dynamodb = dynamodb_as(&cloud, &cloud.iam.credentials_for(&role));
    let name = unique("created");
    let error = dynamodb
        .create_table()
        .table_name(&name)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().unwrap())
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("AccessDeniedException"));
    let message = error.message().unwrap();
    assert!(message.contains("dynamodb:CreateTable") && message.contains("cannot check"), "{message}");
    let tables = aws_sdk_dynamodb::Client::new(&cloud.moto).list_tables().send().await.unwrap();
    assert!(!tables.table_names().contains(&name));
}

#[tokio::test]
async fn invocations_are_checked_and_go_to_the_lambda_service() {
    let cloud = cloud().await;
    let function = |name: &str| format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}");
    let (_, role) = role(
        &cloud.moto,
        json!([{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": function("fn-a")}]),
    )
    .await;
    let credentials = cloud.iam.credentials_for(&role);
    let config = aws_sdk_lambda::config::Builder::from(&cloud.moto)
        .endpoint_url(cloud.proxy.url())
        .credentials_provider(sdk_credentials(&credentials))
        .build();
    let lambda = aws_sdk_lambda::Client::from_conf(config);

    let output = lambda
        .invoke()
        .function_name(function("fn-a"))
        .payload(aws_smithy_types::Blob::new(b"{}".to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(output.payload.unwrap().into_inner(), br#"{"from":"lambda"}"#.to_vec());
    let calls = cloud.lambda_calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, "POST");
    assert!(calls[0].1.starts_with("/2015-03-31/functions/") && calls[0].1.contains("fn-a"), "{calls:?}");

    let error = lambda.invoke().function_name("fn-b").send().await.unwrap_err();
    assert_eq!(aws_sdk_lambda::error::ProvideErrorMetadata::code(&error), Some("AccessDeniedException"), "{error:?}");
    let message = aws_sdk_lambda::error::ProvideErrorMetadata::message(&error).unwrap();
    assert!(message.contains(&function("fn-b")), "{message}");
    assert_eq!(cloud.lambda_calls.lock().unwrap().len(), 1, "a refused invocation does not reach Lambda");
}

#[tokio::test]
async fn the_caller_is_the_assumed_role() {
    let cloud = cloud().await;
    let (role_name, role) = role(&cloud.moto, json!([{"Effect": "Deny", "Action": "*", "Resource": "*"}])).await;
    let credentials = cloud.iam.credentials_for(&role);
    let config = aws_sdk_sts::config::Builder::from(&cloud.moto)
        .endpoint_url(cloud.proxy.url())
        .credentials_provider(sdk_credentials(&credentials))
        .build();
    let identity = aws_sdk_sts::Client::from_conf(config).get_caller_identity().send().await.unwrap();
    assert_eq!(identity.account(), Some(ACCOUNT));
    assert_eq!(identity.arn(), Some(format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{role_name}").as_str()));
    assert!(identity.user_id().unwrap().starts_with("AROA"));
}

#[tokio::test]
async fn secrets_need_get_parameter_on_their_path() {
    let cloud = cloud().await;
    let prefix = format!("/reventless/{}", unique("shop"));
    let moto_ssm = aws_sdk_ssm::Client::new(&cloud.moto);
    for name in ["granted", "other"] {
        moto_ssm
            .put_parameter()
            .name(format!("{prefix}/{name}"))
            .value(format!("{name}-secret"))
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .unwrap();
    }
    // The deployer's `Arns::parameter`: `parameter` followed by the path.
    let granted = format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{prefix}/granted");
    let (_, role) = role(
        &cloud.moto,
        json!([{"Effect": "Allow", "Action": ["ssm:GetParameter", "ssm:GetParameters"], "Resource": [granted]}]),
    )
    .await;
    let config = aws_sdk_ssm::config::Builder::from(&cloud.moto)
        .endpoint_url(cloud.proxy.url())
        .credentials_provider(sdk_credentials(&cloud.iam.credentials_for(&role)))
        .build();
    let ssm = aws_sdk_ssm::Client::from_conf(config);

    let read = ssm.get_parameter().name(format!("{prefix}/granted")).with_decryption(true).send().await.unwrap();
    assert_eq!(read.parameter.unwrap().value.as_deref(), Some("granted-secret"));
    let error = ssm.get_parameter().name(format!("{prefix}/other")).with_decryption(true).send().await.unwrap_err();
    assert_eq!(aws_sdk_ssm::error::ProvideErrorMetadata::code(&error), Some("AccessDeniedException"), "{error:?}");
    let error = ssm
        .get_parameters()
        .names(format!("{prefix}/granted"))
        .names(format!("{prefix}/other"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(aws_sdk_ssm::error::ProvideErrorMetadata::code(&error), Some("AccessDeniedException"), "{error:?}");
}

#[tokio::test]
async fn log_streams_fall_under_the_log_group_grant() {
    let cloud = cloud().await;
    let function = unique("fn");
    let (mine, other) = (format!("/aws/lambda/{function}"), format!("/aws/lambda/{function}-other"));
    let moto_logs = aws_sdk_cloudwatchlogs::Client::new(&cloud.moto);
    for group in [&mine, &other] {
        moto_logs.create_log_group().log_group_name(group).send().await.unwrap();
    }
    // The deployer's `Arns::log_group`.
    let (_, role) = role(
        &cloud.moto,
        json!([{"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{mine}:*")]}]),
    )
    .await;
    let config = aws_sdk_cloudwatchlogs::config::Builder::from(&cloud.moto)
        .endpoint_url(cloud.proxy.url())
        .credentials_provider(sdk_credentials(&cloud.iam.credentials_for(&role)))
        .build();
    let logs = aws_sdk_cloudwatchlogs::Client::from_conf(config);
    let event = || {
        aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
            .timestamp(1_700_000_000_000)
            .message("hello")
            .build()
            .unwrap()
    };

    logs.create_log_stream().log_group_name(&mine).log_stream_name("2025/01/01/[$LATEST]a").send().await.unwrap();
    logs.put_log_events()
        .log_group_name(&mine)
        .log_stream_name("2025/01/01/[$LATEST]a")
        .log_events(event())
        .send()
        .await
        .unwrap();
    let error = logs.create_log_stream().log_group_name(&other).log_stream_name("s").send().await.unwrap_err();
    assert_eq!(aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata::code(&error), Some("AccessDeniedException"));
    let error = logs.create_log_group().log_group_name(format!("{mine}-new")).send().await.unwrap_err();
    assert_eq!(aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata::code(&error), Some("AccessDeniedException"));
    let streams = moto_logs.describe_log_streams().log_group_name(&other).send().await.unwrap();
    assert!(streams.log_streams().is_empty(), "a refused stream is not created");
}
