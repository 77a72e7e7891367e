//! The negative corpus: frames every artifact (decoder, schema, TypeScript where it can) must
//! reject, each with the reason and how TypeScript is expected to treat it.

use rtbus_protocol::MAX_SAFE_INTEGER;
use serde_json::{Value, json};

use super::examples::{EXAMPLE_EPOCH, EXAMPLE_TIME};

/// Which side sends a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to server.
    ClientToServer,
    /// Server to client.
    ServerToClient,
}

/// How TypeScript is expected to treat a negative case.
#[derive(Debug, Clone, PartialEq)]
pub enum TsCheck {
    /// Assigning the whole frame to the direction's message union must fail to compile.
    Frame,
    /// Assigning the frame's `data` to this TypeScript type must fail to compile.
    Data(&'static str),
    /// TypeScript's type system cannot express the constraint; the reason says why.
    Inexpressible(&'static str),
}

/// A frame that every artifact must reject.
#[derive(Debug, Clone, PartialEq)]
pub struct NegativeCase {
    /// A short name, usable as an identifier.
    pub name: &'static str,
    /// Who would send it.
    pub direction: Direction,
    /// What is wrong with it.
    pub reason: &'static str,
    /// The frame.
    pub frame: Value,
    /// What TypeScript does with it.
    pub ts: TsCheck,
}

/// The negative corpus: wrong field types, missing required fields, unknown `type`, payloads of
/// the wrong topic, unsafe integers, bad topics.
pub fn negative_cases() -> Vec<NegativeCase> {
    use Direction::{ClientToServer as C, ServerToClient as S};
    const NUMBER: &str = "TypeScript has one `number` type; ranges are not expressible";
    const STRING: &str =
        "TypeScript types a topic, id or timestamp as `string`; its grammar is not expressible";
    const ARRAY: &str = "TypeScript does not type array lengths";
    const PAIR: &str = "TypeScript types `resumeAfter` and `epoch` as two optional fields; that \
        they go together is checked by the decoder and the schema's `dependentRequired`";
    let event = |topic: &str, payload: Value| json!({"type": "event", "data": {"topic": topic, "epoch": EXAMPLE_EPOCH, "seq": 1, "emittedAt": EXAMPLE_TIME, "isReplay": false, "payload": payload}});
    let snapshot = |topic: &str, payload: Value| json!({"type": "snapshot", "data": {"topic": topic, "epoch": EXAMPLE_EPOCH, "seq": 0, "emittedAt": EXAMPLE_TIME, "isReplay": false, "payload": payload}});
    let pressure = json!({"drive": "/", "pressure": 0.5, "threshold": 0.9});
    let session = json!({"sessionId": "s-1", "status": "running", "updatedAt": EXAMPLE_TIME});
    let case = |name, direction, reason, frame, ts| NegativeCase {
        name,
        direction,
        reason,
        frame,
        ts,
    };
    vec![
        case(
            "unknown_type",
            C,
            "unknown message type",
            json!({"type": "subscrib", "data": {"topics": []}}),
            TsCheck::Frame,
        ),
        case(
            "missing_type",
            C,
            "no `type`",
            json!({"data": {"token": "t"}}),
            TsCheck::Frame,
        ),
        case(
            "server_type_from_client",
            C,
            "a server-only type sent by a client",
            json!({"type": "pong"}),
            TsCheck::Frame,
        ),
        case(
            "auth_missing_data",
            C,
            "missing required `data`",
            json!({"type": "auth", "id": "1"}),
            TsCheck::Frame,
        ),
        case(
            "auth_token_number",
            C,
            "wrong field type",
            json!({"type": "auth", "data": {"token": 42}}),
            TsCheck::Frame,
        ),
        case(
            "auth_unknown_field",
            C,
            "unknown field beside `token`",
            json!({"type": "auth", "data": {"token": "t", "user": "x"}}),
            TsCheck::Frame,
        ),
        case(
            "ping_unknown_top_level_field",
            C,
            "unknown envelope field",
            json!({"type": "ping", "extra": 1}),
            TsCheck::Frame,
        ),
        case(
            "id_number",
            C,
            "`id` must be a string",
            json!({"type": "ping", "id": 7}),
            TsCheck::Frame,
        ),
        case(
            "id_empty",
            C,
            "`id` must be 1 to 64 characters",
            json!({"type": "ping", "id": ""}),
            TsCheck::Inexpressible(STRING),
        ),
        case(
            "id_too_long",
            C,
            "`id` must be 1 to 64 characters",
            json!({"type": "ping", "id": "x".repeat(65)}),
            TsCheck::Inexpressible(STRING),
        ),
        case(
            "id_too_many_characters",
            C,
            "`id` must be 1 to 64 characters",
            json!({"type": "ping", "id": "é".repeat(65)}),
            TsCheck::Inexpressible(STRING),
        ),
        case(
            "subscribe_no_topics",
            C,
            "`topics` needs at least one entry",
            json!({"type": "subscribe", "data": {"topics": []}}),
            TsCheck::Inexpressible(ARRAY),
        ),
        case(
            "subscribe_topic_not_object",
            C,
            "subscription entries are objects",
            json!({"type": "subscribe", "data": {"topics": ["sessions.state"]}}),
            TsCheck::Frame,
        ),
        case(
            "subscribe_snapshot_string",
            C,
            "`snapshot` is a boolean",
            json!({"type": "subscribe", "data": {"topics": [{"topic": "sessions.state", "snapshot": "no"}]}}),
            TsCheck::Frame,
        ),
        case(
            "subscribe_bad_topic",
            C,
            "topic breaks the grammar (empty segment)",
            json!({"type": "subscribe", "data": {"topics": [{"topic": "sessions..state"}]}}),
            TsCheck::Inexpressible(STRING),
        ),
        case(
            "subscribe_uppercase_topic",
            C,
            "topic breaks the grammar (uppercase segment)",
            json!({"type": "subscribe", "data": {"topics": [{"topic": "Sessions.state"}]}}),
            TsCheck::Inexpressible(STRING),
        ),
        case(
            "subscribe_topic_too_long",
            C,
            "topic longer than 200 bytes",
            json!({"type": "subscribe", "data": {"topics": [{"topic": "a".repeat(201)}]}}),
            TsCheck::Inexpressible(STRING),
        ),
        case(
            "resume_after_unsafe",
            C,
            "`resumeAfter` above 2^53-1",
            json!({"type": "subscribe", "data": {"topics": [{"topic": "sessions.state", "resumeAfter": MAX_SAFE_INTEGER + 1, "epoch": EXAMPLE_EPOCH}]}}),
            TsCheck::Inexpressible(NUMBER),
        ),
        case(
            "resume_after_negative",
            C,
            "`resumeAfter` below 0",
            json!({"type": "subscribe", "data": {"topics": [{"topic": "sessions.state", "resumeAfter": -1, "epoch": EXAMPLE_EPOCH}]}}),
            TsCheck::Inexpressible(NUMBER),
        ),
        case(
            "resume_after_fraction",
            C,
            "`resumeAfter` is an integer",
            json!({"type": "subscribe", "data": {"topics": [{"topic": "sessions.state", "resumeAfter": 1.5, "epoch": EXAMPLE_EPOCH}]}}),
            TsCheck::Inexpressible(NUMBER),
        ),
        case(
            "resume_after_without_epoch",
            C,
            "`resumeAfter` needs the `epoch` it came with",
            json!({"type": "subscribe", "data": {"topics": [{"topic": "sessions.state", "resumeAfter": 3}]}}),
            TsCheck::Inexpressible(PAIR),
        ),
        case(
            "epoch_without_resume_after",
            C,
            "`epoch` names a resume point only with `resumeAfter`",
            json!({"type": "subscribe", "data": {"topics": [{"topic": "sessions.state", "epoch": EXAMPLE_EPOCH}]}}),
            TsCheck::Inexpressible(PAIR),
        ),
        case(
            "subscribe_epoch_empty",
            C,
            "an epoch is 1 to 64 characters",
            json!({"type": "subscribe", "data": {"topics": [{"topic": "sessions.state", "resumeAfter": 3, "epoch": ""}]}}),
            TsCheck::Inexpressible(STRING),
        ),
        case(
            "id_null",
            C,
            "an optional field is absent or a string, never `null`",
            json!({"type": "ping", "id": null}),
            TsCheck::Frame,
        ),
        case(
            "subscribe_snapshot_null",
            C,
            "an optional field is absent or a boolean, never `null`",
            json!({"type": "subscribe", "data": {"topics": [{"topic": "sessions.state", "snapshot": null}]}}),
            TsCheck::Frame,
        ),
        case(
            "publish_custom_unsafe_integer",
            C,
            "a number beyond 2^53-1 in a free-form payload (2^64, which would be relayed rounded)",
            serde_json::from_str(r#"{"type": "publish", "data": {"topic": "custom.x", "payload": {"big": 18446744073709551616}}}"#)
                .expect("a literal frame"),
            TsCheck::Inexpressible(NUMBER),
        ),
        case(
            "publish_optional_field_null",
            C,
            "an optional field is absent or a string, never `null`",
            json!({"type": "publish", "data": {"topic": "terminals.state", "payload": {"terminalId": "t", "status": "running", "title": null, "cols": 80, "rows": 24}}}),
            TsCheck::Data("EventData<\"terminals.state\">"),
        ),
        case(
            "unsubscribe_topic_number",
            C,
            "topics are strings",
            json!({"type": "unsubscribe", "data": {"topics": [1]}}),
            TsCheck::Frame,
        ),
        case(
            "publish_missing_payload",
            C,
            "missing required `payload`",
            json!({"type": "publish", "data": {"topic": "custom.x"}}),
            TsCheck::Frame,
        ),
        case(
            "publish_wrong_family_payload",
            C,
            "a drives.pressure event published on sessions.state",
            json!({"type": "publish", "data": {"topic": "sessions.state", "payload": pressure}}),
            TsCheck::Data("EventData<\"sessions.state\">"),
        ),
        case(
            "publish_unknown_family",
            C,
            "a topic no family owns",
            json!({"type": "publish", "data": {"topic": "weather", "payload": {}}}),
            TsCheck::Data("EventData<\"weather\">"),
        ),
        case(
            "publish_keyless_keyed_family",
            C,
            "sessions.activity needs a key",
            json!({"type": "publish", "data": {"topic": "sessions.activity", "payload": {"kind": "output", "text": "x", "at": EXAMPLE_TIME}}}),
            TsCheck::Data("EventData<\"sessions.activity\">"),
        ),
        case(
            "unknown_server_type",
            S,
            "unknown message type",
            json!({"type": "Event"}),
            TsCheck::Frame,
        ),
        case(
            "event_missing_is_replay",
            S,
            "missing required `isReplay`",
            json!({"type": "event", "data": {"topic": "custom.x", "epoch": EXAMPLE_EPOCH, "seq": 1, "emittedAt": EXAMPLE_TIME, "payload": 1}}),
            TsCheck::Frame,
        ),
        case(
            "event_seq_string",
            S,
            "`seq` is a number",
            json!({"type": "event", "data": {"topic": "custom.x", "epoch": EXAMPLE_EPOCH, "seq": "1", "emittedAt": EXAMPLE_TIME, "isReplay": false, "payload": 1}}),
            TsCheck::Frame,
        ),
        case(
            "event_seq_unsafe",
            S,
            "`seq` above 2^53-1",
            json!({"type": "event", "data": {"topic": "custom.x", "epoch": EXAMPLE_EPOCH, "seq": MAX_SAFE_INTEGER + 1, "emittedAt": EXAMPLE_TIME, "isReplay": false, "payload": 1}}),
            TsCheck::Inexpressible(NUMBER),
        ),
        case(
            "event_local_time",
            S,
            "`emittedAt` must be UTC with `Z`",
            json!({"type": "event", "data": {"topic": "custom.x", "epoch": EXAMPLE_EPOCH, "seq": 1, "emittedAt": "2026-11-21T10:30:00+01:00", "isReplay": false, "payload": 1}}),
            TsCheck::Inexpressible(STRING),
        ),
        case(
            "event_wrong_family_payload",
            S,
            "a drives.pressure payload on sessions.state",
            event("sessions.state", pressure.clone()),
            TsCheck::Data("EventData<\"sessions.state\">"),
        ),
        case(
            "event_payload_missing_field",
            S,
            "a drives.pressure event without `threshold`",
            event("drives.pressure", json!({"drive": "/", "pressure": 0.5})),
            TsCheck::Data("EventData<\"drives.pressure\">"),
        ),
        case(
            "event_ratio_out_of_range",
            S,
            "`pressure` above 1.0",
            event(
                "drives.pressure",
                json!({"drive": "/", "pressure": 1.5, "threshold": 0.9}),
            ),
            TsCheck::Inexpressible(NUMBER),
        ),
        case(
            "event_u16_overflow",
            S,
            "`cols` above 65535",
            event(
                "terminals.state",
                json!({"terminalId": "t", "status": "running", "cols": 70000, "rows": 24}),
            ),
            TsCheck::Inexpressible(NUMBER),
        ),
        case(
            "event_bad_enum",
            S,
            "unknown session status",
            event(
                "sessions.state",
                json!({"sessionId": "s-1", "status": "sleeping", "updatedAt": EXAMPLE_TIME}),
            ),
            TsCheck::Data("EventData<\"sessions.state\">"),
        ),
        case(
            "event_unknown_family",
            S,
            "a topic no family owns",
            event("weather", json!({})),
            TsCheck::Data("EventData<\"weather\">"),
        ),
        case(
            "snapshot_with_event_payload",
            S,
            "a sessions.state event where the snapshot belongs",
            snapshot("sessions.state", session),
            TsCheck::Data("SnapshotData<\"sessions.state\">"),
        ),
        case(
            "snapshot_payload_unknown_field",
            S,
            "unknown field in a snapshot payload",
            snapshot("drives.pressure", json!({"drives": [], "updated": true})),
            TsCheck::Data("SnapshotData<\"drives.pressure\">"),
        ),
        case(
            "error_unknown_code",
            S,
            "an error code this version does not define",
            json!({"type": "error", "data": {"code": "teapot", "message": "no"}}),
            TsCheck::Frame,
        ),
        case(
            "error_missing_message",
            S,
            "missing required `message`",
            json!({"type": "error", "data": {"code": "internal"}}),
            TsCheck::Frame,
        ),
        case(
            "authenticated_roles_string",
            S,
            "`roles` is an array",
            json!({"type": "authenticated", "data": {"principal": "p", "roles": "admin"}}),
            TsCheck::Frame,
        ),
        case(
            "published_bad_topic",
            S,
            "topic breaks the grammar",
            json!({"type": "published", "data": {"topic": "a:b:c", "epoch": EXAMPLE_EPOCH, "seq": 1}}),
            TsCheck::Inexpressible(STRING),
        ),
        case(
            "published_missing_epoch",
            S,
            "missing required `epoch`",
            json!({"type": "published", "data": {"topic": "custom.x", "seq": 1}}),
            TsCheck::Frame,
        ),
        case(
            "event_missing_epoch",
            S,
            "missing required `epoch`",
            json!({"type": "event", "data": {"topic": "custom.x", "seq": 1, "emittedAt": EXAMPLE_TIME, "isReplay": false, "payload": 1}}),
            TsCheck::Frame,
        ),
        case(
            "event_epoch_not_url_safe",
            S,
            "an epoch holds only A-Z, a-z, 0-9, `_` and `-`",
            json!({"type": "event", "data": {"topic": "custom.x", "epoch": "a/b", "seq": 1, "emittedAt": EXAMPLE_TIME, "isReplay": false, "payload": 1}}),
            TsCheck::Inexpressible(STRING),
        ),
        case(
            "snapshot_epoch_too_long",
            S,
            "an epoch is at most 64 characters",
            json!({"type": "snapshot", "data": {"topic": "custom.x", "epoch": "e".repeat(65), "seq": 0, "emittedAt": EXAMPLE_TIME, "isReplay": false, "payload": null}}),
            TsCheck::Inexpressible(STRING),
        ),
        case(
            "subscribed_topic_names",
            S,
            "`subscribed` lists entries with epoch, seq and start, not bare topic names",
            json!({"type": "subscribed", "data": {"topics": ["custom.x"]}}),
            TsCheck::Frame,
        ),
        case(
            "subscribed_unknown_start",
            S,
            "`start` is snapshot, live, resumed or reset",
            json!({"type": "subscribed", "data": {"topics": [{"topic": "custom.x", "epoch": EXAMPLE_EPOCH, "seq": 0, "start": "replay"}]}}),
            TsCheck::Frame,
        ),
        case(
            "unsubscribed_unknown_reason",
            S,
            "`reason` is an error code",
            json!({"type": "unsubscribed", "data": {"topics": ["custom.x"], "reason": "gone"}}),
            TsCheck::Frame,
        ),
        case(
            "event_optional_field_null",
            S,
            "an optional field is absent or a string, never `null`",
            event(
                "sessions.state",
                json!({"sessionId": "s-1", "status": "running", "title": null, "updatedAt": EXAMPLE_TIME}),
            ),
            TsCheck::Data("EventData<\"sessions.state\">"),
        ),
        case(
            "event_custom_unsafe_integer",
            S,
            "a number beyond 2^53-1 in a free-form payload",
            event("custom.x", json!({"n": [MAX_SAFE_INTEGER + 1]})),
            TsCheck::Inexpressible(NUMBER),
        ),
    ]
}
