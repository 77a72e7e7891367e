//! The per-connection outbound queue: byte-accounted, shared by every publisher that feeds it.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// One encoded text frame waiting to be written. `topic` is the key of the topic it delivers
/// (0 for replies), so an unsubscribe can withdraw what is still queued.
#[derive(Debug, Clone)]
pub(crate) struct OutFrame {
    pub text: Utf8Bytes,
    pub topic: usize,
}

/// What happened to a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Push {
    Queued,
    /// This push overflowed the limit: the queue was dropped and the connection must close.
    Overflowed,
    /// The connection is already closing; the frame was discarded.
    Closed,
}

#[derive(Debug)]
struct State {
    queue: VecDeque<OutFrame>,
    /// Bytes queued plus bytes taken by the writer and not yet flushed.
    pending: usize,
    closed: bool,
    overflowed: bool,
}

/// A connection's outbound queue. Publishers push shared frames; the connection's task takes
/// them in batches and writes them. Pushing never waits for the socket.
#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    limit: usize,
    pub notify: Notify,
}

impl Outbox {
    pub fn new(limit: usize) -> Outbox {
        Outbox {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                pending: 0,
                closed: false,
                overflowed: false,
            }),
            limit,
            notify: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent at every await-free step, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `frame`, or marks the connection as a slow consumer when the queue would exceed
    /// the limit.
    pub fn push(&self, frame: OutFrame) -> Push {
        let mut state = self.lock();
        if state.closed {
            return Push::Closed;
        }
        let len = frame.text.len();
        if state.pending + len > self.limit {
            state.closed = true;
            state.overflowed = true;
            state.queue = VecDeque::new();
            state.pending = 0;
            drop(state);
            self.notify.notify_one();
            return Push::Overflowed;
        }
        let was_empty = state.queue.is_empty();
        state.pending += len;
        state.queue.push_back(frame);
        drop(state);
        if was_empty {
            self.notify.notify_one();
        }
        Push::Queued
    }

    /// With one lock: `None` when the connection overflowed, otherwise moves every queued frame
    /// to an empty `batch` and returns their size in bytes; they stay counted as pending until
    /// [`Outbox::written`].
    pub fn refill(&self, batch: &mut VecDeque<OutFrame>) -> Option<usize> {
        let mut state = self.lock();
        if state.overflowed {
            return None;
        }
        Some(if batch.is_empty() {
            Self::take_locked(&mut state, batch)
        } else {
            0
        })
    }

    fn take_locked(state: &mut State, batch: &mut VecDeque<OutFrame>) -> usize {
        let mut bytes = 0;
        if batch.is_empty() {
            std::mem::swap(batch, &mut state.queue);
            bytes = batch.iter().map(|f| f.text.len()).sum();
        } else {
            for frame in state.queue.drain(..) {
                bytes += frame.text.len();
                batch.push_back(frame);
            }
        }
        bytes
    }

    /// `bytes` taken earlier reached the socket.
    pub fn written(&self, bytes: usize) {
        let mut state = self.lock();
        state.pending = state.pending.saturating_sub(bytes);
    }

    /// Withdraws every queued frame of `topic`.
    pub fn withdraw(&self, topic: usize) {
        let mut state = self.lock();
        let mut removed = 0;
        state.queue.retain(|f| {
            let keep = f.topic != topic;
            if !keep {
                removed += f.text.len();
            }
            keep
        });
        state.pending = state.pending.saturating_sub(removed);
    }

    /// Stops accepting frames and drops the queue; returns whether the connection overflowed.
    pub fn close(&self) -> bool {
        let mut state = self.lock();
        state.closed = true;
        state.queue = VecDeque::new();
        state.overflowed
    }

    /// Bytes pending for the connection, for the stats endpoint.
    pub fn pending(&self) -> usize {
        self.lock().pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str, topic: usize) -> OutFrame {
        OutFrame {
            text: Utf8Bytes::from(text.to_owned()),
            topic,
        }
    }

    #[test]
    fn counts_bytes_until_written_and_overflows_past_the_limit() {
        let outbox = Outbox::new(10);
        assert_eq!(outbox.push(frame("abcd", 1)), Push::Queued);
        let mut batch = VecDeque::new();
        assert_eq!(outbox.refill(&mut batch).unwrap(), 4);
        assert_eq!(outbox.push(frame("efgh", 2)), Push::Queued);
        assert_eq!(outbox.pending(), 8);
        // In-flight bytes still count: 8 + 4 > 10.
        assert_eq!(outbox.push(frame("ijkl", 1)), Push::Overflowed);
        assert_eq!(outbox.refill(&mut batch), None);
        assert_eq!(outbox.push(frame("x", 1)), Push::Closed);
    }

    #[test]
    fn withdraw_removes_only_the_topic() {
        let outbox = Outbox::new(100);
        for (text, topic) in [("a", 1), ("bb", 2), ("ccc", 1)] {
            outbox.push(frame(text, topic));
        }
        outbox.withdraw(1);
        let mut batch = VecDeque::new();
        assert_eq!(outbox.refill(&mut batch).unwrap(), 2);
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].text.as_str(), "bb");
    }
}
