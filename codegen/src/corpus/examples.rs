//! Hand-written valid messages: every message type, every option, every family, with fixed
//! values (one timestamp, one epoch) so the reference renders the same examples on every run.

use rtbus_protocol::catalog::{Family, FamilyShape, TopicEvent, TopicSnapshot};
use rtbus_protocol::{
    AuthData, AuthenticatedData, ClientMessage, Delivery, Epoch, ErrorCode, ErrorData, JsonValue,
    MAX_SAFE_INTEGER, PublishData, PublishedData, RequestId, Seq, ServerMessage, Start,
    SubscribeData, SubscribedData, SubscribedTopic, SubscriptionRequest, Timestamp, Topic,
    UnsubscribeData, UnsubscribedData,
};
use serde_json::{Value, json};

use crate::{Error, Result};

/// The timestamp every hand-written example uses.
pub const EXAMPLE_TIME: &str = "2026-11-21T09:30:00.125Z";

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

pub(super) fn json_value(value: Value) -> JsonValue {
    JsonValue::new(value).expect("example values hold JSON-safe numbers")
}

fn time() -> Timestamp {
    Timestamp::parse(EXAMPLE_TIME).expect("EXAMPLE_TIME is RFC 3339 UTC")
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

pub(super) fn example<T>(name: impl Into<String>, message: T) -> Example<T> {
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
