//! A project outside this workspace, as a new user writes it: its own cargo
//! workspace (two plugin binaries depending on the reventless crates by
//! path), its `reventless.toml`, nothing else — no `[profile.lambda]`, no
//! cargo-zigbuild on the machine, binaries in a target directory named by
//! `CARGO_TARGET_DIR`. `plan` and `status` build for this machine only and
//! read the manifests; `deploy --bootstrap-dir` ships those builds; `outputs`
//! lists the stage. Against the emulator (moto).
//!
//! The project shares this workspace's target directory, lock file versions
//! and dev profile, so cargo reuses the dependencies already built.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use reventless_aws::deploy::inputs::find_zigbuild;
use reventless_aws::emulator::Emulator;
use serde_json::Value;

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn crate_path(name: &str) -> String {
    Path::new(WORKSPACE).join("crates").join(name).canonicalize().unwrap().display().to_string()
}

/// The user's project: a workspace with one package holding two plugin binaries.
fn write_project(dir: &Path) {
    let workspace = r#"[workspace]
resolver = "3"
members = ["plugins"]

# Only so that this test reuses the reventless workspace's builds (the same
# settings as its dev profile); a user's project needs none of it.
[profile.dev]
debug = "line-tables-only"
[profile.dev.package."*"]
debug = false
[profile.dev.package.miniz_oxide]
opt-level = 3
[profile.dev.package.crc32fast]
opt-level = 3
[profile.dev.package.sha2]
opt-level = 3
"#;
    std::fs::write(dir.join("Cargo.toml"), workspace).unwrap();
    let plugins = format!(
        r#"[package]
name = "warehouse"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
reventless-aws = {{ path = "{}" }}
reventless-core = {{ path = "{}" }}
reventless-spec = {{ path = "{}" }}
"#,
        crate_path("reventless-aws"),
        crate_path("reventless-core"),
        crate_path("reventless-spec")
    );
    std::fs::create_dir_all(dir.join("plugins/src/bin")).unwrap();
    std::fs::write(dir.join("plugins/Cargo.toml"), plugins).unwrap();
    for (bin, plugin) in [("inventory-lambda", "Inventory"), ("shipping-lambda", "Shipping")] {
        let main = format!(
            "fn main() -> std::process::ExitCode {{\n    \
             reventless_aws::lambda::main(reventless_core::Plugin::new(\"{plugin}\"), \
             reventless_spec::Capabilities::default())\n}}\n"
        );
        std::fs::write(dir.join(format!("plugins/src/bin/{bin}.rs")), main).unwrap();
    }
    // A throwaway stage (no deletion protection: the test destroys it).
    let project = "project = \"warehouse\"\nephemeral = true\n[plugins.inventory]\n[plugins.shipping]\ndepends_on = [\"inventory\"]\n";
    std::fs::write(dir.join("reventless.toml"), project).unwrap();
    // The versions this workspace locked (cargo drops what the project does not use).
    std::fs::copy(Path::new(WORKSPACE).join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
}

/// A machine without cargo-zigbuild on PATH: the toolchain and the
/// system's tools only. (The cargo home is the usual one — its registry
/// cache, and paths that keep cargo's fingerprints stable from run to run;
/// were cargo-zigbuild installed there, the checks below still show that
/// nothing was cross-built.)
struct Machine {
    path: std::ffi::OsString,
    target_dir: PathBuf,
}

impl Machine {
    fn without_zigbuild() -> Self {
        let sysroot = Command::new("rustc").args(["--print", "sysroot"]).output().unwrap();
        let toolchain = PathBuf::from(String::from_utf8(sysroot.stdout).unwrap().trim()).join("bin");
        let path = std::env::join_paths([toolchain, "/usr/bin".into(), "/bin".into()]).unwrap();
        assert_eq!(find_zigbuild(Some(&path), None), None, "no cargo-zigbuild on PATH");
        // This workspace's target directory (tests run from target/<profile>/deps).
        let target_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().to_path_buf();
        Self { path, target_dir }
    }

    fn reventless(&self, project: &Path, endpoint: &str, args: &[&str]) -> (i32, Value, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_reventless"))
            .arg("--json")
            .args(["--endpoint-url", endpoint])
            .args(args)
            .current_dir(project)
            .env("PATH", &self.path)
            .env("CARGO_TARGET_DIR", &self.target_dir)
            .env("CARGO_NET_OFFLINE", "true")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("AWS_ENDPOINT_URL_LAMBDA")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        (output.status.code().unwrap_or(-1), serde_json::from_str(stdout.trim()).unwrap_or(Value::Null), stderr)
    }
}

/// The planned resources' states in `status --json` (a list, or under `resources`).
fn resources(status: &Value) -> Vec<Value> {
    let list = if status.is_array() { status } else { &status["resources"] };
    let list = list.as_array().unwrap_or_else(|| panic!("no resources in {status}")).clone();
    assert!(!list.is_empty(), "{status}");
    list
}

#[test]
fn a_project_outside_the_workspace_plans_deploys_and_reports_status_without_cross_building() {
    let started = Instant::now();
    let emulator = Emulator::shared().expect("the AWS emulator (moto) must run for these tests");
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    write_project(dir);
    let machine = Machine::without_zigbuild();
    let stage = format!("out{}", &uuid::Uuid::now_v7().simple().to_string()[26..]);
    std::fs::write(
        dir.join("reventless.toml"),
        format!("{}[stages.{stage}]\n", std::fs::read_to_string(dir.join("reventless.toml")).unwrap()),
    )
    .unwrap();
    // The user's lock file, as cargo keeps it for their project (offline:
    // the versions are those of this workspace's lock, all in the cache).
    let settled = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(dir)
        .env("PATH", &machine.path)
        .output()
        .unwrap();
    assert!(settled.status.success(), "{}", String::from_utf8_lossy(&settled.stderr));
    let endpoint = emulator.endpoint.clone();
    let stage_args = ["--stage", stage.as_str()];

    let (code, plan, stderr) = machine.reventless(dir, &endpoint, &[&["plan"], &stage_args[..]].concat());
    eprintln!("plan (builds both binaries for this machine): {:?}", started.elapsed());
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("zigbuild"), "nothing cross-built: {stderr}");
    assert!(!stderr.contains("profile 'lambda'"), "{stderr}");
    let creates = plan["changes"].as_array().unwrap();
    assert!(creates.iter().any(|c| c["name"] == format!("warehouse-{stage}-inventory-InventoryApi")), "{plan}");
    assert!(creates.iter().any(|c| c["name"] == format!("warehouse-{stage}-shipping-ShippingHeartbeat")), "{plan}");
    assert!(plan["warnings"].to_string().contains("code not compared"), "{plan}");
    // The binaries are where cargo put them: CARGO_TARGET_DIR, not <project>/target.
    let manifests_from: Vec<&str> = stderr.lines().filter(|l| l.contains(": manifest from ")).collect();
    assert_eq!(manifests_from.len(), 2, "{stderr}");
    let target = machine.target_dir.canonicalize().unwrap().display().to_string();
    assert!(manifests_from.iter().all(|l| l.contains(&target)), "{manifests_from:?} in {target}");
    assert!(!dir.join("target").exists(), "nothing built under the project");
    let lambda_build = machine.target_dir.join("x86_64-unknown-linux-gnu/lambda/inventory-lambda");
    let before = std::fs::metadata(&lambda_build).and_then(|m| m.modified()).ok();

    let (code, statuses, stderr) = machine.reventless(dir, &endpoint, &[&["status"], &stage_args[..]].concat());
    eprintln!("status: {:?}", started.elapsed());
    assert_eq!(code, 3, "missing resources: {stderr}");
    assert!(!stderr.contains("zigbuild"), "{stderr}");
    let after = std::fs::metadata(&lambda_build).and_then(|m| m.modified()).ok();
    assert_eq!(before, after, "no Lambda build made or touched by plan and status");
    assert!(resources(&statuses).iter().all(|s| s["state"] == "missing"), "{statuses}");

    // Deployed with those builds (no cross-build: --bootstrap-dir).
    let built = machine.target_dir.join("debug");
    let args = [&["deploy", "--yes", "--bootstrap-dir", built.to_str().unwrap()], &stage_args[..]].concat();
    let (code, report, stderr) = machine.reventless(dir, &endpoint, &args);
    assert_eq!(code, 0, "{stderr} {report}");
    assert_eq!(report["failures"], Value::Array(vec![]), "{report}");
    assert!(!stderr.contains("zigbuild"), "{stderr}");

    let (code, statuses, stderr) = machine.reventless(dir, &endpoint, &[&["status"], &stage_args[..]].concat());
    // (Its exit code also reflects plugin health: moto runs no function, so no heartbeat.)
    assert!(!stderr.contains("zigbuild") && code >= 0, "{stderr} {statuses}");
    assert!(resources(&statuses).iter().all(|s| s["state"] == "exists"), "{statuses}");

    let (code, outputs, stderr) = machine.reventless(dir, &endpoint, &[&["outputs"], &stage_args[..]].concat());
    assert_eq!(code, 0, "{stderr}");
    let events = &outputs[format!("/reventless/warehouse/{stage}/inventory/events-table")];
    assert_eq!(events, &Value::from(format!("warehouse-{stage}-inventory-events")), "{outputs}");

    // `deploy --plugin shipping` reads only Shipping's manifest; unchanged.
    let args =
        [&["deploy", "--yes", "--plugin", "shipping", "--bootstrap-dir", built.to_str().unwrap()], &stage_args[..]]
            .concat();
    let (code, report, stderr) = machine.reventless(dir, &endpoint, &args);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["changes"], Value::Array(vec![]), "{report}");
    assert!(stderr.contains("shipping: shipping-lambda") && !stderr.contains("inventory-lambda"), "{stderr}");

    let (code, _, stderr) = machine.reventless(dir, &endpoint, &["destroy", "--yes", "--stage", &stage]);
    assert_eq!(code, 0, "{stderr}");
    eprintln!("outside_project: {:?}", started.elapsed());
}
