//! Schedules on the local platform: the timer fires at the expression's
//! times (on an accelerated clock: `rate(1 minute)` every 100 ms), the
//! commands go through the command path as the plugin's own, two runtimes
//! sharing one store fire each time once, and a bad expression stops the
//! plugin from starting with a clear error.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::sync::Arc;

use reventless_core::plugin::ComponentKind;
use reventless_core::runtime::PLATFORM_SCHEDULES;
use reventless_core::store::SharedLeases;
use reventless_core::testing::schedules::{assert_each_time_once, clock_plugin, rings, start_clock, wait_for_rings};
use reventless_core::{Plugin, PluginError, Runtime, RuntimeError, Stores};
use reventless_spec::{Dispatch, Schedule, ScheduleContext};

struct Broken;

impl Schedule for Broken {
    const NAME: &'static str = "Broken";
    const EXPRESSION: &'static str = "cron(0 12 * * * *)";

    async fn fire(_: &ScheduleContext) -> Result<Vec<Dispatch>, String> {
        Ok(Vec::new())
    }
}

fn plugin() -> Plugin {
    clock_plugin()
}

#[tokio::test]
async fn the_timer_sends_the_schedules_command_at_each_time() {
    let stores = reventless_local::memory_stores();
    let runtime = start_clock(stores.clone());
    let rung = wait_for_rings(&stores, 3).await;
    runtime.shutdown().await;
    assert_each_time_once(&rung);
    assert!(rung.windows(2).all(|pair| pair[0].0 < pair[1].0), "in order: {rung:?}");
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
    let first = start_clock(Stores { leases: Arc::new(one.clone()), ..stores.clone() });
    let second = start_clock(Stores { leases: Arc::new(two.clone()), ..stores.clone() });
    let before = wait_for_rings(&stores, 6).await;
    assert_eq!(one.held() + two.held(), 1, "one process holds the schedule");
    // The holder dies: the other fires from then on.
    let (holder, survivor) = if one.held() == 1 { (&one, &two) } else { (&two, &one) };
    holder.die();
    let rung = wait_for_rings(&stores, before.len() + 6).await;
    assert_eq!(survivor.held(), 1, "the survivor took the schedule over");
    first.shutdown().await;
    second.shutdown().await;
    assert_each_time_once(&rung);
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
    let twice = plugin().schedule::<reventless_core::testing::schedules::Chime>().resolve().err().unwrap();
    assert!(matches!(twice, PluginError::DuplicateComponent { .. }), "{twice}");
}
