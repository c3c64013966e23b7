//! Two runtimes on one PostgreSQL database, each with its own pool and
//! lease connection (as processes are): a schedule fires in exactly one of
//! them, each of its times once (the timers on an accelerated clock:
//! `rate(1 minute)` every 100 ms).
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::time::{Duration, Instant};

use reventless_core::runtime::ScheduleClock;
use reventless_core::{Plugin, Runtime, RuntimeOptions, Stores};
use reventless_postgres::testing::shared_cluster;
use reventless_postgres::{PgDatabase, PgOptions, postgres_stores};
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

/// Rings the bell with the firing's time, every minute.
struct Chime;

impl Schedule for Chime {
    const NAME: &'static str = "Chime";
    const EXPRESSION: &'static str = "rate(1 minute)";

    async fn fire(context: &ScheduleContext) -> Result<Vec<Dispatch>, String> {
        let ring = BellCommand::Ring { at: context.at().0 };
        Ok(vec![Dispatch::aggregate::<Bell>("tower", &ring).map_err(|e| e.to_string())?])
    }
}

async fn process(url: &str) -> (Runtime, Stores) {
    let db = PgDatabase::connect(url, PgOptions { pool_size: 4 }).await.unwrap();
    let stores = postgres_stores(&db).await.unwrap();
    let options = RuntimeOptions { schedule_clock: ScheduleClock::Accelerated(600), ..Default::default() };
    let plugin = Plugin::new("Clock").aggregate::<Bell>().schedule::<Chime>();
    let runtime =
        Runtime::with_options(stores.clone(), vec![plugin], reventless_spec::Capabilities::new(), options).unwrap();
    (runtime, stores)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_database_fire_each_time_of_a_schedule_once() {
    let url = shared_cluster().fresh_database().unwrap();
    let (first, stores) = process(&url).await;
    let (second, _) = process(&url).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let rung = loop {
        let events = stores.events.read_all("Clock", 0, 10_000).await.unwrap();
        if events.len() >= 10 {
            break events;
        }
        assert!(Instant::now() < deadline, "only {} rings", events.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    first.shutdown().await;
    second.shutdown().await;
    let mut times: Vec<u64> = rung.iter().map(|e| e.data["at"].as_u64().unwrap()).collect();
    let fired = times.len();
    times.sort_unstable();
    times.dedup();
    assert_eq!(times.len(), fired, "a time fired twice: {times:?}");
    assert!(times.iter().all(|at| at % 60_000 == 0), "on whole minutes: {times:?}");
}
