//! The hub: the node's registry of topics, each a [`TopicLog`] and the connections subscribed to
//! it, and the fan-out of events to their outboxes. With [`next_epoch`] naming every new log,
//! it is also the in-memory engine (see [`crate::log`] for the engine boundary).
//!
//! Each topic has one cell with one state lock over its log and its subscribers. Publishing
//! (append to the log, queue the event's frame for every subscriber) happens under the topic's
//! lock. Subscribing locks the states of every topic of the request at once, so the
//! `subscribed` acknowledgement can say where each topic stands (epoch, `seq`, how it starts)
//! and is queued before any snapshot, replay or event of those topics.
//!
//! Memory: a topic that has had no subscriber and no publish for `topic_idle_timeout` is
//! forgotten by [`Hub::sweep`] (it comes back, when used again, as a new cell with a new epoch,
//! so a resume from before is a `reset`), and the histories of all topics together are held
//! under `max_history_bytes`: a publish that takes them past it shortens the histories of the
//! least recently used topics, oldest entries first, to nine tenths of the bound (their
//! snapshots stay; a resume the shortened history cannot cover is a `reset`).
//!
//! Invariants:
//!
//! - A log's epoch is chosen when its cell is created and never changes; no two cells, in this
//!   process or any other, share one (see [`next_epoch`]). A topic forgotten and created again
//!   gets a new cell, so a new epoch, and its `seq` starts at 0 again.
//! - A subscriber registered with `since = s` gets every event with `seq > s` queued exactly
//!   once; its acknowledgement, snapshot or replay was queued before the first of them.
//! - Lock order: the hub's map lock, then one state lock at a time (forgetting topics); or state
//!   locks in ascending cell address, without the map lock (subscribing); then an outbox's lock.
//!   Nothing takes the map lock while holding a state lock. Shortening histories takes one state
//!   lock at a time, holding nothing else.
//! - The hub's `history_bytes` is the sum of every live cell's log's `history_bytes`; both change
//!   only under that cell's state lock.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, TryLockError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rtbus_protocol::catalog::{Family, TopicEvent, TopicSnapshot};
use rtbus_protocol::{
    CloseCode, Epoch, RequestId, Seq, ServerMessage, SubscribedData, SubscribedTopic, Timestamp,
    Topic,
};
use serde_json::Value;

use crate::config::Limits;
use crate::log::{Appended, Ask, Entry, Plan, Resume, SeqExhausted, TopicLog};
use crate::outbox::{Dirty, OutFrame, Outbox, Push, REPLY};
use crate::stats::Counters;
use crate::wire::encode;

/// A new epoch: `<process nonce>-<cells created so far>`, both hex.
///
/// The nonce is 64 bits drawn once per process from the standard library's randomly keyed
/// hasher, mixed with the time and the process id, so a restarted process (or a second one on
/// the same machine) does not repeat another's epochs; the counter is process-wide, so servers
/// started one after another in one process (as the conformance harness does) do not either.
pub(crate) fn next_epoch() -> Epoch {
    static NONCE: OnceLock<u64> = OnceLock::new();
    static CELLS: AtomicU64 = AtomicU64::new(0);
    let nonce = *NONCE.get_or_init(|| {
        let mut hasher = RandomState::new().build_hasher();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        hasher.write_u128(now.as_nanos());
        hasher.write_u32(std::process::id());
        hasher.finish()
    });
    let count = CELLS.fetch_add(1, Ordering::Relaxed) + 1;
    // At most 16 + 1 + 16 characters, all of them hex digits or '-': always a valid epoch.
    Epoch::new(format!("{nonce:016x}-{count:x}")).expect("hex digits and '-' form an epoch")
}

/// The topics that are subscribed, or were published to and not forgotten since.
#[derive(Debug)]
pub(crate) struct Hub {
    topics: Mutex<HashMap<Topic, Arc<TopicCell>>>,
    history_limit: usize,
    idle_timeout: Duration,
    max_history_bytes: usize,
    /// The sum of every live cell's history weight.
    history_bytes: AtomicUsize,
    /// Held by whoever shortens histories; anyone else finding it taken leaves it to them.
    trimming: Mutex<()>,
    /// The origin of the cells' `touched` times.
    clock: Instant,
    counters: Arc<Counters>,
    /// Whether the logs are replicas of streams an engine keeps elsewhere ([`Hub::replicas`]).
    replicas: bool,
}

/// One topic.
#[derive(Debug)]
pub(crate) struct TopicCell {
    pub topic: Topic,
    state: Mutex<TopicState>,
    /// When the topic was last published to or last lost a subscriber (milliseconds of the
    /// hub's clock). Written under the state lock; read without it to find eviction candidates.
    touched: AtomicU64,
    /// The log's history weight, mirrored under the state lock for the same purpose.
    held: AtomicUsize,
}

#[derive(Debug)]
struct TopicState {
    log: TopicLog,
    subscribers: Vec<Subscriber>,
    /// Removed from the hub because it held nothing; whoever still has the cell must fetch a
    /// fresh one.
    retired: bool,
}

#[derive(Debug)]
struct Subscriber {
    conn: u64,
    outbox: Arc<Outbox>,
    /// The topic's `seq` when the connection first subscribed: every later event is queued
    /// for it.
    since: Seq,
}

/// What one topic of a `subscribe` asks for.
#[derive(Debug, Clone)]
pub(crate) struct Want {
    pub topic: Topic,
    pub family: Family,
    pub ask: Ask,
}

/// How one connection starts on one topic of its subscribe.
#[derive(Debug)]
struct Attach {
    plan: Plan,
    /// Whether the connection is new on the topic (a repeat is registered already).
    register: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the state consistent before anything can panic.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Hub {
    pub fn new(limits: &Limits, counters: Arc<Counters>) -> Hub {
        Hub {
            topics: Mutex::new(HashMap::new()),
            history_limit: limits.history_per_topic,
            idle_timeout: limits.topic_idle_timeout,
            max_history_bytes: limits.max_history_bytes,
            history_bytes: AtomicUsize::new(0),
            trimming: Mutex::new(()),
            clock: Instant::now(),
            counters,
            replicas: false,
        }
    }

    /// A hub whose logs are replicas of streams a shared engine keeps (the Redis engine): no
    /// cell is created here with an epoch of its own. The engine installs each topic's log
    /// ([`Hub::install`]) and appends to it what the stream delivers ([`Hub::deliver`]);
    /// subscribing ([`Hub::subscribe_replicas`]) is today's code on those logs. A replica
    /// without a local subscriber for `follow_linger` is forgotten by the sweep, which names it
    /// so the engine stops following it (the topic itself lives on in the engine's storage);
    /// an empty one is not forgotten sooner.
    pub fn replicas(limits: &Limits, counters: Arc<Counters>) -> Hub {
        Hub {
            replicas: true,
            idle_timeout: limits.follow_linger,
            ..Hub::new(limits, counters)
        }
    }

    /// How long a topic without subscribers (and, for the memory engine, without publishes)
    /// is kept: `topic_idle_timeout`, or `follow_linger` for replicas.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// Marks the replica of `topic` used now, so a sweep does not forget it for another
    /// `follow_linger` (a subscribe is about to attach to it).
    pub fn touch(&self, topic: &Topic) {
        if let Some(cell) = self.replica(topic) {
            cell.touched
                .store(self.millis(Instant::now()), Ordering::Relaxed);
        }
    }

    /// `at` in milliseconds of the hub's clock.
    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.clock).as_millis()).unwrap_or(u64::MAX)
    }

    /// What the histories of all topics weigh together.
    pub fn history_bytes(&self) -> usize {
        self.history_bytes.load(Ordering::Relaxed)
    }

    /// Forgets every topic that has had no subscriber and no publish for `topic_idle_timeout`;
    /// returns how many. Whoever still holds such a cell finds it retired and fetches a new one
    /// (with a new epoch).
    pub fn sweep(&self) -> Vec<Topic> {
        self.sweep_topics(Instant::now())
    }

    #[cfg(test)]
    fn sweep_at(&self, now: Instant) -> usize {
        self.sweep_topics(now).len()
    }

    fn sweep_topics(&self, now: Instant) -> Vec<Topic> {
        let now = self.millis(now);
        let idle = u64::try_from(self.idle_timeout.as_millis()).unwrap_or(u64::MAX);
        let is_idle =
            |cell: &TopicCell| now.saturating_sub(cell.touched.load(Ordering::Relaxed)) >= idle;
        let mut evicted = Vec::new();
        lock(&self.topics).retain(|_, cell| {
            if !is_idle(cell) {
                return true;
            }
            let mut state = lock(&cell.state);
            // Checked again under the lock: a publish or a subscriber may have come since.
            if !state.subscribers.is_empty() || !is_idle(cell) {
                return true;
            }
            state.retired = true;
            self.history_bytes
                .fetch_sub(state.log.history_bytes(), Ordering::Relaxed);
            cell.held.store(0, Ordering::Relaxed);
            evicted.push(cell.topic.clone());
            false
        });
        if !evicted.is_empty() {
            Counters::add(&self.counters.topics_evicted, evicted.len() as u64);
        }
        evicted
    }

    /// Brings the histories' total weight to nine tenths of `max_history_bytes`, shortening the
    /// least recently used topics' histories first, oldest entries first.
    fn trim_history(&self) {
        let _trimming = match self.trimming.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        let target = self.max_history_bytes - self.max_history_bytes / 10;
        let mut cells: Vec<(u64, Arc<TopicCell>)> = lock(&self.topics)
            .values()
            .filter(|cell| cell.held.load(Ordering::Relaxed) > 0)
            .map(|cell| (cell.touched.load(Ordering::Relaxed), Arc::clone(cell)))
            .collect();
        cells.sort_unstable_by_key(|(touched, _)| *touched);
        let mut freed_total = 0;
        for (_, cell) in cells {
            let total = self.history_bytes();
            if total <= target {
                break;
            }
            let mut state = lock(&cell.state);
            if state.retired {
                continue;
            }
            let freed = state.log.drop_oldest(total - target);
            cell.held
                .store(state.log.history_bytes(), Ordering::Relaxed);
            self.history_bytes.fetch_sub(freed, Ordering::Relaxed);
            freed_total += freed;
        }
        Counters::add(&self.counters.history_bytes_evicted, freed_total as u64);
    }

    /// The topic's cell, created empty (with a new epoch) on first use.
    fn cell(&self, topic: &Topic, family: Family) -> Arc<TopicCell> {
        let mut topics = lock(&self.topics);
        if let Some(cell) = topics.get(topic) {
            return Arc::clone(cell);
        }
        let log = TopicLog::new(topic.clone(), family, next_epoch(), self.history_limit);
        let cell = TopicCell::new(topic, log, self.millis(Instant::now()));
        topics.insert(topic.clone(), Arc::clone(&cell));
        cell
    }

    /// Subscribes connection `conn` to every topic of `wants` (a topic named twice counts
    /// once, by its first entry): queues the `subscribed` acknowledgement answering `id`, then
    /// per topic in request order its snapshot or replay, and registers the connection.
    /// Returns the cells of the distinct topics, in request order.
    pub fn subscribe(
        &self,
        id: Option<RequestId>,
        wants: &[Want],
        conn: u64,
        outbox: &Arc<Outbox>,
    ) -> Vec<Arc<TopicCell>> {
        let distinct = distinct(wants);
        loop {
            // Fetched without holding any state lock; a cell retired before it is locked
            // below is fetched again.
            let cells: Vec<Arc<TopicCell>> = distinct
                .iter()
                .map(|w| self.cell(&w.topic, w.family))
                .collect();
            if attach_all(&cells, &distinct, id.clone(), conn, outbox) {
                return cells;
            }
        }
    }

    /// Unregisters connection `conn` from `cell`, and forgets the topic when it holds nothing
    /// (no subscriber, nothing ever published), so subscribing to many names cannot grow the
    /// hub without bound.
    pub fn unsubscribe(&self, cell: &TopicCell, conn: u64) {
        cell.detach(conn, self.millis(Instant::now()));
        let mut topics = lock(&self.topics);
        let mut state = lock(&cell.state);
        if state.subscribers.is_empty() && state.log.is_empty() && !state.retired && !self.replicas
        {
            state.retired = true;
            topics.remove(&cell.topic);
        }
    }

    /// Topics the hub holds.
    pub fn topic_count(&self) -> usize {
        lock(&self.topics).len()
    }

    /// Subscribed connections per topic.
    pub fn subscriptions(&self) -> BTreeMap<String, u64> {
        let cells: Vec<Arc<TopicCell>> = lock(&self.topics).values().cloned().collect();
        cells
            .iter()
            .filter_map(|cell| {
                let n = lock(&cell.state).subscribers.len() as u64;
                (n > 0).then(|| (cell.topic.to_string(), n))
            })
            .collect()
    }

    /// Publishes `event` (whose JSON is `payload`) on `topic`: appends it to the topic's log
    /// (next `seq`, snapshot, history) and queues its one encoded frame for every subscriber.
    /// Outboxes that were idle are noted in `dirty`: the publisher writes them out (see
    /// [`Dirty`]). Returns the topic's epoch and the event's `seq`.
    pub fn publish(
        &self,
        topic: &Topic,
        family: Family,
        event: &TopicEvent,
        payload: Value,
        dirty: &mut Dirty,
    ) -> Result<(Epoch, Seq), SeqExhausted> {
        let mut cell = self.cell(topic, family);
        let mut state = loop {
            let state = lock(&cell.state);
            if !state.retired {
                break state;
            }
            drop(state);
            cell = self.cell(topic, family);
        };
        let now = Timestamp::now();
        let (epoch, seq) = self.append(&cell, &mut state, event, payload, now, dirty, true)?;
        drop(state);
        if self.history_bytes() > self.max_history_bytes {
            self.trim_history();
        }
        Ok((epoch, seq))
    }

    /// Appends `event` to the locked `state` of `cell` and queues its one frame for every
    /// subscriber; `touch` marks the topic used (a publish does, a replica's delivery not).
    #[allow(clippy::too_many_arguments)] // One step's inputs; bundling them would only rename them.
    fn append(
        &self,
        cell: &TopicCell,
        state: &mut TopicState,
        event: &TopicEvent,
        payload: Value,
        emitted_at: Timestamp,
        dirty: &mut Dirty,
        touch: bool,
    ) -> Result<(Epoch, Seq), SeqExhausted> {
        let before = state.log.history_bytes();
        let Appended {
            seq,
            epoch,
            framed: encoded,
        } = state.log.append(event, payload, emitted_at, encode)?;
        let after = state.log.history_bytes();
        cell.held.store(after, Ordering::Relaxed);
        if after >= before {
            self.history_bytes
                .fetch_add(after - before, Ordering::Relaxed);
        } else {
            self.history_bytes
                .fetch_sub(before - after, Ordering::Relaxed);
        }
        if touch {
            cell.touched
                .store(self.millis(Instant::now()), Ordering::Relaxed);
        }
        let mut dropped = 0;
        for sub in &state.subscribers {
            let frame = OutFrame {
                bytes: encoded.clone(),
                topic: cell.key(),
            };
            match sub.outbox.push(frame) {
                push @ (Push::First | Push::Queued) => dirty.note(&sub.outbox, push),
                Push::Overflowed | Push::Closed => dropped += 1,
            }
        }
        Counters::add(&self.counters.events_published, 1);
        if dropped > 0 {
            Counters::add(&self.counters.dropped_frames, dropped);
        }
        Ok((epoch, seq))
    }

    /// The replica of `topic`, when the engine follows it.
    pub fn replica(&self, topic: &Topic) -> Option<Arc<TopicCell>> {
        lock(&self.topics).get(topic).cloned()
    }

    /// Whether a new subscriber resuming on the replica of `topic` at `resume` needs events
    /// its history no longer holds (see [`TopicLog::needs_backfill`]): the `seq` up to which
    /// to fetch them.
    pub fn needs_backfill(&self, topic: &Topic, resume: &Resume) -> Option<Seq> {
        let cell = self.replica(topic)?;
        let state = lock(&cell.state);
        if state.retired {
            return None;
        }
        state.log.needs_backfill(resume)
    }

    /// Where the replica of `topic` stands: its epoch, `seq` and snapshot (what a publish on
    /// this node expects the shared stream to be at).
    pub fn replica_state(&self, topic: &Topic) -> Option<(Epoch, Seq, TopicSnapshot)> {
        let cell = self.replica(topic)?;
        let state = lock(&cell.state);
        (!state.retired).then(|| {
            (
                state.log.epoch().clone(),
                state.log.seq(),
                state.log.snapshot().clone(),
            )
        })
    }

    /// Installs `log` as the replica of its topic. A replica it replaces is retired and its
    /// subscribers are ended with `engineUnavailable` (4013): what they were sent belongs to a
    /// stream this node no longer continues without a doubt, so they resume (and are answered
    /// `resumed` or `reset`). Returns how many were ended.
    pub fn install(&self, topic: &Topic, log: TopicLog) -> usize {
        let cell = TopicCell::new(topic, log, self.millis(Instant::now()));
        {
            let state = lock(&cell.state);
            let held = state.log.history_bytes();
            cell.held.store(held, Ordering::Relaxed);
            self.history_bytes.fetch_add(held, Ordering::Relaxed);
        }
        let old = lock(&self.topics).insert(topic.clone(), cell);
        let ended = old.map_or(0, |old| {
            self.retire_cell(&old, "the topic's stream was reloaded")
        });
        if self.history_bytes() > self.max_history_bytes {
            self.trim_history();
        }
        ended
    }

    /// Retires `cell`: ends its subscribers with 4013 and `reason`, and forgets its history
    /// weight. Returns how many subscribers were ended.
    fn retire_cell(&self, cell: &TopicCell, reason: &'static str) -> usize {
        let mut state = lock(&cell.state);
        if state.retired {
            return 0;
        }
        state.retired = true;
        self.history_bytes
            .fetch_sub(state.log.history_bytes(), Ordering::Relaxed);
        cell.held.store(0, Ordering::Relaxed);
        for sub in &state.subscribers {
            sub.outbox.end(CloseCode::EngineUnavailable, reason);
        }
        let ended = state.subscribers.len();
        state.subscribers.clear();
        ended
    }

    /// Forgets the replica of `topic` (the engine can no longer continue it), ending its
    /// subscribers with 4013 and `reason`. Returns how many were ended.
    pub fn drop_replica(&self, topic: &Topic, reason: &'static str) -> usize {
        let removed = lock(&self.topics).remove(topic);
        removed.map_or(0, |cell| self.retire_cell(&cell, reason))
    }

    /// Forgets every replica (the engine lost its connection, or the storage lost its data),
    /// ending every subscriber with 4013 and `reason`. Returns how many were ended.
    pub fn drop_replicas(&self, reason: &'static str) -> usize {
        let cells: Vec<Arc<TopicCell>> = lock(&self.topics).drain().map(|(_, c)| c).collect();
        cells
            .iter()
            .map(|cell| self.retire_cell(cell, reason))
            .sum()
    }

    /// Appends an event the shared stream delivered to the replica of `topic`, and queues it
    /// for every local subscriber, if it is the replica's next one. `entry` carries the time
    /// the publishing node stamped, so every node sends the same frame.
    pub fn deliver(
        &self,
        topic: &Topic,
        epoch: &Epoch,
        event: &TopicEvent,
        entry: Entry,
        dirty: &mut Dirty,
    ) -> Delivered {
        let Entry {
            seq,
            emitted_at,
            payload,
        } = entry;
        let Some(cell) = self.replica(topic) else {
            return Delivered::NotFollowed;
        };
        let mut state = lock(&cell.state);
        if state.retired {
            return Delivered::NotFollowed;
        }
        if state.log.epoch() != epoch {
            return Delivered::OtherEpoch;
        }
        let have = state.log.seq();
        if seq <= have {
            return Delivered::Duplicate;
        }
        if have.next() != Some(seq) {
            let entry = Entry {
                seq,
                emitted_at,
                payload,
            };
            return Delivered::Gap(have, entry);
        }
        match self.append(&cell, &mut state, event, payload, emitted_at, dirty, false) {
            Ok(_) => {}
            // Not reached: `seq` is the next one, so it is within range.
            Err(SeqExhausted) => return Delivered::Duplicate,
        }
        drop(state);
        if self.history_bytes() > self.max_history_bytes {
            self.trim_history();
        }
        Delivered::Appended
    }

    /// Subscribes like [`Hub::subscribe`], on the replicas the engine installed. Fails with
    /// the first topic that has none (it was dropped since the engine installed it).
    pub fn subscribe_replicas(
        &self,
        id: Option<RequestId>,
        wants: &[Want],
        conn: u64,
        outbox: &Arc<Outbox>,
    ) -> Result<Vec<Arc<TopicCell>>, Topic> {
        let distinct = distinct(wants);
        loop {
            let cells = distinct
                .iter()
                .map(|w| self.replica(&w.topic).ok_or_else(|| w.topic.clone()))
                .collect::<Result<Vec<_>, Topic>>()?;
            if attach_all(&cells, &distinct, id.clone(), conn, outbox) {
                return Ok(cells);
            }
        }
    }
}

/// The distinct topics of `wants`, each by its first entry, in request order.
fn distinct(wants: &[Want]) -> Vec<&Want> {
    let mut distinct: Vec<&Want> = Vec::with_capacity(wants.len());
    for want in wants {
        if !distinct.iter().any(|w| w.topic == want.topic) {
            distinct.push(want);
        }
    }
    distinct
}

/// What became of an event delivered to a replica ([`Hub::deliver`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Delivered {
    /// Appended and queued for every local subscriber.
    Appended,
    /// The replica has it already (its `seq` is not past the replica's).
    Duplicate,
    /// Events between the replica's `seq` (given) and this one are missing; the event is
    /// handed back, to be delivered once they are filled.
    Gap(Seq, Entry),
    /// The event belongs to another stream than the replica's: the topic was lost and started
    /// again.
    OtherEpoch,
    /// This node does not follow the topic.
    NotFollowed,
}

/// Locks the state of every cell in ascending address order (the one order every multi-lock
/// holder uses, so two subscribes never wait on each other in a cycle). Returns the guards in
/// the order of `cells`. `cells` must be distinct.
fn lock_all(cells: &[Arc<TopicCell>]) -> Vec<MutexGuard<'_, TopicState>> {
    let mut order: Vec<usize> = (0..cells.len()).collect();
    order.sort_by_key(|&at| cells[at].key());
    let mut guards: Vec<(usize, MutexGuard<'_, TopicState>)> = order
        .into_iter()
        .map(|at| (at, lock(&cells[at].state)))
        .collect();
    guards.sort_by_key(|(at, _)| *at);
    guards.into_iter().map(|(_, guard)| guard).collect()
}

/// Attaches connection `conn` to every cell under all their locks: plans each topic's start,
/// queues the acknowledgement, then each topic's snapshot or replay, and registers.
/// Returns `false`, doing nothing, when a cell was retired before it was locked.
fn attach_all(
    cells: &[Arc<TopicCell>],
    wants: &[&Want],
    id: Option<RequestId>,
    conn: u64,
    outbox: &Arc<Outbox>,
) -> bool {
    let mut states = lock_all(cells);
    if states.iter().any(|state| state.retired) {
        return false;
    }
    let attaches: Vec<Attach> = states
        .iter()
        .zip(wants)
        .map(|(state, want)| {
            let since = state.since(conn);
            Attach {
                plan: state.log.plan(&want.ask, since),
                register: since.is_none(),
            }
        })
        .collect();
    let topics = cells
        .iter()
        .zip(&states)
        .zip(&attaches)
        .map(|((cell, state), attach)| SubscribedTopic {
            topic: cell.topic.clone(),
            epoch: state.log.epoch().clone(),
            seq: state.log.seq(),
            start: attach.plan.start,
        })
        .collect();
    let ack = ServerMessage::Subscribed {
        id,
        data: SubscribedData { topics },
    };
    outbox.push(OutFrame {
        bytes: encode(&ack),
        topic: REPLY,
    });
    for (((cell, state), attach), want) in cells
        .iter()
        .zip(states.iter_mut())
        .zip(&attaches)
        .zip(wants)
    {
        let backfill = want
            .ask
            .resume
            .as_ref()
            .map_or(&[][..], |r| &r.backfill[..]);
        cell.start(state, attach, backfill, conn, outbox);
    }
    true
}

impl TopicState {
    /// The `seq` at which connection `conn` subscribed, if it is subscribed.
    fn since(&self, conn: u64) -> Option<Seq> {
        self.subscribers
            .iter()
            .find(|s| s.conn == conn)
            .map(|s| s.since)
    }
}

impl TopicCell {
    /// A cell holding `log`, with no subscriber, touched at `now` (milliseconds of the hub's
    /// clock).
    fn new(topic: &Topic, log: TopicLog, now: u64) -> Arc<TopicCell> {
        Arc::new(TopicCell {
            topic: topic.clone(),
            state: Mutex::new(TopicState {
                log,
                subscribers: Vec::new(),
                retired: false,
            }),
            touched: AtomicU64::new(now),
            held: AtomicUsize::new(0),
        })
    }

    /// Identifies the topic in outbound queues (an address, so never one of the small keys the
    /// outbox reserves for replies and control frames), and orders state locks.
    pub fn key(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// Queues what the plan says follows the acknowledgement (from the history, or from
    /// `backfill` and the history), and registers the connection when it is new on the topic.
    /// `state` is this cell's, locked.
    fn start(
        &self,
        state: &mut TopicState,
        attach: &Attach,
        backfill: &[Entry],
        conn: u64,
        outbox: &Arc<Outbox>,
    ) {
        for message in state.log.follow(attach.plan.then, backfill) {
            outbox.push(OutFrame {
                bytes: encode(&message),
                topic: self.key(),
            });
        }
        if attach.register {
            let since = state.log.seq();
            state.subscribers.push(Subscriber {
                conn,
                outbox: Arc::clone(outbox),
                since,
            });
        }
    }

    /// Unregisters connection `conn` (at `now`, in milliseconds of the hub's clock); after this
    /// no frame of the topic is queued for it.
    fn detach(&self, conn: u64, now: u64) {
        let mut state = lock(&self.state);
        if let Some(at) = state.subscribers.iter().position(|s| s.conn == conn) {
            state.subscribers.swap_remove(at);
            self.touched.store(now, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_are_valid_and_never_repeat() {
        let a = next_epoch();
        let b = next_epoch();
        assert_ne!(a, b);
        let hex = |e: &Epoch| {
            e.as_str()
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b'-')
        };
        assert!(hex(&a) && hex(&b), "{a} {b}");
        assert!(a.as_str().len() <= rtbus_protocol::MAX_EPOCH_LEN);
        // Same process, same nonce; the counter tells them apart.
        assert_eq!(a.as_str().split('-').next(), b.as_str().split('-').next());
    }

    use rtbus_protocol::{Start, decode_server_frame};
    use serde_json::json;

    use crate::wire::{TEXT, unframe};

    fn hub(history_limit: usize) -> Hub {
        Hub::new(&limits(history_limit), Arc::default())
    }

    fn limits(history_limit: usize) -> Limits {
        Limits {
            history_per_topic: history_limit,
            ..Limits::default()
        }
    }

    fn outbox(limit: usize) -> Arc<Outbox> {
        Arc::new(Outbox::detached(limit, Arc::default()))
    }

    fn topic(name: &str) -> Topic {
        Topic::new(name).unwrap()
    }

    fn want(name: &str, snapshot: bool, resume: Option<(&Epoch, u64)>) -> Want {
        let topic = topic(name);
        Want {
            family: Family::of(&topic).unwrap(),
            topic,
            ask: Ask {
                snapshot,
                resume: resume.map(|(epoch, after)| Resume {
                    backfill: Vec::new(),
                    epoch: epoch.clone(),
                    after: Seq::new(after).unwrap(),
                }),
            },
        }
    }

    fn publish(hub: &Hub, name: &str, n: u64) -> (Epoch, Seq) {
        let topic = topic(name);
        let payload = json!({"n": n});
        let event = TopicEvent::decode(&topic, &payload).unwrap();
        let family = Family::of(&topic).unwrap();
        hub.publish(&topic, family, &event, payload, &mut Dirty::default())
            .unwrap()
    }

    /// What a queued message says, in short.
    #[derive(Debug, PartialEq, Eq)]
    enum Sent {
        /// Each topic's entry: name, seq, start (and the epoch, checked separately).
        Ack(Vec<(String, u64, Start)>),
        Snapshot(String, u64),
        Event(String, u64),
        Replay(String, u64),
    }

    /// Takes every frame queued for `outbox`, decoded, checking that each delivery carries its
    /// topic's epoch as the acknowledgement named it.
    fn sent(outbox: &Outbox, epochs: &mut HashMap<String, Epoch>) -> Vec<Sent> {
        outbox
            .take_queued()
            .iter()
            .map(|frame| {
                let (opcode, json) = unframe(&frame.bytes).expect("a complete frame");
                assert_eq!(opcode, TEXT);
                let text = std::str::from_utf8(json).unwrap();
                match decode_server_frame(text).unwrap() {
                    ServerMessage::Subscribed { data, .. } => Sent::Ack(
                        data.topics
                            .into_iter()
                            .map(|t| {
                                epochs.insert(t.topic.to_string(), t.epoch);
                                (t.topic.to_string(), t.seq.get(), t.start)
                            })
                            .collect(),
                    ),
                    ServerMessage::Snapshot { data, .. } | ServerMessage::Event { data, .. }
                        if epochs.get(data.topic.as_str()) != Some(&data.epoch) =>
                    {
                        panic!(
                            "{} arrived under another epoch than acknowledged",
                            data.topic
                        )
                    }
                    ServerMessage::Snapshot { data, .. } => {
                        Sent::Snapshot(data.topic.to_string(), data.seq.get())
                    }
                    ServerMessage::Event { data, .. } if data.is_replay => {
                        Sent::Replay(data.topic.to_string(), data.seq.get())
                    }
                    ServerMessage::Event { data, .. } => {
                        Sent::Event(data.topic.to_string(), data.seq.get())
                    }
                    other => panic!("unexpected {other:?}"),
                }
            })
            .collect()
    }

    fn ack(entries: &[(&str, u64, Start)]) -> Sent {
        Sent::Ack(
            entries
                .iter()
                .map(|(name, seq, start)| ((*name).to_owned(), *seq, *start))
                .collect(),
        )
    }

    fn s(name: &str) -> String {
        name.to_owned()
    }

    #[test]
    fn the_ack_comes_first_then_each_snapshot_in_request_order_then_live_events() {
        let hub = hub(8);
        publish(&hub, "custom.a", 1);
        publish(&hub, "custom.a", 2);
        let out = outbox(1 << 20);
        let wants = [
            want("custom.b", true, None),
            want("custom.a", true, None),
            want("custom.b", false, None),
        ];
        let cells = hub.subscribe(None, &wants, 7, &out);
        assert_eq!(cells.len(), 2, "a topic named twice is held once");
        let mut epochs = HashMap::new();
        assert_eq!(
            sent(&out, &mut epochs),
            [
                ack(&[
                    ("custom.b", 0, Start::Snapshot),
                    ("custom.a", 2, Start::Snapshot)
                ]),
                Sent::Snapshot(s("custom.b"), 0),
                Sent::Snapshot(s("custom.a"), 2),
            ]
        );
        publish(&hub, "custom.a", 3);
        publish(&hub, "custom.b", 1);
        assert_eq!(
            sent(&out, &mut epochs),
            [Sent::Event(s("custom.a"), 3), Sent::Event(s("custom.b"), 1)]
        );
    }

    #[test]
    fn a_resume_replays_what_was_missed_and_hands_over_to_live_events_without_a_gap() {
        let hub = hub(8);
        let (epoch, _) = publish(&hub, "custom.a", 1);
        for n in 2..=3 {
            publish(&hub, "custom.a", n);
        }
        let live = outbox(1 << 20);
        hub.subscribe(None, &[want("custom.a", false, None)], 1, &live);
        for n in 4..=5 {
            publish(&hub, "custom.a", n);
        }
        let resumed = outbox(1 << 20);
        hub.subscribe(
            None,
            &[want("custom.a", true, Some((&epoch, 3)))],
            2,
            &resumed,
        );
        publish(&hub, "custom.a", 6);
        let mut epochs = HashMap::new();
        assert_eq!(
            sent(&live, &mut epochs),
            [
                ack(&[("custom.a", 3, Start::Live)]),
                Sent::Event(s("custom.a"), 4),
                Sent::Event(s("custom.a"), 5),
                Sent::Event(s("custom.a"), 6),
            ]
        );
        assert_eq!(
            sent(&resumed, &mut epochs),
            [
                ack(&[("custom.a", 5, Start::Resumed)]),
                Sent::Replay(s("custom.a"), 4),
                Sent::Replay(s("custom.a"), 5),
                Sent::Event(s("custom.a"), 6),
            ]
        );
    }

    #[test]
    fn a_resume_the_history_cannot_cover_is_a_reset_with_a_fresh_snapshot() {
        let hub = hub(2);
        let (epoch, _) = publish(&hub, "custom.a", 1);
        for n in 2..=4 {
            publish(&hub, "custom.a", n);
        }
        let out = outbox(1 << 20);
        hub.subscribe(None, &[want("custom.a", true, Some((&epoch, 1)))], 1, &out);
        publish(&hub, "custom.a", 5);
        assert_eq!(
            sent(&out, &mut HashMap::new()),
            [
                ack(&[("custom.a", 4, Start::Reset)]),
                Sent::Snapshot(s("custom.a"), 4),
                Sent::Event(s("custom.a"), 5),
            ]
        );
    }

    #[test]
    fn a_repeat_subscribe_is_acknowledged_again_and_never_duplicates_delivery() {
        let hub = hub(8);
        let out = outbox(1 << 20);
        hub.subscribe(None, &[want("custom.a", false, None)], 1, &out);
        let (epoch, _) = publish(&hub, "custom.a", 1);
        hub.subscribe(None, &[want("custom.a", true, Some((&epoch, 1)))], 1, &out);
        hub.subscribe(None, &[want("custom.a", true, Some((&epoch, 0)))], 1, &out);
        publish(&hub, "custom.a", 2);
        assert_eq!(
            sent(&out, &mut HashMap::new()),
            [
                ack(&[("custom.a", 0, Start::Live)]),
                Sent::Event(s("custom.a"), 1),
                // Queued already: nothing is re-sent.
                ack(&[("custom.a", 1, Start::Resumed)]),
                ack(&[("custom.a", 1, Start::Resumed)]),
                Sent::Event(s("custom.a"), 2),
            ]
        );
        assert_eq!(hub.subscriptions(), BTreeMap::from([(s("custom.a"), 1)]));
    }

    #[test]
    fn an_event_is_framed_once_for_every_subscriber_and_unsubscribing_stops_it() {
        let hub = hub(8);
        let (a, b) = (outbox(1 << 20), outbox(1 << 20));
        let cell = hub.subscribe(None, &[want("custom.a", false, None)], 1, &a);
        hub.subscribe(None, &[want("custom.a", false, None)], 2, &b);
        a.take_queued();
        b.take_queued();
        publish(&hub, "custom.a", 1);
        let (fa, fb) = (a.take_queued(), b.take_queued());
        assert_eq!((fa.len(), fb.len()), (1, 1));
        assert_eq!(
            fa[0].bytes.as_ptr(),
            fb[0].bytes.as_ptr(),
            "both subscribers share one buffer"
        );
        assert_eq!(fa[0].topic, cell[0].key());
        hub.unsubscribe(&cell[0], 1);
        publish(&hub, "custom.a", 2);
        assert!(a.take_queued().is_empty());
        assert_eq!(b.take_queued().len(), 1);
        assert_eq!(hub.subscriptions(), BTreeMap::from([(s("custom.a"), 1)]));
    }

    #[test]
    fn a_forgotten_topic_comes_back_with_a_new_epoch_and_a_published_one_is_kept() {
        let hub = hub(8);
        let out = outbox(1 << 20);
        let mut epochs = HashMap::new();
        let cells = hub.subscribe(None, &[want("custom.a", true, None)], 1, &out);
        sent(&out, &mut epochs);
        let first = epochs["custom.a"].clone();
        hub.unsubscribe(&cells[0], 1);
        assert_eq!(
            hub.topic_count(),
            0,
            "an empty topic nobody holds is forgotten"
        );
        // A resume from the forgotten stream is not honoured.
        let cells = hub.subscribe(None, &[want("custom.a", true, Some((&first, 0)))], 1, &out);
        assert_eq!(
            sent(&out, &mut epochs),
            [
                ack(&[("custom.a", 0, Start::Reset)]),
                Sent::Snapshot(s("custom.a"), 0)
            ]
        );
        let second = epochs["custom.a"].clone();
        assert_ne!(first, second);
        // Published to: kept, with its epoch, after the last subscriber leaves.
        let (epoch, _) = publish(&hub, "custom.a", 1);
        assert_eq!(epoch, second);
        hub.unsubscribe(&cells[0], 1);
        assert_eq!(hub.topic_count(), 1);
        assert_eq!(publish(&hub, "custom.a", 2), (second, Seq::new(2).unwrap()));
    }

    #[test]
    fn a_retired_cell_never_removes_the_topic_that_replaced_it() {
        let hub = hub(8);
        let (a, b) = (outbox(1 << 20), outbox(1 << 20));
        let stale = hub.subscribe(None, &[want("custom.b", true, None)], 1, &a);
        hub.unsubscribe(&stale[0], 1);
        let fresh = hub.subscribe(None, &[want("custom.b", false, None)], 2, &b);
        assert!(!Arc::ptr_eq(&stale[0], &fresh[0]));
        hub.unsubscribe(&stale[0], 1);
        assert_eq!(hub.topic_count(), 1);
        b.take_queued();
        publish(&hub, "custom.b", 1);
        assert_eq!(
            sent(
                &b,
                &mut HashMap::from([(s("custom.b"), fresh_epoch(&hub, "custom.b"))])
            ),
            [Sent::Event(s("custom.b"), 1)]
        );
    }

    fn fresh_epoch(hub: &Hub, name: &str) -> Epoch {
        let cell = hub.cell(&topic(name), Family::Custom);
        lock(&cell.state).log.epoch().clone()
    }

    #[test]
    fn an_idle_topic_is_forgotten_and_comes_back_with_a_new_epoch_a_subscribed_one_stays() {
        let counters = Arc::new(Counters::default());
        let limits = Limits {
            topic_idle_timeout: Duration::from_secs(60),
            ..limits(8)
        };
        let hub = Hub::new(&limits, Arc::clone(&counters));
        let (old_epoch, _) = publish(&hub, "custom.idle", 1);
        publish(&hub, "custom.held", 1);
        let out = outbox(1 << 20);
        let held = hub.subscribe(None, &[want("custom.held", false, None)], 1, &out);
        let now = Instant::now();
        assert_eq!(
            hub.sweep_at(now + Duration::from_secs(59)),
            0,
            "not idle yet"
        );
        assert!(hub.history_bytes() > 0);
        assert_eq!(hub.sweep_at(now + Duration::from_secs(61)), 1);
        assert_eq!(hub.topic_count(), 1, "the subscribed topic stays");
        assert_eq!(Counters::get(&counters.topics_evicted), 1);
        let held_bytes = lock(&held[0].state).log.history_bytes();
        assert_eq!(
            hub.history_bytes(),
            held_bytes,
            "the forgotten history is gone"
        );
        // Its last subscriber leaving starts its idle time: 50 ms after the publish here.
        std::thread::sleep(Duration::from_millis(50));
        let left = Instant::now();
        hub.unsubscribe(&held[0], 1);
        assert_eq!(hub.sweep_at(left + Duration::from_millis(59_980)), 0);
        assert_eq!(hub.sweep_at(left + Duration::from_secs(60)), 1);
        assert_eq!(hub.history_bytes(), 0);
        // Used again: a new stream, so the old resume point is a reset.
        out.take_queued();
        hub.subscribe(
            None,
            &[want("custom.idle", false, Some((&old_epoch, 1)))],
            2,
            &out,
        );
        assert_eq!(
            sent(&out, &mut HashMap::new()),
            [ack(&[("custom.idle", 0, Start::Reset)])]
        );
    }

    #[test]
    fn all_histories_stay_under_their_bound_and_the_least_recently_used_shrink_first() {
        let counters = Arc::new(Counters::default());
        let one = crate::log::weight(&json!({"n": 1}));
        // Room for 100 events, however many topics hold them.
        let limits = Limits {
            max_history_bytes: 100 * one,
            ..limits(1024)
        };
        let hub = Hub::new(&limits, Arc::clone(&counters));
        let (first_epoch, _) = publish(&hub, "custom.t0", 1);
        for n in 1..300 {
            publish(&hub, &format!("custom.t{n}"), 1);
            assert!(hub.history_bytes() <= 100 * one, "after topic {n}");
        }
        let (last_epoch, _) = publish(&hub, "custom.t299", 2);
        assert!(
            hub.history_bytes() >= 90 * one - one,
            "{}",
            hub.history_bytes()
        );
        assert!(Counters::get(&counters.history_bytes_evicted) >= 200 * one as u64);
        let sum: usize = lock(&hub.topics)
            .values()
            .map(|cell| lock(&cell.state).log.history_bytes())
            .sum();
        assert_eq!(
            sum,
            hub.history_bytes(),
            "the total is the sum of the logs'"
        );
        // The oldest topic lost its history: a resume is a reset; the newest keeps it.
        let out = outbox(1 << 20);
        hub.subscribe(
            None,
            &[
                want("custom.t0", false, Some((&first_epoch, 0))),
                want("custom.t299", false, Some((&last_epoch, 0))),
            ],
            1,
            &out,
        );
        assert_eq!(
            sent(&out, &mut HashMap::new()),
            [
                ack(&[
                    ("custom.t0", 1, Start::Reset),
                    ("custom.t299", 2, Start::Resumed)
                ]),
                Sent::Replay(s("custom.t299"), 1),
                Sent::Replay(s("custom.t299"), 2),
            ]
        );
    }

    #[test]
    fn a_subscriber_past_its_limit_is_dropped_and_the_others_still_get_the_event() {
        let counters = Arc::new(Counters::default());
        let hub = Hub::new(&limits(8), Arc::clone(&counters));
        let small = outbox(1000);
        let large = outbox(1 << 20);
        hub.subscribe(None, &[want("custom.a", false, None)], 1, &small);
        hub.subscribe(None, &[want("custom.a", false, None)], 2, &large);
        let topic = topic("custom.a");
        let payload = json!({"text": "x".repeat(2000)});
        let event = TopicEvent::decode(&topic, &payload).unwrap();
        hub.publish(
            &topic,
            Family::Custom,
            &event,
            payload,
            &mut Dirty::default(),
        )
        .unwrap();
        assert_eq!(small.health(), crate::outbox::Health::Overflowed);
        assert_eq!(large.take_queued().len(), 2, "the ack and the event");
        assert_eq!(Counters::get(&counters.dropped_frames), 1);
        assert_eq!(Counters::get(&counters.events_published), 1);
    }

    #[test]
    fn a_replica_delivers_in_order_drops_duplicates_reports_gaps_and_ends_subscribers_on_reload() {
        let hub = Hub::replicas(&limits(8), Arc::default());
        let name = "custom.r";
        let out = outbox(1 << 20);
        assert_eq!(
            hub.subscribe_replicas(None, &[want(name, true, None)], 1, &out)
                .unwrap_err(),
            topic(name),
            "no replica, no subscription"
        );
        let e1 = Epoch::new("e1").unwrap();
        let log = TopicLog::new(topic(name), Family::Custom, e1.clone(), 8);
        assert_eq!(hub.install(&topic(name), log), 0);
        let cells = hub
            .subscribe_replicas(None, &[want(name, false, None)], 1, &out)
            .unwrap();
        let deliver = |epoch: &Epoch, n: u64| {
            let payload = json!({"n": n});
            let event = TopicEvent::decode(&topic(name), &payload).unwrap();
            let entry = Entry {
                seq: Seq::new(n).unwrap(),
                emitted_at: Timestamp::now(),
                payload,
            };
            hub.deliver(&topic(name), epoch, &event, entry, &mut Dirty::default())
        };
        assert_eq!(deliver(&e1, 1), Delivered::Appended);
        assert_eq!(deliver(&e1, 1), Delivered::Duplicate);
        assert!(
            matches!(deliver(&e1, 3), Delivered::Gap(have, entry) if have.get() == 1 && entry.seq.get() == 3),
            "a gap hands the event back"
        );
        assert_eq!(deliver(&e1, 2), Delivered::Appended);
        assert_eq!(
            deliver(&Epoch::new("e2").unwrap(), 1),
            Delivered::OtherEpoch
        );
        let mut epochs = HashMap::new();
        assert_eq!(
            sent(&out, &mut epochs),
            [
                ack(&[(name, 0, Start::Live)]),
                Sent::Event(s(name), 1),
                Sent::Event(s(name), 2),
            ]
        );
        // Reloaded under another epoch: the subscriber is ended with 4013, the new log serves.
        let e2 = Epoch::new("e2").unwrap();
        let log = TopicLog::new(topic(name), Family::Custom, e2.clone(), 8);
        assert_eq!(hub.install(&topic(name), log), 1);
        assert_eq!(
            out.health(),
            crate::outbox::Health::Ended(
                CloseCode::EngineUnavailable,
                "the topic's stream was reloaded"
            )
        );
        hub.unsubscribe(&cells[0], 1);
        assert_eq!(deliver(&e2, 1), Delivered::Appended);
        assert_eq!(
            hub.replica_state(&topic(name)).map(|(e, s, _)| (e, s)),
            Some((e2, Seq::new(1).unwrap()))
        );
        let other = outbox(1 << 20);
        hub.subscribe_replicas(None, &[want(name, true, None)], 2, &other)
            .unwrap();
        assert_eq!(hub.drop_replicas("lost"), 1);
        assert_eq!(hub.topic_count(), 0);
        assert_eq!(hub.history_bytes(), 0);
        assert_eq!(
            deliver(&Epoch::new("e2").unwrap(), 2),
            Delivered::NotFollowed
        );
    }
}
