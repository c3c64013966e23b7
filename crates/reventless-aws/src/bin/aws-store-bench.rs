//! Append throughput and conflict behaviour of the DynamoDB event logs on the
//! emulator (moto): informational only, moto is not DynamoDB. Starts its own
//! emulator on loopback; prints one line per case (`--json` for JSON lines).
//!
//! Settings: events of ~100 bytes, one event per append, 400 appends per case.
use std::sync::Arc;
use std::time::Instant;

use reventless_aws::emulator::Emulator;
use reventless_aws::{StoreNames, aws_stores, provision};
use reventless_core::store::{StoreError, Stores};
use reventless_spec::{AppendCondition, NewEvent, Query, QueryItem, Tag};
use serde_json::json;

const APPENDS: usize = 400;

fn event(key: usize) -> NewEvent {
    let tags: Vec<Tag> = Tag::new("seat", format!("s{key}")).into_iter().collect();
    NewEvent::new("SeatBooked", tags, json!({"guest": format!("guest-{key}"), "note": "x".repeat(64)}))
}

async fn dcb_appends(stores: &Stores, clients: usize, same_key: bool) -> (f64, usize, usize) {
    let per_client = APPENDS / clients;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let dcb = stores.events.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut conflicts) = (0, 0);
            for round in 0..per_client {
                let key = if same_key { 0 } else { client * per_client + round };
                let new = event(key);
                let query = Query::none().item(QueryItem::new().types(["SeatBooked"]).tags(new.tags.clone()));
                let head = dcb.head("bench").await.unwrap_or(0);
                let condition = AppendCondition::new(query, Some(head));
                match dcb.append("bench", vec![new], Some(&condition)).await {
                    Ok(_) => ok += 1,
                    Err(StoreError::Conflict(_)) => conflicts += 1,
                    Err(error) => eprintln!("append failed: {error}"),
                }
            }
            (ok, conflicts)
        }));
    }
    let (mut ok, mut conflicts) = (0, 0);
    for task in tasks {
        if let Ok((o, c)) = task.await {
            ok += o;
            conflicts += c;
        }
    }
    (started.elapsed().as_secs_f64(), ok, conflicts)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let as_json = std::env::args().any(|a| a == "--json");
    let emulator = match Emulator::start() {
        Ok(emulator) => emulator,
        Err(error) => {
            eprintln!("error: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let config = emulator.sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    for (clients, same_key) in [(1, false), (16, false), (16, true)] {
        let unique = uuid::Uuid::now_v7().simple().to_string();
        let names = StoreNames {
            events_table: format!("bench-events-{unique}"),
            rows_table: format!("bench-rows-{unique}"),
            queue_prefix: "bench-".into(),
        };
        if let Err(error) = provision::create_events_table(&dynamodb, &names.events_table).await {
            eprintln!("error: {error}");
            return std::process::ExitCode::FAILURE;
        }
        let stores = Arc::new(aws_stores(&config, &names));
        let (seconds, ok, conflicts) = dcb_appends(&stores, clients, same_key).await;
        let rate = ok as f64 / seconds;
        let case = if same_key { "same tag" } else { "distinct tags" };
        if as_json {
            println!(
                "{}",
                json!({"case": case, "clients": clients, "appended": ok, "conflicts": conflicts, "appendsPerSecond": rate})
            );
        } else {
            println!(
                "DCB appends on moto, {clients:>2} client(s), {case:<13}: {ok:>4} appended, {conflicts:>4} conflicts, {rate:>7.1} appends/s"
            );
        }
    }
    std::process::ExitCode::SUCCESS
}
