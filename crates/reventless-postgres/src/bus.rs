//! Commit notices across processes: NOTIFY on append, LISTEN in every process.
