//! The PostgreSQL event log beyond the contract: several processes (two
//! pools on one database) racing the same decisions, group commit, corrupt
//! rows and refused input.
use std::collections::BTreeSet;
use std::sync::Arc;

use reventless_core::store::{EventLog, StoreError, StreamRef};
use reventless_postgres::event_log::PgEventLog;
use reventless_postgres::testing::shared_cluster;
use reventless_postgres::{PgDatabase, PgOptions};
use reventless_spec::{AppendCondition, NewEvent, Query, QueryItem, Tag};
use serde_json::json;

fn tag(text: &str) -> Tag {
    text.parse().expect("valid tag")
}

fn event(event_type: &str, tags: &[&str]) -> NewEvent {
    NewEvent::new(event_type, tags.iter().map(|t| tag(t)).collect(), json!({}))
}

async fn database() -> PgDatabase {
    let url = shared_cluster().fresh_database().expect("a fresh database");
    PgDatabase::connect(&url, PgOptions::default()).await.expect("connects")
}

/// Two handles on one database as two processes have them: pools and
/// append queues of their own.
async fn two_processes() -> (PgDatabase, [Arc<PgEventLog>; 2]) {
    let db = database().await;
    let url = format!("postgres://postgres@127.0.0.1:{}/{}", shared_cluster().port(), dbname(&db).await);
    let other = PgDatabase::connect(&url, PgOptions::default()).await.expect("second process connects");
    (db.clone(), [Arc::new(PgEventLog::new(db)), Arc::new(PgEventLog::new(other))])
}

async fn dbname(db: &PgDatabase) -> String {
    db.client().await.expect("client").query_one("SELECT current_database()", &[]).await.expect("name").get(0)
}

/// Racers per process in each round.
const RACERS: usize = 8;
const ROUNDS: usize = 40;

/// Waits for every racer: the number that appended (the rest must conflict).
async fn winners(tasks: Vec<tokio::task::JoinHandle<Result<u64, StoreError>>>) -> Vec<u64> {
    let mut won = Vec::new();
    for task in tasks {
        match task.await.expect("racer") {
            Ok(position) => won.push(position),
            Err(StoreError::Conflict(_)) => {}
            Err(other) => panic!("a racer must win or conflict, got {other:?}"),
        }
    }
    won
}

async fn assert_gapless(log: &PgEventLog, name: &str) {
    let all = log.read_all(name, 0, 100_000).await.expect("read");
    let positions: Vec<u64> = all.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=all.len() as u64).collect::<Vec<_>>(), "positions 1, 2, 3… across processes");
    assert_eq!(log.head(name).await.expect("head"), all.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_register_once_and_take_a_stream_version_exactly_once() {
    let (_db, processes) = two_processes().await;
    let name = "register_once";
    for round in 0..ROUNDS {
        let id = format!("r{round}");
        let once = Query::none().item(QueryItem::new().types(["Registered"]).tags([tag(&format!("user:{id}"))]));
        let mut dcb = Vec::new();
        let mut streams = Vec::new();
        for racer in 0..RACERS * 2 {
            let log = processes[racer % 2].clone();
            let (once, user) = (once.clone(), format!("user:{id}"));
            dcb.push(tokio::spawn(async move {
                let condition = AppendCondition::new(once, None);
                let registered = event("Registered", &[&user, &format!("racer:{racer}")]);
                log.append(name, vec![registered], Some(&condition)).await.map(|a| a.last_position)
            }));
            let (log, account) = (processes[(racer + 1) % 2].clone(), id.clone());
            streams.push(tokio::spawn(async move {
                let stream = StreamRef { aggregate: "Account", id: &account };
                log.append_to_stream(name, stream, 0, vec![event("Opened", &[])]).await.map(|a| a.last_position)
            }));
        }
        assert_eq!(winners(dcb).await.len(), 1, "round {round}: one registration of {RACERS}×2 across two processes");
        assert_eq!(winners(streams).await.len(), 1, "round {round}: one stream at version 1");
        for log in &processes {
            assert_eq!(log.read(name, &once, None, None).await.expect("read").len(), 1);
            let stream = StreamRef { aggregate: "Account", id: &id };
            assert_eq!(log.read_stream(name, stream, 0).await.expect("stream").len(), 1);
        }
    }
    assert_gapless(&processes[0], name).await;
}

/// Process A moves an aggregate while process B's slices decide on its
/// entity tag: a slice's append never lands after an aggregate event it
/// did not see.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slice_in_one_process_sees_the_aggregate_events_of_another() {
    let (_db, [aggregates, slices]) = two_processes().await;
    let name = "boundary";
    for round in 0..ROUNDS {
        let id = format!("b{round}");
        let boundary = Query::none().item(QueryItem::new().tags([tag(&format!("account:{id}"))]));
        let mut opened = Vec::new();
        let mut checked = Vec::new();
        for _ in 0..RACERS {
            let (log, account) = (aggregates.clone(), id.clone());
            opened.push(tokio::spawn(async move {
                let stream = StreamRef { aggregate: "Account", id: &account };
                // The entity tag is not among the event's tags: the stream carries it.
                log.append_to_stream(name, stream, 0, vec![event("Opened", &[])]).await.map(|a| a.last_position)
            }));
            let (log, boundary, entity) = (slices.clone(), boundary.clone(), format!("account:{id}"));
            checked.push(tokio::spawn(async move {
                let condition = AppendCondition::new(boundary, None);
                let check = event("Checked", &[&entity]);
                log.append(name, vec![check], Some(&condition)).await.map(|a| a.last_position)
            }));
        }
        let opened = winners(opened).await;
        let checked = winners(checked).await;
        assert_eq!(opened.len(), 1, "round {round}");
        assert!(checked.len() <= 1, "round {round}: at most one append on an unchanged boundary: {checked:?}");
        if let Some(check) = checked.first() {
            assert!(*check < opened[0], "round {round}: the check landed after an aggregate event it did not see");
        }
    }
    assert_gapless(&slices, name).await;
}

/// Batches holding several logs take their head rows in one order in every
/// process: no deadlock, every append lands, each log stays gapless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_appending_to_several_logs_all_land() {
    let (_db, processes) = two_processes().await;
    let logs = ["several_a", "several_b", "several_c"];
    let mut tasks = Vec::new();
    for racer in 0..RACERS * 2 {
        let log = processes[racer % 2].clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..10 {
                // Each racer walks the logs in its own order.
                let name = logs[(racer + round) % logs.len()];
                log.append(name, vec![event("Noted", &[&format!("racer:{racer}")])], None).await?;
            }
            Ok::<_, StoreError>(())
        }));
    }
    for task in tasks {
        task.await.expect("racer").expect("every append lands");
    }
    let mut total = 0;
    for name in logs {
        assert_gapless(&processes[1], name).await;
        total += processes[0].head(name).await.expect("head");
    }
    assert_eq!(total, (RACERS * 2 * 10) as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_transactions_and_a_conflict_fails_alone() {
    let db = database().await;
    let log = Arc::new(PgEventLog::new(db.clone()));
    let name = "grouped";
    let taken = Query::none().item(QueryItem::new().types(["Taken"]).tags([tag("seat:hot")]));
    log.append(name, vec![event("Taken", &["seat:hot"])], None).await.expect("seed");
    let mut tasks = Vec::new();
    for racer in 0..64 {
        let (log, taken) = (log.clone(), taken.clone());
        tasks.push(tokio::spawn(async move {
            if racer % 8 == 0 {
                // Conflicts with the seed: refused alone.
                let condition = AppendCondition::new(taken, Some(0));
                log.append(name, vec![event("Taken", &["seat:hot"])], Some(&condition)).await
            } else {
                let seat = format!("seat:s{racer}");
                let query = Query::none().item(QueryItem::new().types(["Taken"]).tags([tag(&seat)]));
                log.append(name, vec![event("Taken", &[&seat])], Some(&AppendCondition::new(query, None))).await
            }
        }));
    }
    for (racer, task) in tasks.into_iter().enumerate() {
        let result = task.await.expect("task");
        if racer % 8 == 0 {
            assert!(matches!(result, Err(StoreError::Conflict(_))), "racer {racer}: {result:?}");
        } else {
            result.unwrap_or_else(|e| panic!("racer {racer} must append: {e:?}"));
        }
    }
    assert_gapless(&log, name).await;
    // Each transaction that wrote events left its id on them (xmin).
    let client = db.client().await.expect("client");
    let transactions: i64 = client
        .query_one("SELECT COUNT(DISTINCT xmin::text) FROM event WHERE log = $1 AND position > 1", &[&name])
        .await
        .expect("count")
        .get(0);
    assert!(transactions < 28, "56 concurrent appends committed in {transactions} transactions: no group commit");
}

/// Reads and conditions of every shape the SQL distinguishes: types
/// without tags (one index range each, merged), a tag found as a tag row or
/// as an aggregate's stream, further tags, any event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_conditions_of_every_shape() {
    let log = PgEventLog::new(database().await);
    let name = "shapes";
    let numbered = |event_type: &str, tags: &[&str], n: i64| {
        NewEvent::new(event_type, tags.iter().map(|t| tag(t)).collect(), json!({ "n": n }))
    };
    log.append(name, vec![numbered("A", &["x:1"], 1), numbered("B", &["x:2"], 2), numbered("C", &[], 3)], None)
        .await
        .expect("seed");
    let account = StreamRef { aggregate: "Account", id: "a1" };
    log.append_to_stream(name, account, 0, vec![numbered("D", &[], 4), numbered("A", &["y:1"], 5)])
        .await
        .expect("stream");
    let numbers = |events: Vec<reventless_spec::EventEnvelope>| -> Vec<i64> {
        events.iter().map(|e| e.data["n"].as_i64().unwrap_or(-1)).collect()
    };
    let read = |query: Query, after: Option<u64>, limit: Option<usize>| {
        let log = &log;
        async move { numbers(log.read(name, &query, after, limit).await.expect("read")) }
    };
    let types = |list: &[&str]| Query::none().item(QueryItem::new().types(list.iter().copied()));
    let tags = |list: &[&str]| Query::none().item(QueryItem::new().tags(list.iter().map(|t| tag(t))));
    assert_eq!(read(types(&["A", "C"]), None, None).await, vec![1, 3, 5]);
    assert_eq!(read(types(&["A", "C"]), Some(1), Some(1)).await, vec![3]);
    assert_eq!(read(types(&["D", "B"]), None, Some(1)).await, vec![2]);
    assert_eq!(read(tags(&["account:a1"]), None, None).await, vec![4, 5]);
    assert_eq!(read(tags(&["y:1", "account:a1"]), None, None).await, vec![5]);
    assert_eq!(read(tags(&["account:a1", "y:1"]), None, None).await, vec![5]);
    assert_eq!(read(tags(&["x:1", "y:1"]), None, None).await, Vec::<i64>::new());
    let two_items = types(&["C"]).item(QueryItem::new().types(["A"]).tags([tag("account:a1")]));
    assert_eq!(read(two_items, None, None).await, vec![3, 5]);

    let conflicts = |query: Query, after: Option<u64>| {
        let log = &log;
        async move {
            let condition = AppendCondition::new(query, after);
            match log.append(name, vec![numbered("Z", &["z:1"], 0)], Some(&condition)).await {
                Err(StoreError::Conflict(_)) => true,
                Ok(_) => false,
                Err(other) => panic!("a condition conflicts or holds: {other:?}"),
            }
        }
    };
    // Each holding condition appends a Z (positions 6, 7, …): later
    // conditions are written to hold or conflict regardless.
    assert!(conflicts(types(&["D"]), None).await, "an aggregate event found by type");
    assert!(!conflicts(types(&["D"]), Some(4)).await);
    assert!(!conflicts(tags(&["x:1", "nope:1"]), None).await);
    assert!(conflicts(tags(&["account:a1", "y:1"]), Some(4)).await);
    assert!(!conflicts(tags(&["account:a1", "y:1"]), Some(5)).await);
    let head = log.head(name).await.expect("head");
    assert!(conflicts(Query::all(), Some(head - 1)).await);
    assert!(!conflicts(Query::all(), Some(head)).await);
    assert!(!conflicts(Query::none(), None).await, "a query without items matches nothing");
    assert_gapless(&log, name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_rows_are_reported_with_their_place() {
    let db = database().await;
    let log = PgEventLog::new(db.clone());
    let client = db.client().await.expect("client");
    let insert = "INSERT INTO event (log, position, stream_type, stream_id, version, event_id, type, tags, data, meta, recorded_at) \
                  VALUES ($1, 1, $2, $2, $3, gen_random_uuid(), 'E', $4::text::json, '{}', $5::text::json, $6)";
    struct Corrupt {
        log: &'static str,
        stream: Option<&'static str>,
        tags: &'static str,
        meta: &'static str,
        recorded_at: i64,
        column: &'static str,
    }
    let row = |log, tags, meta, column| Corrupt { log, stream: None, tags, meta, recorded_at: 0, column };
    let cases = [
        row("bad_tags", r#"{"not": "a list"}"#, "{}", "tags"),
        row("bad_tag_text", r#"["no colon"]"#, "{}", "tags"),
        row("bad_meta", "[]", "[1, 2]", "meta"),
        Corrupt { stream: Some("account"), ..row("stream_without_version", "[]", "{}", "stream_id") },
        Corrupt { recorded_at: -5, ..row("negative_time", "[]", "{}", "recorded_at") },
    ];
    for Corrupt { log: name, stream, tags, meta, recorded_at, column } in cases {
        client
            .execute(insert, &[&name, &stream, &None::<i64>, &tags, &meta, &recorded_at])
            .await
            .expect("insert a corrupt row");
        for read in [log.read(name, &Query::all(), None, None).await, log.read_all(name, 0, 10).await] {
            match &read {
                Err(StoreError::Corrupt { location, .. }) => {
                    assert!(location.contains(&format!("{name}#1")) && location.contains(column), "{name}: {location}");
                }
                other => panic!("{name}: a corrupt row must be reported, got {other:?}"),
            }
        }
    }
    client.execute("INSERT INTO event_log_head VALUES ('bad_head', -1)", &[]).await.expect("insert head");
    let head = log.head("bad_head").await;
    assert!(matches!(&head, Err(StoreError::Corrupt { location, .. }) if location.contains("bad_head")), "{head:?}");
    let append = log.append("bad_head", vec![event("E", &[])], None).await;
    assert!(matches!(append, Err(StoreError::Corrupt { .. })), "no append after a corrupt head: {append:?}");
    // A head behind its log's events: refused as corrupt, not as a conflict to retry.
    client
        .execute(insert, &[&"behind", &None::<&str>, &None::<i64>, &"[]", &"{}", &0i64])
        .await
        .expect("insert an event without its head");
    let append = log.append("behind", vec![event("E", &[])], None).await;
    assert!(matches!(&append, Err(StoreError::Corrupt { location, .. }) if location.contains("behind")), "{append:?}");
    // The failed batches left no connection inside a transaction: appends go on.
    log.append("fine", vec![event("E", &[])], None).await.expect("appends after failed batches");
    assert_eq!(log.head("fine").await.expect("head"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_input_appends_nothing_and_fails_alone() {
    let db = database().await;
    let log = Arc::new(PgEventLog::new(db));
    let name = "refused";
    let empty = log.append(name, vec![], None).await;
    assert!(matches!(empty, Err(StoreError::Invalid(_))), "{empty:?}");
    let stream = StreamRef { aggregate: "Account", id: "a1" };
    let empty = log.append_to_stream(name, stream, 0, vec![]).await;
    assert!(matches!(empty, Err(StoreError::Invalid(_))), "{empty:?}");
    // Text PostgreSQL cannot hold, next to appends that go through.
    let mut tasks = Vec::new();
    for racer in 0..16 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let event_type = if racer == 5 { "Bad\0Type".to_string() } else { format!("Good{racer}") };
            log.append(name, vec![NewEvent::new(event_type, vec![], json!({"s": "nul \u{0} kept in JSON"}))], None)
                .await
        }));
    }
    for (racer, task) in tasks.into_iter().enumerate() {
        let result = task.await.expect("task");
        assert_eq!(racer == 5, matches!(result, Err(StoreError::Invalid(_))), "racer {racer}: {result:?}");
    }
    let nul_id = StreamRef { aggregate: "Account", id: "a\0" };
    assert!(matches!(log.append_to_stream(name, nul_id, 0, vec![event("E", &[])]).await, Err(StoreError::Invalid(_))));
    let all = log.read_all(name, 0, 100).await.expect("read");
    assert_eq!(all.len(), 15);
    assert_eq!(all[0].data, json!({"s": "nul \u{0} kept in JSON"}));
    let types: BTreeSet<&str> = all.iter().map(|e| e.event_type.as_str()).collect();
    assert!(!types.contains("Bad\0Type"));
    assert_eq!(log.head(name).await.expect("head"), 15);
}

// ---------------------------------------------------------------- probe

/// Appends per second for a workload: `clients` tasks, each registering
/// distinct ids for `SECONDS`. Run by hand (`--ignored --nocapture`); the
/// numbers go to the design notes, nothing is asserted on them.
async fn per_second<F, Fut>(clients: usize, run: F) -> f64
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    const SECONDS: f64 = 4.0;
    let run = Arc::new(run);
    let start = std::time::Instant::now();
    let deadline = start + std::time::Duration::from_secs_f64(SECONDS);
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let run = run.clone();
            tokio::spawn(async move {
                let mut done = 0usize;
                while std::time::Instant::now() < deadline {
                    if run(client, done).await {
                        done += 1;
                    }
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("client");
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// One DCB "register once" in its own SERIALIZABLE transaction, retried on
/// serialization failures (the peers' approach; positions from a sequence,
/// so not gapless).
async fn serializable_register(client: &mut deadpool_postgres::Object, id: &str) -> bool {
    let tag = format!("user:{id}");
    loop {
        let attempt = async {
            let transaction = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::Serializable)
                .start()
                .await?;
            let found = transaction
                .query_opt(
                    "SELECT 1 FROM event_tag WHERE log = 'probe_serializable' AND tag = $1 AND type = 'Registered' LIMIT 1",
                    &[&tag],
                )
                .await?;
            if found.is_some() {
                return Ok(false);
            }
            let position: i64 = transaction.query_one("SELECT nextval('probe_position')", &[]).await?.get(0);
            transaction
                .execute(
                    "INSERT INTO event (log, position, event_id, type, tags, data, meta, recorded_at) \
                     VALUES ('probe_serializable', $1, gen_random_uuid(), 'Registered', json_build_array($2::text), '{}', '{}', 0)",
                    &[&position, &tag],
                )
                .await?;
            transaction
                .execute(
                    "INSERT INTO event_tag (log, tag, position, type) VALUES ('probe_serializable', $1, $2, 'Registered')",
                    &[&tag, &position],
                )
                .await?;
            transaction.commit().await.map(|()| true)
        };
        match attempt.await {
            Ok(appended) => return appended,
            Err(error) if error.code() == Some(&tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE) => {}
            Err(error) => panic!("serializable append: {error}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a throughput probe, run by hand"]
async fn throughput_probe() {
    // REVENTLESS_PROBE_URL: an empty database on a server of your own.
    let url =
        std::env::var("REVENTLESS_PROBE_URL").unwrap_or_else(|_| shared_cluster().fresh_database().expect("database"));
    let db = PgDatabase::connect(&url, PgOptions { pool_size: 80 }).await.expect("connects");
    let setup = db.client().await.expect("client");
    setup
        .batch_execute(
            "CREATE TABLE raw_register (id TEXT PRIMARY KEY); CREATE SEQUENCE probe_position START 1000000000",
        )
        .await
        .expect("setup");
    drop(setup);
    let counts: Vec<usize> = std::env::var("REVENTLESS_PROBE_CLIENTS")
        .map(|text| text.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|_| vec![1, 8, 64]);
    for clients in counts {
        let raw = {
            let db = db.clone();
            per_second(clients, move |client, n| {
                let db = db.clone();
                async move {
                    let connection = db.client().await.expect("client");
                    let id = format!("{clients}-{client}-{n}");
                    connection.execute("INSERT INTO raw_register (id) VALUES ($1)", &[&id]).await.expect("insert");
                    true
                }
            })
            .await
        };
        let log = Arc::new(PgEventLog::new(db.clone()));
        let dcb = {
            let log = log.clone();
            per_second(clients, move |client, n| {
                let log = log.clone();
                async move {
                    let user = format!("user:{clients}-{client}-{n}");
                    let once = Query::none().item(QueryItem::new().types(["Registered"]).tags([tag(&user)]));
                    let condition = AppendCondition::new(once, None);
                    log.append("probe_dcb", vec![event("Registered", &[&user])], Some(&condition)).await.is_ok()
                }
            })
            .await
        };
        let stream = {
            let log = log.clone();
            per_second(clients, move |client, n| {
                let log = log.clone();
                async move {
                    let id = format!("{clients}-{client}-{n}");
                    let stream = StreamRef { aggregate: "User", id: &id };
                    log.append_to_stream("probe_stream", stream, 0, vec![event("Registered", &[])]).await.is_ok()
                }
            })
            .await
        };
        let serializable = {
            let db = db.clone();
            per_second(clients, move |client, n| {
                let db = db.clone();
                async move {
                    let mut connection = db.client().await.expect("client");
                    serializable_register(&mut connection, &format!("{clients}-{client}-{n}")).await
                }
            })
            .await
        };
        println!(
            "{clients:>2} clients: raw insert {raw:>7.0}/s · PgEventLog DCB {dcb:>7.0}/s ({:.2}×) · \
             stream {stream:>7.0}/s ({:.2}×) · serializable DCB {serializable:>7.0}/s ({:.2}×)",
            dcb / raw,
            stream / raw,
            serializable / raw
        );
    }
}

/// A batch cancelled half way (its runtime shut down while it waited for a
/// head row) must not hand its connection back to the pool inside the
/// transaction: the next user of the pool, on another runtime, would run
/// in it.
#[test]
fn a_batch_cancelled_half_way_leaves_no_connection_inside_its_transaction() {
    let keeper = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let (db, holder) = keeper.block_on(async {
        let url = shared_cluster().fresh_database().expect("a fresh database");
        // One connection, made on this runtime: the batch will borrow it.
        let db = PgDatabase::connect(&url, PgOptions { pool_size: 1 }).await.expect("connects");
        let log = PgEventLog::new(db.clone());
        log.append("held", vec![event("E", &[])], None).await.expect("the head row exists");
        // Another session holds the head row, so the next batch waits inside its transaction.
        let (holder, connection) = db.dedicated().await.expect("holder");
        tokio::spawn(connection);
        holder
            .batch_execute("BEGIN; SELECT position FROM event_log_head WHERE log = 'held' FOR UPDATE")
            .await
            .expect("lock");
        (db, holder)
    });
    let cancelled =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let log = PgEventLog::new(db.clone());
    let waiting = cancelled.spawn(async move { log.append("held", vec![event("E", &[])], None).await });
    keeper.block_on(async {
        // The batch is waiting for the row lock.
        let observer = PgDatabase::connect(&db_url(&db).await, PgOptions::default()).await.expect("observer");
        let observer = observer.client().await.expect("client");
        let waits =
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()";
        for _ in 0..500 {
            if observer.query_one(waits, &[]).await.expect("activity").get::<_, i64>(0) == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(observer.query_one(waits, &[]).await.expect("activity").get::<_, i64>(0), 1, "the batch waits");
    });
    drop(waiting);
    cancelled.shutdown_timeout(std::time::Duration::from_secs(5));
    keeper.block_on(async {
        holder.batch_execute("ROLLBACK").await.expect("unlock");
        // Once the lock is free, the cancelled batch's session runs its
        // pipelined statements; then it must be gone, not idle in its transaction.
        let observer = PgDatabase::connect(&db_url(&db).await, PgOptions::default()).await.expect("observer");
        let observer = observer.client().await.expect("client");
        let stale = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                     AND (state LIKE 'idle in transaction%' OR wait_event_type = 'Lock')";
        let mut left = -1;
        for _ in 0..500 {
            left = observer.query_one(stale, &[]).await.expect("activity").get::<_, i64>(0);
            if left == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(left, 0, "a session stayed inside the cancelled batch's transaction");
        let client = db.client().await.expect("the pool still serves");
        let xid: Option<String> =
            client.query_one("SELECT pg_current_xact_id_if_assigned()::text", &[]).await.expect("query").get(0);
        assert_eq!(xid, None, "the pool handed out a connection inside a transaction");
        drop(client);
        let log = PgEventLog::new(db.clone());
        log.append("held", vec![event("E", &[])], None).await.expect("appends go on");
        assert_gapless(&log, "held").await;
    });
}

async fn db_url(db: &PgDatabase) -> String {
    format!("postgres://postgres@127.0.0.1:{}/{}", shared_cluster().port(), dbname(db).await)
}
