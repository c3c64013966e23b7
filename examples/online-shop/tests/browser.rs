//! A person's view: headless Chromium opens GraphiQL on a running server,
//! runs a mutation and a query, and the results show on the page. The
//! screenshot is kept at `target/browser/graphiql.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver` and GraphiQL's files in
//! `target/graphiql-assets` (`scripts/fetch-graphiql`); `scripts/test`
//! installs them.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
mod webdriver;

use online_shop::catalog;
use serde_json::{Value, json};
use webdriver::{Driver, workspace_target};

/// Types `query` into GraphiQL's editor, runs it and returns the response text shown.
async fn run_in_graphiql(driver: &Driver, query: &str, expect: &str) -> String {
    driver
        .script(
            "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(arguments[0]);",
            json!([query]),
        )
        .await;
    driver.script("document.querySelector('.graphiql-execute-button').click();", json!([])).await;
    let shown = driver
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
    let shown = run_in_graphiql(&driver, mutation, "ACCEPTED").await;
    assert!(shown.contains("\"entityId\": \"books\""), "{shown}");
    runtime.wait_for_projections().await.unwrap();
    let shown =
        run_in_graphiql(&driver, "{ Catalog_Categories { totalCount edges { node { id name } } } }", "Books").await;
    assert!(shown.contains("\"totalCount\": 1"), "{shown}");

    driver.screenshot("graphiql.png").await;
    let _ = driver.call(reqwest::Method::DELETE, "", Value::Null).await;
}
