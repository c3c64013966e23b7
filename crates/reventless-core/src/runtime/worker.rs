//! The task that follows a follower's logs: reads batches after its
//! checkpoints, hands them to the follower, and passes young gaps only late.
use super::*;

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
        Self { stores: stores.clone(), follower, sources, shutdown, kind, component, batch: PROJECTION_BATCH }
    }

    /// Runs the worker in a task watched by another: when it ends for any
    /// reason (a follower panicked, the event bus closed, shutdown) its
    /// sources are marked stopped, so [`Runtime::wait_for_projections`]
    /// reports the follower instead of answering `Ok` or waiting in vain.
    pub(super) fn spawn_supervised(self) -> JoinHandle<()> {
        let progress: Vec<watch::Sender<Progress>> = self.sources.iter().map(|s| s.progress.clone()).collect();
        let component = self.component.clone();
        let task = tokio::spawn(self.run());
        tokio::spawn(async move {
            let reason = match task.await {
                Ok(()) => "its task ended".to_string(),
                Err(error) if error.is_panic() => format!("it panicked: {}", panic_message(error.into_panic())),
                Err(error) => format!("its task was cancelled: {error}"),
            };
            tracing::error!(follower = component, reason, "follower stopped; it applies nothing more");
            for sender in progress {
                sender.send_modify(|p| p.stopped = Some(reason.clone()));
            }
        })
    }

    pub(super) fn selected(&self, kinds: &[FollowerKind], components: &[String]) -> bool {
        kinds.contains(&self.kind) && (components.is_empty() || components.contains(&self.component))
    }

    /// Catch up from the checkpoints, then follow commit notices. Each batch's
    /// effects and checkpoint are committed together, so a crash never
    /// applies an event twice or skips one.
    pub(super) async fn run(mut self) {
        let mut notices = self.stores.bus.subscribe();
        let mut backoff = Duration::from_millis(50);
        loop {
            if *self.shutdown.borrow() {
                return;
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
            if failed {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = self.shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
            backoff = Duration::from_millis(50);
            if !applied {
                if let Err(error) = self.follower.idle().await {
                    tracing::error!(component = self.component, %error, "idle work failed; retrying later");
                }
                let woken = match self.follower.idle_interval() {
                    Some(interval) => {
                        tokio::time::timeout(interval, self.wait_for_notice(&mut notices)).await.unwrap_or(true)
                    }
                    None => self.wait_for_notice(&mut notices).await,
                };
                if !woken {
                    return;
                }
                // Let commits that arrive together be applied as one batch.
                tokio::time::sleep(PROJECTION_COALESCE).await;
            }
        }
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
