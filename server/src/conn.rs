//! One WebSocket connection: a single task that reads requests, writes its outbound queue in
//! batches, and runs the heartbeat and auth deadline.
//!
//! Reading and writing share one future (see [`Connection::run`]) so a connection that
//! receives a lot still answers pings, and one that stops reading only backs up its own queue.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures_util::{SinkExt, StreamExt};
use rtbus_protocol::catalog::{Family, TopicEvent};
use rtbus_protocol::{
    AuthenticatedData, ClientMessage, CloseCode, ErrorCode, ErrorData, FrameError, PublishData,
    PublishedData, RequestId, ServerMessage, SubscribeData, Topic, TopicsData, UnsubscribeData,
    decode_client_frame,
};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::auth::{Decision, Principal};
use crate::http;
use crate::hub::{Start, TopicCell, encode};
use crate::outbox::{OutFrame, Outbox};
use crate::server::Shared;
use crate::stats::Counters;

type Ws = WebSocketStream<TcpStream>;

/// The close code for a text frame that is not UTF-8 (RFC 6455 `invalid frame payload data`).
const INVALID_PAYLOAD_DATA: u16 = 1007;

/// Serves one accepted TCP connection: the HTTP request head, then the WebSocket session.
/// `_done` is dropped when the connection is finished, which is how shutdown knows.
pub(crate) async fn serve(
    mut stream: TcpStream,
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
    let handshake = timeout(limits.handshake_timeout, http::handle(&mut stream, &shared));
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
    let ws =
        WebSocketStream::from_partially_read(stream, upgrade.leftover, Role::Server, Some(config))
            .await;
    let id = shared.register();
    let outbox = Arc::new(Outbox::new(limits.max_pending_bytes));
    shared.track(id, &outbox);
    let mut connection = Connection {
        id,
        shared: Arc::clone(&shared),
        outbox,
        principal: upgrade.principal,
        topics: Vec::new(),
    };
    tracing::debug!(conn = id, "connection open");
    connection.run(ws, shutdown).await;
    shared.unregister(id);
}

struct Connection {
    id: u64,
    shared: Arc<Shared>,
    outbox: Arc<Outbox>,
    principal: Option<Arc<Principal>>,
    topics: Vec<Arc<TopicCell>>,
}

/// Frames taken from the outbox and being written.
#[derive(Default)]
struct Writer {
    batch: VecDeque<OutFrame>,
    bytes: usize,
    frames: u64,
    ping_due: bool,
    flushing: bool,
    done: bool,
    failed: bool,
}

impl Writer {
    fn has_work(&self) -> bool {
        self.ping_due || self.flushing || !self.batch.is_empty()
    }

    /// Feeds every frame of the batch to the socket, then flushes once.
    fn poll_write(&mut self, ws: &mut Ws, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        if self.ping_due {
            ready!(ws.poll_ready_unpin(cx))?;
            ws.start_send_unpin(Message::Ping(Default::default()))?;
            self.ping_due = false;
            self.flushing = true;
        }
        while !self.batch.is_empty() {
            ready!(ws.poll_ready_unpin(cx))?;
            if let Some(frame) = self.batch.pop_front() {
                ws.start_send_unpin(Message::Text(frame.text))?;
                self.frames += 1;
                self.flushing = true;
            }
        }
        if self.flushing {
            ready!(ws.poll_flush_unpin(cx))?;
            self.flushing = false;
        }
        Poll::Ready(Ok(()))
    }
}

enum Io {
    Read(Option<Result<Message, WsError>>),
    Written,
}

/// Why the server ends a connection.
enum End {
    /// Send a close frame with this code and reason.
    Close(u16, &'static str),
    /// The peer is gone or already closed; nothing to send.
    Gone,
}

impl Connection {
    async fn run(&mut self, mut ws: Ws, mut shutdown: watch::Receiver<bool>) {
        let limits = self.shared.config.limits.clone();
        let counters = Arc::clone(&self.shared.counters);
        let mut writer = Writer::default();
        let mut next_ping = Instant::now() + limits.heartbeat_interval;
        let mut awaiting_pong: Option<Instant> = None;
        let mut auth_deadline = self
            .principal
            .is_none()
            .then(|| Instant::now() + limits.auth_deadline);

        let sleep = sleep_until(next_ping);
        tokio::pin!(sleep);

        let end = loop {
            match self.outbox.refill(&mut writer.batch) {
                Some(bytes) => writer.bytes += bytes,
                None => {
                    Counters::add(&counters.slow_consumer_disconnects, 1);
                    break End::Close(
                        CloseCode::SlowConsumer.value(),
                        "outbound queue exceeded the server's limit",
                    );
                }
            }
            let now = Instant::now();
            if let Some(sent) = awaiting_pong {
                if now >= sent + limits.heartbeat_timeout {
                    Counters::add(&counters.heartbeat_timeouts, 1);
                    break End::Close(CloseCode::HeartbeatTimeout.value(), "no pong in time");
                }
            } else if now >= next_ping {
                writer.ping_due = true;
                awaiting_pong = Some(now);
                next_ping = now + limits.heartbeat_interval;
            }
            if let Some(deadline) = auth_deadline {
                if now >= deadline {
                    auth_deadline = None;
                    if self.principal.is_none() && self.topics.is_empty() {
                        Counters::add(&counters.auth_timeouts, 1);
                        break End::Close(
                            CloseCode::AuthTimeout.value(),
                            "not authenticated in time",
                        );
                    }
                }
            }
            let mut wake = match awaiting_pong {
                Some(sent) => sent + limits.heartbeat_timeout,
                None => next_ping,
            };
            if let Some(deadline) = auth_deadline {
                wake = wake.min(deadline);
            }
            // One timer for the connection's life, moved only when its deadline changes.
            if sleep.deadline() != wake {
                sleep.as_mut().reset(wake);
            }

            let io = poll_fn(|cx| {
                let mut wrote = false;
                if writer.has_work() {
                    match writer.poll_write(&mut ws, cx) {
                        Poll::Ready(result) => {
                            writer.done = true;
                            writer.failed = result.is_err();
                            wrote = true;
                        }
                        Poll::Pending => {}
                    }
                }
                if let Poll::Ready(message) = ws.poll_next_unpin(cx) {
                    return Poll::Ready(Io::Read(message));
                }
                if wrote {
                    Poll::Ready(Io::Written)
                } else {
                    Poll::Pending
                }
            });
            let result = tokio::select! {
                biased;
                _ = shutdown.changed() => {
                    break End::Close(CloseCode::GoingAway.value(), "server shutting down");
                }
                io = io => Some(io),
                () = self.outbox.notify.notified() => None,
                () = &mut sleep => None,
            };
            if writer.done {
                writer.done = false;
                if writer.failed {
                    break End::Gone;
                }
                self.outbox.written(writer.bytes);
                Counters::add(&counters.messages_out, writer.frames);
                writer.bytes = 0;
                writer.frames = 0;
            }
            match result {
                None | Some(Io::Written) => {}
                Some(Io::Read(None)) => break End::Gone,
                Some(Io::Read(Some(Err(err)))) => break end_for(&err),
                Some(Io::Read(Some(Ok(message)))) => match message {
                    Message::Text(text) => self.on_text(&text),
                    Message::Binary(_) => {
                        break End::Close(
                            CloseCode::UnsupportedData.value(),
                            "binary frames are not part of rtbus v1; send JSON text frames",
                        );
                    }
                    Message::Pong(_) => awaiting_pong = None,
                    // Pings are answered by the WebSocket layer; a peer's close is answered
                    // there too, and the next read ends the stream.
                    Message::Ping(_) | Message::Close(_) | Message::Frame(_) => {}
                },
            }
        };

        // Stop every publisher from queueing more, then say goodbye.
        for cell in self.topics.drain(..) {
            self.shared.hub.unsubscribe(&cell, self.id);
        }
        self.outbox.close();
        if let End::Close(code, reason) = end {
            tracing::debug!(conn = self.id, code, reason, "closing connection");
            let frame = CloseFrame {
                code: WsCloseCode::from(code),
                reason: Utf8Bytes::from_static(reason),
            };
            let _ = timeout(limits.close_timeout, async {
                if ws.close(Some(frame)).await.is_ok() {
                    while let Some(Ok(_)) = ws.next().await {}
                }
            })
            .await;
        } else {
            tracing::debug!(conn = self.id, "connection gone");
        }
    }

    fn reply(&self, message: &ServerMessage) {
        self.outbox.push(OutFrame {
            text: encode(message),
            topic: 0,
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

    fn on_text(&mut self, text: &str) {
        Counters::add(&self.shared.counters.messages_in, 1);
        match decode_client_frame(text) {
            Err(err) => self.frame_error(err),
            Ok(ClientMessage::Auth { id, data }) => self.on_auth(id, &data.token),
            Ok(ClientMessage::Subscribe { id, data }) => self.on_subscribe(id, data),
            Ok(ClientMessage::Unsubscribe { id, data }) => self.on_unsubscribe(id, data),
            Ok(ClientMessage::Publish { id, data }) => self.on_publish(id, data),
            Ok(ClientMessage::Ping { id, data }) => self.reply(&ServerMessage::Pong { id, data }),
        }
    }

    fn frame_error(&self, err: FrameError) {
        let message = err.to_string();
        self.error(err.id, err.code, message, err.topic.as_deref());
    }

    fn on_auth(&mut self, id: Option<RequestId>, token: &str) {
        match self.shared.authority.authenticate(token) {
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
            }
            None => self.error(
                id,
                ErrorCode::Unauthorized,
                "the token is not accepted".into(),
                None,
            ),
        }
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

    fn on_subscribe(&mut self, id: Option<RequestId>, data: SubscribeData) {
        if data.topics.is_empty() {
            return self.error(
                id,
                ErrorCode::BadRequest,
                "at /data/topics: expected at least one topic".into(),
                None,
            );
        }
        let mut families = Vec::with_capacity(data.topics.len());
        for request in &data.topics {
            let topic = &request.topic;
            let Some(family) = self.family(&id, topic) else {
                return;
            };
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
            return self.error(id, code, message, Some(topic.as_str()));
        }
        let mut held: Vec<&Topic> = self.topics.iter().map(|c| &c.topic).collect();
        for request in &data.topics {
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
            return self.error(id, ErrorCode::LimitExceeded, message, None);
        }
        // The acknowledgement is queued before any topic is attached, so it precedes every
        // snapshot, replay and event of the request.
        self.reply(&ServerMessage::Subscribed {
            id,
            data: TopicsData {
                topics: data.topics.iter().map(|r| r.topic.clone()).collect(),
            },
        });
        for (at, (request, family)) in data.topics.iter().zip(families).enumerate() {
            // A topic named twice in one request starts once, by its first entry.
            if data.topics[..at].iter().any(|r| r.topic == request.topic) {
                continue;
            }
            let start = Start {
                snapshot: request.wants_snapshot(),
                resume_after: request.resume_after.map(|s| s.get()),
            };
            let cell =
                self.shared
                    .hub
                    .subscribe(&request.topic, family, self.id, &self.outbox, start);
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
            data: TopicsData {
                topics: data.topics,
            },
        });
    }

    fn on_publish(&mut self, id: Option<RequestId>, data: PublishData) {
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
        match self.shared.hub.publish(&topic, family, &event, payload) {
            Ok(seq) => self.reply(&ServerMessage::Published {
                id,
                data: PublishedData { topic, seq },
            }),
            Err(_) => self.error(
                id,
                ErrorCode::Internal,
                format!("topic {topic} has used up its seq range"),
                Some(topic.as_str()),
            ),
        }
    }
}

fn end_for(err: &WsError) -> End {
    match err {
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => End::Close(
            CloseCode::MessageTooBig.value(),
            "message larger than the server's max_message_bytes",
        ),
        WsError::Capacity(_) => End::Close(CloseCode::MessageTooBig.value(), "frame too large"),
        WsError::Utf8(_) => End::Close(INVALID_PAYLOAD_DATA, "text frame is not valid UTF-8"),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)
        | WsError::ConnectionClosed
        | WsError::AlreadyClosed
        | WsError::Io(_) => End::Gone,
        WsError::Protocol(_) => End::Close(
            CloseCode::ProtocolError.value(),
            "WebSocket protocol violation",
        ),
        _ => End::Gone,
    }
}
