//! The example binary as a user runs it.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::process::Command;

use serde_json::Value;

fn shop(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_online-shop")).args(args).output().expect("binary runs")
}

fn sample() -> String {
    format!("{}/data/sample.jsonl", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn manifest_prints_every_plugin_as_json() {
    let output = shop(&["manifest"]);
    assert!(output.status.success());
    let manifests: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(manifests[0]["plugin"], "Catalog");
    assert_eq!(manifests[0]["components"].as_array().unwrap().len(), 8);
}

#[test]
fn the_sample_script_runs_with_outcomes_and_rows() {
    let output = shop(&["script", &sample(), "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let lines: Vec<Value> =
        String::from_utf8(output.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let outcomes: Vec<&Value> = lines.iter().filter_map(|l| l.get("outcome")).collect();
    assert_eq!(outcomes.len(), 14);
    let rejected: Vec<&str> = outcomes.iter().filter_map(|o| o["errorCode"].as_str()).collect();
    assert_eq!(
        rejected,
        vec!["CategoryAlreadyExists", "CategoryNotFound", "ProductIsDiscontinued", "CategoryNotFound"]
    );
    let dune = lines.iter().find(|l| l["table"] == "Catalog_Products" && l["id"] == "dune").unwrap();
    assert_eq!(dune["row"]["priceCents"], 1099);
    let games = lines.iter().find(|l| l["table"] == "Catalog_Categories" && l["id"] == "games").unwrap();
    assert_eq!(games["row"]["archived"], true);
}

#[test]
fn a_broken_script_names_its_line() {
    let dir = std::env::temp_dir().join(format!("reventless-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.jsonl");
    std::fs::write(&path, "# comment\n{\"plugin\": \"Catalog\", \"command\": \"AddCategory\", \"input\": {}\n")
        .unwrap();
    let output = shop(&["script", path.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("broken.jsonl:2"), "{stderr}");

    std::fs::write(&path, "{\"plugin\": \"Catalog\", \"command\": \"AddCategory\", \"input\": {\"name\": 1}}\n")
        .unwrap();
    let output = shop(&["script", path.to_str().unwrap()]);
    assert!(!output.status.success(), "a command with bad input fails the run");
    assert!(String::from_utf8_lossy(&output.stdout).contains("ERROR bad input for `AddCategory`"));
}
