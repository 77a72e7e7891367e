//! The top of the server: start-up (check the configuration, bind), the accept loop that
//! spawns one task per connection and the demo publisher, and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{mpsc, watch};

use crate::auth::Authority;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::state::Shared;
use crate::stats::Stats;
use crate::{conn, demo};

/// A server that is listening. Dropping it stops it too, without waiting.
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    done: mpsc::Receiver<()>,
}

/// The smallest `max_history_bytes`: below it nearly every publish would shorten histories.
const MIN_HISTORY_BYTES: usize = 64 * 1024;

fn check(config: &Config) -> Result<()> {
    let limits = &config.limits;
    let positive = [
        ("max_message_bytes", limits.max_message_bytes),
        (
            "max_topics_per_connection",
            limits.max_topics_per_connection,
        ),
        ("max_pending_bytes", limits.max_pending_bytes),
        ("max_connections", limits.max_connections),
        ("listen_backlog", limits.listen_backlog as usize),
        ("read_buffer_bytes", limits.read_buffer_bytes),
        (
            "max_auth_failures_per_connection",
            limits.max_auth_failures_per_connection,
        ),
        (
            "max_auth_failures_per_address",
            limits.max_auth_failures_per_address,
        ),
    ];
    for (name, value) in positive {
        if value == 0 {
            return Err(Error::Config(format!("limits.{name} must be at least 1")));
        }
    }
    let caps = [
        (
            "max_anonymous_connections",
            limits.max_anonymous_connections,
        ),
        (
            "max_connections_per_address",
            limits.max_connections_per_address,
        ),
    ];
    for (name, value) in caps {
        match value {
            Some(n) if n > limits.max_connections => {
                return Err(Error::Config(format!(
                    "limits.{name} ({n}) must be at most limits.max_connections ({})",
                    limits.max_connections
                )));
            }
            Some(0) if name == "max_connections_per_address" => {
                return Err(Error::Config(format!("limits.{name} must be at least 1")));
            }
            _ => {}
        }
    }
    if config.redis_key_prefix.contains(['{', '}']) {
        return Err(Error::Config(format!(
            "redis_key_prefix {:?} must not contain '{{' or '}}' (they delimit the topic in keys)",
            config.redis_key_prefix
        )));
    }
    if limits.max_history_bytes < MIN_HISTORY_BYTES {
        return Err(Error::Config(format!(
            "limits.max_history_bytes must be at least {MIN_HISTORY_BYTES} (64 KiB); to keep no \
             history set limits.history_per_topic = 0"
        )));
    }
    let durations = [
        ("auth_deadline", limits.auth_deadline),
        ("heartbeat_interval", limits.heartbeat_interval),
        ("heartbeat_timeout", limits.heartbeat_timeout),
        ("handshake_timeout", limits.handshake_timeout),
        ("auth_failure_window", limits.auth_failure_window),
        ("topic_idle_timeout", limits.topic_idle_timeout),
    ];
    for (name, value) in durations {
        if value.is_zero() {
            return Err(Error::Config(format!(
                "limits.{name} must be at least 1 ms"
            )));
        }
    }
    Ok(())
}

/// Binds `config.listen` and starts serving in the background on the current Tokio runtime.
pub async fn start(config: Config) -> Result<RunningServer> {
    check(&config)?;
    let authority = Authority::new(&config)?;
    let listener =
        bind(config.listen, config.limits.listen_backlog).map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: config.listen,
        source,
    })?;
    let shared = Arc::new(Shared::new(config, authority)?);
    let (shutdown, shutdown_rx) = watch::channel(false);
    shared.engine.start(shutdown_rx.clone());
    let (done_tx, done) = mpsc::channel(1);
    if shared.config.demo {
        tokio::spawn(demo::run(
            Arc::clone(&shared),
            shutdown_rx.clone(),
            done_tx.clone(),
        ));
    }
    tokio::spawn(sweep(Arc::clone(&shared), shutdown_rx.clone()));
    tokio::spawn(accept(listener, Arc::clone(&shared), shutdown_rx, done_tx));
    tracing::info!(%local_addr, "rtbus server listening");
    Ok(RunningServer {
        local_addr,
        shared,
        shutdown,
        done,
    })
}

/// Forgets idle topics every quarter of their timeout (`topic_idle_timeout`, or
/// `follow_linger` for the Redis engine's replicas; between 10 ms and 30 s), so a topic goes at
/// most that much later than its timeout, until shutdown.
async fn sweep(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let every = (shared.engine.hub().idle_timeout() / 4)
        .clamp(Duration::from_millis(10), Duration::from_secs(30));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = ticks.tick() => {
                let evicted = shared.engine.sweep();
                if evicted > 0 {
                    tracing::debug!(evicted, "idle topics forgotten");
                }
            }
        }
    }
}

/// A listener on `addr` with the given backlog (the standard library's and tokio's `bind` use
/// 128). Like theirs, it sets `SO_REUSEADDR` on Unix so a restarted server can bind at once.
fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

async fn accept(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                tokio::spawn(conn::serve(
                    stream,
                    peer.ip(),
                    Arc::clone(&shared),
                    shutdown.clone(),
                    done.clone(),
                ));
            }
            Err(err) => {
                // Typically out of file descriptors: back off instead of spinning.
                tracing::warn!(%err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

impl RunningServer {
    /// The address the server listens on (with the real port when `listen` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The WebSocket URL clients connect to, e.g. `ws://127.0.0.1:41234/api/realtime`.
    pub fn url(&self) -> String {
        format!("ws://{}{}", self.local_addr, rtbus_protocol::ENDPOINT_PATH)
    }

    /// Whether the node can serve topics: `Err` says why not (with Redis, while it cannot reach
    /// it), as `/healthz` does.
    pub fn engine_health(&self) -> std::result::Result<(), String> {
        self.shared.engine.health()
    }

    /// Counters, subscriptions and queue depths, as served on `/api/realtime/stats`.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Stops accepting, closes every connection with 1001 (`goingAway`) and waits until they
    /// are closed (each bounded by `limits.close_timeout`).
    pub async fn shutdown(mut self) {
        tracing::info!("shutting down");
        self.shutdown.send_replace(true);
        // Every task holds a sender; `recv` yields `None` once all of them are gone.
        let wait = self.shared.config.limits.close_timeout + Duration::from_secs(1);
        let _ = tokio::time::timeout(wait, self.done.recv()).await;
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}
