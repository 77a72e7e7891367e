//! The topic log: one topic's stream (its epoch and `seq`), the family's snapshot folded from
//! every event, a bounded history of the latest events, and the snapshot-or-replay decision a
//! subscription gets. A pure value: no lock, no outbox, no socket; whoever holds it decides how
//! it is shared.
//!
//! # The engine boundary
//!
//! A [`TopicLog`] is what an engine keeps per topic. The in-memory engine is the hub holding one
//! log per topic under the topic's lock; an engine that keeps its logs elsewhere (a Redis
//! stream shared by several nodes) takes over exactly these operations:
//!
//! - **naming the stream**: a log is created with its epoch and never changes it; an engine
//!   that loses a topic's data starts a new log under a new epoch, so no `seq` is ever read
//!   against the wrong stream;
//! - **[`TopicLog::append`]**: assign the next `seq` (refusing past 2^53−1), fold the event into
//!   the snapshot, keep it in the history;
//! - **[`TopicLog::plan`]** and **[`TopicLog::follow`]**: what a subscription starts with (the
//!   acknowledgement's `start`, and the snapshot or the replayed events behind it);
//! - **[`TopicLog::history_bytes`]** and **[`TopicLog::drop_oldest`]**: what the history weighs,
//!   and shortening it from the oldest end when the node bounds history memory in total (which
//!   topics to shorten is the hub's decision).
//!
//! What stays on the node, above this module: the registry of topics and their subscribers
//! (with the `seq` each subscribed at), the lock that makes "append, then queue to every
//! subscriber" and "plan, queue, then register" one step, framing each message once, the
//! outboxes and the connection layer. A shared engine must add one thing the local lock gives
//! for free: events reach the node in `seq` order, and a subscriber gets only those after the
//! `seq` its acknowledgement named.

use std::collections::VecDeque;

use rtbus_protocol::catalog::{Family, TopicEvent, TopicSnapshot};
use rtbus_protocol::{Delivery, Epoch, Seq, ServerMessage, Start, Timestamp, Topic};
use serde_json::Value;

/// One topic's stream: epoch, `seq`, snapshot and the latest events.
#[derive(Debug)]
pub(crate) struct TopicLog {
    topic: Topic,
    /// The name of this log's `seq` stream, carried by every frame of it.
    epoch: Epoch,
    /// The `seq` of the last event appended (0 before the first).
    seq: Seq,
    snapshot: TopicSnapshot,
    /// The latest events, oldest first, `seq` consecutive and ending at `seq`.
    history: VecDeque<Held>,
    /// Most events `history` keeps.
    history_limit: usize,
    /// The sum of the history's weights.
    history_bytes: usize,
}

/// One event kept for replay, with what it weighs ([`weight`]).
#[derive(Debug)]
struct Held {
    seq: Seq,
    /// When it was published: every delivery of it, live or replayed, carries this.
    emitted_at: Timestamp,
    payload: Value,
    weight: usize,
}

/// One event of a stream kept elsewhere (a shared engine's), as a restored log takes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub seq: Seq,
    /// When the event was published, as the publishing node stamped it.
    pub emitted_at: Timestamp,
    pub payload: Value,
}

/// An estimate of the memory one history entry takes: its slot, and every node of its payload
/// (each value's own slot, string bytes, object keys and a map entry's bookkeeping). Within a
/// small factor of what the allocator hands out, and cheap: one walk of a payload the decoder
/// walked already. Payloads nest at most 64 levels, so the recursion is shallow.
pub(crate) fn weight(payload: &Value) -> usize {
    const ENTRY: usize = std::mem::size_of::<Held>();
    ENTRY - std::mem::size_of::<Value>() + node_weight(payload)
}

fn node_weight(value: &Value) -> usize {
    const NODE: usize = std::mem::size_of::<Value>();
    /// A `BTreeMap` entry's share of its node, beyond the key and the value.
    const MAP_ENTRY: usize = 16;
    NODE + match value {
        Value::String(text) => text.len(),
        Value::Array(items) => items.iter().map(node_weight).sum(),
        Value::Object(map) => map
            .iter()
            .map(|(key, v)| std::mem::size_of::<String>() + key.len() + MAP_ENTRY + node_weight(v))
            .sum(),
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

/// What one topic of a `subscribe` asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ask {
    /// Whether a snapshot should follow when nothing is resumed.
    pub snapshot: bool,
    /// Where the client left off, when it resumes.
    pub resume: Option<Resume>,
}

/// A resume point: the epoch and the last `seq` a client saw of it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resume {
    pub epoch: Epoch,
    pub after: Seq,
    /// Events of `epoch` after `after`, oldest first, that a shared engine fetched from the
    /// stream it keeps because this log's history no longer reaches back to `after` (see
    /// [`TopicLog::needs_backfill`]); empty otherwise. Used only when, together with the
    /// history, they cover every event after `after` without a gap.
    pub backfill: Vec<Entry>,
}

/// How one topic of a subscription starts: what the acknowledgement says and what follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    pub start: Start,
    pub then: Then,
}

/// What follows a topic's entry in the acknowledgement, before any live event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Then {
    Nothing,
    /// A snapshot at the log's `seq`.
    Snapshot,
    /// The history's events after this `seq`, marked as replays.
    ReplayAfter(Seq),
    /// The events after this `seq`, marked as replays: the resume's backfill up to where the
    /// history starts, then the history.
    BackfillAfter(Seq),
}

/// An appended event: its `seq`, the epoch it belongs to, and what the append's `frame` made of
/// it.
#[derive(Debug)]
pub(crate) struct Appended<F> {
    pub seq: Seq,
    pub epoch: Epoch,
    pub framed: F,
}

/// Why an append failed: the topic's `seq` reached 2^53−1, the largest a client can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the topic has used up its seq range")]
pub(crate) struct SeqExhausted;

impl TopicLog {
    /// An empty log of `topic` (of `family`) named `epoch`, keeping the latest `history_limit`
    /// events.
    pub fn new(topic: Topic, family: Family, epoch: Epoch, history_limit: usize) -> TopicLog {
        TopicLog {
            topic,
            epoch,
            seq: Seq::ZERO,
            snapshot: TopicSnapshot::empty(family),
            history: VecDeque::new(),
            history_limit,
            history_bytes: 0,
        }
    }

    /// A log that continues a stream kept elsewhere (a shared engine's): named `epoch`, at
    /// `seq`, with its `snapshot` at that `seq` and `history`, the latest events oldest first.
    /// Only the longest run of `history` that is `seq` consecutive and ends at `seq` is kept
    /// (anything else could not be replayed without a gap), at most `history_limit` of it.
    pub fn restore(
        topic: Topic,
        epoch: Epoch,
        seq: Seq,
        snapshot: TopicSnapshot,
        history: Vec<Entry>,
        history_limit: usize,
    ) -> TopicLog {
        let mut kept: Vec<Entry> = Vec::new();
        let mut want = seq;
        for entry in history.into_iter().rev() {
            if entry.seq != want || kept.len() >= history_limit || entry.seq == Seq::ZERO {
                break;
            }
            want = Seq::new(entry.seq.get() - 1).unwrap_or(Seq::ZERO);
            kept.push(entry);
        }
        let mut history_bytes = 0;
        let history = kept
            .into_iter()
            .rev()
            .map(|entry| {
                let weight = weight(&entry.payload);
                history_bytes += weight;
                Held {
                    seq: entry.seq,
                    emitted_at: entry.emitted_at,
                    payload: entry.payload,
                    weight,
                }
            })
            .collect();
        TopicLog {
            topic,
            epoch,
            seq,
            snapshot,
            history,
            history_limit,
            history_bytes,
        }
    }

    pub fn epoch(&self) -> &Epoch {
        &self.epoch
    }

    /// The family's snapshot at [`TopicLog::seq`].
    pub fn snapshot(&self) -> &TopicSnapshot {
        &self.snapshot
    }

    /// The `seq` of the last event (0 before the first).
    pub fn seq(&self) -> Seq {
        self.seq
    }

    /// Whether nothing was ever appended: such a log holds nothing worth keeping.
    pub fn is_empty(&self) -> bool {
        self.seq == Seq::ZERO
    }

    /// Appends `event` (whose JSON is `payload`, published at `emitted_at`): assigns the next
    /// `seq`, folds the event into the snapshot and keeps it in the history, with its time, so
    /// that a replay of it equals the live frame but for `isReplay`. `frame` gets the live
    /// `event` message once,
    /// before its payload moves into the history and its epoch into the result (so neither is
    /// copied for the purpose). On [`SeqExhausted`] nothing changes and `frame` is not called.
    pub fn append<F>(
        &mut self,
        event: &TopicEvent,
        payload: Value,
        emitted_at: Timestamp,
        frame: impl FnOnce(&ServerMessage) -> F,
    ) -> Result<Appended<F>, SeqExhausted> {
        let seq = self.seq.next().ok_or(SeqExhausted)?;
        self.seq = seq;
        self.snapshot.fold(event);
        let message = self.delivery(seq, false, payload, emitted_at, Kind::Event);
        let framed = frame(&message);
        let (epoch, emitted_at, payload) = match message {
            ServerMessage::Event { data, .. } => (data.epoch, data.emitted_at, Some(data.payload)),
            // Not reached: `message` is the event built above.
            _ => (self.epoch.clone(), Timestamp::now(), None),
        };
        if let (true, Some(payload)) = (self.history_limit > 0, payload) {
            if self.history.len() >= self.history_limit {
                self.drop_oldest(1);
            }
            let weight = weight(&payload);
            self.history_bytes += weight;
            self.history.push_back(Held {
                seq,
                emitted_at,
                payload,
                weight,
            });
        }
        Ok(Appended { seq, epoch, framed })
    }

    /// What the history weighs ([`weight`] of every entry), for a bound over all topics.
    pub fn history_bytes(&self) -> usize {
        self.history_bytes
    }

    /// Forgets the oldest history entries until `at_least` bytes are freed or the history is
    /// empty; returns the bytes freed. The history still ends at `seq`, only shorter: a resume
    /// from before it is then planned as a reset.
    pub fn drop_oldest(&mut self, at_least: usize) -> usize {
        let mut freed = 0;
        while freed < at_least {
            let Some(held) = self.history.pop_front() else {
                break;
            };
            freed += held.weight;
        }
        self.history_bytes -= freed;
        freed
    }

    /// How a subscription asking `ask` starts. `since` is the `seq` at which the connection
    /// subscribed to this topic, when it already holds it (every event after `since` was queued
    /// for it already).
    ///
    /// A resume is honoured only with this log's epoch and when every event after its `seq`
    /// reaches the connection: from the history for a new subscriber, or because it was queued
    /// already for a repeat one (whose resume point must then lie within its subscription).
    /// Anything else is a reset with nothing replayed: a replay is all or nothing.
    pub fn plan(&self, ask: &Ask, since: Option<Seq>) -> Plan {
        let (start, then) = match (&ask.resume, since) {
            (None, _) if ask.snapshot => (Start::Snapshot, Then::Snapshot),
            (None, _) => (Start::Live, Then::Nothing),
            (Some(resume), _) if resume.epoch != self.epoch => self.reset(ask),
            (Some(resume), Some(since)) if (since..=self.seq).contains(&resume.after) => {
                (Start::Resumed, Then::Nothing)
            }
            (Some(_), Some(_)) => self.reset(ask),
            (Some(resume), None) if self.holds_after(resume.after) => {
                (Start::Resumed, Then::ReplayAfter(resume.after))
            }
            (Some(resume), None) if self.backfilled(resume.after, &resume.backfill) => {
                (Start::Resumed, Then::BackfillAfter(resume.after))
            }
            (Some(_), None) => self.reset(ask),
        };
        Plan { start, then }
    }

    fn reset(&self, ask: &Ask) -> (Start, Then) {
        let then = if ask.snapshot {
            Then::Snapshot
        } else {
            Then::Nothing
        };
        (Start::Reset, then)
    }

    /// Whether the history holds every event after `after` (none are missing when `after` is
    /// the log's `seq`), and `after` is not ahead of the log.
    fn holds_after(&self, after: Seq) -> bool {
        after <= self.seq && self.seq.get() - after.get() <= self.history.len() as u64
    }

    /// The `seq` of the event just before the history's oldest (the log's `seq` when the
    /// history is empty): the history holds every event after it.
    fn history_start(&self) -> Seq {
        Seq::new(self.seq.get() - self.history.len() as u64).unwrap_or(Seq::ZERO)
    }

    /// Whether a new subscriber resuming at `resume` would be reset only because the history
    /// no longer reaches back to it (same epoch, not ahead): then the events after
    /// `resume.after` up to `seq`, fetched from the stream a shared engine keeps, would let it
    /// resume. Returns the log's `seq`, up to which they should be fetched.
    pub fn needs_backfill(&self, resume: &Resume) -> Option<Seq> {
        let behind = resume.after <= self.seq && !self.holds_after(resume.after);
        (resume.epoch == self.epoch && behind).then_some(self.seq)
    }

    /// Whether `backfill` (oldest first) and the history together hold every event after
    /// `after`: it runs without a gap from `after + 1` to at least the history's start, and
    /// not past the log's `seq`.
    fn backfilled(&self, after: Seq, backfill: &[Entry]) -> bool {
        let (Some(first), Some(last)) = (backfill.first(), backfill.last()) else {
            return false;
        };
        let consecutive = backfill
            .iter()
            .zip(first.seq.get()..)
            .all(|(entry, n)| entry.seq.get() == n);
        after <= self.seq
            && after.next() == Some(first.seq)
            && consecutive
            && last.seq >= self.history_start()
            && last.seq <= self.seq
    }

    /// The messages `then` stands for, in the order they are sent: a snapshot at the log's
    /// `seq` (stamped now), or the events after a `seq` marked as replays (each with the time
    /// it was published), from the history or from `backfill` and then the history. A replay
    /// they cannot hold in full yields nothing ([`TopicLog::plan`] never asks for one).
    pub fn follow<'a>(
        &'a self,
        then: Then,
        backfill: &'a [Entry],
    ) -> impl Iterator<Item = ServerMessage> + 'a {
        let snapshot = (then == Then::Snapshot).then(|| {
            let now = Timestamp::now();
            let state = self.snapshot.to_value();
            self.delivery(self.seq, false, state, now, Kind::Snapshot)
        });
        let (backfill, from) = match then {
            Then::ReplayAfter(after) if self.holds_after(after) => {
                // The history ends at `seq`; the events after `after` are its last ones.
                let from = self.history.len() - (self.seq.get() - after.get()) as usize;
                (&[][..], from)
            }
            Then::BackfillAfter(after) if self.backfilled(after, backfill) => {
                // The backfill's events up to the history's start, then the whole history.
                let start = self.history_start();
                let upto = backfill.partition_point(|entry| entry.seq <= start);
                (&backfill[..upto], 0)
            }
            _ => (&[][..], self.history.len()),
        };
        let backfilled = backfill.iter().map(|entry| {
            let (payload, at) = (entry.payload.clone(), entry.emitted_at.clone());
            self.delivery(entry.seq, true, payload, at, Kind::Event)
        });
        let replay = self.history.range(from..).map(|held| {
            let (payload, at) = (held.payload.clone(), held.emitted_at.clone());
            self.delivery(held.seq, true, payload, at, Kind::Event)
        });
        snapshot.into_iter().chain(backfilled).chain(replay)
    }

    /// A snapshot or event frame of this log.
    fn delivery(
        &self,
        seq: Seq,
        is_replay: bool,
        payload: Value,
        emitted_at: Timestamp,
        kind: Kind,
    ) -> ServerMessage {
        let data = Delivery {
            topic: self.topic.clone(),
            epoch: self.epoch.clone(),
            seq,
            emitted_at,
            is_replay,
            payload,
        };
        match kind {
            Kind::Event => ServerMessage::Event { id: None, data },
            Kind::Snapshot => ServerMessage::Snapshot { id: None, data },
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Snapshot,
    Event,
}

#[cfg(test)]
mod tests {
    use super::*;

    use rtbus_protocol::MAX_SAFE_INTEGER;
    use serde_json::json;

    const TOPIC: &str = "drives.pressure";

    fn epoch(name: &str) -> Epoch {
        Epoch::new(name).unwrap()
    }

    fn seq(n: u64) -> Seq {
        Seq::new(n).unwrap()
    }

    fn payload(n: u64) -> Value {
        json!({"drive": format!("/d{n}"), "pressure": 0.5, "threshold": 0.9})
    }

    /// A log of `drives.pressure` named `e1` with `published` events appended.
    fn log(history_limit: usize, published: u64) -> TopicLog {
        let topic = Topic::new(TOPIC).unwrap();
        let family = Family::of(&topic).unwrap();
        let mut log = TopicLog::new(topic, family, epoch("e1"), history_limit);
        for n in 1..=published {
            append(&mut log, n).unwrap();
        }
        log
    }

    fn append(log: &mut TopicLog, n: u64) -> Result<(Seq, ServerMessage), SeqExhausted> {
        let topic = Topic::new(TOPIC).unwrap();
        let event = TopicEvent::decode(&topic, &payload(n)).unwrap();
        let appended = log.append(&event, payload(n), Timestamp::now(), ServerMessage::clone)?;
        assert_eq!(&appended.epoch, log.epoch());
        Ok((appended.seq, appended.framed))
    }

    /// Event `n` as a shared engine's stream holds it, published at `n` seconds past 09:00.
    fn entry(n: u64) -> Entry {
        Entry {
            seq: seq(n),
            emitted_at: Timestamp::parse(&format!("2026-11-21T09:00:{n:02}.000Z")).unwrap(),
            payload: payload(n),
        }
    }

    fn ask(snapshot: bool, resume: Option<(&str, u64)>) -> Ask {
        Ask {
            snapshot,
            resume: resume.map(|(name, after)| Resume {
                epoch: epoch(name),
                after: seq(after),
                backfill: Vec::new(),
            }),
        }
    }

    /// What a message is, in short: kind, seq, replay flag and payload.
    fn summary(message: &ServerMessage) -> (&'static str, u64, bool, Value) {
        match message {
            ServerMessage::Snapshot { data, .. } => (
                "snapshot",
                data.seq.get(),
                data.is_replay,
                data.payload.clone(),
            ),
            ServerMessage::Event { data, .. } => (
                "event",
                data.seq.get(),
                data.is_replay,
                data.payload.clone(),
            ),
            other => panic!("not a delivery: {other:?}"),
        }
    }

    #[test]
    fn every_case_of_the_snapshot_or_replay_decision() {
        use Start::*;
        /// What the case is, the history limit, events published, the ask, the `seq` the
        /// connection subscribed at (if it holds the topic), and the plan's start and then.
        type Case = (&'static str, usize, u64, Ask, Option<u64>, Start, Then);
        #[rustfmt::skip]
        let cases: &[Case] = &[
            ("fresh with a snapshot", 4, 0, ask(true, None), None, Snapshot, Then::Snapshot),
            ("fresh with a snapshot after events", 4, 6, ask(true, None), None, Snapshot, Then::Snapshot),
            ("fresh without a snapshot", 4, 6, ask(false, None), None, Live, Then::Nothing),
            ("repeat without a resume", 4, 6, ask(true, None), Some(2), Snapshot, Then::Snapshot),
            ("repeat without a resume or snapshot", 4, 6, ask(false, None), Some(2), Live, Then::Nothing),
            ("resume with another epoch", 4, 6, ask(true, Some(("e0", 5))), None, Reset, Then::Snapshot),
            ("resume with another epoch, no snapshot", 4, 6, ask(false, Some(("e0", 5))), None, Reset, Then::Nothing),
            ("repeat resume with another epoch", 4, 6, ask(true, Some(("e0", 5))), Some(2), Reset, Then::Snapshot),
            ("repeat resume at its subscription's start", 4, 6, ask(true, Some(("e1", 2))), Some(2), Resumed, Then::Nothing),
            ("repeat resume inside its subscription", 4, 6, ask(true, Some(("e1", 4))), Some(2), Resumed, Then::Nothing),
            ("repeat resume at the topic's seq", 4, 6, ask(true, Some(("e1", 6))), Some(2), Resumed, Then::Nothing),
            ("repeat resume before its subscription", 4, 6, ask(true, Some(("e1", 1))), Some(2), Reset, Then::Snapshot),
            ("repeat resume before its subscription, no snapshot", 4, 6, ask(false, Some(("e1", 1))), Some(2), Reset, Then::Nothing),
            ("repeat resume ahead of seq", 4, 6, ask(true, Some(("e1", 7))), Some(2), Reset, Then::Snapshot),
            ("resume within the history", 4, 6, ask(true, Some(("e1", 4))), None, Resumed, Then::ReplayAfter(seq(4))),
            ("resume up to date", 4, 6, ask(true, Some(("e1", 6))), None, Resumed, Then::ReplayAfter(seq(6))),
            ("resume at the history's edge", 4, 6, ask(true, Some(("e1", 2))), None, Resumed, Then::ReplayAfter(seq(2))),
            ("resume one beyond the history", 4, 6, ask(true, Some(("e1", 1))), None, Reset, Then::Snapshot),
            ("resume one beyond the history, no snapshot", 4, 6, ask(false, Some(("e1", 1))), None, Reset, Then::Nothing),
            ("resume from 0 within the history", 4, 3, ask(true, Some(("e1", 0))), None, Resumed, Then::ReplayAfter(seq(0))),
            ("resume ahead of seq", 4, 6, ask(true, Some(("e1", 7))), None, Reset, Then::Snapshot),
            ("resume of an empty topic ahead of seq", 4, 0, ask(false, Some(("e1", 1))), None, Reset, Then::Nothing),
            ("history limit 0, up to date", 0, 6, ask(true, Some(("e1", 6))), None, Resumed, Then::ReplayAfter(seq(6))),
            ("history limit 0, one behind", 0, 6, ask(true, Some(("e1", 5))), None, Reset, Then::Snapshot),
        ];
        for (what, limit, published, ask, since, start, then) in cases {
            let log = log(*limit, *published);
            let plan = log.plan(ask, since.map(seq));
            assert_eq!(
                plan,
                Plan {
                    start: *start,
                    then: *then
                },
                "{what}"
            );
        }
    }

    #[test]
    fn a_plan_implies_its_snapshot_or_its_replay() {
        let log = log(4, 6);
        let sent = |then| {
            log.follow(then, &[])
                .map(|m| summary(&m))
                .collect::<Vec<_>>()
        };
        assert!(sent(Then::Nothing).is_empty());
        let snapshot = sent(Then::Snapshot);
        assert_eq!(snapshot.len(), 1);
        assert_eq!(snapshot[0].0, "snapshot");
        assert_eq!(
            snapshot[0].1, 6,
            "a snapshot names the seq of the last event folded in"
        );
        assert!(!snapshot[0].2);
        // The snapshot is the family's fold of every event, not of the history only.
        let expected = (1..=6).fold(
            TopicSnapshot::empty(Family::of(&Topic::new(TOPIC).unwrap()).unwrap()),
            |mut s, n| {
                let event = TopicEvent::decode(&Topic::new(TOPIC).unwrap(), &payload(n)).unwrap();
                s.fold(&event);
                s
            },
        );
        assert_eq!(snapshot[0].3, expected.to_value());
        let replay = |after| {
            sent(Then::ReplayAfter(seq(after)))
                .into_iter()
                .map(|(kind, n, is_replay, payload)| {
                    assert_eq!(kind, "event");
                    assert!(is_replay, "a replayed event is marked as one");
                    assert_eq!(payload, self::payload(n));
                    n
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(replay(4), [5, 6]);
        assert_eq!(replay(2), [3, 4, 5, 6], "the history's edge");
        assert_eq!(replay(6), Vec::<u64>::new(), "up to date");
        // All or nothing: a replay the history cannot hold, or one ahead, sends nothing.
        assert_eq!(replay(1), Vec::<u64>::new());
        assert_eq!(replay(7), Vec::<u64>::new());
    }

    #[test]
    fn a_replay_carries_the_time_the_event_was_published_so_it_equals_the_live_frame() {
        let topic = Topic::new(TOPIC).unwrap();
        let mut log = TopicLog::new(topic.clone(), Family::of(&topic).unwrap(), epoch("e1"), 4);
        let mut live = Vec::new();
        for n in 1..=3 {
            let at = entry(n);
            let event = TopicEvent::decode(&topic, &at.payload).unwrap();
            let appended = log.append(&event, at.payload, at.emitted_at, ServerMessage::clone);
            live.push(appended.unwrap().framed);
        }
        let replayed: Vec<ServerMessage> = log.follow(Then::ReplayAfter(seq(0)), &[]).collect();
        assert_eq!(replayed.len(), 3);
        for (live, replayed) in live.iter().zip(&replayed) {
            let (ServerMessage::Event { data: l, .. }, ServerMessage::Event { data: r, .. }) =
                (live, replayed)
            else {
                panic!("events expected: {live:?} {replayed:?}");
            };
            assert_eq!(
                &Delivery {
                    is_replay: false,
                    ..r.clone()
                },
                l,
                "all but isReplay"
            );
            assert!(r.is_replay);
        }
        assert_eq!(
            emitted_at_of(&replayed[2]),
            entry(3).emitted_at,
            "the stamp given at append, not the replay's time"
        );
        // A restored log replays the times its entries carry.
        let restored = TopicLog::restore(
            topic,
            epoch("e1"),
            seq(3),
            log.snapshot().clone(),
            (1..=3).map(entry).collect(),
            4,
        );
        let again: Vec<ServerMessage> = restored.follow(Then::ReplayAfter(seq(0)), &[]).collect();
        assert_eq!(again, replayed);
    }

    fn emitted_at_of(message: &ServerMessage) -> Timestamp {
        match message {
            ServerMessage::Event { data, .. } | ServerMessage::Snapshot { data, .. } => {
                data.emitted_at.clone()
            }
            other => panic!("not a delivery: {other:?}"),
        }
    }

    #[test]
    fn append_numbers_events_and_keeps_the_latest_in_the_history() {
        let mut log = log(2, 0);
        assert!(log.is_empty());
        let (first, message) = append(&mut log, 1).unwrap();
        assert_eq!(first, seq(1));
        assert_eq!(summary(&message), ("event", 1, false, payload(1)));
        let ServerMessage::Event { data, .. } = &message else {
            unreachable!()
        };
        assert_eq!((data.topic.as_str(), &data.epoch), (TOPIC, &epoch("e1")));
        for n in 2..=5 {
            assert_eq!(append(&mut log, n).unwrap().0, seq(n));
        }
        assert!(!log.is_empty());
        assert_eq!(log.seq(), seq(5));
        let held: Vec<u64> = log.history.iter().map(|h| h.seq.get()).collect();
        assert_eq!(held, [4, 5]);
        let weights: usize = log.history.iter().map(|h| h.weight).sum();
        assert_eq!(log.history_bytes(), weights);
    }

    #[test]
    fn dropping_the_oldest_entries_frees_their_weight_and_turns_older_resumes_into_resets() {
        let mut log = log(8, 6);
        let total = log.history_bytes();
        let one = weight(&payload(1));
        assert_eq!(total, 6 * one, "equal payloads weigh the same");
        assert_eq!(log.drop_oldest(one + 1), 2 * one, "whole entries only");
        assert_eq!(log.history_bytes(), 4 * one);
        let held: Vec<u64> = log.history.iter().map(|h| h.seq.get()).collect();
        assert_eq!(held, [3, 4, 5, 6]);
        assert_eq!(
            log.plan(&ask(true, Some(("e1", 2))), None).start,
            Start::Resumed
        );
        assert_eq!(
            log.plan(&ask(true, Some(("e1", 1))), None).start,
            Start::Reset
        );
        assert_eq!(log.drop_oldest(usize::MAX), 4 * one);
        assert_eq!(log.history_bytes(), 0);
        assert_eq!(log.drop_oldest(1), 0);
        assert_eq!(
            log.plan(&ask(true, Some(("e1", 6))), None).start,
            Start::Resumed
        );
        assert_eq!(
            log.plan(&ask(true, Some(("e1", 5))), None).start,
            Start::Reset
        );
    }

    #[test]
    fn a_resume_past_a_shortened_history_is_resumed_from_a_backfill_that_closes_the_gap() {
        let mut log = log(8, 6);
        log.drop_oldest(2 * weight(&payload(1)));
        let held: Vec<u64> = log.history.iter().map(|h| h.seq.get()).collect();
        assert_eq!(held, [3, 4, 5, 6]);
        let at = |name: &str, after: u64| Resume {
            epoch: epoch(name),
            after: seq(after),
            backfill: Vec::new(),
        };
        assert_eq!(
            log.needs_backfill(&at("e1", 1)),
            Some(seq(6)),
            "up to the log's seq"
        );
        assert_eq!(log.needs_backfill(&at("e1", 0)), Some(seq(6)));
        assert_eq!(
            log.needs_backfill(&at("e1", 2)),
            None,
            "the history covers it"
        );
        assert_eq!(log.needs_backfill(&at("e0", 1)), None, "another stream");
        assert_eq!(log.needs_backfill(&at("e1", 7)), None, "ahead of the log");
        // What a resume after `after` with a backfill of `seqs` starts with and replays.
        let resume = |after: u64, seqs: &[u64]| {
            let ask = Ask {
                snapshot: true,
                resume: Some(Resume {
                    backfill: seqs.iter().map(|&n| entry(n)).collect(),
                    ..at("e1", after)
                }),
            };
            let plan = log.plan(&ask, None);
            let backfill = &ask.resume.as_ref().unwrap().backfill;
            let sent: Vec<(&'static str, u64, bool)> = log
                .follow(plan.then, backfill)
                .map(|m| {
                    let (kind, n, is_replay, _) = summary(&m);
                    (kind, n, is_replay)
                })
                .collect();
            (plan.start, sent)
        };
        let replayed = |seqs: &[u64]| seqs.iter().map(|&n| ("event", n, true)).collect::<Vec<_>>();
        assert_eq!(
            resume(1, &[2]),
            (Start::Resumed, replayed(&[2, 3, 4, 5, 6]))
        );
        assert_eq!(
            resume(1, &[2, 3, 4, 5, 6]),
            (Start::Resumed, replayed(&[2, 3, 4, 5, 6])),
            "an overlap is sent once"
        );
        assert_eq!(
            resume(0, &[1, 2]),
            (Start::Resumed, replayed(&[1, 2, 3, 4, 5, 6]))
        );
        let reset = (Start::Reset, vec![("snapshot", 6, false)]);
        assert_eq!(resume(0, &[1]), reset, "short of the history's start");
        assert_eq!(resume(0, &[2]), reset, "not from the resume point on");
        assert_eq!(resume(0, &[1, 3]), reset, "with a gap");
        assert_eq!(resume(1, &[2, 3, 4, 5, 6, 7]), reset, "past the log");
        assert_eq!(resume(0, &[]), reset, "without one");
        // A backfilled replay carries the stamps the stream held.
        let ask_with = vec![entry(2)];
        let sent: Vec<ServerMessage> = log.follow(Then::BackfillAfter(seq(1)), &ask_with).collect();
        assert_eq!(emitted_at_of(&sent[0]), entry(2).emitted_at);
        assert!(
            log.follow(Then::BackfillAfter(seq(0)), &ask_with)
                .next()
                .is_none()
        );
        // The history covering the resume needs no backfill, and ignores one.
        assert_eq!(resume(3, &[]), (Start::Resumed, replayed(&[4, 5, 6])));
    }

    #[test]
    fn a_weight_counts_every_node_and_its_text() {
        let node = std::mem::size_of::<Value>();
        let entry = weight(&json!(null));
        assert!(entry > node);
        assert_eq!(weight(&json!("abcd")), entry + 4);
        assert_eq!(weight(&json!([1, 2])), entry + 2 * node);
        let big = weight(&json!({"text": "x".repeat(10_000)}));
        assert!(big > 10_000 && big < 10_200, "{big}");
    }

    #[test]
    fn a_history_limit_of_zero_keeps_nothing_but_still_folds() {
        let mut log = log(0, 3);
        assert!(log.history.is_empty());
        append(&mut log, 4).unwrap();
        assert!(log.history.is_empty());
        let snapshot: Vec<_> = log.follow(Then::Snapshot, &[]).collect();
        assert_eq!(summary(&snapshot[0]).1, 4);
        assert_ne!(
            summary(&snapshot[0]).3,
            TopicSnapshot::empty(Family::of(&Topic::new(TOPIC).unwrap()).unwrap()).to_value()
        );
    }

    #[test]
    fn seq_is_exhausted_at_2_pow_53_minus_1_and_nothing_changes() {
        let mut log = log(4, 0);
        log.seq = seq(MAX_SAFE_INTEGER - 1);
        assert_eq!(append(&mut log, 1).unwrap().0, seq(MAX_SAFE_INTEGER));
        let before = log.snapshot.to_value();
        let mut framed = false;
        let topic = Topic::new(TOPIC).unwrap();
        let event = TopicEvent::decode(&topic, &payload(2)).unwrap();
        let result = log.append(&event, payload(2), Timestamp::now(), |_| framed = true);
        assert_eq!(result.map(|a| a.seq), Err(SeqExhausted));
        assert!(!framed, "nothing is framed for a refused event");
        assert_eq!(log.seq(), seq(MAX_SAFE_INTEGER));
        assert_eq!(log.history.len(), 1);
        assert_eq!(log.snapshot.to_value(), before);
    }

    #[test]
    fn a_restored_log_keeps_only_the_consecutive_tail_ending_at_its_seq() {
        let topic = Topic::new(TOPIC).unwrap();
        let family = Family::of(&topic).unwrap();
        let mut snapshot = TopicSnapshot::empty(family);
        for n in 1..=6 {
            snapshot.fold(&TopicEvent::decode(&topic, &payload(n)).unwrap());
        }
        // 2 is missing: only 3..=6 are consecutive up to 6; the limit keeps the last three.
        let history = [1, 3, 4, 5, 6].map(entry).to_vec();
        let log = TopicLog::restore(topic.clone(), epoch("e7"), seq(6), snapshot, history, 3);
        assert_eq!((log.epoch(), log.seq()), (&epoch("e7"), seq(6)));
        let kept: Vec<u64> = log.history.iter().map(|h| h.seq.get()).collect();
        assert_eq!(kept, [4, 5, 6]);
        assert_eq!(
            log.history_bytes(),
            (4..=6).map(|n| weight(&payload(n))).sum::<usize>()
        );
        let resumed = log.plan(&ask(false, Some(("e7", 3))), None);
        assert_eq!(resumed.then, Then::ReplayAfter(seq(3)));
        assert_eq!(
            log.plan(&ask(false, Some(("e7", 2))), None).start,
            Start::Reset
        );
        let mut expected = TopicLog::new(topic, family, epoch("e7"), 3);
        for n in 1..=6 {
            append(&mut expected, n).unwrap();
        }
        assert_eq!(log.snapshot().to_value(), expected.snapshot().to_value());
        // A history that does not end at the log's seq keeps nothing.
        let stale = TopicLog::restore(
            Topic::new(TOPIC).unwrap(),
            epoch("e7"),
            seq(9),
            TopicSnapshot::empty(family),
            vec![entry(8)],
            3,
        );
        assert_eq!(stale.history.len(), 0);
    }
}
