pub mod memory;
pub mod sqlite;
pub(crate) mod upgrade;
