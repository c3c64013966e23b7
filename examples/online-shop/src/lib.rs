//! The online shop, reventless's reference application.
//!
//! - [`catalog`]: categories and products as DCB slices, with Products and
//!   Categories views.
pub mod catalog;
pub mod ordering;

/// Every plugin of the shop.
pub fn plugins() -> Vec<reventless::Plugin> {
    vec![catalog::plugin(), ordering::plugin()]
}
