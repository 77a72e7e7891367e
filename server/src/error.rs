//! The library's error type.

use std::net::SocketAddr;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is inconsistent; the message names the field.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A node of a cluster ([`start_cluster`](crate::start_cluster)) did not reach its engine
    /// (Redis) in time.
    #[error("the node on {addr} did not reach Redis within {waited:?}: {reason}")]
    NotReady {
        /// The node's listen address.
        addr: SocketAddr,
        /// How long it was given.
        waited: std::time::Duration,
        /// Why it could not, as its `/healthz` says.
        reason: String,
    },
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
