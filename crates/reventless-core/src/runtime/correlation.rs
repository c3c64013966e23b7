//! The correlation id of the request being served: a host (an HTTP handler,
//! a Lambda invocation) runs its work inside [`with_correlation`], and every
//! command executed there without a correlation of its own takes it. The id
//! then travels in the data (command messages, event metadata, todo rows,
//! published messages), never through this ambient value alone.
use std::future::Future;

/// The header a caller (or the gateway) names a request's correlation id with.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// Longest correlation id accepted from outside.
const MAX_LEN: usize = 128;

tokio::task_local! {
    static CORRELATION: String;
}

/// Runs `work` with `id` as the correlation of the commands it executes.
pub async fn with_correlation<F: Future>(id: String, work: F) -> F::Output {
    CORRELATION.scope(id, work).await
}

/// The correlation id of the work in progress, when a host set one.
pub fn current_correlation() -> Option<String> {
    CORRELATION.try_with(Clone::clone).ok()
}

/// A correlation id supplied from outside (a header), when it is one: up to
/// 128 characters of letters, digits and `-_.:`. Anything else is ignored
/// (the request gets a fresh id), so no caller can put text of its choosing
/// into log lines.
pub fn accepted_correlation(supplied: &str) -> Option<String> {
    let supplied = supplied.trim();
    let valid = !supplied.is_empty()
        && supplied.len() <= MAX_LEN
        && supplied.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    valid.then(|| supplied.to_string())
}

/// The correlation id of a request with `supplied` (a header's value): the
/// caller's when acceptable, else a new one.
pub fn request_correlation(supplied: Option<&str>) -> String {
    supplied.and_then(accepted_correlation).unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_scope_sets_the_correlation_and_outside_input_is_checked() {
        assert_eq!(current_correlation(), None);
        let seen = with_correlation("req-1".into(), async { current_correlation() }).await;
        assert_eq!(seen.as_deref(), Some("req-1"));
        assert_eq!(accepted_correlation(" abc-1:2.3_4 ").as_deref(), Some("abc-1:2.3_4"));
        for bad in ["", "with space", "new\nline", "{\"json\"}", &"x".repeat(129)] {
            assert_eq!(accepted_correlation(bad), None, "{bad:?}");
        }
        assert_eq!(request_correlation(Some("mine")), "mine");
        let fresh = request_correlation(Some("not valid!"));
        assert!(uuid::Uuid::parse_str(&fresh).is_ok(), "{fresh}");
    }
}
