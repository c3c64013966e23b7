//! The `reventless` command as a user runs it (no AWS needed for these).
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::process::Command;

fn reventless(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_reventless"))
        .args(args)
        .current_dir(dir)
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap()
}

#[test]
fn a_broken_project_file_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("reventless.toml"), "project = \"shop\"\n[defaults]\ntimeout = 901\n[stages.dev]\n")
        .unwrap();
    let output = reventless(&["plan", "--stage", "dev"], dir.path());
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("defaults.timeout") && stderr.contains("901"), "{stderr}");

    std::fs::write(dir.path().join("reventless.toml"), "project = \"shop\"\nregoin = \"x\"\n[stages.dev]\n").unwrap();
    let output = reventless(&["outputs", "--stage", "dev"], dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("regoin"), "{stderr}");

    let output = reventless(&["plan", "--stage", "qa"], dir.path());
    assert!(!output.status.success());
    let missing = reventless(&["plan", "--stage", "dev", "--config", "nowhere.toml"], dir.path());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nowhere.toml"));
}

#[test]
fn every_command_is_documented() {
    let dir = tempfile::tempdir().unwrap();
    let help = reventless(&["--help"], dir.path());
    let text = String::from_utf8_lossy(&help.stdout);
    for command in ["plan", "deploy", "status", "destroy", "outputs"] {
        assert!(text.contains(command), "{command} missing from {text}");
    }
    let deploy = String::from_utf8_lossy(&reventless(&["deploy", "--help"], dir.path()).stdout).to_string();
    for flag in ["--stage", "--plugin", "--allow-data-loss", "--yes", "--endpoint-url", "--json", "--bootstrap-dir"] {
        assert!(deploy.contains(flag), "{flag} missing from {deploy}");
    }
}
