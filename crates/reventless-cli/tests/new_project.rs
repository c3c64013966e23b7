//! `reventless new` as a new user runs it: the project it makes (outside
//! this repository, depending on this checkout's crates by path) passes its
//! own `cargo test` offline, and its app serves GraphQL right away — a
//! mutation is accepted, the query shows the row, the automation settles a
//! leaver's loans. Refusals (a non-empty directory, a bad name, a path
//! without reventless crates) write nothing.
//!
//! The project builds into this workspace's target directory with this
//! workspace's lock file and dev profile, so cargo reuses what was built with
//! the same features (a developer's earlier runs: only `library` and the app
//! compile). After CI's `cargo test --workspace --all-features`, whose
//! feature unification differs (tokio `test-util`, serde `rc`, hyper
//! `client`, …), most of its third-party crates compile once for it. The app
//! under test is the binary its `cargo test` built (no second build without
//! the `testing` feature).
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use reventless_aws::deploy::config::ProjectConfig;
use serde_json::{Value, json};

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn reventless(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reventless")).args(args).output().unwrap()
}

/// This workspace's target directory (tests run from target/<profile>/deps).
fn target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().to_path_buf()
}

/// `cargo <args>` in the project, offline, building into this workspace's target directory.
fn cargo(project: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO"))
        .args(args)
        .arg("--offline")
        .current_dir(project)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .unwrap()
}

/// The generated app's `dev` server, stopped when dropped.
struct Dev {
    child: Child,
    base: String,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dev {
    fn start(binary: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(binary)
            .args(["dev", "--listen", &listen, "--memory"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut dev = Dev { child, base: listen };
        let deadline = Instant::now() + Duration::from_secs(30);
        while dev.get("/health").is_none() {
            assert!(dev.child.try_wait().unwrap().is_none(), "the app's dev server exited");
            assert!(Instant::now() < deadline, "the app's dev server did not answer on {}", dev.base);
            std::thread::sleep(Duration::from_millis(50));
        }
        dev
    }

    /// One HTTP/1.1 exchange (the connection closed after it): status and body.
    fn exchange(&self, request: &str) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect(&self.base).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        stream.write_all(request.as_bytes()).ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        let status = answer.split(' ').nth(1)?.parse().ok()?;
        let body = answer.split_once("\r\n\r\n")?.1.to_string();
        Some((status, body))
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        self.exchange(&format!("GET {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n", self.base))
    }

    fn graphql(&self, query: &str) -> Value {
        let body = json!({ "query": query }).to_string();
        let request = format!(
            "POST /graphql HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            self.base,
            body.len()
        );
        let (status, body) = self.exchange(&request).unwrap_or_else(|| panic!("no answer to {query}"));
        assert_eq!(status, 200, "{query}: {body}");
        let answer: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{query}: {e}: {body}"));
        assert!(answer["errors"].is_null(), "{query}: {answer}");
        answer["data"].clone()
    }
}

#[test]
fn refusals_name_the_problem_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let taken = dir.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("notes.txt"), "mine").unwrap();
    let refused = reventless(&["new", taken.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("exists and is not empty"), "{stderr}");
    assert_eq!(std::fs::read_dir(&taken).unwrap().count(), 1, "nothing written into it");

    for (name, why) in [("2fast", "must start with an ASCII letter"), ("my app", "is not allowed"), ("fn", "keyword")] {
        let refused = reventless(&["new", dir.path().join(name).to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains("not a valid package name") && stderr.contains(why), "{name}: {stderr}");
        assert!(!dir.path().join(name).exists(), "{name}");
    }

    let refused = reventless(&["new", dir.path().join("..").to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(refused.status.code() == Some(1) && stderr.contains("name the directory to create"), "{stderr}");

    let nowhere = dir.path().join("nowhere");
    let refused = reventless(&["new", nowhere.to_str().unwrap(), "--reventless-path", dir.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no reventless crates there"), "{stderr}");
    assert!(!nowhere.exists());
}

#[test]
fn a_new_project_passes_its_tests_and_serves_graphql_right_away() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("my-library");
    let made = reventless(&["new", project.to_str().unwrap(), "--reventless-path", WORKSPACE, "--json"]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let created: Value = serde_json::from_slice(&made.stdout).unwrap();
    assert_eq!(created["name"], "my-library");
    let crates = Path::new(WORKSPACE).join("crates").canonicalize().unwrap();
    assert_eq!(created["reventless"]["path"], crates.display().to_string(), "{created}");
    let files: Vec<&str> = created["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    for file in ["Cargo.toml", "reventless.toml", "README.md", ".gitignore", "src/main.rs", "library/tests/rules.rs"] {
        assert!(files.contains(&file) && project.join(file).is_file(), "{file} in {files:?}");
    }
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    let by_path =
        format!("reventless = {{ path = \"{}\", default-features = false }}", crates.join("reventless").display());
    assert!(manifest.contains(&by_path), "{manifest}");
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    assert!(readme.contains("cargo run -- dev") && readme.contains("cargo test") && !readme.contains("{{"), "{readme}");
    let ignored = std::fs::read_to_string(project.join(".gitignore")).unwrap();
    assert!(ignored.lines().any(|l| l == "/target") && ignored.lines().any(|l| l == "/.reventless"), "{ignored}");

    // Its project file is one the deployer reads, for each stage.
    for stage in ["dev", "emulate", "prod"] {
        let config = ProjectConfig::load(&project.join("reventless.toml"), stage).unwrap();
        assert_eq!(config.project, "my-library");
        assert_eq!(config.plugins["library"].bin.as_deref(), Some("library-lambda"));
        assert_eq!(config.platform.bin.as_deref(), Some("platform-gateway"));
    }

    // This workspace's lock (offline: every version is in the cache) and,
    // only so that builds are reused, its dev profile's optimized package in the project's graph.
    std::fs::copy(Path::new(WORKSPACE).join("Cargo.lock"), project.join("Cargo.lock")).unwrap();
    let reuse = "[profile.dev.package.sha2]\nopt-level = 3\n";
    std::fs::write(project.join("Cargo.toml"), format!("{manifest}{reuse}")).unwrap();
    eprintln!("generated: {:?}", started.elapsed());

    let tested = cargo(&project, &["test"]);
    let stdout = String::from_utf8_lossy(&tested.stdout);
    let stderr = String::from_utf8_lossy(&tested.stderr);
    let compiled: Vec<&str> =
        stderr.lines().filter_map(|l| l.trim().strip_prefix("Compiling ")?.split(' ').next()).collect();
    let finished = stderr.lines().find(|l| l.trim().starts_with("Finished")).unwrap_or_default().trim();
    eprintln!("its cargo test: {:?} ({finished}; compiled {}: {compiled:?})", started.elapsed(), compiled.len());
    assert!(tested.status.success(), "{stdout}\n{stderr}");
    for test in [
        "an_active_member_borrows_a_book_on_the_shelf",
        "a_member_holds_at_most_the_loan_limit",
        "the_books_read_model_shows_the_borrower_and_counts_loans",
        "a_leaver_becomes_a_to_do_item_until_their_loans_are_settled",
        "the_first_day_script_lends_and_returns_books",
    ] {
        assert!(stdout.contains(&format!("test {test} ... ok")), "{test}: {stdout}");
    }

    // The Lambda bootstraps' graph (what `deploy` builds): the plugin
    // without the embedded platform, so no SQLite and no local server.
    let tree = cargo(&project, &["tree", "-p", "library-lambda", "-e", "normal", "--prefix", "none"]);
    assert!(tree.status.success(), "{}", String::from_utf8_lossy(&tree.stderr));
    let tree = String::from_utf8_lossy(&tree.stdout);
    assert!(tree.lines().any(|l| l.starts_with("reventless-aws ")), "{tree}");
    for absent in ["rusqlite ", "libsqlite3-sys ", "reventless-local ", "reventless-postgres "] {
        assert!(!tree.lines().any(|l| l.starts_with(absent)), "library-lambda links {absent}: {tree}");
    }

    // The app `cargo test` built (for its own test of the binary).
    let dev = Dev::start(&target_dir().join("debug").join("my-library"));
    eprintln!("dev serving: {:?}", started.elapsed());
    let joined = dev.graphql(r#"mutation { Library_Member_Join(id: "ada", name: "Ada") { status errorCode } }"#);
    assert_eq!(joined["Library_Member_Join"]["status"], "ACCEPTED", "{joined}");
    let lent = dev.graphql(r#"mutation { Library_LendBook(bookId: "dune", memberId: "ada") { status errorCode } }"#);
    assert_eq!(lent["Library_LendBook"]["status"], "ACCEPTED", "{lent}");
    let again = dev.graphql(r#"mutation { Library_LendBook(bookId: "dune", memberId: "ada") { status errorCode } }"#);
    assert_eq!(again["Library_LendBook"]["errorCode"], "BookOnLoan", "{again}");
    let book = |borrower: Value| {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let data = dev.graphql(r#"{ Library_Books(first: 10) { edges { node { id borrower timesLent } } } }"#);
            let expected = json!([{ "node": { "id": "dune", "borrower": borrower, "timesLent": 1 } }]);
            if data["Library_Books"]["edges"] == expected {
                return;
            }
            assert!(Instant::now() < deadline, "Library_Books never showed {expected}: {data}");
            std::thread::sleep(Duration::from_millis(25));
        }
    };
    book(json!("ada"));
    // Leaving: the automation returns the book the member still held.
    let left = dev.graphql(r#"mutation { Library_Member_Leave(id: "ada") { status errorCode } }"#);
    assert_eq!(left["Library_Member_Leave"]["status"], "ACCEPTED", "{left}");
    book(Value::Null);
    eprintln!("new_project: {:?}", started.elapsed());
}

#[test]
fn new_is_in_the_help_with_its_options() {
    let help = String::from_utf8_lossy(&reventless(&["--help"]).stdout).to_string();
    assert!(help.lines().any(|l| l.trim_start().starts_with("new ")), "{help}");
    let help = String::from_utf8_lossy(&reventless(&["new", "--help"]).stdout).to_string();
    assert!(help.contains("--reventless-path <DIR>") && help.contains("--json"), "{help}");
}
