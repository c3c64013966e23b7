//! A handler that panics fails that invocation (reported through the Runtime
//! API's error endpoint); the container lives on and serves the next one.
//!
//! The function under test is this test binary itself: started again with
//! `PANIC_PROBE_CHILD=1`, its `child` test runs a plugin whose decision
//! panics on one input as a Lambda function.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
mod support;

use reventless::prelude::*;
use reventless_aws::runtime_api::InvokeError;
use serde::{Deserialize, Serialize};
use support::{Deployment, LIMIT, body, graphql, http_request};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
enum ProbeEvent {
    Poked {
        #[tag]
        probe_id: String,
    },
}

/// `Probe_Poke(probeId)`: panics for the probe `boom` (a bug in user code).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all = "camelCase")]
struct Poke {
    #[tag]
    probe_id: String,
}

impl StateChangeSlice for Poke {
    const NAME: &'static str = "Poke";
    const CONSUMES: &'static [&'static str] = &["Poked"];
    const PRODUCES: &'static [&'static str] = &["Poked"];
    type Command = Self;
    type Event = ProbeEvent;
    type State = ();
    type Error = String;

    fn evolve(state: (), _: &ProbeEvent) {
        state
    }

    fn decide(_: &(), command: &Self) -> Result<Vec<ProbeEvent>, String> {
        if command.probe_id == "boom" {
            panic!("the probe exploded");
        }
        Ok(vec![ProbeEvent::Poked { probe_id: command.probe_id.clone() }])
    }
}

#[test]
fn child() {
    if std::env::var("PANIC_PROBE_CHILD").is_err() {
        return; // only as the function process
    }
    let plugin = reventless::Plugin::new("Probe").state_change_slice::<Poke>();
    std::process::exit(match reventless_aws::lambda::main(plugin, Capabilities::new()) {
        code if code == std::process::ExitCode::SUCCESS => 0,
        _ => 1,
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_fails_its_invocation_and_the_container_goes_on() {
    let probe = Deployment::new("Probe").await;
    let api = reventless_aws::runtime_api::RuntimeApi::start().await.unwrap();
    let mut env = probe.env("ProbeApi");
    env.push(("PANIC_PROBE_CHILD", "1".into()));
    let me = std::env::current_exe().unwrap();
    let mut function =
        api.spawn_with_args(&me, &["--exact", "child", "--nocapture", "--test-threads=1"], &env).unwrap();

    let poke = |id: &str| graphql(&format!(r#"mutation {{ Probe_Poke(probeId: "{id}") {{ status }} }}"#));
    let ok = api.invoke(http_request("POST", "/graphql", Some(&poke("fine")), None), LIMIT).await.unwrap();
    assert_eq!(body(&ok)["data"]["Probe_Poke"]["status"], "ACCEPTED", "{ok}");

    let exploded = api.invoke(http_request("POST", "/graphql", Some(&poke("boom")), None), LIMIT).await;
    match exploded {
        Err(InvokeError::Function(error)) => {
            assert!(error.to_string().contains("the probe exploded"), "{error}")
        }
        other => panic!("a panic must fail the invocation, got {other:?}"),
    }
    assert!(function.is_running(), "the container survives the panic");
    let after = api.invoke(http_request("POST", "/graphql", Some(&poke("later")), None), LIMIT).await.unwrap();
    assert_eq!(body(&after)["data"]["Probe_Poke"]["status"], "ACCEPTED");
}
