//! `reventless deploy` as the README runs it, on the online shop, against the
//! emulator: the real command line, its JSON reports and exit codes.
//!
//! The shop's Lambda binaries come from the workspace's build (the test
//! command builds every package first); stripped copies are deployed.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::path::{Path, PathBuf};
use std::process::Command;

use reventless_aws::emulator::Emulator;
use serde_json::Value;

const SHOP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/online-shop/reventless.toml");

/// The shop's binaries as `<dir>/<bin>`, stripped (debug info changes nothing for a deploy).
fn bootstrap_dir() -> tempfile::TempDir {
    let built = PathBuf::from(env!("CARGO_BIN_EXE_reventless")).parent().unwrap().to_path_buf();
    let dir = tempfile::tempdir().unwrap();
    for bin in ["catalog-lambda", "ordering-lambda", "platform-gateway"] {
        let binary = built.join(bin);
        assert!(
            binary.exists(),
            "{} is not built: run the workspace's test command (or `cargo build -p online-shop-lambda --bins`)",
            binary.display()
        );
        let stripped = dir.path().join(bin);
        let status = Command::new("strip").arg("-o").arg(&stripped).arg(&binary).status();
        if !status.is_ok_and(|s| s.success()) {
            std::fs::copy(&binary, &stripped).unwrap();
        }
    }
    dir
}

fn reventless(endpoint: &str, args: &[&str], project: &Path) -> (bool, Value, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_reventless"))
        .args(["--json", "--config"])
        .arg(project)
        .args(["--endpoint-url", endpoint])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let json = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (output.status.success(), json, stderr)
}

#[test]
fn the_shop_deploys_to_the_emulator_from_the_command_line() {
    let emulator = Emulator::shared().expect("the AWS emulator (moto) must run for these tests");
    let endpoint = emulator.endpoint.clone();
    let bootstraps = bootstrap_dir();
    let dir = bootstraps.path().to_str().unwrap();
    // The shop's own file, with a stage of this run's own.
    let stage = format!("cli{}", &uuid::Uuid::now_v7().simple().to_string()[26..]);
    let project = tempfile::tempdir().unwrap();
    let file = project.path().join("reventless.toml");
    std::fs::write(&file, format!("{}\n[stages.{stage}]\n", std::fs::read_to_string(SHOP).unwrap())).unwrap();

    let (ok, report, stderr) =
        reventless(&endpoint, &["deploy", "--stage", &stage, "--yes", "--bootstrap-dir", dir], &file);
    assert!(ok, "{stderr}");
    assert_eq!(report["failures"], Value::Array(vec![]), "{report}");
    // Per plugin Api, Heartbeat, AllReadModels, AllAutomationSlices, Extensions;
    // Catalog's StateChanges (the stock requests Ordering queues) and Tasks
    // (product imports); the gateway.
    assert_eq!(report["uploaded"], 13, "{report}");
    assert!(stderr.contains("catalog: catalog-lambda (") && stderr.contains("bytes zipped"), "progress: {stderr}");

    let (ok, again, _) = reventless(&endpoint, &["deploy", "--stage", &stage, "--yes", "--bootstrap-dir", dir], &file);
    assert!(ok);
    assert_eq!((again["changes"].as_array().unwrap().len(), &again["uploaded"]), (0, &Value::from(0)), "{again}");

    let (ok, status, stderr) = reventless(&endpoint, &["status", "--stage", &stage, "--bootstrap-dir", dir], &file);
    // The emulator runs no function: every resource exists, but no plugin has
    // sent a heartbeat, so status says unhealthy and exits non-zero.
    assert!(!ok, "unhealthy: {stderr} {status}");
    let statuses = status["resources"].as_array().unwrap();
    let off_plan: Vec<&Value> = statuses.iter().filter(|s| s["state"] != "exists").collect();
    assert!(off_plan.is_empty() && status["deployed"] == true, "deployed as planned: {off_plan:?}");
    assert_eq!(status["healthy"], false, "{status}");
    for plugin in status["plugins"].as_array().unwrap() {
        assert_eq!(plugin["problems"], serde_json::json!(["no heartbeat yet (the plugin never registered)"]));
    }
    // One line per planned resource: each was created by the first deploy
    // (92 today: tables, queues, roles, functions, mappings, the tasks
    // bucket and its notification, Scheduler entries, …).
    let created: Vec<&Value> =
        report["changes"].as_array().unwrap().iter().filter(|c| c["action"] == "create").map(|c| &c["name"]).collect();
    let not_created: Vec<&Value> = statuses.iter().map(|s| &s["name"]).filter(|n| !created.contains(n)).collect();
    // The lock table is made by taking the deploy lock, before any change.
    let lock = Value::from(format!("shop-{stage}-platform-deploy"));
    assert_eq!(not_created, vec![&lock], "one line per planned resource");
    assert_eq!(statuses.len(), 92);
    let queue = |name: String| statuses.iter().find(|s| s["name"] == name.as_str()).unwrap()["detail"].clone();
    let inbox_dlq = queue(format!("shop-{stage}-ordering-Ordering_Extensions-dlq.fifo"));
    assert_eq!(inbox_dlq, serde_json::json!({"visible": 0, "inFlight": 0, "deadLetters": true}));
    assert_eq!(queue(format!("shop-{stage}-ordering-Ordering_Extensions.fifo"))["deadLetters"], false);

    let (ok, outputs, _) = reventless(&endpoint, &["outputs", "--stage", &stage], &file);
    assert!(ok);
    let inbox = outputs[format!("/reventless/shop/{stage}/ordering/inbox-queue")].as_str().unwrap();
    assert_eq!(inbox, format!("shop-{stage}-ordering-Ordering_Extensions.fifo"));

    // The stage's tables have deletion protection (not an ephemeral stage):
    // --allow-data-loss turns it off, saying so.
    let (ok, destroyed, stderr) =
        reventless(&endpoint, &["destroy", "--stage", &stage, "--yes", "--allow-data-loss"], &file);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains(&format!("deletion protection of table shop-{stage}-catalog-events turned off")),
        "{stderr}"
    );
    assert_eq!(
        destroyed["removed"].as_array().unwrap().len(),
        statuses.len(),
        "everything planned is removed: {destroyed}"
    );
    let (ok, status, _) = reventless(&endpoint, &["status", "--stage", &stage, "--bootstrap-dir", dir], &file);
    assert!(!ok, "status fails when resources are missing");
    assert!(status["resources"].as_array().unwrap().iter().all(|s| s["state"] == "missing"), "{status}");
}
