//! The `terminals.state` family.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::{FamilyShape, TopicFamily};
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
    const FOLD_RULE: &'static str = "The event replaces the entry with the same `terminalId` (or is \
        inserted, keeping the list ordered by `terminalId`); an event with status `closed` removes \
        the entry instead.";
    type Snapshot = TerminalsStateSnapshot;
    type Event = TerminalState;

    fn fold(snapshot: &mut TerminalsStateSnapshot, event: &TerminalState) {
        let found = snapshot
            .terminals
            .binary_search_by(|t| t.terminal_id.cmp(&event.terminal_id));
        match (found, event.status) {
            (Ok(at), TerminalStatus::Closed) => {
                snapshot.terminals.remove(at);
            }
            (Err(_), TerminalStatus::Closed) => {}
            (Ok(at), _) => snapshot.terminals[at] = event.clone(),
            (Err(at), _) => snapshot.terminals.insert(at, event.clone()),
        }
    }
}
