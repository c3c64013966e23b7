//! A plugin's life in a running stage, in the local cloud (IAM enforced):
//! Reviews joins the deployed shop with `deploy --plugin reviews` and is
//! served by the gateway from its first heartbeat (the gateway's role invokes
//! the stage's functions by name prefix; the platform is not deployed again);
//! removed from the file, the next deploy prunes it and it leaves the
//! gateway's schema; its protected tables stay until `destroy --plugin
//! reviews --allow-data-loss`.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reventless_aws::deploy::apply::Change;
use reventless_aws::deploy::config::ProjectConfig;
use reventless_aws::deploy::destroy::{DestroyOptions, destroy_with};
use reventless_aws::deploy::inputs::{Bootstraps, Purpose, prepare_for};
use reventless_aws::deploy::run::{self, DeployOptions};
use reventless_aws::gateway::{AuthSettings, Registry};
use reventless_local_cloud::stage::{deploy, deploy_clients};
use reventless_local_cloud::{AUDIENCE, CloudOptions, LocalCloud};
use serde_json::{Value, json};

const SHOP_TOML: &str = include_str!("../../online-shop/reventless.toml");

const REVIEWS: &str =
    "[plugins.reviews]\nname = \"Reviews\"\npackage = \"online-shop-lambda\"\nbin = \"reviews-lambda\"\n";

fn bootstraps() -> Bootstraps {
    Bootstraps::Paths(BTreeMap::from([
        ("catalog".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_catalog-lambda"))),
        ("ordering".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_ordering-lambda"))),
        ("reviews".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_reviews-lambda"))),
        ("platform".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_platform-gateway"))),
    ]))
}

/// The shop's file (with Reviews when `reviews`); a stage that is not
/// ephemeral: its tables are protected.
fn config(stage: &str, reviews: bool, cloud: &LocalCloud) -> ProjectConfig {
    let extra = if reviews { REVIEWS } else { "" };
    let text = format!("{SHOP_TOML}\n{extra}\n[stages.{stage}]\n");
    let mut config = ProjectConfig::from_texts(&text, None, stage, &|_| None, PathBuf::from(".")).unwrap();
    // As the first deploy set it: the gateway trusts the local issuer.
    config.auth = Some(AuthSettings::new(cloud.issuer.issuer_url(), AUDIENCE.to_string()));
    config
}

struct Gateway {
    url: String,
    token: String,
    client: reqwest::Client,
}

impl Gateway {
    async fn post(&self, query: &str) -> (u16, Value) {
        let request = self.client.post(&self.url).bearer_auth(&self.token).json(&json!({"query": query}));
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The root fields of the gateway's composed schema, by introspection
    /// (`Query` and `Mutation` among the types: the gateway merges those by name).
    async fn fields(&self) -> Vec<String> {
        let (status, body) = self.post("{ __schema { types { name fields { name } } } }").await;
        assert_eq!(status, 200, "{body}");
        let types = body["data"]["__schema"]["types"].as_array().cloned().unwrap_or_default();
        types
            .iter()
            .filter(|t| t["name"] == "Query" || t["name"] == "Mutation")
            .flat_map(|t| t["fields"].as_array().cloned().unwrap_or_default())
            .filter_map(|field| field["name"].as_str().map(str::to_string))
            .collect()
    }

    /// Polls until `check` holds on the root fields (the gateway rereads the registry every 10 s).
    async fn fields_until(&self, what: &str, check: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let fields = self.fields().await;
            if check(&fields) {
                return fields;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; fields: {fields:?}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_third_plugin_joins_a_running_stage_without_a_platform_deploy_and_leaves_it_again() {
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap().keep();
    let mut options = CloudOptions::new(work);
    options.endpoint_url = Some(reventless_aws::emulator::Emulator::shared().unwrap().endpoint.clone());
    let cloud = LocalCloud::start(options).await.unwrap();
    let stage = format!("l{}", &uuid::Uuid::now_v7().simple().to_string()[26..]);
    let progress = |line: String| eprintln!("{line}");
    let deployed = deploy(&cloud, config(&stage, false, &cloud), &bootstraps(), &progress).await.unwrap();
    let client = reqwest::Client::new();
    let answer: Value = client
        .post(&deployed.token_url)
        .json(&json!({"sub": "ann", "groups": []}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let gateway =
        Gateway { url: deployed.graphql_url.clone(), token: answer["token"].as_str().unwrap().into(), client };
    let before = gateway.fields().await;
    let shop = before.iter().any(|f| f == "Catalog_Products");
    assert!(shop && !before.iter().any(|f| f.starts_with("Reviews_")), "{before:?}");

    // Reviews joins: `deploy --plugin reviews` with a file that adds it.
    let clients = deploy_clients(&cloud);
    let joined = config(&stage, true, &cloud);
    let inputs = prepare_for(joined.clone(), &bootstraps(), Purpose::Deploy, Some("reviews"), &progress).unwrap();
    let only = DeployOptions { plugin: Some("reviews".into()), allow_data_loss: false };
    let report = run::deploy(&clients, &inputs, &only, &progress).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let stacks: std::collections::BTreeSet<&str> = report
        .changes
        .iter()
        .map(|c| match c {
            Change::Create { stack, .. } | Change::Update { stack, .. } | Change::Delete { stack, .. } => {
                stack.as_str()
            }
            Change::Unchanged { stack, .. } => stack.as_str(),
        })
        .collect();
    assert_eq!(stacks, ["reviews"].into(), "only Reviews changes: the platform is not deployed again");

    // Served from its first heartbeat: in the schema, and its API answers
    // through the gateway (whose role may invoke it by the stage's prefix).
    let fields = gateway.fields_until("Reviews in the schema", |f| f.iter().any(|f| f == "Reviews_Review")).await;
    assert!(fields.iter().any(|f| f == "Reviews_Review_Submit") && fields.iter().any(|f| f == "Catalog_Products"));
    let (status, submitted) = gateway
        .post(r#"mutation { Reviews_Review_Submit(id: "r1", productId: "p1", rating: 5, text: "great") { status } }"#)
        .await;
    assert_eq!(
        (status, &submitted["data"]["Reviews_Review_Submit"]["status"]),
        (200, &json!("ACCEPTED")),
        "{submitted}"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, review) = gateway.post(r#"{ Reviews_Review(id: "r1") { rating productId } }"#).await;
        if review["data"]["Reviews_Review"]["rating"] == 5 {
            break;
        }
        assert!(Instant::now() < deadline, "the review row never showed: {review}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Reviews leaves the file: the (confirmed) deploy prunes it; its
    // protected tables stay without --allow-data-loss.
    let left = config(&stage, false, &cloud);
    let inputs = prepare_for(left.clone(), &bootstraps(), Purpose::Deploy, None, &progress).unwrap();
    let (_, planned) = run::plan_stage(&clients, &inputs, &DeployOptions::default()).await.unwrap();
    let deletions: Vec<&Change> = planned.changes.iter().filter(|c| matches!(c, Change::Delete { .. })).collect();
    assert!(!deletions.is_empty(), "the plan shows what the confirmation asks about");
    assert!(deletions.iter().all(|c| matches!(c, Change::Delete { stack, .. } if stack == "reviews")), "{deletions:?}");
    let report = run::deploy(&clients, &inputs, &DeployOptions::default(), &progress).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.skipped.len(), 2, "its two tables kept: {:?}", report.skipped);
    let registry = Registry::new(&cloud.sdk, &format!("shop-{stage}-platform-registry"));
    let registered: Vec<String> = registry.list().await.unwrap().into_iter().map(|r| r.plugin).collect();
    assert_eq!(registered, ["Catalog", "Ordering"], "its registry row is gone");
    let fields =
        gateway.fields_until("Reviews gone from the schema", |f| !f.iter().any(|f| f.starts_with("Reviews_"))).await;
    assert!(fields.iter().any(|f| f == "Catalog_Products"), "the others stay: {fields:?}");
    // Each warm gateway instance rereads the registry within 10 s: until then
    // one may still route to the deleted plugin (PLUGIN_UNAVAILABLE).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, refused) = gateway.post(r#"{ Reviews_Review(id: "r1") { rating } }"#).await;
        if status == 400 {
            assert!(refused.to_string().contains("no plugin `Reviews` is connected"), "{refused}");
            break;
        }
        assert!(Instant::now() < deadline, "no plugin answers for Reviews any more: {status} {refused}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let lambda = aws_sdk_lambda::Client::from_conf(
        aws_sdk_lambda::config::Builder::from(&cloud.sdk).endpoint_url(cloud.lambda_url()).build(),
    );
    let api = lambda.get_function().function_name(format!("shop-{stage}-reviews-ReviewsApi")).send().await;
    assert!(api.is_err(), "its functions are gone");

    // `destroy --plugin reviews --allow-data-loss`: protection off, tables gone.
    let lines = Mutex::new(Vec::new());
    let options = DestroyOptions { plugin: Some("reviews".into()), allow_data_loss: true };
    let record = |line: String| lines.lock().unwrap().push(line);
    let destroyed = destroy_with(&clients, &left, &options, &record).await.unwrap();
    assert!(destroyed.failures.is_empty() && destroyed.kept.is_empty(), "{destroyed:?}");
    let lines = lines.into_inner().unwrap();
    let events = format!("shop-{stage}-reviews-events");
    assert!(
        lines.contains(&format!("deletion protection of table {events} turned off (--allow-data-loss)")),
        "{lines:?}"
    );
    let dynamodb = aws_sdk_dynamodb::Client::new(&cloud.sdk);
    assert!(dynamodb.describe_table().table_name(&events).send().await.is_err(), "its events table is gone");
    let left_over = clients.discover("shop", &stage).await.unwrap();
    assert!(left_over.iter().all(|e| e.stack != "reviews"), "{left_over:?}");
    assert!(left_over.iter().any(|e| e.stack == "catalog"), "the rest of the stage stays");
}
