//! The books' read model: who holds each book, and how often it was lent.
use reventless::prelude::*;
use serde::{Deserialize, Serialize};

use crate::events::LibraryEvent;

/// A row of `Library_Books` / `Library_Book(id)`; the id is the book's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookRow {
    pub id: String,
    /// The member holding it; `null` when it is on the shelf.
    pub borrower: Option<String>,
    pub times_lent: i64,
}

pub struct Books;

impl ReadModel for Books {
    const NAME: &'static str = "Book";
    const PLURAL: &'static str = "Books";
    const CONSUMES: &'static [&'static str] = &["BookLent", "BookReturned"];
    type Event = LibraryEvent;
    type Row = BookRow;

    fn project(event: &LibraryEvent, _: &EventEnvelope) -> Vec<Action<BookRow>> {
        match event {
            LibraryEvent::BookLent { book_id, member_id } => {
                let shelved = BookRow { id: book_id.clone(), borrower: None, times_lent: 0 };
                let member_id = member_id.clone();
                vec![Action::update_with_default(book_id.clone(), shelved, move |row: &mut BookRow| {
                    row.borrower = Some(member_id);
                    row.times_lent += 1;
                })]
            }
            LibraryEvent::BookReturned { book_id, .. } => {
                vec![Action::update(book_id.clone(), |row: &mut BookRow| row.borrower = None)]
            }
            _ => vec![],
        }
    }
}
