//! `rtbus-socket`: the one WebSocket client layer of the rtbus workspace.
//!
//! - [`Url`]: the one `ws://host[:port]/path?query` parser (default port 80, IPv6 literals,
//!   `wss://` refused with a typed error).
//! - [`Dial`]: a builder for opening a WebSocket (subprotocols, bearer token, headers, receive
//!   buffer, `TCP_NODELAY`, tungstenite's buffers and limits, one timeout, a required
//!   subprotocol) that returns the stream with the [`Handshake`] response, or an [`Error`] a
//!   caller can match (a refusal carries its HTTP status, headers and body). [`Dialer`] keeps
//!   a checked request for dialling resolved addresses many times.
//! - [`Inbound`] and [`next`]: one classification of what a read brings.
//! - [`Proxy`] with a [`Tap`]: a proxy that dials upstream inside the client's handshake and
//!   passes every message through the tap (the recorder observes, the mutation proxy rewrites).
//!
//! It depends on the protocol crate (for the subprotocol name) and never on a server: what it
//! checks is the published contract, seen from the client's side.

#![deny(missing_docs)]

mod dial;
mod error;
mod inbound;
mod proxy;
mod url;

pub use dial::{Dial, Dialer, Handshake, WsStream};
pub use error::{Error, Result, Stage};
pub use inbound::{Control, Inbound, next, next_with};
pub use proxy::{
    Action, Answer, Direction, Offer, Proxy, Tap, Transparent, Upstream, offered_subprotocols,
};
pub use url::{DEFAULT_PORT, Url, UrlError};

pub use tokio_tungstenite::tungstenite::http::StatusCode;
pub use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
pub use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
