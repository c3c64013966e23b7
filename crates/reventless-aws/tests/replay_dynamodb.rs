//! Replaying a read model on DynamoDB (the emulator): the scenario of the
//! local platform's replay tests, with two runtimes on one stage's tables.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use reventless_aws::emulator::Emulator;
use reventless_aws::{StoreNames, aws_stores, provision};
use reventless_core::store::Stores;

#[path = "../../reventless-local/tests/replay_scenario/mod.rs"]
mod replay_scenario;

async fn fresh_tables(config: &aws_config::SdkConfig, prefix: &str) -> StoreNames {
    let names = StoreNames::unique(prefix);
    provision::create_stores(config, &names, &[]).await.unwrap();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_replay_switches_while_the_live_runtime_serves_and_follows() {
    let emulator = Emulator::shared().expect("the AWS emulator (moto) must run for these tests");
    let config = emulator.sdk_config().await;
    let shared = fresh_tables(&config, "replay").await;
    let reference: Stores = aws_stores(&config, &fresh_tables(&config, "replay-fresh").await);
    // Each runtime its own clients and bus on the same tables, as separate functions.
    let stores = || aws_stores(&config, &shared);
    replay_scenario::replay_while_serving(stores, reference, 30, 8).await;
}
