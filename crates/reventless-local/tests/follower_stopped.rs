//! A follower whose task died (here: its projection panicked) is reported by
//! `wait_for_projections`, by name, instead of the wait answering `Ok` while
//! its read model silently stops moving.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::time::Duration;

use reventless_core::{CommandRequest, Plugin, RuntimeError};
use reventless_spec::{Action, Aggregate, Command, Event, EventEnvelope, ReadModel};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
enum NoteCommand {
    Write { text: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Event)]
enum NoteEvent {
    Written { text: String },
}

struct Note;

impl Aggregate for Note {
    const NAME: &'static str = "Note";
    type Command = NoteCommand;
    type Event = NoteEvent;
    type State = ();
    type Error = String;

    fn decide(_id: &str, _state: &(), command: &NoteCommand) -> Result<Vec<NoteEvent>, String> {
        let NoteCommand::Write { text } = command;
        Ok(vec![NoteEvent::Written { text: text.clone() }])
    }

    fn evolve(state: (), _event: &NoteEvent) {
        state
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
struct NoteRow {
    text: String,
}

/// Projects notes; a bug makes it panic on the text `boom`.
struct Notes;

impl ReadModel for Notes {
    const NAME: &'static str = "Note";
    const PLURAL: &'static str = "Notes";
    const CONSUMES: &'static [&'static str] = &["Written"];
    type Event = NoteEvent;
    type Row = NoteRow;

    fn project(event: &NoteEvent, envelope: &EventEnvelope) -> Vec<Action<NoteRow>> {
        let NoteEvent::Written { text } = event;
        assert!(text != "boom", "cannot project a boom");
        let id = envelope.stream.as_ref().map(|s| s.id.clone()).unwrap_or_default();
        vec![Action::set(id, NoteRow { text: text.clone() })]
    }
}

fn write(id: &str, text: &str) -> CommandRequest {
    CommandRequest::new("Notebook", "Note_Write", json!({"text": text})).entity(id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_that_panicked_is_reported_by_name_instead_of_waited_for() {
    let plugin = Plugin::new("Notebook").aggregate::<Note>().read_model::<Notes>();
    let runtime = reventless_local::start_in_memory(vec![plugin]).unwrap();
    runtime.execute(write("n1", "hello")).await.unwrap();
    runtime.wait_for_projections_within(Duration::from_secs(10)).await.unwrap();

    runtime.execute(write("n2", "boom")).await.unwrap();
    let waited = runtime.wait_for_projections_within(Duration::from_secs(10)).await;
    let Err(RuntimeError::FollowerStopped { follower, reason }) = &waited else {
        panic!("the dead follower is reported, not waited for: {waited:?}");
    };
    assert!(follower.contains("Notebook_Notes"), "{follower}");
    assert!(reason.contains("panicked") && reason.contains("cannot project a boom"), "{reason}");
    let message = waited.unwrap_err().to_string();
    assert!(message.contains("Notebook_Notes") && message.contains("stopped"), "{message}");
    // It stays reported: later events are not applied either.
    runtime.execute(write("n3", "after")).await.unwrap();
    let again = runtime.wait_for_projections_within(Duration::from_secs(10)).await;
    assert!(matches!(again, Err(RuntimeError::FollowerStopped { .. })), "{again:?}");
    assert!(runtime.stores().queries.get("Notebook_Notes", "n3").await.unwrap().is_none());
    runtime.shutdown().await;
}
