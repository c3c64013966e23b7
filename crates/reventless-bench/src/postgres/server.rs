//! What the server did per command during a phase: write transactions
//! (transaction ids assigned: 1 per command for raw autocommit inserts,
//! fewer when commits are grouped) and WAL bytes. Both are read at an
//! instant (the next transaction id, the WAL insert position), unlike the
//! cumulative statistics views, which backends flush only now and then.
//! With a server on this machine, also CPU time per command on each side.
use super::Measured;

/// A connection of its own that reads the two counters.
pub struct ServerProbe {
    client: tokio_postgres::Client,
    /// The server's postmaster when it runs on this machine (its CPU time is readable).
    postmaster: Option<u32>,
    micros_per_tick: f64,
}

/// The counters at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Counters {
    next_xid: i64,
    wal_bytes: i64,
    client_ticks: Option<u64>,
    server_ticks: Option<u64>,
}

const READ: &str = "SELECT txid_snapshot_xmax(txid_current_snapshot())::bigint, \
                    (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint";

impl ServerProbe {
    pub async fn connect(url: &str) -> Result<Self, String> {
        let (client, connection) =
            tokio_postgres::connect(url, tokio_postgres::NoTls).await.map_err(|e| format!("server probe: {e}"))?;
        tokio::spawn(connection);
        let backend: i32 =
            client.query_one("SELECT pg_backend_pid()", &[]).await.map_err(|e| format!("server probe: {e}"))?.get(0);
        // Only a server on loopback can be this machine's process of that number.
        let local = url.contains("@127.0.0.1") || url.contains("@localhost") || url.contains("@[::1]");
        let postmaster = if local { super::cpu::postmaster_of(backend) } else { None };
        Ok(Self { client, postmaster, micros_per_tick: super::cpu::micros_per_tick() })
    }

    pub async fn read(&self) -> Result<Counters, String> {
        let row = self.client.query_one(READ, &[]).await.map_err(|e| format!("server probe: {e}"))?;
        Ok(Counters {
            next_xid: row.get(0),
            wal_bytes: row.get(1),
            client_ticks: super::cpu::client_ticks(),
            server_ticks: self.postmaster.and_then(super::cpu::server_ticks),
        })
    }

    /// `measured` with the server's work between `before` and now, per command.
    pub async fn attribute(&self, before: Counters, measured: Measured) -> Result<Measured, String> {
        let after = self.read().await?;
        let per_command =
            |delta: i64| if measured.commands == 0 { 0.0 } else { delta as f64 / measured.commands as f64 };
        let cpu = |before: Option<u64>, after: Option<u64>| match (before, after) {
            (Some(before), Some(after)) => {
                Some(per_command(i64::try_from(after.saturating_sub(before)).unwrap_or(0)) * self.micros_per_tick)
            }
            _ => None,
        };
        Ok(Measured {
            xacts_per_command: per_command(after.next_xid - before.next_xid),
            wal_bytes_per_command: per_command(after.wal_bytes - before.wal_bytes),
            client_cpu_us: cpu(before.client_ticks, after.client_ticks),
            server_cpu_us: cpu(before.server_ticks, after.server_ticks),
            ..measured
        })
    }
}
