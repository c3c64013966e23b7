//! Lambda zips are reproducible and hold a runnable `bootstrap`.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::io::Read;
use std::time::Duration;

use reventless_aws::package::zip_bootstrap;
use reventless_aws::runtime_api::RuntimeApi;
use serde_json::json;

const ECHO: &str = env!("CARGO_BIN_EXE_echo-lambda");

#[test]
fn the_same_binary_gives_the_same_zip_whatever_its_file_times() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("echo");
    let binary = std::fs::read(ECHO).unwrap();
    std::fs::write(&copy, &binary).unwrap();
    let config = vec![("reventless.json".to_string(), b"{}".to_vec())];
    let first = zip_bootstrap(&copy, &config, &dir.path().join("a/function.zip")).unwrap();
    std::thread::sleep(Duration::from_millis(1100)); // zip times have 2 s resolution: cross a boundary
    std::fs::write(&copy, &binary).unwrap();
    let second = zip_bootstrap(&copy, &config, &dir.path().join("b/function.zip")).unwrap();
    assert_eq!(first.sha256, second.sha256);
    assert_eq!(first.code_sha256.len(), 44, "base64 of 32 bytes");
    assert_eq!(std::fs::read(&first.path).unwrap(), std::fs::read(&second.path).unwrap());

    let mut archive = zip::ZipArchive::new(std::fs::File::open(&first.path).unwrap()).unwrap();
    let names: Vec<String> = archive.file_names().map(str::to_string).collect();
    assert_eq!(names, vec!["bootstrap", "reventless.json"], "sorted entries");
    let bootstrap = archive.by_name("bootstrap").unwrap();
    assert_eq!(bootstrap.unix_mode().map(|m| m & 0o777), Some(0o755));
    assert_eq!(bootstrap.last_modified(), Some(zip::DateTime::default()));

    let other =
        zip_bootstrap(&copy, &[("reventless.json".to_string(), b"{\"x\":1}".to_vec())], &dir.path().join("c.zip"));
    assert_ne!(other.unwrap().sha256, first.sha256, "different content, different hash");
}

#[tokio::test]
async fn the_zipped_bootstrap_runs_under_the_runtime_api() {
    let dir = tempfile::tempdir().unwrap();
    let package = zip_bootstrap(std::path::Path::new(ECHO), &[], &dir.path().join("function.zip")).unwrap();
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&package.path).unwrap()).unwrap();
    let mut bytes = Vec::new();
    archive.by_name("bootstrap").unwrap().read_to_end(&mut bytes).unwrap();
    let bootstrap = dir.path().join("task/bootstrap");
    std::fs::create_dir_all(bootstrap.parent().unwrap()).unwrap();
    std::fs::write(&bootstrap, bytes).unwrap();
    let mut permissions = std::fs::metadata(&bootstrap).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&bootstrap, permissions).unwrap();

    let api = RuntimeApi::start().await.unwrap();
    let _function = api.spawn(&bootstrap, &[]).unwrap();
    let answer = api.invoke(json!({"hello": "lambda"}), Duration::from_secs(30)).await.unwrap();
    assert_eq!(answer, json!({"hello": "lambda"}));
}
