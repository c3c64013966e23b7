//! A person's view: headless Chromium opens GraphiQL on a running server,
//! runs a mutation and a query, and the results show on the page; the event
//! explorer shows that mutation's event and the row it projected. The
//! screenshots are kept at `target/browser/graphiql.png` and
//! `target/browser/explorer-*.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver` and GraphiQL's files in
//! `target/graphiql-assets` (`scripts/fetch-graphiql`); `scripts/test`
//! installs them.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use online_shop::catalog;
use serde_json::{Value, json};

fn workspace_target() -> PathBuf {
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target");
    target.canonicalize().unwrap_or(target)
}

/// Debian's `/usr/bin/chromium` is a wrapper script; chromedriver needs the binary.
fn chromium_binary() -> String {
    ["/usr/lib/chromium/chromium", "/usr/bin/chromium"]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists())
        .unwrap_or("chromium")
        .to_string()
}

struct Driver {
    process: Child,
    base: String,
    session: String,
    client: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Driver {
    async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let process = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (Debian package chromium-driver; scripts/test installs it)");
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let profile = tempfile::tempdir_in(workspace_target()).unwrap().keep();
        let capabilities = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": chromium_binary(),
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--window-size=1400,900",
                     format!("--user-data-dir={}", profile.display())]
        }}}});
        let started = Instant::now();
        let session = loop {
            match client.post(format!("{base}/session")).json(&capabilities).send().await {
                Ok(response) => {
                    let body: Value = response.json().await.unwrap();
                    break body["value"]["sessionId"]
                        .as_str()
                        .unwrap_or_else(|| panic!("no session: {body}"))
                        .to_string();
                }
                Err(_) if started.elapsed() < Duration::from_secs(20) => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(error) => panic!("chromedriver did not answer: {error}"),
            }
        };
        Driver { process, base, session, client }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.client.request(method, url);
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        response.json::<Value>().await.unwrap()["value"].take()
    }

    async fn script(&self, script: &str, args: Value) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", json!({"script": script, "args": args})).await
    }

    /// Polls `script` until it returns a truthy value; returns it.
    async fn wait_for(&self, what: &str, script: &str) -> Value {
        let started = Instant::now();
        loop {
            let value = self.script(script, json!([])).await;
            if value.as_bool() == Some(true) || value.as_str().is_some_and(|s| !s.is_empty()) {
                return value;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "timed out waiting for {what} (last: {value})");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Types `query` into GraphiQL's editor, runs it and returns the response text shown.
    async fn run_in_graphiql(&self, query: &str, expect: &str) -> String {
        self.script(
            "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(arguments[0]);",
            json!([query]),
        )
        .await;
        self.script("document.querySelector('.graphiql-execute-button').click();", json!([])).await;
        let shown = self
            .wait_for(
                expect,
                &format!(
                    "const r = document.querySelector('.graphiql-response .CodeMirror'); \
                     const t = r ? r.CodeMirror.getValue() : ''; return t.includes({expect:?}) ? t : '';"
                ),
            )
            .await;
        shown.as_str().unwrap().to_string()
    }

    async fn screenshot(&self, name: &str) {
        let screenshot = self.call(reqwest::Method::GET, "/screenshot", Value::Null).await;
        let encoded = screenshot.as_str().unwrap_or_else(|| panic!("no screenshot: {screenshot}"));
        let png = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        let dir = workspace_target().join("browser");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), &png).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_shows_a_commands_event_and_a_row() {
    let runtime = reventless::local::start_in_memory(vec![catalog::standalone()]).unwrap();
    let schema = reventless::graphql::build_schema(&runtime).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(reventless::local::server::serve(
        runtime.clone(),
        schema,
        Default::default(),
        listener,
        std::future::pending(),
    ));
    let mutation = r#"mutation { Catalog_AddCategory(categoryId: "books", name: "Books") { status } }"#;
    let answer: Value = reqwest::Client::new()
        .post(format!("{server}/graphql"))
        .header("x-user-id", "merch")
        .header("x-user-roles", "Merchandiser")
        .json(&json!({"query": mutation}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["data"]["Catalog_AddCategory"]["status"], "ACCEPTED", "{answer}");
    runtime.wait_for_projections().await.unwrap();

    let driver = Driver::start().await;
    driver.call(reqwest::Method::POST, "/url", json!({"url": format!("{server}/explorer#events")})).await;
    let event = driver
        .wait_for(
            "the command's event",
            "const e = [...document.querySelectorAll('#event-list .event')] \
               .find(e => e.querySelector('.type').textContent === 'CategoryAdded'); \
             if (!e) return ''; e.open = true; return e.innerText;",
        )
        .await;
    let event = event.as_str().unwrap();
    assert!(event.contains("category:books"), "its tag: {event}");
    assert!(event.contains("\"name\": \"Books\""), "its payload: {event}");
    assert!(event.contains("\"service\": \"Catalog\""), "its metadata: {event}");
    driver.screenshot("explorer-events.png").await;

    driver.script("document.querySelector('nav button[data-tab=\"read-models\"]').click();", json!([])).await;
    driver
        .wait_for(
            "the read models",
            "const r = document.querySelector('#read-model-list tr[data-table=\"Catalog_Categories\"]'); \
             if (!r) return false; r.click(); return true;",
        )
        .await;
    let row = driver
        .wait_for(
            "the category row",
            "const r = document.querySelector('#rows .row[data-id=\"books\"]'); return r ? r.innerText : '';",
        )
        .await;
    assert!(row.as_str().unwrap().contains("\"name\": \"Books\""), "{row}");
    let lags = driver
        .script(
            "return [...document.querySelectorAll('#read-model-list tbody td:last-child')].map(td => td.textContent);",
            json!([]),
        )
        .await;
    assert_eq!(lags, json!(["0", "0", "0", "0"]), "every read model caught up with the log");
    driver.screenshot("explorer-read-model.png").await;
    let _ = driver.call(reqwest::Method::DELETE, "", Value::Null).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_runs_a_mutation_and_a_query() {
    let assets = workspace_target().join("graphiql-assets");
    assert!(assets.join("graphiql.min.js").exists(), "run scripts/fetch-graphiql target/graphiql-assets first");
    let runtime = reventless::local::start_in_memory(vec![catalog::standalone()]).unwrap();
    let schema = reventless::graphql::build_schema(&runtime).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = format!("http://{}", listener.local_addr().unwrap());
    let options = reventless::local::server::ServerOptions { graphiql_assets: Some(assets) };
    tokio::spawn(reventless::local::server::serve(runtime.clone(), schema, options, listener, std::future::pending()));

    let driver = Driver::start().await;
    // The caller (a merchandiser) through GraphiQL's headers.
    let headers = "%7B%22x-user-id%22%3A%22merch%22%2C%22x-user-roles%22%3A%22Merchandiser%22%7D";
    driver.call(reqwest::Method::POST, "/url", json!({"url": format!("{server}/?headers={headers}")})).await;
    driver.wait_for("GraphiQL", "return !!document.querySelector('.graphiql-query-editor .CodeMirror');").await;

    let mutation = r#"mutation { Catalog_AddCategory(categoryId: "books", name: "Books") { status entityId } }"#;
    let shown = driver.run_in_graphiql(mutation, "ACCEPTED").await;
    assert!(shown.contains("\"entityId\": \"books\""), "{shown}");
    runtime.wait_for_projections().await.unwrap();
    let shown =
        driver.run_in_graphiql("{ Catalog_Categories { totalCount edges { node { id name } } } }", "Books").await;
    assert!(shown.contains("\"totalCount\": 1"), "{shown}");

    let screenshot = driver.call(reqwest::Method::GET, "/screenshot", Value::Null).await;
    let encoded = screenshot.as_str().unwrap_or_else(|| panic!("no screenshot: {screenshot}"));
    let png = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
    let dir = workspace_target().join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("graphiql.png"), &png).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let _ = driver.call(reqwest::Method::DELETE, "", Value::Null).await;
}
