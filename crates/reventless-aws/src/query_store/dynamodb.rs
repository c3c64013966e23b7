//! Read-model rows on DynamoDB: hash `t` (the read model's table), range
//! `id`, the row as JSON in `row`. Checkpoints are rows of `~checkpoints`.
//! A commit is one `TransactWriteItems` (rows + checkpoint, all or nothing).
//! Up to [`INDEX_SLOTS`] declared indexes of a read model are kept in the
//! attributes `ix1`… (`<table>#<field>#<value as JSON>`), each with its index
//! `by_ix1`…: a list with an equality filter on an indexed field queries that
//! index; other lists read the read model's partition (strongly consistent).
//! Either way the shared list evaluator filters, orders and paginates.
use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem, Update};
use reventless_core::store::{Checkpoint, FilterOp, ListRequest, Page, QueryStore, RowOp, StoreError, evaluate_list};
use serde_json::Value;

use crate::dynamo::{Item, invalid_request, n, query_pages, s, transact, unavailable};

pub const ROW_HASH: &str = "t";
pub const ROW_RANGE: &str = "id";
const ROW_ATTRIBUTE: &str = "row";
const CHECKPOINTS: &str = "~checkpoints";
/// How many declared indexes of a read model get a DynamoDB index.
pub const INDEX_SLOTS: usize = 3;

/// The attribute and index of index slot `slot` (0-based).
pub fn index_slot(slot: usize) -> (String, String) {
    (format!("ix{}", slot + 1), format!("by_ix{}", slot + 1))
}

/// Strings and booleans are indexed (numbers have several JSON spellings; their lists read the partition).
fn indexable(value: &Value) -> bool {
    value.is_string() || value.is_boolean()
}

fn index_key(table: &str, field: &str, value: &Value) -> String {
    format!("{table}#{field}#{value}")
}
/// Most keys one `BatchGetItem` may ask for.
const BATCH_GET_LIMIT: usize = 100;

pub struct DynamoQueryStore {
    client: Client,
    table: String,
    /// Declared indexes per read model (from the manifests).
    indexes: std::collections::BTreeMap<String, Vec<String>>,
}

impl DynamoQueryStore {
    /// Rows on the DynamoDB table `table` (keys `t` / `id`).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), indexes: Default::default() }
    }

    /// Keeps the declared indexes of each read model (`table → fields`) in index slots.
    pub fn with_indexes(mut self, indexes: std::collections::BTreeMap<String, Vec<String>>) -> Self {
        self.indexes = indexes;
        self
    }

    /// The slot holding `field` of `table`, when it is indexed.
    /// The declared index fields of `table`, a replay generation
    /// (`Orders~2`) included: it is indexed as its read model is.
    fn declared_indexes(&self, table: &str) -> Option<&Vec<String>> {
        self.indexes.get(reventless_core::runtime::replay::logical_table(table))
    }

    fn slot_of(&self, table: &str, field: &str) -> Option<usize> {
        self.declared_indexes(table)?.iter().take(INDEX_SLOTS).position(|f| f == field)
    }

    fn key(table: &str, id: &str) -> Item {
        HashMap::from([(ROW_HASH.to_string(), s(table)), (ROW_RANGE.to_string(), s(id))])
    }

    fn decode(&self, table: &str, item: &Item) -> Result<(String, Value), StoreError> {
        let corrupt = |message: &str| StoreError::Corrupt {
            location: format!("{}/{table}", self.table),
            message: message.into(),
        };
        let id = item.get(ROW_RANGE).and_then(|v| v.as_s().ok()).ok_or_else(|| corrupt("a row without id"))?;
        let json = item.get(ROW_ATTRIBUTE).and_then(|v| v.as_s().ok()).ok_or_else(|| corrupt("a row without data"))?;
        let row = serde_json::from_str(json).map_err(|e| corrupt(&format!("row {id}: {e}")))?;
        Ok((id.clone(), row))
    }

    /// Every row of a read model, in id order.
    async fn all_rows(&self, table: &str) -> Result<Vec<(String, Value)>, StoreError> {
        let mut rows = Vec::new();
        let query = || {
            self.client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("#t = :t")
                .expression_attribute_names("#t", ROW_HASH)
                .expression_attribute_values(":t", s(table))
        };
        query_pages(query, |item| {
            rows.push(self.decode(table, item)?);
            Ok(true)
        })
        .await?;
        Ok(rows)
    }
}

impl DynamoQueryStore {
    /// The rows of a read model whose indexed field has one value (through its index).
    async fn indexed_rows(&self, table: &str, slot: usize, key: &str) -> Result<Vec<(String, Value)>, StoreError> {
        let (attribute, index) = index_slot(slot);
        let mut rows = Vec::new();
        let query = || {
            self.client
                .query()
                .table_name(&self.table)
                .index_name(&index)
                .key_condition_expression("#ix = :key")
                .expression_attribute_names("#ix", &attribute)
                .expression_attribute_values(":key", s(key))
        };
        query_pages(query, |item| {
            rows.push(self.decode(table, item)?);
            Ok(true)
        })
        .await?;
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(rows)
    }
}

#[async_trait]
impl QueryStore for DynamoQueryStore {
    async fn get(&self, table: &str, id: &str) -> Result<Option<Value>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(table, id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output.item().map(|item| self.decode(table, item).map(|(_, row)| row)).transpose()
    }

    async fn get_many(&self, table: &str, ids: &[String]) -> Result<Vec<(String, Value)>, StoreError> {
        let mut found = Vec::new();
        let mut unique: Vec<&String> = ids.iter().collect();
        unique.sort();
        unique.dedup();
        for chunk in unique.chunks(BATCH_GET_LIMIT) {
            let mut keys: Vec<Item> = chunk.iter().map(|id| Self::key(table, id)).collect();
            while !keys.is_empty() {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut keys)))
                    .consistent_read(true)
                    .build()
                    .map_err(invalid_request)?;
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(unavailable)?;
                for item in output.responses().and_then(|r| r.get(&self.table)).into_iter().flatten() {
                    found.push(self.decode(table, item)?);
                }
                if let Some(left) = output.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                    keys = left.keys().to_vec();
                }
            }
        }
        Ok(found)
    }

    async fn list(&self, table: &str, request: &ListRequest) -> Result<Page, StoreError> {
        let indexed = request.filters.iter().find_map(|filter| {
            let slot =
                self.slot_of(table, &filter.field).filter(|_| filter.op == FilterOp::Eq && indexable(&filter.value))?;
            Some((slot, index_key(table, &filter.field, &filter.value)))
        });
        let rows = match indexed {
            Some((slot, key)) => self.indexed_rows(table, slot, &key).await?,
            None => self.all_rows(table).await?,
        };
        evaluate_list(rows.iter().map(|(id, row)| (id.as_str(), row)), request)
    }

    async fn commit(&self, table: &str, ops: Vec<RowOp>, checkpoint: Option<Checkpoint>) -> Result<(), StoreError> {
        let mut items = Vec::with_capacity(ops.len() + 1);
        // Later ops on the same id win (one transaction may touch an item once).
        let mut last_op: HashMap<String, RowOp> = HashMap::new();
        let mut order = Vec::new();
        for op in ops {
            let id = match &op {
                RowOp::Put { id, .. } | RowOp::Delete { id } => id.clone(),
            };
            if last_op.insert(id.clone(), op).is_none() {
                order.push(id);
            }
        }
        for id in order {
            let Some(op) = last_op.remove(&id) else { continue };
            let item = match op {
                RowOp::Put { id, row } => {
                    let mut item = Self::key(table, &id);
                    item.insert(ROW_ATTRIBUTE.into(), s(serde_json::to_string(&row).map_err(invalid_request)?));
                    for (slot, field) in
                        self.declared_indexes(table).into_iter().flatten().take(INDEX_SLOTS).enumerate()
                    {
                        if let Some(value) = row.get(field).filter(|v| indexable(v)) {
                            item.insert(index_slot(slot).0, s(index_key(table, field, value)));
                        }
                    }
                    let put =
                        Put::builder().table_name(&self.table).set_item(Some(item)).build().map_err(invalid_request)?;
                    TransactWriteItem::builder().put(put).build()
                }
                RowOp::Delete { id } => {
                    let delete = Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(Self::key(table, &id)))
                        .build()
                        .map_err(invalid_request)?;
                    TransactWriteItem::builder().delete(delete).build()
                }
            };
            items.push(item);
        }
        if let Some(checkpoint) = checkpoint {
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(Self::key(CHECKPOINTS, &checkpoint.name)))
                .update_expression("SET #p = :p")
                .condition_expression("attribute_not_exists(#p) OR #p < :p")
                .expression_attribute_names("#p", "checkpoint")
                .expression_attribute_values(":p", n(checkpoint.position))
                .build()
                .map_err(invalid_request)?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        if items.is_empty() {
            return Ok(());
        }
        transact(&self.client, items).await
    }

    async fn checkpoint(&self, name: &str) -> Result<u64, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(CHECKPOINTS, name)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let position = output.item().and_then(|item| item.get("checkpoint")).map(AttributeValue::as_n);
        match position {
            None => Ok(0),
            Some(Ok(text)) => text.parse().map_err(|_| StoreError::Corrupt {
                location: format!("{}/{CHECKPOINTS}", self.table),
                message: format!("checkpoint {name} is not a number: {text}"),
            }),
            Some(Err(_)) => Err(StoreError::Corrupt {
                location: format!("{}/{CHECKPOINTS}", self.table),
                message: format!("checkpoint {name} is not a number"),
            }),
        }
    }
}
