//! The crate's one error type, with variants a caller can match (a refused handshake carries
//! its status, headers and body), and `Result`.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::http::{HeaderMap, StatusCode};

use crate::url::UrlError;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The part of a dial that ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Looking the host up.
    Resolve,
    /// Opening the TCP connection.
    Connect,
    /// The WebSocket upgrade: request sent, response awaited.
    Handshake,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Resolve => "resolving the host",
            Stage::Connect => "the TCP connect",
            Stage::Handshake => "the WebSocket handshake",
        })
    }
}

/// What went wrong while dialling, or while proxying a handshake.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL is not a `ws://` URL this crate can dial.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// An extra header's name is not a valid HTTP header name.
    #[error("invalid header name {name:?}")]
    HeaderName {
        /// The name as given.
        name: String,
    },
    /// A header's value (a bearer token, a subprotocol list, an extra header) is not a valid
    /// HTTP header value.
    #[error("invalid value for header {name}")]
    HeaderValue {
        /// The header's name.
        name: String,
    },
    /// The host could not be looked up.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// `host:port`.
        host: String,
        /// Why.
        source: std::io::Error,
    },
    /// The host resolved to no address at all.
    #[error("{host} resolves to no address")]
    NoAddress {
        /// `host:port`.
        host: String,
    },
    /// A socket could not be opened or an option (receive buffer, `TCP_NODELAY`) set.
    #[error("cannot {action}: {source}")]
    Socket {
        /// What was attempted, e.g. `set the receive buffer`.
        action: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The TCP connection failed (refused, unreachable, ...).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address dialled.
        addr: SocketAddr,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The dial's timeout passed during `stage`.
    #[error("{stage} timed out (the dial allows {} ms)", after.as_millis())]
    Timeout {
        /// Where the time ran out.
        stage: Stage,
        /// The dial's whole timeout.
        after: Duration,
    },
    /// The server answered the upgrade with another HTTP status than 101.
    #[error(
        "the server refused the WebSocket handshake with HTTP {status}{}",
        body.as_deref().filter(|b| !b.trim().is_empty()).map_or(String::new(), |b| format!(": {}", b.trim()))
    )]
    Refused {
        /// The status, e.g. 401.
        status: StatusCode,
        /// The response's headers (e.g. `WWW-Authenticate`).
        headers: Box<HeaderMap>,
        /// The response's body, when it had one (lossily decoded as UTF-8).
        body: Option<String>,
    },
    /// The handshake broke in another way: a malformed response, a connection reset, ...
    #[error("the WebSocket handshake failed: {0}")]
    Handshake(#[source] Box<tungstenite::Error>),
    /// The server did not select the subprotocol the dial requires.
    #[error(
        "the server selected subprotocol {}, expected {expected:?}",
        selected.as_deref().map_or("none".to_owned(), |s| format!("{s:?}"))
    )]
    Subprotocol {
        /// The subprotocol required.
        expected: String,
        /// The one the server selected, if any.
        selected: Option<String>,
    },
    /// The proxy could not read a client's upgrade request or answer it.
    #[error("the client's WebSocket handshake failed: {0}")]
    Accept(#[source] Box<tungstenite::Error>),
}

impl Error {
    /// The HTTP status of a refused handshake.
    pub fn refused_status(&self) -> Option<StatusCode> {
        match self {
            Error::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Maps a tungstenite client-handshake error: an HTTP answer becomes [`Error::Refused`].
    pub(crate) fn from_handshake(error: tungstenite::Error) -> Error {
        match error {
            tungstenite::Error::Http(response) => {
                let (parts, body) = (*response).into_parts();
                Error::Refused {
                    status: parts.status,
                    headers: Box::new(parts.headers),
                    body: body.map(|b| String::from_utf8_lossy(&b).into_owned()),
                }
            }
            other => Error::Handshake(Box::new(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_stay_small_and_say_what_happened() {
        // A `Result<_, Error>` is returned on every dial: keep it under clippy's
        // `result_large_err` threshold, boxing what is large.
        assert!(
            std::mem::size_of::<Error>() <= 128,
            "{}",
            std::mem::size_of::<Error>()
        );
        let refused = Error::Refused {
            status: StatusCode::UNAUTHORIZED,
            headers: Box::default(),
            body: Some("the bearer token is not accepted\n".into()),
        };
        assert_eq!(
            refused.to_string(),
            "the server refused the WebSocket handshake with HTTP 401 Unauthorized: the bearer \
             token is not accepted"
        );
        assert_eq!(refused.refused_status(), Some(StatusCode::UNAUTHORIZED));
        let timeout = Error::Timeout {
            stage: Stage::Handshake,
            after: Duration::from_millis(250),
        };
        assert_eq!(
            timeout.to_string(),
            "the WebSocket handshake timed out (the dial allows 250 ms)"
        );
        let wrong = Error::Subprotocol {
            expected: "rtbus.v1".into(),
            selected: None,
        };
        assert_eq!(
            wrong.to_string(),
            "the server selected subprotocol none, expected \"rtbus.v1\""
        );
    }
}
