//! The type-erased handler of a [`TaskSlice`]: parses one record (a CSV row
//! or a JSON line) into the record type and asks the task for its commands.
use std::any::TypeId;
use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use reventless_spec::{Dispatch, DomainError, EventEnvelope, TaskFormat, TaskSlice};

use super::{ComponentKind, ComponentManifest, ProjectionHandler};
use crate::outcome::EngineError;
use crate::store::{QueryStore, RowOp};
use crate::task::{MALFORMED_RECORD, RecordRejection, TaskRunRow};

/// The run table of a task: `<Plugin>_<Task>Runs`.
pub fn task_runs_table(plugin: &str, task: &str) -> String {
    format!("{plugin}_{task}Runs")
}

/// A registered task (type-erased).
pub trait TaskHandler: Send + Sync {
    /// The task's name (`ImportProducts`).
    fn name(&self) -> &'static str;
    /// Roles allowed to start it (anyone when empty).
    fn roles(&self) -> &'static [&'static str];
    /// The formats it reads.
    fn formats(&self) -> &'static [TaskFormat];
    /// JSON Schema of its record type.
    fn record_schema(&self) -> schemars::Schema;
    /// Its run table, `<Plugin>_<Task>Runs`.
    fn table(&self) -> &str;
    /// The commands of one CSV row (`header` names its fields), or why it is rejected.
    fn csv_record(&self, header: &csv::StringRecord, row: &csv::StringRecord)
    -> Result<Vec<Dispatch>, RecordRejection>;
    /// The commands of one JSON line, or why it is rejected.
    fn json_record(&self, line: &[u8]) -> Result<Vec<Dispatch>, RecordRejection>;
    /// The run table as a read model (queried through the API like one; no events feed it).
    fn runs_view(&self) -> Arc<dyn ProjectionHandler>;
    /// The component as the manifest lists it.
    fn manifest(&self) -> ComponentManifest {
        ComponentManifest {
            kind: ComponentKind::Task,
            name: self.name().to_string(),
            commands: Vec::new(),
            consumes: Vec::new(),
            produces: Vec::new(),
            log: None,
            sources: Vec::new(),
            table: Some(self.table().to_string()),
            indexes: vec!["status".into()],
            needs: Vec::new(),
            is_async: false,
        }
    }
}

pub(super) struct TaskOf<T> {
    table: String,
    view: Arc<RunsView>,
    marker: PhantomData<fn() -> T>,
}

impl<T: TaskSlice> TaskOf<T> {
    pub(super) fn new(plugin: &str) -> Self {
        let table = task_runs_table(plugin, T::NAME);
        // GraphQL names: `<Plugin>_<Task>Run(id)` and `<Plugin>_<Task>Runs`.
        let singular: &'static str = Box::leak(format!("{}Run", T::NAME).into_boxed_str());
        let plural: &'static str = Box::leak(format!("{}Runs", T::NAME).into_boxed_str());
        let view = Arc::new(RunsView { table: table.clone(), names: (singular, plural), roles: T::ROLES });
        Self { table, view, marker: PhantomData }
    }

    fn commands(record: Result<T::Record, String>) -> Result<Vec<Dispatch>, RecordRejection> {
        let record = record.map_err(|message| RecordRejection {
            code: MALFORMED_RECORD.into(),
            detail: serde_json::json!({ "message": message }),
        })?;
        T::commands(&record).map_err(|error| RecordRejection { code: error.code(), detail: error.detail() })
    }
}

impl<T: TaskSlice> TaskHandler for TaskOf<T> {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn roles(&self) -> &'static [&'static str] {
        T::ROLES
    }

    fn formats(&self) -> &'static [TaskFormat] {
        T::FORMATS
    }

    fn record_schema(&self) -> schemars::Schema {
        schemars::schema_for!(T::Record)
    }

    fn table(&self) -> &str {
        &self.table
    }

    fn csv_record(
        &self,
        header: &csv::StringRecord,
        row: &csv::StringRecord,
    ) -> Result<Vec<Dispatch>, RecordRejection> {
        if row.len() != header.len() {
            return Err(RecordRejection {
                code: MALFORMED_RECORD.into(),
                detail: serde_json::json!({
                    "message": format!("{} fields where the header names {}", row.len(), header.len())
                }),
            });
        }
        Self::commands(row.deserialize::<T::Record>(Some(header)).map_err(|e| csv_message(&e, header)))
    }

    fn json_record(&self, line: &[u8]) -> Result<Vec<Dispatch>, RecordRejection> {
        Self::commands(serde_json::from_slice::<T::Record>(line).map_err(|e| e.to_string()))
    }

    fn runs_view(&self) -> Arc<dyn ProjectionHandler> {
        self.view.clone()
    }
}

/// A CSV deserialization error naming the column (the csv crate counts fields from 0).
fn csv_message(error: &csv::Error, header: &csv::StringRecord) -> String {
    if let csv::ErrorKind::Deserialize { err, .. } = error.kind() {
        let column = err.field().and_then(|index| header.get(index as usize));
        return match column {
            Some(column) => format!("column `{column}`: {}", err.kind()),
            None => err.kind().to_string(),
        };
    }
    error.to_string()
}

/// A task's run table seen as a read model: the API lists and gets its rows
/// like any read model's. The task runner writes the rows; no events feed
/// it, so the runtime never follows or replays it.
struct RunsView {
    table: String,
    names: (&'static str, &'static str),
    roles: &'static [&'static str],
}

#[async_trait]
impl ProjectionHandler for RunsView {
    fn manifest(&self) -> ComponentManifest {
        ComponentManifest {
            kind: ComponentKind::Task,
            name: self.names.1.to_string(),
            commands: Vec::new(),
            consumes: Vec::new(),
            produces: Vec::new(),
            log: None,
            sources: Vec::new(),
            table: Some(self.table.clone()),
            indexes: vec!["status".into()],
            needs: Vec::new(),
            is_async: false,
        }
    }

    fn table(&self) -> &str {
        &self.table
    }

    fn event_type(&self) -> TypeId {
        TypeId::of::<RunsView>()
    }

    fn event_names(&self) -> &'static [&'static str] {
        &[]
    }

    async fn project(&self, _: &dyn QueryStore, _: &[EventEnvelope]) -> Result<Vec<RowOp>, EngineError> {
        Ok(Vec::new())
    }

    fn names(&self) -> (&'static str, &'static str) {
        self.names
    }

    fn roles(&self) -> &'static [&'static str] {
        self.roles
    }

    fn row_schema(&self) -> schemars::Schema {
        schemars::schema_for!(TaskRunRow)
    }

    fn indexes(&self) -> &'static [&'static str] {
        &["status"]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Deserialize, schemars::JsonSchema)]
    #[serde(rename_all = "camelCase")]
    struct Line {
        sku: String,
        unit_price: i64,
        note: Option<String>,
    }

    #[derive(Debug, Serialize)]
    enum LineError {
        FreeOfCharge { sku: String },
    }

    struct Lines;

    impl TaskSlice for Lines {
        const NAME: &'static str = "Lines";
        type Record = Line;
        type Error = LineError;

        fn commands(line: &Line) -> Result<Vec<Dispatch>, LineError> {
            if line.unit_price == 0 {
                return Err(LineError::FreeOfCharge { sku: line.sku.clone() });
            }
            let input = serde_json::json!({ "sku": line.sku, "price": line.unit_price, "note": line.note });
            Ok(vec![Dispatch { command: "AddLine".into(), entity_id: None, input }])
        }
    }

    fn csv(fields: &[&str]) -> csv::StringRecord {
        csv::StringRecord::from(fields.to_vec())
    }

    #[test]
    fn csv_rows_are_typed_by_the_header_and_bad_ones_say_which_column() {
        let task = TaskOf::<Lines>::new("Shop");
        assert_eq!(task.table(), "Shop_LinesRuns");
        let header = csv(&["sku", "unitPrice", "note"]);
        let commands = task.csv_record(&header, &csv(&["a1", "250", ""])).unwrap();
        assert_eq!(commands[0].input, serde_json::json!({"sku": "a1", "price": 250, "note": null}));
        let wrong_type = task.csv_record(&header, &csv(&["a1", "2.50", "x"])).unwrap_err();
        assert_eq!(wrong_type.code, MALFORMED_RECORD);
        assert!(wrong_type.detail["message"].as_str().unwrap().starts_with("column `unitPrice`"), "{wrong_type:?}");
        let short = task.csv_record(&header, &csv(&["a1", "2"])).unwrap_err();
        assert_eq!(short.detail["message"], "2 fields where the header names 3");
        let refused = task.csv_record(&header, &csv(&["a2", "0", ""])).unwrap_err();
        assert_eq!((refused.code.as_str(), &refused.detail), ("FreeOfCharge", &serde_json::json!({"sku": "a2"})));
        // A header without a field the record needs: every row is malformed.
        let missing = task.csv_record(&csv(&["sku", "note"]), &csv(&["a1", "x"])).unwrap_err();
        assert!(missing.detail["message"].as_str().unwrap().contains("missing field `unitPrice`"), "{missing:?}");
    }

    #[test]
    fn json_lines_are_typed_and_the_manifest_names_the_run_table() {
        let task = TaskOf::<Lines>::new("Shop");
        assert!(task.json_record(br#"{"sku":"a","unitPrice":3}"#).is_ok());
        assert_eq!(task.json_record(br#"{"sku":"a","unitPrice":"3"}"#).unwrap_err().code, MALFORMED_RECORD);
        let manifest = task.manifest();
        assert_eq!((manifest.kind, manifest.table.as_deref()), (ComponentKind::Task, Some("Shop_LinesRuns")));
        assert_eq!(task.runs_view().names(), ("LinesRun", "LinesRuns"));
    }
}
