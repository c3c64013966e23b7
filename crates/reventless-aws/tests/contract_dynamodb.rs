//! The store contract on DynamoDB + SQS FIFO, against the emulator (moto).
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use reventless_aws::emulator::Emulator;
use reventless_aws::{StoreNames, aws_stores, provision};
use reventless_core::store::Stores;

/// Fresh tables and queues for one case.
async fn stores() -> Stores {
    let emulator = Emulator::shared().expect("the AWS emulator (moto) must run for these tests");
    let config = emulator.sdk_config().await;
    let names = StoreNames::unique("contract");
    let topics = ["contract_fifo", "contract_release", "contract_dedup", "contract_visibility", "contract_wait"];
    provision::create_stores(&config, &names, &topics).await.unwrap();
    aws_stores(&config, &names)
}

reventless_core::store_contract_tests!(stores().await);
