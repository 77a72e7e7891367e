//! The `sessions.state` and `sessions.activity:<sessionId>` families.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::{FamilyShape, FieldIs, Fields, Fold, Order, TopicFamily, list_snapshot};
use crate::json::JsonValue;
use crate::scalar::{Timestamp, present};

/// The lifecycle status of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub enum SessionStatus {
    /// Created, not yet running.
    Starting,
    /// Working on a request.
    Running,
    /// Blocked on input from a person (an approval, an answer).
    Waiting,
    /// Alive with nothing to do.
    Idle,
    /// Finished successfully.
    Completed,
    /// Finished with an error.
    Failed,
    /// Gone: removed from the `sessions.state` snapshot.
    Closed,
}

/// The latest known state of one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionState {
    /// The session's id; also the key of its `sessions.activity:<sessionId>` topic.
    pub session_id: String,
    /// Where the session is in its lifecycle.
    pub status: SessionStatus,
    /// A short human-readable title, when the session has one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    #[ts(optional)]
    pub title: Option<String>,
    /// When the status last changed.
    pub updated_at: Timestamp,
}

/// Every visible session, ordered by `sessionId`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionsStateSnapshot {
    /// The sessions, ordered by `sessionId`; closed sessions are absent.
    pub sessions: Vec<SessionState>,
}

/// The `sessions.state` family: the live list of sessions and their statuses.
#[derive(Debug)]
pub struct SessionsState;

impl TopicFamily for SessionsState {
    const NAME: &'static str = "sessions.state";
    const SHAPE: FamilyShape = FamilyShape::Exact;
    const DESCRIPTION: &'static str =
        "The live list of sessions and their statuses. Each event is the new state of one session.";
    const FOLD: Fold = Fold::Upsert {
        list: "sessions",
        key: "sessionId",
        order: Order::KeyAscending,
        remove_when: Some(FieldIs {
            field: "status",
            value: SessionStatus::Closed.wire_name(),
        }),
    };
    type Snapshot = SessionsStateSnapshot;
    type Event = SessionState;
}

list_snapshot!(SessionsStateSnapshot, SessionState, "sessions" => sessions);

impl SessionStatus {
    /// The status as spelled on the wire, e.g. `closed`.
    pub const fn wire_name(self) -> &'static str {
        match self {
            SessionStatus::Starting => "starting",
            SessionStatus::Running => "running",
            SessionStatus::Waiting => "waiting",
            SessionStatus::Idle => "idle",
            SessionStatus::Completed => "completed",
            SessionStatus::Failed => "failed",
            SessionStatus::Closed => "closed",
        }
    }
}

impl Fields for SessionState {
    fn str_field(&self, name: &str) -> Option<&str> {
        match name {
            "sessionId" => Some(&self.session_id),
            "status" => Some(self.status.wire_name()),
            "title" => self.title.as_deref(),
            _ => None,
        }
    }
}

/// What kind of activity an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub enum ActivityKind {
    /// A message from a person or an agent.
    Message,
    /// A tool was called.
    ToolCall,
    /// A tool returned.
    ToolResult,
    /// A status line, e.g. "compiling".
    Status,
    /// Raw output, e.g. from a terminal.
    Output,
}

/// One entry of a session's activity feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActivityEntry {
    /// What kind of activity this is.
    pub kind: ActivityKind,
    /// The text to show.
    pub text: String,
    /// When it happened.
    pub at: Timestamp,
    /// Application-specific details, free-form.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    #[ts(optional)]
    pub data: Option<JsonValue>,
}

/// How many entries a `sessions.activity` snapshot keeps.
pub const ACTIVITY_SNAPSHOT_LIMIT: usize = 100;

/// The most recent activity of one session, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionsActivitySnapshot {
    /// The latest entries (at most 100), oldest first.
    pub entries: Vec<ActivityEntry>,
}

/// The `sessions.activity:<sessionId>` family: one session's activity feed.
#[derive(Debug)]
pub struct SessionsActivity;

impl TopicFamily for SessionsActivity {
    const NAME: &'static str = "sessions.activity";
    const SHAPE: FamilyShape = FamilyShape::Keyed { key: "sessionId" };
    const DESCRIPTION: &'static str =
        "One session's activity feed. Each event is one new entry; subscribe per session.";
    const FOLD: Fold = Fold::Append {
        list: "entries",
        cap: ACTIVITY_SNAPSHOT_LIMIT,
    };
    type Snapshot = SessionsActivitySnapshot;
    type Event = ActivityEntry;
}

list_snapshot!(SessionsActivitySnapshot, ActivityEntry, "entries" => entries);

impl ActivityKind {
    /// The kind as spelled on the wire, e.g. `toolCall`.
    pub const fn wire_name(self) -> &'static str {
        match self {
            ActivityKind::Message => "message",
            ActivityKind::ToolCall => "toolCall",
            ActivityKind::ToolResult => "toolResult",
            ActivityKind::Status => "status",
            ActivityKind::Output => "output",
        }
    }
}

impl Fields for ActivityEntry {
    fn str_field(&self, name: &str) -> Option<&str> {
        match name {
            "kind" => Some(self.kind.wire_name()),
            "text" => Some(&self.text),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(id: &str, status: SessionStatus) -> SessionState {
        SessionState {
            session_id: id.into(),
            status,
            title: None,
            updated_at: Timestamp::now(),
        }
    }

    #[test]
    fn sessions_state_keeps_latest_per_session_in_order() {
        let mut snapshot = SessionsStateSnapshot::default();
        for event in [
            state("b", SessionStatus::Running),
            state("a", SessionStatus::Starting),
            state("b", SessionStatus::Waiting),
            state("c", SessionStatus::Idle),
            state("c", SessionStatus::Closed),
            state("z", SessionStatus::Closed),
        ] {
            SessionsState::fold(&mut snapshot, &event);
        }
        let got: Vec<_> = snapshot
            .sessions
            .iter()
            .map(|s| (s.session_id.as_str(), s.status))
            .collect();
        assert_eq!(
            got,
            [
                ("a", SessionStatus::Starting),
                ("b", SessionStatus::Waiting)
            ]
        );
    }

    #[test]
    fn activity_keeps_the_latest_hundred() {
        let mut snapshot = SessionsActivitySnapshot::default();
        for i in 0..150 {
            let entry = ActivityEntry {
                kind: ActivityKind::Output,
                text: i.to_string(),
                at: Timestamp::now(),
                data: None,
            };
            SessionsActivity::fold(&mut snapshot, &entry);
        }
        assert_eq!(snapshot.entries.len(), ACTIVITY_SNAPSHOT_LIMIT);
        assert_eq!(snapshot.entries[0].text, "50");
        assert_eq!(snapshot.entries[99].text, "149");
    }

    #[test]
    fn wire_names_are_the_serde_names() {
        for status in [
            SessionStatus::Starting,
            SessionStatus::Running,
            SessionStatus::Waiting,
            SessionStatus::Idle,
            SessionStatus::Completed,
            SessionStatus::Failed,
            SessionStatus::Closed,
        ] {
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                status.wire_name(),
                "{status:?}"
            );
        }
        for kind in [
            ActivityKind::Message,
            ActivityKind::ToolCall,
            ActivityKind::ToolResult,
            ActivityKind::Status,
            ActivityKind::Output,
        ] {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                kind.wire_name(),
                "{kind:?}"
            );
        }
    }
}
