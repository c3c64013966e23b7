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

/// What `reventless replay --stage` does, with the stage's functions invoked in process.
#[cfg(feature = "deploy")]
mod through_the_function {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use reventless_aws::aws_stores;
    use reventless_aws::deploy::replay::{ReplayDriveError, drive};
    use reventless_aws::gateway::PluginApis;
    use reventless_aws::lambda::{FunctionConfig, Handler};
    use reventless_core::{FollowerKind, Runtime, RuntimeOptions};
    use reventless_spec::Capabilities;
    use serde_json::Value;

    use super::replay_scenario::{TABLE, fresh_fold, ledger, ledger_v1, rows, run_commands};

    /// The stage's functions, invoked in process: `read-models` (the
    /// plugin's `AllReadModels`) and `api`. Before each replay step it
    /// reads the rows the API serves.
    struct Functions {
        read_models: Handler,
        api: Handler,
        served: Mutex<Vec<std::collections::BTreeMap<String, Value>>>,
    }

    #[async_trait::async_trait]
    impl PluginApis for Functions {
        async fn call(&self, function: &str, event: Value) -> Result<Value, String> {
            let handler = if function == "api" { &self.api } else { &self.read_models };
            if event["action"] == "step" {
                let seen = rows(self.api.runtime().stores().queries.as_ref(), TABLE).await;
                self.served.lock().unwrap().push(seen);
            }
            handler.handle(event).await.map_err(|e| e.to_string())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_cli_driver_replays_through_the_read_model_function_while_the_api_serves() {
        let emulator = reventless_aws::emulator::Emulator::shared().expect("the AWS emulator (moto) must run");
        let sdk = emulator.sdk_config().await;
        let names = super::fresh_tables(&sdk, "replay-fn").await;
        let old =
            Runtime::on_demand(aws_stores(&sdk, &names), vec![ledger_v1()], Capabilities::new(), Default::default());
        let old = old.unwrap();
        run_commands(&old, 0..40).await;
        assert!(old.catch_up(&["Ledger".into()], &[FollowerKind::Projection], &[]).await.is_empty());
        let stale = rows(old.stores().queries.as_ref(), TABLE).await;

        let handler = |role: &str| {
            let config = FunctionConfig::new(role, "Ledger", names.clone());
            Handler::new(&sdk, &config, ledger(), Capabilities::new()).unwrap()
        };
        let functions = Functions {
            read_models: handler("LedgerAllReadModels"),
            api: handler("LedgerApi"),
            served: Mutex::new(Vec::new()),
        };
        // The API function does not run projections: it refuses.
        let refused = drive(&functions, "api", "Ledger.Totals", Duration::ZERO, |_| {}).await.unwrap_err();
        assert!(
            matches!(&refused, ReplayDriveError::Refused { message, .. } if message.contains("does not run")),
            "{refused}"
        );

        let reports = Arc::new(Mutex::new(Vec::new()));
        let seen = reports.clone();
        let done = drive(&functions, "read-models", "Ledger.Totals", Duration::ZERO, move |p| {
            seen.lock().unwrap().push(p.clone())
        })
        .await
        .unwrap();
        assert!(done.progress.switched && done.progress.position == 40 && done.progress.events == 40, "{done:?}");
        assert_eq!(done.deleted, stale.len() as u64);
        let served = functions.served.lock().unwrap().clone();
        assert!(served.len() >= 2, "a step per slice: {}", served.len());
        assert!(served.iter().all(|rows| *rows == stale), "the API served the old rows until the switch");

        // New events: the read-model function writes them into the new table.
        let commands = Runtime::on_demand(
            aws_stores(&sdk, &names),
            vec![ledger()],
            Capabilities::new(),
            RuntimeOptions::default(),
        );
        run_commands(&commands.unwrap(), 40..50).await;
        let logs = ["Ledger".to_string()];
        let caught_up = functions.read_models.runtime().catch_up(&logs, &[FollowerKind::Projection], &[]);
        assert!(caught_up.await.is_empty());
        tokio::time::sleep(reventless_core::runtime::replay::POINTER_TTL).await;
        let now = rows(functions.api.runtime().stores().queries.as_ref(), TABLE).await;
        let reference = aws_stores(&sdk, &super::fresh_tables(&sdk, "replay-fn-fresh").await);
        assert_eq!(now, fresh_fold(50, reference).await, "the API serves the replayed rows");
    }
}
