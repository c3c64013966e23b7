//! Event versioning without a platform: the Given/When/Then harness and the
//! engine's pure steps read `BookAdded` stored at versions 1, 2 and 3 as
//! today's shape, stamp the current version on what they encode, and refuse
//! a version newer than the code knows with a typed error.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
#[path = "upcasting/library.rs"]
mod library;

use library::*;
use reventless_core::EngineError;
use reventless_core::engine::{decode_event, encode_events, fold_slice, upcast_event};
use reventless_core::testing::{AggregateTest, ProjectionTest, SliceTest, stored_event};
use reventless_spec::{EventEnvelope, EventMeta, NewEvent, Timestamp};
use serde_json::json;

fn dune(pages: u32) -> BookEvent {
    BookEvent::BookAdded { book_id: "b1".into(), title: "Dune".into(), pages }
}

/// An envelope as a store returns it for a row an older build wrote.
fn stored(version: u32, position: u64) -> EventEnvelope {
    let (data, meta) = book_added_as_stored(version, "b1");
    let meta: EventMeta = serde_json::from_value(meta).unwrap();
    let event = NewEvent::new("BookAdded", vec!["book:b1".parse().unwrap()], data).with_meta(meta);
    EventEnvelope::recorded(event, position, None, Timestamp(0))
}

#[test]
fn given_events_of_old_shapes_drive_decisions_and_projections() {
    let v1 = || stored_event::<BookEvent>("BookAdded", 1, book_added_as_stored(1, "b1").0);
    assert_eq!(v1(), dune(0));
    assert_eq!(stored_event::<BookEvent>("BookAdded", 2, book_added_as_stored(2, "b1").0), dune(0));
    AggregateTest::<Book>::given("b1", [v1()])
        .when(BookCommand::Add { title: "Dune".into(), pages: 1 })
        .then_rejected("AlreadyAdded");
    SliceTest::<LendBook>::given([v1()])
        .when(LendBook { book_id: "b1".into(), member: "ann".into() })
        .then_events([BookEvent::BookLent { book_id: "b1".into(), title: "Dune".into(), member: "ann".into() }]);
    ProjectionTest::<Books>::given([v1()]).then_row("b1", BookRow { title: "Dune".into(), pages: 0, lent_to: None });
}

#[test]
#[should_panic(expected = "stored event `BookAdded` v4: `BookAdded` was stored at version 4")]
fn a_given_event_of_a_newer_version_fails_the_test_naming_it() {
    stored_event::<BookEvent>("BookAdded", 4, book_added_as_stored(4, "b1").0);
}

#[test]
fn the_engine_reads_every_stored_version_as_today() {
    for version in [1, 2] {
        assert_eq!(decode_event::<BookEvent>(&stored(version, 1)).unwrap(), dune(0), "v{version}");
    }
    let current = encode_events(&[dune(412)], &EventMeta::default()).unwrap();
    assert_eq!(current[0].meta.schema_version, 3, "encoding stamps the type's current version");
    let lent = encode_events(
        &[BookEvent::BookLent { book_id: "b".into(), title: "t".into(), member: "m".into() }],
        &EventMeta::default(),
    )
    .unwrap();
    assert_eq!(serde_json::to_value(&lent[0].meta).unwrap().get("schemaVersion"), None, "version 1 is not written");
    let v3 = EventEnvelope::recorded(current[0].clone(), 2, None, Timestamp(0));
    assert_eq!(decode_event::<BookEvent>(&v3).unwrap(), dune(412));
    let state = fold_slice::<LendBook>(&[stored(1, 1)]).unwrap();
    assert_eq!(state.title.as_deref(), Some("Dune"));
    // For untyped readers: the JSON as if written today.
    let upcast = upcast_event::<BookEvent>(&stored(1, 1)).unwrap();
    assert_eq!(upcast.data, json!({"book_id": "b1", "title": "Dune", "pages": 0}));
    assert_eq!(upcast.meta.schema_version, 3);
    assert_eq!(upcast.meta.correlation_id.as_deref(), Some("old"), "the rest of the meta is kept");
}

#[test]
fn a_newer_version_is_a_typed_error_everywhere_it_is_read() {
    let newer = stored(4, 9);
    let expected = |error: EngineError| match error {
        EngineError::NewerEventVersion { event_type, stored, known, position, .. } => {
            assert_eq!((event_type.as_str(), stored, known, position), ("BookAdded", 4, 3, 9));
        }
        other => panic!("expected NewerEventVersion, got {other:?}"),
    };
    expected(decode_event::<BookEvent>(&newer).unwrap_err());
    expected(fold_slice::<LendBook>(&[stored(1, 1), newer.clone()]).unwrap_err());
    expected(upcast_event::<BookEvent>(&newer).unwrap_err());
    let plugin = library().resolve().unwrap();
    expected(plugin.upcast_event("Library", &newer).unwrap_err());
    let message = decode_event::<BookEvent>(&newer).unwrap_err().to_string();
    assert!(
        message.contains("`BookAdded` was stored at version 4, but this build knows versions up to 3"),
        "{message}"
    );
}

#[test]
fn a_plugin_upcasts_the_events_of_its_logs_for_untyped_readers() {
    let plugin = library().resolve().unwrap();
    let upcast = plugin.upcast_event("Library", &stored(2, 1)).unwrap();
    assert_eq!(upcast.data, json!({"book_id": "b1", "title": "Dune", "pages": 0}));
    // Another log, or a type no component writes, comes back as stored.
    let v1 = stored(1, 1);
    assert_eq!(plugin.upcast_event("Elsewhere", &v1).unwrap(), v1);
    let mut foreign = stored(1, 1);
    foreign.event_type = "SomethingElse".into();
    assert_eq!(plugin.upcast_event("Library", &foreign).unwrap(), foreign);
}
