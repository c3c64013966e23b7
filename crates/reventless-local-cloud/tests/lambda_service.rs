//! The local Lambda service through the real Lambda API (the SDK's client),
//! with a Python `bootstrap` speaking the Runtime API, fake identities and
//! access, and the emulator (moto) for the functions' logs.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    DestinationConfig, Environment, EventSourcePosition, Filter, FilterCriteria, FunctionCode, FunctionUrlAuthType,
    OnFailure, Runtime,
};
use reventless_aws::emulator::Emulator;
use reventless_local_cloud::iam::{Access, Denied};
use reventless_local_cloud::lambda::{Identities, LambdaOptions, LambdaService};
use serde_json::{Value, json};

const ROLE: &str = "arn:aws:iam::123456789012:role/test-function-role";
const REGION: &str = "us-east-1";

/// The function: the Runtime API loop; the payload says what to do.
const BOOTSTRAP: &str = r#"#!/usr/bin/env python3
import json, os, sys, time, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
def post(url, body):
    urllib.request.urlopen(urllib.request.Request(url, json.dumps(body).encode(), method="POST")).read()
while True:
    with urllib.request.urlopen(api + "next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(r.read())
    cmd = event if isinstance(event, dict) else {}
    if "print" in cmd:
        print(cmd["print"], flush=True)
    if "sleep" in cmd:
        time.sleep(cmd["sleep"])
    if "exit" in cmd:
        sys.exit(cmd["exit"])
    if "fail" in cmd:
        post(api + rid + "/error", {"errorType": "Failed", "errorMessage": cmd["fail"]})
        continue
    post(api + rid + "/response", {"echo": cmd.get("echo", event), "env": dict(os.environ), "pid": os.getpid()})
"#;

fn zip_of(files: &[(&str, &str, u32)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content, mode) in files {
        let options = zip::write::SimpleFileOptions::default().unix_permissions(*mode);
        writer.start_file(*name, options).unwrap();
        writer.write_all(content.as_bytes()).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn bootstrap_zip() -> Vec<u8> {
    zip_of(&[("bootstrap", BOOTSTRAP, 0o755)])
}

/// Fixed credentials per role, and back.
#[derive(Default)]
struct FakeIdentities {
    keys: Mutex<HashMap<String, String>>,
}

impl Identities for FakeIdentities {
    fn credentials_for(&self, role_arn: &str) -> [String; 3] {
        let mut keys = self.keys.lock().unwrap();
        let index = keys.len();
        let key = keys.entry(role_arn.to_string()).or_insert_with(|| format!("AKIDTEST{index:04}")).clone();
        [key.clone(), format!("secret-of-{key}"), format!("token-of-{key}")]
    }

    fn role_for_access_key(&self, access_key_id: &str) -> Option<String> {
        self.keys.lock().unwrap().iter().find(|(_, key)| *key == access_key_id).map(|(role, _)| role.clone())
    }
}

/// Allows everything but the listed actions; records what it was asked.
struct FakeAccess {
    deny: Vec<&'static str>,
    asked: Mutex<Vec<(String, String)>>,
}

#[async_trait::async_trait]
impl Access for FakeAccess {
    async fn authorize(&self, role_arn: &str, action: &str, resource: &str) -> Result<(), Denied> {
        self.asked.lock().unwrap().push((action.to_string(), resource.to_string()));
        if self.deny.contains(&action) {
            return Err(Denied {
                principal: role_arn.to_string(),
                action: action.to_string(),
                resource: resource.to_string(),
            });
        }
        Ok(())
    }
}

impl FakeAccess {
    fn was_asked(&self, action: &str, resource_part: &str) -> bool {
        self.asked.lock().unwrap().iter().any(|(a, r)| a == action && r.contains(resource_part))
    }
}

struct Setup {
    service: LambdaService,
    lambda: aws_sdk_lambda::Client,
    moto: aws_config::SdkConfig,
    identities: Arc<FakeIdentities>,
    access: Arc<FakeAccess>,
    _work: tempfile::TempDir,
}

async fn setup(deny: &[&'static str]) -> Setup {
    setup_with(deny, 4).await
}

/// A role on the emulator whose trust policy names `service`; its ARN.
async fn role_trusting(moto: &aws_config::SdkConfig, name: &str, service: &str) -> String {
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]});
    let created = aws_sdk_iam::Client::new(moto)
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await;
    match created {
        Ok(output) => output.role().unwrap().arn().to_string(),
        // Created by a test running beside this one (the emulator is shared).
        Err(error) if error.as_service_error().is_some_and(|e| e.is_entity_already_exists_exception()) => {
            format!("arn:aws:iam::123456789012:role/{name}")
        }
        Err(error) => panic!("CreateRole {name}: {}", aws_sdk_iam::error::DisplayErrorContext(error)),
    }
}

async fn setup_with(deny: &[&'static str], max_instances: usize) -> Setup {
    let moto = Emulator::shared().expect("moto must run for these tests").sdk_config().await;
    // The functions' role, as AWS requires it: one Lambda may assume.
    let role = role_trusting(&moto, "test-function-role", "lambda.amazonaws.com").await;
    assert_eq!(role, ROLE);
    let work = tempfile::tempdir().unwrap();
    let options = LambdaOptions {
        region: REGION.into(),
        account: "123456789012".into(),
        work_dir: work.path().to_path_buf(),
        function_endpoint_url: "http://127.0.0.1:1/initial".into(),
        max_instances,
        keep_warm: Duration::from_secs(60),
    };
    let identities = Arc::new(FakeIdentities::default());
    let access = Arc::new(FakeAccess { deny: deny.to_vec(), asked: Mutex::default() });
    let service = LambdaService::start(options, &moto, identities.clone(), access.clone()).await.unwrap();
    let config = aws_sdk_lambda::config::Builder::from(&moto)
        .endpoint_url(service.url())
        .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
        .build();
    let lambda = aws_sdk_lambda::Client::from_conf(config);
    Setup { service, lambda, moto, identities, access, _work: work }
}

/// What an invocation answered: `FunctionError` and the payload.
struct Answer {
    function_error: Option<String>,
    payload: Value,
}

impl Answer {
    fn pid(&self) -> u64 {
        assert_eq!(self.function_error, None, "the invocation failed: {}", self.payload);
        self.payload["pid"].as_u64().unwrap()
    }

    fn env(&self, name: &str) -> Option<&str> {
        self.payload["env"][name].as_str()
    }
}

impl Setup {
    async fn create(&self, name: &str, timeout: i32, variables: &[(&str, &str)]) {
        let mut environment = Environment::builder();
        for (key, value) in variables {
            environment = environment.variables(*key, *value);
        }
        self.lambda
            .create_function()
            .function_name(name)
            .role(ROLE)
            .runtime(Runtime::Providedal2023)
            .handler("bootstrap")
            .timeout(timeout)
            .memory_size(256)
            .environment(environment.build())
            .code(FunctionCode::builder().zip_file(Blob::new(bootstrap_zip())).build())
            .send()
            .await
            .unwrap();
    }

    async fn invoke(&self, name: &str, payload: Value) -> Answer {
        let output = self
            .lambda
            .invoke()
            .function_name(name)
            .payload(Blob::new(payload.to_string()))
            .send()
            .await
            .map_err(aws_sdk_lambda::error::DisplayErrorContext)
            .unwrap();
        let bytes = output.payload().map(|p| p.as_ref().to_vec()).unwrap_or_default();
        Answer {
            function_error: output.function_error().map(str::to_string),
            payload: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// The first statement AWS requires of a public URL: `lambda:InvokeFunctionUrl`
    /// for anyone, conditioned on the NONE auth type.
    async fn allow_public_url(&self, name: &str) {
        self.lambda
            .add_permission()
            .function_name(name)
            .statement_id("public-url")
            .action("lambda:InvokeFunctionUrl")
            .principal("*")
            .function_url_auth_type(FunctionUrlAuthType::None)
            .send()
            .await
            .unwrap();
    }

    /// The second (since October 2025): `lambda:InvokeFunction` for anyone,
    /// conditioned on the call coming through the function URL.
    async fn allow_invoke_via_url(&self, name: &str) {
        self.lambda
            .add_permission()
            .function_name(name)
            .statement_id("public-url-invoke")
            .action("lambda:InvokeFunction")
            .principal("*")
            .invoked_via_function_url(true)
            .send()
            .await
            .unwrap();
    }

    /// A new queue on the emulator (named `prefix` and a unique part), its ARN.
    async fn queue(&self, prefix: &str, visibility_timeout: i32) -> String {
        use aws_sdk_sqs::types::QueueAttributeName;
        let (stem, fifo) = prefix.strip_suffix(".fifo").map_or((prefix, false), |stem| (stem, true));
        let name = format!("{stem}-{}{}", uuid::Uuid::new_v4().simple(), if fifo { ".fifo" } else { "" });
        let sqs = aws_sdk_sqs::Client::new(&self.moto);
        let mut create = sqs
            .create_queue()
            .queue_name(&name)
            .attributes(QueueAttributeName::VisibilityTimeout, visibility_timeout.to_string());
        if fifo {
            create = create.attributes(QueueAttributeName::FifoQueue, "true");
        }
        create.send().await.unwrap();
        format!("arn:aws:sqs:{REGION}:123456789012:{name}")
    }

    fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        aws_sdk_cloudwatchlogs::Client::new(&self.moto)
    }
}

/// Whether `/proc/<pid>` still exists (a process, or a zombie not yet reaped).
fn proc_exists(pid: u64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether the process runs (exists and is no zombie).
fn running(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| stat.rsplit(')').next().map(str::trim_start).is_some_and(|rest| !rest.starts_with('Z')))
        .unwrap_or(false)
}

#[tokio::test]
async fn an_invocation_runs_with_lambdas_environment_and_nothing_of_ours() {
    assert!(std::env::var_os("HOME").is_some() && std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let setup = setup(&[]).await;
    setup.service.set_function_endpoint("http://127.0.0.1:9/the-proxy");
    setup.create("env-fn", 3, &[("GREETING", "hello"), ("TABLE", "orders")]).await;

    let answer = setup.invoke("env-fn", json!({"echo": {"n": 42}})).await;

    assert_eq!(answer.function_error, None, "{}", answer.payload);
    assert_eq!(answer.payload["echo"], json!({"n": 42}));
    let [key, secret, token] = setup.identities.credentials_for(ROLE);
    let expected = [
        ("AWS_LAMBDA_FUNCTION_NAME", "env-fn"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", key.as_str()),
        ("AWS_SECRET_ACCESS_KEY", secret.as_str()),
        ("AWS_SESSION_TOKEN", token.as_str()),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9/the-proxy"),
        ("GREETING", "hello"),
        ("TABLE", "orders"),
    ];
    for (name, value) in expected {
        assert_eq!(answer.env(name), Some(value), "{name} in {}", answer.payload["env"]);
    }
    for leaked in ["HOME", "CARGO_MANIFEST_DIR", "CARGO_PKG_NAME", "RUST_LOG"] {
        assert_eq!(answer.env(leaked), None, "{leaked} leaked into {}", answer.payload["env"]);
    }
}

#[tokio::test]
async fn a_warm_instance_is_reused_until_the_configuration_changes() {
    let setup = setup(&[]).await;
    setup.create("warm-fn", 3, &[("GREETING", "hello")]).await;

    let first = setup.invoke("warm-fn", json!({"echo": 1})).await;
    let second = setup.invoke("warm-fn", json!({"echo": 2})).await;
    assert_eq!(first.pid(), second.pid(), "the warm instance answers again");
    assert_eq!(second.payload["echo"], json!(2));

    setup
        .lambda
        .update_function_configuration()
        .function_name("warm-fn")
        .environment(Environment::builder().variables("GREETING", "bye").build())
        .send()
        .await
        .unwrap();
    let third = setup.invoke("warm-fn", json!({"echo": 3})).await;
    assert_ne!(third.pid(), first.pid(), "the update retired the old instance");
    assert_eq!(third.env("GREETING"), Some("bye"));
    let deadline = Instant::now() + Duration::from_secs(3);
    while running(first.pid()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!running(first.pid()), "the retired instance still runs");
}

#[tokio::test]
async fn a_reported_error_fails_the_invocation_and_keeps_the_instance() {
    let setup = setup(&[]).await;
    setup.create("fail-fn", 3, &[]).await;
    let before = setup.invoke("fail-fn", json!({"echo": 1})).await.pid();

    let failed = setup.invoke("fail-fn", json!({"fail": "no such order"})).await;

    assert_eq!(failed.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(failed.payload, json!({"errorType": "Failed", "errorMessage": "no such order"}));
    assert_eq!(setup.invoke("fail-fn", json!({"echo": 2})).await.pid(), before);
}

#[tokio::test]
async fn a_timed_out_invocation_kills_its_instance() {
    let setup = setup(&[]).await;
    setup.create("slow-fn", 1, &[]).await;
    let pid = setup.invoke("slow-fn", json!({"echo": 1})).await.pid();

    let began = Instant::now();
    let timed_out = setup.invoke("slow-fn", json!({"sleep": 3})).await;

    assert!(began.elapsed() < Duration::from_millis(2800), "answered after {:?}", began.elapsed());
    assert_eq!(timed_out.function_error.as_deref(), Some("Unhandled"));
    let message = timed_out.payload["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("Task timed out"), "{}", timed_out.payload);
    assert_eq!(timed_out.payload["errorType"], "Sandbox.Timedout", "Lambda's error type");
    assert!(!proc_exists(pid), "the timed-out instance {pid} is still there");
    let next = setup.invoke("slow-fn", json!({"echo": 2})).await;
    assert_ne!(next.pid(), pid);
    assert_eq!(next.payload["echo"], json!(2));
}

#[tokio::test]
async fn a_process_exiting_mid_invocation_fails_only_that_invocation() {
    let setup = setup(&[]).await;
    setup.create("exit-fn", 3, &[]).await;
    let pid = setup.invoke("exit-fn", json!({"echo": 1})).await.pid();

    let exited = setup.invoke("exit-fn", json!({"exit": 3})).await;

    assert_eq!(exited.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(exited.payload["errorType"], "Runtime.ExitError", "{}", exited.payload);
    let reason = exited.payload["errorMessage"].as_str().unwrap_or_default();
    assert!(reason.contains("Runtime exited with error: exit status: 3"), "{reason}");
    let next = setup.invoke("exit-fn", json!({"echo": 2})).await;
    assert_ne!(next.pid(), pid);
    assert_eq!(next.payload["echo"], json!(2));
}

#[tokio::test]
async fn reserved_concurrency_throttles_synchronous_invocations() {
    let setup = setup(&[]).await;
    setup.create("busy-fn", 5, &[]).await;
    let wait_busy = || async {
        let deadline = Instant::now() + Duration::from_secs(5);
        while setup.service.busy_pids("busy-fn").is_empty() {
            assert!(Instant::now() < deadline, "the long invocation never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let long = |client: aws_sdk_lambda::Client| {
        tokio::spawn(async move {
            client.invoke().function_name("busy-fn").payload(Blob::new(r#"{"sleep": 1}"#)).send().await
        })
    };

    // Unreserved: a second invocation beside a long one runs.
    let first = long(setup.lambda.clone());
    wait_busy().await;
    assert_eq!(setup.invoke("busy-fn", json!({"echo": 1})).await.function_error, None);
    assert_eq!(first.await.unwrap().unwrap().function_error(), None);

    setup
        .lambda
        .put_function_concurrency()
        .function_name("busy-fn")
        .reserved_concurrent_executions(1)
        .send()
        .await
        .unwrap();
    let first = long(setup.lambda.clone());
    wait_busy().await;
    let throttled =
        setup.lambda.invoke().function_name("busy-fn").payload(Blob::new(r#"{"echo": 2}"#)).send().await.unwrap_err();
    assert!(throttled.into_service_error().is_too_many_requests_exception());
    assert_eq!(first.await.unwrap().unwrap().function_error(), None);
    assert_eq!(setup.invoke("busy-fn", json!({"echo": 3})).await.function_error, None, "the one slot is free again");

    setup
        .lambda
        .put_function_concurrency()
        .function_name("busy-fn")
        .reserved_concurrent_executions(0)
        .send()
        .await
        .unwrap();
    let throttled =
        setup.lambda.invoke().function_name("busy-fn").payload(Blob::new(r#"{"echo": 4}"#)).send().await.unwrap_err();
    assert!(throttled.into_service_error().is_too_many_requests_exception());

    setup.lambda.delete_function_concurrency().function_name("busy-fn").send().await.unwrap();
    assert_eq!(setup.invoke("busy-fn", json!({"echo": 5})).await.payload["echo"], json!(5));
}

/// Starts `{"sleep": seconds}` on `function` and waits until it runs; answers its pid.
async fn start_long(setup: &Setup, function: &str, seconds: f64) -> (u32, tokio::task::JoinHandle<Value>) {
    let client = setup.lambda.clone();
    let name = function.to_string();
    let running = tokio::spawn(async move {
        let payload = json!({"sleep": seconds}).to_string();
        let output = client.invoke().function_name(name).payload(Blob::new(payload)).send().await.unwrap();
        assert_eq!(output.function_error(), None);
        serde_json::from_slice(output.payload().unwrap().as_ref()).unwrap()
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(pid) = setup.service.busy_pids(function).first() {
            return (*pid, running);
        }
        assert!(Instant::now() < deadline, "the long invocation never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn past_max_instances_an_unreserved_function_waits_instead_of_throttling() {
    let setup = setup_with(&[], 1).await;
    setup.create("queued-fn", 5, &[]).await;
    let (pid, long) = start_long(&setup, "queued-fn", 1.0).await;

    let began = Instant::now();
    let waited = setup.invoke("queued-fn", json!({"echo": 1})).await;

    assert_eq!(waited.payload["echo"], json!(1), "{}", waited.payload);
    assert_eq!(waited.pid(), u64::from(pid), "it took the one instance once free");
    assert!(began.elapsed() > Duration::from_millis(300), "it did not wait: {:?}", began.elapsed());
    long.await.unwrap();
}

#[tokio::test]
async fn a_function_url_is_throttled_past_reserved_concurrency() {
    let setup = setup(&[]).await;
    setup.create("busy-url-fn", 5, &[]).await;
    let url = setup
        .lambda
        .create_function_url_config()
        .function_name("busy-url-fn")
        .auth_type(FunctionUrlAuthType::None)
        .send()
        .await
        .unwrap()
        .function_url()
        .to_string();
    setup.allow_public_url("busy-url-fn").await;
    setup.allow_invoke_via_url("busy-url-fn").await;
    setup
        .lambda
        .put_function_concurrency()
        .function_name("busy-url-fn")
        .reserved_concurrent_executions(1)
        .send()
        .await
        .unwrap();
    let (_, long) = start_long(&setup, "busy-url-fn", 1.0).await;

    let began = Instant::now();
    let response = reqwest::Client::new().get(&url).send().await.unwrap();

    assert_eq!(response.status(), 429);
    assert!(began.elapsed() < Duration::from_millis(500), "it waited for the slot: {:?}", began.elapsed());
    long.await.unwrap();
    assert_eq!(reqwest::Client::new().get(&url).send().await.unwrap().status(), 200, "the slot is free again");
}

#[tokio::test]
async fn deleting_a_function_stops_even_its_busy_instance() {
    let setup = setup(&[]).await;
    setup.create("doomed-fn", 5, &[]).await;
    let (pid, long) = start_long(&setup, "doomed-fn", 0.5).await;

    setup.lambda.delete_function().function_name("doomed-fn").send().await.unwrap();
    long.await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(3);
    while running(u64::from(pid)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!running(u64::from(pid)), "the deleted function's instance {pid} was kept warm");
}

async fn create_log_group(setup: &Setup, group: &str) {
    setup.logs().create_log_group().log_group_name(group).send().await.unwrap();
}

async fn log_messages(setup: &Setup, group: &str) -> Vec<String> {
    let events = setup.logs().filter_log_events().log_group_name(group).send().await.unwrap();
    events.events().iter().filter_map(|e| e.message().map(str::to_string)).collect()
}

#[tokio::test]
async fn printed_lines_reach_the_functions_log_group() {
    let setup = setup(&[]).await;
    create_log_group(&setup, "/aws/lambda/print-fn").await;
    setup.create("print-fn", 3, &[]).await;
    let line = format!("order placed {}", uuid::Uuid::new_v4());

    let answer = setup.invoke("print-fn", json!({"print": line})).await;
    assert_eq!(answer.function_error, None);

    let deadline = Instant::now() + Duration::from_secs(10);
    let complete = |messages: &[String]| {
        messages.contains(&line)
            && ["START RequestId:", "END RequestId:", "REPORT RequestId:"]
                .iter()
                .all(|start| messages.iter().any(|m| m.starts_with(start)))
    };
    let mut messages = log_messages(&setup, "/aws/lambda/print-fn").await;
    while !complete(&messages) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        messages = log_messages(&setup, "/aws/lambda/print-fn").await;
    }
    assert!(complete(&messages), "the log group holds {messages:?}");
}

#[tokio::test]
async fn a_role_that_may_not_put_log_events_writes_no_logs() {
    let setup = setup(&["logs:PutLogEvents"]).await;
    create_log_group(&setup, "/aws/lambda/mute-fn").await;
    setup.create("mute-fn", 3, &[]).await;
    let line = format!("order placed {}", uuid::Uuid::new_v4());

    let answer = setup.invoke("mute-fn", json!({"print": line})).await;
    assert_eq!(answer.function_error, None);

    // The line was written, and the shipper asked about it: it is decided.
    assert!(setup.service.recent_output("mute-fn").contains(&line));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !setup.access.was_asked("logs:PutLogEvents", "/aws/lambda/mute-fn") {
        assert!(Instant::now() < deadline, "the log shipper never asked whether it may write");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(log_messages(&setup, "/aws/lambda/mute-fn").await, Vec::<String>::new());
}

#[tokio::test]
async fn a_public_function_url_needs_the_public_permission() {
    let setup = setup(&[]).await;
    setup.create("url-fn", 3, &[]).await;
    let url = setup
        .lambda
        .create_function_url_config()
        .function_name("url-fn")
        .auth_type(FunctionUrlAuthType::None)
        .send()
        .await
        .unwrap()
        .function_url()
        .to_string();
    let http = reqwest::Client::new();
    let call = || http.post(format!("{url}orders/7?verbose=1")).body("the body").send();

    assert_eq!(call().await.unwrap().status(), 403, "NONE without the public permission");

    setup.allow_public_url("url-fn").await;
    assert_eq!(call().await.unwrap().status(), 403, "InvokeFunctionUrl alone no longer opens a URL");

    // lambda:InvokeFunction for anyone, not limited to the URL: the function
    // may be invoked directly by anyone, but the URL still needs the
    // conditioned statement.
    setup
        .lambda
        .add_permission()
        .function_name("url-fn")
        .statement_id("anyone-invokes")
        .action("lambda:InvokeFunction")
        .principal("*")
        .send()
        .await
        .unwrap();
    assert_eq!(call().await.unwrap().status(), 403, "an InvokeFunction without InvokedViaFunctionUrl");

    setup.allow_invoke_via_url("url-fn").await;
    let policy = setup.lambda.get_policy().function_name("url-fn").send().await.unwrap();
    let policy: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let via_url = policy["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == "public-url-invoke").unwrap();
    assert_eq!(via_url["Condition"], json!({"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}), "{policy}");
    let response = call().await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let event = &answer["echo"];
    assert_eq!(event["version"], "2.0", "{answer}");
    assert_eq!(event["rawPath"], "/orders/7");
    assert_eq!(event["rawQueryString"], "verbose=1");
    assert_eq!(event["body"], "the body");
    assert_eq!(event["requestContext"]["http"]["method"], "POST");
}

/// An `AWS_IAM` URL of a new function `name`, and the signature of [`ROLE`].
async fn iam_url(setup: &Setup, name: &str) -> (String, String) {
    setup.create(name, 3, &[]).await;
    let url = setup
        .lambda
        .create_function_url_config()
        .function_name(name)
        .auth_type(FunctionUrlAuthType::AwsIam)
        .send()
        .await
        .unwrap()
        .function_url()
        .to_string();
    let [key, ..] = setup.identities.credentials_for(ROLE);
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={key}/20250101/{REGION}/lambda/aws4_request, SignedHeaders=host, Signature=00"
    );
    (url, authorization)
}

#[tokio::test]
async fn an_iam_function_url_needs_a_signed_caller() {
    let setup = setup(&[]).await;
    let (url, authorization) = iam_url(&setup, "iam-url-fn").await;
    let http = reqwest::Client::new();

    assert_eq!(http.get(&url).send().await.unwrap().status(), 403, "no Authorization");

    let response = http.get(&url).header("authorization", authorization).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["echo"]["requestContext"]["authorizer"]["iam"]["userArn"], ROLE, "{answer}");
}

#[tokio::test]
async fn an_iam_function_url_caller_needs_both_invoke_function_url_and_invoke_function() {
    for denied in ["lambda:InvokeFunctionUrl", "lambda:InvokeFunction"] {
        let setup = setup(&[denied]).await;
        let (url, authorization) = iam_url(&setup, "iam-both-fn").await;

        let response = reqwest::Client::new().get(&url).header("authorization", authorization).send().await.unwrap();

        assert_eq!(response.status(), 403, "a caller that may not {denied}");
        assert!(setup.access.was_asked(denied, ":function:iam-both-fn"));
    }
}

#[tokio::test]
async fn a_mapping_needs_a_role_that_may_poll_its_queue() {
    let setup = setup(&["sqs:ReceiveMessage"]).await;
    setup.create("poll-fn", 3, &[]).await;
    let queue = setup.queue("orders", 30).await;

    let refused = setup
        .lambda
        .create_event_source_mapping()
        .function_name("poll-fn")
        .event_source_arn(queue)
        .send()
        .await
        .unwrap_err()
        .into_service_error();

    assert!(refused.is_invalid_parameter_value_exception(), "{refused:?}");
    assert!(refused.to_string().contains("sqs:ReceiveMessage"), "{refused}");
    let listed = setup.lambda.list_event_source_mappings().function_name("poll-fn").send().await.unwrap();
    assert!(listed.event_source_mappings().is_empty());
}

#[tokio::test]
async fn mapping_settings_are_validated_as_aws_does() {
    let setup = setup(&[]).await;
    setup.create("map-fn", 3, &[]).await;
    let create =
        |source: &str| setup.lambda.create_event_source_mapping().function_name("map-fn").event_source_arn(source);

    let plain = setup.queue("plain", 30).await;
    let positioned =
        create(&plain).starting_position(EventSourcePosition::Latest).send().await.unwrap_err().into_service_error();
    assert!(positioned.is_invalid_parameter_value_exception(), "{positioned:?}");

    let fifo = setup.queue("orders.fifo", 30).await;
    let oversized = create(&fifo).batch_size(11).send().await.unwrap_err().into_service_error();
    assert!(oversized.is_invalid_parameter_value_exception(), "{oversized:?}");

    let accepted = create(&fifo).batch_size(10).send().await.unwrap();
    assert_eq!(accepted.batch_size(), Some(10));
    assert_eq!(accepted.event_source_arn(), Some(fifo.as_str()));

    let missing = format!("arn:aws:sqs:{REGION}:123456789012:no-such-queue-{}", uuid::Uuid::new_v4().simple());
    let refused = create(&missing).send().await.unwrap_err().into_service_error();
    assert!(refused.is_invalid_parameter_value_exception(), "{refused:?}");
}

#[tokio::test]
async fn an_sqs_mapping_needs_a_visibility_timeout_of_at_least_the_function_timeout() {
    let setup = setup(&[]).await;
    setup.create("visible-fn", 30, &[]).await;
    let short = setup.queue("short", 10).await;
    let long = setup.queue("long", 30).await;
    let create = |source: &str| {
        setup.lambda.create_event_source_mapping().function_name("visible-fn").event_source_arn(source).send()
    };

    let refused = create(&short).await.unwrap_err().into_service_error();
    assert!(refused.is_invalid_parameter_value_exception(), "{refused:?}");
    let message = refused.to_string();
    assert!(message.contains("10 seconds") && message.contains("30 seconds"), "{message}");

    let uuid = create(&long).await.unwrap().uuid().unwrap().to_string();

    // The function's timeout grows past the queue's: the next update of the mapping is refused.
    setup.lambda.update_function_configuration().function_name("visible-fn").timeout(60).send().await.unwrap();
    let refused = setup
        .lambda
        .update_event_source_mapping()
        .uuid(&uuid)
        .batch_size(5)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(refused.is_invalid_parameter_value_exception(), "{refused:?}");
    assert!(refused.to_string().contains("60 seconds"), "{refused}");
}

#[tokio::test]
async fn a_filter_pattern_longer_than_4096_characters_is_refused() {
    let setup = setup(&[]).await;
    setup.create("filter-fn", 3, &[]).await;
    let queue = setup.queue("filtered", 30).await;
    let pattern = |length: usize| {
        let filler = "x".repeat(length - r#"{"body":{"kind":[""]}}"#.len());
        let pattern = json!({"body": {"kind": [filler]}}).to_string();
        assert_eq!(pattern.len(), length);
        FilterCriteria::builder().filters(Filter::builder().pattern(pattern).build()).build()
    };
    let create = |criteria: FilterCriteria| {
        setup
            .lambda
            .create_event_source_mapping()
            .function_name("filter-fn")
            .event_source_arn(&queue)
            .filter_criteria(criteria)
            .send()
    };

    let refused = create(pattern(4097)).await.unwrap_err().into_service_error();
    assert!(refused.is_invalid_parameter_value_exception(), "{refused:?}");
    assert!(refused.to_string().contains("4096"), "{refused}");

    create(pattern(4096)).await.unwrap();
}

#[tokio::test]
async fn an_sqs_mapping_takes_no_destination() {
    let setup = setup(&[]).await;
    setup.create("dest-fn", 3, &[]).await;
    let queue = setup.queue("with-destination", 30).await;
    let failures = setup.queue("failures", 30).await;

    let refused = setup
        .lambda
        .create_event_source_mapping()
        .function_name("dest-fn")
        .event_source_arn(&queue)
        .destination_config(on_failure(&failures))
        .send()
        .await
        .unwrap_err()
        .into_service_error();

    assert!(refused.is_invalid_parameter_value_exception(), "{refused:?}");
    assert!(refused.to_string().contains("DestinationConfig"), "{refused}");
}

#[tokio::test]
async fn a_stream_mapping_needs_a_role_that_may_send_to_its_failure_destination() {
    let stream = "arn:aws:dynamodb:us-east-1:123456789012:table/events/stream/2025-01-01T00:00:00.000";
    let failures = "arn:aws:sqs:us-east-1:123456789012:stream-failures";
    let create = |setup: &Setup| {
        setup
            .lambda
            .create_event_source_mapping()
            .function_name("stream-fn")
            .event_source_arn(stream)
            .starting_position(EventSourcePosition::TrimHorizon)
            .destination_config(on_failure(failures))
            .send()
    };

    let denied = setup(&["sqs:SendMessage"]).await;
    denied.create("stream-fn", 3, &[]).await;
    let refused = create(&denied).await.unwrap_err().into_service_error();
    assert!(refused.is_invalid_parameter_value_exception(), "{refused:?}");
    assert!(refused.to_string().contains("sqs:SendMessage"), "{refused}");
    assert!(denied.access.was_asked("sqs:SendMessage", failures));

    let allowed = setup(&[]).await;
    allowed.create("stream-fn", 3, &[]).await;
    let created = create(&allowed).await.unwrap();
    assert_eq!(created.destination_config().and_then(|d| d.on_failure()).and_then(|f| f.destination()), Some(failures));
}

fn on_failure(destination: &str) -> DestinationConfig {
    DestinationConfig::builder().on_failure(OnFailure::builder().destination(destination).build()).build()
}

#[tokio::test]
async fn a_role_lambda_cannot_assume_is_refused() {
    let setup = setup(&[]).await;
    let scheduler_role = role_trusting(&setup.moto, "trusts-scheduler-only", "scheduler.amazonaws.com").await;
    let missing_role = "arn:aws:iam::123456789012:role/no-such-role";
    let create = |role: &str| {
        setup
            .lambda
            .create_function()
            .function_name("untrusted-fn")
            .role(role)
            .runtime(Runtime::Providedal2023)
            .handler("bootstrap")
            .code(FunctionCode::builder().zip_file(Blob::new(bootstrap_zip())).build())
            .send()
    };
    let cannot_be_assumed = |refused: &aws_sdk_lambda::operation::create_function::CreateFunctionError| {
        assert!(refused.is_invalid_parameter_value_exception(), "{refused:?}");
        assert!(refused.to_string().contains("cannot be assumed by Lambda"), "{refused}");
    };

    cannot_be_assumed(&create(&scheduler_role).await.unwrap_err().into_service_error());
    cannot_be_assumed(&create(missing_role).await.unwrap_err().into_service_error());

    // A role under a path: its name is the ARN's last segment.
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let pathed = aws_sdk_iam::Client::new(&setup.moto)
        .create_role()
        .role_name("pathed-fn-role")
        .path("/reventless/shop/dev/")
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .unwrap();
    let pathed = pathed.role().unwrap().arn().to_string();
    assert!(pathed.ends_with(":role/reventless/shop/dev/pathed-fn-role"), "{pathed}");
    create(&pathed).await.unwrap();

    let refused = setup
        .lambda
        .update_function_configuration()
        .function_name("untrusted-fn")
        .role(&scheduler_role)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(refused.is_invalid_parameter_value_exception(), "{refused:?}");
    assert!(refused.to_string().contains("cannot be assumed by Lambda"), "{refused}");
    let configuration = setup.lambda.get_function_configuration().function_name("untrusted-fn").send().await.unwrap();
    assert_eq!(configuration.role(), Some(pathed.as_str()), "the refused role was not taken");
}

#[tokio::test]
async fn code_and_configuration_are_refused_as_aws_refuses_them() {
    let setup = setup(&[]).await;
    let create = |name: &'static str, zip: Vec<u8>, variable: String| {
        setup
            .lambda
            .create_function()
            .function_name(name)
            .role(ROLE)
            .runtime(Runtime::Providedal2023)
            .handler("bootstrap")
            .environment(Environment::builder().variables("BIG", variable).build())
            .code(FunctionCode::builder().zip_file(Blob::new(zip)).build())
            .send()
    };

    let no_bootstrap = zip_of(&[("handler.py", BOOTSTRAP, 0o755)]);
    let refused = create("nobootstrap-fn", no_bootstrap, "x".into()).await.unwrap_err().into_service_error();
    assert!(refused.is_invalid_parameter_value_exception(), "{refused:?}");

    let refused = create("bigenv-fn", bootstrap_zip(), "x".repeat(5000)).await.unwrap_err().into_service_error();
    assert!(refused.is_invalid_parameter_value_exception(), "{refused:?}");
    assert!(refused.to_string().contains("4KB"), "{refused}");

    create("deleted-fn", bootstrap_zip(), "x".repeat(3000)).await.unwrap();
    let pid = setup.invoke("deleted-fn", json!({"echo": 1})).await.pid();
    setup.lambda.delete_function().function_name("deleted-fn").send().await.unwrap();
    let gone = setup
        .lambda
        .invoke()
        .function_name("deleted-fn")
        .payload(Blob::new("{}"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(gone.is_resource_not_found_exception(), "{gone:?}");
    let deadline = Instant::now() + Duration::from_secs(3);
    while running(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!running(pid), "the deleted function's instance still runs");
}
