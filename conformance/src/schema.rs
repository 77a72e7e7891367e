//! The published server-to-client JSON Schema, compiled once, judging every received frame.

use std::sync::OnceLock;

use serde_json::Value;

/// The published server-to-client schema (`generated/schema/server-to-client.schema.json`).
pub const SERVER_SCHEMA: &str = include_str!("../../generated/schema/server-to-client.schema.json");

/// The server-to-client schema the harness judges frames by.
pub fn server_schema() -> Value {
    serde_json::from_str(SERVER_SCHEMA).unwrap_or(Value::Null)
}

/// A received frame that breaks the server-to-client schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", if pointer.is_empty() { "frame" } else { pointer.as_str() })]
pub struct Violation {
    /// Where in the frame (JSON pointer; empty for the whole frame).
    pub pointer: String,
    /// What the schema expected.
    pub message: String,
}

/// One schema per message `type` with only that branch of the top-level `oneOf`: validating
/// against it alone is equivalent to the whole schema (the branches are exclusive by their `type`
/// const), costs a third less, and reports a violation at the offending field instead of as "no
/// branch matched".
struct Compiled {
    by_kind: Vec<(String, jsonschema::Validator)>,
}

fn compile() -> Result<Compiled, String> {
    let root = server_schema();
    let mut by_kind = Vec::new();
    let branches = root
        .get("oneOf")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let branches_len = branches.len();
    for branch in branches {
        let Some(kind) = branch
            .pointer("/properties/type/const")
            .or_else(|| branch.pointer("/properties/type/enum/0"))
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            continue;
        };
        // The branch joins `allOf`, whose errors (unlike `oneOf`'s) name the failing field.
        let mut one = root.clone();
        if let Some(obj) = one.as_object_mut() {
            obj.remove("oneOf");
            let all = obj
                .entry("allOf")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Some(all) = all.as_array_mut() {
                all.push(branch);
            }
        }
        let v = jsonschema::validator_for(&one).map_err(|e| e.to_string())?;
        by_kind.push((kind, v));
    }
    if by_kind.len() != branches_len {
        return Err(format!(
            "{} of {branches_len} oneOf branches name no `type` const",
            branches_len - by_kind.len()
        ));
    }
    Ok(Compiled { by_kind })
}

fn compiled() -> Result<&'static Compiled, &'static str> {
    static COMPILED: OnceLock<Result<Compiled, String>> = OnceLock::new();
    COMPILED
        .get_or_init(compile)
        .as_ref()
        .map_err(String::as_str)
}

/// Parses a text frame and checks it against the server-to-client schema.
pub fn check_text(text: &str) -> Result<Value, (Option<Value>, Violation)> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        (
            None,
            Violation {
                pointer: String::new(),
                message: format!("not valid JSON: {e}"),
            },
        )
    })?;
    match check_value(&value) {
        Ok(()) => Ok(value),
        Err(v) => Err((Some(value), v)),
    }
}

/// Checks a parsed frame against the server-to-client schema.
pub fn check_value(value: &Value) -> Result<(), Violation> {
    let compiled = compiled().map_err(|e| Violation {
        pointer: String::new(),
        message: format!("the server-to-client schema does not compile: {e}"),
    })?;
    // The top-level `oneOf` branches are exclusive by their `type` const, so the branch named by
    // the frame's `type` alone decides validity; checking just it skips the other branches.
    let kind = value.get("type").and_then(Value::as_str);
    let branch = kind.and_then(|k| compiled.by_kind.iter().find(|(name, _)| name == k));
    if branch.is_some_and(|(_, validator)| validator.is_valid(value)) {
        return Ok(());
    }
    let Some((_, validator)) = branch else {
        let kinds: Vec<&str> = compiled.by_kind.iter().map(|(k, _)| k.as_str()).collect();
        return Err(Violation {
            pointer: "/type".into(),
            message: format!(
                "{} is not a server message type; expected one of {}",
                value
                    .get("type")
                    .map_or("a missing \"type\"".to_owned(), ToString::to_string),
                kinds.join(", ")
            ),
        });
    };
    let mut best: Option<(String, String)> = None;
    for e in validator.iter_errors(value) {
        let p = e.instance_path().to_string();
        if best.as_ref().is_none_or(|(b, _)| p.len() > b.len()) {
            best = Some((p, e.to_string()));
        }
    }
    let (pointer, message) = best.unwrap_or_else(|| {
        (
            String::new(),
            "the frame does not validate against the schema".into(),
        )
    });
    Err(Violation { pointer, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_good_frames_and_points_at_bad_fields() {
        let ok = r#"{"type":"event","data":{"topic":"custom.x","seq":1,"emittedAt":"2026-11-21T09:30:00.125Z","isReplay":false,"payload":1}}"#;
        assert!(check_text(ok).is_ok());
        let no_time = ok.replace(r#""emittedAt":"2026-11-21T09:30:00.125Z","#, "");
        let (_, v) = check_text(&no_time).unwrap_err();
        assert!(v.message.contains("emittedAt"), "{v}");
        let bad_seq = ok.replace(r#""seq":1"#, r#""seq":-1"#);
        let (_, v) = check_text(&bad_seq).unwrap_err();
        assert!(v.pointer.ends_with("/seq"), "{v}");
        let wrong_payload = ok.replace("custom.x", "drives.pressure");
        let (_, v) = check_text(&wrong_payload).unwrap_err();
        assert_eq!(v.pointer, "/data/payload", "{v}");
        let (_, v) = check_text(r#"{"type":"evnt"}"#).unwrap_err();
        assert!(v.message.contains("expected one of"), "{v}");
        assert!(
            check_text("nope")
                .unwrap_err()
                .1
                .message
                .contains("not valid JSON")
        );
    }
}
