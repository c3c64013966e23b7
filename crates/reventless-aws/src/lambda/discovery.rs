//! Subscribers found at runtime. A plugin publishing extension points may be
//! deployed before a plugin extending them (from another project directory,
//! on its own schedule): its publisher function finds such subscribers in
//! the platform registry (each subscriber's heartbeat writes its inbox and
//! the points it extends), re-read at most every [`SUBSCRIBERS_TTL`], and
//! hands them the points' events — from the start of the log, as a local
//! extension would get them — through a second runtime of the same plugin
//! holding only those subscribers. Subscribers known at deploy time stay
//! with the function's main runtime (its configuration).
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reventless_core::plugin::LogRef;
use reventless_core::{EngineError, FollowerKind, Plugin, Runtime, RuntimeOptions, TopicLayout, inbox_topic};
use reventless_spec::Capabilities;

use crate::gateway::{Registration, Registry};
use crate::{QueueDirectory, StoreNames};

/// How long a publisher trusts the subscribers it read.
pub const SUBSCRIBERS_TTL: Duration = Duration::from_secs(15);

/// Point → subscriber plugins.
type Subscribers = BTreeMap<String, Vec<String>>;

pub struct Discovery {
    sdk: aws_config::SdkConfig,
    stores: StoreNames,
    plugin: Plugin,
    capabilities: Capabilities,
    topics: TopicLayout,
    /// The plugin's query tables' indexes.
    indexes: BTreeMap<String, Vec<String>>,
    /// This plugin's extension points.
    points: Vec<String>,
    /// Subscribers the main runtime already serves (from the configuration).
    known: Subscribers,
    registry: Registry,
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    read_at: Option<Instant>,
    subscribers: Subscribers,
    runtime: Option<Runtime>,
}

impl Discovery {
    pub fn new(
        sdk: &aws_config::SdkConfig,
        registry: &str,
        stores: StoreNames,
        plugin: Plugin,
        capabilities: Capabilities,
        topics: TopicLayout,
        known: Subscribers,
    ) -> Result<Self, reventless_core::RuntimeError> {
        let manifest = plugin.manifest()?;
        let points = manifest
            .components
            .iter()
            .filter(|c| c.kind == reventless_core::plugin::ComponentKind::ExtensionPoint)
            .map(|c| c.name.clone())
            .collect();
        let indexes = manifest.storage.tables.iter().map(|t| (t.name.clone(), t.indexes.clone())).collect();
        Ok(Self {
            indexes,
            sdk: sdk.clone(),
            stores,
            plugin,
            capabilities,
            topics,
            points,
            known,
            registry: Registry::new(sdk, registry),
            state: tokio::sync::Mutex::new(State::default()),
        })
    }

    /// The runtime of the subscribers found beyond the known ones (None:
    /// none), read again from the registry once the last read is older than
    /// [`SUBSCRIBERS_TTL`]. A registry that cannot be read keeps what was
    /// found before (logged; the next batch reads again): events wait in
    /// their log, behind each subscriber's checkpoint, so none is lost.
    pub async fn runtime(&self) -> Option<Runtime> {
        let mut state = self.state.lock().await;
        if state.read_at.is_some_and(|at| at.elapsed() < SUBSCRIBERS_TTL) {
            return state.runtime.clone();
        }
        let registrations = match self.registry.list().await {
            Ok(registrations) => registrations,
            Err(error) => {
                tracing::warn!(%error, "cannot read the registry for subscribers; keeping those found before");
                return state.runtime.clone();
            }
        };
        state.read_at = Some(Instant::now());
        let (subscribers, inboxes) = self.found(&registrations);
        if subscribers != state.subscribers {
            tracing::info!(?subscribers, "subscribers deployed after this plugin found in the registry");
            state.runtime = if subscribers.is_empty() { None } else { self.build(&subscribers, inboxes) };
            state.subscribers = subscribers;
        }
        state.runtime.clone()
    }

    /// Subscribers of this plugin's points that are not known already, and their inbox queues by topic.
    fn found(&self, registrations: &[Registration]) -> (Subscribers, BTreeMap<String, String>) {
        let mut subscribers = Subscribers::new();
        let mut inboxes = BTreeMap::new();
        for registration in registrations {
            let Some(inbox) = &registration.inbox else { continue };
            for point in inbox.points.iter().filter(|point| self.points.contains(point)) {
                let known = self.known.get(point).is_some_and(|plugins| plugins.contains(&registration.plugin));
                if known {
                    continue;
                }
                subscribers.entry(point.clone()).or_default().push(registration.plugin.clone());
                inboxes.insert(inbox_topic(&registration.plugin), inbox.queue.clone());
            }
        }
        (subscribers, inboxes)
    }

    /// A runtime of the plugin that only publishes to `subscribers` (None,
    /// logged, when it cannot be made: the known subscribers still get theirs).
    fn build(&self, subscribers: &Subscribers, inboxes: BTreeMap<String, String>) -> Option<Runtime> {
        let queues = QueueDirectory { urls: BTreeMap::new(), names: inboxes };
        let stores = crate::aws_stores_with(&self.sdk, &self.stores, queues, self.indexes.clone());
        let options = RuntimeOptions { topics: self.topics, subscribers: subscribers.clone(), ..Default::default() };
        match Runtime::on_demand(stores, vec![self.plugin.clone()], self.capabilities.clone(), options) {
            Ok(runtime) => Some(runtime),
            Err(error) => {
                tracing::error!(%error, "cannot host the subscribers found in the registry");
                None
            }
        }
    }
}

/// The logs `runtime`'s publishers follow.
pub async fn published_logs(runtime: &Runtime, components: &[String]) -> Vec<LogRef> {
    runtime.followed_logs(&[FollowerKind::Publisher], components).await
}

/// Hands `logs`' new events to the discovered subscribers.
pub async fn publish(runtime: &Runtime, logs: &[String], components: &[String]) -> Vec<(String, EngineError)> {
    runtime.catch_up(logs, &[FollowerKind::Publisher], components).await
}
