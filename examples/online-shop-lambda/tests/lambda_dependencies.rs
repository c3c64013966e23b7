//! What the shop's Lambda binaries link: the plugins without the embedded
//! platform (no SQLite, no local HTTP server, no PostgreSQL driver), read from
//! the dependency graph cargo builds them with (`deploy` builds this package's
//! binaries alone, so the features of other members do not reach them).
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::process::Command;

/// The packages of `package`'s normal dependency graph, one per line (`name vX.Y.Z`).
fn normal_dependencies(package: &str) -> Vec<String> {
    let workspace = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let output = Command::new(env!("CARGO"))
        .current_dir(workspace)
        .args(["tree", "--locked", "--offline", "-p", package, "-e", "normal", "--prefix", "none"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).lines().map(str::to_string).collect()
}

fn has(tree: &[String], package: &str) -> bool {
    tree.iter().any(|line| line.split(' ').next() == Some(package))
}

#[test]
fn the_lambda_binaries_link_neither_sqlite_nor_the_local_server() {
    let tree = normal_dependencies("online-shop-lambda");
    assert!(has(&tree, "online-shop") && has(&tree, "reventless-aws") && has(&tree, "reventless"), "{tree:?}");
    for absent in ["rusqlite", "libsqlite3-sys", "reventless-local", "reventless-postgres", "tokio-postgres", "clap"] {
        assert!(!has(&tree, absent), "the Lambda binaries link {absent}: {tree:?}");
    }
}

#[test]
fn the_shop_app_keeps_its_embedded_platform() {
    // The contrast: the same plugins as the app (`online-shop dev`) do link it.
    let tree = normal_dependencies("online-shop");
    for present in ["rusqlite", "reventless-local", "reventless-postgres"] {
        assert!(has(&tree, present), "the app lost {present}: {tree:?}");
    }
}
