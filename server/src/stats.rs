//! Counters and the introspection snapshot served on `/api/realtime/stats`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Process-wide counters, updated without locks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub connections_total: AtomicU64,
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub events_published: AtomicU64,
    pub dropped_frames: AtomicU64,
    pub slow_consumer_disconnects: AtomicU64,
    pub heartbeat_timeouts: AtomicU64,
    pub auth_timeouts: AtomicU64,
    pub handshakes_refused: AtomicU64,
    pub topics_evicted: AtomicU64,
    pub history_bytes_evicted: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// A point-in-time view of the server, as served (camelCase JSON) on `/api/realtime/stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Open WebSocket connections (including those still closing).
    pub connections: u64,
    /// Open connections without a principal (counted against `max_anonymous_connections`).
    pub anonymous_connections: u64,
    /// WebSocket connections accepted since start.
    pub connections_total: u64,
    /// Topics the server holds state for (subscribed now, or published to at least once).
    pub topics: u64,
    /// Topics forgotten after `topic_idle_timeout` without a subscriber or a publish.
    pub topics_evicted: u64,
    /// What the histories of all topics weigh together (bounded by `max_history_bytes`).
    pub history_bytes: u64,
    /// History weight dropped to keep `history_bytes` under `max_history_bytes`.
    pub history_bytes_evicted: u64,
    /// Subscribed connections per topic (topics with none are left out).
    pub subscriptions: BTreeMap<String, u64>,
    /// Outbound queue depths.
    pub queues: QueueStats,
    /// Text frames received from clients.
    pub messages_in: u64,
    /// Text frames written to clients.
    pub messages_out: u64,
    /// Events accepted by `publish` (each counted once, however many subscribers it reached).
    pub events_published: u64,
    /// Frames discarded because their connection was cut off as a slow consumer.
    pub drops: u64,
    /// Connections closed with 4009 (`slowConsumer`).
    pub slow_consumer_disconnects: u64,
    /// Connections closed with 4008 (`heartbeatTimeout`).
    pub heartbeat_timeouts: u64,
    /// Connections closed with 4001 (`authTimeout`).
    pub auth_timeouts: u64,
    /// HTTP upgrade requests refused at the handshake.
    pub handshakes_refused: u64,
}

/// Outbound queue depths over all connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueStats {
    /// Bytes pending over all connections.
    pub total_bytes: u64,
    /// Bytes pending on the most backed-up connection.
    pub max_bytes: u64,
    /// Connections with anything pending.
    pub backlogged_connections: u64,
}

impl Counters {
    pub(crate) fn snapshot(
        &self,
        (connections, anonymous_connections): (u64, u64),
        (topics, history_bytes): (u64, u64),
        subscriptions: BTreeMap<String, u64>,
        queues: QueueStats,
    ) -> Stats {
        Stats {
            connections,
            anonymous_connections,
            connections_total: Counters::get(&self.connections_total),
            topics,
            topics_evicted: Counters::get(&self.topics_evicted),
            history_bytes,
            history_bytes_evicted: Counters::get(&self.history_bytes_evicted),
            subscriptions,
            queues,
            messages_in: Counters::get(&self.messages_in),
            messages_out: Counters::get(&self.messages_out),
            events_published: Counters::get(&self.events_published),
            drops: Counters::get(&self.dropped_frames),
            slow_consumer_disconnects: Counters::get(&self.slow_consumer_disconnects),
            heartbeat_timeouts: Counters::get(&self.heartbeat_timeouts),
            auth_timeouts: Counters::get(&self.auth_timeouts),
            handshakes_refused: Counters::get(&self.handshakes_refused),
        }
    }
}
