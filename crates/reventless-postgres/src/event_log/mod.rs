//! Plugins' event logs on PostgreSQL.
use crate::PgDatabase;

/// Plugins' event logs in one database.
#[derive(Clone, Debug)]
pub struct PgEventLog {
    db: PgDatabase,
}

impl PgEventLog {
    pub fn new(db: PgDatabase) -> Self {
        Self { db }
    }
}
