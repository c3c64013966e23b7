//! A newcomer's library: a `Member` aggregate and a `LendBook` DCB slice
//! whose boundary includes `member:<id>`, in one plugin. The slice sees the
//! aggregate's events (one log per plugin, the entity tag on every
//! aggregate event) on every local backend, the GWT harness places given
//! events as the platform does, and plugins that could never work are
//! refused when built, naming the mistake.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use reventless_core::store::StreamRef;
use reventless_core::testing::{AggregateTest, SliceTest};
use reventless_core::{CommandRequest, EngineError, Plugin, PluginError, Runtime, Stores};
use reventless_spec::{Aggregate, Command, Event, Query, QueryItem, StateChangeSlice, Tag};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
enum LibraryEvent {
    /// No member id field: the entity tag `member:<id>` says whose it is.
    MemberRegistered {
        name: String,
    },
    MemberSuspended,
    BookLent {
        #[tag]
        member_id: String,
        #[tag]
        book_id: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
enum MemberCommand {
    Register { name: String },
    Suspend,
}

#[derive(Debug, Serialize)]
enum LibraryError {
    AlreadyRegistered,
    MemberNotFound,
    MemberSuspended,
    BookAlreadyLent,
}

#[derive(Clone, Copy, Default, Debug, PartialEq)]
enum Standing {
    #[default]
    Unknown,
    Active,
    Suspended,
}

struct Member;

impl Aggregate for Member {
    const NAME: &'static str = "Member";
    type Command = MemberCommand;
    type Event = LibraryEvent;
    type State = Standing;
    type Error = LibraryError;

    fn decide(_id: &str, state: &Standing, command: &MemberCommand) -> Result<Vec<LibraryEvent>, LibraryError> {
        match (command, state) {
            (MemberCommand::Register { .. }, Standing::Active | Standing::Suspended) => {
                Err(LibraryError::AlreadyRegistered)
            }
            (MemberCommand::Register { name }, Standing::Unknown) => {
                Ok(vec![LibraryEvent::MemberRegistered { name: name.clone() }])
            }
            (MemberCommand::Suspend, Standing::Unknown) => Err(LibraryError::MemberNotFound),
            (MemberCommand::Suspend, _) => Ok(vec![LibraryEvent::MemberSuspended]),
        }
    }

    fn evolve(state: Standing, event: &LibraryEvent) -> Standing {
        match event {
            LibraryEvent::MemberRegistered { .. } => Standing::Active,
            LibraryEvent::MemberSuspended => Standing::Suspended,
            LibraryEvent::BookLent { .. } => state,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[serde(rename_all = "camelCase")]
struct LendBook {
    #[tag]
    member_id: String,
    #[tag]
    book_id: String,
}

#[derive(Clone, Default)]
struct Loan {
    member: Standing,
    book_out: bool,
}

impl StateChangeSlice for LendBook {
    const NAME: &'static str = "LendBook";
    const CONSUMES: &'static [&'static str] = &["MemberRegistered", "MemberSuspended", "BookLent"];
    const PRODUCES: &'static [&'static str] = &["BookLent"];
    type Command = Self;
    type Event = LibraryEvent;
    type State = Loan;
    type Error = LibraryError;

    /// The member's events OR the book's loans.
    fn query(command: &Self) -> Query {
        let member = Tag::new("member", &command.member_id).unwrap();
        let book = Tag::new("book", &command.book_id).unwrap();
        Query::none()
            .item(QueryItem::new().types(["MemberRegistered", "MemberSuspended"]).tags([member]))
            .item(QueryItem::new().types(["BookLent"]).tags([book]))
    }

    fn evolve(mut state: Loan, event: &LibraryEvent) -> Loan {
        match event {
            LibraryEvent::BookLent { .. } => state.book_out = true,
            other => state.member = Member::evolve(state.member, other),
        }
        state
    }

    fn decide(state: &Loan, command: &Self) -> Result<Vec<LibraryEvent>, LibraryError> {
        match state.member {
            Standing::Unknown => return Err(LibraryError::MemberNotFound),
            Standing::Suspended => return Err(LibraryError::MemberSuspended),
            Standing::Active => {}
        }
        if state.book_out {
            return Err(LibraryError::BookAlreadyLent);
        }
        Ok(vec![LibraryEvent::BookLent { member_id: command.member_id.clone(), book_id: command.book_id.clone() }])
    }
}

fn library() -> Plugin {
    Plugin::new("Library").aggregate::<Member>().state_change_slice::<LendBook>()
}

fn member(command: &str, id: &str, input: serde_json::Value) -> CommandRequest {
    CommandRequest::new("Library", format!("Member_{command}"), input).entity(id)
}

fn lend(member_id: &str, book_id: &str) -> CommandRequest {
    CommandRequest::new("Library", "LendBook", json!({"memberId": member_id, "bookId": book_id}))
}

async fn loans_follow_members(stores: Stores) {
    let runtime = Runtime::start(stores.clone(), vec![library()]).unwrap();
    let registered = runtime.execute(member("Register", "m1", json!({"name": "Ann"}))).await;
    assert!(registered.unwrap().is_accepted());
    let loan = runtime.execute(lend("m1", "b1")).await.unwrap();
    assert!(loan.is_accepted(), "the slice sees the member the aggregate registered: {loan:?}");
    assert_eq!(runtime.execute(lend("m1", "b1")).await.unwrap().error_code(), Some("BookAlreadyLent"));
    assert_eq!(runtime.execute(lend("m2", "b2")).await.unwrap().error_code(), Some("MemberNotFound"));
    let suspended = runtime.execute(member("Suspend", "m1", serde_json::Value::Null)).await.unwrap();
    assert!(suspended.is_accepted(), "{suspended:?}");
    assert_eq!(runtime.execute(lend("m1", "b3")).await.unwrap().error_code(), Some("MemberSuspended"));
    // The aggregate's events carry the entity tag and keep their stream.
    let stream = stores.events.read_stream("Library", StreamRef { aggregate: "Member", id: "m1" }, 0).await.unwrap();
    assert_eq!(stream.len(), 2);
    assert!(stream.iter().all(|e| e.tags.contains(&Tag::new("member", "m1").unwrap())), "{stream:?}");
    assert_eq!(stream.iter().map(|e| e.stream.as_ref().unwrap().version).collect::<Vec<_>>(), vec![1, 2]);
    // A runtime stopped before its background tasks first ran stops too.
    tokio::time::timeout(std::time::Duration::from_secs(10), runtime.shutdown()).await.unwrap();
}

#[tokio::test]
async fn a_slice_sees_an_aggregates_events_in_memory() {
    loans_follow_members(reventless_local::memory_stores()).await;
}

#[tokio::test]
async fn a_slice_sees_an_aggregates_events_on_sqlite() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap().keep();
    let db = reventless_local::sqlite::SqliteDatabase::open(dir.join("library.db"), Default::default()).unwrap();
    loans_follow_members(reventless_local::sqlite_stores(&db)).await;
}

/// A member registering while a loan for them is decided: the loan's
/// decision never lands on a member state it did not see.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspension_racing_loans_is_never_missed() {
    let runtime = Runtime::start(reventless_local::memory_stores(), vec![library()]).unwrap();
    runtime.execute(member("Register", "m1", json!({"name": "Ann"}))).await.unwrap();
    let mut tasks = Vec::new();
    for book in 0..16 {
        let runtime = runtime.clone();
        tasks.push(tokio::spawn(async move { runtime.execute(lend("m1", &format!("b{book}"))).await }));
    }
    let suspend = runtime.execute(member("Suspend", "m1", serde_json::Value::Null)).await.unwrap();
    assert!(suspend.is_accepted());
    for task in tasks {
        let outcome = task.await.unwrap().unwrap();
        assert!(outcome.is_accepted() || outcome.error_code() == Some("MemberSuspended"), "{outcome:?}");
    }
    let all = runtime.stores().events.read("Library", &Query::all(), None, None).await.unwrap();
    let suspended_at = all.iter().find(|e| e.event_type == "MemberSuspended").unwrap().position;
    let late: Vec<_> = all.iter().filter(|e| e.event_type == "BookLent" && e.position > suspended_at).collect();
    assert!(late.is_empty(), "loans decided before the suspension must not land after it: {late:?}");
    runtime.shutdown().await;
}

/// Given/When/Then places the aggregate's events as the platform does.
#[test]
fn slice_tests_place_aggregate_events_with_their_entity_tag() {
    let registered = LibraryEvent::MemberRegistered { name: "Ann".into() };
    let command = LendBook { member_id: "m1".into(), book_id: "b1".into() };
    SliceTest::<LendBook>::given_no_events()
        .and_stream::<Member>("m1", [registered.clone()])
        .when(command.clone())
        .then_events([LibraryEvent::BookLent { member_id: "m1".into(), book_id: "b1".into() }]);
    // Another member's registration is outside the boundary.
    SliceTest::<LendBook>::given_no_events()
        .and_stream::<Member>("m2", [registered])
        .when(command)
        .then_rejected("MemberNotFound");
    AggregateTest::<Member>::given("m1", [LibraryEvent::MemberRegistered { name: "Ann".into() }])
        .when(MemberCommand::Suspend)
        .then_events([LibraryEvent::MemberSuspended]);
}

/// The entity id is `decide`'s argument; an event tagged for another
/// entity of the same aggregate (a command field repeating the id wrongly)
/// is refused, nothing appended.
#[tokio::test]
async fn an_event_tagged_for_another_entity_is_refused() {
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
    enum SloppyEvent {
        Registered {
            #[tag]
            member_id: String,
        },
    }
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
    #[serde(rename_all_fields = "camelCase")]
    enum SloppyCommand {
        Register { member_id: String },
    }
    struct Sloppy;
    impl Aggregate for Sloppy {
        const NAME: &'static str = "Member";
        type Command = SloppyCommand;
        type Event = SloppyEvent;
        type State = ();
        type Error = String;
        fn decide(_id: &str, _: &(), command: &SloppyCommand) -> Result<Vec<SloppyEvent>, String> {
            let SloppyCommand::Register { member_id } = command;
            Ok(vec![SloppyEvent::Registered { member_id: member_id.clone() }])
        }
        fn evolve(state: (), _: &SloppyEvent) {
            state
        }
    }
    let stores = reventless_local::memory_stores();
    let runtime = Runtime::start(stores.clone(), vec![Plugin::new("Library").aggregate::<Sloppy>()]).unwrap();
    let wrong = member("Register", "m2", json!({"memberId": "someone-else"}));
    let refused = runtime.execute(wrong).await;
    assert!(
        matches!(&refused, Err(EngineError::Contract(message)) if message.contains("member:someone-else")),
        "{refused:?}"
    );
    assert_eq!(stores.events.head("Library").await.unwrap(), 0, "nothing appended");
    let right = member("Register", "m2", json!({"memberId": "m2"}));
    assert!(runtime.execute(right).await.unwrap().is_accepted());
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
struct Typo {
    #[tag]
    member_id: String,
}

impl StateChangeSlice for Typo {
    const NAME: &'static str = "Typo";
    const CONSUMES: &'static [&'static str] = &["MemberRegisterd"];
    const PRODUCES: &'static [&'static str] = &["BookLent"];
    type Command = Self;
    type Event = LibraryEvent;
    type State = ();
    type Error = LibraryError;
    fn evolve(state: (), _: &LibraryEvent) {
        state
    }
    fn decide(_: &(), _: &Self) -> Result<Vec<LibraryEvent>, LibraryError> {
        Ok(vec![])
    }
}

#[test]
fn a_typo_in_consumes_is_refused_with_the_name_it_meant() {
    let error = Plugin::new("Library").aggregate::<Member>().state_change_slice::<Typo>().manifest().unwrap_err();
    assert!(matches!(&error, PluginError::UnknownEventName(typo) if typo.name == "MemberRegisterd"), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("`Typo`") && message.contains("CONSUMES"), "{message}");
    assert!(message.contains("did you mean `MemberRegistered`?"), "{message}");
}

#[test]
fn an_event_no_component_appends_is_refused() {
    // Only the slice is registered: nobody appends MemberRegistered.
    let error = Plugin::new("Library").state_change_slice::<LendBook>().manifest().unwrap_err();
    assert!(
        matches!(&error, PluginError::NeverAppended { component, name, .. } if component.contains("LendBook") && name == "MemberRegistered"),
        "{error:?}"
    );
}

#[test]
fn one_event_name_in_two_event_types_is_refused() {
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
    enum OtherEvent {
        MemberSuspended,
    }
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
    struct Other {
        #[tag]
        id: String,
    }
    impl StateChangeSlice for Other {
        const NAME: &'static str = "Other";
        const CONSUMES: &'static [&'static str] = &[];
        const PRODUCES: &'static [&'static str] = &["MemberSuspended"];
        type Command = Self;
        type Event = OtherEvent;
        type State = ();
        type Error = String;
        fn evolve(state: (), _: &OtherEvent) {
            state
        }
        fn decide(_: &(), _: &Self) -> Result<Vec<OtherEvent>, String> {
            Ok(vec![])
        }
    }
    let error = library().state_change_slice::<Other>().manifest().unwrap_err();
    assert!(matches!(&error, PluginError::DuplicateEventName { name, .. } if name == "MemberSuspended"), "{error:?}");
}
