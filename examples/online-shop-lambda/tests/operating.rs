//! Operating the deployed shop in the local cloud (IAM enforced on every AWS
//! call the functions make): a mail API key kept as an SSM SecureString
//! reaches the mail capability and nothing else (no log line, no function
//! environment, no error), and `status` reports each plugin's health —
//! unhealthy once a poison command sits in a dead-letter queue.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reventless_aws::deploy::config::ProjectConfig;
use reventless_aws::deploy::inputs::Bootstraps;
use reventless_local_cloud::stage::{Deployed, deploy, deploy_clients};
use reventless_local_cloud::{CloudOptions, LocalCloud};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SHOP_TOML: &str = include_str!("../../online-shop/reventless.toml");

fn bootstraps() -> Bootstraps {
    Bootstraps::Paths(BTreeMap::from([
        ("catalog".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_catalog-lambda"))),
        ("ordering".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_ordering-lambda"))),
        ("platform".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_platform-gateway"))),
    ]))
}

/// One request the mail API received: its `Authorization` header and body.
#[derive(Debug, Clone)]
struct Received {
    authorization: String,
    body: Value,
}

/// A transactional-mail API on loopback that accepts every mail and keeps
/// what it was sent.
async fn mail_api() -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/mail", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::new()));
    let kept = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                loop {
                    // One request: headers up to the blank line, then content-length bytes.
                    let end = loop {
                        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                            break end + 4;
                        }
                        let mut chunk = [0u8; 4096];
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buffer[..end]).to_string();
                    let header = |name: &str| {
                        head.lines()
                            .find_map(|line| {
                                let (key, value) = line.split_once(':')?;
                                key.eq_ignore_ascii_case(name).then(|| value.trim().to_string())
                            })
                            .unwrap_or_default()
                    };
                    let length: usize = header("content-length").parse().unwrap_or(0);
                    while buffer.len() < end + length {
                        let mut chunk = [0u8; 4096];
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = serde_json::from_slice(&buffer[end..end + length]).unwrap_or(Value::Null);
                    kept.lock().unwrap().push(Received { authorization: header("authorization"), body });
                    buffer.drain(..end + length);
                    let answer = b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n";
                    if socket.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, received)
}

/// The shop with `[secrets]`: Ordering may read `mail-api-key` and mails
/// through the API at `mail_url`; its inbox gives up on a message quickly
/// (timeout 2 s → visibility 12 s, 5 receives, then the dead-letter queue).
fn config(stage: &str, mail_url: &str) -> ProjectConfig {
    let text = format!(
        "{SHOP_TOML}
[stages.{stage}]
[stages.{stage}.secrets]
mail-api-key = \"/shop/{stage}/mail-api-key\"
[stages.{stage}.plugins.ordering]
secrets = [\"mail-api-key\"]
[stages.{stage}.plugins.ordering.groups.default.env_vars]
SHOP_MAIL_API_URL = \"{mail_url}\"
[stages.{stage}.plugins.ordering.groups.Extensions]
timeout = 2
"
    );
    ProjectConfig::from_texts(&text, None, stage, &|_| None, PathBuf::from(".")).unwrap()
}

struct Shop {
    cloud: LocalCloud,
    deployed: Deployed,
    client: reqwest::Client,
    stage: String,
}

impl Shop {
    async fn token(&self, sub: &str, groups: &[&str]) -> String {
        let answer: Value = self
            .client
            .post(&self.deployed.token_url)
            .json(&json!({"sub": sub, "groups": groups}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["token"].as_str().unwrap().to_string()
    }

    async fn gql(&self, token: &str, query: &str) -> Value {
        let response = self
            .client
            .post(&self.deployed.graphql_url)
            .bearer_auth(token)
            .json(&json!({"query": query}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert!(status == 200 && body["errors"].is_null(), "{query}: {status} {body}\n{}", self.output());
        body["data"].clone()
    }

    /// Polls `query` until `check` holds (at most 90 s: functions start cold).
    async fn eventually(&self, token: &str, what: &str, query: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let data = self.gql(token, query).await;
            if check(&data) {
                return data;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; last: {data}\n{}", self.output());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The stage's functions, as the local Lambda service lists them.
    async fn functions(&self) -> Vec<String> {
        let listed = deploy_clients(&self.cloud).lambda.list_functions().send().await.unwrap();
        let prefix = format!("shop-{}-", self.stage);
        let names = listed.functions().iter().filter_map(|f| f.function_name());
        names.filter(|name| name.starts_with(&prefix)).map(str::to_string).collect()
    }

    /// Recent output of every function (shown when a test fails).
    fn output(&self) -> String {
        let mut text = String::new();
        for name in self.cloud.lambda.stats().into_keys() {
            text.push_str(&format!("--- {name}\n"));
            for line in self.cloud.lambda.recent_output(&name).iter().rev().take(15).rev() {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }

    /// Every line of every function log group of the stage on the emulator.
    async fn log_lines(&self) -> Vec<String> {
        let logs = aws_sdk_cloudwatchlogs::Client::new(&self.cloud.sdk);
        let prefix = format!("/aws/lambda/shop-{}-", self.stage);
        let groups = logs.describe_log_groups().log_group_name_prefix(&prefix).send().await.unwrap();
        let mut lines = Vec::new();
        for group in groups.log_groups() {
            let name = group.log_group_name().unwrap();
            let mut token = None;
            loop {
                let page = logs.filter_log_events().log_group_name(name).set_next_token(token).send().await.unwrap();
                lines.extend(page.events().iter().filter_map(|e| e.message().map(str::to_string)));
                token = page.next_token().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
        }
        lines
    }
}

fn unique_stage(prefix: &str) -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("{prefix}{}", &id[26..])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_secret_reaches_the_mail_capability_only_and_status_reports_health() {
    let stage = unique_stage("o");
    let (mail_url, mails) = mail_api().await;
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap().keep();
    let mut options = CloudOptions::new(work);
    options.endpoint_url = Some(reventless_aws::emulator::Emulator::shared().unwrap().endpoint.clone());
    let cloud = LocalCloud::start(options).await.unwrap();
    let progress = Arc::new(Mutex::new(Vec::new()));
    let said = progress.clone();
    let report = move |line: String| said.lock().unwrap().push(line);
    let deployed = deploy(&cloud, config(&stage, &mail_url), &bootstraps(), &report).await.unwrap();
    let shop = Shop { cloud, deployed, client: reqwest::Client::new(), stage: stage.clone() };
    let clients = deploy_clients(&shop.cloud);
    let inputs = reventless_aws::deploy::inputs::prepare(config(&stage, &mail_url), &bootstraps(), &|_| {}).unwrap();

    // A poison message (no command, no published event) in Ordering's inbox:
    // it fails every receive and lands in the dead-letter queue while the flows run.
    let queue = format!("shop-{stage}-ordering-Ordering_Extensions.fifo");
    let dlq = format!("shop-{stage}-ordering-Ordering_Extensions-dlq.fifo");
    let url = clients.sqs.get_queue_url().queue_name(&queue).send().await.unwrap().queue_url().unwrap().to_string();
    clients
        .sqs
        .send_message()
        .queue_url(&url)
        .message_body("{\"not\": \"an event\"")
        .message_group_id("poison")
        .message_deduplication_id("poison-1")
        .send()
        .await
        .unwrap();

    // Right after the deploy every plugin is healthy.
    let status = reventless_aws::deploy::run::stage_status(&clients, &inputs).await.unwrap();
    assert_eq!(status.plugins.len(), 2);
    for plugin in &status.plugins {
        assert!(plugin.healthy, "{}", plugin.summary());
        assert!(!plugin.heartbeat.stale && plugin.heartbeat.age_seconds.is_some(), "{plugin:?}");
    }

    // The products and a customer.
    let merchandiser = shop.token("mia", &["Merchandiser"]).await;
    let customer = shop.token("c1", &[]).await;
    let admin = shop.token("root", &["Admin"]).await;
    shop.gql(&merchandiser, r#"mutation { Catalog_AddCategory(categoryId: "books", name: "Books") { status } }"#).await;
    let product = r#"mutation { Catalog_AddProduct(productId: "p1", name: "p1", description: "", priceCents: 500, currency: "EUR", categoryId: "books") { status } }"#;
    assert_eq!(shop.gql(&merchandiser, product).await["Catalog_AddProduct"]["status"], "ACCEPTED");
    shop.eventually(&customer, "p1 synced", r#"{ Ordering_AvailableProduct(id: "p1") { available } }"#, |d| {
        d["Ordering_AvailableProduct"]["available"] == true
    })
    .await;
    let register =
        r#"mutation { Ordering_Customer_Register(id: "c1", name: "Ann", email: "ann@example.org") { status } }"#;
    assert_eq!(shop.gql(&customer, register).await["Ordering_Customer_Register"]["status"], "ACCEPTED");
    let place = |order: &str| {
        format!(
            r#"mutation {{ Ordering_PlaceOrder(orderId: "{order}", customerId: "c1", lines: [{{productId: "p1", quantity: 1}}], shipping: STANDARD) {{ status }} }}"#
        )
    };

    // Before the parameter exists: the mail fails, naming the secret and where it was looked for.
    assert_eq!(shop.gql(&customer, &place("o1")).await["Ordering_PlaceOrder"]["status"], "ACCEPTED");
    let todo = shop
        .eventually(
            &admin,
            "o1's mail failed",
            r#"{ Ordering_SendOrderConfirmationTodo(id: "o1") { status lastError } }"#,
            |d| d["Ordering_SendOrderConfirmationTodo"]["status"] == "FAILED",
        )
        .await;
    let error = todo["Ordering_SendOrderConfirmationTodo"]["lastError"].as_str().unwrap().to_string();
    let path = format!("/shop/{stage}/mail-api-key");
    assert!(error.contains("secret `mail-api-key` is not set") && error.contains(&path), "{error}");
    // status reports it as the plugin's problem.
    let status = reventless_aws::deploy::run::stage_status(&clients, &inputs).await.unwrap();
    let ordering = status.plugins.iter().find(|p| p.stack == "ordering").unwrap();
    let confirmations = ordering.automations.iter().find(|a| a.automation == "SendOrderConfirmation").unwrap();
    assert!(confirmations.failed + confirmations.exhausted >= 1, "{ordering:?}");
    assert!(!ordering.healthy && ordering.summary().contains("SendOrderConfirmation"), "{}", ordering.summary());

    // The key as a SecureString: the next mail goes out with it.
    let secret = format!("mk-{}", uuid::Uuid::now_v7().simple());
    clients.ssm.put_parameter().name(&path).value(&secret).r#type("SecureString".into()).send().await.unwrap();
    assert_eq!(shop.gql(&customer, &place("o2")).await["Ordering_PlaceOrder"]["status"], "ACCEPTED");
    shop.eventually(&admin, "o2's mail sent", r#"{ Ordering_SendOrderConfirmationTodo(id: "o2") { status } }"#, |d| {
        d["Ordering_SendOrderConfirmationTodo"]["status"] == "COMPLETED"
    })
    .await;
    let sent = mails.lock().unwrap().clone();
    let o2 = sent.iter().find(|m| m.body["subject"] == "Order o2 confirmed").unwrap_or_else(|| panic!("{sent:?}"));
    assert_eq!(o2.authorization, format!("Bearer {secret}"), "the capability used the secret");
    assert_eq!(o2.body["to"], "c1");

    let functions = shop.functions().await;
    assert!(functions.len() >= 8, "{functions:?}");
    // Only Ordering's roles may read it: exactly that parameter, decrypted through SSM only.
    let iam = aws_sdk_iam::Client::new(&shop.cloud.sdk);
    let parameter_arn = format!("arn:aws:ssm:us-east-1:{}:parameter{path}", clients.account().await.unwrap());
    for function in &functions {
        let policy = iam.get_role_policy().role_name(function).policy_name("reventless").send().await;
        let Ok(policy) = policy else { continue };
        let document = reventless_local_cloud::iam::document_text(policy.policy_document()).into_owned();
        let statements: Value = serde_json::from_str(&document).unwrap();
        let reads: Vec<&Value> = statements["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["Action"].to_string().contains("ssm:") || s["Action"].to_string().contains("kms:"))
            .collect();
        if function.contains("-ordering-") {
            assert_eq!(reads[0]["Resource"], json!([parameter_arn]), "{function}: {document}");
            assert_eq!(reads[1]["Action"], json!(["kms:Decrypt"]), "{function}: {document}");
            assert_eq!(reads[1]["Condition"]["StringEquals"]["kms:ViaService"], "ssm.us-east-1.amazonaws.com");
        } else {
            assert!(reads.is_empty(), "{function} may read no secret: {document}");
        }
    }

    // The poison message in the dead-letter queue: status goes unhealthy, naming it.
    let deadline = Instant::now() + Duration::from_secs(150);
    let status = loop {
        let status = reventless_aws::deploy::run::stage_status(&clients, &inputs).await.unwrap();
        let ordering = status.plugins.iter().find(|p| p.stack == "ordering").unwrap();
        if ordering.dead_letters.iter().any(|q| q.queue == dlq && q.messages >= 1) {
            break status;
        }
        assert!(Instant::now() < deadline, "the poison message never reached {dlq}: {ordering:?}\n{}", shop.output());
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert!(!status.healthy);
    let ordering = status.plugins.iter().find(|p| p.stack == "ordering").unwrap();
    assert!(ordering.problems.iter().any(|p| p.contains("dead letter(s) in") && p.contains(&dlq)), "{ordering:?}");
    let catalog = status.plugins.iter().find(|p| p.stack == "catalog").unwrap();
    assert!(catalog.healthy, "{}", catalog.summary());
    let reported = serde_json::to_value(&status).unwrap();
    let ordering_json = reported["plugins"].as_array().unwrap().iter().find(|p| p["stack"] == "ordering").unwrap();
    assert_eq!(ordering_json["healthy"], false);
    assert!(
        ordering_json["deadLetters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["queue"] == dlq.as_str() && q["messages"] == 1)
    );
    assert!(status.to_text().contains("UNHEALTHY"), "{}", status.to_text());

    // The value is in no function's environment, log line or error.
    for function in &functions {
        let configuration = clients.lambda.get_function_configuration().function_name(function).send().await.unwrap();
        let environment = configuration.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
        assert!(environment.values().all(|v| !v.contains(&secret)), "{function}'s environment holds the value");
        let named = environment.get("REVENTLESS_SECRETS").map(|t| serde_json::from_str::<Value>(t).unwrap());
        if function.contains("-ordering-") {
            assert_eq!(named, Some(json!({"mail-api-key": path})), "{function}");
        } else {
            assert_eq!(named, None, "{function}");
        }
        for line in shop.cloud.lambda.recent_output(function) {
            assert!(!line.contains(&secret), "{function} printed the value: {line}");
        }
    }
    let lines = shop.log_lines().await;
    assert!(lines.iter().any(|l| l.contains("START RequestId")), "the log groups hold the functions' output");
    assert!(lines.iter().all(|l| !l.contains(&secret)), "a log line holds the value");
    assert!(progress.lock().unwrap().iter().all(|l| !l.contains(&secret)));
    let todos =
        shop.gql(&admin, r#"{ Ordering_SendOrderConfirmationTodos { edges { node { id status lastError } } } }"#).await;
    assert!(!todos.to_string().contains(&secret), "{todos}");
}
