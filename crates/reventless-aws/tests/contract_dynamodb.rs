//! The store contract on DynamoDB + SQS FIFO, against the emulator (moto).
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use reventless_aws::emulator::Emulator;
use reventless_aws::{StoreNames, aws_stores, provision};
use reventless_core::store::Stores;

/// Fresh tables and queues for one case (queues are made on demand by name).
async fn stores() -> Stores {
    let emulator = Emulator::shared().expect("the AWS emulator (moto) must run for these tests");
    let config = emulator.sdk_config().await;
    let unique = uuid::Uuid::now_v7().simple().to_string();
    let names = StoreNames {
        events_table: format!("events-{unique}"),
        rows_table: format!("rows-{unique}"),
        queue_prefix: format!("q{}-", &unique[20..]),
    };
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    provision::create_events_table(&dynamodb, &names.events_table).await.unwrap();
    provision::create_rows_table(&dynamodb, &names.rows_table).await.unwrap();
    let sqs = aws_sdk_sqs::Client::new(&config);
    for topic in ["contract_fifo", "contract_release", "contract_dedup", "contract_visibility", "contract_wait"] {
        let name = reventless_aws::command_topic::queue_name(&names.queue_prefix, topic);
        provision::create_fifo_queue(&sqs, &name).await.unwrap();
    }
    aws_stores(&config, &names)
}

reventless_core::store_contract_tests!(stores().await);
