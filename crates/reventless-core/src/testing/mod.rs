//! Test support (feature `testing`): the Given/When/Then harness for user
//! components, the store contract suite for adapter implementations and the
//! schedule contract (a schedule fires each time once across processes).
pub mod contract;
mod gwt;
pub mod schedules;
mod stored;

pub use gwt::{AggregateTest, ProjectionTest, SliceTest, Then};
pub use stored::stored_event;
