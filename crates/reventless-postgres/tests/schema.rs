//! The database's schema version: written on first connect, refused when newer.
use reventless_postgres::testing::shared_cluster;
use reventless_postgres::{OpenError, PgDatabase, PgOptions, SCHEMA_VERSION};

#[tokio::test]
async fn a_fresh_database_gets_the_schema_and_a_newer_one_is_refused() {
    let url = shared_cluster().fresh_database().expect("database");
    let db = PgDatabase::connect(&url, PgOptions::default()).await.expect("connects and migrates");
    let client = db.client().await.expect("client");
    let version: i64 = client.query_one("SELECT version FROM reventless_schema", &[]).await.expect("row").get(0);
    assert_eq!(version, SCHEMA_VERSION);
    // Several processes starting at once: a second connect finds it done.
    PgDatabase::connect(&url, PgOptions::default()).await.expect("connects again");

    client.execute("UPDATE reventless_schema SET version = version + 1", &[]).await.expect("bump");
    match PgDatabase::connect(&url, PgOptions::default()).await {
        Err(OpenError::NewerSchema { found, supported, .. }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("a newer schema must be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_server_is_a_connect_error_naming_it() {
    let error = PgDatabase::connect("postgres://postgres@127.0.0.1:1/none", PgOptions::default())
        .await
        .expect_err("nothing listens on port 1");
    assert!(matches!(error, OpenError::Connect { .. }), "{error:?}");
    assert!(error.to_string().contains("127.0.0.1:1/none"), "{error}");
    let error = PgDatabase::connect("not a url", PgOptions::default()).await.expect_err("bad url");
    assert!(matches!(error, OpenError::Url(_)), "{error:?}");
}
