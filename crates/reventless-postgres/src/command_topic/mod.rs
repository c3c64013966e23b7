//! Durable FIFO command topics on PostgreSQL.
use crate::PgDatabase;

/// Command topics in one database.
#[derive(Clone, Debug)]
pub struct PgCommandTopic {
    db: PgDatabase,
}

impl PgCommandTopic {
    pub fn new(db: PgDatabase) -> Self {
        Self { db }
    }
}
