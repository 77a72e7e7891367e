//! The one envelope every frame uses, in both directions.
//!
//! Every frame is a JSON text frame holding one object `{ "type": ..., "id"?: ..., "data"?: ... }`.
//! Field names are camelCase. Unknown fields are rejected, so a typo fails loudly instead of being
//! ignored; applications put free-form data inside topic payloads, never beside them.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, de};
use serde_json::Value;
use ts_rs::TS;

use crate::codes::ErrorCode;
use crate::json::JsonValue;
use crate::scalar::{Epoch, RequestId, Seq, Timestamp, present};
use crate::topic::Topic;

/// A frame sent by a client to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum ClientMessage {
    /// Authenticates the connection with a bearer token. Browsers use this frame because they
    /// cannot set an `Authorization` header on a WebSocket; other clients may send the header at
    /// the handshake instead (a header is answered by no frame). Tokens never travel in a URL.
    /// Answered by `authenticated`, or by an `error` with code `unauthorized`. Sent again on an
    /// authenticated connection, it re-authenticates it (token refresh): subscriptions the new
    /// principal may not read end with an `unsubscribed` frame that has a `reason`; a rejected
    /// token leaves the connection without a principal.
    Auth {
        /// Copied into the reply.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present"
        )]
        #[ts(optional)]
        id: Option<RequestId>,
        /// The credentials.
        data: AuthData,
    },
    /// Subscribes to one or more topics. Answered by one `subscribed` frame, then, per topic in
    /// request order, a `snapshot` (unless opted out) or the replayed events of a resume, then
    /// live `event` frames. The request is all-or-nothing: if any topic is rejected, an `error`
    /// names it and no topic of the request is subscribed.
    Subscribe {
        /// Copied into the reply.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present"
        )]
        #[ts(optional)]
        id: Option<RequestId>,
        /// The topics and their options.
        data: SubscribeData,
    },
    /// Stops delivery on one or more topics. No `snapshot` or `event` for those topics follows
    /// the `unsubscribed` reply. Unsubscribing from a topic that is not subscribed is not an
    /// error.
    Unsubscribe {
        /// Copied into the reply.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present"
        )]
        #[ts(optional)]
        id: Option<RequestId>,
        /// The topics to leave.
        data: UnsubscribeData,
    },
    /// Publishes one event to a topic (a privileged broadcast: the principal needs the
    /// publisher role and permission for the topic). The payload must match the event type of
    /// the topic's family. Answered by `published` with the `seq` the event was given.
    Publish {
        /// Copied into the reply.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present"
        )]
        #[ts(optional)]
        id: Option<RequestId>,
        /// The topic and the event payload.
        data: PublishData,
    },
    /// An application-level keepalive. Answered by `pong` carrying the same `id` and `data`.
    /// Servers also send WebSocket-level pings; this frame is for clients (such as browsers)
    /// that cannot see those.
    Ping {
        /// Copied into the reply.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present"
        )]
        #[ts(optional)]
        id: Option<RequestId>,
        /// Any JSON value, echoed unchanged in the `pong` (e.g. a client timestamp).
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present"
        )]
        #[ts(optional)]
        data: Option<JsonValue>,
    },
}

/// Credentials for an `auth` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthData {
    /// A bearer token issued by the server's operator.
    pub token: String,
}

/// The body of a `subscribe` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscribeData {
    /// The topics to subscribe to, each with its own options. At least one.
    #[schemars(length(min = 1))]
    #[serde(deserialize_with = "non_empty")]
    pub topics: Vec<SubscriptionRequest>,
}

/// One topic of a `subscribe` request and how to start it.
///
/// To resume after a lost connection, name both the last `seq` seen on the topic and the
/// `epoch` it came with: `{"topic": "drives.pressure", "resumeAfter": 41, "epoch": "k3x9"}`.
/// One without the other is a `bad_request`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("dependentRequired" = {"resumeAfter": ["epoch"], "epoch": ["resumeAfter"]}))]
pub struct SubscriptionRequest {
    /// The topic to subscribe to.
    pub topic: Topic,
    /// Whether to receive a `snapshot` of the topic's current state first. Absent means `true`.
    /// With `false`, no snapshot is sent, also when a resume is not honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub snapshot: Option<bool>,
    /// Resume after this `seq`: the last one the client saw on this topic before it lost its
    /// connection. Requires `epoch`. The server replays the events after it (marked
    /// `isReplay: true`) only when `epoch` is the topic's current epoch and its history still
    /// holds every one of them; otherwise it replays nothing, and the `subscribed` entry says
    /// `reset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub resume_after: Option<Seq>,
    /// The `epoch` that came with `resumeAfter` (on the snapshot or event that carried it).
    /// Requires `resumeAfter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub epoch: Option<Epoch>,
}

impl SubscriptionRequest {
    /// A subscription with the default options: snapshot first, no resume.
    pub fn new(topic: Topic) -> SubscriptionRequest {
        SubscriptionRequest {
            topic,
            snapshot: None,
            resume_after: None,
            epoch: None,
        }
    }

    /// A subscription that resumes after `seq` of stream `epoch`.
    pub fn resume(topic: Topic, epoch: Epoch, seq: Seq) -> SubscriptionRequest {
        SubscriptionRequest {
            resume_after: Some(seq),
            epoch: Some(epoch),
            ..SubscriptionRequest::new(topic)
        }
    }

    /// Whether the client wants a snapshot (the default).
    pub fn wants_snapshot(&self) -> bool {
        self.snapshot.unwrap_or(true)
    }

    /// The resume point, when the request names one.
    pub fn resume_point(&self) -> Option<(&Epoch, Seq)> {
        self.epoch.as_ref().zip(self.resume_after)
    }
}

/// What a resume names without its partner field, for the error message.
pub(crate) const UNPAIRED_RESUME: &str = "resumeAfter and epoch go together: send both (the last \
    seq seen and the epoch it came with) to resume, or neither to start afresh";

impl<'de> Deserialize<'de> for SubscriptionRequest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(
            rename = "SubscriptionRequest",
            rename_all = "camelCase",
            deny_unknown_fields
        )]
        struct Wire {
            topic: Topic,
            #[serde(default, deserialize_with = "present")]
            snapshot: Option<bool>,
            #[serde(default, deserialize_with = "present")]
            resume_after: Option<Seq>,
            #[serde(default, deserialize_with = "present")]
            epoch: Option<Epoch>,
        }
        let wire = Wire::deserialize(deserializer)?;
        if wire.resume_after.is_some() != wire.epoch.is_some() {
            return Err(de::Error::custom(format!(
                "topic {}: {UNPAIRED_RESUME}",
                wire.topic
            )));
        }
        Ok(SubscriptionRequest {
            topic: wire.topic,
            snapshot: wire.snapshot,
            resume_after: wire.resume_after,
            epoch: wire.epoch,
        })
    }
}

/// Reads a list the protocol requires to hold at least one item, so the decoder agrees with the
/// schema's `minItems: 1`.
fn non_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let items = Vec::<T>::deserialize(deserializer)?;
    if items.is_empty() {
        return Err(de::Error::invalid_length(0, &"at least one topic"));
    }
    Ok(items)
}

/// The body of an `unsubscribe` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnsubscribeData {
    /// The topics to leave. At least one.
    #[schemars(length(min = 1))]
    #[serde(deserialize_with = "non_empty")]
    pub topics: Vec<Topic>,
}

/// The body of a `publish` frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PublishData {
    /// The topic to publish on.
    pub topic: Topic,
    /// The event, of the topic family's event type.
    pub payload: Value,
}

/// A frame sent by the server to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum ServerMessage {
    /// The `auth` request succeeded.
    Authenticated {
        /// The `id` of the `auth` request.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present"
        )]
        #[ts(optional)]
        id: Option<RequestId>,
        /// Who the connection now acts as.
        data: AuthenticatedData,
    },
    /// The `subscribe` request succeeded. Sent before any snapshot or event of its topics.
    Subscribed {
        /// The `id` of the `subscribe` request.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present"
        )]
        #[ts(optional)]
        id: Option<RequestId>,
        /// Each topic now subscribed, with how it starts.
        data: SubscribedData,
    },
    /// Subscriptions ended. Nothing more arrives for these topics. Answers an `unsubscribe`
    /// (with its `id`), or, without an `id` and with a `reason`, says the server ended them
    /// itself: after a re-authentication as a principal that may not read them.
    Unsubscribed {
        /// The `id` of the `unsubscribe` request; absent when the server ended the
        /// subscriptions itself.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present"
        )]
        #[ts(optional)]
        id: Option<RequestId>,
        /// The topics left, and why when the server ended them.
        data: UnsubscribedData,
    },
    /// The `publish` request succeeded and the event was given a `seq`.
    Published {
        /// The `id` of the `publish` request.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present"
        )]
        #[ts(optional)]
        id: Option<RequestId>,
        /// Where the event went.
        data: PublishedData,
    },
    /// The current state of a topic. Replace whatever the client held for the topic with it.
    Snapshot {
        /// Not used on snapshots; reserved.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present"
        )]
        #[ts(optional)]
        id: Option<RequestId>,
        /// The topic's state.
        data: Delivery,
    },
    /// A live change on a topic, to be applied on top of the latest snapshot.
    Event {
        /// Not used on events; reserved.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present"
        )]
        #[ts(optional)]
        id: Option<RequestId>,
        /// The change.
        data: Delivery,
    },
    /// A request failed. The connection stays open.
    Error {
        /// The `id` of the request that failed, when it had one and could be read.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present"
        )]
        #[ts(optional)]
        id: Option<RequestId>,
        /// What went wrong.
        data: ErrorData,
    },
    /// The answer to `ping`.
    Pong {
        /// The `id` of the `ping`.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present"
        )]
        #[ts(optional)]
        id: Option<RequestId>,
        /// The `data` of the `ping`, unchanged.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present"
        )]
        #[ts(optional)]
        data: Option<JsonValue>,
    },
}

/// Who an authenticated connection acts as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthenticatedData {
    /// The principal's name, as configured on the server.
    pub principal: String,
    /// The principal's roles, e.g. `publisher` or `admin`.
    pub roles: Vec<String>,
}

/// The body of a `subscribed` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscribedData {
    /// One entry per topic of the request, in request order; a topic named twice is listed
    /// once, at its first place.
    pub topics: Vec<SubscribedTopic>,
}

/// How one topic of a `subscribe` starts, and where its stream stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscribedTopic {
    /// The topic.
    pub topic: Topic,
    /// The topic's current epoch: every `snapshot` and `event` of the topic that follows
    /// carries it.
    pub epoch: Epoch,
    /// The topic's latest `seq` when the subscription started. A snapshot that follows carries
    /// it; a replay ends at it; live events follow from `seq + 1`.
    pub seq: Seq,
    /// What follows for this topic, and what the client does with it.
    pub start: Start,
}

/// How a subscription starts: what follows the `subscribed` frame for one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub enum Start {
    /// No resume was asked for: a `snapshot` at `seq` follows, then live events. Replace the
    /// topic's state with the snapshot.
    Snapshot,
    /// No resume was asked for and the request said `snapshot: false`: only live events follow,
    /// from `seq + 1`.
    Live,
    /// The resume was honoured: the events after `resumeAfter` up to `seq` follow, marked
    /// `isReplay: true` (none when the client was up to date), then live events, with no gap
    /// and no duplicate. Keep the state and apply them.
    Resumed,
    /// The resume was not honoured (the epoch is not the topic's current one, or the history
    /// no longer holds every event after `resumeAfter`), and nothing is replayed. Discard the
    /// topic's state: a fresh `snapshot` at `seq` follows, unless the request said
    /// `snapshot: false`; then only live events follow and the client reloads the state itself
    /// (e.g. by subscribing again with a snapshot).
    Reset,
}

/// The body of an `unsubscribed` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnsubscribedData {
    /// The topics left, in the order of the request.
    pub topics: Vec<Topic>,
    /// Present when the server ended the subscriptions itself: `forbidden` (the connection now
    /// acts as a principal that may not read them) or `unauthorized` (it has no principal any
    /// more). Subscribe again once permitted.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    #[ts(optional)]
    pub reason: Option<ErrorCode>,
}

/// Where a published event went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PublishedData {
    /// The topic published on.
    pub topic: Topic,
    /// The topic's epoch; subscribers see the same `epoch` on the `event`.
    pub epoch: Epoch,
    /// The `seq` the event was given; subscribers see the same `seq` on the `event`.
    pub seq: Seq,
}

/// The body of every `snapshot` and `event` frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Delivery {
    /// The topic this state or change belongs to.
    pub topic: Topic,
    /// The topic's sequence stream. A `seq` means something only together with its epoch:
    /// keep both, and resume with both.
    pub epoch: Epoch,
    /// For an event: its per-topic sequence number, exactly one more than the previous event's.
    /// For a snapshot: the `seq` of the last event folded into it (0 if none).
    pub seq: Seq,
    /// For an event: when the server accepted its publish. Every delivery of one event carries
    /// the same value, live or replayed, on every node of a cluster. For a snapshot: when the
    /// server sent it.
    pub emitted_at: Timestamp,
    /// `true` only on events re-sent because a subscription resumed after a known `seq`.
    pub is_replay: bool,
    /// The snapshot or event payload, of the type the topic's family declares.
    pub payload: Value,
}

/// What went wrong with a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorData {
    /// The machine-readable reason.
    pub code: ErrorCode,
    /// A human-readable explanation: what was wrong, where, and what was expected.
    pub message: String,
    /// The topic the error concerns, as the client sent it, when there is one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    #[ts(optional)]
    pub topic: Option<String>,
}

impl ClientMessage {
    /// The message's `type` on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientMessage::Auth { .. } => "auth",
            ClientMessage::Subscribe { .. } => "subscribe",
            ClientMessage::Unsubscribe { .. } => "unsubscribe",
            ClientMessage::Publish { .. } => "publish",
            ClientMessage::Ping { .. } => "ping",
        }
    }

    /// The request id, if the client set one.
    pub fn id(&self) -> Option<&RequestId> {
        match self {
            ClientMessage::Auth { id, .. }
            | ClientMessage::Subscribe { id, .. }
            | ClientMessage::Unsubscribe { id, .. }
            | ClientMessage::Publish { id, .. }
            | ClientMessage::Ping { id, .. } => id.as_ref(),
        }
    }
}

impl ServerMessage {
    /// Every `type` a server may send, in declaration order.
    pub const KINDS: &'static [&'static str] = &[
        "authenticated",
        "subscribed",
        "unsubscribed",
        "published",
        "snapshot",
        "event",
        "error",
        "pong",
    ];

    /// The message's `type` on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            ServerMessage::Authenticated { .. } => "authenticated",
            ServerMessage::Subscribed { .. } => "subscribed",
            ServerMessage::Unsubscribed { .. } => "unsubscribed",
            ServerMessage::Published { .. } => "published",
            ServerMessage::Snapshot { .. } => "snapshot",
            ServerMessage::Event { .. } => "event",
            ServerMessage::Error { .. } => "error",
            ServerMessage::Pong { .. } => "pong",
        }
    }

    /// The request id this frame answers, if any.
    pub fn id(&self) -> Option<&RequestId> {
        match self {
            ServerMessage::Authenticated { id, .. }
            | ServerMessage::Subscribed { id, .. }
            | ServerMessage::Unsubscribed { id, .. }
            | ServerMessage::Published { id, .. }
            | ServerMessage::Snapshot { id, .. }
            | ServerMessage::Event { id, .. }
            | ServerMessage::Error { id, .. }
            | ServerMessage::Pong { id, .. } => id.as_ref(),
        }
    }

    /// An `error` frame answering the request `id`.
    pub fn error(id: Option<RequestId>, code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            id,
            data: ErrorData {
                code,
                message: message.into(),
                topic: None,
            },
        }
    }
}

impl ClientMessage {
    /// Every `type` a client may send, in declaration order.
    pub const KINDS: &'static [&'static str] =
        &["auth", "subscribe", "unsubscribe", "publish", "ping"];
}
