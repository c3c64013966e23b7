//! The online shop, reventless's reference application.
//!
//! - [`catalog`]: categories and products as DCB slices, with Products and
//!   Categories views.
//! - [`ordering`]: customers, synced products, orders, automations.
//! - [`reviews`]: product reviews, a small plugin deployed on its own (not
//!   among [`plugins`]: the deploy tests add it to a running stage).
//! - [`seed`]: the data `online-shop seed [--sample]` loads.
pub mod catalog;
pub mod ordering;
pub mod reviews;
pub mod seed;

/// Every plugin of the shop.
pub fn plugins() -> Vec<reventless::Plugin> {
    vec![catalog::plugin(), ordering::plugin()]
}
