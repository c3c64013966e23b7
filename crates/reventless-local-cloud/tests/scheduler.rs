//! The Scheduler against the emulator (moto stores schedules, never fires them).
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_scheduler::types::{FlexibleTimeWindow, FlexibleTimeWindowMode, ScheduleState, Target};
use reventless_aws::emulator::Emulator;
use reventless_local_cloud::iam::{Access, Denied};
use reventless_local_cloud::invoke::{InvokeFailure, Invoker};
use reventless_local_cloud::scheduler::Scheduler;
use serde_json::{Value, json};

const ALLOWED_ROLE: &str = "arn:aws:iam::123456789012:role/scheduler-allowed";
const DENIED_ROLE: &str = "arn:aws:iam::123456789012:role/scheduler-denied";
/// Trusts Lambda, not Scheduler: Scheduler cannot assume it.
const UNTRUSTED_ROLE: &str = "arn:aws:iam::123456789012:role/scheduler-untrusted";

#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<(String, Value)>>,
}

#[async_trait::async_trait]
impl Invoker for Recorder {
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, InvokeFailure> {
        self.calls.lock().unwrap().push((function.to_string(), payload));
        Ok(Value::Null)
    }

    fn role_of(&self, _function: &str) -> Option<String> {
        None
    }
}

/// Denies one role; records what it was asked.
#[derive(Default)]
struct DenyOne {
    asked: Mutex<Vec<(String, String, String)>>,
}

#[async_trait::async_trait]
impl Access for DenyOne {
    async fn authorize(&self, role_arn: &str, action: &str, resource: &str) -> Result<(), Denied> {
        self.asked.lock().unwrap().push((role_arn.into(), action.into(), resource.into()));
        if role_arn == DENIED_ROLE {
            Err(Denied { principal: role_arn.into(), action: action.into(), resource: resource.into() })
        } else {
            Ok(())
        }
    }
}

fn function_arn(name: &str) -> String {
    format!("arn:aws:lambda:us-east-1:123456789012:function:{name}")
}

async fn schedule(
    client: &aws_sdk_scheduler::Client,
    name: &str,
    expression: &str,
    role: &str,
    input: &str,
    state: ScheduleState,
) {
    client
        .create_schedule()
        .name(name)
        .schedule_expression(expression)
        .state(state)
        .flexible_time_window(FlexibleTimeWindow::builder().mode(FlexibleTimeWindowMode::Off).build().unwrap())
        .target(Target::builder().arn(function_arn(name)).role_arn(role).input(input).build().unwrap())
        .send()
        .await
        .unwrap();
}

/// The role on the emulator, trusting `service`.
async fn role(config: &aws_config::SdkConfig, arn: &str, service: &str) {
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]});
    let name = arn.rsplit('/').next().unwrap();
    let created = aws_sdk_iam::Client::new(config)
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(created.role().unwrap().arn(), arn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_schedule_fires_once_on_discovery_and_only_when_its_role_may_invoke() {
    let config = Emulator::shared().expect("moto must run for these tests").sdk_config().await;
    let client = aws_sdk_scheduler::Client::new(&config);
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    let (heartbeat, denied, disabled, cron) =
        (format!("hb-{suffix}"), format!("denied-{suffix}"), format!("off-{suffix}"), format!("cron-{suffix}"));
    let (untrusted, roleless) = (format!("untrusted-{suffix}"), format!("roleless-{suffix}"));
    let seconds = format!("seconds-{suffix}");
    role(&config, ALLOWED_ROLE, "scheduler.amazonaws.com").await;
    role(&config, DENIED_ROLE, "scheduler.amazonaws.com").await;
    role(&config, UNTRUSTED_ROLE, "lambda.amazonaws.com").await;
    schedule(&client, &heartbeat, "rate(1 minute)", ALLOWED_ROLE, r#"{"beat":1}"#, ScheduleState::Enabled).await;
    schedule(&client, &denied, "rate(1 minute)", DENIED_ROLE, r#"{"beat":2}"#, ScheduleState::Enabled).await;
    schedule(&client, &disabled, "rate(1 minute)", ALLOWED_ROLE, r#"{"beat":3}"#, ScheduleState::Disabled).await;
    schedule(&client, &cron, "cron(0 12 * * ? *)", ALLOWED_ROLE, r#"{"beat":4}"#, ScheduleState::Enabled).await;
    schedule(&client, &untrusted, "rate(1 minute)", UNTRUSTED_ROLE, r#"{"beat":5}"#, ScheduleState::Enabled).await;
    let missing_role = "arn:aws:iam::123456789012:role/scheduler-no-such-role";
    schedule(&client, &roleless, "rate(1 minute)", missing_role, r#"{"beat":6}"#, ScheduleState::Enabled).await;
    // Scheduler's rates are in minutes, hours or days: a rate in seconds never fires.
    schedule(&client, &seconds, "rate(1 second)", ALLOWED_ROLE, r#"{"beat":7}"#, ScheduleState::Enabled).await;

    let invoker = Arc::new(Recorder::default());
    let access = Arc::new(DenyOne::default());
    let scheduler = Scheduler::start(config.clone(), invoker.clone(), access.clone(), Duration::from_millis(200));

    let deadline = Instant::now() + Duration::from_secs(10);
    while invoker.calls.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the schedule never fired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Several rescans later: still once (the next run is a minute away).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let calls = invoker.calls.lock().unwrap().clone();
    assert_eq!(calls, [(heartbeat.clone(), json!({"beat": 1}))]);
    let asked = access.asked.lock().unwrap().clone();
    assert!(asked.contains(&(ALLOWED_ROLE.into(), "lambda:InvokeFunction".into(), function_arn(&heartbeat))));
    assert!(
        asked.contains(&(DENIED_ROLE.into(), "lambda:InvokeFunction".into(), function_arn(&denied))),
        "the denied schedule was found and refused, not missed"
    );
    assert!(
        !asked.iter().any(|(role, ..)| role == UNTRUSTED_ROLE || role == missing_role),
        "a role Scheduler cannot assume is never used: {asked:?}"
    );

    // Stopped: a schedule created now is never fired.
    scheduler.shutdown();
    let late = format!("late-{suffix}");
    schedule(&client, &late, "rate(1 minute)", ALLOWED_ROLE, "{}", ScheduleState::Enabled).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(invoker.calls.lock().unwrap().len(), 1);
}
