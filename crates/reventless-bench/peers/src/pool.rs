//! A sqlx pool whose connections work in a schema of their own, so that
//! each peer's tables (`events`, `event`) stand beside reventless's without
//! touching them.
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

/// Creates `schema` when missing and opens a pool of `size` connections whose
/// `search_path` is that schema.
pub async fn in_schema(url: &str, schema: &str, size: u32) -> Result<PgPool, String> {
    let options = PgConnectOptions::from_str(url).map_err(|e| format!("invalid PostgreSQL URL: {e}"))?;
    let setup = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await
        .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .execute(&setup)
        .await
        .map_err(|e| format!("creating schema {schema}: {e}"))?;
    setup.close().await;
    PgPoolOptions::new()
        .max_connections(size.max(1))
        .connect_with(options.options([("search_path", schema)]))
        .await
        .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))
}
