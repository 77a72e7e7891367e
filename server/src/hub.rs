//! Topics: their `seq`, snapshot, bounded history and subscribers, and the fan-out of events.
//!
//! Each topic has one lock. Publishing (assign `seq`, fold into the snapshot, append to the
//! history, queue the encoded frame for every subscriber) and subscribing (register, queue the
//! snapshot or the replay) both happen under it, so a subscriber sees every event after its
//! snapshot or replay exactly once, with no gap.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rtbus_protocol::catalog::{Family, TopicEvent, TopicSnapshot};
use rtbus_protocol::{Delivery, ErrorCode, MAX_SAFE_INTEGER, Seq, ServerMessage, Timestamp, Topic};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Bytes;

use crate::outbox::{Dirty, OutFrame, Outbox, Push, TEXT, frame};
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
    /// The topic's `seq` when the connection subscribed: every later event is queued for it.
    since: u64,
}

/// How a subscription starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Start {
    pub snapshot: bool,
    pub resume_after: Option<u64>,
}

/// Why a publish failed.
#[derive(Debug)]
pub(crate) struct SeqExhausted;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the state consistent before anything can panic.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Hub {
    pub fn new(history_limit: usize, counters: Arc<Counters>) -> Hub {
        Hub {
            topics: Mutex::new(HashMap::new()),
            history_limit,
            counters,
        }
    }

    /// The topic's cell, created empty on first use.
    fn cell(&self, topic: &Topic, family: Family) -> Arc<TopicCell> {
        let mut topics = lock(&self.topics);
        if let Some(cell) = topics.get(topic) {
            return Arc::clone(cell);
        }
        let cell = Arc::new(TopicCell {
            topic: topic.clone(),
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

    /// Registers connection `conn` on `topic` and queues what its subscription starts with (see
    /// [`TopicCell::attach`]). Returns the cell the connection is now registered on.
    pub fn subscribe(
        &self,
        topic: &Topic,
        family: Family,
        conn: u64,
        outbox: &Arc<Outbox>,
        start: Start,
    ) -> Arc<TopicCell> {
        loop {
            let cell = self.cell(topic, family);
            if cell.attach(conn, outbox, start) {
                return cell;
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

    /// Publishes `event` (whose JSON is `payload`) on the topic of `cell`: assigns the next
    /// `seq`, folds it into the snapshot, keeps it in the history and queues one shared encoded
    /// frame for every subscriber. Outboxes that were idle are noted in `dirty`: the publisher
    /// writes them out (see [`Dirty`]).
    pub fn publish(
        &self,
        topic: &Topic,
        family: Family,
        event: &TopicEvent,
        payload: Value,
        dirty: &mut Dirty,
    ) -> Result<Seq, SeqExhausted> {
        let mut cell = self.cell(topic, family);
        let mut state = loop {
            let state = lock(&cell.state);
            if !state.retired {
                break state;
            }
            drop(state);
            cell = self.cell(topic, family);
        };
        let cell = &*cell;
        let key = cell.key();
        let next = state.seq + 1;
        let seq = match Seq::new(next) {
            Ok(seq) if next <= MAX_SAFE_INTEGER => seq,
            _ => return Err(SeqExhausted),
        };
        state.seq = next;
        state.snapshot.fold(event);
        let message = ServerMessage::Event {
            id: None,
            data: Delivery {
                topic: cell.topic.clone(),
                seq,
                emitted_at: Timestamp::now(),
                is_replay: false,
                payload,
            },
        };
        let encoded = encode(&message);
        if self.history_limit > 0 {
            if let ServerMessage::Event { data, .. } = message {
                if state.history.len() >= self.history_limit {
                    state.history.pop_front();
                }
                state.history.push_back((next, data.payload));
            }
        }
        let mut dropped = 0;
        for sub in &state.subscribers {
            let frame = OutFrame {
                bytes: encoded.clone(),
                topic: key,
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
        Ok(seq)
    }
}

impl TopicCell {
    /// Identifies the topic in outbound queues (an address, so never one of the small keys the
    /// outbox reserves for replies and control frames).
    pub fn key(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// Registers connection `conn` and queues what its subscription starts with: a snapshot, a
    /// replay, or nothing. A connection that already holds the topic is not registered twice.
    /// Returns `false`, doing nothing, when the cell was retired meanwhile.
    fn attach(&self, conn: u64, outbox: &Arc<Outbox>, start: Start) -> bool {
        let key = self.key();
        let mut state = lock(&self.state);
        if state.retired {
            return false;
        }
        let seq = state.seq;
        let existing = state
            .subscribers
            .iter()
            .find(|s| s.conn == conn)
            .map(|s| s.since);
        let send_snapshot = match (start.resume_after, existing) {
            // A repeat: every event since the first subscription is already queued, so only a
            // fresh snapshot (when asked for, or when the resume point is not covered) is sent.
            (None, Some(_)) => start.snapshot,
            (Some(n), Some(since)) => !(since..=seq).contains(&n),
            (None, None) => start.snapshot,
            (Some(n), None) if n > seq => true,
            (Some(n), None) if n == seq => false,
            (Some(n), None) => {
                let missed = seq - n;
                if missed as usize <= state.history.len() {
                    let skip = state.history.len() - missed as usize;
                    for (event_seq, payload) in state.history.iter().skip(skip) {
                        let Ok(event_seq) = Seq::new(*event_seq) else {
                            continue;
                        };
                        let message = ServerMessage::Event {
                            id: None,
                            data: Delivery {
                                topic: self.topic.clone(),
                                seq: event_seq,
                                emitted_at: Timestamp::now(),
                                is_replay: true,
                                payload: payload.clone(),
                            },
                        };
                        outbox.push(OutFrame {
                            bytes: encode(&message),
                            topic: key,
                        });
                    }
                    false
                } else {
                    true
                }
            }
        };
        if send_snapshot {
            let message = ServerMessage::Snapshot {
                id: None,
                data: Delivery {
                    topic: self.topic.clone(),
                    seq: Seq::new(seq).unwrap_or(Seq::ZERO),
                    emitted_at: Timestamp::now(),
                    is_replay: false,
                    payload: state.snapshot.to_value(),
                },
            };
            outbox.push(OutFrame {
                bytes: encode(&message),
                topic: key,
            });
        }
        if existing.is_none() {
            state.subscribers.push(Subscriber {
                conn,
                outbox: Arc::clone(outbox),
                since: seq,
            });
        }
        true
    }

    /// Unregisters connection `conn`; after this no frame of the topic is queued for it.
    fn detach(&self, conn: u64) {
        let mut state = lock(&self.state);
        if let Some(at) = state.subscribers.iter().position(|s| s.conn == conn) {
            state.subscribers.swap_remove(at);
        }
    }
}
