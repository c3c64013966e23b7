//! Query tables and checkpoints on AWS.
mod dynamodb;

pub use dynamodb::{DynamoQueryStore, INDEX_SLOTS, ROW_HASH, ROW_RANGE, index_slot};
