//! The schedule contract: a plugin's schedule fires each of its times once
//! across runtimes sharing one store (processes on one database), whatever
//! the backend. The fixture is a bell rung with the firing's time every
//! minute, on a clock 600 times real time (a minute every 100 ms).
use std::time::Duration;

use reventless_spec::{Aggregate, Capabilities, Command, Dispatch, Event, Schedule, ScheduleContext};
use serde::{Deserialize, Serialize};

use crate::runtime::ScheduleClock;
use crate::{Plugin, Runtime, RuntimeOptions, Stores};

/// The bell's command: ring, saying when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
pub enum BellCommand {
    /// Ring for the firing at `at` (Unix milliseconds).
    Ring {
        /// The firing's time.
        at: u64,
    },
}

/// The bell's event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
pub enum BellEvent {
    /// Rung for the firing at `at`.
    Rang {
        /// The firing's time.
        at: u64,
    },
}

/// The bell never refuses.
#[derive(Debug, Serialize)]
pub enum BellError {}

/// An aggregate that records every ring.
#[derive(Debug)]
pub struct Bell;

impl Aggregate for Bell {
    const NAME: &'static str = "Bell";
    type Command = BellCommand;
    type Event = BellEvent;
    type State = ();
    type Error = BellError;

    fn decide(_id: &str, _: &(), command: &BellCommand) -> Result<Vec<BellEvent>, BellError> {
        let BellCommand::Ring { at } = command;
        Ok(vec![BellEvent::Rang { at: *at }])
    }

    fn evolve(state: (), _: &BellEvent) {
        state
    }
}

/// Rings the bell with the firing's time, every minute.
#[derive(Debug)]
pub struct Chime;

impl Schedule for Chime {
    const NAME: &'static str = "Chime";
    const EXPRESSION: &'static str = "rate(1 minute)";

    async fn fire(context: &ScheduleContext) -> Result<Vec<Dispatch>, String> {
        let ring = BellCommand::Ring { at: context.at().0 };
        Ok(vec![Dispatch::aggregate::<Bell>("tower", &ring).map_err(|e| e.to_string())?])
    }
}

/// The plugin `Clock`: the bell and its chime.
pub fn clock_plugin() -> Plugin {
    Plugin::new("Clock").aggregate::<Bell>().schedule::<Chime>()
}

/// Schedules on a clock 600 times real time: a minute every 100 ms.
pub fn accelerated() -> RuntimeOptions {
    RuntimeOptions { schedule_clock: ScheduleClock::Accelerated(600), ..Default::default() }
}

/// A runtime of [`clock_plugin`] on `stores`, timers [`accelerated`].
pub fn start_clock(stores: Stores) -> Runtime {
    Runtime::with_options(stores, vec![clock_plugin()], Capabilities::new(), accelerated()).expect("the clock starts")
}

/// The `at` of every ring in the log, with the event's user.
pub async fn rings(stores: &Stores) -> Vec<(u64, Option<String>)> {
    let events = stores.events.read_all("Clock", 0, 10_000).await.expect("the log reads");
    events.iter().map(|e| (e.data["at"].as_u64().expect("a ring's time"), e.meta.user.clone())).collect()
}

/// The rings once there are at least `count` (within 30 s).
pub async fn wait_for_rings(stores: &Stores, count: usize) -> Vec<(u64, Option<String>)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rung = rings(stores).await;
        if rung.len() >= count {
            return rung;
        }
        assert!(tokio::time::Instant::now() < deadline, "only {} rings: {rung:?}", rung.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts every ring is at a whole minute, sent as the schedule, and no
/// time rang twice.
pub fn assert_each_time_once(rung: &[(u64, Option<String>)]) {
    for (at, user) in rung {
        assert_eq!(at % 60_000, 0, "fired on whole minutes: {rung:?}");
        assert_eq!(user.as_deref(), Some("schedule:Clock.Chime"), "sent as the schedule: {rung:?}");
    }
    let mut times: Vec<u64> = rung.iter().map(|(at, _)| *at).collect();
    times.sort_unstable();
    times.dedup();
    assert_eq!(times.len(), rung.len(), "no time fired twice: {rung:?}");
}

/// Two runtimes on one store — `first` and `second` are the same database
/// seen by two processes (each with its own leases) — fire each time of the
/// schedule once.
pub async fn two_runtimes_fire_each_time_once(first: Stores, second: Stores) {
    let observer = first.clone();
    let one = start_clock(first);
    let two = start_clock(second);
    let rung = wait_for_rings(&observer, 10).await;
    one.shutdown().await;
    two.shutdown().await;
    assert_each_time_once(&rung);
}
