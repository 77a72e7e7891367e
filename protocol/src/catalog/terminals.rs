//! The `terminals.state` family.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::{FamilyShape, FieldIs, Fields, Fold, Order, TopicFamily, list_snapshot};
use crate::scalar::{present, present_whole_i32, whole_u16};

/// Whether a terminal's process is alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub enum TerminalStatus {
    /// The process runs.
    Running,
    /// The process ended; `exitCode` says how.
    Exited,
    /// The terminal was closed: removed from the snapshot.
    Closed,
}

/// The state of one terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TerminalState {
    /// The terminal's id.
    pub terminal_id: String,
    /// The title to show, e.g. the running command.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    #[ts(optional)]
    pub title: Option<String>,
    /// Whether the process runs.
    pub status: TerminalStatus,
    /// The exit code, once the process has exited.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_whole_i32"
    )]
    #[ts(optional)]
    pub exit_code: Option<i32>,
    /// Width in character cells.
    #[serde(deserialize_with = "whole_u16")]
    pub cols: u16,
    /// Height in character cells.
    #[serde(deserialize_with = "whole_u16")]
    pub rows: u16,
}

/// Every open terminal, ordered by `terminalId`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TerminalsStateSnapshot {
    /// The terminals, ordered by `terminalId`; closed terminals are absent.
    pub terminals: Vec<TerminalState>,
}

/// The `terminals.state` family: the list of terminals and their lifecycle.
#[derive(Debug)]
pub struct TerminalsState;

impl TopicFamily for TerminalsState {
    const NAME: &'static str = "terminals.state";
    const SHAPE: FamilyShape = FamilyShape::Exact;
    const DESCRIPTION: &'static str =
        "The list of terminals and their lifecycle. Each event is the new state of one terminal.";
    const FOLD: Fold = Fold::Upsert {
        list: "terminals",
        key: "terminalId",
        order: Order::KeyAscending,
        remove_when: Some(FieldIs {
            field: "status",
            value: TerminalStatus::Closed.wire_name(),
        }),
    };
    type Snapshot = TerminalsStateSnapshot;
    type Event = TerminalState;
}

list_snapshot!(TerminalsStateSnapshot, TerminalState, "terminals" => terminals);

impl TerminalStatus {
    /// The status as spelled on the wire, e.g. `closed`.
    pub const fn wire_name(self) -> &'static str {
        match self {
            TerminalStatus::Running => "running",
            TerminalStatus::Exited => "exited",
            TerminalStatus::Closed => "closed",
        }
    }
}

impl Fields for TerminalState {
    fn str_field(&self, name: &str) -> Option<&str> {
        match name {
            "terminalId" => Some(&self.terminal_id),
            "title" => self.title.as_deref(),
            "status" => Some(self.status.wire_name()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terminal(id: &str, status: TerminalStatus) -> TerminalState {
        TerminalState {
            terminal_id: id.into(),
            title: None,
            status,
            exit_code: None,
            cols: 80,
            rows: 24,
        }
    }

    #[test]
    fn terminals_state_keeps_latest_per_terminal_and_drops_closed() {
        let mut snapshot = TerminalsStateSnapshot::default();
        for event in [
            terminal("t2", TerminalStatus::Running),
            terminal("t1", TerminalStatus::Running),
            terminal("t2", TerminalStatus::Exited),
            terminal("t1", TerminalStatus::Closed),
            terminal("t3", TerminalStatus::Closed),
        ] {
            TerminalsState::fold(&mut snapshot, &event);
        }
        let got: Vec<_> = snapshot
            .terminals
            .iter()
            .map(|t| (t.terminal_id.as_str(), t.status))
            .collect();
        assert_eq!(got, [("t2", TerminalStatus::Exited)]);
    }

    #[test]
    fn wire_names_are_the_serde_names() {
        for status in [
            TerminalStatus::Running,
            TerminalStatus::Exited,
            TerminalStatus::Closed,
        ] {
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                status.wire_name(),
                "{status:?}"
            );
        }
    }
}
