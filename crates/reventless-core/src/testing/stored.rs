//! Events as an older build stored them, for Given/When/Then tests of
//! upcasters: `given([stored_event("BookAdded", 1, json!({..}))])`.
use reventless_spec::{Event, decode_stored};

/// The event of type `name` that was stored at `version` with `data`, read
/// as today's `E` through its upcasters, exactly as the platforms read it.
///
/// # Panics
/// When the data cannot be read (the test shows why): a version newer than
/// `E` declares, or upcast data that does not fit `E`.
pub fn stored_event<E: Event>(name: &str, version: u32, data: serde_json::Value) -> E {
    decode_stored::<E>(name, version, data).unwrap_or_else(|e| panic!("stored event `{name}` v{version}: {e}"))
}
