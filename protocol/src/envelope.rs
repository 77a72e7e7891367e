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
use crate::scalar::{RequestId, Seq, Timestamp};
use crate::topic::Topic;

/// A frame sent by a client to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum ClientMessage {
    /// Authenticates the connection with a bearer token. Browsers use this frame because they
    /// cannot set an `Authorization` header on a WebSocket; other clients may send the header at
    /// the handshake instead. Tokens never travel in a URL. Answered by `authenticated`, or by an
    /// `error` with code `unauthorized`.
    Auth {
        /// Copied into the reply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
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
        #[serde(default, skip_serializing_if = "Option::is_none")]
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
        #[serde(default, skip_serializing_if = "Option::is_none")]
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
        #[serde(default, skip_serializing_if = "Option::is_none")]
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
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        id: Option<RequestId>,
        /// Any JSON value, echoed unchanged in the `pong` (e.g. a client timestamp).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        data: Option<Value>,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscriptionRequest {
    /// The topic to subscribe to.
    pub topic: Topic,
    /// Whether to receive a `snapshot` of the topic's current state first. Absent means `true`.
    /// With `false`, only live events follow the acknowledgement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub snapshot: Option<bool>,
    /// Resume after this `seq`: the last one the client saw on this topic before it lost its
    /// connection. The server re-sends the events after it that it still holds, marked
    /// `isReplay: true`, then continues live with no gap and no duplicate. When its history no
    /// longer reaches back that far (or the `seq` is ahead of the topic, e.g. after a server
    /// restart), it sends a fresh `snapshot` instead. When the client is already up to date,
    /// nothing is re-sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub resume_after: Option<Seq>,
}

impl SubscriptionRequest {
    /// A subscription with the default options: snapshot first, no resume.
    pub fn new(topic: Topic) -> SubscriptionRequest {
        SubscriptionRequest {
            topic,
            snapshot: None,
            resume_after: None,
        }
    }

    /// Whether the client wants a snapshot (the default).
    pub fn wants_snapshot(&self) -> bool {
        self.snapshot.unwrap_or(true)
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
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        id: Option<RequestId>,
        /// Who the connection now acts as.
        data: AuthenticatedData,
    },
    /// The `subscribe` request succeeded. Sent before any snapshot or event of its topics.
    Subscribed {
        /// The `id` of the `subscribe` request.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        id: Option<RequestId>,
        /// The topics now subscribed.
        data: TopicsData,
    },
    /// The `unsubscribe` request succeeded. Nothing more arrives for these topics.
    Unsubscribed {
        /// The `id` of the `unsubscribe` request.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        id: Option<RequestId>,
        /// The topics left.
        data: TopicsData,
    },
    /// The `publish` request succeeded and the event was given a `seq`.
    Published {
        /// The `id` of the `publish` request.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        id: Option<RequestId>,
        /// Where the event went.
        data: PublishedData,
    },
    /// The current state of a topic. Replace whatever the client held for the topic with it.
    Snapshot {
        /// Not used on snapshots; reserved.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        id: Option<RequestId>,
        /// The topic's state.
        data: Delivery,
    },
    /// A live change on a topic, to be applied on top of the latest snapshot.
    Event {
        /// Not used on events; reserved.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        id: Option<RequestId>,
        /// The change.
        data: Delivery,
    },
    /// A request failed. The connection stays open.
    Error {
        /// The `id` of the request that failed, when it had one and could be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        id: Option<RequestId>,
        /// What went wrong.
        data: ErrorData,
    },
    /// The answer to `ping`.
    Pong {
        /// The `id` of the `ping`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        id: Option<RequestId>,
        /// The `data` of the `ping`, unchanged.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        data: Option<Value>,
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

/// A list of topics, in the order of the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopicsData {
    /// The topics.
    pub topics: Vec<Topic>,
}

/// Where a published event went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PublishedData {
    /// The topic published on.
    pub topic: Topic,
    /// The `seq` the event was given; subscribers see the same `seq` on the `event`.
    pub seq: Seq,
}

/// The body of every `snapshot` and `event` frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Delivery {
    /// The topic this state or change belongs to.
    pub topic: Topic,
    /// For an event: its per-topic sequence number, exactly one more than the previous event's.
    /// For a snapshot: the `seq` of the last event folded into it (0 if none).
    pub seq: Seq,
    /// When the server sent this frame.
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
