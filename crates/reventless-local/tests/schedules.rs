//! Schedules on the local platform: the timer fires at the expression's
//! times (on an accelerated clock: `rate(1 minute)` every 100 ms), the
//! commands go through the command path as the plugin's own, two runtimes
//! sharing one store fire each time once, and a bad expression stops the
//! plugin from starting with a clear error.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::sync::Arc;
use std::time::Duration;

use reventless_core::plugin::ComponentKind;
use reventless_core::runtime::{PLATFORM_SCHEDULES, ScheduleClock};
use reventless_core::store::SharedLeases;
use reventless_core::{Plugin, PluginError, Runtime, RuntimeError, RuntimeOptions, Stores};
use reventless_spec::{Aggregate, Command, Dispatch, Event, Schedule, ScheduleContext};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
enum BellCommand {
    Ring { at: u64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
enum BellEvent {
    Rang { at: u64 },
}

#[derive(Debug, Serialize)]
enum BellError {}

struct Bell;

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

/// Rings the tower bell every minute with the firing's time.
struct Chime;

impl Schedule for Chime {
    const NAME: &'static str = "Chime";
    const EXPRESSION: &'static str = "rate(1 minute)";

    async fn fire(context: &ScheduleContext) -> Result<Vec<Dispatch>, String> {
        let ring = BellCommand::Ring { at: context.at().0 };
        Ok(vec![Dispatch::aggregate::<Bell>("tower", &ring).map_err(|e| e.to_string())?])
    }
}

struct Broken;

impl Schedule for Broken {
    const NAME: &'static str = "Broken";
    const EXPRESSION: &'static str = "cron(0 12 * * * *)";

    async fn fire(_: &ScheduleContext) -> Result<Vec<Dispatch>, String> {
        Ok(Vec::new())
    }
}

fn plugin() -> Plugin {
    Plugin::new("Clock").aggregate::<Bell>().schedule::<Chime>()
}

/// 600 times real time: a minute every 100 ms.
fn fast() -> RuntimeOptions {
    RuntimeOptions { schedule_clock: ScheduleClock::Accelerated(600), ..Default::default() }
}

fn start(stores: Stores) -> Runtime {
    Runtime::with_options(stores, vec![plugin()], reventless_spec::Capabilities::new(), fast()).unwrap()
}

/// The `at` of every `Rang` in the log, with the event's user.
async fn rings(stores: &Stores) -> Vec<(u64, Option<String>)> {
    let events = stores.events.read_all("Clock", 0, 10_000).await.unwrap();
    events.iter().map(|e| (e.data["at"].as_u64().unwrap(), e.meta.user.clone())).collect()
}

async fn wait_for_rings(stores: &Stores, count: usize) -> Vec<(u64, Option<String>)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let rung = rings(stores).await;
        if rung.len() >= count {
            return rung;
        }
        assert!(tokio::time::Instant::now() < deadline, "only {} rings: {rung:?}", rung.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_timer_sends_the_schedules_command_at_each_time() {
    let stores = reventless_local::memory_stores();
    let runtime = start(stores.clone());
    let rung = wait_for_rings(&stores, 3).await;
    runtime.shutdown().await;
    for (index, (at, user)) in rung.iter().enumerate() {
        assert_eq!(at % 60_000, 0, "fired on whole minutes: {rung:?}");
        assert_eq!(user.as_deref(), Some("schedule:Clock.Chime"), "sent as the schedule");
        if index > 0 {
            assert!(*at > rung[index - 1].0, "each time once, in order: {rung:?}");
        }
    }
    let row = stores.queries.get(PLATFORM_SCHEDULES, "Clock.Chime").await.unwrap().unwrap();
    assert!(row["lastFiredAt"].as_u64().unwrap() >= rung[2].0, "{row}");
    assert_eq!(row["commandsSent"], 1);
    assert_eq!(row["expression"], "rate(1 minute)");
}

#[tokio::test]
async fn two_runtimes_on_one_store_fire_each_time_once_and_the_survivor_takes_over() {
    let stores = reventless_local::memory_stores();
    let shared = SharedLeases::default();
    let (one, two) = (shared.process(), shared.process());
    let first = start(Stores { leases: Arc::new(one.clone()), ..stores.clone() });
    let second = start(Stores { leases: Arc::new(two.clone()), ..stores.clone() });
    let before = wait_for_rings(&stores, 6).await;
    assert_eq!(one.held() + two.held(), 1, "one process holds the schedule");
    // The holder dies: the other fires from then on.
    let (holder, survivor) = if one.held() == 1 { (&one, &two) } else { (&two, &one) };
    holder.die();
    let rung = wait_for_rings(&stores, before.len() + 6).await;
    assert_eq!(survivor.held(), 1, "the survivor took the schedule over");
    first.shutdown().await;
    second.shutdown().await;
    let mut times: Vec<u64> = rung.iter().map(|(at, _)| *at).collect();
    let fired = times.len();
    times.sort_unstable();
    times.dedup();
    assert_eq!(times.len(), fired, "no time fired twice: {rung:?}");
}

#[tokio::test]
async fn a_firing_can_be_asked_for_and_reports_its_outcomes() {
    let stores = reventless_local::memory_stores();
    let runtime = Runtime::start(stores.clone(), vec![plugin()]).unwrap();
    let firing = runtime.fire_schedule("Clock", "Chime", reventless_spec::Timestamp(120_000)).await.unwrap();
    assert_eq!(firing.schedule, "Clock.Chime");
    assert_eq!(firing.outcomes.len(), 1);
    assert!(matches!(firing.outcomes[0], reventless_core::CommandOutcome::Accepted { .. }), "{firing:?}");
    assert!(firing.errors.is_empty());
    assert_eq!(rings(&stores).await, vec![(120_000, Some("schedule:Clock.Chime".to_string()))]);
    let unknown = runtime.fire_schedule("Clock", "Gong", reventless_spec::Timestamp(0)).await.unwrap_err();
    assert!(unknown.to_string().contains("known: Chime"), "{unknown}");
    runtime.shutdown().await;
}

#[tokio::test]
async fn the_manifest_lists_the_schedule_with_its_expression() {
    let manifest = plugin().manifest().unwrap();
    let component = manifest.components.iter().find(|c| c.name == "Chime").unwrap();
    assert_eq!(component.kind, ComponentKind::Schedule);
    assert_eq!(manifest.schedules.len(), 1);
    assert_eq!(
        (manifest.schedules[0].name.as_str(), manifest.schedules[0].expression.as_str()),
        ("Chime", "rate(1 minute)")
    );
    let json = serde_json::to_value(&manifest).unwrap();
    assert_eq!(json["schedules"][0]["expression"], "rate(1 minute)");
}

#[tokio::test]
async fn a_bad_expression_is_a_plugin_error_naming_the_schedule() {
    let broken = plugin().schedule::<Broken>();
    let error = broken.resolve().err().unwrap();
    let PluginError::InvalidSchedule { plugin: named, schedule, reason } = &error else { panic!("{error}") };
    assert_eq!((named.as_str(), schedule.as_str()), ("Clock", "Broken"));
    assert!(reason.contains("must be `?`"), "{reason}");
    assert!(error.to_string().contains("schedule `Broken`"), "{error}");
    let started = Runtime::start(reventless_local::memory_stores(), vec![plugin().schedule::<Broken>()]);
    assert!(matches!(started, Err(RuntimeError::Plugin(PluginError::InvalidSchedule { .. }))));
    let twice = plugin().schedule::<Chime>().resolve().err().unwrap();
    assert!(matches!(twice, PluginError::DuplicateComponent { .. }), "{twice}");
}
