//! The store contract suite on the in-memory backend.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
reventless_core::store_contract_tests!(reventless_local::memory_stores(), gapless);
