//! `/mcp` on the emulated stage: the deployed shop behind the gateway URL,
//! the caller from a bearer token of the local OIDC issuer. Plain JSON-RPC
//! over HTTP (what any client sends), then the official Python MCP client
//! (`../online-shop/tests/mcp/shop_client.py`) with the same token.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reventless_aws::deploy::config::ProjectConfig;
use reventless_aws::deploy::inputs::Bootstraps;
use reventless_local_cloud::stage::{Deployed, deploy};
use reventless_local_cloud::{CloudOptions, LocalCloud};
use serde_json::{Value, json};

const SHOP_TOML: &str = include_str!("../../online-shop/reventless.toml");

struct Stage {
    _cloud: LocalCloud,
    deployed: Deployed,
    client: reqwest::Client,
}

async fn start() -> Stage {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let stage = format!("m{}", &id[26..]);
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap().keep();
    let mut options = CloudOptions::new(work);
    options.endpoint_url = Some(reventless_aws::emulator::Emulator::shared().unwrap().endpoint.clone());
    let cloud = LocalCloud::start(options).await.unwrap();
    let config =
        ProjectConfig::from_texts(&format!("{SHOP_TOML}\n[stages.{stage}]\n"), None, &stage, &|_| None, ".".into())
            .unwrap();
    let bootstraps = Bootstraps::Paths(BTreeMap::from([
        ("catalog".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_catalog-lambda"))),
        ("ordering".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_ordering-lambda"))),
        ("platform".to_string(), PathBuf::from(env!("CARGO_BIN_EXE_platform-gateway"))),
    ]));
    let deployed = deploy(&cloud, config, &bootstraps, &|line| eprintln!("{line}")).await.unwrap();
    Stage { _cloud: cloud, deployed, client: reqwest::Client::new() }
}

impl Stage {
    async fn token(&self, sub: &str, groups: &[&str]) -> String {
        let request = self.client.post(&self.deployed.token_url).json(&json!({"sub": sub, "groups": groups}));
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        answer["token"].as_str().unwrap().to_string()
    }

    /// The gateway's `/mcp` (beside its `/graphql`).
    fn mcp_url(&self) -> String {
        let graphql = &self.deployed.graphql_url;
        format!("{}/mcp", graphql.strip_suffix("/graphql").unwrap_or(graphql).trim_end_matches('/'))
    }

    /// One JSON-RPC exchange: (HTTP status, body).
    async fn rpc(&self, token: Option<&str>, message: Value) -> (u16, Value) {
        let mut request = self.client.post(self.mcp_url()).json(&message);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|_| json!({"raw": text})))
    }

    /// `rpc` until the plugins have registered (their first heartbeat after deploy).
    async fn rpc_when_ready(&self, token: &str, message: Value, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = self.rpc(Some(token), message.clone()).await;
            if status == 200 && ready(&body) {
                return body;
            }
            assert!(Instant::now() < deadline, "not ready: {status} {body}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn call(id: u64, name: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": arguments}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mcp_through_the_gateway_lists_calls_and_reads_with_the_tokens_roles() {
    let stage = start().await;
    let merchandiser = stage.token("mia", &["Merchandiser"]).await;
    let customer = stage.token("c1", &[]).await;

    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let tools = stage
        .rpc_when_ready(&merchandiser, list, |body| {
            let names = body.pointer("/result/tools").and_then(Value::as_array).cloned().unwrap_or_default();
            let has = |name: &str| names.iter().any(|tool| tool["name"] == name);
            has("Catalog_AddCategory") && has("Ordering_Customer_Register")
        })
        .await;
    let add = tools["result"]["tools"].as_array().unwrap().iter().find(|t| t["name"] == "Catalog_AddCategory").unwrap();
    assert_eq!(add["inputSchema"]["required"], json!(["categoryId", "name"]));

    // Refused without the role, and nothing appended.
    let (status, refused) =
        stage.rpc(Some(&customer), call(2, "Catalog_AddCategory", json!({"categoryId": "toys", "name": "Toys"}))).await;
    assert_eq!(status, 200);
    assert_eq!(refused["result"]["isError"], true, "{refused}");
    assert_eq!(refused["result"]["structuredContent"]["errorCode"], "AccessRefused");
    let read_toys = json!({"jsonrpc": "2.0", "id": 3, "method": "resources/read",
        "params": {"uri": "reventless://Catalog/Categories/toys"}});
    let (_, missing) = stage.rpc(Some(&merchandiser), read_toys).await;
    assert_eq!(missing["error"]["code"], -32002, "{missing}");

    // Accepted with it; the row shows once the projection ran.
    let (_, accepted) = stage
        .rpc(Some(&merchandiser), call(4, "Catalog_AddCategory", json!({"categoryId": "books", "name": "Books"})))
        .await;
    assert_eq!(accepted["result"]["structuredContent"]["status"], "ACCEPTED", "{accepted}");
    let read_books = json!({"jsonrpc": "2.0", "id": 5, "method": "resources/read",
        "params": {"uri": "reventless://Catalog/Categories/books"}});
    let row = stage.rpc_when_ready(&merchandiser, read_books, |body| body["result"].is_object()).await;
    let text: Value = serde_json::from_str(row["result"]["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text["name"], "Books");

    // No token where one is needed is not a caller: a forged one is 401.
    let (status, _) = stage.rpc(Some("not-a-jwt"), json!({"jsonrpc": "2.0", "id": 6, "method": "ping"})).await;
    assert_eq!(status, 401);

    // The official client, with the token as its bearer.
    let python = std::env::var("REVENTLESS_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = format!("{}/../online-shop/tests/mcp/shop_client.py", env!("CARGO_MANIFEST_DIR"));
    let (url, bearer) = (stage.mcp_url(), format!("authorization=Bearer {merchandiser}"));
    let answer = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(&python)
            .args([script.as_str(), url.as_str(), bearer.as_str()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let asks = json!({"list": true, "read": "reventless://Catalog/Categories?first=10"});
        child.stdin.take().unwrap().write_all(asks.to_string().as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(answer.status.success(), "the MCP client failed: {}", String::from_utf8_lossy(&answer.stderr));
    let answer: Value = serde_json::from_slice(&answer.stdout).unwrap();
    assert!(answer["tools"]["Ordering_Customer_Register"]["required"].as_array().unwrap().contains(&json!("id")));
    let page: Value = serde_json::from_str(answer["read"]["text"].as_str().unwrap()).unwrap();
    assert_eq!(page["totalCount"], 1, "{page}");
    assert_eq!(page["items"][0]["id"], "books");
}
