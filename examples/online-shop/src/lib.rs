//! The online shop, reventless's reference application.
//!
//! - [`catalog`]: categories and products as DCB slices, with Products and
//!   Categories views.
pub mod catalog;
