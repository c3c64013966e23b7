//! Upgrading stores written before a plugin's aggregates and DCB slices
//! shared one log (schema 1: a log `<Plugin>_<Aggregate>` per aggregate
//! beside the DCB log `<Plugin>`). The backends move the old events into
//! the plugin's log with this one plan: the same order, the same
//! checkpoints, on SQLite and on DynamoDB.

/// The plugin and (for an aggregate's log) the aggregate an old log belonged
/// to. Plugin names are ASCII letters and digits, so the first `_` splits.
pub fn old_log_owner(log: &str) -> (&str, Option<&str>) {
    match log.split_once('_') {
        Some((plugin, aggregate)) => (plugin, Some(aggregate)),
        None => (log, None),
    }
}

/// One old event: its log's index among the merged sources, its position
/// there, and when it was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OldEvent {
    /// Its log's index among the merged sources.
    pub source: usize,
    /// Its position in that log.
    pub position: u64,
    /// When it was recorded (ms since the Unix epoch).
    pub recorded_at: u64,
}

/// The merged order of several old logs (each given in position order): by
/// recording time, ties and clock steps backwards resolved so that each
/// log keeps its own order. The new position of `merged[i]` is `i + 1`.
pub fn merge_order(sources: &[Vec<OldEvent>]) -> Vec<OldEvent> {
    let mut next = vec![0usize; sources.len()];
    let total = sources.iter().map(Vec::len).sum();
    let mut merged = Vec::with_capacity(total);
    while merged.len() < total {
        let earliest = sources
            .iter()
            .enumerate()
            .filter_map(|(index, events)| events.get(next[index]).map(|event| (event.recorded_at, index)))
            .min();
        let Some((_, index)) = earliest else { break };
        merged.push(sources[index][next[index]]);
        next[index] += 1;
    }
    merged
}

/// A follower's checkpoint in the merged log: the longest prefix of
/// `merged` it had applied under its old checkpoints (`applied[source]`,
/// `None` where it did not follow that log). Events after it are applied
/// again, so a follower that was caught up applies nothing twice.
pub fn merged_checkpoint(merged: &[OldEvent], applied: &[Option<u64>]) -> u64 {
    let done = |event: &OldEvent| applied.get(event.source).copied().flatten().is_none_or(|at| event.position <= at);
    merged.iter().take_while(|event| done(event)).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn old(source: usize, position: u64, recorded_at: u64) -> OldEvent {
        OldEvent { source, position, recorded_at }
    }

    #[test]
    fn logs_merge_by_time_and_keep_their_own_order() {
        let dcb = vec![old(0, 1, 10), old(0, 2, 30)];
        // The clock stepped back inside this log: its order still holds.
        let member = vec![old(1, 1, 20), old(1, 2, 5), old(1, 3, 40)];
        let merged = merge_order(&[dcb, member]);
        let places: Vec<(usize, u64)> = merged.iter().map(|e| (e.source, e.position)).collect();
        assert_eq!(places, vec![(0, 1), (1, 1), (1, 2), (0, 2), (1, 3)]);
    }

    #[test]
    fn checkpoints_move_to_the_applied_prefix() {
        let merged = merge_order(&[vec![old(0, 1, 1), old(0, 2, 3)], vec![old(1, 1, 2), old(1, 2, 4)]]);
        assert_eq!(merged_checkpoint(&merged, &[Some(2), Some(2)]), 4, "caught up everywhere");
        assert_eq!(merged_checkpoint(&merged, &[Some(2), Some(1)]), 3, "behind on the second log");
        assert_eq!(merged_checkpoint(&merged, &[Some(0), Some(2)]), 0);
        assert_eq!(merged_checkpoint(&merged, &[Some(2), None]), 4, "a log it never followed does not hold it back");
    }

    #[test]
    fn old_log_names_split_at_the_first_underscore() {
        assert_eq!(old_log_owner("Library"), ("Library", None));
        assert_eq!(old_log_owner("Library_Member"), ("Library", Some("Member")));
    }
}
