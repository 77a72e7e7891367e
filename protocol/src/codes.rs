//! Machine-readable error codes and WebSocket close codes, each defined once.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Declares a code enum together with its wire value, its meaning (the doc comment) and whether
/// a client should reconnect, so the generated TypeScript, schema and reference read one table.
macro_rules! code_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident : $wire:ty {
            $(
                $(#[doc = $doc:literal])+
                $variant:ident = $value:expr, reconnect: $reconnect:expr;
            )+
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $( $(#[doc = $doc])+ $variant, )+
        }

        impl $name {
            /// Every code, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value sent on the wire.
            pub const fn value(self) -> $wire {
                match self { $($name::$variant => $value,)+ }
            }

            /// The Rust variant name, e.g. for generated constants.
            pub const fn name(self) -> &'static str {
                match self { $($name::$variant => stringify!($variant),)+ }
            }

            /// What the code means, for a client author (the variant's doc comment).
            pub fn description(self) -> &'static str {
                match self { $($name::$variant => concat!($($doc, "\n"),+).trim(),)+ }
            }

            /// Whether a client that sees this code should reconnect (with backoff).
            pub const fn reconnect(self) -> bool {
                match self { $($name::$variant => $reconnect,)+ }
            }

            /// The code with wire value `value`, if there is one.
            pub fn from_value(value: $wire) -> Option<$name> {
                $name::ALL.iter().copied().find(|code| code.value() == value)
            }
        }
    };
}

code_enum! {
    /// Why the server rejected a request. Sent as `data.code` of an `error` frame; the `id` of
    /// the frame is the `id` of the request that failed, when the request had one and could be
    /// parsed that far. An error never closes the connection by itself.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, TS)]
    #[serde(rename_all = "snake_case")]
    pub enum ErrorCode: &'static str {
        /// The frame is not valid JSON, is not a known message `type`, or has a field of the
        /// wrong type, a missing required field, or an unknown field. Fix the client; resending
        /// the same frame fails the same way.
        BadRequest = "bad_request", reconnect: false;
        /// The request needs an authenticated principal and the connection has none, or the
        /// token in an `auth` frame was not accepted.
        Unauthorized = "unauthorized", reconnect: false;
        /// The principal is authenticated but not allowed to do this on this topic.
        Forbidden = "forbidden", reconnect: false;
        /// A topic does not follow the topic grammar; the message says which character, where.
        InvalidTopic = "invalid_topic", reconnect: false;
        /// A topic follows the grammar but belongs to no family in the server's catalog.
        UnknownTopic = "unknown_topic", reconnect: false;
        /// A `publish` payload does not match the event type of the topic's family.
        InvalidPayload = "invalid_payload", reconnect: false;
        /// The request would exceed a server limit, such as the number of topics one
        /// connection may hold. The message names the limit.
        LimitExceeded = "limit_exceeded", reconnect: false;
        /// The server failed while handling a valid request. Retrying later may succeed.
        Internal = "internal", reconnect: true;
        /// The server cannot reach the storage its topics live in (a scaled-out hub's shared
        /// engine) and did not carry out the request. Retry with backoff; for a `publish`, the
        /// event may or may not have been published when the storage went away mid-request.
        Unavailable = "unavailable", reconnect: true;
    }
}

code_enum! {
    /// Why a WebSocket connection was closed: the status code of the close frame. Codes below
    /// 4000 are the standard RFC 6455 ones; 4000–4999 are rtbus's own.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum CloseCode: u16 {
        /// The connection finished its work; either side may close with this.
        Normal = 1000, reconnect: false;
        /// The server is shutting down or restarting. Reconnect with backoff and resume (with
        /// the `epoch` and last `seq` per topic).
        GoingAway = 1001, reconnect: true;
        /// The peer broke the WebSocket protocol itself (not the rtbus protocol).
        ProtocolError = 1002, reconnect: false;
        /// The client sent a binary frame; rtbus v1 uses only JSON text frames.
        UnsupportedData = 1003, reconnect: false;
        /// The client sent a text frame that is not valid UTF-8.
        InvalidPayloadData = 1007, reconnect: false;
        /// A frame or message was larger than the server's configured maximum.
        MessageTooBig = 1009, reconnect: false;
        /// The server hit an unexpected condition. Reconnect with backoff.
        InternalError = 1011, reconnect: true;
        /// The connection did not authenticate within the server's auth deadline and holds no
        /// public subscription.
        AuthTimeout = 4001, reconnect: false;
        /// The client stopped answering the server's WebSocket pings within the heartbeat
        /// timeout. Reconnect and resume (with the `epoch` and last `seq` per topic).
        HeartbeatTimeout = 4008, reconnect: true;
        /// The client read too slowly: its outbound queue exceeded the server's limit and was
        /// dropped. Reconnect and resume with the `epoch` and last `seq` seen per topic.
        SlowConsumer = 4009, reconnect: true;
        /// The server lost the storage its topics live in (a scaled-out hub's shared engine),
        /// or that storage lost the topics' data, so it can no longer vouch for the `seq`
        /// stream it was delivering. Reconnect with backoff (to this or another node) and
        /// resume with the `epoch` and last `seq` per topic: the answer is `resumed` with the
        /// missed events, or `reset` when the stream was lost.
        EngineUnavailable = 4013, reconnect: true;
        /// The connection sent more rejected tokens in `auth` frames than the server allows on
        /// one connection. Reconnecting with the same token fails the same way: get a valid
        /// token first.
        TooManyAuthFailures = 4029, reconnect: false;
    }
}

impl From<ErrorCode> for &'static str {
    fn from(code: ErrorCode) -> Self {
        code.value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_values_match_serde() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, code.value());
            assert_eq!(ErrorCode::from_value(code.value()), Some(*code));
        }
    }

    #[test]
    fn close_codes_are_valid_for_close_frames() {
        for code in CloseCode::ALL {
            let value = code.value();
            // RFC 6455 7.4: 1004-1006 and 1015 must never be sent in a close frame.
            assert!(![1004, 1005, 1006, 1015].contains(&value), "{code:?}");
            assert!((1000..5000).contains(&value));
            assert!(!code.description().is_empty());
        }
    }
}
