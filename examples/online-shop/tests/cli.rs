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
    let catalog = manifests[0]["components"].as_array().unwrap();
    assert_eq!(catalog.len(), 18);
    let import = catalog.iter().find(|c| c["kind"] == "Task").unwrap();
    assert_eq!(
        (&import["name"], &import["table"]),
        (&Value::from("ImportProducts"), &Value::from("Catalog_ImportProductsRuns"))
    );
    assert_eq!(manifests[1]["plugin"], "Ordering");
    let kinds: Vec<&str> =
        manifests[1]["components"].as_array().unwrap().iter().map(|c| c["kind"].as_str().unwrap()).collect();
    for kind in [
        "StateChangeSlice",
        "StateViewSlice",
        "AutomationSlice",
        "OutboundTranslationSlice",
        "ExtensionPoint",
        "Extension",
        "Schedule",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    assert_eq!(
        manifests[1]["schedules"],
        serde_json::json!([{"name": "CancelUnpaidOrders", "expression": "rate(5 minutes)"}])
    );
}

fn json_lines(output: &std::process::Output) -> Vec<Value> {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn temp_dir() -> std::path::PathBuf {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap().keep()
}

#[test]
fn the_sample_script_runs_with_outcomes_and_rows() {
    let lines = json_lines(&shop(&["script", &sample(), "--memory", "--json"]));
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
fn sqlite_data_persists_between_runs() {
    let data = temp_dir();
    let data = data.to_str().unwrap();
    let first = json_lines(&shop(&["script", &sample(), "--data", data, "--json"]));
    assert_eq!(first[0]["outcome"]["status"], "ACCEPTED");
    assert!(std::path::Path::new(data).join("local.db").exists());
    let second = json_lines(&shop(&["script", &sample(), "--data", data, "--synchronous", "FULL", "--json"]));
    assert_eq!(second[0]["outcome"]["errorCode"], "CategoryAlreadyExists", "the first run's events are still there");
    let dune = second.iter().find(|l| l["table"] == "Catalog_Products" && l["id"] == "dune").unwrap();
    assert_eq!(dune["row"]["priceCents"], 1099);
}

#[test]
fn bad_storage_settings_are_refused() {
    let output = shop(&["script", &sample(), "--synchronous", "SOMETIMES"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown synchronous level"));
}

#[test]
fn a_broken_script_names_its_line() {
    let dir = temp_dir();
    let path = dir.join("broken.jsonl");
    std::fs::write(&path, "# comment\n{\"plugin\": \"Catalog\", \"command\": \"AddCategory\", \"input\": {}\n")
        .unwrap();
    let output = shop(&["script", path.to_str().unwrap(), "--memory"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("broken.jsonl:2"), "{stderr}");

    std::fs::write(&path, "{\"plugin\": \"Catalog\", \"command\": \"AddCategory\", \"caller\": {\"user_id\": \"m\", \"roles\": [\"Admin\"]}, \"input\": {\"name\": 1}}\n")
        .unwrap();
    let output = shop(&["script", path.to_str().unwrap(), "--memory"]);
    assert!(!output.status.success(), "a command with bad input fails the run");
    assert!(String::from_utf8_lossy(&output.stdout).contains("ERROR bad input for `AddCategory`"));
}

#[tokio::test]
async fn dev_serves_graphql_and_stops_cleanly_on_sigterm() {
    let data = temp_dir();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_online-shop"))
        .args(["dev", "--data", data.to_str().unwrap(), "--listen", &format!("127.0.0.1:{port}")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = std::time::Instant::now();
    while client.get(format!("{base}/health")).send().await.is_err() {
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "dev server did not start");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mutation = r#"mutation { Catalog_AddCategory(categoryId: "books", name: "Books") { status } }"#;
    let answer: Value = client
        .post(format!("{base}/graphql"))
        .header("x-user-id", "merch")
        .header("x-user-roles", "Merchandiser")
        .json(&serde_json::json!({"query": mutation}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["data"]["Catalog_AddCategory"]["status"], "ACCEPTED");

    let terminated = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    assert!(terminated.success());
    let status = server.wait().unwrap();
    assert!(status.success(), "dev exits cleanly on SIGTERM: {status:?}");

    // What it acknowledged is in the database.
    let lines = json_lines(&shop(&["script", &sample(), "--data", data.to_str().unwrap(), "--json"]));
    assert_eq!(lines[0]["outcome"]["errorCode"], "CategoryAlreadyExists");
}

fn rows_in<'a>(lines: &'a [Value], table: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["table"] == table).map(|l| &l["row"]).collect()
}

#[test]
fn seed_loads_the_sample_through_the_commands_and_a_second_seed_changes_nothing() {
    let dir = temp_dir();
    let data = dir.to_str().unwrap();
    let phases = json_lines(&shop(&["seed", "--sample", "--data", data, "--json"]));
    let names: Vec<&str> = phases.iter().map(|p| p["phase"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["catalog", "customers", "orders", "fulfilment"]);
    for phase in &phases {
        assert_eq!(phase["applied"], phase["commands"], "{phase}");
        assert_eq!(phase["rejected"], serde_json::json!({}), "{phase}");
    }

    let empty = dir.join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let lines = json_lines(&shop(&["script", empty.to_str().unwrap(), "--data", data, "--json"]));
    assert_eq!(rows_in(&lines, "Catalog_Categories").len(), 4);
    assert_eq!(rows_in(&lines, "Catalog_Products").len(), 16);
    assert_eq!(rows_in(&lines, "Ordering_AvailableProducts").len(), 16, "every product reached Ordering");
    assert_eq!(rows_in(&lines, "Ordering_Customers").len(), 8);
    let orders = rows_in(&lines, "Ordering_Orders");
    assert_eq!(orders.len(), 40);
    for lifecycle in ["PLACED", "SHIPPED", "CANCELLED"] {
        assert!(orders.iter().any(|o| o["lifecycle"] == lifecycle), "no {lifecycle} order");
    }
    let customer_orders: i64 =
        rows_in(&lines, "Ordering_Customers").iter().map(|c| c["orderCount"].as_i64().unwrap()).sum();
    assert_eq!(customer_orders, 40);
    let demand: i64 = rows_in(&lines, "Catalog_ProductDemands").iter().map(|d| d["orderCount"].as_i64().unwrap()).sum();
    assert!(demand > 0, "orders recorded demand in the catalog");

    let again = json_lines(&shop(&["seed", "--sample", "--data", data, "--json"]));
    for phase in &again {
        assert_eq!(phase["applied"], 0, "{phase}");
        assert_eq!(phase["alreadyPresent"], phase["commands"], "{phase}");
    }
}

#[test]
fn the_full_seed_has_the_documented_size() {
    let requests: Vec<_> = online_shop::seed::seed(reventless::SeedSize::Full).requests().cloned().collect();
    let count = |command: &str| requests.iter().filter(|r| r.command == command).count();
    assert_eq!(count("AddCategory"), 8);
    assert_eq!(count("AddProduct"), 64);
    assert_eq!(count("Customer_Register"), 20);
    assert_eq!(count("PlaceOrder"), 150);
    assert!(requests.iter().all(|r| !r.internal && r.caller.user_id.is_some()), "seeds go through the public path");
}
