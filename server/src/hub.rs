//! Topics: their epoch, `seq`, snapshot, bounded history and subscribers, and the fan-out of
//! events.
//!
//! Each topic has one cell with one state lock. Publishing (assign `seq`, fold into the
//! snapshot, append to the history, queue the encoded frame for every subscriber) happens under
//! the topic's lock. Subscribing locks the states of every topic of the request at once, so the
//! `subscribed` acknowledgement can say where each topic stands (epoch, `seq`, how it starts)
//! and is queued before any snapshot, replay or event of those topics.
//!
//! Invariants:
//!
//! - A cell's epoch is chosen when the cell is created and never changes; no two cells, in this
//!   process or any other, share one (see [`next_epoch`]). A topic forgotten and created again
//!   gets a new cell, so a new epoch, and its `seq` starts at 0 again.
//! - A subscriber registered with `since = s` gets every event with `seq > s` queued exactly
//!   once; its acknowledgement, snapshot or replay was queued before the first of them.
//! - Lock order: the hub's map lock, then one state lock (forgetting a topic); or state locks in
//!   ascending cell address, without the map lock (subscribing); then an outbox's lock. Nothing
//!   takes the map lock while holding a state lock.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use rtbus_protocol::catalog::{Family, TopicEvent, TopicSnapshot};
use rtbus_protocol::{
    Delivery, Epoch, ErrorCode, MAX_SAFE_INTEGER, RequestId, Seq, ServerMessage, Start,
    SubscribedData, SubscribedTopic, Timestamp, Topic,
};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Bytes;

use crate::outbox::{Dirty, OutFrame, Outbox, Push, REPLY, TEXT, frame};
use crate::stats::Counters;

/// Encodes a server message once as a complete WebSocket text frame; the result is shared by
/// every connection it goes to.
pub(crate) fn encode(message: &ServerMessage) -> Bytes {
    match serde_json::to_vec(message) {
        Ok(json) => frame(TEXT, &json),
        // Unreachable for protocol types (all map keys are strings); answer rather than panic.
        Err(err) => {
            let fallback = ServerMessage::error(
                None,
                ErrorCode::Internal,
                format!("cannot encode reply: {err}"),
            );
            frame(TEXT, &serde_json::to_vec(&fallback).unwrap_or_default())
        }
    }
}

/// A new epoch: `<process nonce>-<cells created so far>`, both hex.
///
/// The nonce is 64 bits drawn once per process from the standard library's randomly keyed
/// hasher, mixed with the time and the process id, so a restarted process (or a second one on
/// the same machine) does not repeat another's epochs; the counter is process-wide, so servers
/// started one after another in one process (as the conformance harness does) do not either.
fn next_epoch() -> Epoch {
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

/// All topics that were ever subscribed or published to.
#[derive(Debug)]
pub(crate) struct Hub {
    topics: Mutex<HashMap<Topic, Arc<TopicCell>>>,
    history_limit: usize,
    counters: Arc<Counters>,
}

/// One topic.
#[derive(Debug)]
pub(crate) struct TopicCell {
    pub topic: Topic,
    /// The name of this cell's `seq` stream, carried by every frame of it.
    pub epoch: Epoch,
    state: Mutex<TopicState>,
}

#[derive(Debug)]
struct TopicState {
    seq: u64,
    snapshot: TopicSnapshot,
    /// The latest events, oldest first, `seq` consecutive and ending at `seq`.
    history: VecDeque<(u64, Value)>,
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
    since: u64,
}

/// What one topic of a `subscribe` asks for.
#[derive(Debug, Clone)]
pub(crate) struct Want {
    pub topic: Topic,
    pub family: Family,
    pub snapshot: bool,
    /// The epoch and last `seq` the client saw, when it resumes.
    pub resume: Option<(Epoch, u64)>,
}

/// How one topic of a subscription starts: what the acknowledgement says and what is queued
/// after it.
#[derive(Debug, Clone, Copy)]
struct Plan {
    start: Start,
    then: Then,
    /// Whether the connection is new on the topic (a repeat is registered already).
    register: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    Nothing,
    Snapshot,
    /// The history's events after this `seq`, marked as replays.
    ReplayAfter(u64),
}

/// Why a publish failed.
#[derive(Debug)]
pub(crate) struct SeqExhausted;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the state consistent before anything can panic.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `seq` as the wire type; every stored `seq` is within range (publish refuses to pass it).
fn wire_seq(seq: u64) -> Seq {
    Seq::new(seq).unwrap_or(Seq::ZERO)
}

impl Hub {
    pub fn new(history_limit: usize, counters: Arc<Counters>) -> Hub {
        Hub {
            topics: Mutex::new(HashMap::new()),
            history_limit,
            counters,
        }
    }

    /// The topic's cell, created empty (with a new epoch) on first use.
    fn cell(&self, topic: &Topic, family: Family) -> Arc<TopicCell> {
        let mut topics = lock(&self.topics);
        if let Some(cell) = topics.get(topic) {
            return Arc::clone(cell);
        }
        let cell = Arc::new(TopicCell {
            topic: topic.clone(),
            epoch: next_epoch(),
            state: Mutex::new(TopicState {
                seq: 0,
                snapshot: TopicSnapshot::empty(family),
                history: VecDeque::new(),
                subscribers: Vec::new(),
                retired: false,
            }),
        });
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
        let mut distinct: Vec<&Want> = Vec::with_capacity(wants.len());
        for want in wants {
            if !distinct.iter().any(|w| w.topic == want.topic) {
                distinct.push(want);
            }
        }
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
        cell.detach(conn);
        let mut topics = lock(&self.topics);
        let mut state = lock(&cell.state);
        if state.subscribers.is_empty() && state.seq == 0 && !state.retired {
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

    /// Publishes `event` (whose JSON is `payload`) on `topic`: assigns the next `seq`, folds it
    /// into the snapshot, keeps it in the history and queues one shared encoded frame for every
    /// subscriber. Outboxes that were idle are noted in `dirty`: the publisher writes them out
    /// (see [`Dirty`]). Returns the topic's epoch and the event's `seq`.
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
        let next = state.seq + 1;
        let seq = match Seq::new(next) {
            Ok(seq) if next <= MAX_SAFE_INTEGER => seq,
            _ => return Err(SeqExhausted),
        };
        state.seq = next;
        state.snapshot.fold(event);
        let message = cell.delivery(seq, false, payload, true);
        let encoded = encode(&message);
        if let (true, ServerMessage::Event { data, .. }) = (self.history_limit > 0, message) {
            if state.history.len() >= self.history_limit {
                state.history.pop_front();
            }
            state.history.push_back((next, data.payload));
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
        drop(state);
        Counters::add(&self.counters.events_published, 1);
        if dropped > 0 {
            Counters::add(&self.counters.dropped_frames, dropped);
        }
        Ok((cell.epoch.clone(), seq))
    }
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

/// Attaches connection `conn` to every cell under all their locks: computes each topic's
/// start, queues the acknowledgement, then each topic's snapshot or replay, and registers.
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
    let plans: Vec<Plan> = states
        .iter()
        .zip(cells)
        .zip(wants)
        .map(|((state, cell), want)| state.plan(&cell.epoch, conn, want))
        .collect();
    let topics = cells
        .iter()
        .zip(&states)
        .zip(&plans)
        .map(|((cell, state), plan)| SubscribedTopic {
            topic: cell.topic.clone(),
            epoch: cell.epoch.clone(),
            seq: wire_seq(state.seq),
            start: plan.start,
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
    for ((cell, state), plan) in cells.iter().zip(states.iter_mut()).zip(&plans) {
        cell.start(state, *plan, conn, outbox);
    }
    true
}

impl TopicState {
    /// How a subscription of connection `conn` to this topic (whose epoch is `epoch`) starts.
    ///
    /// A resume is honoured only with the current epoch and when every event after its `seq`
    /// reaches the connection: from the history for a new subscriber, or because it was queued
    /// already for a repeat one (whose resume point must then lie within its subscription).
    /// Anything else is a reset with nothing replayed.
    fn plan(&self, epoch: &Epoch, conn: u64, want: &Want) -> Plan {
        let seq = self.seq;
        let since = self
            .subscribers
            .iter()
            .find(|s| s.conn == conn)
            .map(|s| s.since);
        let fresh = if want.snapshot {
            (Start::Snapshot, Then::Snapshot)
        } else {
            (Start::Live, Then::Nothing)
        };
        let reset = if want.snapshot {
            (Start::Reset, Then::Snapshot)
        } else {
            (Start::Reset, Then::Nothing)
        };
        let (start, then) = match (&want.resume, since) {
            (None, _) => fresh,
            (Some((asked, _)), _) if asked != epoch => reset,
            (Some((_, n)), Some(since)) if (since..=seq).contains(n) => {
                (Start::Resumed, Then::Nothing)
            }
            (Some(_), Some(_)) => reset,
            (Some((_, n)), None) if *n <= seq && seq - n <= self.history.len() as u64 => {
                (Start::Resumed, Then::ReplayAfter(*n))
            }
            (Some(_), None) => reset,
        };
        Plan {
            start,
            then,
            register: since.is_none(),
        }
    }
}

impl TopicCell {
    /// Identifies the topic in outbound queues (an address, so never one of the small keys the
    /// outbox reserves for replies and control frames), and orders state locks.
    pub fn key(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// A snapshot or event frame of this topic.
    fn delivery(&self, seq: Seq, is_replay: bool, payload: Value, event: bool) -> ServerMessage {
        let data = Delivery {
            topic: self.topic.clone(),
            epoch: self.epoch.clone(),
            seq,
            emitted_at: Timestamp::now(),
            is_replay,
            payload,
        };
        if event {
            ServerMessage::Event { id: None, data }
        } else {
            ServerMessage::Snapshot { id: None, data }
        }
    }

    /// Queues what `plan` says follows the acknowledgement, and registers the connection when
    /// it is new on the topic. `state` is this cell's, locked.
    fn start(&self, state: &mut TopicState, plan: Plan, conn: u64, outbox: &Arc<Outbox>) {
        let push = |message: &ServerMessage| {
            outbox.push(OutFrame {
                bytes: encode(message),
                topic: self.key(),
            });
        };
        match plan.then {
            Then::Nothing => {}
            Then::Snapshot => {
                let payload = state.snapshot.to_value();
                push(&self.delivery(wire_seq(state.seq), false, payload, false));
            }
            Then::ReplayAfter(after) => {
                for (seq, payload) in state.history.iter().filter(|(seq, _)| *seq > after) {
                    push(&self.delivery(wire_seq(*seq), true, payload.clone(), true));
                }
            }
        }
        if plan.register {
            state.subscribers.push(Subscriber {
                conn,
                outbox: Arc::clone(outbox),
                since: state.seq,
            });
        }
    }

    /// Unregisters connection `conn`; after this no frame of the topic is queued for it.
    fn detach(&self, conn: u64) {
        let mut state = lock(&self.state);
        if let Some(at) = state.subscribers.iter().position(|s| s.conn == conn) {
            state.subscribers.swap_remove(at);
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
}
