//! The store contract suite on PostgreSQL: one database per test binary on
//! the shared throwaway cluster (the cases use log and table names of their
//! own), a fresh pool per case (each case runs on a runtime of its own).
use std::sync::{Arc, OnceLock};

use reventless_core::Stores;
use reventless_postgres::event_log::PgEventLog;
use reventless_postgres::testing::shared_cluster;
use reventless_postgres::{PgDatabase, PgOptions};

fn database_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| shared_cluster().fresh_database().expect("a fresh database"))
}

/// The stores of one case (the one place they are built).
async fn stores() -> Stores {
    let db = PgDatabase::connect(database_url(), PgOptions::default()).await.expect("connects");
    Stores {
        events: Arc::new(PgEventLog::new(db.clone())),
        queries: Arc::new(reventless_postgres::query_store::PgQueryStore::new(db.clone())),
        commands: Arc::new(reventless_postgres::command_topic::PgCommandTopic::new(db.clone())),
        // The bus and anything else: in process.
        ..reventless_local::memory_stores()
    }
}

reventless_core::store_contract_tests!(stores().await, gapless);
