//! The deploy half: project configuration, the plan (pure), reading what
//! exists, the diff, and applying it with idempotent `ensure_*` calls.
pub mod apply;
pub mod config;
pub mod plan;
