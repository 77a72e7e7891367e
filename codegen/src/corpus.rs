//! The message corpus shared by the agreement tests and the reference's examples: hand-written
//! edge cases, proptest strategies built from the Rust types, and a negative corpus.
//!
//! The corpus is data about the protocol crate, so it lives next to the generator: the reference
//! renders its examples from it, the TypeScript check files are generated from it (and guarded by
//! the drift check like every other generated file), and the tests in `protocol/tests/` and
//! `codegen/tests/` validate it against the Rust decoder, the JSON Schemas and typify.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, ValueTree};
use proptest::test_runner::TestRunner;
use rtbus_protocol::catalog::{
    ActivityKind, Family, FamilyShape, SessionStatus, TerminalStatus, TopicEvent, TopicSnapshot,
};
use rtbus_protocol::{
    AuthData, AuthenticatedData, ClientMessage, Delivery, Epoch, ErrorCode, ErrorData, JsonValue,
    MAX_SAFE_INTEGER, PublishData, PublishedData, Ratio, RequestId, Seq, ServerMessage, Start,
    SubscribeData, SubscribedData, SubscribedTopic, SubscriptionRequest, Timestamp, Topic,
    UnsubscribeData, UnsubscribedData,
};
use serde_json::{Value, json};

use crate::json::to_pretty;
use crate::{Body, Error, GeneratedFile, Result};

/// The timestamp every hand-written example uses.
pub const EXAMPLE_TIME: &str = "2026-11-21T09:30:00.125Z";

/// How many property-generated messages per direction the generated TypeScript corpus holds.
pub const SAMPLES_PER_DIRECTION: usize = 24;

// The hand-written values below are literals that satisfy their types' rules; `expect` states
// which rule, and a wrong literal fails every test at once rather than any user input.
fn topic(name: &str) -> Topic {
    Topic::new(name).expect("example topics follow the grammar")
}

fn id(text: &str) -> Option<RequestId> {
    Some(RequestId::new(text).expect("example ids are 1 to 64 characters"))
}

fn seq(n: u64) -> Seq {
    Seq::new(n).expect("example seqs are JSON-safe")
}

/// The epoch every hand-written example uses.
pub const EXAMPLE_EPOCH: &str = "k3x9q2-1f";

fn epoch() -> Epoch {
    Epoch::new(EXAMPLE_EPOCH).expect("EXAMPLE_EPOCH is URL-safe and short")
}

fn json_value(value: Value) -> JsonValue {
    JsonValue::new(value).expect("example values hold JSON-safe numbers")
}

fn time() -> Timestamp {
    Timestamp::parse(EXAMPLE_TIME).expect("EXAMPLE_TIME is RFC 3339 UTC")
}

fn ratio(x: f64) -> Ratio {
    Ratio::new(x).expect("example ratios lie in 0..=1")
}

/// A topic of `family` used by the hand-written examples, derived from the family's shape so a
/// new family needs no entry here.
pub fn example_topic(family: Family) -> Topic {
    let name = family.name();
    match family.shape() {
        FamilyShape::Exact => topic(name),
        FamilyShape::Keyed { .. } => topic(&format!("{name}:s-42")),
        FamilyShape::Prefix => topic(&format!("{name}.builds.main")),
    }
}

/// Example events of `family`, in publication order.
pub fn example_events(family: Family) -> Vec<Value> {
    match family {
        Family::SessionsState => vec![
            json!({"sessionId": "s-41", "status": "running", "title": "Fix the flaky test", "updatedAt": EXAMPLE_TIME}),
            json!({"sessionId": "s-42", "status": "waiting", "updatedAt": EXAMPLE_TIME}),
        ],
        Family::SessionsActivity => vec![
            json!({"kind": "toolCall", "text": "cargo test", "at": EXAMPLE_TIME, "data": {"tool": "shell"}}),
            json!({"kind": "output", "text": "test result: ok. 12 passed", "at": EXAMPLE_TIME}),
        ],
        Family::TerminalsState => vec![
            json!({"terminalId": "t-1", "title": "htop", "status": "running", "cols": 120, "rows": 40}),
            json!({"terminalId": "t-2", "status": "exited", "exitCode": 1, "cols": 80, "rows": 24}),
        ],
        Family::DrivesPressure => vec![
            json!({"drive": "/", "pressure": 0.42, "threshold": 0.9}),
            json!({"drive": "/var", "pressure": 0.93, "threshold": 0.9}),
        ],
        Family::Custom => vec![
            json!({"build": 1841, "status": "green"}),
            json!({"build": 1842, "status": "red", "failed": ["lint"]}),
        ],
        // A family added to the catalog starts without examples; the corpus tests then fail
        // with "no example of <family>" until its events are added here.
        #[allow(unreachable_patterns)]
        _ => Vec::new(),
    }
}

/// The snapshot a server holds for `family` after publishing [`example_events`], computed with
/// the family's own fold rule; the event payloads decoded as the family's event type.
pub fn example_payloads(family: Family) -> Result<(Value, Vec<Value>)> {
    let topic = example_topic(family);
    let mut snapshot = TopicSnapshot::empty(family);
    let mut events = Vec::new();
    for raw in example_events(family) {
        let event = TopicEvent::decode(&topic, &raw).map_err(|e| {
            Error::Example(format!(
                "an example event in codegen/src/corpus.rs (example_events) no longer fits its \
                 family; update it to the new payload type: {e}"
            ))
        })?;
        snapshot.fold(&event);
        events.push(event.to_value());
    }
    Ok((snapshot.to_value(), events))
}

/// A named valid message.
#[derive(Debug, Clone, PartialEq)]
pub struct Example<T> {
    /// A short name, unique within its direction, usable as an identifier.
    pub name: String,
    /// The message.
    pub message: T,
}

fn example<T>(name: impl Into<String>, message: T) -> Example<T> {
    Example {
        name: name.into(),
        message,
    }
}

/// Hand-written client messages: every message type, every option, every family.
pub fn client_examples() -> Result<Vec<Example<ClientMessage>>> {
    let mut out = vec![
        example(
            "auth",
            ClientMessage::Auth {
                id: id("1"),
                data: AuthData {
                    token: "s3cr3t-token".into(),
                },
            },
        ),
        example(
            "subscribe",
            ClientMessage::Subscribe {
                id: id("2"),
                data: SubscribeData {
                    topics: vec![
                        SubscriptionRequest::new(topic("sessions.state")),
                        SubscriptionRequest {
                            snapshot: Some(false),
                            ..SubscriptionRequest::new(topic("sessions.activity:s-42"))
                        },
                        SubscriptionRequest::resume(topic("drives.pressure"), epoch(), seq(17)),
                    ],
                },
            },
        ),
        example(
            "subscribe_max_resume",
            ClientMessage::Subscribe {
                id: None,
                data: SubscribeData {
                    topics: vec![SubscriptionRequest {
                        snapshot: Some(true),
                        ..SubscriptionRequest::resume(
                            topic("custom.x"),
                            Epoch::new("A".repeat(rtbus_protocol::MAX_EPOCH_LEN))
                                .expect("64 letters make an epoch"),
                            seq(MAX_SAFE_INTEGER),
                        )
                    }],
                },
            },
        ),
        example(
            "unsubscribe",
            ClientMessage::Unsubscribe {
                id: id("3"),
                data: UnsubscribeData {
                    topics: vec![topic("sessions.activity:s-42")],
                },
            },
        ),
        example(
            "ping",
            ClientMessage::Ping {
                id: id("4"),
                data: Some(json_value(json!({"sentAt": 1_763_717_400_125_u64}))),
            },
        ),
        example(
            "ping_bare",
            ClientMessage::Ping {
                id: None,
                data: None,
            },
        ),
        example(
            "ping_longest_unicode_id",
            ClientMessage::Ping {
                id: id(&"é".repeat(rtbus_protocol::MAX_REQUEST_ID_LEN)),
                data: Some(json_value(json!("64 two-byte characters"))),
            },
        ),
        example(
            "ping_longest_id",
            ClientMessage::Ping {
                id: id(&"x".repeat(rtbus_protocol::MAX_REQUEST_ID_LEN)),
                data: Some(json_value(json!([]))),
            },
        ),
    ];
    for family in Family::ALL {
        let (_, events) = example_payloads(*family)?;
        for (i, payload) in events.into_iter().enumerate() {
            out.push(example(
                format!("publish_{}_{i}", ident(family.name())),
                ClientMessage::Publish {
                    id: id(&format!("p{i}")),
                    data: PublishData {
                        topic: example_topic(*family),
                        payload,
                    },
                },
            ));
        }
    }
    Ok(out)
}

fn subscribed(name: &str, seq_no: u64, start: Start) -> SubscribedTopic {
    SubscribedTopic {
        topic: topic(name),
        epoch: epoch(),
        seq: seq(seq_no),
        start,
    }
}

/// Hand-written server messages: every message type, every error code, and a snapshot and
/// events (live and replayed) for every family.
pub fn server_examples() -> Result<Vec<Example<ServerMessage>>> {
    let mut out = vec![
        example(
            "authenticated",
            ServerMessage::Authenticated {
                id: id("1"),
                data: AuthenticatedData {
                    principal: "ci-bot".into(),
                    roles: vec!["publisher".into()],
                },
            },
        ),
        example(
            "subscribed",
            ServerMessage::Subscribed {
                id: id("2"),
                data: SubscribedData {
                    topics: vec![
                        subscribed("sessions.state", 7, Start::Snapshot),
                        subscribed("sessions.activity:s-42", 0, Start::Live),
                        subscribed("drives.pressure", 18, Start::Resumed),
                    ],
                },
            },
        ),
        example(
            "subscribed_reset",
            ServerMessage::Subscribed {
                id: id("5"),
                data: SubscribedData {
                    topics: vec![subscribed("drives.pressure", 3, Start::Reset)],
                },
            },
        ),
        example(
            "unsubscribed",
            ServerMessage::Unsubscribed {
                id: id("3"),
                data: UnsubscribedData {
                    topics: vec![topic("sessions.activity:s-42")],
                    reason: None,
                },
            },
        ),
        example(
            "unsubscribed_by_server",
            ServerMessage::Unsubscribed {
                id: None,
                data: UnsubscribedData {
                    topics: vec![topic("sessions.activity:s-42")],
                    reason: Some(ErrorCode::Forbidden),
                },
            },
        ),
        example(
            "published",
            ServerMessage::Published {
                id: id("p0"),
                data: PublishedData {
                    topic: topic("drives.pressure"),
                    epoch: epoch(),
                    seq: seq(18),
                },
            },
        ),
        example(
            "pong",
            ServerMessage::Pong {
                id: id("4"),
                data: Some(json_value(json!({"sentAt": 1_763_717_400_125_u64}))),
            },
        ),
        example(
            "pong_bare",
            ServerMessage::Pong {
                id: None,
                data: None,
            },
        ),
    ];
    for code in ErrorCode::ALL {
        let topic = matches!(code, ErrorCode::InvalidTopic).then(|| "Sessions..state".to_owned());
        out.push(example(
            format!("error_{}", code.value()),
            ServerMessage::Error {
                id: id("7"),
                data: ErrorData {
                    code: *code,
                    message: format!("example {} error", code.value()),
                    topic,
                },
            },
        ));
    }
    for family in Family::ALL {
        let (snapshot, events) = example_payloads(*family)?;
        let name = ident(family.name());
        let topic = example_topic(*family);
        let delivery = |seq_no: u64, is_replay: bool, payload: Value| Delivery {
            topic: topic.clone(),
            epoch: epoch(),
            seq: seq(seq_no),
            emitted_at: time(),
            is_replay,
            payload,
        };
        out.push(example(
            format!("snapshot_{name}_empty"),
            ServerMessage::Snapshot {
                id: None,
                data: delivery(0, false, TopicSnapshot::empty(*family).to_value()),
            },
        ));
        out.push(example(
            format!("snapshot_{name}"),
            ServerMessage::Snapshot {
                id: None,
                data: delivery(events.len() as u64, false, snapshot),
            },
        ));
        for (i, payload) in events.into_iter().enumerate() {
            let n = i as u64 + 1;
            out.push(example(
                format!("event_{name}_{n}"),
                ServerMessage::Event {
                    id: None,
                    data: delivery(n, i == 0, payload),
                },
            ));
        }
    }
    Ok(out)
}

/// `name` as an identifier fragment: `sessions.state` → `sessions_state`.
pub fn ident(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// proptest strategies for every wire type, built from the Rust types' own constructors.
pub mod strategies {
    use super::*;

    /// A request id: 1 to 64 characters, any characters.
    pub fn request_id() -> BoxedStrategy<RequestId> {
        "\\PC{1,64}"
            .prop_filter_map("1 to 64 characters", |s| RequestId::new(s).ok())
            .boxed()
    }

    fn opt_id() -> BoxedStrategy<Option<RequestId>> {
        proptest::option::of(request_id()).boxed()
    }

    /// A sequence number anywhere in the JSON-safe range, biased to the edges.
    pub fn seq() -> BoxedStrategy<Seq> {
        prop_oneof![
            Just(0u64),
            Just(MAX_SAFE_INTEGER),
            0..=MAX_SAFE_INTEGER,
            0u64..1000
        ]
        .prop_map(|n| Seq::new(n).unwrap_or(Seq::ZERO))
        .boxed()
    }

    /// A timestamp between 1970 and 9999, millisecond precision.
    pub fn timestamp() -> BoxedStrategy<Timestamp> {
        (0u64..253_402_300_799_999)
            .prop_map(|ms| Timestamp::from_system_time(UNIX_EPOCH + Duration::from_millis(ms)))
            .boxed()
    }

    fn ratio() -> BoxedStrategy<Ratio> {
        prop_oneof![Just(0.0), Just(1.0), 0.0..=1.0f64]
            .prop_map(|x| Ratio::new(x).unwrap_or_else(|_| super::ratio(0.0)))
            .boxed()
    }

    fn text() -> BoxedStrategy<String> {
        "\\PC{0,12}".boxed()
    }

    /// Free-form JSON, with JSON-safe integers and finite numbers only.
    pub fn json() -> BoxedStrategy<Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-(MAX_SAFE_INTEGER as i64)..=MAX_SAFE_INTEGER as i64).prop_map(Value::from),
            (-1.0e9..1.0e9f64).prop_map(Value::from),
            text().prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map("[a-zA-Z_]{1,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
        .boxed()
    }

    /// A topic of `family`, drawn from the family's shape.
    pub fn topic_of(family: Family) -> BoxedStrategy<Topic> {
        let name = family.name().replace('.', "\\.");
        let pattern = match family.shape() {
            FamilyShape::Exact => name,
            FamilyShape::Keyed { .. } => format!("{name}:[A-Za-z0-9_.~-]{{1,24}}"),
            FamilyShape::Prefix => {
                format!("{name}(\\.[a-z0-9_-]{{1,8}}){{1,3}}(:[A-Za-z0-9_.~-]{{1,8}})?")
            }
        };
        match proptest::string::string_regex(&pattern) {
            Ok(strings) => strings
                .prop_filter_map("a valid topic", |s: String| Topic::new(&s).ok())
                .boxed(),
            // Family names follow the topic grammar, so the pattern always parses.
            Err(_) => Just(super::example_topic(family)).boxed(),
        }
    }

    /// Any topic of any family.
    pub fn topic() -> BoxedStrategy<Topic> {
        family().prop_flat_map(topic_of).boxed()
    }

    /// Any family of the catalog.
    pub fn family() -> BoxedStrategy<Family> {
        proptest::sample::select(Family::ALL).boxed()
    }

    /// A JSON object of the fields that are present.
    fn object(fields: Vec<(&str, Option<Value>)>) -> Value {
        Value::Object(
            fields
                .into_iter()
                .filter_map(|(k, v)| Some((k.to_owned(), v?)))
                .collect(),
        )
    }

    fn value_of<T: serde::Serialize>(value: &T) -> Value {
        // Catalog enums and scalars serialize to plain strings and numbers.
        serde_json::to_value(value).unwrap_or(Value::Null)
    }

    /// An event payload of `family`, as JSON with the field names of the family's event type.
    ///
    /// Payloads are built as JSON rather than struct literals so a field added to a payload
    /// type does not stop the generator from compiling: the agreement tests then report which
    /// sampled payloads no longer decode. A new family falls back to its hand-written examples.
    pub fn event_of(family: Family) -> BoxedStrategy<Value> {
        match family {
            Family::SessionsState => (
                text(),
                proptest::sample::select(vec![
                    SessionStatus::Starting,
                    SessionStatus::Running,
                    SessionStatus::Waiting,
                    SessionStatus::Idle,
                    SessionStatus::Completed,
                    SessionStatus::Failed,
                    SessionStatus::Closed,
                ]),
                proptest::option::of(text()),
                timestamp(),
            )
                .prop_map(|(session_id, status, title, updated_at)| {
                    object(vec![
                        ("sessionId", Some(session_id.into())),
                        ("status", Some(value_of(&status))),
                        ("title", title.map(Value::from)),
                        ("updatedAt", Some(value_of(&updated_at))),
                    ])
                })
                .boxed(),
            Family::SessionsActivity => (
                proptest::sample::select(vec![
                    ActivityKind::Message,
                    ActivityKind::ToolCall,
                    ActivityKind::ToolResult,
                    ActivityKind::Status,
                    ActivityKind::Output,
                ]),
                text(),
                timestamp(),
                proptest::option::of(json()),
            )
                .prop_map(|(kind, text, at, data)| {
                    object(vec![
                        ("kind", Some(value_of(&kind))),
                        ("text", Some(text.into())),
                        ("at", Some(value_of(&at))),
                        // `null` would read back as an absent field.
                        ("data", data.filter(|d| !d.is_null())),
                    ])
                })
                .boxed(),
            Family::TerminalsState => (
                text(),
                proptest::option::of(text()),
                proptest::sample::select(vec![
                    TerminalStatus::Running,
                    TerminalStatus::Exited,
                    TerminalStatus::Closed,
                ]),
                proptest::option::of(any::<i32>()),
                any::<u16>(),
                any::<u16>(),
            )
                .prop_map(|(terminal_id, title, status, exit_code, cols, rows)| {
                    object(vec![
                        ("terminalId", Some(terminal_id.into())),
                        ("title", title.map(Value::from)),
                        ("status", Some(value_of(&status))),
                        ("exitCode", exit_code.map(Value::from)),
                        ("cols", Some(cols.into())),
                        ("rows", Some(rows.into())),
                    ])
                })
                .boxed(),
            Family::DrivesPressure => (text(), ratio(), ratio())
                .prop_map(|(drive, pressure, threshold)| {
                    object(vec![
                        ("drive", Some(drive.into())),
                        ("pressure", Some(value_of(&pressure))),
                        ("threshold", Some(value_of(&threshold))),
                    ])
                })
                .boxed(),
            Family::Custom => json(),
            #[allow(unreachable_patterns)]
            _ => {
                let examples = example_events(family);
                if examples.is_empty() {
                    // Fails the agreement tests, which ask for examples of the new family.
                    Just(Value::Null).boxed()
                } else {
                    proptest::sample::select(examples).boxed()
                }
            }
        }
    }

    /// A snapshot payload of `family`: the family's empty state with random events folded in
    /// by the family's own fold rule, exactly as a server builds it.
    pub fn snapshot_of(family: Family) -> BoxedStrategy<Value> {
        (
            topic_of(family),
            proptest::collection::vec(event_of(family), 0..6),
        )
            .prop_map(move |(topic, events)| {
                let mut snapshot = TopicSnapshot::empty(family);
                for raw in events {
                    if let Ok(event) = TopicEvent::decode(&topic, &raw) {
                        snapshot.fold(&event);
                    }
                }
                snapshot.to_value()
            })
            .boxed()
    }

    /// Any epoch.
    pub fn epoch() -> BoxedStrategy<Epoch> {
        "[A-Za-z0-9_-]{1,64}"
            .prop_filter_map("epochs are URL-safe", |s| Epoch::new(s).ok())
            .boxed()
    }

    fn subscribed_topic() -> BoxedStrategy<SubscribedTopic> {
        let start = proptest::sample::select(
            &[Start::Snapshot, Start::Live, Start::Resumed, Start::Reset][..],
        );
        (topic(), epoch(), seq(), start)
            .prop_map(|(topic, epoch, seq, start)| SubscribedTopic {
                topic,
                epoch,
                seq,
                start,
            })
            .boxed()
    }

    /// Any client message.
    pub fn client_message() -> BoxedStrategy<ClientMessage> {
        let request = (
            topic(),
            proptest::option::of(any::<bool>()),
            proptest::option::of((epoch(), seq())),
        )
            .prop_map(|(topic, snapshot, resume)| SubscriptionRequest {
                topic,
                snapshot,
                resume_after: resume.as_ref().map(|(_, seq)| *seq),
                epoch: resume.map(|(epoch, _)| epoch),
            });
        prop_oneof![
            (opt_id(), text()).prop_map(|(id, token)| ClientMessage::Auth {
                id,
                data: AuthData { token }
            }),
            (opt_id(), proptest::collection::vec(request, 1..4)).prop_map(|(id, topics)| {
                ClientMessage::Subscribe {
                    id,
                    data: SubscribeData { topics },
                }
            }),
            (opt_id(), proptest::collection::vec(topic(), 1..4)).prop_map(|(id, topics)| {
                ClientMessage::Unsubscribe {
                    id,
                    data: UnsubscribeData { topics },
                }
            }),
            (
                opt_id(),
                family().prop_flat_map(|f| (topic_of(f), event_of(f)))
            )
                .prop_map(|(id, (topic, payload))| ClientMessage::Publish {
                    id,
                    data: PublishData { topic, payload },
                }),
            (opt_id(), proptest::option::of(json())).prop_map(|(id, data)| ClientMessage::Ping {
                id,
                data: data.map(json_value),
            }),
        ]
        .boxed()
    }

    fn delivery(snapshot: bool) -> BoxedStrategy<Delivery> {
        family()
            .prop_flat_map(move |f| {
                let payload = if snapshot {
                    snapshot_of(f)
                } else {
                    event_of(f)
                };
                (
                    topic_of(f),
                    epoch(),
                    seq(),
                    timestamp(),
                    any::<bool>(),
                    payload,
                )
            })
            .prop_map(
                move |(topic, epoch, seq, emitted_at, is_replay, payload)| Delivery {
                    topic,
                    epoch,
                    seq,
                    emitted_at,
                    is_replay: is_replay && !snapshot,
                    payload,
                },
            )
            .boxed()
    }

    /// Any server message.
    pub fn server_message() -> BoxedStrategy<ServerMessage> {
        prop_oneof![
            (opt_id(), text(), proptest::collection::vec(text(), 0..3)).prop_map(
                |(id, principal, roles)| ServerMessage::Authenticated {
                    id,
                    data: AuthenticatedData { principal, roles },
                }
            ),
            (
                opt_id(),
                proptest::collection::vec(subscribed_topic(), 0..4)
            )
                .prop_map(|(id, topics)| ServerMessage::Subscribed {
                    id,
                    data: SubscribedData { topics },
                }),
            (
                opt_id(),
                proptest::collection::vec(topic(), 0..4),
                proptest::option::of(proptest::sample::select(ErrorCode::ALL))
            )
                .prop_map(|(id, topics, reason)| ServerMessage::Unsubscribed {
                    id,
                    data: UnsubscribedData { topics, reason },
                }),
            (opt_id(), topic(), epoch(), seq()).prop_map(|(id, topic, epoch, seq)| {
                ServerMessage::Published {
                    id,
                    data: PublishedData { topic, epoch, seq },
                }
            }),
            (opt_id(), delivery(true)).prop_map(|(id, data)| ServerMessage::Snapshot { id, data }),
            (opt_id(), delivery(false)).prop_map(|(id, data)| ServerMessage::Event { id, data }),
            (
                opt_id(),
                proptest::sample::select(ErrorCode::ALL),
                text(),
                proptest::option::of(text())
            )
                .prop_map(|(id, code, message, topic)| ServerMessage::Error {
                    id,
                    data: ErrorData {
                        code,
                        message,
                        topic,
                    },
                }),
            (opt_id(), proptest::option::of(json())).prop_map(|(id, data)| ServerMessage::Pong {
                id,
                data: data.map(json_value),
            }),
        ]
        .boxed()
    }
}

/// `count` values drawn from `strategy` with proptest's deterministic runner: the same values
/// on every run and machine, so files generated from them are stable.
pub fn sample<T: std::fmt::Debug>(strategy: BoxedStrategy<T>, count: usize) -> Vec<T> {
    let mut runner = TestRunner::deterministic();
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        if let Ok(tree) = strategy.new_tree(&mut runner) {
            out.push(tree.current());
        }
    }
    out
}

/// Every valid client message of the corpus: the hand-written ones, then deterministic samples.
pub fn client_corpus() -> Result<Vec<Example<ClientMessage>>> {
    let mut out = client_examples()?;
    let sampled = sample(strategies::client_message(), SAMPLES_PER_DIRECTION);
    out.extend(
        sampled
            .into_iter()
            .enumerate()
            .map(|(i, m)| example(format!("sampled_{i}"), m)),
    );
    Ok(out)
}

/// Every valid server message of the corpus: the hand-written ones, then deterministic samples.
pub fn server_corpus() -> Result<Vec<Example<ServerMessage>>> {
    let mut out = server_examples()?;
    let sampled = sample(strategies::server_message(), SAMPLES_PER_DIRECTION);
    out.extend(
        sampled
            .into_iter()
            .enumerate()
            .map(|(i, m)| example(format!("sampled_{i}"), m)),
    );
    Ok(out)
}

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

const TS_CORPUS_DIR: &str = "codegen/typescript-check/corpus";

/// The imports both corpus files start with.
const TS_IMPORTS: &str = "import type { ClientMessage, ServerMessage, SnapshotData, EventData } from \"../../../generated/typescript\";\n\n";

const VALID_NOTE: &str = "Every message of the valid corpus, as serialized by Rust, must type-check. Snapshots and \
    events are also checked against the payload type their topic selects.";

const NEGATIVE_NOTE: &str = "Every negative case TypeScript can express must fail to type-check: each assignment \
    carries `@ts-expect-error`, so tsc reports an error if the generated types stop rejecting it.";

fn ts_literal(value: &Value) -> Result<String> {
    Ok(to_pretty(value)?.trim_end().to_owned())
}

/// One line, because `@ts-expect-error` covers only the line after it.
fn ts_inline(value: &Value) -> Result<String> {
    serde_json::to_string(&crate::json::canonical(value)).map_err(|source| Error::Json {
        what: "a negative case".into(),
        source,
    })
}

fn message_value<T: serde::Serialize>(message: &T, name: &str) -> Result<Value> {
    serde_json::to_value(message).map_err(|source| Error::Json {
        what: format!("corpus message {name}"),
        source,
    })
}

/// The corpus as TypeScript: every valid message must type-check, and every negative case that
/// TypeScript can express must fail to (`// @ts-expect-error`, so `tsc` fails when an expected
/// error disappears).
pub fn typescript_corpus() -> Result<Vec<GeneratedFile>> {
    let mut valid = String::from(TS_IMPORTS);
    let mut exports = Vec::new();
    for (direction, examples) in [
        ("client", message_values(client_corpus()?)?),
        ("server", message_values(server_corpus()?)?),
    ] {
        let ty = if direction == "client" {
            "ClientMessage"
        } else {
            "ServerMessage"
        };
        for (name, value) in examples {
            let var = format!("{direction}_{name}");
            let _ = writeln!(valid, "const {var}: {ty} = {};\n", ts_literal(&value)?);
            exports.push(var.clone());
            let kind = value.get("type").and_then(Value::as_str);
            if let (Some(kind @ ("snapshot" | "event")), Some(data), Some(topic)) = (
                kind,
                value.get("data"),
                value.pointer("/data/topic").and_then(Value::as_str),
            ) {
                let helper = if kind == "snapshot" {
                    "SnapshotData"
                } else {
                    "EventData"
                };
                let typed = format!("{var}_typed");
                let _ = writeln!(
                    valid,
                    "const {typed}: {helper}<{}> = {};\n",
                    serde_json::to_string(topic).unwrap_or_default(),
                    ts_literal(data)?
                );
                exports.push(typed);
            }
        }
    }
    let _ = writeln!(
        valid,
        "export const corpus = [\n  {},\n];",
        exports.join(",\n  ")
    );

    let mut negative = String::from(TS_IMPORTS);
    let mut names = Vec::new();
    for case in negative_cases() {
        let ty = match case.direction {
            Direction::ClientToServer => "ClientMessage",
            Direction::ServerToClient => "ServerMessage",
        };
        let var = format!("negative_{}", case.name);
        match &case.ts {
            TsCheck::Frame => {
                let _ = writeln!(
                    negative,
                    "// {}\n// @ts-expect-error {}\nconst {var}: {ty} = {};\n",
                    case.reason,
                    case.name,
                    ts_inline(&case.frame)?
                );
            }
            TsCheck::Data(data_type) => {
                let data = case.frame.get("data").cloned().unwrap_or(Value::Null);
                let _ = writeln!(
                    negative,
                    "// {}\n// @ts-expect-error {}\nconst {var}: {data_type} = {};\n",
                    case.reason,
                    case.name,
                    ts_inline(&data)?
                );
            }
            TsCheck::Inexpressible(why) => {
                let _ = writeln!(negative, "// {}: not checked here; {why}.\n", case.name);
                continue;
            }
        }
        names.push(var);
    }
    let _ = writeln!(
        negative,
        "export const negatives = [\n  {},\n];",
        names.join(",\n  ")
    );

    Ok(vec![
        GeneratedFile::new(
            format!("{TS_CORPUS_DIR}/valid.ts"),
            Body::text(valid).note(VALID_NOTE),
        )?,
        GeneratedFile::new(
            format!("{TS_CORPUS_DIR}/negative.ts"),
            Body::text(negative).note(NEGATIVE_NOTE),
        )?,
    ])
}

fn message_values<T: serde::Serialize>(examples: Vec<Example<T>>) -> Result<Vec<(String, Value)>> {
    examples
        .into_iter()
        .map(|e| Ok((e.name.clone(), message_value(&e.message, &e.name)?)))
        .collect()
}

/// typify 0.6 reads draft-07 style `definitions`, not 2020-12 `$defs`, and does not understand
/// the `if`/`then` payload rules. This produces a mechanically converted copy of each direction
/// schema for it: `$defs` renamed to `definitions` (and every `$ref` with it), the `allOf` of
/// payload rules dropped, and `format: date-time` removed where a `pattern` already constrains
/// the string (typify 0.6 emits conflicting impls for the pair, and would need chrono).
/// Everything else is the published schema unchanged.
pub fn typify_input() -> Result<Vec<GeneratedFile>> {
    let mut files = Vec::new();
    for file in crate::schema::generate()? {
        let Some(name) = file
            .path()
            .strip_prefix("generated/schema/")
            .filter(|n| !n.contains('/'))
        else {
            continue;
        };
        let mut value: Value =
            serde_json::from_str(file.contents()).map_err(|source| Error::Json {
                what: file.path().to_owned(),
                source,
            })?;
        if let Some(map) = value.as_object_mut() {
            map.remove("$comment");
            map.remove("allOf");
            if let Some(mut defs) = map.remove("$defs") {
                // typify 0.6 reads the bounded-number branch as `f64` and would turn `1` into
                // `1.0` on the way back; any value it round-trips exactly is enough here.
                if let Some(safe) = defs.get_mut("SafeJsonValue") {
                    *safe = json!({"description": "Any JSON value (bounds checked by the real schema)."});
                }
                map.insert("definitions".into(), defs);
            }
        }
        drop_date_time_format(&mut value);
        rename_defs_refs(&mut value);
        let note = format!(
            "A copy of generated/schema/{name} for typify 0.6: $defs renamed to \
             definitions, the allOf of topic payload rules removed, format date-time removed beside a pattern, SafeJsonValue any value."
        );
        files.push(GeneratedFile::new(
            format!("codegen/tests/typify/{name}"),
            Body::json(value).note(note),
        )?);
    }
    Ok(files)
}

/// Every `$ref` into `$defs` pointed at `definitions` instead.
fn rename_defs_refs(value: &mut Value) {
    match value {
        Value::String(text) => {
            if let Some(rest) = text.strip_prefix("#/$defs/") {
                *text = format!("#/definitions/{rest}");
            }
        }
        Value::Object(map) => map.values_mut().for_each(rename_defs_refs),
        Value::Array(items) => items.iter_mut().for_each(rename_defs_refs),
        _ => {}
    }
}

fn drop_date_time_format(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.contains_key("pattern") && map.get("format") == Some(&json!("date-time")) {
                map.remove("format");
            }
            map.values_mut().for_each(drop_date_time_format);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_date_time_format),
        _ => {}
    }
}
