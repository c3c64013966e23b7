//! Loans: DCB slices. Each decides over exactly the events its rule needs
//! (a member's, a book's), and the platform appends its events only if no
//! event matching that query was appended meanwhile.
use std::collections::BTreeMap;

use reventless::prelude::*;
use serde::{Deserialize, Serialize};

use crate::events::{LibraryError, LibraryEvent};
use crate::members::{Membership, evolve_membership};

/// How many books a member may hold at once.
pub const LOAN_LIMIT: usize = 3;

const MEMBER_EVENTS: &[&str] = &["MemberJoined", "MemberLeft"];
const LOAN_EVENTS: &[&str] = &["BookLent", "BookReturned"];

/// What the loan slices know after folding the events of their query.
#[derive(Clone, Debug, Default)]
pub struct LoanState {
    pub membership: Membership,
    /// Book → borrower, for the books on loan among the events read.
    pub lent: BTreeMap<String, String>,
    /// The member's loans were settled after they left.
    pub settled: bool,
}

impl LoanState {
    fn held_by(&self, member_id: &str) -> impl Iterator<Item = &String> {
        self.lent.iter().filter(move |(_, borrower)| *borrower == member_id).map(|(book, _)| book)
    }
}

fn evolve_loans(mut state: LoanState, event: &LibraryEvent) -> LoanState {
    match event {
        LibraryEvent::BookLent { book_id, member_id } => {
            state.lent.insert(book_id.clone(), member_id.clone());
        }
        LibraryEvent::BookReturned { book_id, .. } => {
            state.lent.remove(book_id);
        }
        LibraryEvent::LoansSettled { .. } => state.settled = true,
        other => state.membership = evolve_membership(state.membership, other),
    }
    state
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::new(key, value).expect("a literal tag key without ':'")
}

/// `Library_LendBook(bookId, memberId)`: an active member borrows a book
/// that is not on loan, holding at most [`LOAN_LIMIT`] books.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema, Command)]
#[serde(rename_all = "camelCase")]
pub struct LendBook {
    #[tag]
    pub book_id: String,
    #[tag]
    pub member_id: String,
}

impl StateChangeSlice for LendBook {
    const NAME: &'static str = "LendBook";
    const CONSUMES: &'static [&'static str] = &["MemberJoined", "MemberLeft", "BookLent", "BookReturned"];
    const PRODUCES: &'static [&'static str] = &["BookLent"];
    type Command = Self;
    type Event = LibraryEvent;
    type State = LoanState;
    type Error = LibraryError;

    /// The member's stream, the book's loans and the member's loans (the
    /// default query would want events tagged with both the book and the member).
    fn query(c: &Self) -> Query {
        let item = |types: &[&str], tag: Tag| QueryItem::new().types(types.iter().copied()).tags([tag]);
        Query::none()
            .item(item(MEMBER_EVENTS, tag("member", &c.member_id)))
            .item(item(LOAN_EVENTS, tag("book", &c.book_id)))
            .item(item(LOAN_EVENTS, tag("member", &c.member_id)))
    }

    fn evolve(state: LoanState, event: &LibraryEvent) -> LoanState {
        evolve_loans(state, event)
    }

    fn decide(state: &LoanState, c: &Self) -> Result<Vec<LibraryEvent>, LibraryError> {
        match state.membership {
            Membership::Unknown => return Err(LibraryError::MemberNotFound),
            Membership::Left => return Err(LibraryError::MemberHasLeft),
            Membership::Active => {}
        }
        if state.lent.contains_key(&c.book_id) {
            return Err(LibraryError::BookOnLoan);
        }
        if state.held_by(&c.member_id).count() >= LOAN_LIMIT {
            return Err(LibraryError::LoanLimitReached);
        }
        Ok(vec![LibraryEvent::BookLent { book_id: c.book_id.clone(), member_id: c.member_id.clone() }])
    }
}

/// `Library_ReturnBook(bookId)`: a book on loan comes back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema, Command)]
#[serde(rename_all = "camelCase")]
pub struct ReturnBook {
    #[tag]
    pub book_id: String,
}

impl StateChangeSlice for ReturnBook {
    const NAME: &'static str = "ReturnBook";
    const CONSUMES: &'static [&'static str] = LOAN_EVENTS;
    const PRODUCES: &'static [&'static str] = &["BookReturned"];
    type Command = Self;
    type Event = LibraryEvent;
    type State = LoanState;
    type Error = LibraryError;

    fn evolve(state: LoanState, event: &LibraryEvent) -> LoanState {
        evolve_loans(state, event)
    }

    fn decide(state: &LoanState, c: &Self) -> Result<Vec<LibraryEvent>, LibraryError> {
        match state.lent.get(&c.book_id) {
            None => Err(LibraryError::BookNotOnLoan),
            Some(borrower) => {
                Ok(vec![LibraryEvent::BookReturned { book_id: c.book_id.clone(), member_id: borrower.clone() }])
            }
        }
    }
}

/// Returns every book a member still holds, then records that their loans
/// are settled (once). Sent by [`crate::SettleLoansOfLeavers`], not in the API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema, Command)]
#[serde(rename_all = "camelCase")]
pub struct SettleLoans {
    #[tag]
    pub member_id: String,
}

impl StateChangeSlice for SettleLoans {
    const NAME: &'static str = "SettleLoans";
    const API: bool = false;
    const CONSUMES: &'static [&'static str] = &["BookLent", "BookReturned", "LoansSettled"];
    const PRODUCES: &'static [&'static str] = &["BookReturned", "LoansSettled"];
    type Command = Self;
    type Event = LibraryEvent;
    type State = LoanState;
    type Error = LibraryError;

    fn evolve(state: LoanState, event: &LibraryEvent) -> LoanState {
        evolve_loans(state, event)
    }

    fn decide(state: &LoanState, c: &Self) -> Result<Vec<LibraryEvent>, LibraryError> {
        if state.settled {
            return Ok(vec![]);
        }
        let member_id = &c.member_id;
        let mut events: Vec<LibraryEvent> = state
            .held_by(member_id)
            .map(|book_id| LibraryEvent::BookReturned { book_id: book_id.clone(), member_id: member_id.clone() })
            .collect();
        events.push(LibraryEvent::LoansSettled { member_id: member_id.clone() });
        Ok(events)
    }
}
