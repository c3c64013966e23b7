//! Schedules: firing one (its commands through the normal command path, as
//! the plugin's own) and, in a background runtime, a timer per schedule.
//!
//! The timer runs only while its process holds the schedule's lease
//! (`schedule:<Plugin>.<Name>`), so processes sharing a database fire each
//! schedule once. Times come from the expression (rates on multiples of
//! their period since the epoch, so a process taking over keeps the grid);
//! a firing missed while no process held the lease is not made up, as
//! EventBridge Scheduler does not make up firings either.
use reventless_spec::{RowFuture, RowReader, ScheduleContext, Timestamp};

use super::*;
use crate::plugin::ResolvedSchedule;

/// The table of schedules' last firings: one row per `<Plugin>.<Name>`.
pub const PLATFORM_SCHEDULES: &str = "Platform_Schedules";

/// The longest a timer sleeps before it looks at the clock again (the wall
/// clock may be set meanwhile).
const TIMER_RECHECK: Duration = Duration::from_secs(30);

/// How a background runtime's schedule timers read the time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ScheduleClock {
    /// The system clock.
    #[default]
    Wall,
    /// A clock that starts at the wall time when the runtime starts and runs
    /// this many times faster (tests: `rate(1 minute)` fires every 100 ms
    /// at 600). Firings see its time in [`ScheduleContext::at`].
    Accelerated(u32),
}

/// The clock of one runtime's timers.
#[derive(Debug, Clone, Copy)]
pub(super) struct TimerClock {
    kind: ScheduleClock,
    origin_ms: u64,
    origin: tokio::time::Instant,
}

impl TimerClock {
    pub(super) fn new(kind: ScheduleClock) -> Self {
        Self { kind, origin_ms: Timestamp::now().0, origin: tokio::time::Instant::now() }
    }

    fn factor(&self) -> u64 {
        match self.kind {
            ScheduleClock::Wall => 1,
            ScheduleClock::Accelerated(factor) => u64::from(factor.max(1)),
        }
    }

    pub(super) fn now(&self) -> Timestamp {
        match self.kind {
            ScheduleClock::Wall => Timestamp::now(),
            ScheduleClock::Accelerated(_) => {
                let elapsed = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
                Timestamp(self.origin_ms.saturating_add(elapsed.saturating_mul(self.factor())))
            }
        }
    }

    /// Sleeps until the clock reads `at`.
    async fn sleep_until(&self, at: Timestamp) {
        loop {
            let left = at.0.saturating_sub(self.now().0);
            if left == 0 {
                return;
            }
            let real = Duration::from_millis(left.div_ceil(self.factor()));
            tokio::time::sleep(real.min(TIMER_RECHECK)).await;
        }
    }
}

/// What one firing of a schedule did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleFiring {
    /// `<Plugin>.<Name>`.
    pub schedule: String,
    /// When it was due.
    pub at: Timestamp,
    /// The outcome of each command it sent, in order.
    pub outcomes: Vec<CommandOutcome>,
    /// Why `fire` failed, or a command could not run (the others still ran).
    pub errors: Vec<String>,
}

/// Reads the plugin's rows for a firing (through the read-model pointers).
struct QueryRows(Arc<dyn crate::store::QueryStore>);

impl RowReader for QueryRows {
    fn get<'a>(&'a self, table: &'a str, id: &'a str) -> RowFuture<'a, Option<serde_json::Value>> {
        Box::pin(async move { self.0.get(table, id).await.map_err(|e| e.to_string()) })
    }

    fn list_eq<'a>(
        &'a self,
        table: &'a str,
        field: &'a str,
        value: serde_json::Value,
        after: Option<String>,
    ) -> RowFuture<'a, (Vec<serde_json::Value>, Option<String>)> {
        Box::pin(async move {
            let request = crate::store::ListRequest {
                filters: vec![crate::store::Filter::eq(field, value)],
                first: 100,
                after,
                ..Default::default()
            };
            let page = self.0.list(table, &request).await.map_err(|e| e.to_string())?;
            let next = if page.has_next_page { page.end_cursor } else { None };
            Ok((page.rows.into_iter().map(|(_, row)| row).collect(), next))
        })
    }
}

impl Runtime {
    /// Fires `plugin`'s schedule `name` for the time `at`: its commands run
    /// as the plugin's own (caller `schedule:<Plugin>.<Name>`, no roles
    /// checked), correlated by the firing; the outcome is logged and kept
    /// in [`PLATFORM_SCHEDULES`]. A command that fails does not stop the others.
    pub async fn fire_schedule(&self, plugin: &str, name: &str, at: Timestamp) -> Result<ScheduleFiring, EngineError> {
        let hosted = self.inner.plugins.get(plugin).ok_or_else(|| EngineError::UnknownPlugin(plugin.to_string()))?;
        let schedule =
            hosted.schedules.iter().find(|s| s.handler.name() == name).ok_or_else(|| EngineError::UnknownCommand {
                plugin: plugin.to_string(),
                command: format!("schedule {name}"),
                known: hosted.schedules.iter().map(|s| s.handler.name()).collect::<Vec<_>>().join(", "),
            })?;
        let id = format!("{plugin}.{name}");
        let firing_id = uuid::Uuid::now_v7().to_string();
        let span = tracing::info_span!("schedule", schedule = id.as_str(), at = at.0, correlation_id = firing_id);
        let rows: Arc<dyn RowReader> = Arc::new(QueryRows(self.inner.stores.queries.clone()));
        let context = ScheduleContext::new(plugin, at, rows, self.inner.capabilities.clone());
        let mut firing = ScheduleFiring { schedule: id.clone(), at, outcomes: Vec::new(), errors: Vec::new() };
        let work = async {
            let dispatches = match schedule.handler.fire(context).await {
                Ok(dispatches) => dispatches,
                Err(error) => {
                    firing.errors.push(error);
                    Vec::new()
                }
            };
            for dispatch in dispatches {
                let command = dispatch.command.clone();
                let mut request = CommandRequest::internal(plugin, dispatch);
                request.correlation_id = Some(firing_id.clone());
                request.caller = crate::outcome::Caller { user_id: Some(format!("schedule:{id}")), roles: Vec::new() };
                match self.execute(request).await {
                    Ok(outcome) => firing.outcomes.push(outcome),
                    Err(error) => firing.errors.push(format!("{command}: {error}")),
                }
            }
            let rejected = firing.outcomes.iter().filter(|o| matches!(o, CommandOutcome::Rejected { .. })).count();
            let sent = firing.outcomes.len();
            if firing.errors.is_empty() {
                tracing::info!(sent, rejected, "schedule fired");
            } else {
                tracing::warn!(sent, rejected, errors = ?firing.errors, "schedule fired with errors");
            }
        };
        work.instrument(span).await;
        let row = serde_json::json!({
            "id": id,
            "plugin": plugin,
            "schedule": name,
            "expression": schedule.handler.expression(),
            "lastFiredAt": at.0,
            "lastRanAt": Timestamp::now().0,
            "commandsSent": firing.outcomes.len(),
            "lastErrors": firing.errors,
            "nextAt": schedule.expression.next_after(at).map(|t| t.0),
        });
        if let Err(error) = self.inner.stores.queries.put(PLATFORM_SCHEDULES, &id, row).await {
            tracing::warn!(schedule = id, %error, "the schedule's firing row was not written");
        }
        Ok(firing)
    }

    /// When `plugin`'s schedule `name` last fired (its due time), if known.
    async fn last_fired(&self, plugin: &str, name: &str) -> Option<u64> {
        let row = self.inner.stores.queries.get(PLATFORM_SCHEDULES, &format!("{plugin}.{name}")).await;
        match row {
            Ok(row) => row?.get("lastFiredAt")?.as_u64(),
            Err(error) => {
                tracing::warn!(%error, "cannot read the schedule's last firing; firing");
                None
            }
        }
    }

    /// One timer task per hosted schedule (background runtimes).
    pub(super) fn spawn_schedules(&self, clock: ScheduleClock) -> Vec<JoinHandle<()>> {
        let clock = TimerClock::new(clock);
        let mut tasks = Vec::new();
        for plugin in self.inner.plugins.values() {
            for schedule in &plugin.schedules {
                let timer = self.clone().run_schedule(plugin.name.clone(), schedule.clone(), clock);
                tasks.push(tokio::spawn(timer));
            }
        }
        tasks
    }

    /// Stands by until this process holds the schedule's lease, then fires
    /// it at each of its times while it holds it.
    async fn run_schedule(self, plugin: String, schedule: ResolvedSchedule, clock: TimerClock) {
        let name = schedule.handler.name();
        let lease = format!("schedule:{plugin}.{name}");
        let mut shutdown = self.inner.shutdown.subscribe();
        let stopped = |mut shutdown: watch::Receiver<bool>| async move {
            let _ = shutdown.wait_for(|stopped| *stopped).await.map(|_| ());
        };
        loop {
            let guard = match self.inner.stores.leases.try_acquire(&lease).await {
                Ok(Some(guard)) => guard,
                other => {
                    if let Err(error) = other {
                        tracing::warn!(schedule = lease, %error, "cannot ask for the schedule's lease");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(LEASE_RETRY) => continue,
                        _ = stopped(shutdown.clone()) => return,
                    }
                }
            };
            tracing::debug!(schedule = lease, "this process fires the schedule");
            loop {
                let Some(next) = schedule.expression.next_after(clock.now()) else {
                    tracing::info!(schedule = lease, "the schedule has no more firings");
                    return;
                };
                tokio::select! {
                    _ = clock.sleep_until(next) => {}
                    _ = guard.lost() => break,
                    _ = stopped(shutdown.clone()) => return,
                }
                if *shutdown.borrow_and_update() {
                    return;
                }
                if !guard.is_held() {
                    break;
                }
                // A process whose clock lags the previous holder's could see
                // a time already fired: the row says.
                if self.last_fired(&plugin, name).await.is_some_and(|last| last >= next.0) {
                    continue;
                }
                if let Err(error) = self.fire_schedule(&plugin, name, next).await {
                    tracing::error!(schedule = lease, %error, "the schedule could not fire");
                }
            }
        }
    }
}
