//! The plugin the harness drives: an aggregate, a DCB slice and a read model
//! over each, with events of about 100 bytes of JSON data.
use reventless::prelude::*;
use serde::{Deserialize, Serialize};

/// Padding that brings each event's JSON data to about 100 bytes.
pub const NOTE: &str = "benchmark payload padding to about one hundred bytes of json......";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all_fields = "camelCase")]
pub enum CounterCommand {
    Add { amount: u64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
pub enum CounterEvent {
    Added { amount: u64, note: String },
}

pub struct Counter;

impl Aggregate for Counter {
    const NAME: &'static str = "Counter";
    type Command = CounterCommand;
    type Event = CounterEvent;
    type State = u64;
    type Error = String;

    fn decide(_id: &str, _: &u64, command: &CounterCommand) -> Result<Vec<CounterEvent>, String> {
        let CounterCommand::Add { amount } = command;
        Ok(vec![CounterEvent::Added { amount: *amount, note: NOTE.into() }])
    }

    fn evolve(total: u64, event: &CounterEvent) -> u64 {
        let CounterEvent::Added { amount, .. } = event;
        total + amount
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all = "camelCase")]
pub struct Register {
    #[tag]
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
pub enum RegistryEvent {
    Registered {
        #[tag]
        id: String,
        note: String,
    },
}

#[derive(Debug, Serialize)]
pub enum RegistryError {
    AlreadyRegistered,
}

impl StateChangeSlice for Register {
    const NAME: &'static str = "Register";
    const CONSUMES: &'static [&'static str] = &["Registered"];
    const PRODUCES: &'static [&'static str] = &["Registered"];
    type Command = Self;
    type Event = RegistryEvent;
    type State = bool;
    type Error = RegistryError;

    fn evolve(_: bool, _: &RegistryEvent) -> bool {
        true
    }

    fn decide(exists: &bool, command: &Self) -> Result<Vec<RegistryEvent>, RegistryError> {
        if *exists {
            return Err(RegistryError::AlreadyRegistered);
        }
        Ok(vec![RegistryEvent::Registered { id: command.id.clone(), note: NOTE.into() }])
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CounterRow {
    pub total: u64,
    pub events: u64,
}

pub struct Counters;

impl ReadModel for Counters {
    const NAME: &'static str = "Counter";
    const PLURAL: &'static str = "Counters";
    const CONSUMES: &'static [&'static str] = &["Added"];
    type Event = CounterEvent;
    type Row = CounterRow;

    fn project(event: &CounterEvent, envelope: &EventEnvelope) -> Vec<Action<CounterRow>> {
        let CounterEvent::Added { amount, .. } = event;
        let amount = *amount;
        let id = envelope.stream.as_ref().map(|s| s.id.clone()).unwrap_or_default();
        vec![Action::update_with_default(id, CounterRow { total: 0, events: 0 }, move |row| {
            row.total += amount;
            row.events += 1;
        })]
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RegistrationRow {
    pub id: String,
    pub position: u64,
}

pub struct Registrations;

impl ReadModel for Registrations {
    const NAME: &'static str = "Registration";
    const PLURAL: &'static str = "Registrations";
    const CONSUMES: &'static [&'static str] = &["Registered"];
    type Event = RegistryEvent;
    type Row = RegistrationRow;

    fn project(event: &RegistryEvent, envelope: &EventEnvelope) -> Vec<Action<RegistrationRow>> {
        let RegistryEvent::Registered { id, .. } = event;
        vec![Action::set(id.clone(), RegistrationRow { id: id.clone(), position: envelope.position })]
    }
}

pub fn plugin() -> Plugin {
    Plugin::new("Bench")
        .aggregate::<Counter>()
        .state_change_slice::<Register>()
        .read_model::<Counters>()
        .read_model::<Registrations>()
}

/// The same components without read models.
pub fn plugin_without_views() -> Plugin {
    Plugin::new("Bench").aggregate::<Counter>().state_change_slice::<Register>()
}

/// Only the registrations view (replays the DCB log from zero).
pub fn replay_plugin() -> Plugin {
    Plugin::new("Bench").state_change_slice::<Register>().read_model::<Registrations>()
}
