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
//!   forgotten (nothing published, or idle for `topic_idle_timeout`) and created again, never
//!   reuses one. The server keeps topics in memory only: after a restart every topic has a new
//!   epoch and starts again at `seq` 0, and every resume from before is answered with
//!   `start: reset`.
//! - **History bound**: each topic keeps its latest [`Limits::history_per_topic`] events (1024
//!   by default). A resume (`resumeAfter: n` with the topic's current `epoch`) whose every event
//!   after `n` is still held is `resumed` and gets them replayed; an older `n`, one ahead of the
//!   topic or another epoch is `reset`: nothing is replayed, and a fresh snapshot follows unless
//!   the subscription said `snapshot: false`. All histories together weigh at most
//!   [`Limits::max_history_bytes`]; past it the least recently used topics' histories shrink,
//!   oldest events first, and a resume they no longer cover is `reset`.
//! - **Idle topics**: a topic without subscriber and publish for
//!   [`Limits::topic_idle_timeout`] is forgotten; used again it has a new epoch.
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
//!   consumer 4009, too many rejected tokens on one connection 4029, shutdown 1001, the Redis
//!   engine lost (Redis unreachable, or its data lost) 4013.
//! - **Scale-out**: with [`Config::redis_url`] the topics live in Redis, shared by every node
//!   started with the same URL and key prefix: one epoch and `seq` numbering per topic across
//!   nodes, resume on any node, `/healthz` 503 and error `unavailable` while Redis cannot be
//!   reached (the server's README has the details). [`start_cluster`] starts several such
//!   nodes in one process, for tests that need a cluster (e.g. conformance against one).
//!
//! # Layers
//!
//! Every module imports only from the layers below its own (a unit test reads the sources and
//! holds them to this list), so there is no module circle. Bottom first:
//!
//! 1. `error`, `config`, `stats`, `wire`: the error type, the configuration, the counters, and
//!    wire framing (`encode` a message once into a WebSocket frame; `frame` and the opcodes).
//! 2. `auth`, `admission`: tokens, principals and topic patterns; the connection caps (all,
//!    anonymous, per address).
//! 3. `log`: the pure topic log (epoch, `seq`, snapshot, history, the snapshot-or-replay
//!    plan); the boundary a storage engine plugs into.
//! 4. `outbox`: a connection's byte-accounted outbound queue, the only writer of its socket.
//! 5. `hub`: the registry of topics (each a log and its subscribers) and the fan-out.
//! 6. `engine`: where topics live: the hub's memory, or a Redis shared by several nodes (the
//!    hub then holds replicas of its streams).
//! 7. `state`: `Shared`, what every connection shares (config, authority, engine, counters).
//! 8. `http`, `demo`: the request head, upgrade checks and plain routes; the demo publisher.
//! 9. `conn`: one WebSocket connection's task.
//! 10. `server`: start-up, the accept loop, shutdown.
//! 11. `cluster`: several Redis-backed nodes in one process, for tests outside this crate.
//! 12. `lib`: this crate root, re-exporting the public surface.
#![deny(missing_docs)]

mod admission;
mod auth;
mod cluster;
mod config;
mod conn;
mod demo;
mod engine;
mod error;
mod http;
mod hub;
mod log;
mod outbox;
mod server;
mod state;
mod stats;
mod wire;

pub use auth::{ADMIN_ROLE, PUBLISHER_ROLE};
pub use cluster::{CLUSTER_READY_TIMEOUT, Cluster, start_cluster};
pub use config::{Config, Limits, TokenConfig};
pub use demo::{DEMO_ORIGINS, DEMO_TOPICS};
pub use error::{Error, Result};
pub use http::{HEALTH_PATH, STATS_PATH};
pub use server::{RunningServer, start};
pub use stats::{QueueStats, Stats};

/// Holds the sources to the layer order in the crate's docs.
#[cfg(test)]
mod layers {
    use std::path::Path;

    /// The modules of `server/src`, bottom layer first. A module may import (`crate::…`) only
    /// from layers below its own; `lib` is the crate root, so a path to anything it re-exports
    /// (`crate::start`) counts as the top.
    const LAYERS: &[&[&str]] = &[
        &["error", "config", "stats", "wire"],
        &["auth", "admission"],
        &["log"],
        &["outbox"],
        &["hub"],
        &["engine"],
        &["state"],
        &["http", "demo"],
        &["conn"],
        &["server"],
        &["cluster"],
        &["lib"],
    ];

    /// Files in `src/` that are not modules of the library: the binary's root, whose `crate`
    /// is the binary.
    const NOT_MODULES: &[&str] = &["main"];

    fn layer(module: &str) -> Option<usize> {
        LAYERS.iter().position(|layer| layer.contains(&module))
    }

    /// Every `crate::X` in `source` outside comments, as (line, X). Within a group
    /// (`crate::{a, b::c}`) every top-level name counts.
    fn imports(source: &str) -> Vec<(usize, String)> {
        // Everything after `//` on a line is ignored: comments, and doc links up to the root.
        let code: String = source
            .lines()
            .map(|line| line.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        let ident = |text: &str| -> String {
            text.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        };
        let line_of = |at: usize| code[..at].matches('\n').count() + 1;
        let mut found = Vec::new();
        let mut from = 0;
        while let Some(at) = code[from..].find("crate::").map(|at| from + at) {
            from = at + "crate::".len();
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            let Some(group) = code[from..].strip_prefix('{') else {
                found.push((line_of(from), ident(&code[from..])));
                continue;
            };
            let mut depth = 0;
            let mut item_start = true;
            for (offset, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && depth == 0 && !c.is_whitespace() => {
                        item_start = false;
                        let at = from + 1 + offset;
                        found.push((line_of(at), ident(&code[at..])));
                    }
                    _ => {}
                }
            }
        }
        found
    }

    /// Each import of `module` (whose source is `source`) that does not point downward.
    fn violations(module: &str, source: &str) -> Vec<String> {
        let Some(own) = layer(module) else {
            return vec![format!("{module}.rs is in no layer; add it to LAYERS")];
        };
        imports(source)
            .into_iter()
            .filter_map(|(line, target)| {
                // A path to a root re-export resolves to the root.
                let resolved = if layer(&target).is_some() {
                    &target
                } else {
                    "lib"
                };
                if resolved == module {
                    // A module naming its own items is no circle.
                    return None;
                }
                let theirs = layer(resolved).unwrap_or(LAYERS.len() - 1);
                let relation = match theirs.cmp(&own) {
                    std::cmp::Ordering::Less => return None,
                    std::cmp::Ordering::Equal => "its own layer",
                    std::cmp::Ordering::Greater => "a layer above",
                };
                Some(format!(
                    "{module}.rs:{line} imports crate::{target} from {relation} \
                     (layer {} of {}; imports go only downward)",
                    theirs + 1,
                    LAYERS.len()
                ))
            })
            .collect()
    }

    #[test]
    fn every_module_imports_only_from_layers_below_its_own() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut modules = Vec::new();
        for entry in std::fs::read_dir(&src).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                let name = path.file_stem().unwrap().to_string_lossy().into_owned();
                if !NOT_MODULES.contains(&name.as_str()) {
                    modules.push((name, std::fs::read_to_string(&path).unwrap()));
                }
            }
        }
        assert!(
            !src.read_dir().unwrap().any(|e| e.unwrap().path().is_dir()),
            "the layer check reads src/*.rs only; a module directory needs a layer of its own"
        );
        let mut problems: Vec<String> = modules
            .iter()
            .flat_map(|(name, source)| violations(name, source))
            .collect();
        for module in LAYERS.iter().flat_map(|layer| layer.iter()) {
            if !modules.iter().any(|(name, _)| name == module) {
                problems.push(format!("LAYERS names {module}, which has no file"));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn the_crate_docs_list_the_layers_in_order() {
        let docs = include_str!("lib.rs");
        for (at, layer) in LAYERS.iter().enumerate() {
            let names: Vec<String> = layer.iter().map(|m| format!("`{m}`")).collect();
            let line = format!("//! {}. {}:", at + 1, names.join(", "));
            assert!(docs.contains(&line), "the crate docs should list: {line}");
        }
    }

    #[test]
    fn the_check_catches_upward_and_sideways_imports_and_ignores_comments() {
        let source = "\
use crate::auth::Authority;
// a comment may name crate::server
use crate::{stats, state::Shared};
pub(crate) fn f() -> bool { crate::server::running() }
use crate::{
    wire::{self, encode},
    conn::Io,
};
macro_rules! m { () => { $crate::start() } }
fn g() { let _ = crate::demo::run; let _ = crate::start; } /// crate::conn
";
        assert_eq!(
            imports(source),
            [
                (1, "auth".to_owned()),
                (3, "stats".to_owned()),
                (3, "state".to_owned()),
                (4, "server".to_owned()),
                (6, "wire".to_owned()),
                (7, "conn".to_owned()),
                (10, "demo".to_owned()),
                (10, "start".to_owned()),
            ]
        );
        let found = violations("http", source);
        assert_eq!(
            found,
            [
                "http.rs:4 imports crate::server from a layer above (layer 10 of 12; imports go \
                 only downward)",
                "http.rs:7 imports crate::conn from a layer above (layer 9 of 12; imports go \
                 only downward)",
                "http.rs:10 imports crate::demo from its own layer (layer 8 of 12; imports go \
                 only downward)",
                "http.rs:10 imports crate::start from a layer above (layer 12 of 12; imports \
                 go only downward)",
            ]
        );
        assert!(
            violations("server", source)
                .iter()
                .all(|v| !v.contains("crate::conn"))
        );
        assert!(
            violations("lib", source).is_empty(),
            "the root may name anything"
        );
        assert_eq!(
            violations("nowhere", ""),
            ["nowhere.rs is in no layer; add it to LAYERS"]
        );
    }
}
