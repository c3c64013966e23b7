//! Row changes across processes: a projection runs in one process (its
//! lease holder), but subscriptions are served by every process. The holder
//! tells its own subscribers at once and the other processes through the
//! event bus, as notices on a log name no plugin has (`rows:<table>`), the
//! row ids as their "types" and the sending runtime as their position.
use super::*;
use crate::store::Published;

const PREFIX: &str = "rows:";
/// Bytes of ids per notice (a cross-process bus carries ~8000 at most).
const IDS_PER_NOTICE: usize = 6000;

/// The notices telling other runtimes that `ids` of `table` changed.
pub(super) fn row_notices(origin: u64, table: &str, ids: &[String]) -> Vec<Published> {
    let mut notices = Vec::new();
    let mut chunk: Vec<String> = Vec::new();
    let mut bytes = 0;
    for id in ids {
        let size = serde_json::to_string(id).map_or(id.len(), |quoted| quoted.len()) + 1;
        if bytes + size > IDS_PER_NOTICE && !chunk.is_empty() {
            notices.push(notice(origin, table, std::mem::take(&mut chunk)));
            bytes = 0;
        }
        chunk.push(id.clone());
        bytes += size;
    }
    if !chunk.is_empty() {
        notices.push(notice(origin, table, chunk));
    }
    notices
}

fn notice(origin: u64, table: &str, ids: Vec<String>) -> Published {
    Published { log: format!("{PREFIX}{table}"), position: origin, first_position: 0, types: ids }
}

/// The row changes a notice from another runtime reports.
pub(super) fn changes_of(notice: &Published, origin: u64) -> Vec<RowChange> {
    match notice.log.strip_prefix(PREFIX) {
        Some(table) if notice.position != origin => {
            notice.types.iter().map(|id| RowChange { table: table.to_string(), id: id.clone() }).collect()
        }
        _ => Vec::new(),
    }
}

/// Hands row changes other runtimes report to this runtime's subscribers,
/// until shutdown.
pub(super) async fn forward_row_changes(
    mut notices: broadcast::Receiver<Arc<Published>>,
    row_changes: broadcast::Sender<RowChange>,
    origin: u64,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let notice = tokio::select! {
            notice = notices.recv() => notice,
            _ = shutdown.wait_for(|stopped| *stopped) => return,
        };
        match notice {
            Ok(notice) => {
                if row_changes.receiver_count() == 0 {
                    continue;
                }
                for change in changes_of(&notice, origin) {
                    let _ = row_changes.send(change);
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_notices_split_long_id_lists_and_are_ignored_by_their_sender() {
        let ids: Vec<String> = (0..2000).map(|i| format!("order-{i:08}")).collect();
        let notices = row_notices(7, "Shop_Orders", &ids);
        assert!(notices.len() > 1, "{} notices", notices.len());
        let mut heard = Vec::new();
        for notice in &notices {
            assert!(serde_json::to_string(&notice.types).map(|t| t.len()).unwrap_or(usize::MAX) < 7000);
            assert!(changes_of(notice, 7).is_empty(), "the sender tells its own subscribers directly");
            heard.extend(changes_of(notice, 8).into_iter().map(|change| {
                assert_eq!(change.table, "Shop_Orders");
                change.id
            }));
        }
        assert_eq!(heard, ids);
        let events = Published { log: "Shop".into(), position: 3, first_position: 3, types: vec!["A".into()] };
        assert!(changes_of(&events, 8).is_empty(), "a commit notice is no row change");
    }
}
