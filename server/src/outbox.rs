//! The per-connection outbound byte queue: byte-accounted, shared by every task that sends to the
//! connection, and the only way bytes reach its socket.
//!
//! Frames are complete WebSocket frames (an event's frame is encoded once and shared by every
//! subscriber). Whoever holds the queue's lock may write it to the socket with a non-blocking
//! `write`, so a publisher can deliver straight to an idle connection without waking its task
//! (see [`Dirty`]); what the socket does not take stays queued, and the connection's own task
//! writes it when the socket becomes writable. Bytes never interleave because every write
//! happens under the lock, front of the queue first.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use rtbus_protocol::CloseCode;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Bytes;

use crate::stats::Counters;

/// Most frames handed to one vectored `write`.
const MAX_SLICES: usize = 64;

/// One complete WebSocket frame waiting to be written. `topic` is the key of the topic it
/// delivers, [`REPLY`] for replies and [`CONTROL`] for control frames.
#[derive(Debug, Clone)]
pub(crate) struct OutFrame {
    pub bytes: Bytes,
    pub topic: usize,
}

/// The `topic` of a reply to the connection's own request.
pub(crate) const REPLY: usize = 0;
/// The `topic` of a control frame (ping, pong, close) written by the WebSocket layer; not
/// counted as a message.
pub(crate) const CONTROL: usize = 1;

/// What happened to a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Push {
    /// Queued behind other frames; whoever queued those writes this one too.
    Queued,
    /// Queued into an empty queue: the pusher must see that it gets written, by
    /// [`Outbox::write_now`] (directly or through [`Dirty`]) or by the connection's task.
    First,
    /// This push overflowed the limit: the queue was dropped and the connection must close.
    Overflowed,
    /// The connection is already closing; the frame was discarded.
    Closed,
}

#[derive(Debug)]
struct State {
    queue: VecDeque<OutFrame>,
    /// Bytes of the front frame already written.
    offset: usize,
    /// Bytes queued and not yet written to the socket.
    pending: usize,
    closed: bool,
    overflowed: bool,
    /// A write failed (the peer is gone); nothing more is written.
    failed: bool,
    /// Ended from outside the connection ([`Outbox::end`]): it must close with this code.
    ended: Option<(CloseCode, &'static str)>,
}

/// Where an outbox writes.
#[derive(Debug)]
enum Sink {
    Socket(Arc<TcpStream>),
    /// Takes nothing and never becomes writable: the queue keeps every frame, for tests of
    /// what is queued in which order.
    #[cfg(test)]
    Detached,
}

impl Sink {
    fn try_write_vectored(&self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Sink::Socket(socket) => socket.try_write_vectored(slices),
            #[cfg(test)]
            Sink::Detached => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Sink::Socket(socket) => socket.poll_write_ready(cx),
            #[cfg(test)]
            Sink::Detached => Poll::Pending,
        }
    }
}

/// Whether a connection may go on, as its outbox sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    Open,
    /// A push overflowed `max_pending_bytes`: the connection must close as a slow consumer.
    /// Reported before [`Health::Failed`] when both happened.
    Overflowed,
    /// A write failed: the peer is gone.
    Failed,
    /// Whoever delivers the connection's topics ended it ([`Outbox::end`]): it must close with
    /// this code and reason. Reported after the other two.
    Ended(CloseCode, &'static str),
}

/// A connection's outbound queue and the write side of its socket.
#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    sink: Sink,
    limit: usize,
    /// Bytes gathered into one `write` (at least one frame).
    write_size: usize,
    counters: Arc<Counters>,
    /// Wakes the connection's task: the queue overflowed, a write failed, or bytes are left
    /// that only it waits to write.
    pub notify: Notify,
}

impl Outbox {
    pub fn new(
        socket: Arc<TcpStream>,
        limit: usize,
        write_size: usize,
        counters: Arc<Counters>,
    ) -> Outbox {
        Outbox::with_sink(Sink::Socket(socket), limit, write_size, counters)
    }

    fn with_sink(sink: Sink, limit: usize, write_size: usize, counters: Arc<Counters>) -> Outbox {
        Outbox {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                offset: 0,
                pending: 0,
                closed: false,
                overflowed: false,
                failed: false,
                ended: None,
            }),
            sink,
            limit,
            write_size,
            counters,
            notify: Notify::new(),
        }
    }

    /// An outbox attached to no socket: it queues, accounts and overflows like any other, and
    /// [`Outbox::take_queued`] shows what it holds.
    #[cfg(test)]
    pub fn detached(limit: usize, counters: Arc<Counters>) -> Outbox {
        Outbox::with_sink(Sink::Detached, limit, 0, counters)
    }

    /// Removes and returns every queued frame, in order.
    #[cfg(test)]
    pub fn take_queued(&self) -> Vec<OutFrame> {
        let mut state = self.lock();
        state.pending = 0;
        state.offset = 0;
        state.queue.drain(..).collect()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent at every step, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `frame`, or marks the connection as a slow consumer when the queue would exceed
    /// the limit. Once the connection is closing only control frames are queued (that is how its
    /// close frame goes out).
    pub fn push(&self, frame: OutFrame) -> Push {
        let mut state = self.lock();
        let control = frame.topic == CONTROL;
        if state.failed || (state.closed && !control) {
            return Push::Closed;
        }
        let len = frame.bytes.len();
        if !state.closed && state.pending + len > self.limit {
            state.closed = true;
            state.overflowed = true;
            Self::clear(&mut state, |_| false);
            drop(state);
            self.notify.notify_one();
            return Push::Overflowed;
        }
        let first = state.queue.is_empty();
        state.pending += len;
        state.queue.push_back(frame);
        if first { Push::First } else { Push::Queued }
    }

    /// Removes queued frames that `keep` rejects, except a front frame already partly written
    /// (the socket would otherwise carry half a frame).
    fn clear(state: &mut State, mut keep: impl FnMut(&OutFrame) -> bool) {
        let started = usize::from(state.offset > 0);
        let mut removed = 0;
        let mut at = 0;
        state.queue.retain(|f| {
            let retain = at < started || keep(f);
            at += 1;
            if !retain {
                removed += f.bytes.len();
            }
            retain
        });
        state.pending = state.pending.saturating_sub(removed);
    }

    /// Writes as much of the queue as the socket takes now, without waiting. Returns whether the
    /// queue is empty afterwards; an error means the peer is gone (the queue is then dropped and
    /// the connection's task told).
    pub fn write_now(&self) -> io::Result<bool> {
        let mut state = self.lock();
        if state.failed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let mut messages = 0;
        let result = loop {
            if state.queue.is_empty() {
                break Ok(true);
            }
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut count = 0;
            let mut size = 0;
            for (at, f) in state.queue.iter().take(MAX_SLICES).enumerate() {
                if count > 0 && size >= self.write_size {
                    break;
                }
                let skip = if at == 0 { state.offset } else { 0 };
                slices[at] = IoSlice::new(&f.bytes[skip..]);
                size += f.bytes.len() - skip;
                count += 1;
            }
            match self.sink.try_write_vectored(&slices[..count]) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => messages += Self::advance(&mut state, n),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break Ok(false),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => break Err(err),
            }
        };
        if result.is_err() {
            state.failed = true;
            state.offset = 0;
            Self::clear(&mut state, |_| false);
        }
        drop(state);
        if messages > 0 {
            Counters::add(&self.counters.messages_out, messages);
        }
        if result.is_err() {
            self.notify.notify_one();
        }
        result
    }

    /// Marks `n` written bytes done; returns how many messages (not control frames) completed.
    fn advance(state: &mut State, mut n: usize) -> u64 {
        state.pending = state.pending.saturating_sub(n);
        let mut messages = 0;
        while n > 0 {
            let Some(front) = state.queue.front() else {
                break;
            };
            let left = front.bytes.len() - state.offset;
            if n < left {
                state.offset += n;
                break;
            }
            n -= left;
            state.offset = 0;
            messages += u64::from(front.topic != CONTROL);
            state.queue.pop_front();
        }
        messages
    }

    /// For the connection's own task: writes the queue, waiting for the socket to become
    /// writable as often as needed. Ready when the queue is empty.
    pub fn poll_drain(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.write_now()? {
                return Poll::Ready(Ok(()));
            }
            ready!(self.sink.poll_write_ready(cx))?;
        }
    }

    /// Whether the connection may go on: its queue overflowed (it must close as a slow
    /// consumer) or a write failed (the peer is gone).
    pub fn health(&self) -> Health {
        let state = self.lock();
        if state.overflowed {
            Health::Overflowed
        } else if state.failed {
            Health::Failed
        } else if let Some((code, reason)) = state.ended {
            Health::Ended(code, reason)
        } else {
            Health::Open
        }
    }

    /// Ends the connection from outside its task: no further message is queued, what is queued
    /// still goes out, and the connection's task (woken) closes it with `code` and `reason`.
    /// The first call wins. Used when the frames of a topic the connection holds can no longer
    /// be vouched for (the engine behind the topics was lost).
    pub fn end(&self, code: CloseCode, reason: &'static str) {
        let mut state = self.lock();
        if state.ended.is_some() || state.closed {
            return;
        }
        state.closed = true;
        state.ended = Some((code, reason));
        drop(state);
        self.notify.notify_one();
    }

    /// Withdraws every queued frame of `topic` that has not started going out.
    pub fn withdraw(&self, topic: usize) {
        let mut state = self.lock();
        Self::clear(&mut state, |f| f.topic != topic);
    }

    /// Stops accepting messages and drops the queued ones (control frames still go out).
    pub fn close(&self) {
        self.close_keeping(CONTROL);
    }

    /// Like [`Outbox::close`], but queued frames of `topic` go out too (before the close frame),
    /// e.g. the replies to requests the connection was closed for.
    pub fn close_keeping(&self, topic: usize) {
        let mut state = self.lock();
        state.closed = true;
        Self::clear(&mut state, |f| f.topic == CONTROL || f.topic == topic);
    }

    /// Makes the socket's close a reset (`SO_LINGER` 0): whatever the kernel still holds for
    /// the peer is discarded at once instead of being sent, or retried, after the server has
    /// let go of the connection.
    pub fn reset_on_close(&self) {
        match &self.sink {
            Sink::Socket(socket) => {
                // Best effort: without it the kernel sends the rest and closes normally.
                let _ = socket2::SockRef::from(&**socket).set_linger(Some(Duration::ZERO));
            }
            #[cfg(test)]
            Sink::Detached => {}
        }
    }

    /// Bytes pending for the connection, for the stats endpoint.
    pub fn pending(&self) -> usize {
        self.lock().pending
    }
}

/// Outboxes a publisher queued the first frame into and has not written yet.
///
/// A publishing task collects them while it handles every request it has already received, then
/// writes them all ([`Dirty::flush`]) before it waits for more input: a burst of publishes
/// reaches each subscriber in one `write`, and an idle subscriber's task is not woken at all.
#[derive(Debug, Default)]
pub(crate) struct Dirty {
    outboxes: Vec<Arc<Outbox>>,
}

impl Dirty {
    /// Notes a push's outcome: a first frame makes the outbox this publisher's to write.
    pub fn note(&mut self, outbox: &Arc<Outbox>, push: Push) {
        if push == Push::First {
            self.outboxes.push(Arc::clone(outbox));
        }
    }

    /// Writes every noted outbox; one whose socket does not take everything is handed to its
    /// connection's task, which waits until the socket is writable. On a runtime with several
    /// workers a large fan-out is split into tasks so idle workers share the writes.
    pub fn flush(&mut self) {
        self.flush_sharing(SHARE_ABOVE);
    }

    fn flush_sharing(&mut self, share_above: usize) {
        if self.outboxes.len() > share_above {
            let workers = tokio::runtime::Handle::try_current()
                .map_or(1, |runtime| runtime.metrics().num_workers());
            if workers > 1 {
                let rest = self.outboxes.split_off(share_above);
                for chunk in rest.chunks(share_above) {
                    let chunk = chunk.to_vec();
                    tokio::spawn(async move { write_all(chunk) });
                }
            }
        }
        write_all(self.outboxes.drain(..));
    }
}

/// Outboxes past this many in one flush are shared with other workers.
const SHARE_ABOVE: usize = 512;

fn write_all(outboxes: impl IntoIterator<Item = Arc<Outbox>>) {
    for outbox in outboxes {
        // An error already told the connection's task (its peer is gone).
        if let Ok(false) = outbox.write_now() {
            outbox.notify.notify_one();
        }
    }
}

impl Drop for Dirty {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use crate::wire::{TEXT, frame};

    async fn pair(limit: usize) -> (Outbox, TcpStream) {
        pair_writing(limit, 16 * 1024).await
    }

    async fn pair_writing(limit: usize, write_size: usize) -> (Outbox, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let outbox = Outbox::new(Arc::new(server), limit, write_size, Arc::default());
        (outbox, client)
    }

    fn text(s: &str, topic: usize) -> OutFrame {
        OutFrame {
            bytes: frame(TEXT, s.as_bytes()),
            topic,
        }
    }

    #[tokio::test]
    async fn counts_bytes_until_written_and_overflows_past_the_limit() {
        let (outbox, _client) = pair(14).await;
        assert_eq!(outbox.push(text("abcd", 2)), Push::First); // 6 bytes framed
        assert_eq!(outbox.push(text("efgh", 3)), Push::Queued);
        assert_eq!(outbox.pending(), 12);
        assert_eq!(outbox.push(text("ijkl", 2)), Push::Overflowed);
        assert_eq!(outbox.health(), Health::Overflowed);
        assert_eq!(outbox.push(text("x", 2)), Push::Closed);
        // The close frame still goes out.
        assert_eq!(outbox.push(text("bye", CONTROL)), Push::First);
    }

    #[tokio::test]
    async fn writes_in_order_and_withdraws_only_the_topic() {
        // A write size of 0 still writes one frame per write.
        for write_size in [16 * 1024, 0] {
            writes_in_order(write_size).await;
        }
    }

    async fn writes_in_order(write_size: usize) {
        let (outbox, mut client) = pair_writing(1000, write_size).await;
        for (s, topic) in [("a", 2), ("bb", 3), ("ccc", 2)] {
            outbox.push(text(s, topic));
        }
        outbox.withdraw(2);
        outbox.push(text("dd", REPLY));
        assert!(outbox.write_now().unwrap());
        assert_eq!(outbox.pending(), 0);
        let mut got = [0u8; 8];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"\x81\x02bb\x81\x02dd");
    }

    #[tokio::test]
    async fn a_partly_written_frame_is_finished_before_anything_else() {
        let (outbox, _client) = pair(10_000_000).await;
        // Fill the socket until it stops taking bytes mid-frame.
        let big = "y".repeat(60_000);
        let mut pushed = 0;
        while outbox.write_now().unwrap() {
            outbox.push(text(&big, 2));
            pushed += 1;
            assert!(pushed < 1000, "the socket never filled up");
        }
        let started = outbox.lock().offset;
        outbox.withdraw(2);
        outbox.close();
        let state = outbox.lock();
        // Only the frame already on its way stays (when one was cut mid-way).
        assert_eq!(state.queue.len(), usize::from(started > 0));
        assert_eq!(
            state.pending,
            state.queue.front().map_or(0, |f| f.bytes.len() - started)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_large_flush_is_shared_between_workers_and_reaches_everyone() {
        let mut dirty = Dirty::default();
        let mut clients = Vec::new();
        for n in 0..10u8 {
            let (outbox, client) = pair(1000).await;
            let outbox = Arc::new(outbox);
            let push = outbox.push(text(&format!("e{n}"), 2));
            dirty.note(&outbox, push);
            clients.push((n, client));
        }
        dirty.flush_sharing(3);
        for (n, mut client) in clients {
            let mut got = [0u8; 4];
            client.read_exact(&mut got).await.unwrap();
            assert_eq!(&got[2..], format!("e{n}").as_bytes());
        }
    }

    #[tokio::test]
    async fn a_dirty_flush_writes_each_noted_outbox_once() {
        let (outbox, mut client) = pair(1000).await;
        let outbox = Arc::new(outbox);
        let mut dirty = Dirty::default();
        for s in ["one", "two"] {
            let push = outbox.push(text(s, 2));
            dirty.note(&outbox, push);
        }
        assert_eq!(dirty.outboxes.len(), 1);
        dirty.flush();
        assert!(dirty.outboxes.is_empty());
        let mut got = [0u8; 10];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"\x81\x03one\x81\x03two");
        assert_eq!(Counters::get(&outbox.counters.messages_out), 2);
    }

    #[test]
    fn an_ended_outbox_keeps_what_is_queued_refuses_more_and_names_its_close_code() {
        let outbox = Outbox::detached(1 << 20, Arc::default());
        assert_eq!(outbox.push(text("a", 2)), Push::First);
        outbox.end(CloseCode::EngineUnavailable, "engine lost");
        outbox.end(CloseCode::SlowConsumer, "ignored: the first end wins");
        assert_eq!(
            outbox.health(),
            Health::Ended(CloseCode::EngineUnavailable, "engine lost")
        );
        assert_eq!(outbox.push(text("b", 2)), Push::Closed);
        assert_eq!(outbox.push(text("bye", CONTROL)), Push::Queued);
        let topics: Vec<usize> = outbox.take_queued().iter().map(|f| f.topic).collect();
        assert_eq!(topics, [2, CONTROL]);
    }
}
