//! Test support (feature `testing`): the Given/When/Then harness for user
//! components and the store contract suite for adapter implementations.
pub mod contract;
mod gwt;
mod stored;

pub use gwt::{AggregateTest, ProjectionTest, SliceTest, Then};
pub use stored::stored_event;
