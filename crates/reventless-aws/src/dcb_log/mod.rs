//! DCB event logs on AWS.
mod dynamodb;

pub use dynamodb::DynamoDcbLog;
