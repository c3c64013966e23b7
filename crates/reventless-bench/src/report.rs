//! The lines the harness prints: a table, or one JSON object per line.
use serde::Serialize;

/// A reference a line is divided by, measured in the same run.
#[derive(Serialize, Clone)]
pub struct Reference {
    pub name: String,
    pub per_sec: f64,
    pub ratio: f64,
}

impl Reference {
    pub fn new(name: impl Into<String>, per_sec: f64, measured: f64) -> Self {
        Self { name: name.into(), per_sec, ratio: if per_sec > 0.0 { measured / per_sec } else { 0.0 } }
    }
}

/// One measured line. `per_sec` is the headline: for commands the settled
/// rate (acknowledged and applied by every projection).
#[derive(Serialize)]
pub struct Line {
    /// `reference`, `commands`, `projection-lag` or `replay`.
    pub kind: &'static str,
    pub name: String,
    pub backend: String,
    pub synchronous: String,
    pub clients: usize,
    /// Commands (or inserts, events) counted in the line.
    pub count: u64,
    /// The clock stopped only when every projection had applied every command.
    pub settled: bool,
    pub per_sec: f64,
    /// Commands acknowledged per second (clock stopped at the last answer).
    pub acked_per_sec: Option<f64>,
    /// From the last answer until every projection had caught up.
    pub catch_up_ms: Option<f64>,
    pub p50_us: u32,
    pub p99_us: u32,
    /// Each ratio is `per_sec / reference.per_sec`.
    pub references: Vec<Reference>,
    /// What the references are, where they are not of the same kind as the line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub event_bytes: usize,
    /// 1-minute load average of the machine right after the line was measured.
    pub load_avg_1m: f64,
}

pub struct Report {
    pub json: bool,
}

impl Report {
    pub fn header(&self) {
        if !self.json {
            println!(
                "{:<36} {:<6} {:<6} {:>4} {:>9} {:>9} {:>8} {:>7} {:>7} {:>9} {:>6} {:>9} {:>6} {:>5}",
                "name",
                "backend",
                "sync",
                "cli",
                "settled/s",
                "acked/s",
                "catchup",
                "p50 µs",
                "p99 µs",
                "ref1/s",
                "×ref1",
                "ref2/s",
                "×ref2",
                "load"
            );
        }
    }

    pub fn print(&self, line: &Line) {
        if self.json {
            println!("{}", serde_json::to_string(line).unwrap_or_default());
            return;
        }
        let reference = |i: usize| line.references.get(i).map(|r| (r.per_sec, r.ratio)).unwrap_or((0.0, 0.0));
        let (ref1, ratio1) = reference(0);
        let (ref2, ratio2) = reference(1);
        let optional = |value: Option<f64>, unit: &str| value.map(|v| format!("{v:.0}{unit}")).unwrap_or("-".into());
        println!(
            "{:<36} {:<6} {:<6} {:>4} {:>9.0} {:>9} {:>8} {:>7} {:>7} {:>9.0} {:>6.3} {:>9.0} {:>6.3} {:>5.2}",
            line.name,
            line.backend,
            line.synchronous,
            line.clients,
            line.per_sec,
            optional(line.acked_per_sec, ""),
            optional(line.catch_up_ms, "ms"),
            line.p50_us,
            line.p99_us,
            ref1,
            ratio1,
            ref2,
            ratio2,
            line.load_avg_1m
        );
    }

    /// The references' names, once, under the table.
    pub fn legend(&self, lines: &[(&str, &str)]) {
        if !self.json {
            for (key, text) in lines {
                println!("  {key}: {text}");
            }
        }
    }
}

/// The 1-minute load average (`/proc/loadavg`); 0 where unavailable. The
/// machine is shared: every line carries it so that a reader can judge.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().and_then(|first| first.parse().ok()))
        .unwrap_or(0.0)
}
