use std::collections::BTreeMap;

use reventless_spec::{Action, EventEnvelope, ReadModel};

use super::decode_event;
use crate::outcome::EngineError;
use crate::store::{QueryStore, RowOp, StoreError};

/// Rows touched while projecting a batch: `None` marks a deleted (or absent) row.
pub type ProjectionRows<R> = BTreeMap<String, Option<R>>;

/// Applies one action to rows already loaded into `rows` (the id of every
/// action must be present: load it first).
pub fn apply_action<R>(rows: &mut ProjectionRows<R>, action: Action<R>) {
    match action {
        Action::Set { id, row } => {
            rows.insert(id, Some(row));
        }
        Action::Update { id, update } => {
            if let Some(Some(row)) = rows.get_mut(&id) {
                update.apply(row);
            }
        }
        Action::UpdateWithDefault { id, default, update } => {
            let slot = rows.entry(id).or_insert(None);
            let row = slot.get_or_insert(default);
            update.apply(row);
        }
        Action::Delete { id } => {
            rows.insert(id, None);
        }
        Action::Ignore => {}
    }
}

fn action_id<R>(action: &Action<R>) -> Option<&str> {
    match action {
        Action::Set { .. } | Action::Ignore => None,
        Action::Update { id, .. } | Action::UpdateWithDefault { id, .. } | Action::Delete { id } => Some(id),
    }
}

/// Projects a batch of events of the source log into the row changes to
/// commit (together with the checkpoint) on `table`.
pub async fn project_batch<R: ReadModel>(
    store: &dyn QueryStore,
    table: &str,
    events: &[EventEnvelope],
) -> Result<Vec<RowOp>, EngineError> {
    project_events::<R::Event, R::Row>(store, table, events, R::CONSUMES, R::project).await
}

/// Projects the consumed events of a batch with `project` into row changes.
pub async fn project_events<E, Row>(
    store: &dyn QueryStore,
    table: &str,
    events: &[EventEnvelope],
    consumes: &[&str],
    project: impl Fn(&E, &EventEnvelope) -> Vec<reventless_spec::Action<Row>>,
) -> Result<Vec<RowOp>, EngineError>
where
    E: reventless_spec::Event,
    Row: serde::Serialize + serde::de::DeserializeOwned,
{
    // Actions first (they do not depend on rows), then every row they touch
    // in one read, then the actions in order.
    let mut actions = Vec::new();
    for envelope in events.iter().filter(|e| consumes.contains(&e.event_type.as_str())) {
        let event = decode_event::<E>(envelope)?;
        actions.extend(project(&event, envelope));
    }
    let mut wanted: Vec<String> = actions.iter().filter_map(action_id).map(str::to_string).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut rows: ProjectionRows<Row> = wanted.iter().map(|id| (id.clone(), None)).collect();
    if !wanted.is_empty() {
        for (id, value) in store.get_many(table, &wanted).await? {
            let row = serde_json::from_value(value).map_err(|e| {
                EngineError::Store(StoreError::Corrupt { location: format!("{table}/{id}"), message: e.to_string() })
            })?;
            rows.insert(id, Some(row));
        }
    }
    for action in actions {
        apply_action(&mut rows, action);
    }
    rows.into_iter()
        .map(|(id, row)| match row {
            Some(row) => serde_json::to_value(&row)
                .map(|row| RowOp::Put { id, row })
                .map_err(|e| EngineError::Contract(format!("{table} row does not serialize: {e}"))),
            None => Ok(RowOp::Delete { id }),
        })
        .collect()
}
