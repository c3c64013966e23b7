//! The store contract suite on PostgreSQL — every store of
//! `postgres_stores`: event log, query store, command topic and the
//! LISTEN/NOTIFY bus. One database per test binary on the shared throwaway
//! cluster (the cases use log and table names of their own), a fresh pool
//! per case (each case runs on a runtime of its own).
use std::sync::OnceLock;

use reventless_core::Stores;
use reventless_postgres::testing::shared_cluster;
use reventless_postgres::{PgDatabase, PgOptions, postgres_stores};

fn database_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| shared_cluster().fresh_database().expect("a fresh database"))
}

/// The stores of one case (the one place they are built).
async fn stores() -> Stores {
    let db = PgDatabase::connect(database_url(), PgOptions::default()).await.expect("connects");
    postgres_stores(&db).await.expect("the bus listens")
}

reventless_core::store_contract_tests!(stores().await, gapless);
