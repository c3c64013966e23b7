//! File tasks on the emulated stage: the shop's product files uploaded to
//! `tasks/ImportProducts/` of the Catalog stack's bucket. moto notifies the
//! tasks queue, the local cloud drives the mapping, and `CatalogTasks`
//! (IAM checked: GetObject on its task's prefix) streams the object into the
//! task runner. The run row shows the counts and the rejected rows; the
//! products are visible through the gateway. A task function killed
//! mid-file: the message comes back after the visibility timeout and the
//! run resumes where it stopped, appending every product exactly once.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use reventless_aws::deploy::config::ProjectConfig;
use reventless_aws::deploy::inputs::Bootstraps;
use reventless_local_cloud::stage::{Deployed, deploy};
use reventless_local_cloud::{CloudOptions, LocalCloud};
use serde_json::{Value, json};

const SHOP_TOML: &str = include_str!("../../online-shop/reventless.toml");
const PRODUCTS_CSV: &str = include_str!("../../online-shop/data/products.csv");

/// Rows of the generated file, and how many categories it spreads over.
const ROWS: usize = 40;
const CATEGORIES: usize = 8;

fn bootstraps() -> Bootstraps {
    Bootstraps::Paths(BTreeMap::from([
        ("catalog".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_catalog-lambda"))),
        ("ordering".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_ordering-lambda"))),
        ("platform".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_platform-gateway"))),
    ]))
}

/// The shop with a task function that may run 20 s (visibility 120 s): a
/// resumed run of the test's file finishes within one attempt (commands
/// take ~0.1–0.3 s each on the emulator, under the IAM proxy).
fn config(stage: &str) -> ProjectConfig {
    let text = format!("{SHOP_TOML}\n[stages.{stage}]\n[plugins.catalog.groups.Tasks]\ntimeout = 20\n");
    ProjectConfig::from_texts(&text, None, stage, &|_| None, PathBuf::from(".")).unwrap()
}

struct Shop {
    cloud: LocalCloud,
    deployed: Deployed,
    client: reqwest::Client,
    stage: String,
    token: String,
}

impl Shop {
    async fn start(stage: &str) -> Shop {
        let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap().keep();
        let mut options = CloudOptions::new(work);
        options.endpoint_url = Some(reventless_aws::emulator::Emulator::shared().unwrap().endpoint.clone());
        let cloud = LocalCloud::start(options).await.unwrap();
        let deployed = deploy(&cloud, config(stage), &bootstraps(), &|line| eprintln!("{line}")).await.unwrap();
        let client = reqwest::Client::new();
        let answer: Value = client
            .post(&deployed.token_url)
            .json(&json!({"sub": "mia", "groups": ["Merchandiser"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = answer["token"].as_str().unwrap().to_string();
        Shop { cloud, deployed, client, stage: stage.to_string(), token }
    }

    async fn gql(&self, query: &str, variables: Value) -> Value {
        let response = self
            .client
            .post(&self.deployed.graphql_url)
            .bearer_auth(&self.token)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        assert!(body["errors"].is_null(), "{query}: {body}\n{}", self.output());
        body["data"].clone()
    }

    /// Polls `query` until `check` holds (at most 60 s: read models follow the stream).
    async fn eventually(&self, query: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let data = self.gql(query, json!({})).await;
            if check(&data) {
                return data;
            }
            assert!(Instant::now() < deadline, "{query}: {data}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The run row of `run_id` (null until it exists).
    async fn run(&self, run_id: &str) -> Value {
        let query = "query($id: ID!) { Catalog_ImportProductsRun(id: $id) { status recordsRead accepted rejected \
                     attempts startedBy checkpoint { records } rejectedRecords { line code } } }";
        self.gql(query, json!({"id": run_id})).await["Catalog_ImportProductsRun"].clone()
    }

    /// Polls the run row until `check` holds (at most `seconds`).
    async fn run_until(&self, run_id: &str, seconds: u64, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let run = self.run(run_id).await;
            if check(&run) {
                return run;
            }
            assert!(Instant::now() < deadline, "run {run_id} after {seconds} s: {run}\n{}", self.output());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn tasks_function(&self) -> String {
        format!("shop-{}-catalog-CatalogTasks", self.stage)
    }

    /// The Catalog stack's tasks bucket (named with the account and region).
    async fn bucket(&self) -> String {
        let s3 = aws_sdk_s3::Client::new(&self.cloud.sdk);
        let prefix = format!("shop-{}-catalog-tasks-", self.stage);
        let buckets = s3.list_buckets().send().await.unwrap();
        let names: Vec<&str> = buckets.buckets().iter().filter_map(|b| b.name()).collect();
        names.iter().find(|n| n.starts_with(&prefix)).unwrap_or_else(|| panic!("no {prefix}* in {names:?}")).to_string()
    }

    /// Uploads `body` as `key`; answers the run id (`<key>#<ETag>`).
    async fn upload(&self, bucket: &str, key: &str, body: &str) -> String {
        let s3 = aws_sdk_s3::Client::new(&self.cloud.sdk);
        let put = s3.put_object().bucket(bucket).key(key).body(body.as_bytes().to_vec().into()).send().await.unwrap();
        format!("{key}#{}", put.e_tag().unwrap().trim_matches('"'))
    }

    async fn product_events(&self) -> usize {
        let dynamodb = aws_sdk_dynamodb::Client::new(&self.cloud.sdk);
        let table = format!("shop-{}-catalog-events", self.stage);
        let (mut count, mut start) = (0, None);
        loop {
            let page = dynamodb.scan().table_name(&table).set_exclusive_start_key(start).send().await.unwrap();
            count += page
                .items()
                .iter()
                .filter(|item| {
                    matches!(item.get("type"), Some(aws_sdk_dynamodb::types::AttributeValue::S(t)) if t == "ProductAdded")
                })
                .count();
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return count;
            }
        }
    }

    fn output(&self) -> String {
        let lines = self.cloud.lambda.recent_output(&self.tasks_function());
        let tail: Vec<&String> = lines.iter().rev().take(30).collect();
        tail.into_iter().rev().cloned().collect::<Vec<_>>().join("\n")
    }
}

/// Why row `index` of the generated file is bad, if it is.
fn bad(index: usize) -> Option<&'static str> {
    match index % 40 {
        7 => Some("MalformedRecord"),
        13 => Some("CategoryNotFound"),
        21 => Some("ProductAlreadyExists"),
        _ => None,
    }
}

fn products_csv() -> String {
    let mut file = String::from("sku,title,desc,unitPrice,currency,categoryId\n");
    for index in 0..ROWS {
        let (mut sku, mut price, mut category) =
            (format!("p{index}"), (100 + index).to_string(), format!("c{}", index % CATEGORIES));
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

fn kill(pid: u32) {
    let status = std::process::Command::new("kill").arg("-9").arg(pid.to_string()).status().unwrap();
    assert!(status.success(), "kill -9 {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uploaded_product_files_are_imported_and_a_killed_run_resumes_without_resending() {
    let stage = format!("k{}", &uuid::Uuid::now_v7().simple().to_string()[26..]);
    let shop = Shop::start(&stage).await;
    for category in ["books", "games"].into_iter().map(String::from).chain((0..CATEGORIES).map(|i| format!("c{i}"))) {
        let mutation =
            format!(r#"mutation {{ Catalog_AddCategory(categoryId: "{category}", name: "{category}") {{ status }} }}"#);
        let added = shop.gql(&mutation, json!({})).await;
        assert_eq!(added["Catalog_AddCategory"]["status"], "ACCEPTED");
    }
    let bucket = shop.bucket().await;

    // The shop's sample file: three good rows, three reported.
    let run_id = shop.upload(&bucket, "tasks/ImportProducts/products.csv", PRODUCTS_CSV).await;
    let run = shop.run_until(&run_id, 90, |run| run["status"] == "COMPLETED").await;
    assert_eq!((&run["recordsRead"], &run["accepted"], &run["rejected"]), (&json!(6), &json!(3), &json!(3)), "{run}");
    assert_eq!(
        run["rejectedRecords"],
        json!([{"line": 5, "code": "MalformedRecord"}, {"line": 6, "code": "CategoryNotFound"},
               {"line": 7, "code": "ProductAlreadyExists"}])
    );
    assert!(run["startedBy"].as_str().unwrap().starts_with("s3:"), "{run}");
    let product = shop
        .eventually(r#"{ Catalog_Product(id: "book-101") { name priceCents } }"#, |d| !d["Catalog_Product"].is_null())
        .await;
    assert_eq!(product["Catalog_Product"], json!({"name": "The Rust Programming Language", "priceCents": 3999}));
    // The same bytes again under the same key: the same, completed run.
    assert_eq!(shop.upload(&bucket, "tasks/ImportProducts/products.csv", PRODUCTS_CSV).await, run_id);

    // A larger file; its function is killed mid-file (each command costs
    // ~0.1 s on the emulator, so two seconds in, part of it has run).
    let file = products_csv();
    let run_id = shop.upload(&bucket, "tasks/ImportProducts/more products.csv", &file).await;
    let started = shop.run_until(&run_id, 90, |run| run["status"] == "RUNNING").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pids = shop.cloud.lambda.busy_pids(&shop.tasks_function());
    assert_eq!(pids.len(), 1, "one instance runs the file: {pids:?} {started}");
    kill(pids[0]);
    let killed_at = shop.run(&run_id).await;
    assert_eq!(killed_at["status"], "RUNNING", "killed mid-file: {killed_at}");
    let appended_before = shop.product_events().await;
    assert!(appended_before > 3, "some of the file's products were appended before the kill");

    // Back after the visibility timeout (120 s): resumed, not restarted.
    let run = shop.run_until(&run_id, 400, |run| run["status"] == "COMPLETED").await;
    let bad_rows = (0..ROWS).filter(|index| bad(*index).is_some()).count();
    assert!(run["attempts"].as_u64().unwrap() >= 2, "resumed: {run}");
    assert_eq!(run["recordsRead"], ROWS);
    assert_eq!(run["accepted"], ROWS - bad_rows, "{run}");
    assert_eq!(run["rejected"], bad_rows, "a re-sent record would be rejected as ProductAlreadyExists: {run}");
    let codes: Vec<(u64, &str)> = run["rejectedRecords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["code"].as_str().unwrap()))
        .collect();
    let expected: Vec<(u64, &str)> =
        (0..ROWS).filter_map(|index| bad(index).map(|code| (index as u64 + 2, code))).collect();
    assert_eq!(codes, expected);
    assert_eq!(shop.product_events().await, 3 + ROWS - bad_rows, "every product appended exactly once");
    let listed = shop
        .eventually("{ Catalog_Products(first: 1) { totalCount } }", |d| {
            d["Catalog_Products"]["totalCount"] == 3 + ROWS - bad_rows
        })
        .await;
    assert_eq!(listed["Catalog_Products"]["totalCount"], 3 + ROWS - bad_rows, "the products, through the gateway");
    let product = shop.gql(r#"{ Catalog_Product(id: "p32") { name priceCents } }"#, json!({})).await;
    assert_eq!(product["Catalog_Product"], json!({"name": "Product 32, boxed", "priceCents": 132}));
}
