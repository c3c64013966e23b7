//! Everything that happens in the library: the plugin's one event log.
use reventless::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
pub enum LibraryEvent {
    /// Appended by the [`crate::Member`] aggregate, so tagged `member:<id>`.
    MemberJoined {
        name: String,
    },
    MemberLeft,
    BookLent {
        #[tag]
        book_id: String,
        #[tag]
        member_id: String,
    },
    BookReturned {
        #[tag]
        book_id: String,
        #[tag]
        member_id: String,
    },
    /// Every book a member who left still held was returned.
    LoansSettled {
        #[tag]
        member_id: String,
    },
}

/// Why a command is refused: the variant name is the GraphQL `errorCode`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum LibraryError {
    NameMissing,
    MemberAlreadyJoined,
    MemberNotFound,
    MemberHasLeft,
    BookOnLoan,
    BookNotOnLoan,
    LoanLimitReached,
}
