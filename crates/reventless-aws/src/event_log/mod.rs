//! A plugin's event log: DCB appends and aggregate streams in one log.
mod dynamodb;
pub mod upgrade;

pub use dynamodb::DynamoEventLog;
