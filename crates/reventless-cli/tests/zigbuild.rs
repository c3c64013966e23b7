//! A deploy that has to build without cargo-zigbuild installed says what to
//! install (and how to skip the build) before building anything.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::process::Command;

#[test]
fn a_deploy_without_cargo_zigbuild_says_what_to_install_and_how_to_skip_the_build() {
    let project = tempfile::tempdir().unwrap();
    let file = "project = \"shop\"\n[plugins.catalog]\nname = \"Catalog\"\n[stages.dev]\n";
    std::fs::write(project.path().join("reventless.toml"), file).unwrap();
    // A PATH and a cargo home without cargo-zigbuild; `CARGO` (set by the
    // test harness) still names a working cargo, as in a real shell.
    let empty = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_reventless"))
        .args(["deploy", "--stage", "dev", "--yes"])
        .current_dir(project.path())
        .env("PATH", empty.path())
        .env("CARGO_HOME", empty.path())
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in ["cargo-zigbuild", "pip install ziglang", "cargo install cargo-zigbuild", "--bootstrap-dir"] {
        assert!(stderr.contains(expected), "`{expected}` missing from: {stderr}");
    }
    assert!(!stderr.contains("no such command"), "refused before cargo runs: {stderr}");
    assert!(!stderr.contains("building catalog-lambda"), "nothing was built: {stderr}");
}

#[test]
fn cargo_zigbuild_is_found_where_cargo_looks_for_subcommands() {
    use reventless_aws::deploy::inputs::find_zigbuild;
    let home = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let path = std::env::join_paths([elsewhere.path()]).unwrap();
    assert_eq!(find_zigbuild(Some(&path), Some(home.path())), None);
    let install = |dir: &std::path::Path, mode: u32| {
        let binary = dir.join(format!("cargo-zigbuild{}", std::env::consts::EXE_SUFFIX));
        std::fs::write(&binary, "#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        std::fs::set_permissions(&binary, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
        binary
    };
    #[cfg(unix)]
    {
        install(elsewhere.path(), 0o644);
        assert_eq!(find_zigbuild(Some(&path), Some(home.path())), None, "not executable");
    }
    let on_path = install(elsewhere.path(), 0o755);
    assert_eq!(find_zigbuild(Some(&path), Some(home.path())), Some(on_path));
    std::fs::create_dir(home.path().join("bin")).unwrap();
    let in_home = install(&home.path().join("bin"), 0o755);
    assert_eq!(find_zigbuild(Some(&path), Some(home.path())), Some(in_home), "cargo's own bin first");
}
