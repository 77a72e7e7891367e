//! `generated/asyncapi.yaml` is a valid AsyncAPI 3.0 document that describes the protocol:
//! `@asyncapi/parser` (v3, which also validates the draft-07 payload schemas) reports no error;
//! the `send` operation lists exactly the client→server message types and `receive` the
//! server→client ones; and the message payloads give the corpus's verdicts under ajv's draft-07
//! build: every valid message validates against the payload of its type, every negative case
//! whose type names a message is refused by it.
//!
//! The parser runs under Node from `codegen/schema-check` (`asyncapi.mjs`), installed by
//! `npm ci` there.

mod common;

use std::collections::BTreeSet;

use common::{repo_root, run_schema_check};
use rtbus_codegen::corpus::{self, Direction};
use rtbus_protocol::{ClientMessage, ServerMessage};
use serde_json::{Value, json};

const DOCUMENT: &str = "generated/asyncapi.yaml";

fn document() -> String {
    let path = repo_root().join(DOCUMENT);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run `cargo xtask codegen`", path.display()))
}

/// The document as JSON: it is JSON under a `#` header (JSON is YAML 1.2).
fn document_json(text: &str) -> Value {
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{DOCUMENT} is not JSON under a header: {e}"))
}

/// A frame, the message it is checked against, and whether the corpus says it is valid.
struct Frame {
    name: String,
    message: String,
    frame: Value,
    valid: bool,
}

fn frames(messages: &BTreeSet<String>) -> Vec<Frame> {
    let mut out = Vec::new();
    for case in corpus::client_corpus().expect("the client corpus builds") {
        out.push(Frame {
            name: format!("client/{}", case.name),
            message: case.message.kind().to_owned(),
            frame: serde_json::to_value(&case.message).expect("a wire type serializes"),
            valid: true,
        });
    }
    for case in corpus::server_corpus().expect("the server corpus builds") {
        out.push(Frame {
            name: format!("server/{}", case.name),
            message: case.message.kind().to_owned(),
            frame: serde_json::to_value(&case.message).expect("a wire type serializes"),
            valid: true,
        });
    }
    for case in corpus::negative_cases() {
        // A frame whose `type` names no message of its direction's operation (an unknown type,
        // a server type sent by a client) is refused by the document as a whole.
        let operation = match case.direction {
            Direction::ClientToServer => ClientMessage::KINDS,
            Direction::ServerToClient => ServerMessage::KINDS,
        };
        let Some(kind) = case.frame["type"]
            .as_str()
            .filter(|k| messages.contains(*k) && operation.contains(k))
        else {
            continue;
        };
        out.push(Frame {
            name: format!("negative/{}", case.name),
            message: kind.to_owned(),
            frame: case.frame,
            valid: false,
        });
    }
    out
}

/// What `asyncapi.mjs` says about `document` and `frames`.
fn parse(document: &str, frames: &[Frame]) -> Value {
    let input: Vec<Value> = frames
        .iter()
        .map(|f| json!({ "message": f.message, "frame": f.frame }))
        .collect();
    run_schema_check(
        "AsyncAPI test",
        "asyncapi.mjs",
        &json!({ "document": document, "frames": input }),
    )
}

fn errors(report: &Value) -> Vec<String> {
    report["diagnostics"]
        .as_array()
        .expect("asyncapi.mjs wrote diagnostics")
        .iter()
        .filter(|d| d["severity"] == 0)
        .map(|d| format!("{} at {}: {}", d["code"], d["path"], d["message"]))
        .collect()
}

fn kinds(list: &[&str]) -> Vec<Value> {
    list.iter().map(|k| Value::from(*k)).collect()
}

#[test]
fn the_asyncapi_document_parses_without_errors_and_agrees_with_the_corpus() {
    let text = document();
    let json = document_json(&text);
    assert_eq!(json["asyncapi"], "3.0.0");
    let messages: BTreeSet<String> = json["components"]["messages"]
        .as_object()
        .expect("components.messages")
        .keys()
        .cloned()
        .collect();
    let frames = frames(&messages);
    let report = parse(&text, &frames);

    let errors = errors(&report);
    assert!(errors.is_empty(), "@asyncapi/parser: {}", errors.join("\n"));
    assert_eq!(
        report["messages"]["send"],
        Value::Array(kinds(ClientMessage::KINDS)),
        "the send operation lists every client→server type"
    );
    assert_eq!(
        report["messages"]["receive"],
        Value::Array(kinds(ServerMessage::KINDS)),
        "the receive operation lists every server→client type"
    );

    let results = report["frames"]
        .as_array()
        .expect("asyncapi.mjs wrote frames");
    assert_eq!(results.len(), frames.len(), "one result per frame");
    let mut failures = Vec::new();
    for (frame, result) in frames.iter().zip(results) {
        if result["valid"].as_bool() != Some(frame.valid) {
            failures.push(format!(
                "{}: the corpus says {}, the {} payload says {} ({}): {}",
                frame.name,
                if frame.valid { "valid" } else { "invalid" },
                frame.message,
                result["valid"],
                result["errors"],
                frame.frame
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let invalid = frames.iter().filter(|f| !f.valid).count();
    assert!(
        frames.len() > 100 && invalid > 10,
        "{} frames, {invalid} invalid",
        frames.len()
    );
}

/// The parser does check payload schemas: a broken one is an error (so the test above could
/// fail on one).
#[test]
fn the_parser_reports_a_broken_payload_schema() {
    let mut json = document_json(&document());
    json["components"]["messages"]["ping"]["payload"]["type"] = json!("no-such-type");
    let broken = serde_json::to_string_pretty(&json).expect("JSON serializes");
    let report = parse(&broken, &[]);
    assert!(
        !errors(&report).is_empty(),
        "the parser accepted a payload of type \"no-such-type\": {}",
        report["diagnostics"]
    );
}
