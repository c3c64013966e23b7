//! The store contract on DynamoDB + SQS FIFO, against the emulator (moto).
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use reventless_aws::emulator::Emulator;
use reventless_aws::{StoreNames, aws_stores, provision};
use reventless_core::store::Stores;

/// Fresh tables and queues for one case.
async fn stores() -> Stores {
    let emulator = Emulator::shared().expect("the AWS emulator (moto) must run for these tests");
    let config = emulator.sdk_config().await;
    let names = StoreNames::unique("contract");
    let topics = ["contract_fifo", "contract_release", "contract_dedup", "contract_visibility", "contract_wait"];
    provision::create_stores(&config, &names, &topics).await.unwrap();
    aws_stores(&config, &names)
}

reventless_core::store_contract_tests!(stores().await);

mod indexes {
    use std::collections::BTreeMap;

    use reventless_aws::emulator::Emulator;
    use reventless_aws::query_store::DynamoQueryStore;
    use reventless_aws::{StoreNames, provision};
    use reventless_core::store::{Filter, ListRequest, OrderBy, QueryStore, RowOp};
    use serde_json::json;

    /// Lists through a declared index answer exactly what a scan answers, as rows change.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn indexed_lists_agree_with_scans_as_rows_change() {
        let emulator = Emulator::shared().expect("the AWS emulator (moto) must run for these tests");
        let config = emulator.sdk_config().await;
        let names = StoreNames::unique("indexes");
        provision::create_stores(&config, &names, &[]).await.unwrap();
        let client = aws_sdk_dynamodb::Client::new(&config);
        let declared = BTreeMap::from([("t".to_string(), vec!["category".to_string(), "active".to_string()])]);
        let indexed = DynamoQueryStore::new(client.clone(), &names.rows_table).with_indexes(declared);
        let scanned = DynamoQueryStore::new(client, &names.rows_table);
        let ops = (0..12)
            .map(|i| {
                let category = ["a", "b", "c"][i % 3];
                RowOp::Put {
                    id: format!("r{i:02}"),
                    row: json!({"category": category, "active": i % 2 == 0, "price": i}),
                }
            })
            .collect();
        indexed.commit("t", ops, None).await.unwrap();
        let requests = [
            ListRequest { filters: vec![Filter::eq("category", "b")], ..ListRequest::default() },
            ListRequest {
                filters: vec![Filter::eq("active", true), Filter::eq("category", "a")],
                order_by: Some(OrderBy { field: "price".into(), descending: true }),
                first: 1,
                after: None,
            },
            ListRequest { filters: vec![Filter::eq("category", "none")], ..ListRequest::default() },
        ];
        let ids = |page: &reventless_core::store::Page| page.rows.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>();
        for request in &requests {
            let (a, b) = (indexed.list("t", request).await.unwrap(), scanned.list("t", request).await.unwrap());
            assert_eq!((ids(&a), a.total_count, a.has_next_page), (ids(&b), b.total_count, b.has_next_page));
        }
        assert_eq!(ids(&indexed.list("t", &requests[0]).await.unwrap()), vec!["r01", "r04", "r07", "r10"]);
        // A row that changes category leaves the old one; a deleted row leaves both.
        indexed
            .commit(
                "t",
                vec![
                    RowOp::Put { id: "r01".into(), row: json!({"category": "c", "active": false, "price": 1}) },
                    RowOp::Delete { id: "r04".into() },
                ],
                None,
            )
            .await
            .unwrap();
        assert_eq!(ids(&indexed.list("t", &requests[0]).await.unwrap()), vec!["r07", "r10"]);
        let c = ListRequest { filters: vec![Filter::eq("category", "c")], ..ListRequest::default() };
        assert_eq!(ids(&indexed.list("t", &c).await.unwrap()), ids(&scanned.list("t", &c).await.unwrap()));
        assert!(ids(&indexed.list("t", &c).await.unwrap()).contains(&"r01".to_string()));
    }
}

mod upgrade {
    use aws_sdk_dynamodb::types::AttributeValue;
    use reventless_aws::emulator::Emulator;
    use reventless_aws::event_log::upgrade::{EVENTS_SCHEMA_VERSION, events_schema, upgrade_plugin_log};
    use reventless_aws::{StoreNames, aws_stores, provision};
    use reventless_core::store::{Checkpoint, StreamRef};
    use reventless_spec::{AppendCondition, EventEnvelope, NewEvent, Query, QueryItem, StreamPosition, Timestamp};
    use serde_json::json;

    fn s(text: impl Into<String>) -> AttributeValue {
        AttributeValue::S(text.into())
    }

    /// An event item as schema 1 wrote an aggregate's event: its own log `a#Library_Member`.
    fn old_item(
        id: &str,
        version: u64,
        position: u64,
        event_type: &str,
        recorded_at: u64,
    ) -> std::collections::HashMap<String, AttributeValue> {
        let event = NewEvent::new(event_type, vec![], json!({"n": position}));
        let stream = StreamPosition { id: id.into(), version };
        let envelope = EventEnvelope::recorded(event, position, Some(stream), Timestamp(recorded_at));
        [
            ("id", s(format!("a#Library_Member#{id}"))),
            ("position", s(format!("{version:020}"))),
            ("log", s("a#Library_Member")),
            ("gpos", AttributeValue::N(position.to_string())),
            ("type", s(event_type)),
            ("event", s(serde_json::to_string(&envelope).unwrap())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn old_aggregate_logs_join_the_plugin_log() {
        let emulator = Emulator::shared().expect("the AWS emulator (moto) must run for these tests");
        let config = emulator.sdk_config().await;
        let names = StoreNames::unique("upgrade");
        provision::create_stores(&config, &names, &[]).await.unwrap();
        let client = aws_sdk_dynamodb::Client::new(&config);
        let stores = aws_stores(&config, &names);
        // The plugin's DCB log as schema 1 left it (unchanged by the upgrade).
        let added = NewEvent::new("BookAdded", vec!["book:b1".parse().unwrap()], json!({}));
        stores.events.append("Library", vec![added], None).await.unwrap();
        for item in [old_item("m1", 1, 1, "MemberRegistered", 100), old_item("m2", 1, 2, "MemberRegistered", 200)] {
            client.put_item().table_name(&names.events_table).set_item(Some(item)).send().await.unwrap();
        }
        // Caught up everywhere; behind on the member log.
        for (name, position) in [("Members@Library_Member", 2), ("Members@Library", 1), ("Loans@Library_Member", 1)] {
            let checkpoint = Checkpoint { name: name.into(), position };
            stores.queries.commit("x", vec![], Some(checkpoint)).await.unwrap();
        }
        assert_eq!(events_schema(&client, &names.events_table).await.unwrap(), 1);

        let report = upgrade_plugin_log(&client, &names.events_table, &names.rows_table, "Library").await.unwrap();
        assert_eq!((report.events_moved, report.checkpoints_moved), (2, 2), "{report:?}");
        assert_eq!(events_schema(&client, &names.events_table).await.unwrap(), EVENTS_SCHEMA_VERSION);
        let all = stores.events.read("Library", &Query::all(), None, None).await.unwrap();
        let types: Vec<&str> = all.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(types, ["BookAdded", "MemberRegistered", "MemberRegistered"]);
        let member = |id| StreamRef { aggregate: "Member", id };
        let m1 = stores.events.read_stream("Library", member("m1"), 0).await.unwrap();
        assert_eq!(m1.len(), 1, "the stream still reads its events");
        assert_eq!(m1[0].tags[0].to_string(), "member:m1", "with their entity tag");
        let by_member = Query::none().item(QueryItem::new().tags(["member:m2".parse().unwrap()]));
        let seen = stores.events.read("Library", &by_member, None, None).await.unwrap();
        assert_eq!(seen.len(), 1, "a DCB query sees the moved event");
        // The fences know the moved events: a stale condition conflicts.
        let stale = AppendCondition::new(by_member.clone(), Some(1));
        let lent = NewEvent::new("BookLent", vec!["member:m2".parse().unwrap()], json!({}));
        assert!(stores.events.append("Library", vec![lent.clone()], Some(&stale)).await.is_err());
        let current = AppendCondition::new(by_member, Some(seen[0].position));
        stores.events.append("Library", vec![lent], Some(&current)).await.unwrap();
        let next = stores
            .events
            .append_to_stream("Library", member("m1"), 1, vec![NewEvent::new("MemberSuspended", vec![], json!({}))])
            .await
            .unwrap();
        assert!(next.first_position > seen[0].position);
        assert_eq!(stores.queries.checkpoint("Members@Library").await.unwrap(), all[2].position);
        assert_eq!(stores.queries.checkpoint("Loans@Library").await.unwrap(), all[1].position);
        assert_eq!(stores.queries.checkpoint("Members@Library_Member").await.unwrap(), 0);
        let again = upgrade_plugin_log(&client, &names.events_table, &names.rows_table, "Library").await.unwrap();
        assert!(!again.upgraded, "a table on the current schema is left alone");
    }
}
