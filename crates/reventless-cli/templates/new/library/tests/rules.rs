//! The Library's rules as Given/When/Then tests. Events go through their
//! stored form and the platform's own fold / decide / project steps run, so
//! what passes here behaves the same on SQLite, in memory and on AWS.
use library::*;
use reventless::prelude::*;
use reventless::spec::{NewEvent, StreamPosition, Timestamp};
use reventless::testing::{AggregateTest, ProjectionTest, SliceTest};

fn joined(name: &str) -> LibraryEvent {
    LibraryEvent::MemberJoined { name: name.into() }
}

fn lent(book: &str, member: &str) -> LibraryEvent {
    LibraryEvent::BookLent { book_id: book.into(), member_id: member.into() }
}

fn returned(book: &str, member: &str) -> LibraryEvent {
    LibraryEvent::BookReturned { book_id: book.into(), member_id: member.into() }
}

fn lend(book: &str, member: &str) -> LendBook {
    LendBook { book_id: book.into(), member_id: member.into() }
}

#[test]
fn a_member_joins_once_with_a_name_and_leaves_once() {
    AggregateTest::<Member>::given_no_events("ada")
        .when(MemberCommand::Join { name: " Ada ".into() })
        .then_events([joined("Ada")]);
    AggregateTest::<Member>::given_no_events("ada")
        .when(MemberCommand::Join { name: "  ".into() })
        .then_rejected("NameMissing");
    AggregateTest::<Member>::given("ada", [joined("Ada")])
        .when(MemberCommand::Join { name: "Ada".into() })
        .then_rejected("MemberAlreadyJoined");
    AggregateTest::<Member>::given("ada", [joined("Ada")])
        .when(MemberCommand::Leave)
        .then_events([LibraryEvent::MemberLeft]);
    AggregateTest::<Member>::given("ada", [joined("Ada"), LibraryEvent::MemberLeft])
        .when(MemberCommand::Leave)
        .then_no_events();
    AggregateTest::<Member>::given_no_events("bob").when(MemberCommand::Leave).then_rejected("MemberNotFound");
}

#[test]
fn an_active_member_borrows_a_book_on_the_shelf() {
    SliceTest::<LendBook>::given_no_events()
        .and_stream::<Member>("ada", [joined("Ada")])
        .when(lend("dune", "ada"))
        .then_events([lent("dune", "ada")]);
    // Another member's loan of the same book is in the decision, and so in
    // the append condition: a concurrent loan of it makes this one retry.
    SliceTest::<LendBook>::given([lent("dune", "bob")])
        .and_stream::<Member>("ada", [joined("Ada")])
        .when(lend("dune", "ada"))
        .then_rejected("BookOnLoan");
    SliceTest::<LendBook>::given([lent("dune", "bob"), returned("dune", "bob")])
        .and_stream::<Member>("ada", [joined("Ada")])
        .when(lend("dune", "ada"))
        .then_events([lent("dune", "ada")]);
}

#[test]
fn only_members_who_have_not_left_borrow() {
    SliceTest::<LendBook>::given_no_events().when(lend("dune", "ada")).then_rejected("MemberNotFound");
    SliceTest::<LendBook>::given_no_events()
        .and_stream::<Member>("ada", [joined("Ada"), LibraryEvent::MemberLeft])
        .when(lend("dune", "ada"))
        .then_rejected("MemberHasLeft");
    // Bob's membership is not Ada's.
    SliceTest::<LendBook>::given_no_events()
        .and_stream::<Member>("bob", [joined("Bob")])
        .when(lend("dune", "ada"))
        .then_rejected("MemberNotFound");
}

#[test]
fn a_member_holds_at_most_the_loan_limit() {
    let held = ["a", "b", "c"].map(|book| lent(book, "ada"));
    assert_eq!(held.len(), LOAN_LIMIT);
    SliceTest::<LendBook>::given(held.clone())
        .and_stream::<Member>("ada", [joined("Ada")])
        .when(lend("d", "ada"))
        .then_rejected("LoanLimitReached");
    SliceTest::<LendBook>::given(held)
        .and([returned("b", "ada")])
        .and_stream::<Member>("ada", [joined("Ada")])
        .when(lend("d", "ada"))
        .then_events([lent("d", "ada")]);
}

#[test]
fn a_book_on_loan_is_returned_by_its_borrower() {
    SliceTest::<ReturnBook>::given([lent("dune", "ada")])
        .when(ReturnBook { book_id: "dune".into() })
        .then_events([returned("dune", "ada")]);
    SliceTest::<ReturnBook>::given([lent("dune", "ada"), returned("dune", "ada")])
        .when(ReturnBook { book_id: "dune".into() })
        .then_rejected("BookNotOnLoan");
}

#[test]
fn settling_a_leavers_loans_returns_what_they_hold_once() {
    let settle = || SettleLoans { member_id: "ada".into() };
    SliceTest::<SettleLoans>::given([lent("dune", "ada"), lent("emma", "ada"), returned("dune", "ada")])
        .when(settle())
        .then_events([returned("emma", "ada"), LibraryEvent::LoansSettled { member_id: "ada".into() }]);
    SliceTest::<SettleLoans>::given([LibraryEvent::LoansSettled { member_id: "ada".into() }])
        .when(settle())
        .then_no_events();
}

#[test]
fn the_books_read_model_shows_the_borrower_and_counts_loans() {
    ProjectionTest::<Books>::given([lent("dune", "ada"), returned("dune", "ada"), lent("dune", "bob")])
        .then_rows([("dune", BookRow { id: "dune".into(), borrower: Some("bob".into()), times_lent: 2 })]);
    ProjectionTest::<Books>::given([lent("dune", "ada"), returned("dune", "ada")])
        .then_row("dune", BookRow { id: "dune".into(), borrower: None, times_lent: 1 })
        .then_no_row("emma");
}

#[test]
fn a_leaver_becomes_a_to_do_item_until_their_loans_are_settled() {
    let left = EventEnvelope::recorded(
        NewEvent::new("MemberLeft", vec![], Default::default()),
        7,
        Some(StreamPosition { id: "ada".into(), version: 2 }),
        Timestamp(0),
    );
    let (id, item) = SettleLoansOfLeavers::collect(&LibraryEvent::MemberLeft, &left).expect("an item");
    assert_eq!((id.as_str(), &item), ("ada", &Leaver { member_id: "ada".into() }));
    let dispatched = SettleLoansOfLeavers::process(&id, &item);
    assert_eq!(dispatched.len(), 1);
    assert_eq!((dispatched[0].command.as_str(), &dispatched[0].input["memberId"]), ("SettleLoans", &"ada".into()));
    let settled = LibraryEvent::LoansSettled { member_id: "ada".into() };
    assert_eq!(SettleLoansOfLeavers::resolve(&settled, &left), Some("ada".to_string()));
    assert_eq!(SettleLoansOfLeavers::collect(&lent("dune", "ada"), &left), None);
}

#[test]
fn the_plugin_wires_its_components() {
    plugin().resolve().expect("names in CONSUMES / PRODUCES are checked here");
}
