//! The app as a whole: the Library plugin composed into the binary, its
//! commands run through the platform (in memory) by `script`.
use std::process::Command;

use serde_json::Value;

#[test]
fn the_first_day_script_lends_and_returns_books() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/data/first-day.jsonl");
    let output = Command::new(env!("CARGO_BIN_EXE_{{name}}"))
        .args(["script", script, "--memory", "--json"])
        .output()
        .expect("the app runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    let statuses: Vec<&str> = lines.iter().filter_map(|l| l["outcome"]["status"].as_str()).collect();
    assert_eq!(statuses, ["ACCEPTED", "ACCEPTED", "REJECTED", "ACCEPTED", "ACCEPTED"]);
    assert!(lines.iter().any(|l| l["outcome"]["errorCode"] == "BookOnLoan"));
    let book = |id: &str| {
        lines
            .iter()
            .find(|l| l["table"] == "Library_Books" && l["id"] == id)
            .map(|l| l["row"].clone())
            .unwrap_or_else(|| panic!("no row {id} in {lines:?}"))
    };
    assert_eq!(book("dune")["borrower"], Value::Null);
    assert_eq!(book("dune")["timesLent"], 1);
    assert_eq!(book("emma")["borrower"], "ada");
}
