//! The published schemas alone are enough to rebuild the protocol: Rust types generated from
//! them by typify accept and round-trip every message of the corpus.
//!
//! typify 0.6 reads draft-07 `definitions`, so it is fed `tests/typify/*.schema.json`: copies of
//! the direction schemas with `$defs` renamed to `definitions` and the `allOf` of topic payload
//! rules removed (typify cannot express them). The copies are generated and drift-checked like
//! every other generated file.

use rtbus_codegen::corpus;
use serde_json::Value;

mod client {
    typify::import_types!(schema = "tests/typify/client-to-server.schema.json");
}

mod server {
    typify::import_types!(schema = "tests/typify/server-to-client.schema.json");
}

/// Parses `value` as `T` and serializes it back; the result must equal the input.
fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(
    value: &Value,
) -> Result<(), String> {
    let parsed: T = serde_json::from_value(value.clone()).map_err(|e| format!("rejected: {e}"))?;
    let back = serde_json::to_value(&parsed).map_err(|e| format!("cannot serialize: {e}"))?;
    if &back != value {
        return Err(format!("changed to {back}"));
    }
    Ok(())
}

#[test]
fn typify_types_accept_and_round_trip_the_corpus() {
    let mut failures = Vec::new();
    for case in corpus::client_corpus().unwrap() {
        let value = serde_json::to_value(&case.message).unwrap();
        if let Err(e) = round_trip::<client::ClientMessage>(&value) {
            failures.push(format!("client/{} {value}: {e}", case.name));
        }
    }
    for case in corpus::server_corpus().unwrap() {
        let value = serde_json::to_value(&case.message).unwrap();
        if let Err(e) = round_trip::<server::ServerMessage>(&value) {
            failures.push(format!("server/{} {value}: {e}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Negative cases the typify 0.6 types accept although the schema rejects them, each with the
/// reason. The test fails if an entry stops applying, so the list only shrinks.
const TYPIFY_GAPS: &[(&str, &str)] = &[
    (
        "subscribe_no_topics",
        "typify 0.6 does not enforce minItems",
    ),
    (
        "resume_after_unsafe",
        "typify 0.6 does not enforce the integer's `maximum: 2^53-1`",
    ),
    (
        "resume_after_negative",
        "typify 0.6 does not enforce the integer's `minimum: 0`",
    ),
    (
        "event_seq_unsafe",
        "typify 0.6 does not enforce the integer's `maximum: 2^53-1`",
    ),
    (
        "resume_after_without_epoch",
        "typify 0.6 ignores `dependentRequired`",
    ),
    (
        "epoch_without_resume_after",
        "typify 0.6 ignores `dependentRequired`",
    ),
    (
        "id_null",
        "typify 0.6 makes an optional field an `Option`, which serde reads from `null`",
    ),
    (
        "subscribe_snapshot_null",
        "typify 0.6 makes an optional field an `Option`, which serde reads from `null`",
    ),
];

#[test]
fn typify_types_reject_envelope_errors_of_the_negative_corpus() {
    // The payload rules were removed from typify's copy, so only the envelope-level cases apply:
    // those the schema rejects without its `allOf`. Each must be rejected by the typify types.
    let client_schema: Value =
        serde_json::from_str(include_str!("typify/client-to-server.schema.json")).unwrap();
    let server_schema: Value =
        serde_json::from_str(include_str!("typify/server-to-client.schema.json")).unwrap();
    let envelope_client = jsonschema::validator_for(&client_schema).unwrap();
    let envelope_server = jsonschema::validator_for(&server_schema).unwrap();
    let mut checked = 0;
    let mut failures = Vec::new();
    for case in corpus::negative_cases() {
        let (envelope, parsed) = match case.direction {
            corpus::Direction::ClientToServer => (
                &envelope_client,
                serde_json::from_value::<client::ClientMessage>(case.frame.clone()).is_ok(),
            ),
            corpus::Direction::ServerToClient => (
                &envelope_server,
                serde_json::from_value::<server::ServerMessage>(case.frame.clone()).is_ok(),
            ),
        };
        if envelope.is_valid(&case.frame) {
            continue; // a payload-rule case: out of typify's reach
        }
        checked += 1;
        let known_gap = TYPIFY_GAPS.iter().any(|(name, _)| *name == case.name);
        if parsed != known_gap {
            failures.push(format!(
                "{}: typify types {} it ({}); update TYPIFY_GAPS",
                case.name,
                if parsed { "accept" } else { "reject" },
                case.reason
            ));
        }
    }
    assert!(
        checked >= 20,
        "only {checked} envelope-level negative cases"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
