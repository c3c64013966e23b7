//! `Catalog.ImportProducts`: a generated 10 000-row product file, some rows
//! bad (a price that is not a number, an unknown category, a product id
//! listed twice). Good rows become products, bad ones are reported with
//! their codes and lines in the run row — none lost. Run in process and
//! through the binary (`online-shop task Catalog.ImportProducts FILE --json`).
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::process::Command;

use online_shop::catalog;
use reventless::core::store::{ListRequest, QueryStore};
use reventless::core::task::{TaskRun, TaskStatus, run_task};
use reventless::prelude::*;
use reventless::{Caller, Runtime};
use serde_json::{Value, json};

const ROWS: usize = 10_000;
const CATEGORIES: usize = 10;

/// Why row `index` is bad, if it is.
fn bad(index: usize) -> Option<&'static str> {
    match index % 1000 {
        7 => Some("MalformedRecord"),
        13 => Some("CategoryNotFound"),
        21 => Some("ProductAlreadyExists"),
        _ => None,
    }
}

/// The file: header, then one product per row; row `index` is on line `index + 2`.
fn products_csv() -> String {
    let mut file = String::from("sku,title,desc,unitPrice,currency,categoryId\n");
    for index in 0..ROWS {
        let (mut sku, mut price, mut category) =
            (format!("p{index}"), index.to_string(), format!("c{}", index % CATEGORIES));
        match bad(index) {
            Some("MalformedRecord") => price = "12.5 EUR".into(),
            Some("CategoryNotFound") => category = "nowhere".into(),
            Some(_) => sku = format!("p{}", index - 1),
            None => {}
        }
        file.push_str(&format!("{sku},\"Product {index}, boxed\",,{price},EUR,{category}\n"));
    }
    file
}

fn merchandiser() -> Caller {
    Caller { user_id: Some("merch".into()), roles: vec!["Merchandiser".into()] }
}

async fn add_categories(runtime: &Runtime) {
    for index in 0..CATEGORIES {
        let input = json!({"categoryId": format!("c{index}"), "name": format!("Category {index}")});
        let request = CommandRequest::new(catalog::PLUGIN, "AddCategory", input).caller(merchandiser());
        assert!(runtime.execute(request).await.unwrap().is_accepted());
    }
}

async fn product_ids(store: &dyn QueryStore) -> std::collections::BTreeSet<String> {
    let mut ids = std::collections::BTreeSet::new();
    let mut request = ListRequest { first: 1000, ..ListRequest::default() };
    loop {
        let page = store.list("Catalog_Products", &request).await.unwrap();
        ids.extend(page.rows.into_iter().map(|(id, _)| id));
        if !page.has_next_page {
            return ids;
        }
        request.after = page.end_cursor;
    }
}

/// Every good row is a product, every bad one is listed with its code and line.
async fn assert_imported(run: &Value, store: &dyn QueryStore) {
    let bad_rows: Vec<usize> = (0..ROWS).filter(|index| bad(*index).is_some()).collect();
    assert_eq!(run["status"], "COMPLETED");
    assert_eq!(run["recordsRead"], ROWS);
    assert_eq!(run["accepted"], ROWS - bad_rows.len());
    assert_eq!(run["rejected"], bad_rows.len());
    let listed: Vec<(u64, &str)> = run["rejectedRecords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["code"].as_str().unwrap()))
        .collect();
    let expected: Vec<(u64, &str)> = bad_rows.iter().map(|i| (*i as u64 + 2, bad(*i).unwrap())).collect();
    assert_eq!(listed, expected);
    let malformed = &run["rejectedRecords"][0]["detail"]["message"];
    assert!(malformed.as_str().unwrap().contains("column `unitPrice`"), "{malformed}");
    let ids = product_ids(store).await;
    let good: std::collections::BTreeSet<String> =
        (0..ROWS).filter(|i| bad(*i).is_none()).map(|i| format!("p{i}")).collect();
    assert_eq!(ids, good, "exactly the good rows are products");
}

#[tokio::test]
async fn ten_thousand_rows_become_products_and_the_bad_ones_are_reported() {
    let runtime = Runtime::start(reventless::local::memory_stores(), vec![catalog::standalone()]).unwrap();
    add_categories(&runtime).await;
    let file = products_csv();
    let started = std::time::Instant::now();
    let run = TaskRun::new("import-1", "products.csv", merchandiser());
    let report = run_task(&runtime, catalog::PLUGIN, "ImportProducts", run, file.as_bytes(), &|_| {}).await.unwrap();
    eprintln!("{ROWS} rows in {:?}", started.elapsed());
    assert_eq!(report.status, TaskStatus::Completed);
    runtime.wait_for_projections().await.unwrap();
    assert_imported(&serde_json::to_value(&report).unwrap(), runtime.stores().queries.as_ref()).await;
    let product = runtime.stores().queries.get("Catalog_Products", "p42").await.unwrap().unwrap();
    assert_eq!((&product["name"], &product["priceCents"]), (&json!("Product 42, boxed"), &json!(42)));
}

fn shop(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_online-shop")).args(args).output().expect("binary runs")
}

#[tokio::test]
async fn the_binary_imports_the_file_and_answers_json() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    // The categories, through the binary's script command.
    let script = dir.path().join("categories.jsonl");
    let lines: Vec<String> = (0..CATEGORIES)
        .map(|index| {
            json!({"plugin": "Catalog", "command": "AddCategory", "caller": {"user_id": "merch", "roles": ["Admin"]},
                   "input": {"categoryId": format!("c{index}"), "name": format!("Category {index}")}})
            .to_string()
        })
        .collect();
    std::fs::write(&script, lines.join("\n")).unwrap();
    assert!(shop(&["script", script.to_str().unwrap(), "--data", data, "--json"]).status.success());
    let file = dir.path().join("products.csv");
    std::fs::write(&file, products_csv()).unwrap();

    let output = shop(&["task", "Catalog.ImportProducts", file.to_str().unwrap(), "--data", data, "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let run: Value = serde_json::from_slice(&output.stdout).unwrap();
    eprintln!("{ROWS} rows through the binary: {} records/s", run["recordsPerSecond"]);
    let (runtime, _db) = reventless::local::start_sqlite(
        dir.path().join("data/local.db"),
        Default::default(),
        vec![catalog::standalone()],
    )
    .await
    .unwrap();
    assert_imported(&run, runtime.stores().queries.as_ref()).await;
    let stored = runtime.stores().queries.get("Catalog_ImportProductsRuns", run["id"].as_str().unwrap()).await;
    assert_eq!(stored.unwrap().unwrap()["accepted"], run["accepted"]);
    runtime.shutdown().await;

    // The same run again reports it and imports nothing twice; a summary in text.
    let run_id = run["id"].as_str().unwrap();
    let again = shop(&["task", "Catalog.ImportProducts", file.to_str().unwrap(), "--data", data, "--run-id", run_id]);
    assert!(again.status.success());
    let summary = String::from_utf8_lossy(&again.stdout);
    assert!(summary.contains("COMPLETED") && summary.contains("30 rejected"), "{summary}");
    assert!(summary.contains("line 9: MalformedRecord"), "{summary}");
}

#[test]
fn refused_and_failed_runs_exit_non_zero() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let sample = format!("{}/data/products.csv", env!("CARGO_MANIFEST_DIR"));
    let guest = shop(&["task", "Catalog.ImportProducts", &sample, "--memory", "--roles", "Customer"]);
    assert!(!guest.status.success());
    assert!(String::from_utf8_lossy(&guest.stderr).contains("requires one of the roles"));
    let unknown = shop(&["task", "Catalog.Nope", &sample, "--memory"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("has no task `Nope`"));
    assert!(!unknown.status.success());
    let binary = dir.path().join("broken.csv");
    std::fs::write(&binary, b"\xff\xfe\x00sku\n1\n").unwrap();
    let failed = shop(&["task", "Catalog.ImportProducts", binary.to_str().unwrap(), "--memory", "--json"]);
    assert!(!failed.status.success());
    let run: Value = serde_json::from_slice(&failed.stdout).unwrap();
    assert_eq!(run["status"], "FAILED");
}

#[test]
fn the_sample_file_imports_on_the_sample_seed() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let data = dir.path().to_str().unwrap();
    assert!(shop(&["seed", "--sample", "--data", data]).status.success());
    let sample = format!("{}/data/products.csv", env!("CARGO_MANIFEST_DIR"));
    let output = shop(&["task", "Catalog.ImportProducts", &sample, "--data", data, "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let run: Value = serde_json::from_slice(&output.stdout).unwrap();
    let codes: Vec<&str> =
        run["rejectedRecords"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert_eq!(
        (run["accepted"].as_u64(), codes),
        (Some(3), vec!["MalformedRecord", "CategoryNotFound", "ProductAlreadyExists"])
    );
}
