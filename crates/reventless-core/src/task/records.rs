//! Reads a task's file record by record from any `AsyncBufRead`, keeping
//! at most one record in memory.
//!
//! Lines are read with tokio and each CSV record is parsed with the `csv`
//! crate (RFC 4180 quoting, typed deserialization with the header): a
//! record continues over line breaks while its quotes are open. Doing the
//! framing here rather than with an async CSV crate gives the exact byte
//! offset and line of every record, which checkpoints need to resume at.
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use super::{MALFORMED_RECORD, MAX_RECORD_BYTES, RECORD_TOO_LONG, RecordRejection, TaskFormat};

/// One record as read, before the task's type sees it.
#[derive(Debug)]
pub(crate) enum RawRecord {
    /// A CSV row.
    Csv(csv::StringRecord),
    /// A JSON line.
    Json(Vec<u8>),
    /// Unreadable: rejected with this code and detail.
    Unreadable(RecordRejection),
}

/// A record and where it is in the file.
#[derive(Debug)]
pub(crate) struct Located {
    /// The line it starts on (1-based).
    pub line: u64,
    /// The byte offset after it.
    pub end_offset: u64,
    /// The line after it.
    pub next_line: u64,
    /// The record.
    pub record: RawRecord,
}

pub(crate) struct Records<R> {
    reader: R,
    format: TaskFormat,
    /// Byte offset of the next unread byte.
    offset: u64,
    /// The line the next byte is on.
    line: u64,
    buffer: Vec<u8>,
    /// The file's first bytes are next (a UTF-8 byte order mark is skipped).
    at_start: bool,
}

impl<R: AsyncBufRead + Unpin> Records<R> {
    /// Records of `reader`, whose first byte is at `offset` on `line` of the file.
    pub(crate) fn new(reader: R, format: TaskFormat, offset: u64, line: u64) -> Self {
        Self { reader, format, offset, line, buffer: Vec::new(), at_start: offset == 0 }
    }

    /// The next record, `None` at the end of the file.
    pub(crate) async fn next(&mut self) -> std::io::Result<Option<Located>> {
        loop {
            self.buffer.clear();
            let start_line = self.line;
            let mut too_long = false;
            // One physical line, then more while a CSV quote is open.
            loop {
                let before = self.buffer.len();
                let read = self.read_line(&mut too_long).await?;
                if read == 0 {
                    break;
                }
                self.line += u64::from(self.buffer.get(before..).is_some_and(|b| b.ends_with(b"\n")));
                let open_quote =
                    self.format == TaskFormat::Csv && self.buffer.iter().filter(|b| **b == b'"').count() % 2 == 1;
                if too_long || !open_quote || !self.buffer.ends_with(b"\n") {
                    break;
                }
            }
            if self.at_start {
                self.at_start = false;
                if self.buffer.starts_with(b"\xEF\xBB\xBF") {
                    self.buffer.drain(..3);
                }
            }
            if self.buffer.is_empty() && !too_long {
                return Ok(None);
            }
            let located = |record| Located { line: start_line, end_offset: self.offset, next_line: self.line, record };
            if too_long {
                let rejection = RecordRejection {
                    code: RECORD_TOO_LONG.into(),
                    detail: serde_json::json!({ "maxBytes": MAX_RECORD_BYTES }),
                };
                return Ok(Some(located(RawRecord::Unreadable(rejection))));
            }
            if self.buffer.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            let record = match self.format {
                TaskFormat::JsonLines => RawRecord::Json(std::mem::take(&mut self.buffer)),
                TaskFormat::Csv => csv_record(&self.buffer),
            };
            return Ok(Some(located(record)));
        }
    }

    /// Appends one line (with its `\n`) to the buffer, up to the record
    /// limit; a longer line is read to its end and dropped (`too_long`).
    async fn read_line(&mut self, too_long: &mut bool) -> std::io::Result<usize> {
        let mut total = 0;
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                return Ok(total);
            }
            let (take, done) = match available.iter().position(|b| *b == b'\n') {
                Some(index) => (index + 1, true),
                None => (available.len(), false),
            };
            if !*too_long && self.buffer.len() + take <= MAX_RECORD_BYTES {
                self.buffer.extend_from_slice(&available[..take]);
            } else if !*too_long {
                *too_long = true;
                self.buffer.clear();
            }
            if *too_long && done {
                // Keep the line count right for what follows.
                self.line += 1;
            }
            self.reader.consume(take);
            self.offset += take as u64;
            total += take;
            if done {
                return Ok(total);
            }
        }
    }
}

/// One CSV record of `bytes` (a row, possibly over several lines).
fn csv_record(bytes: &[u8]) -> RawRecord {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes);
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => RawRecord::Csv(record),
        Ok(false) => RawRecord::Unreadable(malformed("an empty row".into())),
        Err(error) => RawRecord::Unreadable(malformed(error.to_string())),
    }
}

pub(crate) fn malformed(message: String) -> RecordRejection {
    RecordRejection { code: MALFORMED_RECORD.into(), detail: serde_json::json!({ "message": message }) }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    async fn all(text: &[u8], format: TaskFormat) -> Vec<Located> {
        let mut records = Records::new(text, format, 0, 1);
        let mut out = Vec::new();
        while let Some(record) = records.next().await.unwrap() {
            out.push(record);
        }
        out
    }

    fn fields(record: &RawRecord) -> Vec<String> {
        match record {
            RawRecord::Csv(row) => row.iter().map(str::to_string).collect(),
            other => panic!("not a CSV row: {other:?}"),
        }
    }

    #[tokio::test]
    async fn csv_rows_keep_their_lines_and_offsets_and_quoted_line_breaks() {
        let text = "\u{FEFF}id,name\r\n1,plain\n\n2,\"two\nlines, quoted \"\"x\"\"\"\n3,last";
        let records = all(text.as_bytes(), TaskFormat::Csv).await;
        assert_eq!(records.len(), 4, "header and three rows, the blank line skipped");
        assert_eq!(fields(&records[0].record), ["id", "name"]);
        assert_eq!(fields(&records[1].record), ["1", "plain"]);
        assert_eq!(fields(&records[2].record), ["2", "two\nlines, quoted \"x\""]);
        assert_eq!(fields(&records[3].record), ["3", "last"]);
        assert_eq!(records.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 2, 4, 6]);
        assert_eq!(records[3].end_offset, text.len() as u64);
        // Reading from a record's end offset gives the records after it.
        let from = records[1].end_offset as usize;
        let mut rest = Records::new(&text.as_bytes()[from..], TaskFormat::Csv, from as u64, records[1].next_line);
        let next = rest.next().await.unwrap().unwrap();
        assert_eq!((next.line, fields(&next.record)[0].as_str()), (4, "2"));
    }

    #[tokio::test]
    async fn a_record_past_the_limit_is_rejected_and_reading_goes_on() {
        let mut text = b"{\"a\":1}\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES + 10));
        text.extend(b"\n{\"a\":2}\n");
        let records = all(&text, TaskFormat::JsonLines).await;
        assert_eq!(records.len(), 3);
        assert!(matches!(&records[1].record, RawRecord::Unreadable(r) if r.code == RECORD_TOO_LONG));
        assert!(matches!(&records[2].record, RawRecord::Json(line) if line.starts_with(b"{\"a\":2}")));
        assert_eq!(records[2].line, 3);
    }

    #[tokio::test]
    async fn invalid_utf8_in_csv_is_a_malformed_record() {
        let records = all(b"id\n\xff\xfe\n2\n", TaskFormat::Csv).await;
        assert!(matches!(&records[1].record, RawRecord::Unreadable(r) if r.code == MALFORMED_RECORD));
        assert_eq!(fields(&records[2].record), ["2"]);
    }
}
