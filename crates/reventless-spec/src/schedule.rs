//! Schedules: a component that sends its plugin's commands at the times of
//! an EventBridge Scheduler expression (`rate(5 minutes)`,
//! `cron(0/15 * * * ? *)`), evaluated in UTC.
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;

use crate::{Capabilities, Dispatch, ReadModel, Timestamp};

mod calendar;
mod expression;

pub use expression::{Cron, ScheduleExpression, ScheduleExpressionError};

/// A component that sends commands on a schedule. Each firing calls
/// [`Schedule::fire`], whose commands run as the plugin's own (a system
/// caller: no roles are checked). One process fires a schedule at a time;
/// a firing missed while no process ran is not made up (as on AWS), so
/// `fire` should look at all outstanding work, not only the last period's.
///
/// ```ignore
/// struct CancelUnpaidOrders;
/// impl Schedule for CancelUnpaidOrders {
///     const NAME: &'static str = "CancelUnpaidOrders";
///     const EXPRESSION: &'static str = "rate(5 minutes)";
///     async fn fire(context: &ScheduleContext) -> Result<Vec<Dispatch>, String> {
///         // The rows due at `context.at()`, read with `context.list::<R>(…)`, as commands.
///         Ok(Vec::new())
///     }
/// }
/// ```
pub trait Schedule: Send + Sync + 'static {
    /// E.g. `CancelUnpaidOrders` (unique among the plugin's components).
    const NAME: &'static str;
    /// `rate(N minute(s)|hour(s)|day(s))` or `cron(min hour dom month dow year)`,
    /// UTC; checked when the plugin resolves.
    const EXPRESSION: &'static str;

    /// The commands to send for the firing at `context.at()`; an `Err` is
    /// logged and the next firing comes as scheduled.
    fn fire(context: &ScheduleContext) -> impl Future<Output = Result<Vec<Dispatch>, String>> + Send;
}

/// A boxed future of a row read.
pub type RowFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// Reads query rows for a schedule (the platform's query store).
pub trait RowReader: Send + Sync {
    /// The row `id` of `table`, if any.
    fn get<'a>(&'a self, table: &'a str, id: &'a str) -> RowFuture<'a, Option<Value>>;
    /// Up to a page of rows of `table` whose top-level `field` equals
    /// `value`, after the cursor `after`; the rows and the next page's
    /// cursor (`None` on the last page).
    fn list_eq<'a>(
        &'a self,
        table: &'a str,
        field: &'a str,
        value: Value,
        after: Option<String>,
    ) -> RowFuture<'a, (Vec<Value>, Option<String>)>;
}

/// What a firing knows: its time, the plugin's read models and capabilities.
#[derive(Clone)]
pub struct ScheduleContext {
    plugin: String,
    at: Timestamp,
    rows: Arc<dyn RowReader>,
    capabilities: Capabilities,
}

impl std::fmt::Debug for ScheduleContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScheduleContext").field("plugin", &self.plugin).field("at", &self.at).finish_non_exhaustive()
    }
}

impl ScheduleContext {
    /// The context of a firing of one of `plugin`'s schedules at `at`.
    pub fn new(plugin: impl Into<String>, at: Timestamp, rows: Arc<dyn RowReader>, capabilities: Capabilities) -> Self {
        Self { plugin: plugin.into(), at, rows, capabilities }
    }

    /// When this firing was due (the scheduled time, not when it ran).
    pub fn at(&self) -> Timestamp {
        self.at
    }

    /// The plugin's capabilities (external services, secrets).
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// The row `id` of the plugin's read model `R`.
    pub async fn get<R: ReadModel>(&self, id: &str) -> Result<Option<R::Row>, String> {
        let table = format!("{}_{}", self.plugin, R::PLURAL);
        match self.rows.get(&table, id).await? {
            Some(row) => serde_json::from_value(row).map(Some).map_err(|e| format!("a row of {table}: {e}")),
            None => Ok(None),
        }
    }

    /// Every row of the plugin's read model `R` whose `field` equals `value`
    /// (an indexed field reads fastest), all pages.
    pub async fn list<R: ReadModel>(&self, field: &str, value: impl Into<Value>) -> Result<Vec<R::Row>, String> {
        let table = format!("{}_{}", self.plugin, R::PLURAL);
        let value = value.into();
        let mut rows = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = self.rows.list_eq(&table, field, value.clone(), after).await?;
            for row in page {
                rows.push(serde_json::from_value(row).map_err(|e| format!("a row of {table}: {e}"))?);
            }
            match next {
                Some(cursor) => after = Some(cursor),
                None => return Ok(rows),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::calendar::Civil;
    use super::*;

    fn at(year: u32, month: u32, day: u32, hour: u32, minute: u32) -> Timestamp {
        Timestamp(Civil::millis(year, month, day, hour, minute))
    }

    fn next(expression: &str, after: Timestamp) -> Timestamp {
        expression.parse::<ScheduleExpression>().unwrap().next_after(after).unwrap()
    }

    /// The first `n` firings after `after`.
    fn firings(expression: &str, after: Timestamp, n: usize) -> Vec<Timestamp> {
        let parsed: ScheduleExpression = expression.parse().unwrap();
        let mut out: Vec<Timestamp> = Vec::new();
        let mut from = after;
        for _ in 0..n {
            from = parsed.next_after(from).unwrap();
            out.push(from);
        }
        out
    }

    #[test]
    fn rates_fire_on_multiples_of_their_period() {
        let noon = at(2026, 12, 1, 12, 0);
        assert_eq!(next("rate(5 minutes)", Timestamp(noon.0 + 1)), at(2026, 12, 1, 12, 5));
        assert_eq!(next("rate(5 minutes)", Timestamp(noon.0 - 1)), noon);
        assert_eq!(next("rate(1 hour)", Timestamp(noon.0)), at(2026, 12, 1, 13, 0), "strictly after");
        assert_eq!(next("rate(1 day)", noon), at(2026, 12, 2, 0, 0));
        assert_eq!(next(" rate(1 minute) ", noon), at(2026, 12, 1, 12, 1));
        let parsed: ScheduleExpression = "rate(2 hours)".parse().unwrap();
        assert_eq!(parsed.period(), Some(std::time::Duration::from_secs(7200)));
    }

    #[test]
    fn crons_with_steps_lists_ranges_and_names() {
        let after = at(2026, 12, 1, 10, 7);
        assert_eq!(
            firings("cron(0/15 * * * ? *)", after, 3),
            vec![at(2026, 12, 1, 10, 15), at(2026, 12, 1, 10, 30), at(2026, 12, 1, 10, 45)]
        );
        // Weekdays at 08:30 (2026-12-05 is a Saturday).
        assert_eq!(
            firings("cron(30 8 ? * MON-FRI *)", at(2026, 12, 4, 9, 0), 2),
            vec![at(2026, 12, 7, 8, 30), at(2026, 12, 8, 8, 30)]
        );
        assert_eq!(
            firings("cron(0 9,17 1 JAN,jul ? *)", at(2026, 12, 1, 0, 0), 3),
            vec![at(2027, 1, 1, 9, 0), at(2027, 1, 1, 17, 0), at(2027, 7, 1, 9, 0)]
        );
        assert_eq!(next("cron(15 10 * * ? 2028)", at(2026, 12, 1, 0, 0)), at(2028, 1, 1, 10, 15));
        assert_eq!(next("cron(0 0 29 2 ? *)", at(2026, 3, 1, 0, 0)), at(2028, 2, 29, 0, 0), "the next leap day");
        assert_eq!(next("cron(0 12 * * ? *)", at(2026, 12, 31, 12, 0)), at(2027, 1, 1, 12, 0));
        assert_eq!(next("cron(5-10/5 */6 * * ? *)", at(2026, 12, 1, 0, 5)), at(2026, 12, 1, 0, 10));
        assert_eq!(next("cron(5-10/5 */6 * * ? *)", at(2026, 12, 1, 0, 10)), at(2026, 12, 1, 6, 5));
    }

    #[test]
    fn crons_with_last_weekday_and_nth() {
        // December 2026: the 31st is a Thursday; the 1st a Tuesday.
        assert_eq!(next("cron(0 0 L * ? *)", at(2026, 12, 1, 0, 0)), at(2026, 12, 31, 0, 0));
        assert_eq!(next("cron(0 0 L * ? *)", at(2027, 2, 1, 0, 0)), at(2027, 2, 28, 0, 0));
        // January 2027 ends on a Sunday: its last weekday is Friday the 29th.
        assert_eq!(next("cron(0 0 LW * ? *)", at(2027, 1, 1, 0, 0)), at(2027, 1, 29, 0, 0));
        // 2026-11-15 is a Sunday → Monday the 16th; 2027-05-01 a Saturday → Monday the 3rd.
        assert_eq!(next("cron(0 0 15W * ? *)", at(2026, 11, 1, 0, 0)), at(2026, 11, 16, 0, 0));
        assert_eq!(next("cron(0 0 1W 5 ? *)", at(2027, 1, 1, 0, 0)), at(2027, 5, 3, 0, 0));
        // The last Friday, the second Tuesday, Saturdays.
        assert_eq!(next("cron(0 0 ? * 6L *)", at(2026, 12, 1, 0, 0)), at(2026, 12, 25, 0, 0));
        assert_eq!(next("cron(0 0 ? * 3#2 *)", at(2026, 12, 1, 0, 0)), at(2026, 12, 8, 0, 0));
        assert_eq!(next("cron(0 0 ? * TUE#1 *)", at(2026, 12, 2, 0, 0)), at(2027, 1, 5, 0, 0));
        assert_eq!(next("cron(0 0 ? * L *)", at(2026, 12, 1, 0, 0)), at(2026, 12, 5, 0, 0));
    }

    #[test]
    fn a_cron_whose_years_passed_never_fires_again() {
        let parsed: ScheduleExpression = "cron(0 0 1 1 ? 1999)".parse().unwrap();
        assert_eq!(parsed.next_after(at(2026, 1, 1, 0, 0)), None);
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        let reason = |expression: &str| expression.parse::<ScheduleExpression>().unwrap_err().reason;
        assert!(reason("rate(30 seconds)").contains("minute(s), hour(s) and day(s)"));
        assert!(reason("rate(1 minutes)").contains("rate(1 minute)"));
        assert!(reason("rate(5 minute)").contains("rate(5 minutes)"));
        assert!(reason("rate(0 minutes)").contains("at least 1"));
        assert!(reason("rate(five minutes)").contains("not a whole number"));
        assert!(reason("rate(5)").contains("rate(N unit)"));
        assert!(reason("cron(0 12 * * *)").contains("6 fields"));
        assert!(reason("cron(0 12 * * * *)").contains("must be `?`"));
        assert!(reason("cron(0 12 ? * ? *)").contains("both"));
        assert!(reason("cron(60 12 * * ? *)").contains("minutes field: `60` is out of range 0-59"));
        assert!(reason("cron(0 24 * * ? *)").contains("hours"));
        assert!(reason("cron(0 0 ? * 8 *)").contains("day-of-week field: `8` is out of range 1-7"));
        assert!(reason("cron(0 0 ? * FUN *)").contains("SUN-SAT"));
        assert!(reason("cron(0 0 1 13 ? *)").contains("month"));
        assert!(reason("cron(0/0 0 1 * ? *)").contains("step"));
        assert!(reason("cron(30-10 0 1 * ? *)").contains("backwards"));
        assert!(reason("cron(0 0 ? * 2#6 *)").contains("`#`"));
        assert!(reason("cron(0 0 1 * ? 2300)").contains("year"));
        assert!(reason("at(2030-01-01T00:00:00)").contains("fires once"));
        assert!(reason("every 5 minutes").contains("expected"));
        let error = "cron(0 0 ? * 8 *)".parse::<ScheduleExpression>().unwrap_err();
        assert!(error.to_string().starts_with("`cron(0 0 ? * 8 *)`: "), "{error}");
    }
}
