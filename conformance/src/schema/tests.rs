//! The harness's validation must give the verdict of the full published schema on every frame.

use rtbus_protocol::catalog::{
    ActivityEntry, ActivityKind, DrivePressure, Family, FamilyShape, SessionState, SessionStatus,
    TerminalState, TerminalStatus, TopicEvent, TopicSnapshot,
};
use rtbus_protocol::{
    AuthenticatedData, Delivery, Epoch, ErrorCode, ErrorData, JsonValue, MAX_SAFE_INTEGER,
    PublishedData, Ratio, RequestId, Seq, ServerMessage, Start, SubscribedData, SubscribedTopic,
    Timestamp, Topic, UnsubscribedData,
};
use serde_json::{Value, json};

use super::*;

const TIME: &str = "2026-11-21T09:30:00.125Z";

#[test]
fn accepts_good_frames_and_points_at_bad_fields() {
    let ok = r#"{"type":"event","data":{"topic":"custom.x","epoch":"e1","seq":1,"emittedAt":"2026-11-21T09:30:00.125Z","isReplay":false,"payload":1}}"#;
    assert!(check_text(ok).is_ok());
    let no_time = ok.replace(r#""emittedAt":"2026-11-21T09:30:00.125Z","#, "");
    let (_, v) = check_text(&no_time).unwrap_err();
    assert!(v.message.contains("emittedAt"), "{v}");
    let no_epoch = ok.replace(r#""epoch":"e1","#, "");
    let (_, v) = check_text(&no_epoch).unwrap_err();
    assert!(v.message.contains("epoch"), "{v}");
    let bad_epoch = ok.replace(r#""epoch":"e1""#, r#""epoch":"e.1""#);
    let (_, v) = check_text(&bad_epoch).unwrap_err();
    assert!(v.pointer.ends_with("/epoch"), "{v}");
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

#[test]
fn a_schema_the_harness_cannot_pick_branches_of_is_refused() {
    let branch = |t: &str| json!({"properties": {"type": {"const": t}}});
    let twice = json!({"oneOf": [branch("pong"), branch("pong")]});
    assert!(matches!(
        Compiled::new(&twice),
        Err(SchemaError::DuplicateType { name }) if name == "pong"
    ));
    let untyped = json!({"oneOf": [branch("pong"), {"type": "object"}]});
    let Err(e) = Compiled::new(&untyped) else {
        panic!("a branch without a `type` const compiled");
    };
    assert!(
        matches!(
            e,
            SchemaError::UntypedBranches {
                untyped: 1,
                total: 2
            }
        ),
        "{e}"
    );
    assert_eq!(e.to_string(), "1 of 2 oneOf branches name no `type` const");
    let broken = json!({"oneOf": [{"properties": {"type": {"const": "pong"}}, "minLength": -1}]});
    assert!(matches!(
        Compiled::new(&broken),
        Err(SchemaError::Compile(_))
    ));
}

#[test]
fn agrees_with_the_full_schema_on_valid_invalid_and_mutated_frames() {
    let root = server_schema();
    let reference = jsonschema::validator_for(&root).unwrap();
    let fast = Compiled::new(&root).unwrap();
    let frames = corpus();
    // Twice: the second pass takes every topic's family from the cache.
    for pass in ["first", "cached"] {
        let wrong = disagreements(&fast, &reference, &frames);
        assert!(
            wrong.is_empty(),
            "{pass} pass: {} of {} frames judged unlike the full schema, e.g.\n{}",
            wrong.len(),
            frames.len(),
            wrong[..wrong.len().min(5)].join("\n")
        );
    }
    // The corpus is only worth something if it holds both verdicts for every family and kind.
    for kind in ["snapshot", "event"] {
        for family in Family::ALL {
            let of_family: Vec<&Value> = frames
                .iter()
                .filter(|f| f["type"] == kind && topic_family(f) == Some(*family))
                .collect();
            let valid = of_family.iter().filter(|f| reference.is_valid(f)).count();
            let invalid = of_family.len() - valid;
            assert!(
                valid >= 2 && invalid >= 20,
                "{kind} frames of {}: {valid} valid, {invalid} invalid",
                family.name()
            );
        }
    }
    let valid = frames.iter().filter(|f| reference.is_valid(f)).count();
    assert!(
        valid >= 200 && frames.len() - valid >= 1000,
        "{valid} valid of {}",
        frames.len()
    );
}

#[test]
fn a_family_resolved_to_the_wrong_rules_is_caught() {
    let root = server_schema();
    let reference = jsonschema::validator_for(&root).unwrap();
    let frames = corpus();
    // Each topic judged by its neighbour family's schema.
    let mut shifted = Compiled::new(&root).unwrap();
    for kind in &mut shifted.kinds {
        if let Some(by_topic) = &mut kind.by_topic {
            by_topic.one.rotate_left(1);
        }
    }
    assert!(!disagreements(&shifted, &reference, &frames).is_empty());
    // Every topic taken for one that matches no family.
    let mut blind = Compiled::new(&root).unwrap();
    blind.patterns.clear();
    assert!(!disagreements(&blind, &reference, &frames).is_empty());
}

#[test]
fn every_rule_of_the_published_schema_is_decided_per_family() {
    let root = server_schema();
    let plan = specialize::Plan::new(&root);
    assert_eq!(
        plan.kept(),
        0,
        "the harness no longer understands a rule of the server schema; it stays correct but \
         evaluates every `if` again: teach conformance/src/schema/specialize.rs its shape"
    );
    let mut expected: Vec<String> = Family::ALL
        .iter()
        .map(|f| f.shape().topic_regex(f.name()))
        .collect();
    let mut patterns = plan.patterns().to_vec();
    expected.sort();
    patterns.sort();
    assert_eq!(patterns, expected, "one topic pattern per catalog family");
    let compiled = Compiled::new(&root).unwrap();
    let reading: Vec<&str> = compiled
        .kinds
        .iter()
        .filter(|k| k.by_topic.is_some())
        .map(|k| k.name.as_str())
        .collect();
    assert_eq!(reading, ["snapshot", "event"]);
}

#[test]
fn rules_of_other_shapes_stay_exact() {
    let mut root = server_schema();
    let all = root["allOf"].as_array_mut().unwrap();
    // Decided: a family whose pattern overlaps `custom`'s, with an `else` that tests the topic.
    all.push(json!({
        "if": {
            "properties": {"type": {"const": "event"}, "data": {"properties": {"topic": {"pattern": "^custom\\.special$"}}, "required": ["topic"]}},
            "required": ["type", "data"]
        },
        "then": {"properties": {"data": {"properties": {"payload": {"type": "string"}}}}},
        "else": {"properties": {"data": {"properties": {"topic": {"anyOf": [{"pattern": "^sessions\\.state$"}, {"not": {"pattern": "^custom\\.special"}}]}}}}}
    }));
    // Kept as written: each `if` looks at more than the type and the topic, somewhere else.
    all.extend([
        json!({
            "if": {"properties": {"id": {"const": "forbidden"}}, "required": ["id"]},
            "then": false
        }),
        json!({
            "if": {"properties": {"type": {"const": "event"}}, "maxProperties": 2},
            "then": {"properties": {"data": {"properties": {"isReplay": {"const": false}}}}}
        }),
        json!({
            "if": {"properties": {"type": {"enum": ["event", "snapshot"], "maxLength": 5}}},
            "then": {"properties": {"data": {"properties": {"seq": {"maximum": 1000}}}}}
        }),
        json!({
            "if": {
                "properties": {"type": {"const": "event"}, "data": {"properties": {"topic": {"pattern": "^drives\\.pressure$"}}, "maxProperties": 1}},
                "required": ["type", "data"]
            },
            "then": false
        }),
    ]);
    let reference = jsonschema::validator_for(&root).unwrap();
    let fast = Compiled::new(&root).unwrap();
    assert_eq!(specialize::Plan::new(&root).kept(), 4);
    let mut frames = corpus();
    let extra = frames
        .iter()
        .filter(|f| f["type"] == "event" || f["type"] == "snapshot")
        .filter(|f| reference.is_valid(f))
        .flat_map(|f| {
            let mut special = f.clone();
            special["data"]["topic"] = json!("custom.special");
            let mut text = special.clone();
            text["data"]["payload"] = json!("text");
            let mut below = f.clone();
            below["data"]["topic"] = json!("custom.special.x");
            let mut forbidden = f.clone();
            forbidden["id"] = json!("forbidden");
            let mut replay = f.clone();
            replay["id"] = json!("r");
            replay["data"]["isReplay"] = json!(true);
            let mut late = f.clone();
            late["data"]["seq"] = json!(5000);
            [special, text, below, forbidden, replay, late]
        })
        .collect::<Vec<_>>();
    frames.extend(extra);
    let wrong = disagreements(&fast, &reference, &frames);
    assert!(
        wrong.is_empty(),
        "{}",
        wrong[..wrong.len().min(5)].join("\n")
    );
    let special = |payload: Value| json!({"type": "event", "data": {"topic": "custom.special", "epoch": "e1", "seq": 1, "emittedAt": TIME, "isReplay": false, "payload": payload}});
    assert!(fast.check(&special(json!("text"))).is_ok());
    assert!(fast.check(&special(json!(1))).is_err());
}

#[test]
fn the_topic_cache_stays_bounded_and_right() {
    let compiled = Compiled::new(&server_schema()).unwrap();
    let event = |topic: &str| json!({"type": "event", "data": {"topic": topic, "epoch": "e1", "seq": 1, "emittedAt": TIME, "isReplay": false, "payload": {"drive": "/", "pressure": 0.5, "threshold": 0.9}}});
    for i in 0..TOPIC_CACHE_ENTRIES + 10 {
        let custom = format!("custom.t{i}");
        assert!(compiled.check(&event(&custom)).is_ok(), "{custom}");
        let cached = compiled.topics.read().unwrap().len();
        assert!(cached <= TOPIC_CACHE_ENTRIES, "{cached} topics cached");
    }
    // After the cache started over, families still resolve right.
    assert!(compiled.check(&event("drives.pressure")).is_ok());
    assert!(compiled.check(&event("terminals.state")).is_err());
    let long = format!("custom.{}", "x".repeat(TOPIC_CACHE_MAX_LEN));
    let before = compiled.topics.read().unwrap().len();
    assert!(
        compiled.check(&event(&long)).is_err(),
        "longer than a topic"
    );
    assert_eq!(compiled.topics.read().unwrap().len(), before);
}

/// The frames on which `fast` and `reference` disagree, described.
fn disagreements(
    fast: &Compiled,
    reference: &jsonschema::Validator,
    frames: &[Value],
) -> Vec<String> {
    frames
        .iter()
        .filter_map(|frame| {
            let expected = reference.is_valid(frame);
            let got = fast.check(frame);
            (got.is_ok() != expected)
                .then(|| format!("full schema valid={expected}, harness {got:?}: {frame}"))
        })
        .collect()
}

fn topic_family(frame: &Value) -> Option<Family> {
    let topic = Topic::new(frame.pointer("/data/topic")?.as_str()?).ok()?;
    Family::of(&topic).ok()
}

// ---- The corpus: valid frames built from the protocol's types, then broken on purpose. ----

fn topics_of(family: Family) -> Vec<Topic> {
    let name = family.name();
    let names = match family.shape() {
        FamilyShape::Exact => vec![name.to_owned()],
        FamilyShape::Keyed { .. } => vec![format!("{name}:s-42"), format!("{name}:A.b~c_d-1")],
        FamilyShape::Prefix => vec![
            format!("{name}.x"),
            format!("{name}.builds.main:k-1"),
            format!("{name}.a_b-c.0"),
        ],
    };
    names.iter().map(|n| Topic::new(n).unwrap()).collect()
}

fn events_of(family: Family) -> Vec<Value> {
    let at = || Timestamp::parse(TIME).unwrap();
    let to_value = |v: Result<Value, serde_json::Error>| v.unwrap();
    match family {
        Family::SessionsState => vec![
            to_value(serde_json::to_value(SessionState {
                session_id: "s-41".into(),
                status: SessionStatus::Running,
                title: Some("Fix the flaky test".into()),
                updated_at: at(),
            })),
            to_value(serde_json::to_value(SessionState {
                session_id: "s-42".into(),
                status: SessionStatus::Closed,
                title: None,
                updated_at: at(),
            })),
        ],
        Family::SessionsActivity => vec![
            to_value(serde_json::to_value(ActivityEntry {
                kind: ActivityKind::ToolCall,
                text: "cargo test".into(),
                at: at(),
                data: Some(JsonValue::new(json!({"tool": "shell"})).unwrap()),
            })),
            to_value(serde_json::to_value(ActivityEntry {
                kind: ActivityKind::Output,
                text: "ok".into(),
                at: at(),
                data: None,
            })),
        ],
        Family::TerminalsState => vec![
            to_value(serde_json::to_value(TerminalState {
                terminal_id: "t-1".into(),
                title: Some("htop".into()),
                status: TerminalStatus::Running,
                exit_code: None,
                cols: 120,
                rows: 40,
            })),
            to_value(serde_json::to_value(TerminalState {
                terminal_id: "t-2".into(),
                title: None,
                status: TerminalStatus::Exited,
                exit_code: Some(-1),
                cols: 80,
                rows: 24,
            })),
        ],
        Family::DrivesPressure => vec![
            to_value(serde_json::to_value(DrivePressure {
                drive: "/".into(),
                pressure: Ratio::new(0.42).unwrap(),
                threshold: Ratio::new(0.9).unwrap(),
            })),
            to_value(serde_json::to_value(DrivePressure {
                drive: "/var".into(),
                pressure: Ratio::new(1.0).unwrap(),
                threshold: Ratio::new(0.0).unwrap(),
            })),
        ],
        Family::Custom => vec![
            json!({"build": 1841, "status": "green"}),
            json!("text"),
            json!(null),
            json!([1, {"a": 2}]),
        ],
        // A family added to the catalog needs sample events here; the corpus test says so.
        #[allow(unreachable_patterns)]
        _ => Vec::new(),
    }
}

/// The empty snapshot of `family` and the one after folding its sample events.
fn snapshots_of(family: Family) -> Vec<Value> {
    let topic = &topics_of(family)[0];
    let mut snapshot = TopicSnapshot::empty(family);
    let empty = snapshot.to_value();
    for event in events_of(family) {
        snapshot.fold(&TopicEvent::decode(topic, &event).unwrap());
    }
    vec![empty, snapshot.to_value()]
}

/// Epochs of both lengths the grammar allows, and every kind of character.
fn epoch(i: u64) -> Epoch {
    let text = match i % 3 {
        0 => "e".to_owned(),
        1 => format!("{:016x}-{i:x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        _ => "A-z_09".repeat(10) + "abcd",
    };
    Epoch::new(text).unwrap()
}

fn delivery(kind: &str, topic: &Topic, seq: u64, payload: Value, id: Option<&str>) -> Value {
    let id = id.map(|i| RequestId::new(i).unwrap());
    let data = Delivery {
        topic: topic.clone(),
        epoch: epoch(seq),
        seq: Seq::new(seq).unwrap(),
        emitted_at: Timestamp::parse(TIME).unwrap(),
        is_replay: seq % 2 == 0,
        payload,
    };
    let message = match kind {
        "snapshot" => ServerMessage::Snapshot { id, data },
        _ => ServerMessage::Event { id, data },
    };
    serde_json::to_value(message).unwrap()
}

/// Valid frames of every type, and of every family for `snapshot` and `event`.
fn valid_frames() -> Vec<Value> {
    let mut out = Vec::new();
    let all_topics: Vec<Topic> = Family::ALL.iter().flat_map(|f| topics_of(*f)).collect();
    let id = |i: &str| Some(RequestId::new(i).unwrap());
    let mut messages = vec![
        ServerMessage::Authenticated {
            id: id("a1"),
            data: AuthenticatedData {
                principal: "alice".into(),
                roles: vec!["publisher".into(), "admin".into()],
            },
        },
        ServerMessage::Authenticated {
            id: None,
            data: AuthenticatedData {
                principal: "bob".into(),
                roles: vec![],
            },
        },
        ServerMessage::Subscribed {
            id: id(&"x".repeat(64)),
            data: SubscribedData {
                topics: all_topics
                    .iter()
                    .zip(
                        [Start::Snapshot, Start::Live, Start::Resumed, Start::Reset]
                            .iter()
                            .cycle(),
                    )
                    .enumerate()
                    .map(|(i, (topic, start))| SubscribedTopic {
                        topic: topic.clone(),
                        epoch: epoch(i as u64),
                        seq: Seq::new(i as u64).unwrap(),
                        start: *start,
                    })
                    .collect(),
            },
        },
        ServerMessage::Unsubscribed {
            id: None,
            data: UnsubscribedData {
                topics: vec![],
                reason: None,
            },
        },
        ServerMessage::Unsubscribed {
            id: None,
            data: UnsubscribedData {
                topics: all_topics[..2].to_vec(),
                reason: Some(ErrorCode::Forbidden),
            },
        },
        ServerMessage::Pong {
            id: id("p"),
            data: Some(JsonValue::new(json!({"any": ["thing"]})).unwrap()),
        },
        ServerMessage::Pong {
            id: None,
            data: None,
        },
    ];
    for (i, topic) in all_topics.iter().enumerate() {
        messages.push(ServerMessage::Published {
            id: id("pub"),
            data: PublishedData {
                topic: topic.clone(),
                epoch: epoch(i as u64),
                seq: Seq::new(if i % 2 == 0 { 1 } else { MAX_SAFE_INTEGER }).unwrap(),
            },
        });
    }
    for (i, code) in ErrorCode::ALL.iter().enumerate() {
        messages.push(ServerMessage::Error {
            id: if i % 2 == 0 { id("e") } else { None },
            data: ErrorData {
                code: *code,
                message: "what, where, expected".into(),
                topic: (i % 3 != 0).then(|| all_topics[i % all_topics.len()].to_string()),
            },
        });
    }
    out.extend(
        messages
            .into_iter()
            .map(|m| serde_json::to_value(m).unwrap()),
    );
    for family in Family::ALL {
        for topic in topics_of(*family) {
            for (i, payload) in events_of(*family).into_iter().enumerate() {
                let seq = [1, 2, MAX_SAFE_INTEGER][i % 3];
                out.push(delivery("event", &topic, seq, payload, None));
            }
            for payload in snapshots_of(*family) {
                out.push(delivery("snapshot", &topic, 0, payload, Some("s")));
            }
        }
    }
    out
}

/// A deterministic pseudo-random sequence (xorshift64), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Topic strings that break the grammar, belong to no family, or nearly match one.
fn odd_topics() -> Vec<String> {
    let mut out: Vec<String> = [
        "",
        "Custom.x",
        "custom",
        "custom.",
        "custom..x",
        "custom.x:",
        "custom.x:a:b",
        "custom.X",
        "custom.x\n",
        " custom.x",
        "sessions.state:k",
        "sessions.states",
        "sessions.activity",
        "sessions.activity:",
        "sessions.activity:a/b",
        "sessions.activity.x:k",
        "terminals.state.x",
        "drives.pressure:k",
        "drives",
        "unknown.family",
        "xcustom.x",
        "custom.special",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    out.push(format!("custom.{}", "x".repeat(193)));
    out.push(format!("custom.{}", "x".repeat(194)));
    out
}

fn palette() -> Vec<Value> {
    let mut out = vec![
        json!(null),
        json!(true),
        json!(false),
        json!(0),
        json!(-1),
        json!(1.5),
        json!(1.0),
        json!(MAX_SAFE_INTEGER),
        json!(MAX_SAFE_INTEGER + 1),
        json!(65536),
        json!(""),
        json!("x"),
        json!(TIME),
        json!("2026-11-21T09:30:00Z"),
        json!("2026-11-21 09:30:00Z"),
        json!("2026-11-21T09:30:00.125+01:00"),
        json!("2026-11-21T09:30:00.1234567890Z"),
        json!("2026-13-45T99:99:99Z"),
        json!({}),
        json!([]),
        json!({"extra": 1}),
        json!(["custom.x"]),
        json!("running"),
        json!("toolCall"),
        json!("bad_request"),
        json!("e.1"),
        json!("x".repeat(65)),
        json!("resumed"),
        json!("snapshot"),
        json!([{"topic": "custom.x", "epoch": "e", "seq": 0, "start": "live"}]),
    ];
    for family in Family::ALL {
        out.extend(topics_of(*family).iter().map(|t| json!(t.as_str())));
        out.extend(events_of(*family));
        out.extend(snapshots_of(*family));
    }
    out.extend(odd_topics().into_iter().map(Value::String));
    out
}

/// Every JSON pointer into `value`, the root excluded.
fn pointers(value: &Value, prefix: &str, out: &mut Vec<String>) {
    let escape = |k: &str| k.replace('~', "~0").replace('/', "~1");
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{prefix}/{}", escape(k));
                out.push(p.clone());
                pointers(v, &p, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let p = format!("{prefix}/{i}");
                out.push(p.clone());
                pointers(v, &p, out);
            }
        }
        _ => {}
    }
}

/// Sets (or with `None` removes) the value at `pointer`; returns whether it existed.
fn set(frame: &mut Value, pointer: &str, new: Option<Value>) -> bool {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return false;
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    match frame.pointer_mut(parent) {
        Some(Value::Object(map)) => match new {
            Some(v) => map.insert(last, v).is_some(),
            None => map.remove(&last).is_some(),
        },
        Some(Value::Array(items)) => match (last.parse::<usize>(), new) {
            (Ok(i), Some(v)) if i < items.len() => {
                items[i] = v;
                true
            }
            (Ok(i), None) if i < items.len() => {
                items.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// Hand-picked breakages of a valid `snapshot` or `event`: wrong timestamps, topics, `seq`,
/// unknown and missing fields, wrong `type`s and payloads of other families.
fn broken_deliveries(base: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    let mut with = |pointer: &str, new: Option<Value>| {
        let mut frame = base.clone();
        if set(&mut frame, pointer, new) || pointer.ends_with("/extra") {
            out.push(frame);
        }
    };
    for time in [
        "2026-11-21 09:30:00Z",
        "2026-11-21T09:30:00.125+01:00",
        "2026-11-21T09:30:00.1234567890Z",
        "2026-11-21T09:30:00.Z",
        "2026-13-45T99:99:99Z",
        "",
    ] {
        with("/data/emittedAt", Some(json!(time)));
    }
    for topic in odd_topics() {
        with("/data/topic", Some(json!(topic)));
    }
    for bad in [json!(7), json!(null), json!(["custom.x"])] {
        with("/data/topic", Some(bad));
    }
    for seq in [
        json!(-1),
        json!(MAX_SAFE_INTEGER + 1),
        json!(1.5),
        json!("1"),
        json!(null),
    ] {
        with("/data/seq", Some(seq));
    }
    for epoch in [
        json!(""),
        json!("e.1"),
        json!("e 1"),
        json!("x".repeat(65)),
        json!(1),
        json!(null),
    ] {
        with("/data/epoch", Some(epoch));
    }
    with("/data/isReplay", Some(json!("false")));
    with("/id", Some(json!("")));
    with("/id", Some(json!("x".repeat(65))));
    with("/id", Some(json!(7)));
    with("/id", Some(json!(null)));
    for kind in ["snapshot", "event", "evnt", "pong", "error"] {
        with("/type", Some(json!(kind)));
    }
    with("/type", Some(json!(1)));
    for pointer in [
        "/type",
        "/data",
        "/data/topic",
        "/data/epoch",
        "/data/seq",
        "/data/emittedAt",
        "/data/isReplay",
        "/data/payload",
    ] {
        with(pointer, None);
    }
    with("/extra", Some(json!(1)));
    with("/data/extra", Some(json!(1)));
    with("/data", Some(json!([])));
    with("/data", Some(json!("custom.x")));
    if let Some(Value::Object(payload)) = base.pointer("/data/payload") {
        for key in payload.keys() {
            with(&format!("/data/payload/{key}"), None);
            with(
                &format!("/data/payload/{key}"),
                Some(json!({"wrong": true})),
            );
        }
        with("/data/payload/extra", Some(json!(1)));
    }
    for family in Family::ALL {
        for payload in events_of(*family).into_iter().chain(snapshots_of(*family)) {
            with("/data/payload", Some(payload));
        }
    }
    out
}

fn mutate(rng: &mut Rng, frame: &mut Value, palette: &[Value]) {
    let mut all = Vec::new();
    pointers(frame, "", &mut all);
    match rng.below(8) {
        0..=3 if !all.is_empty() => {
            let at = rng.pick(&all).clone();
            set(frame, &at, Some(rng.pick(palette).clone()));
        }
        4 if !all.is_empty() => {
            let at = rng.pick(&all).clone();
            set(frame, &at, None);
        }
        5 => {
            let objects: Vec<String> = std::iter::once(String::new())
                .chain(all)
                .filter(|p| frame.pointer(p).is_some_and(Value::is_object))
                .collect();
            let key = rng.pick(&[
                "extra", "type", "data", "topic", "seq", "payload", "kind", "id", "title",
            ]);
            let at = format!("{}/{key}", rng.pick(&objects));
            set(frame, &at, Some(rng.pick(palette).clone()));
        }
        6 => {
            let topics: Vec<&Value> = palette.iter().filter(|v| v.is_string()).collect();
            let topic = (*rng.pick(&topics)).clone();
            set(frame, "/data/topic", Some(topic));
        }
        _ => {
            let kind = rng.pick(&[
                "authenticated",
                "subscribed",
                "unsubscribed",
                "published",
                "snapshot",
                "event",
                "error",
                "pong",
                "evnt",
            ]);
            set(frame, "/type", Some(json!(kind)));
        }
    }
}

/// Valid frames, hand-broken deliveries, payloads on other families' topics, and random
/// mutations of all of those.
fn corpus() -> Vec<Value> {
    for family in Family::ALL {
        assert!(
            !events_of(*family).is_empty(),
            "no sample event of {} in conformance/src/schema/tests.rs",
            family.name()
        );
    }
    let valid = valid_frames();
    let mut out = valid.clone();
    for family in Family::ALL {
        let topic = &topics_of(*family)[0];
        let event = delivery("event", topic, 1, events_of(*family).remove(0), None);
        let snapshot = delivery("snapshot", topic, 0, snapshots_of(*family).remove(1), None);
        out.extend(broken_deliveries(&event));
        out.extend(broken_deliveries(&snapshot));
    }
    for topic in odd_topics() {
        for frame in valid.iter().filter(|f| f.pointer("/data/topic").is_some()) {
            let mut frame = frame.clone();
            set(&mut frame, "/data/topic", Some(json!(topic)));
            out.push(frame);
        }
    }
    let palette = palette();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let seeds = out.clone();
    for seed in &seeds {
        for _ in 0..3 {
            let mut frame = seed.clone();
            for _ in 0..=rng.below(3) {
                mutate(&mut rng, &mut frame, &palette);
            }
            out.push(frame);
        }
    }
    out
}
