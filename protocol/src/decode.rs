//! Decoding frames with errors that say what was wrong, where, and what was expected.

use std::fmt;

use serde_json::Value;

use crate::catalog::{CatalogError, TopicEvent, TopicSnapshot};
use crate::codes::ErrorCode;
use crate::envelope::{ClientMessage, ServerMessage, UNPAIRED_RESUME};
use crate::json::{MAX_NESTING_DEPTH, nesting_depth};
use crate::scalar::RequestId;
use crate::topic::Topic;

/// A frame that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    /// The error code a server answers with.
    pub code: ErrorCode,
    /// What was wrong and what was expected.
    pub message: String,
    /// A JSON pointer to the offending value (`""` for the whole frame).
    pub pointer: String,
    /// The frame's `id`, when it could be read, so the error can answer the request.
    pub id: Option<RequestId>,
    /// The offending topic as sent, for topic errors.
    pub topic: Option<String>,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "at {}: {}", self.pointer, self.message)
        }
    }
}

impl std::error::Error for FrameError {}

impl FrameError {
    fn new(code: ErrorCode, pointer: impl Into<String>, message: impl Into<String>) -> FrameError {
        FrameError {
            code,
            message: message.into(),
            pointer: pointer.into(),
            id: None,
            topic: None,
        }
    }

    /// The error for a topic rejected by the catalog.
    pub fn from_catalog(err: &CatalogError, pointer: impl Into<String>) -> FrameError {
        let mut pointer = pointer.into();
        let (code, topic) = match err {
            CatalogError::UnknownTopic { topic, .. } => (ErrorCode::UnknownTopic, topic),
            CatalogError::InvalidPayload {
                topic,
                pointer: inner,
                ..
            } => {
                pointer.push_str(inner);
                (ErrorCode::InvalidPayload, topic)
            }
        };
        FrameError {
            topic: Some(topic.clone()),
            ..FrameError::new(code, pointer, err.to_string())
        }
    }
}

/// Decodes a text frame sent by a client.
///
/// Checks the envelope, field types and topic grammar. Whether a topic belongs to a family and
/// whether a publish payload fits it are the catalog's business ([`TopicEvent::decode`]), since a
/// server answers those with their own error codes after authorization.
pub fn decode_client_frame(text: &str) -> Result<ClientMessage, FrameError> {
    check_depth(text)?;
    serde_json::from_str(text)
        .map_err(|err| diagnose(text, err, ClientMessage::KINDS, client_topics))
}

/// Refuses a frame nested deeper than [`MAX_NESTING_DEPTH`] before parsing it.
fn check_depth(text: &str) -> Result<(), FrameError> {
    let depth = nesting_depth(text);
    if depth <= MAX_NESTING_DEPTH {
        return Ok(());
    }
    Err(FrameError {
        id: probe_id(text),
        ..FrameError::new(
            ErrorCode::BadRequest,
            "",
            format!(
                "frame nests arrays and objects {depth} levels deep; the limit is \
                 {MAX_NESTING_DEPTH}, counting the frame's own object"
            ),
        )
    })
}

/// The `id` of a frame that cannot be decoded as a whole (too deep, trailing garbage, a bad
/// field), when its top-level object can be read that far and the `id` is a valid one.
fn probe_id(text: &str) -> Option<RequestId> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default)]
        id: Option<Value>,
    }
    // serde skips the other fields without building them, however deep they nest, and stops
    // at the end of the object, so trailing garbage does not matter.
    let mut de = serde_json::Deserializer::from_str(text);
    let probe = <Probe as serde::Deserialize>::deserialize(&mut de).ok()?;
    RequestId::new(probe.id?.as_str()?).ok()
}

/// Decodes a text frame sent by a server, including the payload type of every snapshot and
/// event against its topic's family.
pub fn decode_server_frame(text: &str) -> Result<ServerMessage, FrameError> {
    check_depth(text)?;
    let message: ServerMessage = serde_json::from_str(text)
        .map_err(|err| diagnose(text, err, ServerMessage::KINDS, server_topics))?;
    match &message {
        ServerMessage::Snapshot { data, .. } => {
            TopicSnapshot::decode(&data.topic, &data.payload)
                .map_err(|err| FrameError::from_catalog(&err, catalog_pointer(&err)))?;
        }
        ServerMessage::Event { data, .. } => {
            TopicEvent::decode(&data.topic, &data.payload)
                .map_err(|err| FrameError::from_catalog(&err, catalog_pointer(&err)))?;
        }
        _ => {}
    }
    Ok(message)
}

/// Where a catalog error of a snapshot or event points: the topic when no family owns it,
/// otherwise the payload that does not fit the family.
fn catalog_pointer(err: &CatalogError) -> &'static str {
    match err {
        CatalogError::UnknownTopic { .. } => "/data/topic",
        CatalogError::InvalidPayload { .. } => "/data/payload",
    }
}

/// Where a message of type `kind` keeps topic names, as (pointer, value) pairs.
type TopicFields = fn(&str, &Value) -> Vec<(String, Value)>;

fn client_topics(kind: &str, data: &Value) -> Vec<(String, Value)> {
    match kind {
        "subscribe" => indexed(data, |i, item| {
            (format!("/data/topics/{i}/topic"), item.get("topic"))
        }),
        "unsubscribe" => indexed(data, |i, item| (format!("/data/topics/{i}"), Some(item))),
        "publish" => data
            .get("topic")
            .map(|t| ("/data/topic".to_owned(), t.clone()))
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

fn server_topics(kind: &str, data: &Value) -> Vec<(String, Value)> {
    match kind {
        "subscribed" | "unsubscribed" => {
            indexed(data, |i, item| (format!("/data/topics/{i}"), Some(item)))
        }
        "published" | "snapshot" | "event" => data
            .get("topic")
            .map(|t| ("/data/topic".to_owned(), t.clone()))
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

fn indexed<'a>(
    data: &'a Value,
    pick: impl Fn(usize, &'a Value) -> (String, Option<&'a Value>),
) -> Vec<(String, Value)> {
    let Some(items) = data.get("topics").and_then(Value::as_array) else {
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let (pointer, topic) = pick(i, item);
            topic.map(|t| (pointer, t.clone()))
        })
        .collect()
}

/// Turns a serde failure into an error that names the place and the expectation. Runs only on
/// the failure path, so it may re-parse the frame.
fn diagnose(text: &str, err: serde_json::Error, kinds: &[&str], topics: TopicFields) -> FrameError {
    let bad =
        |pointer: &str, message: String| FrameError::new(ErrorCode::BadRequest, pointer, message);
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(syntax) => {
            return FrameError {
                id: probe_id(text),
                ..bad("", format!("frame is not valid JSON: {syntax}"))
            };
        }
    };
    let Some(object) = value.as_object() else {
        return bad(
            "",
            format!(
                "expected a JSON object {{\"type\", \"id\"?, \"data\"?}}, found {}",
                kind_of(&value)
            ),
        );
    };
    let id = object
        .get("id")
        .and_then(Value::as_str)
        .and_then(|id| RequestId::new(id).ok());
    let with_id = |e: FrameError| FrameError {
        id: id.clone(),
        ..e
    };
    let kind = match object.get("type") {
        None => {
            return with_id(bad(
                "/type",
                format!(
                    "missing field \"type\"; expected one of {}",
                    kinds.join(", ")
                ),
            ));
        }
        Some(Value::String(kind)) if kinds.contains(&kind.as_str()) => kind.as_str(),
        Some(other) => {
            return with_id(bad(
                "/type",
                format!(
                    "unknown message type {other}; expected one of {}",
                    kinds.join(", ")
                ),
            ));
        }
    };
    if let Some(id) = object.get("id") {
        if let Err(reason) = id
            .as_str()
            .ok_or("expected a string".to_owned())
            .and_then(|s| RequestId::new(s).map_err(|e| e.to_string()))
        {
            return bad("/id", format!("invalid request id {id}: {reason}"));
        }
    }
    let data = object.get("data").unwrap_or(&Value::Null);
    for (pointer, topic) in topics(kind, data) {
        let Some(name) = topic.as_str() else { continue };
        if let Err(reason) = Topic::validate(name) {
            let mut e = with_id(FrameError::new(
                ErrorCode::InvalidTopic,
                pointer,
                reason.to_string(),
            ));
            e.topic = Some(name.to_owned());
            return e;
        }
    }
    if err.to_string().contains(UNPAIRED_RESUME) {
        let items = data.get("topics").and_then(Value::as_array);
        let unpaired = items
            .into_iter()
            .flatten()
            .position(|item| item.get("resumeAfter").is_some() != item.get("epoch").is_some());
        if let Some(at) = unpaired {
            return with_id(bad(
                &format!("/data/topics/{at}"),
                UNPAIRED_RESUME.to_owned(),
            ));
        }
    }
    // serde's message names the field and the expectation ("missing field `topics`",
    // "invalid type: integer `1`, expected a string"); add which message it was.
    with_id(bad("", format!("invalid {kind:?} message: {err}")))
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_err(text: &str) -> FrameError {
        decode_client_frame(text).unwrap_err()
    }

    #[test]
    fn explains_each_kind_of_bad_client_frame() {
        let cases: &[(&str, ErrorCode, &str, &str)] = &[
            ("{", ErrorCode::BadRequest, "", "not valid JSON"),
            ("[1]", ErrorCode::BadRequest, "", "found an array"),
            (
                r#"{"id":"1"}"#,
                ErrorCode::BadRequest,
                "/type",
                "missing field \"type\"",
            ),
            (
                r#"{"type":"subscrbe","id":"1"}"#,
                ErrorCode::BadRequest,
                "/type",
                "expected one of auth, subscribe",
            ),
            (
                r#"{"type":"subscribe","id":"1","data":{"topics":[{"topic":"a..b"}]}}"#,
                ErrorCode::InvalidTopic,
                "/data/topics/0/topic",
                "empty segment",
            ),
            (
                r#"{"type":"unsubscribe","data":{"topics":["ok","Bad"]}}"#,
                ErrorCode::InvalidTopic,
                "/data/topics/1",
                "'B' at byte 0",
            ),
            (
                r#"{"type":"publish","data":{"topic":"custom.x"}}"#,
                ErrorCode::BadRequest,
                "",
                "missing field `payload`",
            ),
            (
                r#"{"type":"subscribe","data":{"topics":[{"topic":"a","snapshot":"no"}]}}"#,
                ErrorCode::BadRequest,
                "",
                "invalid type",
            ),
            (
                r#"{"type":"ping","extra":1}"#,
                ErrorCode::BadRequest,
                "",
                "unknown field `extra`",
            ),
            (
                r#"{"type":"ping","id":7}"#,
                ErrorCode::BadRequest,
                "/id",
                "expected a string",
            ),
        ];
        for (text, code, pointer, needle) in cases {
            let err = client_err(text);
            assert_eq!(
                (err.code, err.pointer.as_str()),
                (*code, *pointer),
                "{text}: {err}"
            );
            assert!(err.message.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn keeps_the_request_id_so_the_error_can_answer_it() {
        let err =
            client_err(r#"{"type":"subscribe","id":"r7","data":{"topics":[{"topic":"UPPER"}]}}"#);
        assert_eq!(err.id.as_ref().map(RequestId::as_str), Some("r7"));
        assert_eq!(err.topic.as_deref(), Some("UPPER"));
    }

    #[test]
    fn frames_too_deep_or_with_trailing_garbage_keep_a_readable_id() {
        let deep = |n: usize| {
            format!(
                r#"{{"type":"publish","data":{{"topic":"custom.x","payload":{}1{}}},"id":"d1"}}"#,
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        // The frame, `data` and the payload's own arrays: 2 + n levels.
        assert!(decode_client_frame(&deep(MAX_NESTING_DEPTH - 2)).is_ok());
        let err = client_err(&deep(MAX_NESTING_DEPTH - 1));
        assert_eq!(
            (err.code, err.id.as_ref().map(RequestId::as_str)),
            (ErrorCode::BadRequest, Some("d1")),
            "{err}"
        );
        assert!(err.message.contains("the limit is 64"), "{err}");
        let err = client_err(&deep(100_000));
        assert_eq!(err.id.as_ref().map(RequestId::as_str), Some("d1"));
        let err = client_err(r#"{"type":"ping","id":"t1"} trailing"#);
        assert_eq!(
            (err.code, err.id.as_ref().map(RequestId::as_str)),
            (ErrorCode::BadRequest, Some("t1"))
        );
    }

    #[test]
    fn resume_names_both_seq_and_epoch() {
        let ok =
            r#"{"type":"subscribe","data":{"topics":[{"topic":"a","resumeAfter":3,"epoch":"e"}]}}"#;
        assert!(decode_client_frame(ok).is_ok());
        for lonely in [r#""resumeAfter":3"#, r#""epoch":"e""#] {
            let text = format!(
                r#"{{"type":"subscribe","id":"s","data":{{"topics":[{{"topic":"a"}},{{"topic":"b",{lonely}}}]}}}}"#
            );
            let err = client_err(&text);
            assert_eq!(
                (
                    err.code,
                    err.pointer.as_str(),
                    err.id.as_ref().map(RequestId::as_str)
                ),
                (ErrorCode::BadRequest, "/data/topics/1", Some("s")),
                "{err}"
            );
        }
    }

    #[test]
    fn null_is_not_a_spelling_of_absent() {
        let err = client_err(r#"{"type":"subscribe","id":null,"data":{"topics":[{"topic":"a"}]}}"#);
        assert_eq!(err.code, ErrorCode::BadRequest, "{err}");
        let err =
            client_err(r#"{"type":"subscribe","data":{"topics":[{"topic":"a","snapshot":null}]}}"#);
        assert_eq!(err.code, ErrorCode::BadRequest, "{err}");
        // A ping's data is any JSON value, `null` included, and is echoed as sent.
        let ping = decode_client_frame(r#"{"type":"ping","data":null}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&ping).unwrap(),
            r#"{"type":"ping","data":null}"#
        );
    }

    #[test]
    fn server_frames_are_checked_against_the_topic_family() {
        let ok = r#"{"type":"event","data":{"topic":"drives.pressure","epoch":"e1","seq":1,"emittedAt":"2026-11-21T09:30:00.125Z","isReplay":false,"payload":{"drive":"sda","pressure":0.5,"threshold":0.9}}}"#;
        assert!(decode_server_frame(ok).is_ok());
        let wrong_family = ok.replace("drives.pressure", "sessions.state");
        let err = decode_server_frame(&wrong_family).unwrap_err();
        assert_eq!(
            (err.code, err.pointer.as_str()),
            (ErrorCode::InvalidPayload, "/data/payload"),
            "{err}"
        );
    }
}
