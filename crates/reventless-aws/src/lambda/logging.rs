//! The log of a Lambda function (plugin functions and the gateway): one JSON
//! object per line on stderr, which Lambda ships to the function's log group
//! and `reventless logs` reads back. A line carries the level, the time, the
//! function, and every field of the spans it was logged in — request id
//! (the invocation), plugin, component (follower, automation, extension),
//! command, entity id, correlation and causation ids — then the message and
//! the event's own fields:
//!
//! ```json
//! {"time":"2026-12-01T02:13:45.123Z","level":"INFO","requestId":"…","function":"shop-dev-ordering-OrderingApi",
//!  "plugin":"Ordering","command":"PlaceOrder","entityId":"o1","correlationId":"…","message":"command rejected",
//!  "errorCode":"ProductsNotAvailable"}
//! ```
//!
//! Field names are camelCase whatever the code calls them. The level comes
//! from `RUST_LOG` when set (e.g. through a group's `env_vars`), else from
//! `REVENTLESS_LOG` (the deploy's `log_level`), else `info`.
use std::collections::BTreeMap;
use std::io::Write;

use lambda_runtime::tracing::subscriber as tracing_subscriber;
use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber, span};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer};

/// The environment variable the deployer sets from `log_level`.
pub const LEVEL_ENV: &str = "REVENTLESS_LOG";

/// The level when nothing is configured.
const DEFAULT_LEVEL: &str = "info";

/// Keys written first, in this order (the rest follow sorted).
const LEADING: [&str; 12] = [
    "time",
    "level",
    "requestId",
    "function",
    "plugin",
    "component",
    "command",
    "entityId",
    "correlationId",
    "causationId",
    "message",
    "target",
];

/// Installs the JSON-lines subscriber on stderr for the whole process. A
/// filter that does not parse falls back to `info`, and says so in the log.
pub fn init() {
    init_with(std::io::stderr, std::env::var("RUST_LOG").ok(), std::env::var(LEVEL_ENV).ok());
}

/// As [`init`], writing to `make_writer` (e.g. a closure returning a
/// writer) with the level from `rust_log` / `configured` (see [`filter`]).
/// False when the process already has a subscriber.
pub fn init_with<W>(make_writer: W, rust_log: Option<String>, configured: Option<String>) -> bool
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok();
    let (filter, refused) = filter(rust_log, configured);
    let layer = JsonLines::new(make_writer).with_field("function", function);
    if tracing_subscriber::registry().with(layer.with_filter(filter)).try_init().is_err() {
        return false;
    }
    if let Some((directives, error)) = refused {
        tracing::warn!(directives, error, "the log level does not parse; logging at info");
    }
    true
}

/// The filter from `RUST_LOG` (first) or `REVENTLESS_LOG`; `info` when
/// neither is set or the chosen one does not parse (then also the
/// directives and why they were refused).
pub fn filter(rust_log: Option<String>, configured: Option<String>) -> (EnvFilter, Option<(String, String)>) {
    let chosen = rust_log.or(configured).filter(|d| !d.trim().is_empty());
    let Some(directives) = chosen else { return (EnvFilter::new(DEFAULT_LEVEL), None) };
    match EnvFilter::try_new(&directives) {
        Ok(filter) => (filter, None),
        Err(error) => (EnvFilter::new(DEFAULT_LEVEL), Some((directives, error.to_string()))),
    }
}

/// Whether `directives` is a log level setting a function accepts (`info`,
/// `warn,reventless_core=debug`, …): what the deploy checks `log_level` with.
pub fn check_level(directives: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    // A bare word parses as a target (`verbose` would silence everything
    // else): each directive must end in a level.
    for directive in directives.split(',').map(str::trim) {
        let level = directive.rsplit('=').next().unwrap_or_default();
        if !LEVELS.iter().any(|known| known.eq_ignore_ascii_case(level)) {
            return Err(format!("`{directive}` names no level; use one of {} (or target=level)", LEVELS.join(", ")));
        }
    }
    EnvFilter::try_new(directives).map(|_| ()).map_err(|e| e.to_string())
}

/// A [`Layer`] writing each event as one JSON object per line.
pub struct JsonLines<W> {
    make_writer: W,
    /// Fields every line carries (the function's name).
    fixed: BTreeMap<String, Value>,
}

impl<W> JsonLines<W> {
    pub fn new(make_writer: W) -> Self {
        Self { make_writer, fixed: BTreeMap::new() }
    }

    /// Every line also carries `key` (when `value` is some).
    pub fn with_field(mut self, key: &str, value: Option<String>) -> Self {
        if let Some(value) = value {
            self.fixed.insert(camel_case(key), Value::String(value));
        }
        self
    }
}

/// The fields of a span, kept in its extensions.
struct SpanFields(BTreeMap<String, Value>);

/// Collects recorded fields as JSON values under camelCase keys.
struct Collect<'a>(&'a mut BTreeMap<String, Value>);

impl Visit for Collect<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(camel_case(field.name()), Value::String(value.to_string()));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(camel_case(field.name()), Value::Bool(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(camel_case(field.name()), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(camel_case(field.name()), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(camel_case(field.name()), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(camel_case(field.name()), Value::String(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(camel_case(field.name()), Value::String(format!("{value:?}")));
    }
}

impl<S, W> Layer<S> for JsonLines<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Collect(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<SpanFields>()
        {
            values.record(&mut Collect(&mut fields.0));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = self.fixed.clone();
        // Outer spans first: an inner span's field (a nested command's id) wins.
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(own) = span.extensions().get::<SpanFields>() {
                    fields.extend(own.0.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        event.record(&mut Collect(&mut fields));
        let metadata = event.metadata();
        fields.insert("level".into(), Value::String(metadata.level().as_str().to_string()));
        fields.insert("time".into(), Value::String(now()));
        fields.insert("target".into(), Value::String(metadata.target().to_string()));
        let mut line = render(fields);
        line.push('\n');
        let _ = self.make_writer.make_writer().write_all(line.as_bytes());
    }
}

/// One JSON object: the leading keys in their order, then the rest sorted.
fn render(mut fields: BTreeMap<String, Value>) -> String {
    let mut out = String::from("{");
    let mut first = true;
    let mut put = |out: &mut String, key: &str, value: &Value| {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&Value::String(key.to_string()).to_string());
        out.push(':');
        out.push_str(&value.to_string());
    };
    for key in LEADING {
        if let Some(value) = fields.remove(key) {
            put(&mut out, key, &value);
        }
    }
    for (key, value) in &fields {
        put(&mut out, key, value);
    }
    out.push('}');
    out
}

/// Now, as RFC 3339 in UTC with milliseconds.
fn now() -> String {
    let now = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
    let millis = now.to_millis().unwrap_or_default();
    aws_smithy_types::DateTime::from_millis(millis)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

/// `correlation_id` → `correlationId` (names already camelCase stay).
fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' && !out.is_empty() {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests report failures by panicking
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer into memory, shared with the test.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn each_event_is_one_json_line_with_the_fields_of_its_spans() {
        let buffer = Buffer::default();
        let layer = JsonLines::new(buffer.clone()).with_field("function", Some("shop-dev-ordering-OrderingApi".into()));
        let (filter, refused) = filter(None, Some("info".into()));
        assert!(refused.is_none());
        let subscriber = tracing_subscriber::registry().with(layer.with_filter(filter));
        tracing::subscriber::with_default(subscriber, || {
            let invocation = tracing::info_span!("invocation", request_id = "req-1", plugin = "Ordering");
            let _invocation = invocation.enter();
            let command = tracing::info_span!(
                "command",
                command = "PlaceOrder",
                command_id = "c-1",
                entity_id = tracing::field::Empty,
                correlation_id = "k-1"
            );
            command.record("entity_id", "o1");
            let _command = command.enter();
            tracing::info!(error_code = "ProductsNotAvailable", attempts = 2u64, "command rejected");
            tracing::debug!("filtered out at info");
            let error = std::io::Error::other("the table is gone");
            tracing::error!(%error, "command failed");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains('\u{1b}'), "no ANSI escapes: {text:?}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let first: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first["level"], "INFO");
        assert_eq!(first["message"], "command rejected");
        assert_eq!(first["requestId"], "req-1");
        assert_eq!(first["function"], "shop-dev-ordering-OrderingApi");
        assert_eq!(first["plugin"], "Ordering");
        assert_eq!(first["command"], "PlaceOrder");
        assert_eq!(first["commandId"], "c-1");
        assert_eq!(first["entityId"], "o1");
        assert_eq!(first["correlationId"], "k-1");
        assert_eq!(first["errorCode"], "ProductsNotAvailable");
        assert_eq!(first["attempts"], 2);
        let time = first["time"].as_str().unwrap();
        assert!(time.len() >= 20 && time.ends_with('Z') && time.contains('T'), "{time}");
        assert!(lines[0].starts_with(r#"{"time":"#), "time first: {}", lines[0]);
        let second: Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!((second["level"].as_str(), second["error"].as_str()), (Some("ERROR"), Some("the table is gone")));
        assert_eq!(second["correlationId"], "k-1");
    }

    #[test]
    fn the_level_comes_from_rust_log_then_the_configuration() {
        assert!(filter(None, None).1.is_none());
        let (chosen, refused) = filter(Some("debug".into()), Some("warn".into()));
        assert!(refused.is_none());
        assert_eq!(chosen.max_level_hint(), Some(tracing::level_filters::LevelFilter::DEBUG));
        let (chosen, _) = filter(None, Some("warn".into()));
        assert_eq!(chosen.max_level_hint(), Some(tracing::level_filters::LevelFilter::WARN));
        let (chosen, refused) = filter(None, Some("shop=loud".into()));
        assert_eq!(chosen.max_level_hint(), Some(tracing::level_filters::LevelFilter::INFO));
        assert_eq!(refused.unwrap().0, "shop=loud");
        assert!(check_level("warn,reventless_core=debug").is_ok());
        assert!(check_level("").is_err());
        assert!(check_level("verbose=yes").is_err());
        assert!(check_level("verbose").is_err(), "a bare word is a target, not a level");
        assert!(check_level("INFO").is_ok());
        assert_eq!(camel_case("correlation_id"), "correlationId");
        assert_eq!(camel_case("requestId"), "requestId");
    }
}
