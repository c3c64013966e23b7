//! A heartbeat whose automation retries fail says so (in its answer and as
//! an error in the function's log) instead of answering `CONNECTED`.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
mod support;

use serde_json::json;
use support::{Deployment, LIMIT};

const ORDERING: &str = env!("CARGO_BIN_EXE_ordering-lambda");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_whose_automation_retries_fail_reports_them() {
    let shop = Deployment::new("Ordering").await;
    // The automations' todo lists live in a rows table that cannot be read
    // (here: it does not exist; on AWS, e.g. a refused Query).
    let mut config = shop.function_config("OrderingHeartbeat");
    config.stores.rows_table = format!("{}-missing", shop.names.rows_table);
    let (heart, function) = shop.function_with(ORDERING, &config).await;
    let answer = heart.invoke(json!({"reventless": reventless_aws::lambda::HEARTBEAT_EVENT}), LIMIT).await.unwrap();
    assert_eq!(answer["plugin"], "Ordering");
    assert_eq!(answer["status"], "DEGRADED", "{answer}");
    let failures = answer["failures"].as_array().unwrap();
    assert!(
        failures.iter().any(|f| f["automation"] == "SendOrderConfirmation" && !f["error"].as_str().unwrap().is_empty()),
        "{answer}"
    );
    let log = function.stop();
    assert!(log.contains("retrying due items failed") && log.contains("SendOrderConfirmation"), "{log}");
    assert!(log.contains("ERROR"), "logged as an error: {log}");

    // With its stores in place the same beat is CONNECTED, with no failures.
    let (heart, _function) = shop.function(ORDERING, "OrderingHeartbeat").await;
    let answer = heart.invoke(json!({"reventless": reventless_aws::lambda::HEARTBEAT_EVENT}), LIMIT).await.unwrap();
    assert_eq!(answer, json!({"plugin": "Ordering", "status": "CONNECTED"}));
}
