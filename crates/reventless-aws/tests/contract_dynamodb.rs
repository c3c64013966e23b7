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
