//! One WebSocket connection: a single task that reads requests, runs the heartbeat and auth
//! deadline, and writes what its outbox holds when the socket was too full to take it at once.
//!
//! Every byte to the socket goes through the connection's [`Outbox`]: replies, events (often
//! written straight to the socket by the publishing task, see [`Dirty`]) and the control frames
//! the WebSocket layer writes (pongs, the close frame), so they never interleave.

use std::future::poll_fn;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures_util::StreamExt;
use rtbus_protocol::catalog::{Family, TopicEvent};
use rtbus_protocol::{
    AuthenticatedData, ClientMessage, CloseCode, ErrorCode, ErrorData, FrameError, PublishData,
    PublishedData, RequestId, ServerMessage, SubscribeData, SubscriptionRequest, Topic,
    UnsubscribeData, UnsubscribedData, decode_client_frame,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};

use crate::admission::Ticket;
use crate::auth::{Decision, Principal};
use crate::config::Limits;
use crate::engine::PublishError;
use crate::http;
use crate::hub::{TopicCell, Want};
use crate::log::{Ask, Resume};
use crate::outbox::{CONTROL, Dirty, Health, OutFrame, Outbox, Push, REPLY};
use crate::state::Shared;
use crate::stats::Counters;
use crate::wire::{PING, encode, frame};

type Ws = WebSocketStream<Io>;

/// Most requests handled before the events they published are written out.
const MAX_BATCH: usize = 64;

/// Serves one accepted TCP connection from `peer`: the HTTP request head, then the WebSocket
/// session. `_done` is dropped when the connection is finished, which is how shutdown knows.
pub(crate) async fn serve(
    mut stream: TcpStream,
    peer: IpAddr,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    _done: mpsc::Sender<()>,
) {
    let _ = stream.set_nodelay(true);
    let limits = &shared.config.limits;
    if limits.socket_send_buffer_bytes > 0 {
        // Best effort: the OS may round or cap it; the byte-accounted queue still bounds memory.
        let _ =
            socket2::SockRef::from(&stream).set_send_buffer_size(limits.socket_send_buffer_bytes);
    }
    let mut shutdown = shutdown;
    let handshake = timeout(
        limits.handshake_timeout,
        http::handle(&mut stream, &shared, peer),
    );
    let upgrade = tokio::select! {
        result = handshake => match result {
            Ok(Some(upgrade)) => upgrade,
            _ => return,
        },
        // A socket still sending its request head when the server stops is just dropped.
        _ = shutdown.changed() => return,
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(limits.read_buffer_bytes)
        .write_buffer_size(limits.write_buffer_bytes)
        .max_message_size(Some(limits.max_message_bytes))
        .max_frame_size(Some(limits.max_message_bytes));
    let socket = Arc::new(stream);
    let outbox = Arc::new(Outbox::new(
        Arc::clone(&socket),
        limits.max_pending_bytes,
        limits.write_buffer_bytes,
        Arc::clone(&shared.counters),
    ));
    let io = Io {
        socket,
        outbox: Arc::clone(&outbox),
    };
    let ws = WebSocketStream::from_partially_read(io, upgrade.leftover, Role::Server, Some(config))
        .await;
    let id = shared.register();
    shared.track(id, &outbox);
    let mut connection = Connection {
        id,
        shared: Arc::clone(&shared),
        outbox,
        principal: upgrade.principal,
        ticket: upgrade.ticket,
        auth_failures: 0,
        topics: Vec::new(),
        dirty: Dirty::default(),
    };
    tracing::debug!(conn = id, "connection open");
    connection.run(ws, shutdown).await;
    shared.unregister(id);
}

/// The socket as the WebSocket layer sees it: reads come straight from the socket; what it writes
/// (pongs, the close frame) joins the outbox as control frames, in order with everything else.
pub(crate) struct Io {
    socket: Arc<TcpStream>,
    outbox: Arc<Outbox>,
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.socket.poll_read_ready(cx))?;
            match self.socket.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let frame = OutFrame {
            bytes: Bytes::copy_from_slice(buf),
            topic: CONTROL,
        };
        Poll::Ready(match self.outbox.push(frame) {
            Push::Closed => Err(io::ErrorKind::BrokenPipe.into()),
            // An overflow closes the connection as a slow consumer; the bytes are moot.
            Push::Overflowed => Ok(buf.len()),
            Push::First | Push::Queued => {
                // Like a socket write, as far as the socket takes it now (tungstenite's reply to
                // a close frame is not followed by a flush); the rest goes out with the queue.
                let _ = self.outbox.write_now();
                Ok(buf.len())
            }
        })
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // What the socket does not take now, the connection's task writes when it can; a
        // failed write ends the connection there.
        let _ = self.outbox.write_now();
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

struct Connection {
    id: u64,
    shared: Arc<Shared>,
    outbox: Arc<Outbox>,
    principal: Option<Arc<Principal>>,
    /// The connection's place in the connection caps: anonymous while it has no principal.
    ticket: Ticket,
    /// `auth` frames that failed on this connection.
    auth_failures: usize,
    topics: Vec<Arc<TopicCell>>,
    /// Subscribers' outboxes this connection's publishes queued into, to write out before it
    /// waits for more input.
    dirty: Dirty,
}

/// What woke the connection's task from its input and output.
enum Wake {
    Read(Option<Result<Message, WsError>>),
    /// Requests were handled up to the batch limit and their events written; read on.
    Flushed,
    /// Writing to this connection's socket failed: the peer is gone.
    WriteFailed,
}

/// Why the server ends a connection.
enum End {
    /// Send a close frame with this code and reason.
    Close(CloseCode, &'static str),
    /// The peer is gone or already closed; nothing to send.
    Gone,
}

/// The connection's clocks: the heartbeat (a ping every interval, a pong within the timeout)
/// and the auth deadline.
struct Deadlines {
    interval: std::time::Duration,
    timeout: std::time::Duration,
    next_ping: Instant,
    /// When the unanswered ping went out.
    awaiting_pong: Option<Instant>,
    /// Until when an unauthenticated connection without subscriptions may stay.
    auth: Option<Instant>,
}

impl Deadlines {
    fn new(limits: &Limits, authenticated: bool, now: Instant) -> Deadlines {
        Deadlines {
            interval: limits.heartbeat_interval,
            timeout: limits.heartbeat_timeout,
            next_ping: now + limits.heartbeat_interval,
            awaiting_pong: None,
            auth: (!authenticated).then(|| now + limits.auth_deadline),
        }
    }

    /// Acts on every deadline that passed by `now`: queues a ping when one is due, or ends the
    /// connection when a ping went unanswered or it is still anonymous (`anonymous`: no
    /// principal, no subscription) at the auth deadline.
    fn check(
        &mut self,
        now: Instant,
        outbox: &Outbox,
        anonymous: bool,
        counters: &Counters,
    ) -> Option<End> {
        if let Some(sent) = self.awaiting_pong {
            if now >= sent + self.timeout {
                Counters::add(&counters.heartbeat_timeouts, 1);
                return Some(End::Close(CloseCode::HeartbeatTimeout, "no pong in time"));
            }
        } else if now >= self.next_ping {
            outbox.push(OutFrame {
                bytes: frame(PING, b""),
                topic: CONTROL,
            });
            self.awaiting_pong = Some(now);
            self.next_ping = now + self.interval;
        }
        if self.auth.is_some_and(|deadline| now >= deadline) {
            self.auth = None;
            if anonymous {
                Counters::add(&counters.auth_timeouts, 1);
                return Some(End::Close(
                    CloseCode::AuthTimeout,
                    "not authenticated in time",
                ));
            }
        }
        None
    }

    fn pong(&mut self) {
        self.awaiting_pong = None;
    }

    /// When the next deadline falls.
    fn next(&self) -> Instant {
        let heartbeat = match self.awaiting_pong {
            Some(sent) => sent + self.timeout,
            None => self.next_ping,
        };
        self.auth.map_or(heartbeat, |auth| heartbeat.min(auth))
    }
}

/// Requests handled since the events they published were last written out.
#[derive(Default)]
struct Batch {
    handled: usize,
}

impl Batch {
    /// Handles every request that has arrived (up to a batch), then delivers what they
    /// published in one write per subscriber, then writes this connection's own queue.
    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        ws: &mut Ws,
        dirty: &mut Dirty,
        outbox: &Outbox,
    ) -> Poll<Wake> {
        let full = self.handled >= MAX_BATCH;
        if !full {
            if let Poll::Ready(message) = ws.poll_next_unpin(cx) {
                self.handled += 1;
                return Poll::Ready(Wake::Read(message));
            }
        }
        self.handled = 0;
        dirty.flush();
        match outbox.poll_drain(cx) {
            Poll::Ready(Err(_)) => Poll::Ready(Wake::WriteFailed),
            _ if full => Poll::Ready(Wake::Flushed),
            _ => Poll::Pending,
        }
    }
}

impl Connection {
    async fn run(&mut self, mut ws: Ws, mut shutdown: watch::Receiver<bool>) {
        let limits = self.shared.config.limits.clone();
        let outbox = Arc::clone(&self.outbox);
        let mut deadlines = Deadlines::new(&limits, self.principal.is_some(), Instant::now());
        let mut batch = Batch::default();
        // One timer for the connection's life, moved only when its deadline changes.
        let sleep = sleep_until(deadlines.next());
        tokio::pin!(sleep);
        // One registration with the outbox's notifier, renewed only after it fires.
        let notified = outbox.notify.notified();
        tokio::pin!(notified);

        let end = loop {
            if let Some(end) = self.outbox_end() {
                break end;
            }
            let anonymous = self.principal.is_none() && self.topics.is_empty();
            let counters = &self.shared.counters;
            if let Some(end) = deadlines.check(Instant::now(), &outbox, anonymous, counters) {
                break end;
            }
            if sleep.deadline() != deadlines.next() {
                sleep.as_mut().reset(deadlines.next());
            }
            let dirty = &mut self.dirty;
            let io = poll_fn(|cx| batch.poll(cx, &mut ws, dirty, &outbox));
            let wake = tokio::select! {
                biased;
                _ = shutdown.changed() => {
                    break End::Close(CloseCode::GoingAway, "server shutting down");
                }
                wake = io => wake,
                () = &mut notified => {
                    notified.set(outbox.notify.notified());
                    continue;
                }
                () = &mut sleep => continue,
            };
            if let Some(end) = self.on_wake(wake, &mut deadlines).await {
                break end;
            }
        };
        self.leave(ws, end, &limits, shutdown).await;
    }

    /// Ends the connection when its outbox overflowed or its peer is gone.
    fn outbox_end(&self) -> Option<End> {
        match self.outbox.health() {
            Health::Open => None,
            Health::Overflowed => {
                Counters::add(&self.shared.counters.slow_consumer_disconnects, 1);
                Some(End::Close(
                    CloseCode::SlowConsumer,
                    "outbound queue exceeded the server's limit",
                ))
            }
            Health::Failed => Some(End::Gone),
            Health::Ended(code, reason) => Some(End::Close(code, reason)),
        }
    }

    async fn on_wake(&mut self, wake: Wake, deadlines: &mut Deadlines) -> Option<End> {
        match wake {
            Wake::Flushed => None,
            Wake::WriteFailed | Wake::Read(None) => Some(End::Gone),
            Wake::Read(Some(Err(err))) => Some(end_for(&err)),
            Wake::Read(Some(Ok(message))) => match message {
                Message::Text(text) => self.on_text(&text).await,
                Message::Binary(_) => Some(End::Close(
                    CloseCode::UnsupportedData,
                    "binary frames are not part of rtbus v1; send JSON text frames",
                )),
                Message::Pong(_) => {
                    deadlines.pong();
                    None
                }
                // Pings are answered by the WebSocket layer; a peer's close is answered there
                // too, and the next read ends the stream.
                Message::Ping(_) | Message::Close(_) | Message::Frame(_) => None,
            },
        }
    }

    /// Delivers what was published, stops every publisher from queueing more, and says goodbye:
    /// the close handshake when the server ends the connection, bounded by `close_timeout`, or
    /// for a slow consumer by `slow_consumer_linger` (its reader may resume late; a shutdown
    /// meanwhile leaves it `close_timeout` more). A handshake that does not finish in time
    /// resets the socket, so nothing stays queued in the kernel for a peer nobody waits for.
    async fn leave(
        &mut self,
        mut ws: Ws,
        end: End,
        limits: &Limits,
        mut shutdown: watch::Receiver<bool>,
    ) {
        self.dirty.flush();
        for cell in self.topics.drain(..) {
            self.shared.hub.unsubscribe(&cell, self.id);
        }
        let outbox = &self.outbox;
        match end {
            // The client is told why: the reply to its last `auth` goes out before the close.
            End::Close(CloseCode::TooManyAuthFailures, _) => outbox.close_keeping(REPLY),
            // Ended by the engine: what it queued before is valid and goes out first.
            End::Close(CloseCode::EngineUnavailable, _) => {}
            _ => outbox.close(),
        }
        match end {
            End::Close(code, reason) => {
                tracing::debug!(
                    conn = self.id,
                    code = code.value(),
                    reason,
                    "closing connection"
                );
                let frame = CloseFrame {
                    code: WsCloseCode::from(code.value()),
                    reason: Utf8Bytes::from_static(reason),
                };
                let lingers = code == CloseCode::SlowConsumer;
                let window = if lingers {
                    limits.slow_consumer_linger.max(limits.close_timeout)
                } else {
                    limits.close_timeout
                };
                let handshake = timeout(window, async {
                    if ws.close(Some(frame)).await.is_ok()
                        && poll_fn(|cx| outbox.poll_drain(cx)).await.is_ok()
                    {
                        while let Some(Ok(_)) = ws.next().await {}
                    }
                });
                let stopping = async {
                    // Shutdown waits `close_timeout` for every connection; only a lingering
                    // one could outlast it.
                    if !lingers {
                        return std::future::pending().await;
                    }
                    while !*shutdown.borrow_and_update() {
                        if shutdown.changed().await.is_err() {
                            break;
                        }
                    }
                    tokio::time::sleep(limits.close_timeout).await;
                };
                let finished = tokio::select! {
                    result = handshake => result.is_ok(),
                    () = stopping => false,
                };
                if !finished {
                    tracing::debug!(
                        conn = self.id,
                        code = code.value(),
                        "close unanswered; reset"
                    );
                    outbox.reset_on_close();
                }
            }
            End::Gone => {
                // Whatever control frame is still queued (a close reply) goes out if the socket
                // takes it now; nobody is left to wait for it.
                let _ = outbox.write_now();
                tracing::debug!(conn = self.id, "connection gone");
            }
        }
    }

    fn reply(&self, message: &ServerMessage) {
        self.outbox.push(OutFrame {
            bytes: encode(message),
            topic: REPLY,
        });
    }

    fn error(&self, id: Option<RequestId>, code: ErrorCode, message: String, topic: Option<&str>) {
        self.reply(&ServerMessage::Error {
            id,
            data: ErrorData {
                code,
                message,
                topic: topic.map(str::to_owned),
            },
        });
    }

    /// Handles one request; returns how the connection ends when the request ends it.
    async fn on_text(&mut self, text: &str) -> Option<End> {
        Counters::add(&self.shared.counters.messages_in, 1);
        match decode_client_frame(text) {
            Err(err) => self.frame_error(err),
            Ok(ClientMessage::Auth { id, data }) => return self.on_auth(id, &data.token),
            Ok(ClientMessage::Subscribe { id, data }) => self.on_subscribe(id, data).await,
            Ok(ClientMessage::Unsubscribe { id, data }) => self.on_unsubscribe(id, data),
            Ok(ClientMessage::Publish { id, data }) => self.on_publish(id, data).await,
            Ok(ClientMessage::Ping { id, data }) => self.reply(&ServerMessage::Pong { id, data }),
        }
        None
    }

    fn frame_error(&self, err: FrameError) {
        let message = err.to_string();
        self.error(err.id, err.code, message, err.topic.as_deref());
    }

    /// Authenticates, or re-authenticates, the connection (a token refresh). The connection
    /// then acts as the new principal (or as none, when the token is rejected) and keeps only
    /// the topics it may still read; the others end with one `unsubscribed` frame without `id`
    /// whose `reason` says why. The auth deadline is not re-armed.
    ///
    /// A token from an address locked out for its rejected tokens is not looked at: the answer
    /// is `limit_exceeded` and the connection keeps what it had. Both count against the
    /// connection's `max_auth_failures_per_connection`, and the one that reaches it closes the
    /// connection with 4029.
    fn on_auth(&mut self, id: Option<RequestId>, token: &str) -> Option<End> {
        let admission = &self.shared.admission;
        let key = self.ticket.key();
        if let Some(locked) = admission.locked_out(key) {
            self.error(id, ErrorCode::LimitExceeded, locked.to_string(), None);
            return self.auth_failed();
        }
        let reason = match self.shared.authority.authenticate(token) {
            Some(principal) => {
                tracing::debug!(conn = self.id, principal = %principal.name, "authenticated");
                self.reply(&ServerMessage::Authenticated {
                    id,
                    data: AuthenticatedData {
                        principal: principal.name.clone(),
                        roles: principal.roles.clone(),
                    },
                });
                self.principal = Some(principal);
                self.ticket.set_anonymous(false);
                ErrorCode::Forbidden
            }
            None => {
                admission.auth_failed(key);
                self.error(
                    id,
                    ErrorCode::Unauthorized,
                    "the token is not accepted; the connection now has no principal".into(),
                    None,
                );
                self.ticket.set_anonymous(true);
                if self.principal.take().is_some() {
                    self.end_unreadable(ErrorCode::Unauthorized);
                }
                // Otherwise nothing it holds needed a principal.
                return self.auth_failed();
            }
        };
        self.end_unreadable(reason);
        None
    }

    /// Counts a failed `auth` on this connection; the one that reaches the limit ends it.
    fn auth_failed(&mut self) -> Option<End> {
        self.auth_failures += 1;
        let limit = self.shared.config.limits.max_auth_failures_per_connection;
        (self.auth_failures >= limit).then_some(End::Close(
            CloseCode::TooManyAuthFailures,
            "too many rejected tokens on this connection",
        ))
    }

    /// Ends every held subscription the current principal (or, without one, anonymity) may not
    /// read, as `unsubscribe` would, and says so in one `unsubscribed` frame with `reason`.
    fn end_unreadable(&mut self, reason: ErrorCode) {
        let principal = self.principal.as_deref();
        let authority = &self.shared.authority;
        let (kept, ended): (Vec<_>, Vec<_>) = self
            .topics
            .drain(..)
            .partition(|cell| authority.can_read(principal, &cell.topic) == Decision::Allowed);
        self.topics = kept;
        if ended.is_empty() {
            return;
        }
        for cell in &ended {
            self.shared.hub.unsubscribe(cell, self.id);
            self.outbox.withdraw(cell.key());
        }
        self.reply(&ServerMessage::Unsubscribed {
            id: None,
            data: UnsubscribedData {
                topics: ended.iter().map(|cell| cell.topic.clone()).collect(),
                reason: Some(reason),
            },
        });
    }

    fn family(&self, id: &Option<RequestId>, topic: &Topic) -> Option<Family> {
        match Family::of(topic) {
            Ok(family) => Some(family),
            Err(err) => {
                let err = FrameError::from_catalog(&err, "");
                self.error(id.clone(), err.code, err.message, Some(topic.as_str()));
                None
            }
        }
    }

    /// Checks every topic of a subscribe (catalog, permission) and the per-connection topic
    /// limit. Returns each topic's family, or answers `id` with the first error and returns
    /// `None`: a subscribe is all-or-nothing.
    fn admit(
        &self,
        id: &Option<RequestId>,
        requests: &[SubscriptionRequest],
    ) -> Option<Vec<Family>> {
        let mut families = Vec::with_capacity(requests.len());
        for request in requests {
            let topic = &request.topic;
            let family = self.family(id, topic)?;
            let (code, why) = match self
                .shared
                .authority
                .can_read(self.principal.as_deref(), topic)
            {
                Decision::Allowed => {
                    families.push(family);
                    continue;
                }
                Decision::NeedsAuth => {
                    (ErrorCode::Unauthorized, "needs an authenticated principal")
                }
                Decision::Denied => (ErrorCode::Forbidden, "is not readable by this principal"),
            };
            let message = format!("topic {topic} {why}; nothing of this request was subscribed");
            self.error(id.clone(), code, message, Some(topic.as_str()));
            return None;
        }
        let mut held: Vec<&Topic> = self.topics.iter().map(|c| &c.topic).collect();
        for request in requests {
            if !held.contains(&&request.topic) {
                held.push(&request.topic);
            }
        }
        let limit = self.shared.config.limits.max_topics_per_connection;
        if held.len() > limit {
            let message = format!(
                "this subscribe would make the connection hold {} topics; the limit \
                 (max_topics_per_connection) is {limit}; nothing of this request was subscribed",
                held.len()
            );
            self.error(id.clone(), ErrorCode::LimitExceeded, message, None);
            return None;
        }
        Some(families)
    }

    async fn on_subscribe(&mut self, id: Option<RequestId>, data: SubscribeData) {
        let Some(families) = self.admit(&id, &data.topics) else {
            return;
        };
        let wants: Vec<Want> = data
            .topics
            .into_iter()
            .zip(families)
            .map(|(request, family)| Want {
                ask: Ask {
                    snapshot: request.wants_snapshot(),
                    resume: request
                        .epoch
                        .zip(request.resume_after)
                        .map(|(epoch, after)| Resume {
                            epoch,
                            after,
                            backfill: Vec::new(),
                        }),
                },
                topic: request.topic,
                family,
            })
            .collect();
        // The hub queues the acknowledgement before any snapshot, replay or event of these
        // topics, listing a topic named twice once.
        let subscribed = self
            .shared
            .engine
            .subscribe(id.clone(), &wants, self.id, &self.outbox)
            .await;
        let cells = match subscribed {
            Ok(cells) => cells,
            Err(why) => {
                let message = format!("nothing of this request was subscribed: {why}");
                return self.error(id, ErrorCode::Unavailable, message, None);
            }
        };
        for cell in cells {
            if !self.topics.iter().any(|c| Arc::ptr_eq(c, &cell)) {
                self.topics.push(cell);
            }
        }
    }

    fn on_unsubscribe(&mut self, id: Option<RequestId>, data: UnsubscribeData) {
        if data.topics.is_empty() {
            return self.error(
                id,
                ErrorCode::BadRequest,
                "at /data/topics: expected at least one topic".into(),
                None,
            );
        }
        for topic in &data.topics {
            if let Some(at) = self.topics.iter().position(|c| &c.topic == topic) {
                let cell = self.topics.swap_remove(at);
                self.shared.hub.unsubscribe(&cell, self.id);
                self.outbox.withdraw(cell.key());
            }
        }
        self.reply(&ServerMessage::Unsubscribed {
            id,
            data: UnsubscribedData {
                topics: data.topics,
                reason: None,
            },
        });
    }

    async fn on_publish(&mut self, id: Option<RequestId>, data: PublishData) {
        let PublishData { topic, payload } = data;
        let Some(family) = self.family(&id, &topic) else {
            return;
        };
        match self
            .shared
            .authority
            .can_publish(self.principal.as_deref(), &topic)
        {
            Decision::Allowed => {}
            Decision::NeedsAuth => {
                let message = format!("publishing on {topic} needs an authenticated principal");
                return self.error(id, ErrorCode::Unauthorized, message, Some(topic.as_str()));
            }
            Decision::Denied => {
                let message = format!(
                    "this principal may not publish on {topic} (needs the publisher role and a \
                     matching publish pattern)"
                );
                return self.error(id, ErrorCode::Forbidden, message, Some(topic.as_str()));
            }
        }
        let event = match TopicEvent::decode(&topic, &payload) {
            Ok(event) => event,
            Err(err) => {
                let err = FrameError::from_catalog(&err, "/data/payload");
                let message = err.to_string();
                return self.error(id, err.code, message, Some(topic.as_str()));
            }
        };
        match self
            .shared
            .engine
            .publish(&topic, family, &event, payload, &mut self.dirty)
            .await
        {
            Ok((epoch, seq)) => self.reply(&ServerMessage::Published {
                id,
                data: PublishedData { topic, epoch, seq },
            }),
            Err(PublishError::Exhausted) => self.error(
                id,
                ErrorCode::Internal,
                format!("topic {topic} has used up its seq range"),
                Some(topic.as_str()),
            ),
            Err(PublishError::Unavailable(why)) => self.error(
                id,
                ErrorCode::Unavailable,
                format!("not published on {topic}: {why}; retry"),
                Some(topic.as_str()),
            ),
            Err(PublishError::Uncertain(why)) => {
                let message = uncertain_publish(&topic, &why);
                self.error(id, ErrorCode::Unavailable, message, Some(topic.as_str()))
            }
            Err(PublishError::Corrupt(why)) => self.error(
                id,
                ErrorCode::Internal,
                format!("not published on {topic}: {why}"),
                Some(topic.as_str()),
            ),
        }
    }
}

/// The `unavailable` message of a publish cut off after it reached the engine's storage.
fn uncertain_publish(topic: &Topic, why: &str) -> String {
    format!(
        "the publish on {topic} may or may not have been applied: {why}. Before publishing it \
         again, subscribe to {topic} resuming from the last epoch and seq you saw (or with a \
         snapshot) to learn whether it was: if it was, its event is replayed"
    )
}

fn end_for(err: &WsError) -> End {
    match err {
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => End::Close(
            CloseCode::MessageTooBig,
            "message larger than the server's max_message_bytes",
        ),
        WsError::Capacity(_) => End::Close(CloseCode::MessageTooBig, "frame too large"),
        WsError::Utf8(_) => End::Close(
            CloseCode::InvalidPayloadData,
            "text frame is not valid UTF-8",
        ),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)
        | WsError::ConnectionClosed
        | WsError::AlreadyClosed
        | WsError::Io(_) => End::Gone,
        WsError::Protocol(_) => {
            End::Close(CloseCode::ProtocolError, "WebSocket protocol violation")
        }
        _ => End::Gone,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits() -> Limits {
        Limits {
            heartbeat_interval: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(5),
            auth_deadline: Duration::from_secs(3),
            ..Limits::default()
        }
    }

    fn code(end: Option<End>) -> Option<u16> {
        match end {
            Some(End::Close(code, _)) => Some(code.value()),
            Some(End::Gone) => Some(0),
            None => None,
        }
    }

    #[test]
    fn a_ping_goes_out_each_interval_and_an_unanswered_one_closes_with_4008() {
        let counters = Counters::default();
        let outbox = Outbox::detached(1 << 20, Arc::default());
        let t0 = Instant::now();
        let secs = |n| t0 + Duration::from_secs(n);
        let mut deadlines = Deadlines::new(&limits(), true, t0);
        assert_eq!(deadlines.next(), secs(10));
        assert_eq!(
            code(deadlines.check(secs(9), &outbox, false, &counters)),
            None
        );
        assert!(outbox.take_queued().is_empty());
        assert_eq!(
            code(deadlines.check(secs(10), &outbox, false, &counters)),
            None
        );
        let ping = outbox.take_queued();
        assert_eq!(ping.len(), 1);
        assert_eq!(
            (&ping[0].bytes[..], ping[0].topic),
            (&[0x89, 0][..], CONTROL)
        );
        assert_eq!(deadlines.next(), secs(15), "the pong is due");
        deadlines.pong();
        assert_eq!(deadlines.next(), secs(20), "the next ping");
        assert_eq!(
            code(deadlines.check(secs(20), &outbox, false, &counters)),
            None
        );
        assert_eq!(
            code(deadlines.check(secs(24), &outbox, false, &counters)),
            None
        );
        assert_eq!(
            code(deadlines.check(secs(25), &outbox, false, &counters)),
            Some(4008)
        );
        assert_eq!(Counters::get(&counters.heartbeat_timeouts), 1);
    }

    #[test]
    fn the_auth_deadline_closes_only_a_connection_still_anonymous_with_4001() {
        let counters = Counters::default();
        let outbox = Outbox::detached(1 << 20, Arc::default());
        let t0 = Instant::now();
        let at = t0 + Duration::from_secs(3);
        let authenticated = Deadlines::new(&limits(), true, t0);
        assert_eq!(authenticated.next(), t0 + Duration::from_secs(10));
        let mut subscribed = Deadlines::new(&limits(), false, t0);
        assert_eq!(subscribed.next(), at);
        assert_eq!(code(subscribed.check(at, &outbox, false, &counters)), None);
        assert_eq!(subscribed.next(), t0 + Duration::from_secs(10), "disarmed");
        let mut anonymous = Deadlines::new(&limits(), false, t0);
        assert_eq!(
            code(anonymous.check(at, &outbox, true, &counters)),
            Some(4001)
        );
        assert_eq!(Counters::get(&counters.auth_timeouts), 1);
    }
}
