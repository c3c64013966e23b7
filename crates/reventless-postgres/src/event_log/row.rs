//! Stored event rows back into envelopes; a row that does not decode is
//! reported as corrupt, naming the log, position and column.
use reventless_core::StoreError;
use reventless_spec::{EventEnvelope, EventMeta, StreamPosition, Tag, Timestamp};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, Type};

/// A JSON column's text as stored, parsed by the caller into the shape it expects.
pub(crate) struct RawJson<'a>(pub &'a [u8]);

impl<'a> FromSql<'a> for RawJson<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        if *ty == Type::JSONB {
            // JSONB's binary form: a version byte, then the text.
            return match raw.split_first() {
                Some((1, text)) => Ok(Self(text)),
                _ => Err("unsupported JSONB version".into()),
            };
        }
        Ok(Self(raw))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::JSON | Type::JSONB | Type::TEXT | Type::VARCHAR)
    }
}

/// Decodes a row of `query::EVENT_COLUMNS` read from `log`.
pub(crate) fn decode(row: &Row, log: &str) -> Result<EventEnvelope, StoreError> {
    let position: i64 = column(row, 0, log, "?", "position")?;
    let at = position.to_string();
    let corrupt = |name: &str, message: String| StoreError::Corrupt {
        location: format!("event {log}#{at} column {name}"),
        message,
    };
    let json = |index: usize, name: &str| -> Result<RawJson<'_>, StoreError> { column(row, index, log, &at, name) };
    let tags: Vec<Tag> =
        serde_json::from_slice(json(3, "tags")?.0).map_err(|e| corrupt("tags", format!("not a list of tags: {e}")))?;
    let data: serde_json::Value =
        serde_json::from_slice(json(4, "data")?.0).map_err(|e| corrupt("data", format!("not JSON: {e}")))?;
    let meta: EventMeta =
        serde_json::from_slice(json(5, "meta")?.0).map_err(|e| corrupt("meta", format!("not event meta: {e}")))?;
    let recorded_at: i64 = column(row, 6, log, &at, "recorded_at")?;
    let stream_id: Option<String> = column(row, 7, log, &at, "stream_id")?;
    let version: Option<i64> = column(row, 8, log, &at, "version")?;
    let stream = match (stream_id, version) {
        (None, None) => None,
        (Some(id), Some(version)) => Some(StreamPosition {
            id,
            version: u64::try_from(version)
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| corrupt("version", format!("stream version {version} is not positive")))?,
        }),
        (id, version) => {
            return Err(corrupt("stream_id", format!("stream id {id:?} without a version, or version {version:?}")));
        }
    };
    Ok(EventEnvelope {
        event_id: column(row, 1, log, &at, "event_id")?,
        event_type: column(row, 2, log, &at, "type")?,
        tags,
        data,
        position: u64::try_from(position)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| corrupt("position", format!("position {position} is not positive")))?,
        stream,
        recorded_at: Timestamp(
            u64::try_from(recorded_at).map_err(|_| corrupt("recorded_at", format!("negative time {recorded_at}")))?,
        ),
        meta,
    })
}

/// One column, a value of the wrong type or NULL where none belongs being corrupt.
fn column<'a, T: FromSql<'a>>(row: &'a Row, index: usize, log: &str, at: &str, name: &str) -> Result<T, StoreError> {
    row.try_get(index).map_err(|e| StoreError::Corrupt {
        location: format!("event {log}#{at} column {name}"),
        message: e.to_string(),
    })
}
