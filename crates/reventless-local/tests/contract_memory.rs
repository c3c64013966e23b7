//! The store contract suite on the in-memory backend.
reventless_core::store_contract_tests!(reventless_local::memory_stores(), gapless);
