//! `reventless logs`: the lines a stage's functions wrote, read back from
//! CloudWatch Logs (`FilterLogEvents` over their log groups
//! `/aws/lambda/{project}-{stage}-…`, found by name prefix, so functions of
//! stacks deployed from other project directories are found too). Lines the
//! functions' subscriber wrote are JSON ([`crate::lambda::logging`]); others
//! (Lambda's `START` / `REPORT`, a binary's own prints) are kept as text.
use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
use serde_json::{Value, json};

use super::config::ProjectConfig;

/// Why logs could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LogsError {
    #[error("{call} {name}: {message}")]
    Aws { call: &'static str, name: String, message: String },
    #[error("no log groups under {prefix} (is the stage deployed, and has the function run?)")]
    NoGroups { prefix: String },
    #[error("no stack `{plugin}` in the project (known: {known})")]
    UnknownPlugin { plugin: String, known: String },
}

fn aws<E: ProvideErrorMetadata + std::fmt::Debug>(call: &'static str, name: &str, error: E) -> LogsError {
    let message = match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => format!("{error:?}"),
    };
    LogsError::Aws { call, name: name.to_string(), message }
}

/// Which lines to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// One stack's functions: its key in the project file (`ordering`) or
    /// its plugin's name (`Ordering`); `platform` for the gateway.
    pub plugin: Option<String>,
    /// One function: its full name, or the part after `{project}-{stage}-`
    /// (`ordering-OrderingApi`), or after the stack (`OrderingApi`).
    pub function: Option<String>,
    /// A CloudWatch filter pattern (e.g. a correlation id in quotes).
    pub pattern: Option<String>,
}

/// One line of a function's log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The function (its log group without `/aws/lambda/`).
    pub function: String,
    pub stream: String,
    /// The line as written; when it is a JSON object, that object.
    pub message: String,
    pub fields: Option<serde_json::Map<String, Value>>,
    /// CloudWatch's id of the line (what `--follow` deduplicates by).
    pub event_id: String,
}

impl LogLine {
    fn new(timestamp: i64, group: &str, stream: &str, message: &str, event_id: String) -> Self {
        let message = message.trim_end().to_string();
        let fields = serde_json::from_str::<Value>(&message).ok().and_then(|v| match v {
            Value::Object(fields) => Some(fields),
            _ => None,
        });
        let function = group.strip_prefix("/aws/lambda/").unwrap_or(group).to_string();
        Self { timestamp, function, stream: stream.to_string(), message, fields, event_id }
    }

    fn field(&self, key: &str) -> Option<&str> {
        self.fields.as_ref().and_then(|f| f.get(key)).and_then(Value::as_str)
    }

    /// `ERROR`, `WARN`, … for lines of the functions' subscriber.
    pub fn level(&self) -> Option<&str> {
        self.field("level")
    }

    pub fn correlation_id(&self) -> Option<&str> {
        self.field("correlationId")
    }

    /// The message of a JSON line, else the whole line.
    pub fn text(&self) -> &str {
        self.field("message").unwrap_or(&self.message)
    }

    /// One line for a person: time, function (without the stage's prefix),
    /// level, message with the line's own fields, correlation id.
    pub fn human(&self, stage_prefix: &str) -> String {
        let time = rfc3339(self.timestamp);
        let function = self.function.strip_prefix(stage_prefix).unwrap_or(&self.function);
        let mut text = self.text().to_string();
        if let Some(fields) = &self.fields {
            // The line's own fields (what the spans add is in the columns or not needed).
            const SHOWN: [&str; 12] = [
                "time",
                "level",
                "message",
                "target",
                "function",
                "requestId",
                "plugin",
                "correlationId",
                "causationId",
                "commandId",
                "xrayTraceId",
                "log",
            ];
            for (key, value) in fields.iter().filter(|(key, _)| !SHOWN.contains(&key.as_str())) {
                let value = value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string());
                text.push_str(&format!(" {key}={value}"));
            }
        }
        let correlation = self.correlation_id().map(|id| format!(" [{id}]")).unwrap_or_default();
        format!("{time} {function} {:<5} {text}{correlation}", self.level().unwrap_or("-"))
    }

    /// One JSON object: where the line comes from, and the line (an object
    /// when the function wrote JSON, else the text).
    pub fn json(&self) -> Value {
        let line = match &self.fields {
            Some(fields) => Value::Object(fields.clone()),
            None => Value::String(self.message.clone()),
        };
        json!({
            "timestamp": self.timestamp,
            "time": rfc3339(self.timestamp),
            "function": self.function,
            "logStream": self.stream,
            "line": line,
        })
    }
}

fn rfc3339(millis: i64) -> String {
    aws_smithy_types::DateTime::from_millis(millis)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_else(|_| millis.to_string())
}

/// `30s`, `10m`, `2h`, `1d` (a bare number is seconds).
pub fn parse_since(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let count: u64 = number.parse().map_err(|_| format!("`{text}`: a number with s, m, h or d, e.g. 10m"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}`: the unit is s, m, h or d")),
    };
    count.checked_mul(seconds).map(Duration::from_secs).ok_or_else(|| format!("`{text}` is too long ago"))
}

/// `/aws/lambda/{project}-{stage}-`: every function log group of the stage starts so.
pub fn stage_prefix(config: &ProjectConfig) -> String {
    format!("/aws/lambda/{}-{}-", config.project, config.stage)
}

/// The log groups the query reads, by name prefix (sorted).
pub async fn log_groups(
    client: &aws_sdk_cloudwatchlogs::Client,
    config: &ProjectConfig,
    query: &LogQuery,
) -> Result<Vec<String>, LogsError> {
    let stage = stage_prefix(config);
    let prefix = match &query.plugin {
        None => stage.clone(),
        Some(plugin) if plugin == "platform" => format!("{stage}platform-"),
        Some(plugin) => {
            let stack = config
                .plugins
                .iter()
                .find(|(key, stack)| {
                    key.eq_ignore_ascii_case(plugin)
                        || stack.name.as_deref().is_some_and(|name| name.eq_ignore_ascii_case(plugin))
                })
                .map(|(key, _)| key.clone());
            // A stack of another project directory in the stage: its key as given.
            let stack = stack.unwrap_or_else(|| plugin.to_ascii_lowercase());
            if !stack.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                let known: Vec<&str> = config.plugins.keys().map(String::as_str).collect();
                return Err(LogsError::UnknownPlugin { plugin: plugin.clone(), known: known.join(", ") });
            }
            format!("{stage}{stack}-")
        }
    };
    let mut groups = BTreeSet::new();
    let mut token = None;
    loop {
        let page = client
            .describe_log_groups()
            .log_group_name_prefix(&prefix)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| aws("DescribeLogGroups", &prefix, e))?;
        groups.extend(page.log_groups().iter().filter_map(|g| g.log_group_name().map(str::to_string)));
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    if let Some(function) = &query.function {
        let function = function.strip_prefix("/aws/lambda/").unwrap_or(function);
        groups.retain(|group| {
            let name = group.strip_prefix("/aws/lambda/").unwrap_or(group);
            let after_stage = group.strip_prefix(&stage).unwrap_or(name);
            name == function
                || after_stage == function
                || after_stage.split_once('-').is_some_and(|(_, unit)| unit == function)
        });
    }
    if groups.is_empty() {
        let prefix = match &query.function {
            Some(function) => format!("{prefix} (function {function})"),
            None => prefix,
        };
        return Err(LogsError::NoGroups { prefix });
    }
    Ok(groups.into_iter().collect())
}

/// Every line of `groups` from `start` (ms since the epoch) on, oldest first.
pub async fn read(
    client: &aws_sdk_cloudwatchlogs::Client,
    groups: &[String],
    start: i64,
    pattern: Option<&str>,
) -> Result<Vec<LogLine>, LogsError> {
    let reads = groups.iter().map(|group| read_group(client, group, start, pattern));
    let mut lines = Vec::new();
    for read in futures::future::join_all(reads).await {
        lines.extend(read?);
    }
    lines.sort_by(|a, b| (a.timestamp, &a.function, &a.event_id).cmp(&(b.timestamp, &b.function, &b.event_id)));
    Ok(lines)
}

async fn read_group(
    client: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    start: i64,
    pattern: Option<&str>,
) -> Result<Vec<LogLine>, LogsError> {
    let mut lines = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .filter_log_events()
            .log_group_name(group)
            .start_time(start)
            .set_filter_pattern(pattern.map(str::to_string))
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| aws("FilterLogEvents", group, e))?;
        for event in page.events() {
            let id = event.event_id().unwrap_or_default().to_string();
            let (timestamp, stream) =
                (event.timestamp().unwrap_or_default(), event.log_stream_name().unwrap_or_default());
            lines.push(LogLine::new(timestamp, group, stream, event.message().unwrap_or_default(), id));
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(lines);
        }
    }
}

/// The query's lines of the last `since`, handed to `each` oldest first;
/// with `follow`, then polls every `poll` for new ones until `stop` resolves
/// (Ctrl-C). Returns how many lines were handed over.
pub async fn tail(
    client: &aws_sdk_cloudwatchlogs::Client,
    config: &ProjectConfig,
    query: &LogQuery,
    since: Duration,
    follow: Option<Duration>,
    stop: impl std::future::Future<Output = ()>,
    each: &mut (dyn FnMut(&LogLine) + Send),
) -> Result<usize, LogsError> {
    let now = now_ms();
    let mut start = now.saturating_sub(i64::try_from(since.as_millis()).unwrap_or(i64::MAX));
    let mut groups = log_groups(client, config, query).await?;
    let mut seen: HashSet<String> = HashSet::new();
    let mut shown = 0;
    tokio::pin!(stop);
    loop {
        let lines = read(client, &groups, start, query.pattern.as_deref()).await?;
        for line in &lines {
            if seen.insert(format!("{}/{}", line.function, line.event_id)) {
                each(line);
                shown += 1;
            }
        }
        let Some(poll) = follow else { return Ok(shown) };
        // Lines reach CloudWatch late and out of order: read the last
        // minute again (what was shown is skipped by id).
        if let Some(last) = lines.iter().map(|l| l.timestamp).max() {
            start = start.max(last.saturating_sub(60_000));
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = &mut stop => return Ok(shown),
        }
        // Functions that started logging meanwhile.
        if let Ok(found) = log_groups(client, config, query).await {
            groups = found;
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests report failures by panicking
    use super::*;

    #[test]
    fn since_takes_seconds_minutes_hours_and_days() {
        assert_eq!(parse_since("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_since("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_since("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_since("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_since("1d"), Ok(Duration::from_secs(86_400)));
        for wrong in ["", "m", "10w", "-5m", "1.5h", "99999999999999999999d"] {
            assert!(parse_since(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn json_lines_show_level_message_fields_and_correlation_and_text_lines_stay_text() {
        let json = r#"{"time":"t","level":"INFO","requestId":"r","correlationId":"k-1","message":"command rejected","command":"PlaceOrder","errorCode":"ProductsNotAvailable"}"#;
        let line = LogLine::new(1_764_555_225_123, "/aws/lambda/shop-dev-ordering-OrderingApi", "s", json, "1".into());
        assert_eq!((line.level(), line.correlation_id(), line.text()), (Some("INFO"), Some("k-1"), "command rejected"));
        let shown = line.human("shop-dev-");
        assert!(shown.starts_with("2025-12-01T02:13:45.123Z ordering-OrderingApi INFO  command rejected"), "{shown}");
        assert!(shown.contains("command=PlaceOrder") && shown.contains("errorCode=ProductsNotAvailable"), "{shown}");
        assert!(shown.ends_with(" [k-1]") && !shown.contains("requestId"), "{shown}");
        assert_eq!(line.json()["line"]["errorCode"], "ProductsNotAvailable");
        assert_eq!(line.json()["function"], "shop-dev-ordering-OrderingApi");

        let report = LogLine::new(0, "/aws/lambda/shop-dev-platform-Gateway", "s", "REPORT RequestId: x\n", "2".into());
        assert_eq!((report.level(), report.text()), (None, "REPORT RequestId: x"));
        assert!(report.human("shop-dev-").contains("platform-Gateway -     REPORT RequestId: x"));
        assert_eq!(report.json()["line"], "REPORT RequestId: x");
    }
}
