//! No input reaches a panic in the decoders, and every rejection says where and what: arbitrary
//! text, arbitrary JSON, and valid frames with one value replaced.
//!
//! The corpus of valid and negative messages (and its agreement with the generated schemas and
//! TypeScript) is tested in `codegen/tests/`, next to the generator that publishes it.

use proptest::prelude::*;
use rtbus_protocol::{ErrorCode, FrameError, decode_client_frame, decode_server_frame};
use serde_json::{Value, json};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,10}".prop_map(Value::from),
        prop_oneof![
            Just("auth"),
            Just("subscribe"),
            Just("publish"),
            Just("event"),
            Just("snapshot"),
            Just("sessions.state"),
            Just("custom.x"),
            Just("Bad..Topic"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("type".to_owned()),
                    Just("id".to_owned()),
                    Just("data".to_owned()),
                    Just("topic".to_owned()),
                    Just("topics".to_owned()),
                    Just("payload".to_owned()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A rejection must name a code, carry a readable message, and point into the frame.
fn well_formed(err: &FrameError) -> Result<(), String> {
    if err.message.trim().is_empty() {
        return Err(format!("empty message: {err:?}"));
    }
    if !(err.pointer.is_empty() || err.pointer.starts_with('/')) {
        return Err(format!("pointer {:?} is not a JSON pointer", err.pointer));
    }
    if err.code == ErrorCode::InvalidTopic && err.topic.is_none() {
        return Err(format!("invalid_topic without the topic: {err:?}"));
    }
    Ok(())
}

const VALID: &[&str] = &[
    r#"{"type":"subscribe","id":"1","data":{"topics":[{"topic":"sessions.state","resumeAfter":3,"epoch":"e1"}]}}"#,
    r#"{"type":"publish","id":"2","data":{"topic":"drives.pressure","payload":{"drive":"/","pressure":0.5,"threshold":0.9}}}"#,
    r#"{"type":"event","data":{"topic":"sessions.activity:a","epoch":"e1","seq":1,"emittedAt":"2026-11-21T09:30:00.125Z","isReplay":false,"payload":{"kind":"output","text":"x","at":"2026-11-21T09:30:00Z"}}}"#,
];

/// Every (pointer, value) position of `value`, so one can be replaced.
fn positions(value: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                positions(v, format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                positions(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,64}") {
        let errors = [decode_client_frame(&text).err(), decode_server_frame(&text).err()];
        for err in errors.into_iter().flatten() {
            prop_assert!(well_formed(&err).is_ok(), "{:?}", well_formed(&err));
        }
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        let text = value.to_string();
        let errors = [decode_client_frame(&text).err(), decode_server_frame(&text).err()];
        for err in errors.into_iter().flatten() {
            prop_assert!(well_formed(&err).is_ok(), "{:?}", well_formed(&err));
        }
    }

    #[test]
    fn valid_frames_with_one_value_replaced_never_panic(
        which in 0..VALID.len(),
        pick in any::<prop::sample::Index>(),
        replacement in json_value(),
    ) {
        let mut frame: Value = serde_json::from_str(VALID[which]).unwrap();
        let mut places = Vec::new();
        positions(&frame, String::new(), &mut places);
        let place = pick.get(&places).clone();
        if let Some(slot) = frame.pointer_mut(&place) {
            *slot = replacement;
        }
        let text = frame.to_string();
        let errors = [decode_client_frame(&text).err(), decode_server_frame(&text).err()];
        for err in errors.into_iter().flatten() {
            prop_assert!(well_formed(&err).is_ok(), "{:?}", well_formed(&err));
        }
    }
}

#[test]
fn the_valid_seeds_decode() {
    assert!(decode_client_frame(VALID[0]).is_ok());
    assert!(decode_client_frame(VALID[1]).is_ok());
    assert!(decode_server_frame(VALID[2]).is_ok());
    // And a replaced value is reported at its place.
    let mut frame: Value = serde_json::from_str(VALID[0]).unwrap();
    frame["data"]["topics"][0]["topic"] = json!("Bad..Topic");
    let err = decode_client_frame(&frame.to_string()).unwrap_err();
    assert_eq!(
        (err.code, err.pointer.as_str()),
        (ErrorCode::InvalidTopic, "/data/topics/0/topic")
    );
}
