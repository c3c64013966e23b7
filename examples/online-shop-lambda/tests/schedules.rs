//! The shop's `CancelUnpaidOrders` schedule on the emulated stage: the
//! deploy creates its Scheduler entry (the heartbeat function as target,
//! the schedule's name as input, the scheduler role), the local cloud fires
//! it under that role (IAM checked), and the heartbeat function sends
//! `Ordering_CancelUnpaidOrder` for an unpaid order older than the timeout
//! (0 minutes on this stage, so the test does not wait half an hour).
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_scheduler::types::{FlexibleTimeWindow, FlexibleTimeWindowMode};
use reventless_aws::deploy::config::ProjectConfig;
use reventless_aws::deploy::inputs::Bootstraps;
use reventless_local_cloud::stage::deploy;
use reventless_local_cloud::{CloudOptions, LocalCloud};
use serde_json::{Value, json};

const SHOP_TOML: &str = include_str!("../../online-shop/reventless.toml");

fn bootstraps() -> Bootstraps {
    Bootstraps::Paths(BTreeMap::from([
        ("catalog".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_catalog-lambda"))),
        ("ordering".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_ordering-lambda"))),
        ("platform".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_platform-gateway"))),
    ]))
}

/// The shop with unpaid orders timing out at once (the heartbeat fires schedules).
fn config(stage: &str) -> ProjectConfig {
    let text = format!(
        "{SHOP_TOML}\n[stages.{stage}]\n[plugins.ordering.groups.Heartbeat.env_vars]\nORDERING_UNPAID_ORDER_TIMEOUT = \"0m\"\n"
    );
    ProjectConfig::from_texts(&text, None, stage, &|_| None, PathBuf::from(".")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_deployed_schedule_fires_and_cancels_an_unpaid_order() {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let stage = format!("s{}", &id[26..]);
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap().keep();
    let mut options = CloudOptions::new(work);
    options.endpoint_url = Some(reventless_aws::emulator::Emulator::shared().unwrap().endpoint.clone());
    options.scheduler_rescan = Duration::from_millis(500);
    let cloud = LocalCloud::start(options).await.unwrap();
    let deployed = deploy(&cloud, config(&stage), &bootstraps(), &|line| eprintln!("{line}")).await.unwrap();
    let client = reqwest::Client::new();
    let token = |sub: &str, groups: &[&str]| {
        let request = client.post(&deployed.token_url).json(&json!({"sub": sub, "groups": groups}));
        async move {
            let answer: Value = request.send().await.unwrap().json().await.unwrap();
            answer["token"].as_str().unwrap().to_string()
        }
    };
    let gql = |token: String, query: String| {
        let request = client.post(&deployed.graphql_url).bearer_auth(token).json(&json!({"query": query}));
        async move {
            let body: Value = request.send().await.unwrap().json().await.unwrap();
            assert!(body["errors"].is_null(), "{query}: {body}");
            body["data"].clone()
        }
    };
    let output = |function: &str| cloud.lambda.recent_output(function).join("\n");
    let heartbeat = format!("shop-{stage}-ordering-OrderingHeartbeat");

    // The deployed entry: the heartbeat as target, the schedule's name as input.
    let scheduler = aws_sdk_scheduler::Client::new(&cloud.sdk);
    let entry_name = format!("shop-{stage}-ordering-OrderingSchedule-CancelUnpaidOrders");
    let entry = scheduler.get_schedule().name(&entry_name).send().await.unwrap();
    assert_eq!(entry.schedule_expression(), Some("rate(5 minutes)"));
    let target = entry.target().unwrap().clone();
    assert!(target.arn().ends_with(&format!(":function:{heartbeat}")), "{}", target.arn());
    let input: Value = serde_json::from_str(target.input().unwrap()).unwrap();
    assert_eq!(input, json!({"reventless": "schedule", "schedule": "CancelUnpaidOrders"}));

    // An unpaid order.
    let merchandiser = token("mia", &["Merchandiser"]).await;
    let customer = token("c1", &[]).await;
    gql(
        merchandiser.clone(),
        r#"mutation { Catalog_AddCategory(categoryId: "books", name: "Books") { status } }"#.into(),
    )
    .await;
    let product = r#"mutation { Catalog_AddProduct(productId: "p1", name: "p1", description: "", priceCents: 500, currency: "EUR", categoryId: "books") { status } }"#;
    assert_eq!(gql(merchandiser.clone(), product.into()).await["Catalog_AddProduct"]["status"], "ACCEPTED");
    let register =
        r#"mutation { Ordering_Customer_Register(id: "c1", name: "Ann", email: "ann@example.org") { status } }"#;
    assert_eq!(gql(customer.clone(), register.into()).await["Ordering_Customer_Register"]["status"], "ACCEPTED");
    let place = r#"mutation { Ordering_PlaceOrder(orderId: "o1", customerId: "c1", lines: [{productId: "p1", quantity: 1}], shipping: STANDARD) { status errorCode } }"#;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // The product reaches Ordering through the extension: retried until it has.
        let placed = gql(customer.clone(), place.into()).await;
        if placed["Ordering_PlaceOrder"]["status"] == "ACCEPTED" {
            break;
        }
        assert!(Instant::now() < deadline, "the order was not placed: {placed}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The schedule reads the Orders read model: wait until it shows the order.
    let order = r#"{ Ordering_Order(id: "o1") { lifecycle paid } }"#;
    let deadline = Instant::now() + Duration::from_secs(60);
    while gql(customer.clone(), order.into()).await["Ordering_Order"].is_null() {
        assert!(Instant::now() < deadline, "the Orders row of o1 did not appear");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The entry's next firing is minutes away: a copy with the deployed
    // target, role and input is new to the scheduler, and a new rate fires at once.
    let window = FlexibleTimeWindow::builder().mode(FlexibleTimeWindowMode::Off).build().unwrap();
    let copy = format!("{entry_name}-now");
    let created = scheduler
        .create_schedule()
        .name(&copy)
        .schedule_expression("rate(5 minutes)")
        .flexible_time_window(window)
        .target(target)
        .send()
        .await;
    created.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let data = gql(customer.clone(), order.into()).await;
        if data["Ordering_Order"]["lifecycle"] == "CANCELLED" {
            break;
        }
        assert!(Instant::now() < deadline, "o1 not cancelled: {data}\n{}", output(&heartbeat));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let log = output(&heartbeat);
    assert!(log.contains(r#""message":"schedule fired""#) && log.contains(r#""sent":1"#), "{log}");
    scheduler.delete_schedule().name(&copy).send().await.unwrap();
    cloud.shutdown();
}
