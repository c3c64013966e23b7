//! Function output → CloudWatch Logs on the emulator: each instance's
//! stdout and stderr lines (and the START/END/REPORT lines Lambda adds) go
//! to the function's log group, one stream per instance, written as Lambda
//! writes them: with the function's role, which must allow it.
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use crate::iam::Access;

/// Lines kept in memory per log group (for `recent_output` and test failures).
const KEEP: usize = 400;

#[derive(Debug, Clone)]
pub struct LogLine {
    pub group: String,
    pub stream: String,
    pub timestamp_ms: i64,
    pub message: String,
}

impl LogLine {
    pub fn now(group: &str, stream: &str, message: String) -> Self {
        let timestamp_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        Self { group: group.to_string(), stream: stream.to_string(), timestamp_ms, message }
    }
}

#[derive(Default)]
struct Book {
    /// Log group → the role its function runs under.
    roles: HashMap<String, String>,
    recent: HashMap<String, VecDeque<String>>,
}

/// Where instances write their lines; cheap to clone.
#[derive(Clone)]
pub struct LogSink {
    sender: mpsc::UnboundedSender<LogLine>,
    book: Arc<Mutex<Book>>,
}

impl LogSink {
    /// Starts the shipper: batches lines for up to 500 ms, then writes them.
    pub fn start(moto: &aws_config::SdkConfig, access: Arc<dyn Access>, region: &str, account: &str) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        let book = Arc::new(Mutex::new(Book::default()));
        let shipper = Shipper {
            client: aws_sdk_cloudwatchlogs::Client::new(moto),
            access,
            book: book.clone(),
            region: region.to_string(),
            account: account.to_string(),
            streams: HashSet::new(),
            refused: HashSet::new(),
        };
        tokio::spawn(shipper.run(receiver));
        Self { sender, book }
    }

    /// The function of `group` runs under `role` (its lines are written with it).
    pub fn register(&self, group: &str, role: &str) {
        if let Ok(mut book) = self.book.lock() {
            book.roles.insert(group.to_string(), role.to_string());
        }
    }

    pub fn write(&self, line: LogLine) {
        if let Ok(mut book) = self.book.lock() {
            let recent = book.recent.entry(line.group.clone()).or_default();
            if recent.len() == KEEP {
                recent.pop_front();
            }
            recent.push_back(line.message.clone());
        }
        let _ = self.sender.send(line);
    }

    /// The last lines written to a log group, oldest first.
    pub fn recent(&self, group: &str) -> Vec<String> {
        self.book.lock().ok().and_then(|b| b.recent.get(group).map(|r| r.iter().cloned().collect())).unwrap_or_default()
    }
}

struct Shipper {
    client: aws_sdk_cloudwatchlogs::Client,
    access: Arc<dyn Access>,
    book: Arc<Mutex<Book>>,
    region: String,
    account: String,
    streams: HashSet<(String, String)>,
    refused: HashSet<(String, String)>,
}

impl Shipper {
    async fn run(mut self, mut receiver: mpsc::UnboundedReceiver<LogLine>) {
        while let Some(first) = receiver.recv().await {
            let mut batch: BTreeMap<(String, String), Vec<LogLine>> = BTreeMap::new();
            batch.entry((first.group.clone(), first.stream.clone())).or_default().push(first);
            let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
            while let Ok(Some(line)) = tokio::time::timeout_at(deadline, receiver.recv()).await {
                batch.entry((line.group.clone(), line.stream.clone())).or_default().push(line);
            }
            for ((group, stream), lines) in batch {
                self.ship(&group, &stream, lines).await;
            }
        }
    }

    async fn ship(&mut self, group: &str, stream: &str, lines: Vec<LogLine>) {
        let key = (group.to_string(), stream.to_string());
        if self.refused.contains(&key) {
            return;
        }
        let role = self.book.lock().ok().and_then(|b| b.roles.get(group).cloned()).unwrap_or_default();
        let arn = format!("arn:aws:logs:{}:{}:log-group:{group}:log-stream:{stream}", self.region, self.account);
        if !self.streams.contains(&key) {
            for action in ["logs:CreateLogStream", "logs:PutLogEvents"] {
                if let Err(denied) = self.access.authorize(&role, action, &arn).await {
                    tracing::warn!(%denied, "the function's logs are dropped, as Lambda drops them");
                    self.refused.insert(key);
                    return;
                }
            }
            let created = self.client.create_log_stream().log_group_name(group).log_stream_name(stream).send().await;
            if let Err(error) = created {
                let error = aws_sdk_cloudwatchlogs::error::DisplayErrorContext(error).to_string();
                if !error.contains("ResourceAlreadyExists") {
                    tracing::warn!(group, stream, error, "cannot create the log stream");
                    return;
                }
            }
            self.streams.insert(key);
        }
        let events: Vec<_> = lines
            .into_iter()
            .filter_map(|line| {
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(line.timestamp_ms)
                    .message(line.message)
                    .build()
                    .ok()
            })
            .collect();
        let sent = self
            .client
            .put_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .set_log_events(Some(events))
            .send()
            .await;
        if let Err(error) = sent {
            tracing::warn!(group, error = %aws_sdk_cloudwatchlogs::error::DisplayErrorContext(error), "cannot write logs");
        }
    }
}
