//! The rtbus v1 reference hub: a WebSocket pub/sub server with per-topic snapshots, resume from
//! a bounded history, token authentication and topic authorization, heartbeats and back-pressure.
//!
//! Embed it with [`start`]:
//!
//! ```no_run
//! # async fn demo() -> Result<(), rtbus_server::Error> {
//! let config = rtbus_server::Config {
//!     listen: "127.0.0.1:0".parse().expect("a valid address"),
//!     public_topics: vec!["drives.pressure".into()],
//!     ..Default::default()
//! };
//! let server = rtbus_server::start(config).await?;
//! println!("ws://{}/api/realtime", server.local_addr());
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Behaviour that the protocol leaves to the server:
//!
//! - **Epochs**: each topic's `seq` stream is named by an epoch chosen when the server first
//!   holds the topic: `<process nonce>-<counter>` (hex), so a restarted process, or a topic
//!   forgotten (nothing published, nobody subscribed) and created again, never reuses one. The
//!   server keeps topics in memory only: after a restart every topic has a new epoch and starts
//!   again at `seq` 0, and every resume from before is answered with `start: reset`.
//! - **History bound**: each topic keeps its latest [`Limits::history_per_topic`] events (1024
//!   by default). A resume (`resumeAfter: n` with the topic's current `epoch`) whose every event
//!   after `n` is still held is `resumed` and gets them replayed; an older `n`, one ahead of the
//!   topic or another epoch is `reset`: nothing is replayed, and a fresh snapshot follows unless
//!   the subscription said `snapshot: false`.
//! - **Repeat subscribe**: subscribing again to a topic the connection holds is acknowledged
//!   again and never duplicates delivery (the connection stays registered once). Without a
//!   resume it is `snapshot` (a fresh snapshot follows) or `live` (nothing is sent); a resume
//!   with the current epoch and a `seq` from the first subscription's on is `resumed` and
//!   nothing is re-sent (it was queued already); any other resume is `reset`. A topic named
//!   twice in one request is started, and listed in `subscribed`, once, by its first entry.
//! - **Re-authentication**: an `auth` frame on an open connection makes it act as the new
//!   principal; subscriptions it may not read end with one `unsubscribed` frame without `id`
//!   (`reason: forbidden`). A rejected token leaves the connection without a principal, and the
//!   subscriptions that needed one end the same way (`reason: unauthorized`). Authentication by
//!   the `Authorization` header is not answered by an `authenticated` frame.
//! - **Authorization order**: a topic outside the catalog gets `unknown_topic` before
//!   permissions are looked at; a publish payload is validated only once the publish is allowed.
//! - **Close codes**: binary frame 1003, message over `max_message_bytes` 1009, invalid UTF-8
//!   1007, WebSocket protocol violation 1002, auth deadline 4001, heartbeat timeout 4008, slow
//!   consumer 4009, shutdown 1001.
#![deny(missing_docs)]

mod auth;
mod config;
mod conn;
mod demo;
mod error;
mod http;
mod hub;
mod outbox;
mod server;
mod stats;

pub use auth::{ADMIN_ROLE, PUBLISHER_ROLE};
pub use config::{Config, Limits, TokenConfig};
pub use demo::{DEMO_ORIGINS, DEMO_TOPICS};
pub use error::{Error, Result};
pub use http::{HEALTH_PATH, STATS_PATH};
pub use server::{RunningServer, start};
pub use stats::{QueueStats, Stats};
