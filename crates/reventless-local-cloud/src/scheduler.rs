//! Fires the Scheduler entries found on the emulator at their rate.
//!
//! moto stores EventBridge Scheduler entries but never fires them, so the
//! local cloud reads them back every `rescan` and invokes their Lambda
//! targets itself: a `rate(...)` entry once when first seen (so a freshly
//! deployed heartbeat runs without waiting a period), then at its rate; a
//! `cron(...)` entry at the times its fields match (UTC, parsed by
//! `reventless_spec::ScheduleExpression`, as the local platform does). The
//! invocation is checked as Scheduler's own call would be: the entry's role
//! must trust `scheduler.amazonaws.com` (its trust policy, read from the
//! emulator's IAM) and allow `lambda:InvokeFunction` on the target.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_scheduler::error::DisplayErrorContext;
use aws_sdk_scheduler::types::ScheduleState;
use reventless_spec::{ScheduleExpression, Timestamp};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::iam::Access;
use crate::invoke::Invoker;

/// The running scheduler; stops on [`Scheduler::shutdown`] or drop.
pub struct Scheduler {
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler").field("running", &!self.task.is_finished()).finish()
    }
}

impl Scheduler {
    /// Polls moto's EventBridge Scheduler (ListSchedules in every group,
    /// GetSchedule) every `rescan` and fires each ENABLED schedule whose
    /// target is a Lambda function ARN: a `rate(...)` once when first found,
    /// then at its rate; a `cron(...)` at its times (UTC); `at(...)` and
    /// invalid expressions are logged and skipped. Must be called within a
    /// tokio runtime.
    pub fn start(
        moto: aws_config::SdkConfig,
        invoker: Arc<dyn Invoker>,
        access: Arc<dyn Access>,
        rescan: Duration,
    ) -> Self {
        let client = aws_sdk_scheduler::Client::new(&moto);
        let services = Services { invoker, access, iam: aws_sdk_iam::Client::new(&moto) };
        let task = tokio::spawn(run(client, services, rescan.max(Duration::from_millis(10))));
        Scheduler { task }
    }

    pub fn shutdown(&self) {
        self.task.abort();
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One schedule as last read, with when it fires next.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    expression: String,
    function_arn: String,
    role_arn: String,
    input: Value,
    /// The parsed expression (`None`: not one Scheduler accepts, or `at(...)`).
    schedule: Option<ScheduleExpression>,
}

impl Entry {
    /// When it fires next after `now`: a rate a period on, a cron at its next time.
    fn next_after(&self, now: Instant) -> Option<Instant> {
        let schedule = self.schedule.as_ref()?;
        if let Some(period) = schedule.period() {
            return Some(now + period);
        }
        let wall = Timestamp::now();
        let next = schedule.next_after(wall)?;
        Some(now + Duration::from_millis(next.0.saturating_sub(wall.0)))
    }

    fn is_rate(&self) -> bool {
        self.schedule.as_ref().is_some_and(|s| s.period().is_some())
    }
}

/// What firing a schedule needs.
#[derive(Clone)]
struct Services {
    invoker: Arc<dyn Invoker>,
    access: Arc<dyn Access>,
    /// The emulator's IAM: whether the schedule's role trusts Scheduler.
    iam: aws_sdk_iam::Client,
}

struct Armed {
    entry: Entry,
    next: Option<Instant>,
}

async fn run(client: aws_sdk_scheduler::Client, services: Services, rescan: Duration) {
    let mut armed: HashMap<(String, String), Armed> = HashMap::new();
    let mut next_scan = Instant::now();
    loop {
        let now = Instant::now();
        if now >= next_scan {
            match scan(&client).await {
                Ok(found) => {
                    armed.retain(|key, _| found.contains_key(key));
                    for (key, entry) in found {
                        match armed.get_mut(&key) {
                            Some(current) if current.entry == entry => {}
                            Some(current) => {
                                // Changed: the new schedule counts from now; it is not a new discovery.
                                current.next = entry.next_after(now);
                                current.entry = entry;
                            }
                            None if entry.schedule.is_none() => {
                                tracing::warn!(group = %key.0, schedule = %key.1, expression = %entry.expression, "not a rate(...) or cron(...) expression EventBridge Scheduler accepts (at(...) does not fire here); skipped");
                                armed.insert(key, Armed { entry, next: None });
                            }
                            None => {
                                if entry.is_rate() {
                                    fire(&key, &entry, &services);
                                }
                                let next = entry.next_after(now);
                                armed.insert(key, Armed { entry, next });
                            }
                        }
                    }
                }
                Err(problem) => tracing::warn!(problem, "cannot read the schedules"),
            }
            next_scan = now + rescan;
        }
        for (key, schedule) in armed.iter_mut() {
            let Some(next) = schedule.next.filter(|next| now >= *next) else { continue };
            fire(key, &schedule.entry, &services);
            // Missed firings are not made up, as Scheduler does not.
            schedule.next = match schedule.entry.schedule.as_ref().and_then(ScheduleExpression::period) {
                Some(period) => {
                    let mut following = next + period;
                    while following <= now {
                        following += period;
                    }
                    Some(following)
                }
                None => schedule.entry.next_after(now),
            };
        }
        let wake = armed.values().filter_map(|a| a.next).fold(next_scan, Instant::min);
        tokio::time::sleep_until(wake).await;
    }
}

/// The ENABLED schedules with a Lambda target, by (group, name).
async fn scan(client: &aws_sdk_scheduler::Client) -> Result<HashMap<(String, String), Entry>, String> {
    let mut found = HashMap::new();
    let mut groups = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_schedule_groups()
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| format!("ListScheduleGroups: {}", DisplayErrorContext(&e)))?;
        groups.extend(page.schedule_groups().iter().filter_map(|g| g.name().map(str::to_string)));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    if !groups.iter().any(|g| g == "default") {
        groups.push("default".to_string());
    }
    for group in groups {
        let mut token = None;
        loop {
            let page = client
                .list_schedules()
                .group_name(&group)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| format!("ListSchedules in {group}: {}", DisplayErrorContext(&e)))?;
            for summary in page.schedules() {
                let Some(name) = summary.name() else { continue };
                if summary.state() == Some(&ScheduleState::Disabled) {
                    continue;
                }
                let schedule = match client.get_schedule().group_name(&group).name(name).send().await {
                    Ok(schedule) => schedule,
                    Err(e) => {
                        tracing::warn!(group, name, error = %DisplayErrorContext(&e), "GetSchedule failed");
                        continue;
                    }
                };
                if schedule.state() != Some(&ScheduleState::Enabled) {
                    continue;
                }
                let Some(target) = schedule.target() else { continue };
                let function_arn = target.arn().to_string();
                if !function_arn.starts_with("arn:aws:lambda:") {
                    continue;
                }
                let expression = schedule.schedule_expression().unwrap_or_default().to_string();
                let parsed = expression.parse::<ScheduleExpression>().ok();
                let input = match target.input() {
                    None => Value::Object(Default::default()),
                    Some(text) => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string())),
                };
                found.insert(
                    (group.clone(), name.to_string()),
                    Entry {
                        expression,
                        function_arn,
                        role_arn: target.role_arn().to_string(),
                        input,
                        schedule: parsed,
                    },
                );
            }
            token = page.next_token;
            if token.is_none() {
                break;
            }
        }
    }
    Ok(found)
}

/// The function name of a Lambda function ARN (`...:function:NAME[:qualifier]`).
fn function_name(arn: &str) -> Option<&str> {
    arn.split(':').skip_while(|part| *part != "function").nth(1).filter(|name| !name.is_empty())
}

/// Invokes the target in the background (a slow function must not delay other schedules).
fn fire(key: &(String, String), entry: &Entry, services: &Services) {
    let Some(function) = function_name(&entry.function_arn).map(str::to_string) else {
        tracing::warn!(schedule = %key.1, target = %entry.function_arn, "not a function ARN");
        return;
    };
    let (services, entry, schedule) = (services.clone(), entry.clone(), key.1.clone());
    tokio::spawn(async move {
        // Scheduler assumes the role: its trust policy must name Scheduler.
        match crate::iam::service_may_assume(&services.iam, &entry.role_arn, "scheduler.amazonaws.com").await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    schedule,
                    role = entry.role_arn,
                    "the schedule's role cannot be assumed by scheduler.amazonaws.com (missing, or its trust policy does not allow it); not fired"
                );
                return;
            }
            Err(problem) => {
                tracing::warn!(schedule, role = entry.role_arn, problem, "cannot read the schedule's role; not fired");
                return;
            }
        }
        if let Err(denied) =
            services.access.authorize(&entry.role_arn, "lambda:InvokeFunction", &entry.function_arn).await
        {
            tracing::warn!(schedule, %denied, "the schedule's role may not invoke its target");
            return;
        }
        match services.invoker.invoke(&function, entry.input).await {
            Ok(_) => tracing::debug!(schedule, function, "schedule fired"),
            Err(failure) => tracing::warn!(schedule, function, %failure, "the scheduled invocation failed"),
        }
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::Value;
    use tokio::time::Instant;

    use super::{Entry, function_name};

    fn entry(expression: &str) -> Entry {
        Entry {
            expression: expression.to_string(),
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
            role_arn: "arn:aws:iam::123456789012:role/r".into(),
            input: Value::Null,
            schedule: expression.parse().ok(),
        }
    }

    #[test]
    fn rates_fire_a_period_on_and_crons_at_their_next_time() {
        let now = Instant::now();
        assert_eq!(entry("rate(1 minute)").next_after(now), Some(now + Duration::from_secs(60)));
        assert_eq!(entry("rate(2 hours)").next_after(now), Some(now + Duration::from_secs(7200)));
        assert!(entry("rate(5 minutes)").is_rate());
        // Every minute: within the next 60 s; a cron is not a rate (not fired on discovery).
        let cron = entry("cron(* * * * ? *)");
        assert!(!cron.is_rate());
        let next = cron.next_after(now).unwrap();
        assert!(next > now && next <= now + Duration::from_secs(60), "{:?}", next - now);
        // The next 1st of January at 00:00 UTC is months away, not now.
        let yearly = entry("cron(0 0 1 1 ? *)").next_after(now).unwrap();
        assert!(yearly > now + Duration::from_secs(60), "{:?}", yearly - now);
        // A year that has passed never fires.
        assert_eq!(entry("cron(0 0 1 1 ? 1999)").next_after(now), None);
    }

    #[test]
    fn expressions_scheduler_refuses_do_not_fire() {
        for bad in ["rate(30 seconds)", "rate(0 minutes)", "rate(1 minutes)", "cron(0 12 * * *)", "cron(0 12 * * * *)"]
        {
            assert_eq!(entry(bad).schedule, None, "{bad}");
            assert_eq!(entry(bad).next_after(Instant::now()), None, "{bad}");
        }
        assert_eq!(entry("at(2030-01-01T00:00:00)").schedule, None, "one-time entries are not fired");
    }

    #[test]
    fn function_names_come_from_arns() {
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:shop-dev-Heartbeat"),
            Some("shop-dev-Heartbeat")
        );
        assert_eq!(function_name("arn:aws:lambda:us-east-1:123456789012:function:f:live"), Some("f"));
        assert_eq!(function_name("arn:aws:sqs:us-east-1:123456789012:q"), None);
    }
}
