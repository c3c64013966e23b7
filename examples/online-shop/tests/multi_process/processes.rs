//! The shop's `dev` processes of the multi-process test and the GraphQL
//! client that talks to them.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::{Duration, Instant};

use online_shop::ordering::{MAIL_OUTBOX_ENV, TEST_MAIL_API_KEY};
use serde_json::{Value, json};

use super::{Cmd, MERCH, PROCESSES};

/// The shop's processes; all killed when dropped (their logs printed on failure).
pub struct Processes {
    pub children: Vec<Child>,
    pub bases: Vec<String>,
    pub logs: Vec<PathBuf>,
}

impl Processes {
    pub fn spawn(&mut self, url: &str, dir: &Path, outbox: &Path) {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = dir.join(format!("process-{}.log", self.children.len()));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_online-shop"))
            .args(["dev", "--postgres", url, "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(dir)
            .env("REVENTLESS_SECRET_MAIL_API_KEY", TEST_MAIL_API_KEY)
            .env(MAIL_OUTBOX_ENV, outbox)
            .env_remove("REVENTLESS_DATABASE_URL")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        // Killed by a watchdog if this test binary dies without dropping us.
        let watch = format!(
            "while [ -d /proc/{me} ] && [ -d /proc/{child} ]; do sleep 1; done; [ -d /proc/{child} ] && kill -9 {child}",
            me = std::process::id(),
            child = child.id()
        );
        let _ = Command::new("sh").args(["-c", &watch]).stdin(Stdio::null()).spawn();
        self.children.push(child);
        self.bases.push(format!("http://127.0.0.1:{port}"));
        self.logs.push(log);
    }

    pub async fn wait_healthy(&mut self, client: &reqwest::Client, index: usize) {
        let started = Instant::now();
        loop {
            if let Ok(answer) = client.get(format!("{}/health", self.bases[index])).send().await
                && answer.status().is_success()
            {
                return;
            }
            if let Some(status) = self.children[index].try_wait().unwrap() {
                panic!("process {index} exited with {status} before serving");
            }
            assert!(started.elapsed() < Duration::from_secs(30), "process {index} did not serve within 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The followers process `index` runs, by its log: `running this
    /// follower in this process … lease=<name>`, less those it logged as lost.
    pub fn followers(&self, index: usize) -> BTreeSet<String> {
        let text = std::fs::read_to_string(&self.logs[index]).unwrap_or_default();
        let mut running = BTreeSet::new();
        for line in text.lines() {
            let Some(lease) = line.split_whitespace().find_map(|word| word.strip_prefix("lease=")) else { continue };
            let lease = lease.trim_matches('"').to_string();
            if line.contains("running this follower in this process") {
                running.insert(lease);
            } else if line.contains("lease lost") {
                running.remove(&lease);
            }
        }
        running
    }

    pub fn index_of(&self, pid: u32) -> Option<usize> {
        self.children.iter().position(|child| child.id() == pid)
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            for (index, log) in self.logs.iter().enumerate() {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                eprintln!("--- process {index}, last lines of {}:", log.display());
                tail.iter().rev().for_each(|line| eprintln!("{line}"));
            }
        }
    }
}

/// What a command answered: a `CommandOutcome`, no answer (the process died
/// or the connection broke: unknown whether it took effect), or an error.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Accepted { events: u64, position: Option<u64> },
    Rejected(String),
    Unknown(String),
    Failed(String),
}

#[derive(Clone)]
pub struct Api {
    pub client: reqwest::Client,
    pub bases: Arc<Vec<String>>,
    pub alive: Arc<Vec<AtomicBool>>,
}

impl Api {
    pub async fn gql(&self, process: usize, (user, roles): (&str, &str), query: &str) -> Result<Value, String> {
        let request = self.client.post(format!("{}/graphql", self.bases[process])).header("x-user-id", user);
        let request = if roles.is_empty() { request } else { request.header("x-user-roles", roles) };
        let answer = request.json(&json!({"query": query})).send().await.map_err(|e| e.to_string())?;
        answer.json::<Value>().await.map_err(|e| e.to_string())
    }

    /// A query that must answer (on a live process).
    pub async fn query(&self, process: usize, query: &str) -> Value {
        let answer = self.gql(process, MERCH, query).await.unwrap();
        assert!(answer["errors"].is_null(), "{query}: {answer}");
        answer["data"].clone()
    }

    pub async fn send(&self, process: usize, cmd: &Cmd) -> Outcome {
        let (field, args, (user, roles)) = cmd.mutation();
        let query = format!("mutation {{ {field}({args}) {{ status eventCount position errorCode }} }}");
        let answer = match self.gql(process, (&user, &roles), &query).await {
            Ok(answer) => answer,
            Err(error) => return Outcome::Unknown(error),
        };
        let outcome = &answer["data"][field];
        match outcome["status"].as_str() {
            Some("ACCEPTED") => Outcome::Accepted {
                events: outcome["eventCount"].as_u64().unwrap_or(0),
                position: outcome["position"].as_u64(),
            },
            Some("REJECTED") => Outcome::Rejected(outcome["errorCode"].as_str().unwrap_or_default().to_string()),
            _ => Outcome::Failed(answer.to_string()),
        }
    }

    /// A live process, chosen round robin by `turn`.
    pub fn pick(&self, turn: usize) -> usize {
        (0..PROCESSES).map(|i| (turn + i) % PROCESSES).find(|&i| self.alive[i].load(SeqCst)).unwrap()
    }

    /// Every row of a table through GraphQL, page by page.
    pub async fn rows(&self, process: usize, table: &str, fields: &str) -> Vec<Value> {
        let mut rows = Vec::new();
        let mut after = Value::Null;
        loop {
            let query = format!(
                "{{ {table}(first: 500, after: {after}) {{ pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {fields} }} }} }} }}"
            );
            let page = self.query(process, &query).await[table].clone();
            rows.extend(page["edges"].as_array().unwrap().iter().map(|edge| edge["node"].clone()));
            if page["pageInfo"]["hasNextPage"] != true {
                return rows;
            }
            after = page["pageInfo"]["endCursor"].clone();
        }
    }
}
