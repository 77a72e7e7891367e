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
//! - **History bound**: each topic keeps its latest [`Limits::history_per_topic`] events (1024
//!   by default). A `resumeAfter: n` with every event after `n` still held gets them replayed;
//!   an older `n`, or one ahead of the topic, gets a fresh snapshot instead (also when the
//!   subscription said `snapshot: false`, since the client asked to catch up).
//! - **Repeat subscribe**: subscribing again to a topic the connection holds is acknowledged
//!   again and never duplicates delivery (the connection stays registered once). Without
//!   `resumeAfter` it gets a fresh snapshot unless `snapshot: false`; with a `resumeAfter`
//!   that is covered by the existing subscription nothing is re-sent, otherwise a fresh
//!   snapshot.
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
pub use demo::DEMO_TOPICS;
pub use error::{Error, Result};
pub use http::{HEALTH_PATH, STATS_PATH};
pub use server::{RunningServer, start};
pub use stats::{QueueStats, Stats};
