//! Query tables and checkpoints on AWS.
mod dynamodb;

pub use dynamodb::{DynamoQueryStore, ROW_HASH, ROW_RANGE};
