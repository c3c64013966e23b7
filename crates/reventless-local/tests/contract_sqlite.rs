//! The store contract suite on SQLite, file-backed in a temporary directory.
use reventless_local::sqlite::{SqliteDatabase, SqliteOptions};

async fn fresh_sqlite() -> reventless_core::Stores {
    // Kept after the test (under target/) so a failing case can be inspected.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir").keep();
    let db = SqliteDatabase::open(dir.join("contract.db"), SqliteOptions::default()).expect("database opens");
    reventless_local::sqlite_stores(&db)
}

reventless_core::store_contract_tests!(fresh_sqlite().await, gapless);
