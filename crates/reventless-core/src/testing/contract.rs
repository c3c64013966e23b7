//! The store contract: one definition of what every backend must do. A
//! backend runs it with [`crate::store_contract_tests!`], which generates one
//! test per case:
//!
//! ```ignore
//! reventless_core::store_contract_tests!(reventless_local::memory_stores());
//! ```
//!
//! Every case gets fresh stores from the factory expression and uses log /
//! table names unique to the case, so backends may share a database.
use std::collections::BTreeSet;
use std::time::Duration;

use reventless_spec::{AppendCondition, EventEnvelope, EventMeta, NewEvent, Query, QueryItem, Tag};
use serde_json::{Value, json};

use crate::store::{
    Checkpoint, CommandMessage, Filter, FilterOp, ListRequest, OrderBy, Published, RowOp, StoreError, Stores, StreamRef,
};

/// Tasks racing in the concurrency cases.
pub const RACERS: usize = 32;

fn tag(text: &str) -> Tag {
    text.parse().expect("valid tag")
}

fn event(event_type: &str, tags: &[&str], data: Value) -> NewEvent {
    NewEvent::new(event_type, tags.iter().map(|t| tag(t)).collect(), data)
}

fn assert_strictly_increasing(events: &[EventEnvelope]) {
    for pair in events.windows(2) {
        assert!(pair[0].position < pair[1].position, "positions must strictly increase: {pair:?}");
    }
}

/// The stream of entity `id` of the contract's aggregate.
fn stream(id: &str) -> StreamRef<'_> {
    StreamRef { aggregate: "Account", id }
}

fn is_conflict<T: std::fmt::Debug>(result: &Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Conflict(_)))
}

// ---------------------------------------------------------------- aggregate log

/// An aggregate stream reads back what was appended, with versions 1, 2, …
pub async fn aggregate_append_and_read_back(stores: Stores) {
    let log = &stores.events;
    let meta = EventMeta {
        correlation_id: Some("corr".into()),
        causation_id: Some("cmd-1".into()),
        service: Some("Shop".into()),
        user: Some("u1".into()),
        // The version of the event's type goes through every store.
        schema_version: 2,
    };
    let first = event("Registered", &["customer:c1"], json!({"email": "a@b.c"})).with_meta(meta.clone());
    let second = event("EmailChanged", &[], json!({"email": "x@y.z", "n": 1.5}));
    let appended =
        log.append_to_stream("contract_agg_rt", stream("c1"), 0, vec![first.clone(), second.clone()]).await.unwrap();
    assert_eq!(appended.last_position - appended.first_position, 1);

    let events = log.read_stream("contract_agg_rt", stream("c1"), 0).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].event_id, first.event_id);
    assert_eq!(events[0].event_type, "Registered");
    assert_eq!(events[0].tags, vec![tag("customer:c1")]);
    assert_eq!(events[0].data, json!({"email": "a@b.c"}));
    assert_eq!(events[0].meta, meta);
    assert_eq!(events[1].meta.schema_version, 1, "no version stored reads as 1");
    assert_eq!(events[1].data, json!({"email": "x@y.z", "n": 1.5}));
    assert!(events[0].recorded_at.0 > 0);
    let versions: Vec<u64> = events.iter().map(|e| e.stream.as_ref().map_or(0, |s| s.version)).collect();
    assert_eq!(versions, vec![1, 2]);
    assert!(events.iter().all(|e| e.stream.as_ref().is_some_and(|s| s.id == "c1")));
    assert_eq!(events[1].position, appended.last_position);

    let tail = log.read_stream("contract_agg_rt", stream("c1"), 1).await.unwrap();
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0].event_type, "EmailChanged");
    assert!(log.read_stream("contract_agg_rt", stream("nobody"), 0).await.unwrap().is_empty());
    assert!(log.read_stream("contract_agg_unknown_log", stream("c1"), 0).await.unwrap().is_empty());
}

/// An append at a stale expected version is a `Conflict` and appends nothing.
pub async fn aggregate_wrong_expected_version_conflicts(stores: Stores) {
    let log = &stores.events;
    log.append_to_stream("contract_agg_occ", stream("e1"), 0, vec![event("A", &[], json!({}))]).await.unwrap();
    let stale = log.append_to_stream("contract_agg_occ", stream("e1"), 0, vec![event("B", &[], json!({}))]).await;
    assert!(is_conflict(&stale), "stale expected version must conflict: {stale:?}");
    let ahead = log.append_to_stream("contract_agg_occ", stream("e1"), 5, vec![event("B", &[], json!({}))]).await;
    assert!(is_conflict(&ahead), "future expected version must conflict: {ahead:?}");
    let events = log.read_stream("contract_agg_occ", stream("e1"), 0).await.unwrap();
    assert_eq!(events.len(), 1, "a conflicting append must append nothing");
    log.append_to_stream("contract_agg_occ", stream("e1"), 1, vec![event("B", &[], json!({}))]).await.unwrap();
    let empty = log.append_to_stream("contract_agg_occ", stream("e1"), 2, vec![]).await;
    assert!(matches!(empty, Err(StoreError::Invalid(_))), "an empty append is invalid: {empty:?}");
}

/// Reading the whole log returns every stream's events in position order.
pub async fn aggregate_read_all_in_log_order(stores: Stores) {
    let log = &stores.events;
    let name = "contract_agg_all";
    assert_eq!(log.head(name).await.unwrap(), 0);
    for round in 0..3u64 {
        for id in ["a", "b"] {
            log.append_to_stream(name, stream(id), round, vec![event("E", &[], json!({"stream": id, "round": round}))])
                .await
                .unwrap();
        }
    }
    log.append_to_stream("contract_agg_all_other", stream("a"), 0, vec![event("E", &[], json!({}))]).await.unwrap();
    let all = log.read_all(name, 0, 100).await.unwrap();
    assert_eq!(all.len(), 6);
    assert_strictly_increasing(&all);
    let order: Vec<Value> = all.iter().map(|e| e.data["stream"].clone()).collect();
    assert_eq!(order, vec![json!("a"), json!("b"), json!("a"), json!("b"), json!("a"), json!("b")]);
    assert_eq!(log.head(name).await.unwrap(), all[5].position);
    let page = log.read_all(name, all[1].position, 2).await.unwrap();
    assert_eq!(page, all[2..4].to_vec());
    assert!(log.read_all(name, all[5].position, 10).await.unwrap().is_empty());
}

/// Of concurrent appends at one stream version exactly one wins.
pub async fn aggregate_concurrent_same_version_one_wins(stores: Stores) {
    let log = stores.events.clone();
    let mut tasks = Vec::new();
    for racer in 0..RACERS {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            log.append_to_stream(
                "contract_agg_race",
                stream("hot"),
                0,
                vec![event("Won", &[], json!({ "racer": racer }))],
            )
            .await
        }));
    }
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => wins += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(other) => panic!("racers must win or conflict, got {other:?}"),
        }
    }
    assert_eq!(wins, 1, "exactly one of {RACERS} same-version appends may succeed");
    assert_eq!(log.read_stream("contract_agg_race", stream("hot"), 0).await.unwrap().len(), 1);
}

/// Concurrent appends to distinct streams all land.
pub async fn aggregate_concurrent_distinct_streams_all_succeed(stores: Stores) {
    let log = stores.events.clone();
    let mut tasks = Vec::new();
    for racer in 0..RACERS {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("s{racer}");
            log.append_to_stream(
                "contract_agg_par",
                stream(&id),
                0,
                vec![event("A", &[], json!({})), event("B", &[], json!({}))],
            )
            .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let all = log.read_all("contract_agg_par", 0, 1000).await.unwrap();
    assert_eq!(all.len(), RACERS * 2);
    assert_strictly_increasing(&all);
    let ids: BTreeSet<_> = all.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), all.len());
    // The two events of one append are adjacent in its stream.
    for racer in 0..RACERS {
        let events = log.read_stream("contract_agg_par", stream(&format!("s{racer}")), 0).await.unwrap();
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(types, vec!["A", "B"]);
    }
}

// ---------------------------------------------------------------- DCB log

async fn seed_dcb(stores: &Stores, log: &str) -> Vec<EventEnvelope> {
    let dcb = &stores.events;
    dcb.append(log, vec![event("CategoryAdded", &["category:c1"], json!({"n": 1}))], None).await.unwrap();
    dcb.append(
        log,
        vec![
            event("ProductAdded", &["product:p1", "category:c1"], json!({"n": 2})),
            event("ProductAdded", &["product:p2", "category:c2"], json!({"n": 3})),
        ],
        None,
    )
    .await
    .unwrap();
    dcb.append(log, vec![event("PriceChanged", &["product:p1"], json!({"n": 4}))], None).await.unwrap();
    dcb.read(log, &Query::all(), None, None).await.unwrap()
}

fn numbers(events: &[EventEnvelope]) -> Vec<i64> {
    events.iter().map(|e| e.data["n"].as_i64().unwrap_or(-1)).collect()
}

/// A DCB query returns exactly the events matching its items, in position order.
pub async fn dcb_read_by_query(stores: Stores) {
    let log = "contract_dcb_read";
    let all = seed_dcb(&stores, log).await;
    assert_eq!(numbers(&all), vec![1, 2, 3, 4]);
    assert_strictly_increasing(&all);
    assert_eq!(stores.events.head(log).await.unwrap(), all[3].position);
    assert_eq!(all[1].tags, vec![tag("product:p1"), tag("category:c1")]);
    let dcb = &stores.events;
    let read = |query: Query| async move { numbers(&dcb.read(log, &query, None, None).await.unwrap()) };
    assert_eq!(read(Query::none().item(QueryItem::new().types(["ProductAdded"]))).await, vec![2, 3]);
    assert_eq!(read(Query::none().item(QueryItem::new().tags([tag("product:p1")]))).await, vec![2, 4]);
    let both = QueryItem::new().types(["ProductAdded"]).tags([tag("product:p1"), tag("category:c1")]);
    assert_eq!(read(Query::none().item(both)).await, vec![2]);
    let either = Query::none()
        .item(QueryItem::new().types(["CategoryAdded"]).tags([tag("category:c1")]))
        .item(QueryItem::new().types(["PriceChanged"]));
    assert_eq!(read(either).await, vec![1, 4]);
    assert_eq!(read(Query::none()).await, Vec::<i64>::new());
    let after = dcb.read(log, &Query::all(), Some(all[1].position), None).await.unwrap();
    assert_eq!(numbers(&after), vec![3, 4]);
    let limited = dcb.read(log, &Query::all(), Some(all[0].position), Some(2)).await.unwrap();
    assert_eq!(numbers(&limited), vec![2, 3]);
    assert!(dcb.read("contract_dcb_none", &Query::all(), None, None).await.unwrap().is_empty());
    assert_eq!(dcb.head("contract_dcb_none").await.unwrap(), 0);
}

/// An append condition fails when a matching event follows `after`, and only then.
pub async fn dcb_append_condition(stores: Stores) {
    let log = "contract_dcb_cond";
    let all = seed_dcb(&stores, log).await;
    let dcb = &stores.events;
    let p1 = Query::none().item(QueryItem::new().types(["ProductAdded", "PriceChanged"]).tags([tag("product:p1")]));
    // A matching event after `after` violates the condition; nothing is appended.
    let stale = AppendCondition::new(p1.clone(), Some(all[1].position));
    let result = dcb.append(log, vec![event("PriceChanged", &["product:p1"], json!({"n": 5}))], Some(&stale)).await;
    assert!(is_conflict(&result), "{result:?}");
    assert_eq!(dcb.head(log).await.unwrap(), all[3].position);
    // No `after`: any matching event violates it.
    let from_start = AppendCondition::new(p1.clone(), None);
    let result = dcb.append(log, vec![event("X", &[], json!({"n": 5}))], Some(&from_start)).await;
    assert!(is_conflict(&result), "{result:?}");
    // Matching events at or before `after`, and later events that do not match, are fine.
    let current = AppendCondition::new(p1.clone(), Some(all[3].position));
    dcb.append(log, vec![event("PriceChanged", &["product:p1"], json!({"n": 5}))], Some(&current)).await.unwrap();
    let p2_only = Query::none().item(QueryItem::new().types(["PriceChanged"]).tags([tag("product:p2")]));
    let unrelated = AppendCondition::new(p2_only, None);
    dcb.append(log, vec![event("PriceChanged", &["product:p2"], json!({"n": 6}))], Some(&unrelated)).await.unwrap();
    let empty = dcb.append(log, vec![], None).await;
    assert!(matches!(empty, Err(StoreError::Invalid(_))), "{empty:?}");
    let events = dcb.read(log, &Query::all(), None, None).await.unwrap();
    assert_eq!(numbers(&events), vec![1, 2, 3, 4, 5, 6]);
    assert_strictly_increasing(&events);
}

/// Of concurrent appends whose conditions overlap exactly one wins.
pub async fn dcb_concurrent_overlapping_conditions_one_wins(stores: Stores) {
    let log = "contract_dcb_race";
    let dcb = stores.events.clone();
    dcb.append(log, vec![event("SeatFreed", &["seat:s1"], json!({}))], None).await.unwrap();
    let head = dcb.head(log).await.unwrap();
    let query = Query::none().item(QueryItem::new().types(["SeatBooked"]).tags([tag("seat:s1")]));
    let mut tasks = Vec::new();
    for racer in 0..RACERS {
        let dcb = dcb.clone();
        let condition = AppendCondition::new(query.clone(), Some(head));
        tasks.push(tokio::spawn(async move {
            let booked = event("SeatBooked", &["seat:s1", &format!("guest:g{racer}")], json!({ "racer": racer }));
            dcb.append(log, vec![booked], Some(&condition)).await
        }));
    }
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => wins += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(other) => panic!("racers must win or conflict, got {other:?}"),
        }
    }
    assert_eq!(wins, 1, "exactly one of {RACERS} overlapping appends may succeed");
    assert_eq!(dcb.read(log, &query, None, None).await.unwrap().len(), 1);
}

/// Concurrent appends with disjoint conditions all land.
pub async fn dcb_concurrent_disjoint_conditions_all_win(stores: Stores) {
    let log = "contract_dcb_par";
    let dcb = stores.events.clone();
    let mut tasks = Vec::new();
    for racer in 0..RACERS {
        let dcb = dcb.clone();
        tasks.push(tokio::spawn(async move {
            let seat = format!("seat:s{racer}");
            let query = Query::none().item(QueryItem::new().types(["SeatBooked"]).tags([tag(&seat)]));
            let condition = AppendCondition::new(query, None);
            dcb.append(log, vec![event("SeatBooked", &[&seat], json!({}))], Some(&condition)).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let all = dcb.read(log, &Query::all(), None, None).await.unwrap();
    assert_eq!(all.len(), RACERS);
    assert_strictly_increasing(&all);
}

/// Local backends promise gapless positions 1, 2, 3, … (AWS does not),
/// shared by DCB appends and stream appends of one log.
pub async fn positions_are_gapless(stores: Stores) {
    let log = &stores.events;
    for round in 0..5 {
        log.append("contract_gapless", vec![event("A", &[], json!({})); round + 1], None).await.unwrap();
        log.append_to_stream(
            "contract_gapless",
            stream("s"),
            round as u64,
            vec![event("A", &["account:s"], json!({}))],
        )
        .await
        .unwrap();
    }
    let refused = AppendCondition::new(Query::all(), None);
    let _ = log.append("contract_gapless", vec![event("B", &[], json!({}))], Some(&refused)).await;
    let _ = log.append_to_stream("contract_gapless", stream("s"), 0, vec![event("B", &[], json!({}))]).await;
    let positions: Vec<u64> =
        log.read("contract_gapless", &Query::all(), None, None).await.unwrap().iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=20).collect::<Vec<u64>>(), "a refused append must not leave a gap");
    assert_eq!(log.head("contract_gapless").await.unwrap(), 20);
}

// ---------------------------------------------------------------- one boundary

/// An aggregate's events are in its plugin's log: DCB queries see them by
/// tag, and a DCB append conditioned on that tag conflicts with them.
pub async fn stream_events_are_in_the_dcb_boundary(stores: Stores) {
    let log = &stores.events;
    let name = "contract_one_boundary";
    let registered = event("MemberRegistered", &["member:m1"], json!({"n": 1}));
    log.append_to_stream(name, stream("m1"), 0, vec![registered]).await.unwrap();
    let member = Query::none().item(QueryItem::new().tags([tag("member:m1")]));
    let seen = log.read(name, &member, None, None).await.unwrap();
    assert_eq!(seen.len(), 1, "a DCB query sees the aggregate's event by its tag");
    assert_eq!(seen[0].stream.as_ref().map(|s| (s.id.as_str(), s.version)), Some(("m1", 1)));
    let decided_on = AppendCondition::new(member.clone(), Some(seen[0].position));
    // The aggregate moves on after the slice read: the slice's append conflicts.
    log.append_to_stream(name, stream("m1"), 1, vec![event("MemberSuspended", &["member:m1"], json!({"n": 2}))])
        .await
        .unwrap();
    let loan = event("BookLent", &["member:m1", "book:b1"], json!({"n": 3}));
    let stale = log.append(name, vec![loan.clone()], Some(&decided_on)).await;
    assert!(is_conflict(&stale), "an aggregate event after `after` must fail the condition: {stale:?}");
    let fresh = log.read(name, &member, None, None).await.unwrap();
    let current = AppendCondition::new(member.clone(), fresh.last().map(|e| e.position));
    log.append(name, vec![loan], Some(&current)).await.unwrap();
    // A slice's event with the entity's tag is not part of the aggregate's stream.
    let events = log.read_stream(name, stream("m1"), 0).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>(),
        ["MemberRegistered", "MemberSuspended"]
    );
    log.append_to_stream(name, stream("m1"), 2, vec![event("MemberReinstated", &["member:m1"], json!({"n": 4}))])
        .await
        .unwrap();
    // The entity tag combines with other tags, whichever comes first.
    let opened = event("Opened", &["account:a9", "branch:b1"], json!({"n": 5}));
    log.append_to_stream(name, stream("a9"), 0, vec![opened]).await.unwrap();
    for tags in [["branch:b1", "account:a9"], ["account:a9", "branch:b1"]] {
        let both = Query::none().item(QueryItem::new().tags(tags.map(tag)));
        let found = log.read(name, &both, None, None).await.unwrap();
        assert_eq!(found.len(), 1, "{tags:?}");
        let stale = AppendCondition::new(both, Some(found[0].position - 1));
        assert!(is_conflict(&log.append(name, vec![event("X", &["branch:b1"], json!({}))], Some(&stale)).await));
    }
    let none = Query::none().item(QueryItem::new().tags([tag("account:a9"), tag("branch:b2")]));
    assert!(log.read(name, &none, None, None).await.unwrap().is_empty());
    let all = log.read_all(name, 0, 100).await.unwrap();
    assert_eq!(all.len(), 5);
    assert_strictly_increasing(&all);
    assert_eq!(log.head(name).await.unwrap(), all[4].position);
}

/// Two aggregates of one plugin may use the same entity id: two streams.
pub async fn streams_of_two_aggregates_are_apart(stores: Stores) {
    let log = &stores.events;
    let name = "contract_two_aggregates";
    let other = StreamRef { aggregate: "Card", id: "x1" };
    log.append_to_stream(name, stream("x1"), 0, vec![event("Opened", &["account:x1"], json!({}))]).await.unwrap();
    log.append_to_stream(name, other, 0, vec![event("Issued", &["card:x1"], json!({}))]).await.unwrap();
    let types = |events: Vec<EventEnvelope>| events.into_iter().map(|e| e.event_type).collect::<Vec<_>>();
    assert_eq!(types(log.read_stream(name, stream("x1"), 0).await.unwrap()), ["Opened"]);
    assert_eq!(types(log.read_stream(name, other, 0).await.unwrap()), ["Issued"]);
    assert!(is_conflict(&log.append_to_stream(name, other, 0, vec![event("Issued", &[], json!({}))]).await));
}

/// Slices and an aggregate racing on one tag: no DCB append may land after
/// an aggregate event of its boundary that its decision did not see.
pub async fn concurrent_stream_and_dcb_appends_respect_the_boundary(stores: Stores) {
    let log = stores.events.clone();
    let name = "contract_boundary_race";
    log.append_to_stream(name, stream("hot"), 0, vec![event("Opened", &["account:hot"], json!({}))]).await.unwrap();
    let boundary = Query::none().item(QueryItem::new().tags([tag("account:hot")]));
    let head = log.head(name).await.unwrap();
    let mut tasks = Vec::new();
    for racer in 0..RACERS {
        let (log, boundary) = (log.clone(), boundary.clone());
        tasks.push(tokio::spawn(async move {
            if racer % 2 == 0 {
                let version = (racer / 2) as u64 + 1;
                // Each aggregate racer retries until its turn comes.
                loop {
                    let appended = log
                        .append_to_stream(
                            name,
                            stream("hot"),
                            version,
                            vec![event("Moved", &["account:hot"], json!({}))],
                        )
                        .await;
                    match appended {
                        Ok(_) => return Ok(()),
                        Err(StoreError::Conflict(_)) => tokio::time::sleep(Duration::from_millis(2)).await,
                        Err(other) => return Err(other),
                    }
                }
            } else {
                let condition = AppendCondition::new(boundary, Some(head));
                match log.append(name, vec![event("Checked", &["account:hot"], json!({}))], Some(&condition)).await {
                    Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
                    Err(other) => Err(other),
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let all = log.read_all(name, 0, 1000).await.unwrap();
    let checked: Vec<&EventEnvelope> = all.iter().filter(|e| e.event_type == "Checked").collect();
    assert!(checked.len() <= 1, "conditions on the same boundary admit at most one append: {checked:?}");
    if let Some(check) = checked.first() {
        let unseen = all.iter().filter(|e| e.position > head && e.position < check.position).count();
        assert_eq!(unseen, 0, "a DCB append landed after {unseen} aggregate events it did not see");
    }
    let versions: Vec<u64> = log
        .read_stream(name, stream("hot"), 0)
        .await
        .unwrap()
        .iter()
        .filter_map(|e| e.stream.as_ref().map(|s| s.version))
        .collect();
    assert_eq!(versions, (1..=(RACERS / 2) as u64 + 1).collect::<Vec<_>>());
}

/// A follower's read: every position, the events of its types whole (others
/// may be markers without data).
pub async fn read_all_of_keeps_every_position(stores: Stores) {
    let log = &stores.events;
    let name = "contract_read_of";
    log.append(name, vec![event("Kept", &["k:1"], json!({"n": 1})), event("Other", &["o:1"], json!({"n": 2}))], None)
        .await
        .unwrap();
    log.append_to_stream(name, stream("s"), 0, vec![event("Other", &[], json!({"n": 3}))]).await.unwrap();
    log.append(name, vec![event("Kept", &[], json!({"n": 4}))], None).await.unwrap();
    let all = log.read_all(name, 0, 100).await.unwrap();
    let read = log.read_all_of(name, 0, 100, &["Kept"]).await.unwrap();
    assert_eq!(read.iter().map(|e| e.position).collect::<Vec<_>>(), all.iter().map(|e| e.position).collect::<Vec<_>>());
    for (read, whole) in read.iter().zip(&all) {
        assert_eq!(
            (&read.event_type, read.event_id, read.recorded_at),
            (&whole.event_type, whole.event_id, whole.recorded_at)
        );
        if read.event_type == "Kept" {
            assert_eq!(read, whole, "events of the asked types come whole");
        }
    }
    let page = log.read_all_of(name, all[0].position, 2, &["Kept"]).await.unwrap();
    assert_eq!(page.iter().map(|e| e.position).collect::<Vec<_>>(), vec![all[1].position, all[2].position]);
}

// ---------------------------------------------------------------- query store

/// Rows are written, read back and deleted by id.
pub async fn query_store_put_get_delete(stores: Stores) {
    let store = &stores.queries;
    let table = "contract_rows";
    assert_eq!(store.get(table, "r1").await.unwrap(), None);
    store.put(table, "r1", json!({"name": "one", "tags": ["a"], "nested": {"x": 1}})).await.unwrap();
    store.put("contract_rows_other", "r1", json!({"name": "elsewhere"})).await.unwrap();
    assert_eq!(store.get(table, "r1").await.unwrap(), Some(json!({"name": "one", "tags": ["a"], "nested": {"x": 1}})));
    store.put(table, "r2", json!({"name": "two"})).await.unwrap();
    let many = store.get_many(table, &["r2".into(), "missing".into(), "r1".into()]).await.unwrap();
    let mut many: Vec<(String, Value)> = many;
    many.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        many,
        vec![
            ("r1".into(), json!({"name": "one", "tags": ["a"], "nested": {"x": 1}})),
            ("r2".into(), json!({"name": "two"}))
        ]
    );
    store.put(table, "r1", json!({"name": "uno"})).await.unwrap();
    assert_eq!(store.get(table, "r1").await.unwrap(), Some(json!({"name": "uno"})));
    store.delete(table, "r1").await.unwrap();
    assert_eq!(store.get(table, "r1").await.unwrap(), None);
    store.delete(table, "never-there").await.unwrap();
    assert_eq!(store.get("contract_rows_other", "r1").await.unwrap(), Some(json!({"name": "elsewhere"})));
}

/// Listings filter, order and page with cursors as every backend must.
pub async fn query_store_list_filter_order_paginate(stores: Stores) {
    let store = &stores.queries;
    let table = "contract_list";
    let ops = (0..25)
        .map(|i| RowOp::Put {
            id: format!("p{i:02}"),
            row: json!({"price": (i * 7) % 25, "category": if i % 2 == 0 { "even" } else { "odd" }, "name": format!("Product {i}")}),
        })
        .collect();
    store.commit(table, ops, None).await.unwrap();

    let mut request = ListRequest { first: 10, ..ListRequest::default() };
    let mut seen = Vec::new();
    loop {
        let page = store.list(table, &request).await.unwrap();
        assert_eq!(page.total_count, 25);
        seen.extend(page.rows.iter().map(|(id, _)| id.clone()));
        if !page.has_next_page {
            break;
        }
        request.after = page.end_cursor.clone();
    }
    let expected: Vec<String> = (0..25).map(|i| format!("p{i:02}")).collect();
    assert_eq!(seen, expected, "pages by id cover every row once, in order");

    let cheap_even = ListRequest {
        filters: vec![
            Filter::eq("category", "even"),
            Filter { field: "price".into(), op: FilterOp::Lt, value: json!(10) },
        ],
        order_by: Some(OrderBy { field: "price".into(), descending: true }),
        first: 3,
        after: None,
    };
    let page = store.list(table, &cheap_even).await.unwrap();
    let prices: Vec<Value> = page.rows.iter().map(|(_, row)| row["price"].clone()).collect();
    assert_eq!(prices, vec![json!(9), json!(6), json!(4)]);
    assert_eq!(page.total_count, 6);
    assert!(page.has_next_page);
    let rest = store.list(table, &ListRequest { after: page.end_cursor, ..cheap_even.clone() }).await.unwrap();
    let prices: Vec<Value> = rest.rows.iter().map(|(_, row)| row["price"].clone()).collect();
    assert_eq!(prices, vec![json!(3), json!(1), json!(0)]);
    assert!(!rest.has_next_page);

    let named = ListRequest {
        filters: vec![Filter { field: "name".into(), op: FilterOp::Contains, value: json!("uct 1") }],
        ..ListRequest::default()
    };
    assert_eq!(store.list(table, &named).await.unwrap().total_count, 11);
    let bad_cursor =
        store.list(table, &ListRequest { after: Some("%%not-a-cursor".into()), ..ListRequest::default() }).await;
    assert!(matches!(bad_cursor, Err(StoreError::Invalid(_))), "{bad_cursor:?}");
    let empty = store.list("contract_list_empty", &ListRequest::default()).await.unwrap();
    assert_eq!((empty.rows.len(), empty.total_count, empty.has_next_page), (0, 0, false));
}

/// Rows and checkpoint commit together; a commit behind the checkpoint changes nothing.
pub async fn query_store_commit_is_atomic_with_checkpoint(stores: Stores) {
    let store = &stores.queries;
    let table = "contract_commit";
    let name = "contract_commit_projection";
    assert_eq!(store.checkpoint(name).await.unwrap(), 0);
    let ops =
        vec![RowOp::Put { id: "a".into(), row: json!({"v": 1}) }, RowOp::Put { id: "b".into(), row: json!({"v": 1}) }];
    store.commit(table, ops, Some(Checkpoint { name: name.into(), position: 4 })).await.unwrap();
    assert_eq!(store.checkpoint(name).await.unwrap(), 4);
    // A checkpoint at or behind the stored one is refused, with none of its rows.
    let replay = vec![RowOp::Put { id: "a".into(), row: json!({"v": 2}) }, RowOp::Delete { id: "b".into() }];
    let refused = store.commit(table, replay, Some(Checkpoint { name: name.into(), position: 4 })).await;
    assert!(is_conflict(&refused), "{refused:?}");
    assert_eq!(store.get(table, "a").await.unwrap(), Some(json!({"v": 1})));
    assert_eq!(store.get(table, "b").await.unwrap(), Some(json!({"v": 1})));
    assert_eq!(store.checkpoint(name).await.unwrap(), 4);
    let next = vec![RowOp::Put { id: "a".into(), row: json!({"v": 2}) }, RowOp::Delete { id: "b".into() }];
    store.commit(table, next, Some(Checkpoint { name: name.into(), position: 9 })).await.unwrap();
    assert_eq!(store.get(table, "a").await.unwrap(), Some(json!({"v": 2})));
    assert_eq!(store.get(table, "b").await.unwrap(), None);
    assert_eq!(store.checkpoint(name).await.unwrap(), 9);
}

// ---------------------------------------------------------------- command topic

fn message(group: &str, dedup: &str) -> CommandMessage {
    CommandMessage { group_id: group.into(), dedup_id: dedup.into(), body: json!({"dedup": dedup}) }
}

const WAIT: Duration = Duration::from_millis(200);
const VISIBLE: Duration = Duration::from_secs(60);

fn dedups(deliveries: &[crate::store::Delivery]) -> Vec<String> {
    deliveries.iter().map(|d| d.message.dedup_id.clone()).collect()
}

/// Messages of a group arrive in order, and a group is locked while one is in flight.
pub async fn command_topic_groups_are_fifo_and_locked(stores: Stores) {
    let topic = &stores.commands;
    let name = "contract_fifo";
    for (group, id) in [("g1", "a1"), ("g2", "b1"), ("g1", "a2"), ("g1", "a3"), ("g2", "b2")] {
        topic.send(name, message(group, id)).await.unwrap();
    }
    let first = topic.receive(name, 2, WAIT, VISIBLE).await.unwrap();
    assert_eq!(dedups(&first), vec!["a1", "b1"]);
    assert!(first.iter().all(|d| d.receive_count == 1));
    // Both groups are in flight: nothing else may be delivered.
    assert!(topic.receive(name, 10, Duration::ZERO, VISIBLE).await.unwrap().is_empty());
    topic.ack(name, &first[0].receipt).await.unwrap();
    let next = topic.receive(name, 10, WAIT, VISIBLE).await.unwrap();
    assert_eq!(dedups(&next), vec!["a2", "a3"], "g1 continues in order; g2 is still locked");
    topic.ack(name, &first[1].receipt).await.unwrap();
    let g2 = topic.receive(name, 10, WAIT, VISIBLE).await.unwrap();
    assert_eq!(dedups(&g2), vec!["b2"]);
    for delivery in next.iter().chain(&g2) {
        topic.ack(name, &delivery.receipt).await.unwrap();
    }
    assert!(topic.receive(name, 10, Duration::ZERO, VISIBLE).await.unwrap().is_empty());
    // Acking twice (a retried ack) never brings a message back (SQS accepts it, memory refuses it).
    let _ = topic.ack(name, &first[0].receipt).await;
    assert!(topic.receive(name, 10, Duration::ZERO, VISIBLE).await.unwrap().is_empty(), "an acked message is gone");
}

/// A released message is delivered again before the later ones of its group.
pub async fn command_topic_release_redelivers_in_order(stores: Stores) {
    let topic = &stores.commands;
    let name = "contract_release";
    for id in ["m1", "m2", "m3"] {
        topic.send(name, message("g", id)).await.unwrap();
    }
    let batch = topic.receive(name, 10, WAIT, VISIBLE).await.unwrap();
    assert_eq!(dedups(&batch), vec!["m1", "m2", "m3"]);
    topic.ack(name, &batch[0].receipt).await.unwrap();
    // m2 failed: it and every later message of its group go back.
    topic.release(name, &batch[2].receipt).await.unwrap();
    topic.release(name, &batch[1].receipt).await.unwrap();
    let again = topic.receive(name, 10, WAIT, VISIBLE).await.unwrap();
    assert_eq!(dedups(&again), vec!["m2", "m3"]);
    assert_eq!(again[0].receive_count, 2);
}

/// A second message with the same dedup id is dropped.
pub async fn command_topic_deduplicates(stores: Stores) {
    let topic = &stores.commands;
    let name = "contract_dedup";
    topic.send(name, message("g", "same")).await.unwrap();
    topic.send(name, message("g", "same")).await.unwrap();
    topic.send(name, message("g", "other")).await.unwrap();
    let batch = topic.receive(name, 10, WAIT, VISIBLE).await.unwrap();
    assert_eq!(dedups(&batch), vec!["same", "other"]);
}

/// An unacknowledged message comes back after its visibility timeout.
pub async fn command_topic_visibility_timeout_redelivers(stores: Stores) {
    let topic = &stores.commands;
    let name = "contract_visibility";
    topic.send(name, message("g", "lost")).await.unwrap();
    let first = topic.receive(name, 1, WAIT, Duration::from_millis(300)).await.unwrap();
    assert_eq!(dedups(&first), vec!["lost"]);
    let again = topic.receive(name, 1, Duration::from_secs(5), VISIBLE).await.unwrap();
    assert_eq!(dedups(&again), vec!["lost"], "an unacknowledged message comes back after its visibility timeout");
    assert_eq!(again[0].receive_count, 2);
}

/// A waiting receive returns as soon as a message is sent.
pub async fn command_topic_receive_waits_for_a_send(stores: Stores) {
    let topic = stores.commands.clone();
    let name = "contract_wait";
    let sender = topic.clone();
    let send = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        sender.send(name, message("g", "late")).await
    });
    let received = topic.receive(name, 1, Duration::from_secs(5), VISIBLE).await.unwrap();
    assert_eq!(dedups(&received), vec!["late"]);
    send.await.unwrap().unwrap();
}

// ---------------------------------------------------------------- bus

/// Commit notices reach every subscriber.
pub async fn bus_delivers_commit_notices(stores: Stores) {
    let mut first = stores.bus.subscribe();
    let mut second = stores.bus.subscribe();
    stores.bus.publish(Published { log: "contract_bus".into(), position: 7, ..Default::default() });
    for receiver in [&mut first, &mut second] {
        let notice = tokio::time::timeout(Duration::from_secs(5), receiver.recv()).await.unwrap().unwrap();
        assert_eq!(*notice, Published { log: "contract_bus".into(), position: 7, ..Default::default() });
    }
}

/// Generates one `#[tokio::test]` per contract case for a backend. The
/// argument is an expression producing fresh [`Stores`] (it may `.await`).
/// Add `gapless` for backends that promise gapless positions.
#[macro_export]
macro_rules! store_contract_tests {
    ($stores:expr) => {
        $crate::store_contract_tests!(@cases $stores;
            aggregate_append_and_read_back,
            aggregate_wrong_expected_version_conflicts,
            aggregate_read_all_in_log_order,
            aggregate_concurrent_same_version_one_wins,
            aggregate_concurrent_distinct_streams_all_succeed,
            dcb_read_by_query,
            dcb_append_condition,
            dcb_concurrent_overlapping_conditions_one_wins,
            dcb_concurrent_disjoint_conditions_all_win,
            stream_events_are_in_the_dcb_boundary,
            streams_of_two_aggregates_are_apart,
            concurrent_stream_and_dcb_appends_respect_the_boundary,
            read_all_of_keeps_every_position,
            query_store_put_get_delete,
            query_store_list_filter_order_paginate,
            query_store_commit_is_atomic_with_checkpoint,
            command_topic_groups_are_fifo_and_locked,
            command_topic_release_redelivers_in_order,
            command_topic_deduplicates,
            command_topic_visibility_timeout_redelivers,
            command_topic_receive_waits_for_a_send,
            bus_delivers_commit_notices
        );
    };
    ($stores:expr, gapless) => {
        $crate::store_contract_tests!($stores);
        $crate::store_contract_tests!(@cases $stores; positions_are_gapless);
    };
    (@cases $stores:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::testing::contract::$case($stores).await;
            }
        )+
    };
}
