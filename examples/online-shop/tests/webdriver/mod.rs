//! Headless Chromium through chromedriver (WebDriver over HTTP), for the
//! tests that look at a page as a person would. Screenshots go to
//! `target/browser/`.
//!
//! Needs Debian's `chromium` and `chromium-driver`; `scripts/test` installs them.
#![allow(dead_code)] // each test binary uses part of it
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

pub fn workspace_target() -> PathBuf {
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

pub struct Driver {
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
    pub async fn start() -> Driver {
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

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.client.request(method, url);
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        response.json::<Value>().await.unwrap()["value"].take()
    }

    pub async fn script(&self, script: &str, args: Value) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", json!({"script": script, "args": args})).await
    }

    /// Polls `script` until it returns a truthy value; returns it.
    pub async fn wait_for(&self, what: &str, script: &str) -> Value {
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

    /// Saves what the page shows as `target/browser/<name>`.
    pub async fn screenshot(&self, name: &str) {
        let screenshot = self.call(reqwest::Method::GET, "/screenshot", Value::Null).await;
        let encoded = screenshot.as_str().unwrap_or_else(|| panic!("no screenshot: {screenshot}"));
        let png = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        let dir = workspace_target().join("browser");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), &png).unwrap();
    }
}
