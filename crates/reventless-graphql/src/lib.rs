//! The GraphQL API of reventless: generated from the hosted plugins'
//! components (naming rules in the project's design, §5), executed by the
//! engine. The local server and the AWS handler serve the same schema.
//!
//! - Mutations: `<Plugin>_<Aggregate>_<Variant>(id: ID!, …)` per aggregate
//!   command, `<Plugin>_<Variant>(…)` per DCB command; both return
//!   `CommandOutcome!`.
//! - Queries: `<Plugin>_<Singular>(id: ID!)` and
//!   `<Plugin>_<Plural>(filter, orderBy, first, after)` (a Relay connection).
//! - Subscriptions: `<Plugin>_on<Singular>Changed(id: ID!)`.
//! - Enum values (domain enums, `orderBy` fields) are SCREAMING_SNAKE_CASE,
//!   mapped to and from the serde values; a unit-variant command's input is
//!   serde's unit form (`null`).
mod convert;
mod documents;
pub mod mcp;
mod schema;
mod shape;

pub use schema::{ApiSchema, BuildError, PlatformRows, build_schema, build_schema_of, execute, platform_schema};
pub use shape::{ShapeError, camel_case};
