//! Async commands leave a trace: their outcome is kept by command id, and an
//! automation whose async command is rejected sees it (the item fails, is
//! retried, then exhausted) instead of waiting forever.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::time::Duration;

use reventless_core::{CommandOutcome, CommandRequest, OutcomeStatus, Plugin, Runtime};
use reventless_spec::{Aggregate, AutomationSlice, Command, Dispatch, Event, EventEnvelope};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
enum ShipmentCommand {
    Order,
    Prepare,
    Ship,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
enum ShipmentEvent {
    Ordered,
    Prepared,
    Shipped,
}

#[derive(Debug, Serialize)]
enum ShipmentError {
    NotPrepared,
}

struct Shipment;

impl Aggregate for Shipment {
    const NAME: &'static str = "Shipment";
    const ASYNC: bool = true;
    type Command = ShipmentCommand;
    type Event = ShipmentEvent;
    type State = bool;
    type Error = ShipmentError;

    fn decide(_id: &str, prepared: &bool, command: &ShipmentCommand) -> Result<Vec<ShipmentEvent>, ShipmentError> {
        match command {
            ShipmentCommand::Order => Ok(vec![ShipmentEvent::Ordered]),
            ShipmentCommand::Prepare => Ok(vec![ShipmentEvent::Prepared]),
            ShipmentCommand::Ship if !prepared => Err(ShipmentError::NotPrepared),
            ShipmentCommand::Ship => Ok(vec![ShipmentEvent::Shipped]),
        }
    }

    fn evolve(prepared: bool, event: &ShipmentEvent) -> bool {
        prepared || *event == ShipmentEvent::Prepared
    }
}

struct AutoShip;

impl AutomationSlice for AutoShip {
    const NAME: &'static str = "AutoShip";
    const CONSUMES: &'static [&'static str] = &["Ordered", "Shipped"];
    const MAX_RETRIES: u32 = 1;
    type Event = ShipmentEvent;
    type Item = String;

    fn collect(event: &ShipmentEvent, envelope: &EventEnvelope) -> Option<(String, String)> {
        let id = envelope.stream.as_ref()?.id.clone();
        (*event == ShipmentEvent::Ordered).then(|| (id.clone(), id))
    }

    fn resolve(event: &ShipmentEvent, envelope: &EventEnvelope) -> Option<String> {
        (*event == ShipmentEvent::Shipped).then(|| envelope.stream.as_ref().map(|s| s.id.clone())).flatten()
    }

    fn process(id: &str, _: &String) -> Vec<Dispatch> {
        vec![Dispatch::aggregate::<Shipment>(id, &ShipmentCommand::Ship).unwrap()]
    }
}

fn plugin() -> Plugin {
    Plugin::new("Depot").aggregate::<Shipment>().automation::<AutoShip>()
}

fn request(command: &str, id: &str) -> CommandRequest {
    CommandRequest::new("Depot", format!("Shipment_{command}"), Value::Null).entity(id)
}

async fn todo_status(runtime: &Runtime, id: &str, wanted: &str) -> Value {
    for _ in 0..300 {
        if let Some(row) = runtime.stores().queries.get("Depot_AutoShipTodos", id).await.unwrap()
            && row["status"] == wanted
        {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("todo {id} never became {wanted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_async_command_is_kept_and_fails_the_automation_item() {
    let runtime = reventless_local::start_in_memory(vec![plugin()]).unwrap();
    // The outcome of a rejected async command, by its id.
    let CommandOutcome::Pending { command_id, .. } = runtime.execute(request("Ship", "s0")).await.unwrap() else {
        panic!("an async command answers Pending");
    };
    let mut record = runtime.command_outcome("Depot", &command_id).await.unwrap().unwrap();
    for _ in 0..300 {
        if record.status != OutcomeStatus::Pending {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        record = runtime.command_outcome("Depot", &command_id).await.unwrap().unwrap();
    }
    assert_eq!(record.status, OutcomeStatus::Rejected);
    assert_eq!(record.error_code.as_deref(), Some("NotPrepared"));
    assert_eq!(record.entity_id.as_deref(), Some("s0"));
    assert!(record.finished_at.is_some() && record.expires_at > record.finished_at.unwrap());

    // An automation's async Ship is rejected: the item fails, then is exhausted.
    runtime.execute(request("Order", "s1")).await.unwrap();
    let exhausted = todo_status(&runtime, "s1", "EXHAUSTED").await;
    assert_eq!(exhausted["retryCount"], json!(2), "{exhausted}");
    assert!(exhausted["lastError"].as_str().unwrap().contains("NotPrepared"), "{exhausted}");

    // Accepted: the item waits for the event that resolves it, then completes.
    runtime.execute(request("Prepare", "s2")).await.unwrap();
    runtime.execute(request("Order", "s2")).await.unwrap();
    let completed = todo_status(&runtime, "s2", "COMPLETED").await;
    assert_eq!(completed["retryCount"], json!(0), "{completed}");
    runtime.shutdown().await;
}

#[tokio::test]
async fn outcomes_expire_after_the_retention() {
    let options = reventless_core::RuntimeOptions {
        outcome_retention: Some(Duration::from_millis(50)),
        mode: reventless_core::RuntimeMode::OnDemand,
        ..Default::default()
    };
    let capabilities = reventless_spec::Capabilities::new();
    let runtime = Runtime::on_demand(reventless_local::memory_stores(), vec![plugin()], capabilities, options).unwrap();
    let CommandOutcome::Pending { command_id, .. } = runtime.execute(request("Order", "e1")).await.unwrap() else {
        panic!("pending");
    };
    assert!(runtime.command_outcome("Depot", &command_id).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert!(runtime.command_outcome("Depot", &command_id).await.unwrap().is_none(), "expired outcomes are gone");
    assert_eq!(runtime.sweep_outcomes().await.unwrap(), 1, "and swept");
}
