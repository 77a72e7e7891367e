//! The state every connection shares: configuration, the token table, admission, the engine
//! and its hub, counters and the registry of open connections' outboxes (for queue depths in the stats).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::admission::Admission;
use crate::auth::Authority;
use crate::config::Config;
use crate::engine::Engine;
use crate::error::Error;
use crate::hub::Hub;
use crate::outbox::Outbox;
use crate::stats::{Counters, QueueStats, Stats};

/// State shared by every connection.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: Config,
    pub authority: Authority,
    /// The node's topics: the engine's hub (its own, or the Redis engine's replicas).
    pub hub: Arc<Hub>,
    /// Where topics live (memory or Redis): publishes and subscribes go through it.
    pub engine: Engine,
    pub counters: Arc<Counters>,
    /// The connection caps; a connection holds its ticket from the upgrade on.
    pub admission: Arc<Admission>,
    outboxes: Mutex<HashMap<u64, Arc<Outbox>>>,
    next_id: AtomicU64,
}

impl Shared {
    /// Fails when the engine's configuration is invalid (a malformed `redis_url`).
    pub fn new(config: Config, authority: Authority) -> Result<Shared, Error> {
        let counters = Arc::new(Counters::default());
        let engine = Engine::new(&config, Arc::clone(&counters))?;
        Ok(Shared {
            hub: Arc::clone(engine.hub()),
            engine,
            authority,
            counters,
            admission: Arc::new(Admission::new(&config.limits)),
            outboxes: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            config,
        })
    }

    /// Counts a new connection and returns its id.
    pub fn register(&self) -> u64 {
        Counters::add(&self.counters.connections_total, 1);
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Keeps connection `id`'s outbox for the stats until [`Shared::unregister`].
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
        let (open, anonymous) = self.admission.open();
        self.counters.snapshot(
            (open as u64, anonymous as u64),
            (
                self.hub.topic_count() as u64,
                self.hub.history_bytes() as u64,
            ),
            self.hub.subscriptions(),
            queues,
        )
    }
}
