//! Given / When / Then for user components. Events go through their wire
//! form (as in a real store) and the engine's own fold / decide / project
//! steps run, so a passing test means the component works on every platform.
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::marker::PhantomData;

use reventless_spec::{Aggregate, AppendCondition, EventEnvelope, Message, ReadModel, StateChangeSlice, Timestamp};

use reventless_spec::NewEvent;

use crate::engine::{
    ProjectionRows, apply_action, check_produced, decision_condition, decode_event, encode_events,
    encode_stream_events, fold_slice,
};

/// Records `events` as a store would: wire form, positions 1, 2, 3, …
fn record(events: Vec<NewEvent>) -> Vec<EventEnvelope> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| EventEnvelope::recorded(event, i as u64 + 1, None, Timestamp(0)))
        .collect()
}

fn encoded<E: reventless_spec::Event>(events: &[E]) -> Vec<NewEvent> {
    encode_events(events, &Default::default()).unwrap_or_else(|e| panic!("given events: {e}"))
}

/// Checks the decided events survive their wire form, like a real append.
fn through_wire<E: reventless_spec::Event>(events: Vec<E>) -> Vec<E> {
    let recorded = record(encoded(&events));
    recorded.iter().map(|e| decode_event::<E>(e).unwrap_or_else(|err| panic!("decided events: {err}"))).collect()
}

/// `AggregateTest::<Member>::given("m1", [..]).when(cmd).then_events([..])`
///
/// The given events are the entity's stream; `decide` gets the entity id,
/// and the decided events are checked as the platform appends them (entity
/// tag, PRODUCES-free wire form).
pub struct AggregateTest<A: Aggregate> {
    id: String,
    given: Vec<A::Event>,
}

impl<A: Aggregate> AggregateTest<A> {
    /// The entity `id` whose stream holds `events`.
    pub fn given(id: impl Into<String>, events: impl IntoIterator<Item = A::Event>) -> Self {
        Self { id: id.into(), given: events.into_iter().collect() }
    }

    /// The entity `id`, never seen before.
    pub fn given_no_events(id: impl Into<String>) -> Self {
        Self { id: id.into(), given: Vec::new() }
    }

    /// Decides `command` on the given events.
    #[must_use = "a Then asserts nothing until one of its then_* methods is called"]
    pub fn when(self, command: A::Command) -> Then<A::Event, A::Error> {
        let mut state = A::State::default();
        let stream = encode_stream_events::<A>(&self.id, &self.given, &Default::default())
            .unwrap_or_else(|e| panic!("given events: {e}"));
        for envelope in record(stream) {
            let event = decode_event::<A::Event>(&envelope).unwrap_or_else(|e| panic!("given events: {e}"));
            state = A::evolve(state, &event);
        }
        let result = A::decide(&self.id, &state, &command).map(through_wire);
        if let Ok(events) = &result {
            encode_stream_events::<A>(&self.id, events, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
        }
        Then { result, condition: None }
    }
}

/// `SliceTest::<AddProduct>::given([..]).when(cmd).then_events([..])`
///
/// The given events are placed in the plugin's log as the platform places
/// them: events a slice appended as they are, an aggregate's events
/// ([`SliceTest::and_stream`]) with the entity tag the aggregate's appends
/// add. Only the events matching the slice's query reach `evolve`, as with
/// a real DCB read; the append condition the platform would use is checked
/// by [`Then::then_condition`].
pub struct SliceTest<S: StateChangeSlice> {
    given: Vec<NewEvent>,
    marker: PhantomData<fn() -> S>,
}

impl<S: StateChangeSlice> SliceTest<S> {
    /// Events DCB slices appended.
    pub fn given(events: impl IntoIterator<Item = S::Event>) -> Self {
        let events: Vec<S::Event> = events.into_iter().collect();
        Self { given: encoded(&events), marker: PhantomData }
    }

    /// A slice test starting from an empty log.
    pub fn given_no_events() -> Self {
        Self { given: Vec::new(), marker: PhantomData }
    }

    /// Then events aggregate `A` appended for entity `id` (they carry its
    /// entity tag, `member:<id>`, as on the platform).
    pub fn and_stream<A: Aggregate<Event = S::Event>>(
        mut self,
        id: &str,
        events: impl IntoIterator<Item = S::Event>,
    ) -> Self {
        let events: Vec<S::Event> = events.into_iter().collect();
        let stream = encode_stream_events::<A>(id, &events, &Default::default())
            .unwrap_or_else(|e| panic!("given events of {} {id}: {e}", A::NAME));
        self.given.extend(stream);
        self
    }

    /// Then more events DCB slices appended.
    pub fn and(mut self, events: impl IntoIterator<Item = S::Event>) -> Self {
        let events: Vec<S::Event> = events.into_iter().collect();
        self.given.extend(encoded(&events));
        self
    }

    /// Decides `command` on the given events its query matches.
    #[must_use = "a Then asserts nothing until one of its then_* methods is called"]
    pub fn when(self, command: S::Command) -> Then<S::Event, S::Error> {
        let query = S::query(&command);
        let seen: Vec<EventEnvelope> =
            record(self.given).into_iter().filter(|e| query.matches(&e.event_type, &e.tags)).collect();
        let state = fold_slice::<S>(&seen).unwrap_or_else(|e| panic!("given events: {e}"));
        let result = S::decide(&state, &command).map(through_wire);
        if let Ok(events) = &result {
            check_produced(S::NAME, events, S::PRODUCES).unwrap_or_else(|e| panic!("{e}"));
        }
        Then { result, condition: Some(decision_condition(query, &seen)) }
    }
}

/// The outcome of a `when`, to assert on.
pub struct Then<E, Err> {
    result: Result<Vec<E>, Err>,
    condition: Option<AppendCondition>,
}

impl<E: Message + PartialEq, Err: reventless_spec::DomainError> Then<E, Err> {
    /// The command is accepted with exactly these events.
    pub fn then_events(self, expected: impl IntoIterator<Item = E>) -> Self {
        let expected: Vec<E> = expected.into_iter().collect();
        match &self.result {
            Ok(events) => assert_eq!(events, &expected, "decided events differ"),
            Err(error) => panic!("expected events {expected:?}, but the command was rejected with {error:?}"),
        }
        self
    }

    /// The command is accepted and changes nothing.
    pub fn then_no_events(self) -> Self {
        self.then_events([])
    }

    /// The command is rejected with this error code (the error variant name).
    pub fn then_rejected(self, code: &str) -> Self {
        match &self.result {
            Ok(events) => panic!("expected rejection {code}, but the command was accepted with {events:?}"),
            Err(error) => assert_eq!(error.code(), code, "rejected with {error:?}"),
        }
        self
    }

    /// The command is rejected with exactly this error.
    pub fn then_error(self, expected: Err) -> Self
    where
        Err: PartialEq,
    {
        match &self.result {
            Ok(events) => panic!("expected {expected:?}, but the command was accepted with {events:?}"),
            Err(error) => assert_eq!(error, &expected),
        }
        self
    }

    /// The DCB append would use exactly this condition (slices only).
    pub fn then_condition(self, expected: AppendCondition) -> Self {
        match &self.condition {
            Some(condition) => assert_eq!(condition, &expected, "append condition differs"),
            None => panic!("only a state-change slice appends with a condition"),
        }
        self
    }

    /// The decision: the events, or the refusal.
    pub fn result(&self) -> &Result<Vec<E>, Err> {
        &self.result
    }

    /// The append condition of a slice's decision.
    pub fn condition(&self) -> Option<&AppendCondition> {
        self.condition.as_ref()
    }
}

/// `ProjectionTest::<Products>::given([..]).then_row("p1", row)`
pub struct ProjectionTest<R: ReadModel> {
    rows: ProjectionRows<R::Row>,
    marker: PhantomData<R>,
}

impl<R: ReadModel> ProjectionTest<R> {
    /// Projects the events in order, as the platform would.
    pub fn given(events: impl IntoIterator<Item = R::Event>) -> Self {
        let events: Vec<R::Event> = events.into_iter().collect();
        let mut rows = BTreeMap::new();
        for envelope in record(encoded(&events)).iter().filter(|e| R::CONSUMES.contains(&e.event_type.as_str())) {
            let event = decode_event::<R::Event>(envelope).unwrap_or_else(|e| panic!("given events: {e}"));
            for action in R::project(&event, envelope) {
                apply_action(&mut rows, action);
            }
        }
        Self { rows, marker: PhantomData }
    }

    fn current(&self) -> BTreeMap<String, R::Row> {
        self.rows
            .iter()
            .filter_map(|(id, row)| {
                let row = row.as_ref()?;
                // Rows are stored as JSON: check they survive it.
                let json = serde_json::to_value(row).unwrap_or_else(|e| panic!("row {id} does not serialize: {e}"));
                let back: R::Row =
                    serde_json::from_value(json).unwrap_or_else(|e| panic!("row {id} does not deserialize: {e}"));
                Some((id.clone(), back))
            })
            .collect()
    }

    /// Exactly these rows exist.
    pub fn then_rows<'a>(self, expected: impl IntoIterator<Item = (&'a str, R::Row)>) -> Self {
        let expected: BTreeMap<String, R::Row> = expected.into_iter().map(|(id, row)| (id.to_string(), row)).collect();
        assert_eq!(self.current(), expected, "{} rows differ", R::PLURAL);
        self
    }

    /// This row exists with this content.
    pub fn then_row(self, id: &str, expected: R::Row) -> Self {
        assert_eq!(self.current().get(id), Some(&expected), "{} row {id}", R::NAME);
        self
    }

    /// No row with this id exists.
    pub fn then_no_row(self, id: &str) -> Self {
        let current = self.current();
        assert!(!current.contains_key(id), "{} row {id} exists: {:?}", R::NAME, current.get(id));
        self
    }
}

impl<R: ReadModel> Debug for ProjectionTest<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionTest").field("rows", &self.rows).finish()
    }
}
