//! reventless on AWS serverless: the runtime half.
//!
//! - Stores: each plugin's event log (aggregate streams and DCB events in
//!   one log) and query tables on DynamoDB ([`event_log`], [`query_store`]),
//!   command topics on
//!   SQS FIFO ([`command_topic`]); [`aws_stores`] wires them.
//! - [`emulator`]: moto on loopback for tests; [`provision`]: the table and
//!   queue shapes the adapters expect.
pub mod command_topic;
#[cfg(feature = "deploy")]
pub mod deploy;
pub(crate) mod dynamo;
pub mod emulator;
pub mod event_log;
pub mod gateway;
pub mod lambda;
pub mod package;
pub mod provision;
pub mod query_store;
pub mod runtime_api;
pub mod secrets;

use std::sync::Arc;

use reventless_core::store::{InProcessBus, Stores};

pub use aws_config::SdkConfig;
pub use dynamo::{Item, decode_event};

/// `name` kept within `max` characters: a longer one keeps its start and
/// ends with a hash of the whole, so two long names stay distinct.
pub fn shorten(name: &str, max: usize) -> String {
    use sha2::Digest;
    if name.len() <= max {
        return name.to_string();
    }
    let hash: String = sha2::Sha256::digest(name.as_bytes()).iter().take(4).map(|b| format!("{b:02x}")).collect();
    let keep = max.saturating_sub(hash.len() + 1);
    let cut = (0..=keep).rev().find(|&i| name.is_char_boundary(i)).unwrap_or(0);
    format!("{}-{hash}", &name[..cut])
}

/// Where a plugin's data lives on AWS.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoreNames {
    /// The events table (aggregate streams and DCB logs).
    pub events_table: String,
    /// The read-model rows table (rows, todo lists, checkpoints).
    pub rows_table: String,
    /// Command topics are the FIFO queues `<queue_prefix><topic>.fifo`.
    pub queue_prefix: String,
}

impl StoreNames {
    /// Names no other test or run uses (`<label>-events-<uuid>`, …).
    pub fn unique(label: &str) -> Self {
        let unique = uuid::Uuid::now_v7().simple().to_string();
        Self {
            events_table: format!("{label}-events-{unique}"),
            rows_table: format!("{label}-rows-{unique}"),
            queue_prefix: format!("q{}-", &unique[20..]),
        }
    }
}

/// The stores of a plugin on AWS (SDK clients are cheap to clone and shared).
pub fn aws_stores(config: &aws_config::SdkConfig, names: &StoreNames) -> Stores {
    aws_stores_with(config, names, QueueDirectory::default(), Default::default())
}

/// What a function knows of queues beyond `<queue_prefix><topic>.fifo`.
#[derive(Debug, Clone, Default)]
pub struct QueueDirectory {
    /// Queue URLs known in advance, by topic (saves a lookup).
    pub urls: std::collections::BTreeMap<String, String>,
    /// Queues of other stacks, by topic: topic → queue name.
    pub names: std::collections::BTreeMap<String, String>,
}

/// As [`aws_stores`], with what is known of the queues and the read models'
/// declared indexes (`table → fields`, from the manifests).
pub fn aws_stores_with(
    config: &aws_config::SdkConfig,
    names: &StoreNames,
    queues: QueueDirectory,
    indexes: std::collections::BTreeMap<String, Vec<String>>,
) -> Stores {
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let sqs = aws_sdk_sqs::Client::new(config);
    let commands =
        command_topic::SqsCommandTopic::new(sqs, &names.queue_prefix).knowing(queues.urls).naming(queues.names);
    Stores {
        events: Arc::new(event_log::DynamoEventLog::new(dynamodb.clone(), &names.events_table)),
        queries: Arc::new(query_store::DynamoQueryStore::new(dynamodb, &names.rows_table).with_indexes(indexes)),
        commands: Arc::new(commands),
        bus: Arc::new(InProcessBus::default()),
        leases: Arc::new(reventless_core::store::InProcessLeases::default()),
    }
}
