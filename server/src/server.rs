//! Start-up, the accept loop, shared state and graceful shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::auth::Authority;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::hub::Hub;
use crate::outbox::Outbox;
use crate::stats::{Counters, QueueStats, Stats};
use crate::{conn, demo};

/// State shared by every connection.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: Config,
    pub authority: Authority,
    pub hub: Hub,
    pub counters: Arc<Counters>,
    pub open_connections: AtomicU64,
    outboxes: Mutex<HashMap<u64, Arc<Outbox>>>,
    next_id: AtomicU64,
}

impl Shared {
    pub fn register(&self) -> u64 {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
        Counters::add(&self.counters.connections_total, 1);
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn track(&self, id: u64, outbox: &Arc<Outbox>) {
        self.outboxes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Arc::clone(outbox));
    }

    pub fn unregister(&self, id: u64) {
        self.outboxes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        self.open_connections.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> Stats {
        let outboxes: Vec<Arc<Outbox>> = self
            .outboxes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let mut queues = QueueStats {
            total_bytes: 0,
            max_bytes: 0,
            backlogged_connections: 0,
        };
        for outbox in &outboxes {
            let pending = outbox.pending() as u64;
            queues.total_bytes += pending;
            queues.max_bytes = queues.max_bytes.max(pending);
            queues.backlogged_connections += u64::from(pending > 0);
        }
        self.counters.snapshot(
            self.open_connections.load(Ordering::Relaxed),
            self.hub.topic_count() as u64,
            self.hub.subscriptions(),
            queues,
        )
    }
}

/// A server that is listening. Dropping it stops it too, without waiting.
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    done: mpsc::Receiver<()>,
}

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
        ("read_buffer_bytes", limits.read_buffer_bytes),
    ];
    for (name, value) in positive {
        if value == 0 {
            return Err(Error::Config(format!("limits.{name} must be at least 1")));
        }
    }
    let durations = [
        ("auth_deadline", limits.auth_deadline),
        ("heartbeat_interval", limits.heartbeat_interval),
        ("heartbeat_timeout", limits.heartbeat_timeout),
        ("handshake_timeout", limits.handshake_timeout),
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
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: config.listen,
        source,
    })?;
    let counters = Arc::new(Counters::default());
    let shared = Arc::new(Shared {
        hub: Hub::new(config.limits.history_per_topic, Arc::clone(&counters)),
        authority,
        counters,
        open_connections: AtomicU64::new(0),
        outboxes: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        config,
    });
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (done_tx, done) = mpsc::channel(1);
    if shared.config.demo {
        tokio::spawn(demo::run(
            Arc::clone(&shared),
            shutdown_rx.clone(),
            done_tx.clone(),
        ));
    }
    tokio::spawn(accept(listener, Arc::clone(&shared), shutdown_rx, done_tx));
    tracing::info!(%local_addr, "rtbus server listening");
    Ok(RunningServer {
        local_addr,
        shared,
        shutdown,
        done,
    })
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
            Ok((stream, _peer)) => {
                tokio::spawn(conn::serve(
                    stream,
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
