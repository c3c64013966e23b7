//! The PostgreSQL query store beyond the contract suite: several processes
//! (pools) committing one projection's batch, listings equal to the
//! in-memory evaluator on mixed data, declared index fields read by index,
//! corrupt rows as typed errors.
use std::sync::Arc;

use reventless_core::store::{
    Checkpoint, Filter, FilterOp, ListRequest, OrderBy, QueryStore, RowOp, StoreError, evaluate_list,
};
use reventless_postgres::query_store::PgQueryStore;
use reventless_postgres::testing::shared_cluster;
use reventless_postgres::{PgDatabase, PgOptions};
use serde_json::{Value, json};

async fn connect(url: &str) -> PgDatabase {
    PgDatabase::connect(url, PgOptions { pool_size: 8 }).await.expect("connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_racing_one_checkpoint_exactly_one_commit_wins() {
    let url = shared_cluster().fresh_database().expect("database");
    // Two pools: what two processes running the same projection hold.
    let stores: Vec<Arc<PgQueryStore>> =
        vec![Arc::new(PgQueryStore::new(connect(&url).await)), Arc::new(PgQueryStore::new(connect(&url).await))];
    const RACERS: usize = 8;
    for round in 1..=20u64 {
        let mut tasks = Vec::new();
        for racer in 0..RACERS {
            let store = stores[racer % 2].clone();
            tasks.push(tokio::spawn(async move {
                let ops = vec![
                    RowOp::Put { id: "total".into(), row: json!({"round": round, "racer": racer}) },
                    RowOp::Put { id: format!("r{round}-{racer}"), row: json!({"racer": racer}) },
                ];
                let checkpoint = Checkpoint { name: "Totals".into(), position: round * 10 };
                (racer, store.commit("totals", ops, Some(checkpoint)).await)
            }));
        }
        let mut winners = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                (racer, Ok(())) => winners.push(racer),
                (_, Err(StoreError::Conflict(_))) => {}
                (_, Err(other)) => panic!("a racer must win or conflict, got {other:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one commit of the batch wins, got {winners:?}");
        let winner = winners[0];
        let store = &stores[0];
        assert_eq!(store.checkpoint("Totals").await.unwrap(), round * 10);
        assert_eq!(store.get("totals", "total").await.unwrap(), Some(json!({"round": round, "racer": winner})));
        let written: Vec<String> = (0..RACERS).map(|racer| format!("r{round}-{racer}")).collect();
        let found = store.get_many("totals", &written).await.unwrap();
        assert_eq!(found, vec![(format!("r{round}-{winner}"), json!({"racer": winner}))], "losers write no rows");
    }
}

/// Rows mixing kinds in the listed fields, as hand-edited or evolving read
/// models have: missing, null, booleans, integers, floats, strings (case
/// and non-ASCII), arrays (whose first elements are single digits, where
/// PostgreSQL's order by text agrees with the element-wise order).
fn mixed_rows() -> Vec<(String, Value)> {
    let words = ["apple", "Apple", "banana", "Zebra", "éclair", "zz", "a", "", "ß"];
    (0..120)
        .map(|i: i64| {
            let mut row = serde_json::Map::new();
            let value = match i % 7 {
                0 => Value::Null,
                1 => json!(i % 3 == 0),
                2 => json!(i - 60),
                3 => json!((i as f64) / 8.0 - 3.3),
                4 => json!(words[(i as usize) % words.len()]),
                5 => json!([i % 4, "x"]),
                _ => Value::Bool(false),
            };
            if i % 11 != 0 {
                row.insert("v".into(), value);
            }
            row.insert("w".into(), json!(words[(i as usize * 5) % words.len()]));
            row.insert("n".into(), json!((i * 37) % 13));
            (format!("id{:03}", (i * 53) % 120), Value::Object(row))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_equal_the_in_memory_evaluator_on_mixed_rows() {
    let url = shared_cluster().fresh_database().expect("database");
    let store = PgQueryStore::new(connect(&url).await);
    store.create_indexes(vec!["v".into(), "n".into()]).await.unwrap();
    let rows = mixed_rows();
    let ops = rows.iter().map(|(id, row)| RowOp::Put { id: id.clone(), row: row.clone() }).collect();
    store.commit("mixed", ops, None).await.unwrap();

    let filters = [
        vec![],
        vec![Filter::eq("v", Value::Null)],
        vec![Filter::eq("v", true)],
        vec![Filter::eq("v", false)],
        vec![Filter::eq("v", "apple")],
        vec![Filter::eq("v", json!([1, "x"]))],
        vec![Filter { field: "v".into(), op: FilterOp::Ne, value: Value::Null }],
        vec![Filter { field: "v".into(), op: FilterOp::Ne, value: json!("apple") }],
        vec![Filter { field: "v".into(), op: FilterOp::Lt, value: json!(0) }],
        vec![Filter { field: "v".into(), op: FilterOp::Gte, value: json!(2.5) }],
        vec![Filter { field: "v".into(), op: FilterOp::Gt, value: json!("a") }],
        vec![Filter { field: "v".into(), op: FilterOp::Lte, value: json!("Zebra") }],
        vec![Filter { field: "v".into(), op: FilterOp::Lt, value: json!(true) }],
        vec![Filter { field: "w".into(), op: FilterOp::Contains, value: json!("a") }],
        vec![Filter { field: "w".into(), op: FilterOp::Contains, value: json!("") }],
        vec![Filter { field: "v".into(), op: FilterOp::Contains, value: json!(1) }],
        vec![Filter::eq("n", 3), Filter { field: "w".into(), op: FilterOp::Ne, value: json!("zz") }],
    ];
    let orders = [
        None,
        Some(OrderBy { field: "v".into(), descending: false }),
        Some(OrderBy { field: "v".into(), descending: true }),
        Some(OrderBy { field: "w".into(), descending: false }),
        Some(OrderBy { field: "n".into(), descending: true }),
        Some(OrderBy { field: "missing".into(), descending: false }),
    ];
    let borrowed: Vec<(&str, &Value)> = rows.iter().map(|(id, row)| (id.as_str(), row)).collect();
    for filters in &filters {
        for order_by in &orders {
            let mut request =
                ListRequest { filters: filters.clone(), order_by: order_by.clone(), first: 7, after: None };
            loop {
                let expected = evaluate_list(borrowed.iter().copied(), &request).unwrap();
                let page = store.list("mixed", &request).await.unwrap();
                assert_eq!(page, expected, "{request:?}");
                if !page.has_next_page {
                    break;
                }
                request.after = page.end_cursor;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_index_fields_are_read_by_index() {
    let url = shared_cluster().fresh_database().expect("database");
    let store = PgQueryStore::new(connect(&url).await);
    store.create_indexes(vec!["categoryId".into(), "price".into()]).await.unwrap();
    // Twice, from two processes at once: no error.
    let other_process = PgQueryStore::new(connect(&url).await);
    let (first, second) = tokio::join!(
        store.create_indexes(vec!["categoryId".into()]),
        other_process.create_indexes(vec!["categoryId".into()])
    );
    first.unwrap();
    second.unwrap();
    for table in ["Products", "Other"] {
        let ops = (0..3000)
            .map(|i| RowOp::Put {
                id: format!("p{i:05}"),
                row: json!({"categoryId": format!("c{}", i % 100), "price": i % 250, "name": format!("P {i}")}),
            })
            .collect();
        store.commit(table, ops, None).await.unwrap();
    }
    let db = connect(&url).await;
    db.client().await.unwrap().batch_execute("ANALYZE query_row").await.unwrap();

    let in_category = ListRequest { filters: vec![Filter::eq("categoryId", "c7")], first: 10, ..Default::default() };
    let plan = store.explain_list("Products", &in_category).await.unwrap();
    assert!(plan.contains("query_row_by_categoryId"), "{plan}");
    let page = store.list("Products", &in_category).await.unwrap();
    assert_eq!((page.total_count, page.rows.len(), page.has_next_page), (30, 10, true));

    let by_price = ListRequest {
        filters: vec![Filter { field: "price".into(), op: FilterOp::Lt, value: json!(5) }],
        order_by: Some(OrderBy { field: "price".into(), descending: true }),
        first: 4,
        after: None,
    };
    let page = store.list("Products", &by_price).await.unwrap();
    let next = ListRequest { after: page.end_cursor.clone(), ..by_price.clone() };
    let plan = store.explain_list("Products", &next).await.unwrap();
    assert!(plan.contains("query_row_by_price"), "a cursor page reads an index range: {plan}");
    let prices: Vec<Value> = page.rows.iter().map(|(_, row)| row["price"].clone()).collect();
    assert_eq!(prices, vec![json!(4); 4]);

    let bad = store.create_indexes(vec!["x'); DROP TABLE query_row; --".into()]).await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");
    let bad_filter =
        store.list("Products", &ListRequest { filters: vec![Filter::eq("a.b", 1)], ..Default::default() }).await;
    assert!(matches!(bad_filter, Err(StoreError::Invalid(_))), "{bad_filter:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_rows_and_checkpoints_are_typed_errors() {
    let url = shared_cluster().fresh_database().expect("database");
    let db = connect(&url).await;
    let store = PgQueryStore::new(db.clone());
    store.put("t", "r", json!({"v": 1})).await.unwrap();
    store.put("t", "fine", json!({"v": 2})).await.unwrap();
    store.commit("t", vec![], Some(Checkpoint { name: "P".into(), position: 3 })).await.unwrap();
    // Valid jsonb that no JSON decoder of ours takes: a number beyond f64.
    let client = db.client().await.unwrap();
    client
        .batch_execute(
            "UPDATE query_row SET data = '{\"v\": 1e400}' WHERE tbl = 't' AND id = 'r'; \
             UPDATE checkpoint SET position = -1 WHERE name = 'P'",
        )
        .await
        .unwrap();
    let row = store.get("t", "r").await;
    assert!(matches!(&row, Err(StoreError::Corrupt { location, .. }) if location.contains("t/r")), "{row:?}");
    let many = store.get_many("t", &["fine".into(), "r".into()]).await;
    assert!(matches!(many, Err(StoreError::Corrupt { .. })), "{many:?}");
    let listed = store.list("t", &ListRequest::default()).await;
    assert!(matches!(listed, Err(StoreError::Corrupt { .. })), "{listed:?}");
    assert_eq!(store.get("t", "fine").await.unwrap(), Some(json!({"v": 2})), "other rows still read");
    let asked = vec!["fine".to_string(), "absent".into(), "fine".into()];
    let twice = store.get_many("t", &asked).await.unwrap();
    assert_eq!(twice, vec![("fine".into(), json!({"v": 2})), ("fine".into(), json!({"v": 2}))], "in the order asked");
    let checkpoint = store.checkpoint("P").await;
    assert!(matches!(checkpoint, Err(StoreError::Corrupt { .. })), "{checkpoint:?}");

    // What PostgreSQL cannot store is refused up front, nothing written.
    let nul = store.put("t", "n", json!({"text": "a\u{0}b"})).await;
    assert!(matches!(nul, Err(StoreError::Invalid(_))), "{nul:?}");
    assert_eq!(store.get("t", "n").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_applies_its_ops_in_order() {
    let url = shared_cluster().fresh_database().expect("database");
    let store = PgQueryStore::new(connect(&url).await);
    store.put("t", "gone", json!({"v": 0})).await.unwrap();
    let ops = vec![
        RowOp::Put { id: "a".into(), row: json!({"v": 1}) },
        RowOp::Delete { id: "a".into() },
        RowOp::Put { id: "b".into(), row: json!({"v": 1}) },
        RowOp::Put { id: "b".into(), row: json!({"v": 2}) },
        RowOp::Delete { id: "gone".into() },
        RowOp::Put { id: "c".into(), row: json!({"v": 1}) },
        RowOp::Delete { id: "c".into() },
        RowOp::Put { id: "c".into(), row: json!({"v": 3}) },
    ];
    store.commit("t", ops, Some(Checkpoint { name: "Ordered".into(), position: 1 })).await.unwrap();
    let rows = store.list("t", &ListRequest::default()).await.unwrap().rows;
    assert_eq!(rows, vec![("b".to_string(), json!({"v": 2})), ("c".to_string(), json!({"v": 3}))]);
    let zero = store.commit("t", vec![], Some(Checkpoint { name: "Fresh".into(), position: 0 })).await;
    assert!(matches!(zero, Err(StoreError::Conflict(_))), "position 0 is never ahead: {zero:?}");
}
