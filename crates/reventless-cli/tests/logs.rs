//! `reventless logs` against CloudWatch Logs on the emulator (moto): the
//! stage's function log groups found by prefix, `--plugin`, `--function`,
//! `--since`, `--filter`, `--json`, and `--follow` until Ctrl-C.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reventless_aws::deploy::apply::Clients;
use reventless_aws::emulator::Emulator;
use serde_json::Value;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

struct Stage {
    clients: Clients,
    project: String,
    dir: tempfile::TempDir,
    endpoint: String,
}

impl Stage {
    async fn put(&self, group: &str, lines: &[(i64, &str)]) {
        let logs = &self.clients.logs;
        let _ = logs.create_log_group().log_group_name(group).send().await;
        let stream = format!("s{}", now_ms());
        logs.create_log_stream().log_group_name(group).log_stream_name(&stream).send().await.unwrap();
        let events = lines.iter().map(|(at, text)| {
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder().timestamp(*at).message(*text).build().unwrap()
        });
        logs.put_log_events()
            .log_group_name(group)
            .log_stream_name(&stream)
            .set_log_events(Some(events.collect()))
            .send()
            .await
            .unwrap();
    }

    fn group(&self, stage: &str, function: &str) -> String {
        format!("/aws/lambda/{}-{stage}-{function}", self.project)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_reventless"));
        command
            .args(["--endpoint-url", &self.endpoint, "logs", "--stage", "dev"])
            .args(args)
            .current_dir(self.dir.path())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("AWS_ENDPOINT_URL_LAMBDA");
        command
    }

    /// Runs `logs --stage dev <args>`: (success, stdout lines, stderr).
    fn logs(&self, args: &[&str]) -> (bool, Vec<String>, String) {
        let output = self.command(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).lines().map(str::to_string).collect();
        (output.status.success(), stdout, String::from_utf8_lossy(&output.stderr).to_string())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_reads_the_stages_function_groups_with_filters_json_and_follow() {
    let emulator = Emulator::shared().expect("the AWS emulator (moto) must run for these tests");
    let sdk = emulator.sdk_config().await;
    let project = format!("lg{}", &uuid::Uuid::now_v7().simple().to_string()[24..]);
    let dir = tempfile::tempdir().unwrap();
    let file = format!(
        "project = \"{project}\"\n[plugins.catalog]\nname = \"Catalog\"\n[plugins.ordering]\nname = \"Ordering\"\n[stages.dev]\n"
    );
    std::fs::write(dir.path().join("reventless.toml"), file).unwrap();
    let stage = Stage { clients: Clients::new(&sdk), project, dir, endpoint: emulator.endpoint.clone() };
    let now = now_ms();
    let rejected = r#"{"time":"t","level":"INFO","requestId":"r1","plugin":"Ordering","command":"PlaceOrder","correlationId":"k-1","message":"command rejected","errorCode":"ProductsNotAvailable"}"#;
    let failed = r#"{"time":"t","level":"ERROR","requestId":"r2","plugin":"Ordering","correlationId":"k-2","message":"command failed","error":"the table is gone"}"#;
    stage.put(&stage.group("dev", "ordering-OrderingApi"), &[(now - 3000, rejected), (now - 2000, failed)]).await;
    let old = r#"{"level":"WARN","message":"two hours ago"}"#;
    stage
        .put(&stage.group("dev", "catalog-CatalogApi"), &[(now - 7_200_000, old), (now - 2500, "START RequestId: r3")])
        .await;
    stage
        .put(&stage.group("prod", "ordering-OrderingApi"), &[(now - 1000, r#"{"level":"INFO","message":"prod"}"#)])
        .await;

    // Every function of the stage, oldest first; not another stage's, not older lines.
    let (ok, lines, stderr) = stage.logs(&[]);
    assert!(ok, "{stderr}");
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(
        lines[0].contains(" ordering-OrderingApi INFO  command rejected") && lines[0].ends_with("[k-1]"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("errorCode=ProductsNotAvailable") && lines[0].contains("command=PlaceOrder"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains(" catalog-CatalogApi -     START RequestId: r3"), "{}", lines[1]);
    assert!(lines[2].contains("ERROR command failed error=the table is gone [k-2]"), "{}", lines[2]);

    // One plugin (by stack key or plugin name), as JSON lines.
    for plugin in ["ordering", "Ordering"] {
        let (ok, lines, stderr) = stage.logs(&["--plugin", plugin, "--json"]);
        assert!(ok, "{stderr}");
        let parsed: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(parsed.len(), 2, "{lines:#?}");
        assert_eq!(parsed[0]["function"], format!("{}-dev-ordering-OrderingApi", stage.project));
        assert_eq!(parsed[0]["line"]["correlationId"], "k-1");
        assert_eq!(parsed[1]["line"]["level"], "ERROR");
    }
    // One function; a longer look back; a filter pattern.
    let (_, lines, _) = stage.logs(&["--function", "CatalogApi", "--since", "3h"]);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(lines[0].contains("WARN  two hours ago"), "{}", lines[0]);
    let (_, lines, _) = stage.logs(&["--filter", "\"k-2\""]);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].contains("command failed"), "{}", lines[0]);

    // Wrong input: a clear error, exit non-zero.
    let (ok, _, stderr) = stage.logs(&["--since", "10w"]);
    assert!(!ok && stderr.contains("s, m, h or d"), "{stderr}");
    let (ok, _, stderr) = stage.logs(&["--function", "Nope"]);
    assert!(!ok && stderr.contains("no log groups"), "{stderr}");

    // --follow prints lines written later, until Ctrl-C (SIGINT).
    let mut child = stage
        .command(&["--plugin", "ordering", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (sender, received) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let next = |what: &str| received.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| panic!("{what}"));
    assert!(next("the first line").contains("command rejected"));
    assert!(next("the second line").contains("command failed"));
    let later = r#"{"level":"INFO","correlationId":"k-3","message":"written later"}"#;
    stage.put(&stage.group("dev", "ordering-OrderingApi"), &[(now_ms(), later)]).await;
    assert!(next("the line written later").contains("written later"));
    let interrupted = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(interrupted.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "--follow stops on Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}
