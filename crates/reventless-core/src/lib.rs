//! The platform-independent engine of reventless.
//!
//! - [`store`]: the adapter traits every platform implements.
//! - [`engine`]: aggregate command handling, the DCB decision loop, projections.
//! - [`plugin`]: the `Plugin` builder and its manifest.
//! - [`runtime`]: hosts plugins on a set of stores (dispatch, projection workers).
//! - [`task`]: file tasks (a CSV or JSON-lines file becomes commands, resumable).
//! - `testing` (feature `testing`): Given/When/Then harness and the store contract suite.
#![warn(missing_docs)]
pub mod engine;
pub mod hooks;
/// Command requests, callers, outcomes and engine errors.
pub mod outcome;
pub mod outcomes;
pub mod plugin;
pub mod runtime;
pub mod store;
pub mod task;
// Test support reports failures by panicking, like the tests that use it.
#[cfg(feature = "testing")]
#[allow(clippy::unwrap_used)]
pub mod testing;

pub use outcome::{Caller, CommandOutcome, CommandRequest, EngineError, RejectionCause, authorize};
pub use outcomes::{OutcomeRecord, OutcomeStatus, outcomes_table};
pub use plugin::{Manifest, Plugin, PluginError, TopicLayout};
pub use runtime::{
    FollowerKind, GAP_GRACE, HEARTBEAT_INTERVAL, InboundOutcome, PLATFORM_PLUGINS, PublishedMessage, RowChange,
    Runtime, RuntimeError, RuntimeMode, RuntimeOptions, inbox_topic,
};
pub use store::{StoreError, Stores};
