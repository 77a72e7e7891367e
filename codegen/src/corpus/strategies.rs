//! proptest strategies for every wire type, built from the Rust types' own constructors, and
//! the deterministic samples drawn from them (the sampled part of the valid corpus).

use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, ValueTree};
use proptest::test_runner::TestRunner;
use rtbus_protocol::catalog::{
    ActivityKind, Family, FamilyShape, SessionStatus, TerminalStatus, TopicEvent, TopicSnapshot,
};
use rtbus_protocol::{
    AuthData, AuthenticatedData, ClientMessage, Delivery, Epoch, ErrorCode, ErrorData,
    MAX_SAFE_INTEGER, PublishData, PublishedData, Ratio, RequestId, Seq, ServerMessage, Start,
    SubscribeData, SubscribedData, SubscribedTopic, SubscriptionRequest, Timestamp, Topic,
    UnsubscribeData, UnsubscribedData,
};
use serde_json::Value;

use super::examples::{
    Example, client_examples, example, example_events, example_topic, json_value, server_examples,
};
use crate::Result;

/// How many property-generated messages per direction the generated TypeScript corpus holds.
pub const SAMPLES_PER_DIRECTION: usize = 24;

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
        .prop_map(|x| Ratio::new(x).unwrap_or_else(|_| Ratio::new(0.0).expect("0 lies in 0..=1")))
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
        Err(_) => Just(example_topic(family)).boxed(),
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
    let start =
        proptest::sample::select(&[Start::Snapshot, Start::Live, Start::Resumed, Start::Reset][..]);
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
    let sampled = sample(client_message(), SAMPLES_PER_DIRECTION);
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
    let sampled = sample(server_message(), SAMPLES_PER_DIRECTION);
    out.extend(
        sampled
            .into_iter()
            .enumerate()
            .map(|(i, m)| example(format!("sampled_{i}"), m)),
    );
    Ok(out)
}
