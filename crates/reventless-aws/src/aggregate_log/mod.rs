//! Aggregate event logs on AWS.
mod dynamodb;

pub use dynamodb::DynamoAggregateLog;
