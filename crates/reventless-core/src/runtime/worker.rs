//! The task that follows a follower's logs: reads batches after its
//! checkpoints, hands them to the follower, and passes young gaps only late.
//! It applies only while it holds its lease (one process at a time runs it).
use super::*;
use crate::store::LeaseGuard;

/// How often a standing-by worker asks for its lease without notices: the
/// longest a follower stays without a process after its holder died.
pub const LEASE_RETRY: Duration = Duration::from_secs(2);
/// First delay before a standing-by worker looks again at a holder that has
/// events left to apply (doubling up to half of [`LEASE_RETRY`]).
const STANDBY_RECHECK: Duration = Duration::from_millis(50);
/// How long a standing-by worker woken by a notice waits for more before it
/// looks (bounds its queries under load to a few per second).
const STANDBY_COALESCE: Duration = Duration::from_millis(200);
/// Batches a standing-by worker reads per look at the holder's progress.
const STANDBY_READS: usize = 8;

/// How many of `events` (read after `checkpoint`) a follower may apply now:
/// up to the first gap in positions that is younger than [`GAP_GRACE`] (the
/// append that reserved the missing position may still land before it).
pub(super) fn settled_prefix(checkpoint: u64, events: &[EventEnvelope], now: reventless_spec::Timestamp) -> usize {
    let grace = u64::try_from(GAP_GRACE.as_millis()).unwrap_or(u64::MAX);
    let mut previous = checkpoint;
    for (index, event) in events.iter().enumerate() {
        let gap = event.position != previous + 1;
        if gap && now.0.saturating_sub(event.recorded_at.0) < grace {
            return index;
        }
        previous = event.position;
    }
    events.len()
}

pub(super) struct WorkerSource {
    pub(super) log: LogRef,
    pub(super) checkpoint: String,
    /// The stored checkpoint as this worker last wrote or read it.
    pub(super) known_position: Option<u64>,
    pub(super) progress: watch::Sender<Progress>,
}

/// What a worker does with a batch of events of one of its logs.
#[async_trait::async_trait]
pub(super) trait Follower: Send + Sync {
    /// Applies `events` and commits `advance` with whatever it writes. A
    /// `Conflict` from the commit means another worker got there first.
    async fn apply(&self, events: &[EventEnvelope], advance: Checkpoint) -> Result<(), EngineError>;

    /// Work to do when the logs have nothing new (e.g. retries).
    async fn idle(&self) -> Result<(), EngineError> {
        Ok(())
    }

    /// How often `idle` runs even without new events.
    fn idle_interval(&self) -> Option<Duration> {
        None
    }

    /// Whether it does anything with events of this type. A batch of only
    /// other events (a plugin's log holds every component's events) is
    /// passed in memory without a commit: after a restart it is read again
    /// and passed again, which changes nothing.
    fn consumes(&self, _event_type: &str) -> bool {
        true
    }

    /// The event types it reads (all when `None`): the others are read as
    /// position markers.
    fn consumed(&self) -> Option<&BTreeSet<String>> {
        None
    }
}

/// One task per follower, following all its source logs in turn (one writer
/// per table, so read-modify-write of rows needs no locking).
pub(super) struct Worker {
    pub(super) stores: Stores,
    pub(super) follower: Arc<dyn Follower>,
    pub(super) sources: Vec<WorkerSource>,
    pub(super) shutdown: watch::Receiver<bool>,
    pub(super) kind: FollowerKind,
    /// The component it is (as the plugin's manifest names it).
    pub(super) component: String,
    /// Events per batch (halved when the store refuses a commit as too large).
    pub(super) batch: usize,
    /// The lease it applies under while running in the background (several
    /// processes on one database: one runs it); on-demand workers have none.
    lease: Option<LeaseGuard>,
}

impl Worker {
    pub(super) fn new(
        stores: &Stores,
        sources: Vec<WorkerSource>,
        follower: Arc<dyn Follower>,
        shutdown: watch::Receiver<bool>,
        kind: FollowerKind,
        component: String,
    ) -> Self {
        Self {
            stores: stores.clone(),
            follower,
            sources,
            shutdown,
            kind,
            component,
            batch: PROJECTION_BATCH,
            lease: None,
        }
    }

    /// Runs the worker in a task watched by another: when it ends for any
    /// reason (a follower panicked, the event bus closed, shutdown) its
    /// sources are marked stopped, so [`Runtime::wait_for_projections`]
    /// reports the follower instead of answering `Ok` or waiting in vain.
    pub(super) fn spawn_supervised(self) -> JoinHandle<()> {
        let progress: Vec<watch::Sender<Progress>> = self.sources.iter().map(|s| s.progress.clone()).collect();
        let component = self.component.clone();
        let shutdown = self.shutdown.clone();
        let task = tokio::spawn(self.run());
        tokio::spawn(async move {
            let reason = match task.await {
                // Asked to: a shutdown is not news worth an error line.
                Ok(()) if *shutdown.borrow() => {
                    tracing::debug!(follower = component, "follower stopped at shutdown");
                    "the runtime shut down".to_string()
                }
                ended => {
                    let reason = match ended {
                        Ok(()) => "its task ended".to_string(),
                        Err(error) if error.is_panic() => format!("it panicked: {}", panic_message(error.into_panic())),
                        Err(error) => format!("its task was cancelled: {error}"),
                    };
                    tracing::error!(follower = component, reason, "follower stopped; it applies nothing more");
                    reason
                }
            };
            for sender in progress {
                sender.send_modify(|p| p.stopped = Some(reason.clone()));
            }
        })
    }

    pub(super) fn selected(&self, kinds: &[FollowerKind], components: &[String]) -> bool {
        kinds.contains(&self.kind) && (components.is_empty() || components.contains(&self.component))
    }

    /// Stands by until it holds its lease, then follows its logs while the
    /// lease lasts; stands by again when it is lost (another process runs
    /// the follower meanwhile). Ends on shutdown.
    pub(super) async fn run(mut self) {
        let mut notices = self.stores.bus.subscribe();
        let name = self.lease_name();
        loop {
            let Some(lease) = self.acquire(&name, &mut notices).await else { return };
            tracing::info!(component = self.component, lease = name, "running this follower in this process");
            for source in &mut self.sources {
                // The previous holder may have moved it: read it again.
                source.known_position = None;
            }
            self.lease = Some(lease);
            let lost = self.follow(&mut notices).await;
            self.lease = None;
            if !lost {
                return;
            }
            tracing::warn!(component = self.component, lease = name, "lease lost; another process takes over");
        }
    }

    /// The name of its lease: its checkpoints (unique per follower).
    fn lease_name(&self) -> String {
        let checkpoints: Vec<&str> = self.sources.iter().map(|s| s.checkpoint.as_str()).collect();
        format!("follower:{}", checkpoints.join(","))
    }

    /// The lease, once no other process holds it; `None` on shutdown.
    /// Retried on every commit notice and every [`LEASE_RETRY`]; meanwhile
    /// its progress shows what the holder applied (so waiting for
    /// projections works in every process).
    async fn acquire(
        &mut self,
        name: &str,
        notices: &mut broadcast::Receiver<Arc<crate::store::Published>>,
    ) -> Option<LeaseGuard> {
        let mut recheck = STANDBY_RECHECK;
        loop {
            if *self.shutdown.borrow() {
                return None;
            }
            // A database out of reach must not hold up a shutdown.
            let asked = tokio::select! {
                asked = tokio::time::timeout(LEASE_RETRY * 5, self.stores.leases.try_acquire(name)) => asked,
                _ = self.shutdown.wait_for(|stopped| *stopped) => return None,
            };
            match asked {
                Ok(Ok(Some(lease))) => return Some(lease),
                Ok(Ok(None)) => {}
                Ok(Err(error)) => {
                    tracing::warn!(component = self.component, %error, "cannot ask for the lease; retrying")
                }
                Err(_) => tracing::warn!(component = self.component, "no answer about the lease; retrying"),
            }
            let behind = match self.observe().await {
                Ok(behind) => behind,
                Err(error) => {
                    tracing::warn!(component = self.component, %error, "cannot read the holder's progress");
                    false
                }
            };
            // While the holder has events left to apply, look again soon (its
            // commits send no notice); otherwise on news or the retry timer.
            let wait = if behind { recheck } else { LEASE_RETRY };
            recheck = if behind { (recheck * 2).min(LEASE_RETRY / 2) } else { STANDBY_RECHECK };
            match tokio::time::timeout(wait, self.wait_for_notice(notices)).await {
                Ok(false) => return None,
                // Commits come in bursts under load: one look per burst.
                Ok(true) => tokio::time::sleep(STANDBY_COALESCE).await,
                Err(_) => {}
            }
        }
    }

    /// What the lease holder (another process) has applied, as this worker's
    /// progress: the stored checkpoint, moved past events the follower does
    /// not consume. True when events it consumes remain to be applied.
    async fn observe(&mut self) -> Result<bool, EngineError> {
        let mut behind = false;
        for index in 0..self.sources.len() {
            let stored = self.stores.queries.checkpoint(&self.sources[index].checkpoint).await?;
            let source = &self.sources[index];
            let mut position = source.known_position.unwrap_or(0).max(stored);
            let consumed = self.follower.consumed();
            let mut pending = true;
            for _ in 0..STANDBY_READS {
                let events = read_log(&self.stores, &source.log, position, self.batch, consumed).await?;
                if events.is_empty() {
                    pending = false;
                    break;
                }
                let settled = settled_prefix(position, &events, reventless_spec::Timestamp::now());
                if let Some(first) = events[..settled].iter().find(|e| self.follower.consumes(&e.event_type)) {
                    position = first.position.saturating_sub(1).max(position);
                    break;
                }
                if let Some(last) = events[..settled].last() {
                    position = last.position;
                }
                if settled < events.len() {
                    // A young gap: the holder waits for it too.
                    break;
                }
            }
            behind |= pending;
            let source = &mut self.sources[index];
            source.known_position = Some(position);
            source.progress.send_replace(Progress { position, ..Progress::default() });
        }
        Ok(behind)
    }

    /// Catch up from the checkpoints, then follow commit notices, while the
    /// lease is held. Each batch's effects and checkpoint are committed
    /// together, so a crash never applies an event twice or skips one.
    /// True when the lease was lost, false on shutdown.
    async fn follow(&mut self, notices: &mut broadcast::Receiver<Arc<crate::store::Published>>) -> bool {
        let mut backoff = Duration::from_millis(50);
        loop {
            if *self.shutdown.borrow() {
                return false;
            }
            if !self.holds_lease() {
                return true;
            }
            let mut applied = false;
            let mut failed = false;
            for index in 0..self.sources.len() {
                match self.step(index).await {
                    Ok(batch) => applied |= batch,
                    Err(error) => {
                        let source = &self.sources[index];
                        let component = self.component.as_str();
                        tracing::error!(component, follower = source.checkpoint, %error, "batch failed; retrying");
                        source.progress.send_modify(|p| p.error = Some(error.to_string()));
                        failed = true;
                    }
                }
            }
            if !self.holds_lease() {
                return true;
            }
            if failed {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = self.shutdown.changed() => return false,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
            backoff = Duration::from_millis(50);
            if !applied {
                if let Err(error) = self.follower.idle().await {
                    tracing::error!(component = self.component, %error, "idle work failed; retrying later");
                }
                let Some(lease) = self.lease.take() else { return true };
                let waited = tokio::select! {
                    woken = async {
                        match self.follower.idle_interval() {
                            Some(interval) => {
                                tokio::time::timeout(interval, self.wait_for_notice(notices)).await.unwrap_or(true)
                            }
                            None => self.wait_for_notice(notices).await,
                        }
                    } => Some(woken),
                    () = lease.lost() => None,
                };
                self.lease = Some(lease);
                match waited {
                    Some(true) => {}
                    Some(false) => return false,
                    None => return true,
                }
                // Let commits that arrive together be applied as one batch.
                tokio::time::sleep(PROJECTION_COALESCE).await;
            }
        }
    }

    /// False once a background worker's lease is lost.
    fn holds_lease(&self) -> bool {
        self.lease.as_ref().is_none_or(LeaseGuard::is_held)
    }

    /// Applies one batch from one source; `false` when it had nothing new.
    pub(super) async fn step(&mut self, index: usize) -> Result<bool, EngineError> {
        let queries = self.stores.queries.clone();
        let checkpoint = match self.sources[index].known_position {
            Some(position) => position,
            None => queries.checkpoint(&self.sources[index].checkpoint).await?,
        };
        let source = &mut self.sources[index];
        let events = loop {
            let consumed = self.follower.consumed();
            let mut events = read_log(&self.stores, &source.log, checkpoint, self.batch, consumed).await?;
            let settled = settled_prefix(checkpoint, &events, reventless_spec::Timestamp::now());
            if settled == 0
                && let Some(first) = events.first()
            {
                // A position before `first` is reserved by an append still in flight (or failed).
                let open_for = reventless_spec::Timestamp::now().0.saturating_sub(first.recorded_at.0);
                let left = u64::try_from(GAP_GRACE.as_millis()).unwrap_or(u64::MAX).saturating_sub(open_for);
                tokio::time::sleep(Duration::from_millis(left.clamp(10, 100))).await;
                continue;
            }
            events.truncate(settled);
            break events;
        };
        let Some(last) = events.last().map(|e| e.position) else {
            source.known_position = Some(checkpoint);
            source.progress.send_replace(Progress { position: checkpoint, ..Progress::default() });
            return Ok(false);
        };
        if !events.iter().any(|event| self.follower.consumes(&event.event_type)) {
            source.known_position = Some(last);
            source.progress.send_replace(Progress { position: last, ..Progress::default() });
            return Ok(true);
        }
        if self.lease.as_ref().is_some_and(|lease| !lease.is_held()) {
            // Another process runs it now: leave the batch to it.
            return Ok(false);
        }
        let advance = Checkpoint { name: source.checkpoint.clone(), position: last };
        // Lines logged while applying name the follower and its log.
        let span = tracing::info_span!("follower", component = self.component.as_str(), log = source.log.name.as_str());
        match self.follower.apply(&events, advance).instrument(span).await {
            Ok(()) => source.known_position = Some(last),
            // Another worker (another process) applied this batch first: read the checkpoint again.
            Err(EngineError::Store(StoreError::Conflict(_))) => source.known_position = None,
            Err(EngineError::Store(StoreError::TooLarge(reason))) if self.batch > 1 => {
                self.batch /= 2;
                tracing::info!(follower = source.checkpoint, batch = self.batch, reason, "smaller batches");
                return Ok(true);
            }
            Err(other) => {
                source.known_position = None;
                return Err(other);
            }
        }
        let position = source.known_position.unwrap_or(checkpoint);
        source.progress.send_replace(Progress { position, ..Progress::default() });
        Ok(true)
    }

    /// Waits for a commit that one of the projection's sources has not
    /// applied yet; `false` on shutdown. Notices already queued are drained
    /// together, so a burst of commits wakes the worker once.
    async fn wait_for_notice(&mut self, notices: &mut broadcast::Receiver<Arc<crate::store::Published>>) -> bool {
        loop {
            let first = tokio::select! {
                notice = notices.recv() => notice,
                _ = self.shutdown.changed() => return false,
            };
            let mut news = match first {
                Ok(notice) => self.is_news(&notice),
                Err(broadcast::error::RecvError::Lagged(_)) => true,
                Err(broadcast::error::RecvError::Closed) => return false,
            };
            loop {
                match notices.try_recv() {
                    Ok(notice) => news |= self.is_news(&notice),
                    Err(broadcast::error::TryRecvError::Lagged(_)) => news = true,
                    Err(_) => break,
                }
            }
            if news {
                return true;
            }
        }
    }

    /// True when `notice` reports events a source of this follower has not
    /// applied. An append right after what a source applied, of events the
    /// follower does not consume, moves the source past it unread.
    fn is_news(&mut self, notice: &crate::store::Published) -> bool {
        let follower = &self.follower;
        // A notice without a log: notices may have been missed (a bus that
        // reconnected); everything may have news.
        if notice.log.is_empty() {
            return true;
        }
        let mut news = false;
        for source in self.sources.iter_mut().filter(|s| s.log.name == notice.log) {
            match source.known_position {
                Some(known) if notice.position <= known => {}
                Some(known)
                    if notice.first_position == known + 1
                        && !notice.types.is_empty()
                        && !notice.types.iter().any(|t| follower.consumes(t)) =>
                {
                    source.known_position = Some(notice.position);
                    source.progress.send_replace(Progress { position: notice.position, ..Progress::default() });
                }
                _ => news = true,
            }
        }
        news
    }
}

/// The text a panic was raised with.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => payload.downcast_ref::<&str>().map_or_else(|| "(no message)".to_string(), |t| t.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use reventless_spec::{EventEnvelope, NewEvent, Timestamp};

    use super::settled_prefix;

    fn at(position: u64, recorded_at: u64) -> EventEnvelope {
        EventEnvelope::recorded(
            NewEvent::new("E", vec![], serde_json::json!({})),
            position,
            None,
            Timestamp(recorded_at),
        )
    }

    #[test]
    fn followers_stop_at_young_gaps_and_pass_old_ones() {
        let now = Timestamp(10_000);
        assert_eq!(settled_prefix(0, &[at(1, 9_999), at(2, 9_999)], now), 2, "no gap");
        assert_eq!(settled_prefix(0, &[at(1, 9_999), at(3, 9_999)], now), 1, "a young gap may still fill");
        assert_eq!(settled_prefix(0, &[at(2, 9_999)], now), 0, "the gap can be the first position");
        assert_eq!(
            settled_prefix(0, &[at(1, 1_000), at(3, 1_000), at(4, 9_999)], now),
            3,
            "an old gap is a failed append"
        );
        assert_eq!(settled_prefix(5, &[], now), 0);
    }
}
