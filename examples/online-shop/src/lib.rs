//! The online shop, reventless's reference application.
//!
//! - [`catalog`]: categories and products as DCB slices, with Products and
//!   Categories views.
//! - [`ordering`]: customers, synced products, orders, automations.
//! - [`reviews`]: product reviews, a small plugin deployed on its own (not
//!   among [`plugins`]: the deploy tests add it to a running stage).
//! - `seed`: the data `online-shop seed [--sample]` loads (feature
//!   `platform`, on by default; the Lambda crate leaves it out, so its
//!   binaries link neither SQLite nor the local server).
pub mod catalog;
pub mod ordering;
pub mod reviews;
#[cfg(feature = "platform")]
pub mod seed;

/// Every plugin of the shop.
pub fn plugins() -> Vec<reventless::Plugin> {
    vec![catalog::plugin(), ordering::plugin()]
}
