//! Command topics on AWS.
mod sqs;

pub use sqs::{SqsCommandTopic, fifo_id, queue_name};
