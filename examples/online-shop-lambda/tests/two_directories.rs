//! The shop split in two project directories deploying into one stage of the
//! local cloud: one holds the platform and Catalog, the other Ordering
//! (`depends_on = ["catalog"]`, a stack not in its file). Catalog is deployed
//! first and publishes to Ordering, deployed later, without being deployed
//! again; each directory deploys with only its own binaries, and neither
//! plans to delete the other's stacks.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reventless_aws::deploy::apply::Change;
use reventless_aws::deploy::config::ProjectConfig;
use reventless_aws::deploy::inputs::{Bootstraps, Purpose, prepare_for};
use reventless_aws::deploy::run::{self, DeployOptions};
use reventless_local_cloud::stage::{Deployed, deploy, deploy_clients};
use reventless_local_cloud::{CloudOptions, LocalCloud};
use serde_json::{Value, json};

fn project_file(dir: &Path, stage: &str, body: &str) -> ProjectConfig {
    std::fs::create_dir_all(dir).unwrap();
    let text = format!("project = \"shop\"\n{body}\n[stages.{stage}]\n");
    std::fs::write(dir.join("reventless.toml"), text).unwrap();
    ProjectConfig::load(&dir.join("reventless.toml"), stage).unwrap()
}

const PLATFORM_AND_CATALOG: &str = r#"
[platform]
package = "online-shop-lambda"
bin = "platform-gateway"
[plugins.catalog]
package = "online-shop-lambda"
bin = "catalog-lambda"
"#;

const ORDERING: &str = r#"
[plugins.ordering]
package = "online-shop-lambda"
bin = "ordering-lambda"
depends_on = ["catalog"]
"#;

fn binaries(stacks: &[(&str, &str)]) -> Bootstraps {
    Bootstraps::Paths(stacks.iter().map(|(stack, path)| (stack.to_string(), PathBuf::from(path))).collect())
}

struct Gateway<'a> {
    deployed: &'a Deployed,
    client: reqwest::Client,
}

impl Gateway<'_> {
    async fn token(&self, sub: &str, groups: &[&str]) -> String {
        let answer: Value = self
            .client
            .post(&self.deployed.token_url)
            .json(&json!({"sub": sub, "groups": groups}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["token"].as_str().unwrap().to_string()
    }

    async fn gql(&self, token: &str, query: &str) -> Value {
        let response = self.client.post(&self.deployed.graphql_url).bearer_auth(token).json(&json!({"query": query}));
        let body: Value = response.send().await.unwrap().json().await.unwrap();
        assert!(body["errors"].is_null(), "{query}: {body}");
        body["data"].clone()
    }

    async fn add_product(&self, token: &str, id: &str) {
        let query = format!(
            r#"mutation {{ Catalog_AddProduct(productId: "{id}", name: "{id}", description: "", priceCents: 500, currency: "EUR", categoryId: "books") {{ status }} }}"#
        );
        assert_eq!(self.gql(token, &query).await["Catalog_AddProduct"]["status"], "ACCEPTED");
    }

    async fn available(&self, token: &str, id: &str) -> bool {
        let query = format!(r#"{{ Ordering_AvailableProduct(id: "{id}") {{ available }} }}"#);
        self.gql(token, &query).await["Ordering_AvailableProduct"]["available"] == true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_project_directories_deploy_into_one_stage_and_an_order_needs_both() {
    let started = Instant::now();
    let stage = format!("two{}", &uuid::Uuid::now_v7().simple().to_string()[25..]);
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap().keep();
    let mut options = CloudOptions::new(work.join("cloud"));
    options.endpoint_url = Some(reventless_aws::emulator::Emulator::shared().unwrap().endpoint.clone());
    let cloud = LocalCloud::start(options).await.unwrap();
    let progress = |line: String| eprintln!("{line}");

    // Two directories, two sources (their names), one project and stage.
    let platform_dir = work.join("shop-platform");
    let ordering_dir = work.join("shop-ordering");
    let first = project_file(&platform_dir, &stage, PLATFORM_AND_CATALOG);
    let second = project_file(&ordering_dir, &stage, ORDERING);
    assert_eq!((first.source.as_str(), second.source.as_str()), ("shop-platform", "shop-ordering"));
    let first_binaries = binaries(&[
        ("catalog", env!("CARGO_BIN_EXE_catalog-lambda")),
        ("platform", env!("CARGO_BIN_EXE_platform-gateway")),
    ]);
    // The second directory has Ordering's binary only.
    let second_binaries = binaries(&[("ordering", env!("CARGO_BIN_EXE_ordering-lambda"))]);

    // Ordering cannot go first: the stack it depends on is not in the stage.
    let early = deploy(&cloud, second.clone(), &second_binaries, &progress).await.err().unwrap().to_string();
    assert!(early.contains("platform") || early.contains("catalog"), "{early}");

    let deployed = deploy(&cloud, first.clone(), &first_binaries, &progress).await.unwrap();
    let gateway = Gateway { deployed: &deployed, client: reqwest::Client::new() };
    let merchandiser = gateway.token("mia", &["Merchandiser"]).await;
    let added = gateway
        .gql(&merchandiser, r#"mutation { Catalog_AddCategory(categoryId: "books", name: "Books") { status } }"#)
        .await;
    assert_eq!(added["Catalog_AddCategory"]["status"], "ACCEPTED");
    // Published while no subscriber exists anywhere.
    gateway.add_product(&merchandiser, "p1").await;

    let deployed_second = deploy(&cloud, second.clone(), &second_binaries, &progress).await.unwrap();
    // The gateway reads the registry at most every REGISTRY_TTL: Ordering shows once that has passed.
    tokio::time::sleep(reventless_aws::gateway::REGISTRY_TTL).await;
    assert_eq!(deployed_second.graphql_url, deployed.graphql_url, "one stage, one gateway");
    eprintln!("both directories deployed after {:?}", started.elapsed());

    // Catalog (not deployed again) finds Ordering in the registry and hands
    // it the point's events from the start; new products keep coming
    // meanwhile (a publisher looks again at most every 15 s, on its next batch).
    let customer = gateway.token("c1", &[]).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut next = 2;
    while !gateway.available(&customer, "p1").await {
        assert!(Instant::now() < deadline, "p1 never reached Ordering");
        gateway.add_product(&merchandiser, &format!("p{next}")).await;
        next += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    eprintln!("p1 in Ordering after {:?}", started.elapsed());

    // An order through the gateway needing both: Ordering knows Catalog's product.
    let registered = gateway
        .gql(
            &customer,
            r#"mutation { Ordering_Customer_Register(id: "c1", name: "Ann", email: "ann@example.org") { status } }"#,
        )
        .await;
    assert_eq!(registered["Ordering_Customer_Register"]["status"], "ACCEPTED");
    let place = r#"mutation { Ordering_PlaceOrder(orderId: "o1", customerId: "c1", lines: [{productId: "p1", quantity: 2}], shipping: STANDARD) { status errorCode } }"#;
    assert_eq!(gateway.gql(&customer, place).await["Ordering_PlaceOrder"]["status"], "ACCEPTED");
    // And back: Catalog extends Ordering's orders (Ordering, deployed later, found Catalog's inbox).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let demand = gateway.gql(&merchandiser, r#"{ Catalog_ProductDemand(id: "p1") { orderCount } }"#).await;
        if demand["Catalog_ProductDemand"]["orderCount"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the order never reached Catalog: {demand}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Neither directory plans to delete the other's stacks (pruning is by
    // source); `--plugin catalog` reads Catalog's binary only and finds
    // nothing to change.
    let clients = deploy_clients(&cloud);
    for (config, bootstraps, plugin) in [
        (first.clone(), &first_binaries, None),
        (second.clone(), &second_binaries, None),
        (first.clone(), &binaries(&[("catalog", env!("CARGO_BIN_EXE_catalog-lambda"))]), Some("catalog")),
    ] {
        let mut config = config;
        config.auth = Some(reventless_aws::gateway::AuthSettings::new(
            cloud.issuer.issuer_url(),
            reventless_local_cloud::AUDIENCE.to_string(),
        ));
        let inputs = prepare_for(config, bootstraps, Purpose::Deploy, plugin, &|_| {}).unwrap();
        let options = DeployOptions { plugin: plugin.map(str::to_string), allow_data_loss: false };
        let (_, report) = run::plan_stage(&clients, &inputs, &options).await.unwrap();
        let deletions: Vec<&Change> = report.changes.iter().filter(|c| matches!(c, Change::Delete { .. })).collect();
        assert!(deletions.is_empty(), "{plugin:?} of {}: {deletions:?}", inputs.config.source);
        if plugin.is_some() {
            assert_eq!(inputs.manifests.keys().collect::<Vec<_>>(), vec!["catalog"]);
            assert!(report.changes.is_empty(), "{:?}", report.changes);
        }
    }
    eprintln!("two_directories: {:?}", started.elapsed());
}
