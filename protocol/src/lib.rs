//! rtbus protocol v1: the single source of truth for the wire envelope, the error and close
//! codes, the topic grammar and the typed topic catalog.
//!
//! Every other crate of rtbus, and every file in `generated/`, derives from these types. Their
//! doc comments are user documentation: they become JSDoc in the TypeScript, `description` in
//! the JSON Schema, and prose in the protocol reference.
#![deny(missing_docs)]

pub mod catalog;
mod codes;
mod decode;
mod envelope;
mod json;
pub mod rules;
mod scalar;
mod topic;
mod view;

pub use codes::{CloseCode, ErrorCode};
pub use decode::{FrameError, decode_client_frame, decode_server_frame};
pub use envelope::{
    AuthData, AuthenticatedData, ClientMessage, Delivery, ErrorData, PublishData, PublishedData,
    ServerMessage, Start, SubscribeData, SubscribedData, SubscribedTopic, SubscriptionRequest,
    UnsubscribeData, UnsubscribedData,
};
pub use json::{JsonValue, MAX_NESTING_DEPTH, UnsafeNumber, check_numbers, nesting_depth};
pub use scalar::{
    EPOCH_PATTERN, Epoch, MAX_EPOCH_LEN, MAX_REQUEST_ID_LEN, MAX_SAFE_INTEGER, RangeError, Ratio,
    RequestId, Seq, TIMESTAMP_PATTERN, Timestamp, TimestampError,
};
pub use topic::{MAX_TOPIC_LEN, TOPIC_PATTERN, Topic, TopicError};
pub use view::{DataView, ServerFrameView};

/// The protocol version this crate describes.
pub const PROTOCOL_VERSION: u32 = 1;

/// The HTTP path on which a server accepts rtbus WebSocket connections.
pub const ENDPOINT_PATH: &str = "/api/realtime";

/// The WebSocket subprotocol that names this protocol version. Clients offer it in
/// `Sec-WebSocket-Protocol`; the server selects it.
pub const SUBPROTOCOL: &str = "rtbus.v1";
