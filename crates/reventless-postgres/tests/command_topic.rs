//! The durable command topic across processes: two pools stand for two
//! processes on one database. Consumers never hold one group at once, a
//! sent message outlives its sender's connections, a waiting receiver in
//! another process is woken by the send (NOTIFY), receipts of an expired
//! take do nothing.
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reventless_core::store::{CommandMessage, CommandTopic, StoreError};
use reventless_postgres::command_topic::PgCommandTopic;
use reventless_postgres::testing::shared_cluster;
use reventless_postgres::{PgDatabase, PgOptions};
use serde_json::json;
use tokio::time::Instant;

async fn process(url: &str) -> PgCommandTopic {
    PgCommandTopic::new(PgDatabase::connect(url, PgOptions { pool_size: 8 }).await.expect("connects"))
}

fn message(group: &str, n: u64) -> CommandMessage {
    CommandMessage { group_id: group.into(), dedup_id: format!("{group}-{n}"), body: json!({"group": group, "n": n}) }
}

const LONG: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_in_two_processes_never_hold_one_group_at_once() {
    let url = shared_cluster().fresh_database().expect("database");
    let processes = [process(&url).await, process(&url).await];
    const GROUPS: u64 = 12;
    const PER_GROUP: u64 = 15;
    for n in 0..PER_GROUP {
        for group in 0..GROUPS {
            processes[(n + group) as usize % 2].send("work", message(&format!("g{group}"), n)).await.unwrap();
        }
    }
    // Which consumer holds each group, from its receive until before the ack
    // that frees it (inside the time the topic holds the group for it).
    let holders: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let delivered: Arc<Mutex<BTreeMap<String, Vec<u64>>>> = Arc::default();
    let mut consumers = Vec::new();
    for consumer in 0..4 {
        let (topic, holders, delivered) = (processes[consumer % 2].clone(), holders.clone(), delivered.clone());
        consumers.push(tokio::spawn(async move {
            let mut idle = 0;
            while idle < 3 {
                let batch = topic.receive("work", 4, Duration::from_millis(200), LONG).await.unwrap();
                if batch.is_empty() {
                    idle += 1;
                    continue;
                }
                idle = 0;
                for delivery in &batch {
                    let group = &delivery.message.group_id;
                    let mut holders = holders.lock().unwrap();
                    if let Some(other) = holders.insert(group.clone(), consumer) {
                        assert_eq!(other, consumer, "group {group} held by consumers {other} and {consumer} at once");
                    }
                    let n = delivery.message.body["n"].as_u64().unwrap();
                    delivered.lock().unwrap().entry(group.clone()).or_default().push(n);
                }
                // Work takes a moment: the other consumers try the same groups meanwhile.
                tokio::time::sleep(Duration::from_millis(5)).await;
                for (index, delivery) in batch.iter().enumerate() {
                    let group = &delivery.message.group_id;
                    let last_of_group = batch[index + 1..].iter().all(|d| &d.message.group_id != group);
                    if last_of_group {
                        holders.lock().unwrap().remove(group);
                    }
                    topic.ack("work", &delivery.receipt).await.unwrap();
                }
            }
        }));
    }
    for consumer in consumers {
        consumer.await.unwrap();
    }
    let delivered = delivered.lock().unwrap();
    assert_eq!(delivered.len(), GROUPS as usize);
    for (group, numbers) in delivered.iter() {
        assert_eq!(numbers, &(0..PER_GROUP).collect::<Vec<_>>(), "{group}: each message once, in send order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_message_outlives_the_connections_of_its_sender() {
    let url = shared_cluster().fresh_database().expect("database");
    {
        let sender = process(&url).await;
        for n in 0..3 {
            sender.send("durable", message("order-1", n)).await.unwrap();
        }
        sender.send("durable", message("order-2", 0)).await.unwrap();
        // One delivery taken and never acked: its process dies with it.
        let taken = sender.receive("durable", 1, Duration::ZERO, Duration::from_millis(300)).await.unwrap();
        assert_eq!(taken.len(), 1);
    } // every connection of the first pool closes here
    let receiver = process(&url).await;
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < 4 && Instant::now() < deadline {
        for delivery in receiver.receive("durable", 10, Duration::from_secs(2), LONG).await.unwrap() {
            seen.push((delivery.message.group_id.clone(), delivery.message.body["n"].as_u64().unwrap()));
            receiver.ack("durable", &delivery.receipt).await.unwrap();
        }
    }
    seen.sort();
    let expected =
        vec![("order-1".to_string(), 0), ("order-1".into(), 1), ("order-1".into(), 2), ("order-2".into(), 0)];
    assert_eq!(seen, expected);
    // The dedup window outlives the sender too.
    receiver.send("durable", message("order-1", 0)).await.unwrap();
    assert!(receiver.receive("durable", 10, Duration::ZERO, LONG).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_waiting_in_another_process_wakes_on_the_send() {
    let url = shared_cluster().fresh_database().expect("database");
    let (waiting, sending) = (process(&url).await, process(&url).await);
    // Once, so the LISTEN connection is up before the timed wait.
    assert!(waiting.receive("wake", 1, Duration::from_millis(10), LONG).await.unwrap().is_empty());
    let started = Instant::now();
    let sender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        sending.send("wake", message("g", 1)).await.unwrap();
        Instant::now()
    });
    let received = waiting.receive("wake", 1, Duration::from_secs(10), LONG).await.unwrap();
    let received_at = Instant::now();
    let sent_at = sender.await.unwrap();
    assert_eq!(received.len(), 1);
    // Without the notice it would sleep to its one-second re-check.
    assert!(
        received_at.duration_since(started) < Duration::from_millis(900),
        "woken {:?} after the send",
        received_at.duration_since(sent_at)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_of_an_expired_take_neither_acks_nor_frees_the_group() {
    let url = shared_cluster().fresh_database().expect("database");
    let (first, second) = (process(&url).await, process(&url).await);
    first.send("expiry", message("g", 1)).await.unwrap();
    first.send("expiry", message("g", 2)).await.unwrap();
    let stale = first.receive("expiry", 1, Duration::ZERO, Duration::from_millis(200)).await.unwrap();
    assert_eq!(stale.len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The visibility ran out: the other process takes the group again.
    let retaken = second.receive("expiry", 1, Duration::from_secs(5), LONG).await.unwrap();
    assert_eq!(retaken.len(), 1);
    assert_eq!(retaken[0].message.dedup_id, "g-1");
    assert_eq!(retaken[0].receive_count, 2);
    let late_ack = first.ack("expiry", &stale[0].receipt).await;
    assert!(matches!(late_ack, Err(StoreError::Invalid(_))), "{late_ack:?}");
    let late_release = first.release("expiry", &stale[0].receipt).await;
    assert!(matches!(late_release, Err(StoreError::Invalid(_))), "{late_release:?}");
    assert!(first.receive("expiry", 10, Duration::ZERO, LONG).await.unwrap().is_empty(), "g is still held");
    second.ack("expiry", &retaken[0].receipt).await.unwrap();
    let next = first.receive("expiry", 10, Duration::from_secs(2), LONG).await.unwrap();
    assert_eq!(next.iter().map(|d| d.message.dedup_id.as_str()).collect::<Vec<_>>(), vec!["g-2"]);
    let garbage = first.ack("expiry", "not-a-receipt").await;
    assert!(matches!(garbage, Err(StoreError::Invalid(_))), "{garbage:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_dedup_id_sent_by_two_processes_at_once_is_queued_once() {
    let url = shared_cluster().fresh_database().expect("database");
    let (a, b) = (process(&url).await, process(&url).await);
    for round in 0..10 {
        let same = message("g", round);
        let (left, right) = tokio::join!(a.send("dedup", same.clone()), b.send("dedup", same));
        left.unwrap();
        right.unwrap();
    }
    let batch = a.receive("dedup", 100, Duration::from_secs(1), LONG).await.unwrap();
    let numbers: Vec<u64> = batch.iter().map(|d| d.message.body["n"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (0..10).collect::<Vec<_>>());
    let nul = a.send("dedup", CommandMessage { body: json!({"x": "\u{0}"}), ..message("g", 99) }).await;
    assert!(matches!(nul, Err(StoreError::Invalid(_))), "{nul:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listen_connection_is_replaced_and_nothing_is_missed() {
    let url = shared_cluster().fresh_database().expect("database");
    let (waiting, sending) = (process(&url).await, process(&url).await);
    assert!(waiting.receive("relisten", 1, Duration::from_millis(10), LONG).await.unwrap().is_empty());
    let admin = PgDatabase::connect(&url, PgOptions { pool_size: 1 }).await.unwrap();
    let terminated: i64 = admin
        .client()
        .await
        .unwrap()
        .query_one(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND query = 'LISTEN reventless_commands'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(terminated, 1, "the waiting process listens on one connection");
    // Sent while nobody listens: found by the re-check.
    sending.send("relisten", message("g", 1)).await.unwrap();
    let found = waiting.receive("relisten", 1, Duration::from_secs(5), LONG).await.unwrap();
    assert_eq!(found.len(), 1);
    waiting.ack("relisten", &found[0].receipt).await.unwrap();
    // Listening again: a send wakes it at once.
    let started = Instant::now();
    let sender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        sending.send("relisten", message("g", 2)).await.unwrap();
    });
    let woken = waiting.receive("relisten", 1, Duration::from_secs(10), LONG).await.unwrap();
    sender.await.unwrap();
    assert_eq!(woken.len(), 1);
    assert!(started.elapsed() < Duration::from_millis(900), "woken after {:?}", started.elapsed());
}
