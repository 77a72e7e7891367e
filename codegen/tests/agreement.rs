//! The Rust types, the published JSON Schemas and the Rust decoders agree on every message of
//! the corpus: valid messages validate and round-trip, negative ones are rejected everywhere.

mod common;

use common::{errors, family_part, schema, validator};
use proptest::prelude::*;
use rtbus_codegen::corpus::{self, Direction, strategies};
use rtbus_protocol::catalog::{Family, TopicEvent};
use rtbus_protocol::{
    ClientMessage, ServerMessage, Topic, decode_client_frame, decode_server_frame,
};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::LazyLock;

struct Validators {
    client: jsonschema::Validator,
    server: jsonschema::Validator,
}

/// Compiled once per test binary: compiling a schema costs far more than validating.
fn validators() -> &'static Validators {
    static VALIDATORS: LazyLock<Validators> = LazyLock::new(|| Validators {
        client: validator(&schema("client-to-server.schema.json")),
        server: validator(&schema("server-to-client.schema.json")),
    });
    &VALIDATORS
}

/// The validator of one part of one family's schema, compiled once.
fn family_validator(family: Family, part: &'static str) -> &'static jsonschema::Validator {
    static PARTS: LazyLock<HashMap<(Family, &'static str), jsonschema::Validator>> =
        LazyLock::new(|| {
            let mut parts = HashMap::new();
            for family in Family::ALL {
                for part in ["snapshot", "event", "topic"] {
                    parts.insert((*family, part), family_part(family.name(), part));
                }
            }
            parts
        });
    &PARTS[&(family, part)]
}

/// Serializes, validates against the client schema, decodes and compares.
fn check_client(v: &Validators, message: &ClientMessage) -> Result<(), String> {
    let text = serde_json::to_string(message).map_err(|e| e.to_string())?;
    let value: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let errs = errors(&v.client, &value);
    if !errs.is_empty() {
        return Err(format!("schema rejects {text}: {errs:?}"));
    }
    let decoded = decode_client_frame(&text).map_err(|e| format!("decoder rejects {text}: {e}"))?;
    if &decoded != message {
        return Err(format!("round trip changed {text}: {decoded:?}"));
    }
    if let ClientMessage::Publish { data, .. } = message {
        TopicEvent::decode(&data.topic, &data.payload)
            .map_err(|e| format!("catalog rejects {text}: {e}"))?;
        check_family_part(&data.topic, "event", &data.payload)?;
    }
    Ok(())
}

/// Serializes, validates against the server schema, decodes and compares.
fn check_server(v: &Validators, message: &ServerMessage) -> Result<(), String> {
    let text = serde_json::to_string(message).map_err(|e| e.to_string())?;
    let value: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let errs = errors(&v.server, &value);
    if !errs.is_empty() {
        return Err(format!("schema rejects {text}: {errs:?}"));
    }
    let decoded = decode_server_frame(&text).map_err(|e| format!("decoder rejects {text}: {e}"))?;
    if &decoded != message {
        return Err(format!("round trip changed {text}: {decoded:?}"));
    }
    match message {
        ServerMessage::Snapshot { data, .. } => {
            check_family_part(&data.topic, "snapshot", &data.payload)?
        }
        ServerMessage::Event { data, .. } => {
            check_family_part(&data.topic, "event", &data.payload)?
        }
        _ => {}
    }
    Ok(())
}

/// The payload also validates against its family's own schema, and the topic against the
/// family's topic pattern.
fn check_family_part(topic: &Topic, part: &'static str, payload: &Value) -> Result<(), String> {
    let family = Family::of(topic).map_err(|e| e.to_string())?;
    let errs = errors(family_validator(family, part), payload);
    if !errs.is_empty() {
        return Err(format!(
            "{} {part} schema rejects {payload}: {errs:?}",
            family.name()
        ));
    }
    let topic_value = Value::String(topic.to_string());
    let errs = errors(family_validator(family, "topic"), &topic_value);
    if !errs.is_empty() {
        return Err(format!(
            "{} topic schema rejects {topic}: {errs:?}",
            family.name()
        ));
    }
    Ok(())
}

#[test]
fn hand_written_and_sampled_corpus_validates_and_round_trips() {
    let v = validators();
    let mut failures = Vec::new();
    let client = corpus::client_corpus().unwrap();
    let server = corpus::server_corpus().unwrap();
    for case in &client {
        if let Err(e) = check_client(v, &case.message) {
            failures.push(format!("client/{}: {e}", case.name));
        }
    }
    for case in &server {
        if let Err(e) = check_server(v, &case.message) {
            failures.push(format!("server/{}: {e}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Coverage: every message type and every family appears in the hand-written corpus.
    let kinds: Vec<&str> = client.iter().map(|c| c.message.kind()).collect();
    for kind in ClientMessage::KINDS {
        assert!(kinds.contains(kind), "no client example of {kind}");
    }
    let kinds: Vec<&str> = server.iter().map(|c| c.message.kind()).collect();
    for kind in ServerMessage::KINDS {
        assert!(kinds.contains(kind), "no server example of {kind}");
    }
    for family in Family::ALL {
        assert!(
            !corpus::example_events(*family).is_empty(),
            "no example events for family {}: add them to example_events in codegen/src/corpus.rs",
            family.name()
        );
        let covered = server.iter().any(|c| match &c.message {
            ServerMessage::Snapshot { data, .. } => Family::of(&data.topic).ok() == Some(*family),
            _ => false,
        });
        assert!(covered, "no snapshot example of {}", family.name());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_client_message_validates_and_round_trips(message in strategies::client_message()) {
        if let Err(e) = check_client(validators(), &message) {
            prop_assert!(false, "{}", e);
        }
    }

    #[test]
    fn any_server_message_validates_and_round_trips(message in strategies::server_message()) {
        if let Err(e) = check_server(validators(), &message) {
            prop_assert!(false, "{}", e);
        }
    }
}

/// What the Rust side says about a negative frame: the decoder's error, or for a publish
/// whose envelope is fine, the catalog's (as a server would answer it).
fn rust_rejection(case: &corpus::NegativeCase) -> Option<String> {
    let text = case.frame.to_string();
    match case.direction {
        Direction::ClientToServer => match decode_client_frame(&text) {
            Err(e) => Some(format!("{:?} at {:?}: {}", e.code, e.pointer, e.message)),
            Ok(ClientMessage::Publish { data, .. }) => {
                TopicEvent::decode(&data.topic, &data.payload)
                    .err()
                    .map(|e| format!("catalog: {e}"))
            }
            Ok(_) => None,
        },
        Direction::ServerToClient => decode_server_frame(&text)
            .err()
            .map(|e| format!("{:?} at {:?}: {}", e.code, e.pointer, e.message)),
    }
}

#[test]
fn negative_corpus_is_rejected_by_schema_and_decoder() {
    let v = validators();
    let mut failures = Vec::new();
    let mut explanations = Vec::new();
    for case in corpus::negative_cases() {
        let validator = match case.direction {
            Direction::ClientToServer => &v.client,
            Direction::ServerToClient => &v.server,
        };
        if validator.is_valid(&case.frame) {
            failures.push(format!(
                "{}: the schema accepts it ({})",
                case.name, case.reason
            ));
        }
        match rust_rejection(&case) {
            Some(why) => explanations.push(format!("{}: {why}", case.name)),
            None => failures.push(format!(
                "{}: the Rust decoder accepts it ({})",
                case.name, case.reason
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The decoder's errors are user-facing: snapshot them so a change in wording is reviewed.
    insta::assert_snapshot!("negative_corpus_rust_errors", explanations.join("\n"));
}

/// Frames the corpus never produces (serde writes `80`, not `80.0`; it omits absent fields) but a
/// client in another language may send. The schema and the decoder must give the same verdict on
/// each, and a server relaying them must not change what a reader sees.
#[test]
fn alternative_spellings_get_one_verdict_from_schema_and_decoder() {
    let v = validators();
    let cases: &[(&str, bool)] = &[
        // JSON Schema's `integer` is a mathematical integer, so `80.0` is one.
        (
            r#"{"type":"subscribe","data":{"topics":[{"topic":"custom.x","resumeAfter":80.0,"epoch":"e1"}]}}"#,
            true,
        ),
        (
            r#"{"type":"publish","data":{"topic":"terminals.state","payload":{"terminalId":"t","status":"exited","exitCode":1.0,"cols":80.0,"rows":24}}}"#,
            true,
        ),
        (
            r#"{"type":"subscribe","data":{"topics":[{"topic":"custom.x","resumeAfter":80.5,"epoch":"e1"}]}}"#,
            false,
        ),
        // `null` is not a spelling of an absent optional field.
        (
            r#"{"type":"publish","data":{"topic":"sessions.state","payload":{"sessionId":"s","status":"idle","title":null,"updatedAt":"2026-11-21T09:30:00Z"}}}"#,
            false,
        ),
        (r#"{"type":"ping","id":null}"#, false),
        // A ping's data is any JSON value, `null` included.
        (r#"{"type":"ping","data":null}"#, true),
        // Free-form numbers are exact doubles within 2^53-1 or refused, never rounded.
        (
            r#"{"type":"publish","data":{"topic":"custom.x","payload":[9007199254740991, -9007199254740991, 0.1]}}"#,
            true,
        ),
        (
            r#"{"type":"publish","data":{"topic":"custom.x","payload":[9007199254740992]}}"#,
            false,
        ),
        (
            r#"{"type":"ping","data":{"big":18446744073709551616}}"#,
            false,
        ),
    ];
    let mut failures = Vec::new();
    for (text, valid) in cases {
        let value: Value = serde_json::from_str(text).unwrap();
        let schema = v.client.is_valid(&value);
        let decoder = match decode_client_frame(text) {
            Ok(ClientMessage::Publish { data, .. }) => {
                TopicEvent::decode(&data.topic, &data.payload).is_ok()
            }
            Ok(_) => true,
            Err(_) => false,
        };
        if (schema, decoder) != (*valid, *valid) {
            failures.push(format!(
                "{text}: expected {valid}, schema says {schema}, decoder says {decoder}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_integer_in_the_schemas_is_json_safe() {
    fn walk(value: &Value, at: &str, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                let integer = map.get("type").is_some_and(|t| {
                    t == "integer" || t.as_array().is_some_and(|a| a.contains(&"integer".into()))
                });
                if integer {
                    let safe = 9_007_199_254_740_991_i64;
                    let min = map.get("minimum").and_then(Value::as_i64);
                    let max = map.get("maximum").and_then(Value::as_i64);
                    if !(min.is_some_and(|m| m >= -safe) && max.is_some_and(|m| m <= safe)) {
                        out.push(at.to_owned());
                    }
                }
                for (k, v) in map {
                    walk(v, &format!("{at}/{k}"), out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut unbounded = Vec::new();
    for file in [
        "client-to-server.schema.json",
        "server-to-client.schema.json",
    ] {
        walk(&schema(file), file, &mut unbounded);
    }
    for family in Family::ALL {
        let file = format!("topics/{}.schema.json", family.name());
        walk(&schema(&file), &file, &mut unbounded);
    }
    assert!(
        unbounded.is_empty(),
        "integers without JSON-safe bounds: {unbounded:?}"
    );
}

#[test]
fn schemas_have_absolute_ids_under_the_v1_base() {
    let mut files = vec![
        "client-to-server.schema.json".to_owned(),
        "server-to-client.schema.json".to_owned(),
    ];
    files.extend(
        Family::ALL
            .iter()
            .map(|f| format!("topics/{}.schema.json", f.name())),
    );
    for file in files {
        let schema = schema(&file);
        assert_eq!(
            schema["$id"],
            format!("https://rtbus.dev/schema/v1/{file}"),
            "{file}"
        );
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
    }
}
