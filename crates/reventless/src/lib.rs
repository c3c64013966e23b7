//! reventless: event-sourced, plugin-composed applications in plain Rust.
//!
//! Write a plugin's domain with the traits of [`spec`] (aggregates, DCB
//! slices, read models), register them on a [`Plugin`], and run it on the
//! local platform ([`local`]) or, later, on AWS.
//!
//! Most code needs only the prelude: `use reventless::prelude::*;`
#![warn(missing_docs)]
pub use reventless_core as core;
pub use reventless_graphql as graphql;
#[cfg(feature = "platform")]
pub use reventless_local as local;
pub use reventless_spec as spec;

pub use reventless_core::{
    Caller, CommandOutcome, CommandRequest, EngineError, Manifest, Plugin, PluginError, RejectionCause, Runtime,
    RuntimeError,
};

// The embedded platform's command line (feature `platform`, on by default).
#[cfg(feature = "platform")]
mod app;
#[cfg(feature = "platform")]
mod dev;
#[cfg(feature = "platform")]
mod replay;
#[cfg(feature = "platform")]
mod script;
#[cfg(feature = "platform")]
mod seed;
#[cfg(feature = "platform")]
mod task;
#[cfg(feature = "platform")]
pub use app::{App, AppError, StorageArgs};
/// The allocator an app's binary should use (`#[global_allocator] static
/// ALLOCATOR: reventless::Allocator = reventless::Allocator;`): mimalloc.
/// glibc's allocator spent a fifth of the server's time on small GraphQL
/// requests; with this one the list query ran 1.3x faster and mutations
/// 1.1x (docs/benchmarks.md).
#[cfg(feature = "platform")]
pub use mimalloc::MiMalloc as Allocator;
#[cfg(feature = "platform")]
pub use seed::{PhaseReport, Seed, SeedSize};

/// Everything a plugin author writes against.
pub mod prelude {
    pub use reventless_spec::{
        Action, Aggregate, AppendCondition, AutomationSlice, Capabilities, Command, Counter, Dispatch, Event,
        EventEnvelope, Extension, ExtensionPoint, ExtensionPointCommands, HttpMethod, HttpRoute,
        InboundTranslationSlice, Message, OutboundTranslationSlice, Owner, Query, QueryItem, ReadModel, Schedule,
        ScheduleContext, StateChangeSlice, StateViewSlice, Tag, TagValue, TaskFormat, TaskSlice, WebhookSignature,
    };

    /// `#[derive(JsonSchema)]`, which every command needs; `schemars` is
    /// here so the derive works without a direct dependency on it.
    pub use reventless_spec::schemars::{self, JsonSchema};

    pub use crate::{CommandOutcome, CommandRequest, Plugin};
}

/// Test support: Given/When/Then for components (feature `testing`).
#[cfg(feature = "testing")]
pub mod testing {
    pub use reventless_core::testing::{AggregateTest, ProjectionTest, SliceTest, Then, stored_event};
}

// The project's markdown, compiled and run as doc tests (`cargo test --doc`):
// every fenced Rust block (an untagged fence counts as Rust) must build. The
// README's tests use `reventless::testing`, hence its feature (CI runs
// `cargo test --workspace --all-features`).
#[cfg(all(doctest, feature = "testing"))]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/architecture.md")]
pub struct ArchitectureDoctests;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/aws.md")]
pub struct AwsDoctests;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/benchmarks.md")]
pub struct BenchmarksDoctests;
