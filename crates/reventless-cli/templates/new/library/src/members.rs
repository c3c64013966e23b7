//! Members: an aggregate, one event stream per member id.
use reventless::prelude::*;
use serde::{Deserialize, Serialize};

use crate::events::{LibraryError, LibraryEvent};

/// `Library_Member_Join(id, name)`, `Library_Member_Leave(id)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema, Command)]
#[serde(rename_all_fields = "camelCase")]
pub enum MemberCommand {
    /// Once per member id.
    Join { name: String },
    /// Leaving twice changes nothing.
    Leave,
}

/// Where a member is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Membership {
    #[default]
    Unknown,
    Active,
    Left,
}

/// Folds a member's events (their stream here, their tagged events in the slices).
pub(crate) fn evolve_membership(state: Membership, event: &LibraryEvent) -> Membership {
    match event {
        LibraryEvent::MemberJoined { .. } => Membership::Active,
        LibraryEvent::MemberLeft => Membership::Left,
        _ => state,
    }
}

pub struct Member;

impl Aggregate for Member {
    const NAME: &'static str = "Member";
    type Command = MemberCommand;
    type Event = LibraryEvent;
    type State = Membership;
    type Error = LibraryError;

    fn decide(_id: &str, state: &Membership, command: &MemberCommand) -> Result<Vec<LibraryEvent>, LibraryError> {
        match (command, state) {
            (MemberCommand::Join { name }, _) if name.trim().is_empty() => Err(LibraryError::NameMissing),
            (MemberCommand::Join { name }, Membership::Unknown) => {
                Ok(vec![LibraryEvent::MemberJoined { name: name.trim().to_string() }])
            }
            (MemberCommand::Join { .. }, _) => Err(LibraryError::MemberAlreadyJoined),
            (MemberCommand::Leave, Membership::Unknown) => Err(LibraryError::MemberNotFound),
            (MemberCommand::Leave, Membership::Active) => Ok(vec![LibraryEvent::MemberLeft]),
            (MemberCommand::Leave, Membership::Left) => Ok(vec![]),
        }
    }

    fn evolve(state: Membership, event: &LibraryEvent) -> Membership {
        evolve_membership(state, event)
    }
}
