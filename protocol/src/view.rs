//! A borrowed, zero-copy view of a server frame: the envelope fields a hot receive path reads
//! (`type`, `id`, and from `data`: `topic`, `epoch`, `seq`, `isReplay`, `payload`) without
//! decoding, validating or copying the rest.
//!
//! [`decode_server_frame`](crate::decode_server_frame) is the full check: every field typed,
//! unknown fields rejected, the payload checked against its topic family. A client that reads
//! tens of thousands of frames a second (a load generator) cannot afford it on every frame, and
//! reads this view instead, decoding fully only a sample. The view is declared here, beside the
//! owned envelope, so that the field names are written once; a test reads every kind of owned
//! [`ServerMessage`](crate::ServerMessage) back through the view.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, de::value::MapAccessDeserializer};

/// The fields of a server frame a receive loop reads, borrowed from the frame's text where it
/// holds them unescaped. `P` is what the payload is read as: [`IgnoredAny`] (the default) skips
/// it, `serde_json::Value` takes all of it, and a small struct of the caller's reads the few
/// fields it needs.
///
/// The view checks nothing beyond the types of the fields it reads: a frame it reads may still
/// be invalid. Fields the frame's `type` does not have are `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerFrameView<'a, P = IgnoredAny> {
    /// The frame's `type`, e.g. `event`.
    pub kind: Cow<'a, str>,
    /// The request `id` the frame answers, when it has one.
    pub id: Option<Cow<'a, str>>,
    /// The fields of `data`: `None` when the frame has no `data`, and always for `pong`, whose
    /// `data` is the ping's (any JSON value), not the server's.
    pub data: Option<DataView<'a, P>>,
}

/// The fields of a server frame's `data` that a receive loop reads.
///
/// What each means depends on the frame's `type`: `topic`, `epoch` and `seq` of a `published`,
/// `snapshot` or `event`; `isReplay` and `payload` of a `snapshot` or `event`; the `topic` of an
/// `error` is the topic as the client sent it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataView<'a, P = IgnoredAny> {
    /// The topic.
    #[serde(default, borrow, deserialize_with = "optional_text")]
    pub topic: Option<Cow<'a, str>>,
    /// The topic's epoch.
    #[serde(default, borrow, deserialize_with = "optional_text")]
    pub epoch: Option<Cow<'a, str>>,
    /// The per-topic sequence number.
    #[serde(default)]
    pub seq: Option<u64>,
    /// Whether the event is re-sent because a subscription resumed.
    #[serde(default)]
    pub is_replay: Option<bool>,
    /// The payload, read as `P`.
    pub payload: Option<P>,
}

impl<'a, P: Deserialize<'a>> ServerFrameView<'a, P> {
    /// Reads the view of one server frame's text.
    pub fn parse(text: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// A string borrowed from the input when it has no escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// An optional string, borrowed when it has no escapes. (`#[serde(borrow)]` on an
/// `Option<Cow<str>>` field does not reach the `Cow`, which then always copies.)
fn optional_text<'de: 'a, 'a, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Cow<'a, str>>, D::Error> {
    Option::<Text<'a>>::deserialize(deserializer).map(|text| text.map(|t| t.0))
}

/// The envelope's keys; any other is skipped.
#[derive(Deserialize)]
#[serde(field_identifier)]
enum Key {
    #[serde(rename = "type")]
    Type,
    #[serde(rename = "id")]
    Id,
    #[serde(rename = "data")]
    Data,
    #[serde(other)]
    Other,
}

impl<'de: 'a, 'a, P: Deserialize<'de>> Deserialize<'de> for ServerFrameView<'a, P> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FrameVisitor(PhantomData))
    }
}

struct FrameVisitor<'a, P>(PhantomData<(&'a (), P)>);

impl<'de: 'a, 'a, P: Deserialize<'de>> Visitor<'de> for FrameVisitor<'a, P> {
    type Value = ServerFrameView<'a, P>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a server frame: an object with a `type`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut kind: Option<Cow<'a, str>> = None;
        let mut id = None;
        let mut data = None;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Type => kind = Some(map.next_value::<Text<'a>>()?.0),
                Key::Id => id = map.next_value::<Option<Text<'a>>>()?.map(|t| t.0),
                // A pong's data is the ping's, anything at all: never read as the server's.
                Key::Data if kind.as_deref() == Some("pong") => {
                    map.next_value::<IgnoredAny>()?;
                }
                // Servers send `type` first; then `data` is an object (or the frame is invalid).
                Key::Data if kind.is_some() => {
                    data = map.next_value::<Option<DataView<'a, P>>>()?
                }
                Key::Data => data = map.next_value::<LenientData<'a, P>>()?.0,
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let kind = kind.ok_or_else(|| de::Error::missing_field("type"))?;
        if kind == "pong" {
            // `data` came before `type`.
            data = None;
        }
        Ok(ServerFrameView { kind, id, data })
    }
}

/// `data` that came before `type`: read as a [`DataView`] when it is an object, and as nothing
/// otherwise, since it may turn out to be a `pong`'s (any JSON value).
struct LenientData<'a, P>(Option<DataView<'a, P>>);

impl<'de: 'a, 'a, P: Deserialize<'de>> Deserialize<'de> for LenientData<'a, P> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DataVisitor(PhantomData))
    }
}

struct DataVisitor<'a, P>(PhantomData<(&'a (), P)>);

impl<'de: 'a, 'a, P: Deserialize<'de>> Visitor<'de> for DataVisitor<'a, P> {
    type Value = LenientData<'a, P>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        DataView::deserialize(MapAccessDeserializer::new(map)).map(|d| LenientData(Some(d)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(LenientData(None))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(LenientData(None))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(LenientData(None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(LenientData(None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(LenientData(None))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(LenientData(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(LenientData(None))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::{
        AuthenticatedData, Delivery, Epoch, ErrorCode, ErrorData, JsonValue, PublishedData,
        RequestId, Seq, ServerMessage, Start, SubscribedData, SubscribedTopic, Timestamp, Topic,
        UnsubscribedData,
    };

    /// What the view must read from `message`'s text, taken from the owned message itself. Every
    /// variant and every data struct is destructured in full, so a new kind of frame or a new
    /// field fails to compile here until the view has been considered for it.
    fn expected(message: &ServerMessage) -> ServerFrameView<'static, Value> {
        let owned = |s: &str| Some(Cow::Owned(s.to_owned()));
        let id = message.id().and_then(|id| owned(id.as_str()));
        let none = DataView {
            topic: None,
            epoch: None,
            seq: None,
            is_replay: None,
            payload: None,
        };
        let data = match message {
            ServerMessage::Authenticated {
                id: _,
                data:
                    AuthenticatedData {
                        principal: _,
                        roles: _,
                    },
            }
            | ServerMessage::Subscribed {
                id: _,
                data: SubscribedData { topics: _ },
            }
            | ServerMessage::Unsubscribed {
                id: _,
                data:
                    UnsubscribedData {
                        topics: _,
                        reason: _,
                    },
            } => Some(none),
            ServerMessage::Published {
                id: _,
                data: PublishedData { topic, epoch, seq },
            } => Some(DataView {
                topic: owned(topic.as_str()),
                epoch: owned(epoch.as_str()),
                seq: Some(seq.get()),
                ..none
            }),
            ServerMessage::Snapshot { id: _, data } | ServerMessage::Event { id: _, data } => {
                let Delivery {
                    topic,
                    epoch,
                    seq,
                    emitted_at: _,
                    is_replay,
                    payload,
                } = data;
                Some(DataView {
                    topic: owned(topic.as_str()),
                    epoch: owned(epoch.as_str()),
                    seq: Some(seq.get()),
                    is_replay: Some(*is_replay),
                    payload: Some(payload.clone()),
                })
            }
            ServerMessage::Error {
                id: _,
                data:
                    ErrorData {
                        code: _,
                        message: _,
                        topic,
                    },
            } => Some(DataView {
                topic: topic.as_deref().and_then(owned),
                ..none
            }),
            ServerMessage::Pong { id: _, data: _ } => None,
        };
        ServerFrameView {
            kind: Cow::Borrowed(message.kind()),
            id,
            data,
        }
    }

    fn topic(name: &str) -> Topic {
        Topic::new(name).expect("a valid topic")
    }

    fn epoch() -> Epoch {
        Epoch::new("k3x9q2").expect("a valid epoch")
    }

    fn seq(n: u64) -> Seq {
        Seq::new(n).expect("a valid seq")
    }

    fn id(s: &str) -> Option<RequestId> {
        RequestId::new(s).ok()
    }

    fn delivery(is_replay: bool, payload: Value) -> Delivery {
        Delivery {
            topic: topic("custom.bench.0"),
            epoch: epoch(),
            seq: seq(42),
            emitted_at: Timestamp::now(),
            is_replay,
            payload,
        }
    }

    fn pong(data: Option<Value>) -> ServerMessage {
        ServerMessage::Pong {
            id: id("9"),
            data: data.map(|v| JsonValue::new(v).expect("safe numbers")),
        }
    }

    /// Server messages of every kind, with the variations the view must survive: absent ids,
    /// escaped strings, payloads of every JSON type, pong data that looks like an event's.
    fn messages() -> Vec<ServerMessage> {
        vec![
            ServerMessage::Authenticated {
                id: id("1"),
                data: AuthenticatedData {
                    principal: "ci-bot".into(),
                    roles: vec!["publisher".into()],
                },
            },
            ServerMessage::Subscribed {
                id: id("2"),
                data: SubscribedData {
                    topics: vec![SubscribedTopic {
                        topic: topic("custom.bench.0"),
                        epoch: epoch(),
                        seq: seq(7),
                        start: Start::Live,
                    }],
                },
            },
            ServerMessage::Unsubscribed {
                id: None,
                data: UnsubscribedData {
                    topics: vec![topic("sessions.activity:s-42")],
                    reason: Some(ErrorCode::Forbidden),
                },
            },
            ServerMessage::Published {
                id: id("p0"),
                data: PublishedData {
                    topic: topic("drives.pressure"),
                    epoch: epoch(),
                    seq: seq(18),
                },
            },
            ServerMessage::Snapshot {
                id: None,
                data: delivery(false, json!({"items": [1, 2, 3], "total": 3})),
            },
            ServerMessage::Event {
                id: None,
                data: delivery(false, json!({"t": 123_456_789, "s": 2, "pad": "xxxx"})),
            },
            ServerMessage::Event {
                id: id("e1"),
                data: delivery(true, json!("a \"quoted\" string payload\n")),
            },
            ServerMessage::Event {
                id: None,
                data: delivery(false, json!([null, true, 1.5, {"topic": "not this one"}])),
            },
            ServerMessage::error(id("7"), ErrorCode::BadRequest, "no topic here"),
            ServerMessage::Error {
                id: None,
                data: ErrorData {
                    code: ErrorCode::InvalidTopic,
                    message: "bad topic".into(),
                    topic: Some("Sessions..\"state\"\\".into()),
                },
            },
            pong(Some(json!({"sentAt": 1_763_717_400_125_u64}))),
            pong(Some(
                json!({"topic": "custom.x", "epoch": "e", "seq": "not a number", "isReplay": 1}),
            )),
            pong(Some(json!(5))),
            pong(Some(json!(["a", {"b": null}]))),
            pong(None),
        ]
    }

    #[test]
    fn the_view_reads_every_server_message_as_the_owned_envelope_says() {
        let messages = messages();
        let mut kinds: Vec<&str> = messages.iter().map(ServerMessage::kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let mut all = ServerMessage::KINDS.to_vec();
        all.sort_unstable();
        assert_eq!(kinds, all, "an example of every kind of server message");
        for message in &messages {
            let text = serde_json::to_string(message).expect("serialises");
            let view: ServerFrameView<'_, Value> =
                ServerFrameView::parse(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
            assert_eq!(view, expected(message), "{text}");
            // The view's default skips the payload and reads the same envelope.
            let skipped: ServerFrameView<'_> =
                ServerFrameView::parse(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
            assert_eq!(skipped.kind, view.kind, "{text}");
            assert_eq!(
                skipped.data.map(|d| (d.topic, d.epoch, d.seq, d.is_replay)),
                view.data.map(|d| (d.topic, d.epoch, d.seq, d.is_replay)),
                "{text}"
            );
        }
    }

    #[test]
    fn unescaped_strings_are_borrowed_from_the_text() {
        let text = serde_json::to_string(&ServerMessage::Event {
            id: id("e1"),
            data: delivery(false, json!({"t": 1, "s": 0})),
        })
        .expect("serialises");
        let view: ServerFrameView<'_> = ServerFrameView::parse(&text).expect("a view");
        let data = view.data.expect("data");
        for field in [
            Some(&view.kind),
            view.id.as_ref(),
            data.topic.as_ref(),
            data.epoch.as_ref(),
        ] {
            assert!(
                matches!(field, Some(Cow::Borrowed(_))),
                "{field:?} copied from {text}"
            );
        }
    }

    #[test]
    fn a_pong_whose_data_comes_first_is_still_a_pong_without_data() {
        let view: ServerFrameView<'_> =
            ServerFrameView::parse(r#"{"data": {"topic": "custom.x", "seq": 3}, "type": "pong"}"#)
                .expect("a view");
        assert_eq!((view.kind.as_ref(), view.data), ("pong", None));
        let view: ServerFrameView<'_> =
            ServerFrameView::parse(r#"{"data": 5, "type": "pong", "id": "4"}"#).expect("a view");
        assert_eq!((view.id.as_deref(), view.data), (Some("4"), None));
    }

    #[test]
    fn a_field_of_the_wrong_type_or_no_type_is_an_error() {
        for text in [
            r#"{"type": "event", "data": {"seq": "1"}}"#,
            r#"{"type": "event", "data": {"isReplay": "no"}}"#,
            r#"{"type": "event", "data": 5}"#,
            r#"{"type": 1}"#,
            r#"{"data": {}}"#,
            r#"["event"]"#,
        ] {
            assert!(
                ServerFrameView::<'_, IgnoredAny>::parse(text).is_err(),
                "{text} read as a view"
            );
        }
    }
}
