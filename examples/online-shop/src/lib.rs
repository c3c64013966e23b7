//! The online shop, reventless's reference application.
//!
//! - [`catalog`]: categories and products as DCB slices, with Products and
//!   Categories views.
//! - [`ordering`]: customers, synced products, orders, automations.
//! - [`seed`]: the data `online-shop seed [--sample]` loads.
pub mod catalog;
pub mod ordering;
pub mod seed;

/// Every plugin of the shop.
pub fn plugins() -> Vec<reventless::Plugin> {
    vec![catalog::plugin(), ordering::plugin()]
}
