//! Driving commands: clients for a fixed duration, then the settled rate —
//! the clock stops only when every projection has applied the last event
//! appended. Any failed command or client task fails the measurement.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reventless::core::{CommandRequest, Runtime};
use serde_json::json;

use crate::Latencies;

/// The scenarios of the command lines.
#[derive(Clone, Copy)]
pub enum Workload {
    /// As `AggregateDistinct`, with no read model following the log.
    AggregateDistinctNoViews,
    /// Each client adds to its own counter (an aggregate stream per client).
    AggregateDistinct,
    /// Every client adds to one counter.
    AggregateShared,
    /// Each command registers a new id (a DCB decision over an empty boundary).
    DcbRegister,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Self::AggregateDistinct => "commands/aggregate/distinct",
            Self::AggregateDistinctNoViews => "commands/aggregate/distinct/no-views",
            Self::AggregateShared => "commands/aggregate/shared",
            Self::DcbRegister => "commands/dcb/distinct",
        }
    }

    pub fn request(self, client: usize, n: u64) -> CommandRequest {
        match self {
            Self::AggregateDistinct | Self::AggregateDistinctNoViews => {
                CommandRequest::new("Bench", "Counter_Add", json!({"amount": 1})).entity(format!("c{client}"))
            }
            Self::AggregateShared => CommandRequest::new("Bench", "Counter_Add", json!({"amount": 1})).entity("hot"),
            Self::DcbRegister => CommandRequest::new("Bench", "Register", json!({"id": format!("r{client}-{n}")})),
        }
    }
}

/// What one command line measured.
pub struct Measured {
    pub commands: u64,
    /// Commands acknowledged per second (clock stopped at the last answer).
    pub acked_per_sec: f64,
    /// Commands acknowledged and applied by every projection per second
    /// (clock stopped when the last projection reached the log's head).
    pub settled_per_sec: f64,
    /// From the last answer until every projection had caught up.
    pub catch_up: Duration,
    pub latencies: Latencies,
}

/// How long the projections may take to catch up after the clients stop.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(120);

/// Runs `clients` tasks issuing `request(client, n)` for `duration`, then
/// waits for every projection: the settled rate. The first command not
/// `ACCEPTED` (or an engine error, or a panicking client) stops every client
/// and is returned as the error.
pub async fn measure<F>(runtime: &Runtime, clients: usize, duration: Duration, request: F) -> Result<Measured, String>
where
    F: Fn(usize, u64) -> CommandRequest + Send + Sync + 'static,
{
    let request = Arc::new(request);
    let failed = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for client in 0..clients {
        let runtime = runtime.clone();
        let request = request.clone();
        let failed = failed.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            let mut n = 0;
            while Instant::now() < deadline && !failed.load(Ordering::Relaxed) {
                n += 1;
                let begin = Instant::now();
                match runtime.execute(request(client, n)).await {
                    Ok(outcome) if outcome.is_accepted() => latencies.record(begin.elapsed()),
                    Ok(outcome) => {
                        failed.store(true, Ordering::Relaxed);
                        return Err(format!("client {client}, command {n}: not accepted: {outcome:?}"));
                    }
                    Err(error) => {
                        failed.store(true, Ordering::Relaxed);
                        return Err(format!("client {client}, command {n}: {error}"));
                    }
                }
            }
            Ok(latencies)
        }));
    }
    let mut all = Latencies::default();
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok(Ok(latencies)) => all.merge(latencies),
            Ok(Err(error)) => {
                first_error.get_or_insert(error);
            }
            Err(error) => {
                first_error.get_or_insert(format!("a client task failed: {error}"));
            }
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    let acked = started.elapsed();
    runtime.wait_for_projections_within(CATCH_UP_LIMIT).await.map_err(|e| format!("projections: {e}"))?;
    let settled = started.elapsed();
    let commands = all.0.len() as u64;
    Ok(Measured {
        commands,
        acked_per_sec: commands as f64 / acked.as_secs_f64(),
        settled_per_sec: commands as f64 / settled.as_secs_f64(),
        catch_up: settled - acked,
        latencies: all,
    })
}

/// Commands paced at `rate`/s from `clients` clients (half aggregate, half
/// DCB) for `duration`; for each, the time from its acknowledgement until
/// every projection has applied it. Any failure fails the run.
pub async fn projection_lag(
    runtime: &Runtime,
    clients: usize,
    rate: f64,
    duration: Duration,
) -> Result<(f64, Latencies), String> {
    let interval = Duration::from_secs_f64(clients as f64 / rate);
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for client in 0..clients {
        let runtime = runtime.clone();
        tasks.push(tokio::spawn(async move {
            let mut lags = Latencies::default();
            let mut ticker = tokio::time::interval(interval);
            let mut n = 0;
            while Instant::now() < deadline {
                ticker.tick().await;
                n += 1;
                let workload = if n % 2 == 0 { Workload::DcbRegister } else { Workload::AggregateDistinct };
                match runtime.execute(workload.request(client, n)).await {
                    Ok(outcome) if outcome.is_accepted() => {}
                    Ok(outcome) => return Err(format!("client {client}, command {n}: not accepted: {outcome:?}")),
                    Err(error) => return Err(format!("client {client}, command {n}: {error}")),
                }
                let acked = Instant::now();
                runtime.wait_for_projections().await.map_err(|e| format!("client {client}, projections: {e}"))?;
                lags.record(acked.elapsed());
            }
            Ok::<_, String>(lags)
        }));
    }
    let mut lags = Latencies::default();
    for task in tasks {
        lags.merge(task.await.map_err(|e| format!("a client task failed: {e}"))??);
    }
    Ok((lags.0.len() as f64 / started.elapsed().as_secs_f64(), lags))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload;

    fn runtime() -> Runtime {
        Runtime::start(reventless::local::memory_stores(), vec![workload::plugin()]).expect("runtime")
    }

    #[tokio::test]
    async fn a_rejected_command_fails_the_measurement() {
        let runtime = runtime();
        // The second registration of one id is REJECTED (AlreadyRegistered).
        let result = measure(&runtime, 2, Duration::from_millis(200), |_, _| {
            CommandRequest::new("Bench", "Register", json!({"id": "same"}))
        })
        .await;
        let error = result.err().expect("a rejected command must fail the run");
        assert!(error.contains("not accepted"), "{error}");
        runtime.shutdown().await;
    }

    #[tokio::test]
    async fn an_engine_error_fails_the_measurement() {
        let runtime = runtime();
        let result = measure(&runtime, 4, Duration::from_millis(200), |_, _| {
            CommandRequest::new("Bench", "NoSuchCommand", json!({}))
        })
        .await;
        assert!(result.is_err());
        runtime.shutdown().await;
    }

    #[tokio::test]
    async fn the_settled_clock_stops_after_every_projection_applied_every_command() {
        let runtime = runtime();
        let measured = measure(&runtime, 1, Duration::from_millis(200), |client, n| {
            Workload::AggregateDistinct.request(client, n)
        })
        .await
        .expect("measured");
        // No further waiting: the read model already shows every command.
        let row = runtime.stores().queries.get("Bench_Counters", "c0").await.expect("read").expect("row");
        assert_eq!(row["events"], json!(measured.commands));
        assert!(measured.commands > 0);
        assert!(measured.settled_per_sec <= measured.acked_per_sec);
        runtime.shutdown().await;
    }
}
