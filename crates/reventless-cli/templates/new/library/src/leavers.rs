//! An automation: when a member leaves, the books they still hold are
//! returned (the to-do item stays open until `LoansSettled`, and a failed
//! attempt is retried).
use reventless::prelude::*;
use serde::{Deserialize, Serialize};

use crate::events::LibraryEvent;
use crate::loans::SettleLoans;

/// A to-do item: a member who left.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Leaver {
    pub member_id: String,
}

pub struct SettleLoansOfLeavers;

impl AutomationSlice for SettleLoansOfLeavers {
    const NAME: &'static str = "SettleLoansOfLeavers";
    const CONSUMES: &'static [&'static str] = &["MemberLeft", "LoansSettled"];
    type Event = LibraryEvent;
    type Item = Leaver;

    /// A member leaves once (leaving again appends nothing), so the member
    /// id names the item.
    fn collect(event: &LibraryEvent, envelope: &EventEnvelope) -> Option<(String, Leaver)> {
        match event {
            LibraryEvent::MemberLeft => {
                let member_id = envelope.stream.as_ref()?.id.clone();
                Some((member_id.clone(), Leaver { member_id }))
            }
            _ => None,
        }
    }

    fn resolve(event: &LibraryEvent, _: &EventEnvelope) -> Option<String> {
        match event {
            LibraryEvent::LoansSettled { member_id } => Some(member_id.clone()),
            _ => None,
        }
    }

    fn process(_: &str, leaver: &Leaver) -> Vec<Dispatch> {
        Dispatch::slice(&SettleLoans { member_id: leaver.member_id.clone() }).into_iter().collect()
    }
}
