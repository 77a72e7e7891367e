//! Test support: a configured server on loopback and a typed WebSocket client.
#![allow(dead_code)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;

use rtbus_protocol::{
    AuthData, ClientMessage, CloseCode, Delivery, Epoch, PublishData, RequestId, ServerMessage,
    Start, SubscribeData, SubscribedTopic, SubscriptionRequest, Topic, UnsubscribeData,
    UnsubscribedData, decode_server_frame,
};
use rtbus_server::{Config, RunningServer, TokenConfig};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// How long any single expected frame may take.
pub const STEP: Duration = Duration::from_secs(5);

pub const PUBLISHER: &str = "tok-publisher";
pub const ALICE: &str = "tok-alice";
pub const BOB: &str = "tok-bob";
pub const ADMIN: &str = "tok-admin";

/// The test configuration: loopback, ephemeral port, one public family, four principals.
pub fn config() -> Config {
    let mut publisher = TokenConfig::new(PUBLISHER, "feeder");
    publisher.roles = vec!["publisher".into()];
    publisher.read = vec!["*".into()];
    publisher.publish = vec!["*".into()];
    let mut alice = TokenConfig::new(ALICE, "alice");
    alice.roles = vec!["publisher".into()];
    alice.read = vec!["sessions.activity:{principal}-*".into(), "custom.*".into()];
    alice.publish = vec!["sessions.activity:{principal}-*".into()];
    let mut bob = TokenConfig::new(BOB, "bob");
    bob.read = vec!["sessions.activity:{principal}-*".into()];
    bob.publish = vec!["custom.*".into()];
    let mut admin = TokenConfig::new(ADMIN, "root");
    admin.roles = vec!["admin".into()];
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("literal address"),
        tokens: vec![publisher, alice, bob, admin],
        public_topics: vec!["drives.pressure".into(), "custom.public.*".into()],
        ..Config::default()
    };
    config.limits.close_timeout = Duration::from_millis(500);
    config
}

pub async fn start(config: Config) -> RunningServer {
    rtbus_server::start(config).await.expect("server starts")
}

pub fn topic(name: &str) -> Topic {
    Topic::new(name).expect("valid topic")
}

pub fn rid(id: &str) -> Option<RequestId> {
    Some(RequestId::new(id).expect("valid id"))
}

pub fn subscribe(id: &str, topics: &[&str]) -> ClientMessage {
    subscribe_with(
        id,
        topics.iter().map(|t| SubscriptionRequest::new(topic(t))),
    )
}

pub fn subscribe_with(
    id: &str,
    topics: impl IntoIterator<Item = SubscriptionRequest>,
) -> ClientMessage {
    ClientMessage::Subscribe {
        id: rid(id),
        data: SubscribeData {
            topics: topics.into_iter().collect(),
        },
    }
}

/// A subscription that resumes after `after` of stream `epoch`.
pub fn resume(name: &str, epoch: &Epoch, after: u64) -> SubscriptionRequest {
    let seq = rtbus_protocol::Seq::new(after).expect("small seq");
    SubscriptionRequest::resume(topic(name), epoch.clone(), seq)
}

/// An epoch no server has given out (the reference server's epochs hold a '-').
pub fn foreign_epoch() -> Epoch {
    Epoch::new("someone_else").expect("valid epoch")
}

pub fn no_snapshot(name: &str) -> SubscriptionRequest {
    SubscriptionRequest {
        snapshot: Some(false),
        ..SubscriptionRequest::new(topic(name))
    }
}

pub fn unsubscribe(id: &str, topics: &[&str]) -> ClientMessage {
    ClientMessage::Unsubscribe {
        id: rid(id),
        data: UnsubscribeData {
            topics: topics.iter().map(|t| topic(t)).collect(),
        },
    }
}

pub fn publish(id: &str, name: &str, payload: Value) -> ClientMessage {
    ClientMessage::Publish {
        id: rid(id),
        data: PublishData {
            topic: topic(name),
            payload,
        },
    }
}

pub fn auth(id: &str, token: &str) -> ClientMessage {
    ClientMessage::Auth {
        id: rid(id),
        data: AuthData {
            token: token.into(),
        },
    }
}

/// A `drives.pressure` event payload.
pub fn pressure(drive: &str, level: f64) -> Value {
    serde_json::json!({"drive": drive, "pressure": level, "threshold": 0.9})
}

pub type Ws = rtbus_socket::WsStream;
/// The server's answer to an accepted handshake.
pub type Response = rtbus_socket::Handshake;
/// Why a dial failed; a refusal is `Error::Refused` with the status, headers and body.
pub type DialError = rtbus_socket::Error;

pub struct Client {
    pub ws: Ws,
}

/// Options for a connection's handshake.
#[derive(Default)]
pub struct Dial<'a> {
    pub token: Option<&'a str>,
    pub protocols: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub path: Option<&'a str>,
    /// A small socket receive buffer, so a client that stops reading backs up quickly.
    pub recv_buffer: Option<u32>,
}

impl Client {
    pub async fn connect(server: &RunningServer) -> Client {
        Client::dial(server, Dial::default())
            .await
            .expect("handshake accepted")
    }

    pub async fn with_token(server: &RunningServer, token: &str) -> Client {
        let dial = Dial {
            token: Some(token),
            ..Dial::default()
        };
        Client::dial(server, dial)
            .await
            .expect("handshake accepted")
    }

    pub async fn dial(server: &RunningServer, dial: Dial<'_>) -> Result<Client, DialError> {
        Client::dial_addr(server.local_addr(), dial).await
    }

    /// Dials a server by address (e.g. one running as a separate process).
    pub async fn dial_addr(addr: SocketAddr, dial: Dial<'_>) -> Result<Client, DialError> {
        Client::dial_with_response(addr, dial)
            .await
            .map(|(ws, _)| Client { ws })
    }

    /// Dials and returns the socket with the server's handshake response.
    pub async fn dial_with_response(
        addr: SocketAddr,
        dial: Dial<'_>,
    ) -> Result<(Ws, Response), DialError> {
        let url = rtbus_socket::Url::parse(&format!("ws://{addr}"))?
            .with_path(dial.path.unwrap_or("/api/realtime"));
        // The tests send frames as large as the server's own limit allows, and larger.
        let mut options = rtbus_socket::Dial::new().max_message_size(None);
        if let Some(protocols) = dial.protocols {
            options = options.subprotocols(
                protocols
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty()),
            );
        }
        if let Some(token) = dial.token {
            options = options.bearer(token);
        }
        if let Some(origin) = dial.origin {
            options = options.header("Origin", origin);
        }
        if let Some(size) = dial.recv_buffer {
            options = options.recv_buffer(size);
        }
        options.connect_to(&url, addr).await
    }

    pub async fn send(&mut self, message: &ClientMessage) {
        let text = serde_json::to_string(message).expect("encodable");
        self.send_raw(&text).await;
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.ws
            .send(Message::text(text))
            .await
            .expect("send succeeds");
    }

    /// The next text frame, decoded and checked against the protocol (including the payload
    /// type of its topic's family).
    pub async fn recv(&mut self) -> ServerMessage {
        let text = self.recv_text().await;
        decode_server_frame(&text)
            .unwrap_or_else(|err| panic!("invalid server frame {text}: {err}"))
    }

    /// The next text frame as the server sent it, byte for byte (checked to decode).
    pub async fn recv_text(&mut self) -> String {
        loop {
            let message = tokio::time::timeout(STEP, self.ws.next())
                .await
                .expect("a frame within the step timeout")
                .expect("connection still open")
                .expect("no WebSocket error");
            match message {
                Message::Text(text) => {
                    if let Err(err) = decode_server_frame(&text) {
                        panic!("invalid server frame {text}: {err}");
                    }
                    return text.as_str().to_owned();
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Sends `message` and returns the first reply.
    pub async fn request(&mut self, message: &ClientMessage) -> ServerMessage {
        self.send(message).await;
        self.recv().await
    }

    /// Reads until the server closes; returns the close code (skipping data frames), which
    /// must be one the protocol declares (rule `frame.close-code`).
    pub async fn expect_close(&mut self) -> u16 {
        let code = self.close_code().await;
        assert_declared_close_code(code);
        code
    }

    async fn close_code(&mut self) -> u16 {
        loop {
            let next = tokio::time::timeout(STEP, self.ws.next())
                .await
                .expect("the server closes within the step timeout");
            match next {
                Some(Ok(Message::Close(Some(frame)))) => {
                    // Finish the closing handshake like a real client: our reply goes out on
                    // the next poll, which then ends the stream.
                    let _ = tokio::time::timeout(STEP, self.ws.next()).await;
                    return u16::from(frame.code);
                }
                Some(Ok(Message::Close(None))) => panic!("close frame without a code"),
                Some(Ok(_)) => continue,
                Some(Err(err)) => panic!("connection failed instead of closing: {err}"),
                None => panic!("connection ended without a close frame"),
            }
        }
    }

    /// Asserts that no text frame arrives for `duration`.
    pub async fn expect_silence(&mut self, duration: Duration) {
        let deadline = tokio::time::Instant::now() + duration;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(other) => panic!("expected silence, got {other:?}"),
            }
        }
    }
}

/// The `seq` and `isReplay` of an `event` on `name`, or a panic naming what came instead.
pub fn event_on(message: &ServerMessage, name: &str) -> (u64, bool) {
    match message {
        ServerMessage::Event { data, .. } if data.topic.as_str() == name => {
            (data.seq.get(), data.is_replay)
        }
        other => panic!("expected an event on {name}, got {other:?}"),
    }
}

/// The `seq` and payload of a `snapshot` on `name`.
pub fn snapshot_on(message: &ServerMessage, name: &str) -> (u64, Value) {
    match message {
        ServerMessage::Snapshot { data, .. } if data.topic.as_str() == name => {
            assert!(!data.is_replay, "snapshots are never replays");
            (data.seq.get(), data.payload.clone())
        }
        other => panic!("expected a snapshot of {name}, got {other:?}"),
    }
}

/// The code of an `error` frame answering `id`.
pub fn error_code(message: &ServerMessage, id: &str) -> rtbus_protocol::ErrorCode {
    match message {
        ServerMessage::Error { id: got, data } => {
            assert_eq!(got.as_ref().map(RequestId::as_str), Some(id), "{data:?}");
            data.code
        }
        other => panic!("expected an error answering {id}, got {other:?}"),
    }
}

/// Asserts `message` is the `kind` reply to request `id`.
pub fn assert_reply(message: &ServerMessage, kind: &str, id: &str) {
    assert_eq!(message.kind(), kind, "{message:?}");
    assert_eq!(message.id().map(RequestId::as_str), Some(id), "{message:?}");
}

/// Asserts that `code` is one `CloseCode` declares, so a client knows whether to reconnect.
pub fn assert_declared_close_code(code: u16) {
    assert!(
        CloseCode::from_value(code).is_some(),
        "the server closed with {code}, which CloseCode does not declare"
    );
}

/// The `delivery` of a snapshot or event, or a panic naming what came instead.
pub fn delivery(message: &ServerMessage) -> &Delivery {
    match message {
        ServerMessage::Snapshot { data, .. } | ServerMessage::Event { data, .. } => data,
        other => panic!("expected a snapshot or an event, got {other:?}"),
    }
}

/// The entries of a `subscribed` frame answering `id`.
pub fn subscribed(message: &ServerMessage, id: &str) -> Vec<SubscribedTopic> {
    match message {
        ServerMessage::Subscribed { id: got, data } => {
            assert_eq!(got.as_ref().map(RequestId::as_str), Some(id), "{data:?}");
            data.topics.clone()
        }
        other => panic!("expected subscribed answering {id}, got {other:?}"),
    }
}

/// The only entry of a `subscribed` frame answering `id`, as (epoch, seq, start).
pub fn subscribed_one(message: &ServerMessage, id: &str) -> (Epoch, u64, Start) {
    let topics = subscribed(message, id);
    assert_eq!(topics.len(), 1, "{topics:?}");
    let entry = &topics[0];
    (entry.epoch.clone(), entry.seq.get(), entry.start)
}

/// The epoch and `seq` of a `published` reply to `id`.
pub fn published(message: &ServerMessage, id: &str) -> (Epoch, u64) {
    match message {
        ServerMessage::Published { id: got, data } => {
            assert_eq!(got.as_ref().map(RequestId::as_str), Some(id), "{data:?}");
            (data.epoch.clone(), data.seq.get())
        }
        other => panic!("expected published answering {id}, got {other:?}"),
    }
}

/// The body of an `unsubscribed` frame, checking its `id`.
pub fn unsubscribed(message: &ServerMessage, id: Option<&str>) -> UnsubscribedData {
    match message {
        ServerMessage::Unsubscribed { id: got, data } => {
            assert_eq!(got.as_ref().map(RequestId::as_str), id, "{data:?}");
            data.clone()
        }
        other => panic!("expected unsubscribed, got {other:?}"),
    }
}

/// A `ping` frame with no data.
pub fn ping(id: &str) -> ClientMessage {
    ClientMessage::Ping {
        id: rid(id),
        data: None,
    }
}

/// The `rtbus-server` binary running as a child process; killed (SIGKILL) when dropped, so a
/// failing test leaves no server behind.
pub struct ServerProcess {
    child: Option<std::process::Child>,
    /// The WebSocket URL from its first stdout line.
    pub url: String,
}

impl ServerProcess {
    /// Starts the binary with `args` and waits for its first stdout line, `listening on <url>`.
    /// `None` when the process ends without printing it (e.g. its port was still taken).
    pub async fn try_spawn(args: &[&str]) -> Option<ServerProcess> {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let mut child = Command::new(env!("CARGO_BIN_EXE_rtbus-server"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        });
        let line = tokio::time::timeout(STEP, line)
            .await
            .expect("the binary prints its address or exits within the step timeout")
            .expect("joined")
            .expect("stdout readable");
        let Some(url) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        };
        let url = url.to_owned();
        Some(ServerProcess {
            child: Some(child),
            url,
        })
    }

    pub async fn spawn(args: &[&str]) -> ServerProcess {
        ServerProcess::try_spawn(args)
            .await
            .unwrap_or_else(|| panic!("rtbus-server {args:?} did not start"))
    }

    /// The address the process listens on.
    pub fn addr(&self) -> SocketAddr {
        let host = self
            .url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("unexpected URL {}", self.url));
        host.parse().unwrap_or_else(|err| panic!("{host}: {err}"))
    }
}

impl ServerProcess {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, std::process::Child::id)
    }

    /// Kills the process with SIGKILL (no shutdown, no close frames) and reaps it.
    pub fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("the server process can be killed");
            child.wait().expect("the killed server is reaped");
        }
    }

    /// The child, for a test that waits for it to exit by itself.
    pub fn into_child(mut self) -> std::process::Child {
        self.child.take().expect("the process was not killed")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
