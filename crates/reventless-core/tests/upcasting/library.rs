//! A library whose `BookAdded` changed shape twice, shared by the upcasting
//! tests of every platform (included by path from reventless-local and
//! reventless-aws, so each platform reads the same history the same way):
//! v1 stored `{"book_id", "name"}`, v2 renamed `name` to `title`, v3 added
//! `pages`. `BookLent` never changed (version 1).
use reventless_spec::schemars::JsonSchema;
use reventless_spec::{Action, Aggregate, Command, Event, EventEnvelope, ReadModel, StateChangeSlice};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub fn book_added_v1_to_v2(mut data: Value) -> Value {
    if let Some(fields) = data.as_object_mut()
        && let Some(name) = fields.remove("name")
    {
        fields.insert("title".into(), name);
    }
    data
}

pub fn book_added_v2_to_v3(mut data: Value) -> Value {
    if let Some(fields) = data.as_object_mut() {
        fields.entry("pages").or_insert(json!(0));
    }
    data
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
pub enum BookEvent {
    #[event(version = 3, upcasters = [book_added_v1_to_v2, book_added_v2_to_v3])]
    BookAdded {
        #[tag]
        book_id: String,
        title: String,
        pages: u32,
    },
    BookLent {
        #[tag]
        book_id: String,
        /// Copied from the book's state: shows what the decision read.
        title: String,
        member: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema, Command)]
#[schemars(crate = "reventless_spec::schemars")]
pub enum BookCommand {
    Add { title: String, pages: u32 },
}

#[derive(Debug, PartialEq, Serialize)]
pub enum LibraryError {
    AlreadyAdded,
    BookNotFound,
    AlreadyLent,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct BookState {
    pub title: Option<String>,
    pub lent: bool,
}

pub struct Book;

impl Aggregate for Book {
    const NAME: &'static str = "Book";
    type Command = BookCommand;
    type Event = BookEvent;
    type State = BookState;
    type Error = LibraryError;

    fn decide(id: &str, state: &BookState, command: &BookCommand) -> Result<Vec<BookEvent>, LibraryError> {
        let BookCommand::Add { title, pages } = command;
        if state.title.is_some() {
            return Err(LibraryError::AlreadyAdded);
        }
        Ok(vec![BookEvent::BookAdded { book_id: id.to_string(), title: title.clone(), pages: *pages }])
    }

    fn evolve(state: BookState, event: &BookEvent) -> BookState {
        evolve_book(state, event)
    }
}

fn evolve_book(mut state: BookState, event: &BookEvent) -> BookState {
    match event {
        BookEvent::BookAdded { title, .. } => state.title = Some(title.clone()),
        BookEvent::BookLent { .. } => state.lent = true,
    }
    state
}

/// A DCB decision over `book:<id>` that reads the book's title.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema, Command)]
#[schemars(crate = "reventless_spec::schemars")]
#[serde(rename_all = "camelCase")]
pub struct LendBook {
    #[tag]
    pub book_id: String,
    pub member: String,
}

impl StateChangeSlice for LendBook {
    const NAME: &'static str = "LendBook";
    const CONSUMES: &'static [&'static str] = &["BookAdded", "BookLent"];
    const PRODUCES: &'static [&'static str] = &["BookLent"];
    type Command = Self;
    type Event = BookEvent;
    type State = BookState;
    type Error = LibraryError;

    fn evolve(state: BookState, event: &BookEvent) -> BookState {
        evolve_book(state, event)
    }

    fn decide(state: &BookState, command: &Self) -> Result<Vec<BookEvent>, LibraryError> {
        let Some(title) = &state.title else {
            return Err(LibraryError::BookNotFound);
        };
        if state.lent {
            return Err(LibraryError::AlreadyLent);
        }
        Ok(vec![BookEvent::BookLent {
            book_id: command.book_id.clone(),
            title: title.clone(),
            member: command.member.clone(),
        }])
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "reventless_spec::schemars")]
#[serde(rename_all = "camelCase")]
pub struct BookRow {
    pub title: String,
    pub pages: u32,
    pub lent_to: Option<String>,
}

pub struct Books;

impl ReadModel for Books {
    const NAME: &'static str = "Book";
    const PLURAL: &'static str = "Books";
    const CONSUMES: &'static [&'static str] = &["BookAdded", "BookLent"];
    type Event = BookEvent;
    type Row = BookRow;

    fn project(event: &BookEvent, _: &EventEnvelope) -> Vec<Action<BookRow>> {
        match event.clone() {
            BookEvent::BookAdded { book_id, title, pages } => {
                vec![Action::set(book_id, BookRow { title, pages, lent_to: None })]
            }
            BookEvent::BookLent { book_id, member, .. } => {
                vec![Action::update(book_id, move |row: &mut BookRow| row.lent_to = Some(member))]
            }
        }
    }
}

pub fn library() -> reventless_core::Plugin {
    reventless_core::Plugin::new("Library").aggregate::<Book>().state_change_slice::<LendBook>().read_model::<Books>()
}

/// `BookAdded` as each build stored it: (data, meta). v1 was written before
/// versioning existed (no version in its meta, which was still snake_case);
/// v4 is what a newer build than this one would write.
pub fn book_added_as_stored(version: u32, id: &str) -> (Value, Value) {
    match version {
        1 => (json!({"book_id": id, "name": "Dune"}), json!({"correlation_id": "old", "service": "Library"})),
        2 => (json!({"book_id": id, "title": "Dune"}), json!({"correlationId": "old", "schemaVersion": 2})),
        3 => (json!({"book_id": id, "title": "Dune", "pages": 412}), json!({"schemaVersion": 3})),
        other => (json!({"book_id": id, "title": "Dune", "pages": 412, "isbn": "x"}), json!({"schemaVersion": other})),
    }
}

/// Appends `BookAdded` of `version` for `id` as an older (or newer) build
/// did: untyped, its data and meta exactly as that build wrote them.
#[allow(dead_code)] // not every platform's test writes through the store
pub async fn append_as_stored(stores: &reventless_core::Stores, version: u32, id: &str) -> u64 {
    let (data, meta) = book_added_as_stored(version, id);
    let meta = serde_json::from_value(meta).unwrap();
    let tag = reventless_spec::Tag::new("book", id).unwrap();
    let event = reventless_spec::NewEvent::new("BookAdded", vec![tag], data).with_meta(meta);
    let stream = reventless_core::store::StreamRef { aggregate: "Book", id };
    stores.events.append_to_stream("Library", stream, 0, vec![event]).await.unwrap().last_position
}
