//! File tasks: an uploaded file (CSV or JSON lines) becomes commands, one
//! record at a time.
use std::fmt::Debug;

use serde::de::DeserializeOwned;

use crate::{Dispatch, DomainError};

/// The file formats a task reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskFormat {
    /// Comma-separated values; the first row names the record's fields
    /// (RFC 4180 quoting, a quoted field may span lines).
    Csv,
    /// One JSON object per line (`.jsonl`, `.ndjson`); blank lines are skipped.
    JsonLines,
}

impl TaskFormat {
    /// The format a file name's extension names (`.csv`, `.jsonl`, `.ndjson`), if any.
    pub fn from_name(name: &str) -> Option<Self> {
        let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match extension.as_str() {
            "csv" => Some(Self::Csv),
            "jsonl" | "ndjson" => Some(Self::JsonLines),
            _ => None,
        }
    }

    /// The format a media type names (`text/csv`, `application/x-ndjson`, `application/jsonl`), if any.
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        let essence = media_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "text/csv" | "application/csv" => Some(Self::Csv),
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "application/jsonlines" => Some(Self::JsonLines),
            _ => None,
        }
    }

    /// Its name in messages and in the run row (`CSV`, `JSON_LINES`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "CSV",
            Self::JsonLines => "JSON_LINES",
        }
    }
}

impl std::fmt::Display for TaskFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A file task: each record of an uploaded file (a CSV row, a JSON line)
/// becomes this plugin's commands, sent in the name of whoever started the
/// task (their roles are checked for the task and for every command).
///
/// A record that does not parse as [`TaskSlice::Record`] is rejected with
/// the code `MalformedRecord`; a record `commands` refuses is rejected with
/// its error's code; a command the plugin refuses rejects its record with
/// the command's error code. Rejections are kept in the run row
/// `<Plugin>_<NAME>Runs` with their line numbers; the run goes on.
pub trait TaskSlice: Send + Sync + 'static {
    /// E.g. `ImportProducts` (started as `<Plugin>.<NAME>`, runs in `<Plugin>_<NAME>Runs`).
    const NAME: &'static str;
    /// Roles allowed to start it (any caller when empty).
    const ROLES: &'static [&'static str] = &[];
    /// The formats it reads.
    const FORMATS: &'static [TaskFormat] = &[TaskFormat::Csv, TaskFormat::JsonLines];
    /// One record of the file. In a CSV file the header row names its
    /// fields (serde names); values are converted to the field types.
    type Record: DeserializeOwned + schemars::JsonSchema + Debug + Send + Sync + 'static;
    /// Why a record is refused (the variant name is the error code).
    type Error: DomainError;

    /// The commands for one record, or why the record is refused.
    fn commands(record: &Self::Record) -> Result<Vec<Dispatch>, Self::Error>;
}

#[cfg(test)]
mod tests {
    use super::TaskFormat;

    #[test]
    fn formats_come_from_names_and_media_types() {
        assert_eq!(TaskFormat::from_name("products.CSV"), Some(TaskFormat::Csv));
        assert_eq!(TaskFormat::from_name("tasks/ImportProducts/a.b.jsonl"), Some(TaskFormat::JsonLines));
        assert_eq!(TaskFormat::from_name("x.ndjson"), Some(TaskFormat::JsonLines));
        assert_eq!(TaskFormat::from_name("products.xlsx"), None);
        assert_eq!(TaskFormat::from_name("products"), None);
        assert_eq!(TaskFormat::from_media_type("text/csv; charset=utf-8"), Some(TaskFormat::Csv));
        assert_eq!(TaskFormat::from_media_type("application/x-ndjson"), Some(TaskFormat::JsonLines));
        assert_eq!(TaskFormat::from_media_type("application/json"), None);
    }
}
