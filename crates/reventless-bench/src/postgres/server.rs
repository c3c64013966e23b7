//! What the server did per command during a phase: write transactions
//! (transaction ids assigned: 1 per command for raw autocommit inserts,
//! fewer when commits are grouped) and WAL bytes. Both are read at an
//! instant (the next transaction id, the WAL insert position), unlike the
//! cumulative statistics views, which backends flush only now and then.
use super::Measured;

/// A connection of its own that reads the two counters.
pub struct ServerProbe {
    client: tokio_postgres::Client,
}

/// The counters at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Counters {
    next_xid: i64,
    wal_bytes: i64,
}

const READ: &str = "SELECT txid_snapshot_xmax(txid_current_snapshot())::bigint, \
                    (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint";

impl ServerProbe {
    pub async fn connect(url: &str) -> Result<Self, String> {
        let (client, connection) =
            tokio_postgres::connect(url, tokio_postgres::NoTls).await.map_err(|e| format!("server probe: {e}"))?;
        tokio::spawn(connection);
        Ok(Self { client })
    }

    pub async fn read(&self) -> Result<Counters, String> {
        let row = self.client.query_one(READ, &[]).await.map_err(|e| format!("server probe: {e}"))?;
        Ok(Counters { next_xid: row.get(0), wal_bytes: row.get(1) })
    }

    /// `measured` with the server's work between `before` and now, per command.
    pub async fn attribute(&self, before: Counters, measured: Measured) -> Result<Measured, String> {
        let after = self.read().await?;
        let per_command =
            |delta: i64| if measured.commands == 0 { 0.0 } else { delta as f64 / measured.commands as f64 };
        Ok(Measured {
            xacts_per_command: per_command(after.next_xid - before.next_xid),
            wal_bytes_per_command: per_command(after.wal_bytes - before.wal_bytes),
            ..measured
        })
    }
}
