//! The Library plugin: members join and leave, books are lent and returned.
//!
//! - [`Member`]: an aggregate, one stream per member
//!   (`Library_Member_Join(id, name)`, `Library_Member_Leave(id)`).
//! - [`LendBook`], [`ReturnBook`]: DCB slices. Lending decides over the
//!   member's events and the book's loans at once (member active, book not
//!   on loan, at most [`LOAN_LIMIT`] books per member), without an
//!   aggregate spanning members and books.
//! - [`Books`]: a read model (`Library_Books`, `Library_Book(id)`).
//! - [`SettleLoansOfLeavers`]: an automation returning the books a member
//!   still holds when they leave (its to-do list: `Library_SettleLoansOfLeaversTodos`).
mod books;
mod events;
mod leavers;
mod loans;
mod members;

pub use books::{BookRow, Books};
pub use events::{LibraryError, LibraryEvent};
pub use leavers::{Leaver, SettleLoansOfLeavers};
pub use loans::{LOAN_LIMIT, LendBook, LoanState, ReturnBook, SettleLoans};
pub use members::{Member, MemberCommand, Membership};

use reventless::Plugin;

pub const PLUGIN: &str = "Library";

/// The Library plugin, as the app (and each Lambda bootstrap) hosts it.
pub fn plugin() -> Plugin {
    Plugin::new(PLUGIN)
        .version(env!("CARGO_PKG_VERSION"))
        .aggregate::<Member>()
        .state_change_slice::<LendBook>()
        .state_change_slice::<ReturnBook>()
        .state_change_slice::<SettleLoans>()
        .read_model::<Books>()
        .automation::<SettleLoansOfLeavers>()
}
