//! Parsed GraphQL documents by query text. Clients send the same few
//! documents again and again (their variables change, the text does not),
//! and parsing was the largest single cost of a small query in the server's
//! profile (docs/benchmarks.md). A text is parsed and kept once it has been
//! seen twice, so a stream of one-off texts (values written into the query)
//! costs a hash per request and fills nothing.
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use async_graphql::Request;
use async_graphql::parser::types::ExecutableDocument;

/// Documents kept at most; a full cache starts over (the texts in use come back within two requests).
const CAPACITY: usize = 256;
/// Texts remembered as seen once, at most.
const SEEN_CAPACITY: usize = 4096;
/// Longer texts are parsed every time (they are rare, and would make the cache large).
const MAX_QUERY_BYTES: usize = 16 * 1024;

#[derive(Default)]
pub(crate) struct Documents {
    hasher: RandomState,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    parsed: HashMap<String, ExecutableDocument>,
    /// Hashes of texts seen once (a collision only makes a text cached one request early).
    seen: HashSet<u64>,
}

impl Documents {
    /// Gives `request` its parsed document when the text is known, and
    /// parses and keeps it when seen for the second time. A text that does
    /// not parse is left to the executor, which reports the error.
    pub(crate) fn prepare(&self, request: &mut Request) {
        if request.query.len() > MAX_QUERY_BYTES {
            return;
        }
        let hash = self.hasher.hash_one(request.query.as_str());
        {
            let Ok(mut state) = self.state.lock() else { return };
            if let Some(document) = state.parsed.get(&request.query) {
                request.set_parsed_query(document.clone());
                return;
            }
            if state.seen.len() >= SEEN_CAPACITY {
                state.seen.clear();
            }
            if state.seen.insert(hash) {
                return;
            }
        }
        let Ok(document) = async_graphql::parser::parse_query(&request.query) else { return };
        if let Ok(mut state) = self.state.lock() {
            if state.parsed.len() >= CAPACITY {
                state.parsed.clear();
            }
            state.seen.remove(&hash);
            state.parsed.insert(request.query.clone(), document.clone());
        }
        request.set_parsed_query(document);
    }

    #[cfg(test)]
    fn cached(&self, query: &str) -> bool {
        self.state.lock().is_ok_and(|state| state.parsed.contains_key(query))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_is_kept_from_its_second_request_and_a_one_off_text_is_not() {
        let documents = Documents::default();
        let query = "{ a }";
        documents.prepare(&mut Request::new(query));
        assert!(!documents.cached(query), "seen once: not parsed ahead");
        let mut second = Request::new(query);
        documents.prepare(&mut second);
        assert!(documents.cached(query));
        assert!(second.parsed_query().is_ok());
        documents.prepare(&mut Request::new("{ b }"));
        assert!(!documents.cached("{ b }"));
    }

    #[test]
    fn a_text_that_does_not_parse_is_left_to_the_executor() {
        let documents = Documents::default();
        for _ in 0..3 {
            documents.prepare(&mut Request::new("{ a"));
        }
        assert!(!documents.cached("{ a"));
    }

    #[test]
    fn the_cache_stays_bounded() {
        let documents = Documents::default();
        for n in 0..(CAPACITY + 10) {
            let query = format!("{{ f{n} }}");
            documents.prepare(&mut Request::new(query.clone()));
            documents.prepare(&mut Request::new(query));
        }
        let kept = documents.state.lock().map(|state| state.parsed.len()).unwrap_or(usize::MAX);
        assert!(kept <= CAPACITY, "{kept} documents kept");
        assert!(documents.cached(&format!("{{ f{} }}", CAPACITY + 9)), "the newest text is kept");
    }
}
