//! Plugins' query tables and checkpoints on PostgreSQL.
use crate::PgDatabase;

/// Query tables and checkpoints in one database.
#[derive(Clone, Debug)]
pub struct PgQueryStore {
    db: PgDatabase,
}

impl PgQueryStore {
    pub fn new(db: PgDatabase) -> Self {
        Self { db }
    }
}
