//! The harness must be able to fail: a mutating proxy between the harness and the real reference
//! server breaks one rule at a time, and the bundled suite must fail for each mutation, in a
//! case that cites the broken rule. The unmutated proxy passes everything.

// Test support code: a poisoned lock or a runtime that cannot start is a bug in the test.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rtbus_conformance::contract::Contract;
use rtbus_conformance::embedded::server_config;
use rtbus_conformance::report::{Cause, Style, causes, render_failure, summary};
use rtbus_conformance::runner::{
    BoxFuture, CaseResult, InfraError, Prepared, RunOptions, ServerHandle, Target, Verdict,
    run_suite,
};
use rtbus_conformance::suite;
use rtbus_conformance::transcript::Capability;
use rtbus_socket::{
    Action, Answer, CloseFrame, Dial, Direction, Message, Offer, Proxy, StatusCode, Tap, Upstream,
    Url, WsStream,
};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket};

/// One way to break the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Mutation {
    /// No change: the proxy must be transparent.
    None,
    DropSnapshot,
    SkipSeq,
    ReorderEvents,
    LoseRequestId,
    EventAfterUnsubscribe,
    OmitEmittedAt,
    IgnoreBadFrame,
    IgnoreBinaryFrame,
    NeverDisconnectSlowConsumer,
    AcceptUnauthorizedPublish,
    WrongCloseCodes,
    EmptySnapshot,
    ReplayNotMarked,
    ResumeIgnored,
    DuplicateEvents,
    AcceptAnySubprotocol,
    VagueErrorCodes,
    ErrorCloses,
    AckAfterSnapshot,
    NonAtomicSubscribe,
    IgnoreBearerHeader,
    AcceptAnyToken,
    EscalateReaders,
    FanoutToFirstOnly,
    ExtraEnvelopeField,
    AckWrongSeq,
    IgnoreSnapshotOptOut,
    PongWithoutData,
    WrongPrincipal,
    WrongEndpoint,
    SubscribedOutOfOrder,
    /// Resumes always name the latest epoch the proxy saw for the topic, as if the server
    /// ignored the epoch a client sent.
    IgnoreEpoch,
    /// Events carry another epoch than the topic's snapshots and acknowledgements.
    UnstableEpoch,
    /// `subscribed` entries say `live` for `snapshot`, `reset` for `resumed` and back.
    WrongStart,
    /// A lone `resumeAfter` or `epoch` is dropped instead of refused.
    AcceptUnpairedResume,
    /// The `unsubscribed` notice a re-authentication owes is never sent.
    KeepSubscriptionsOnRefresh,
    /// A rejected token on an authenticated connection keeps its principal and subscriptions.
    KeepPrincipalOnRejectedAuth,
    /// Frames nested too deep are relayed with their payload flattened instead of refused.
    NoNestingLimit,
    /// The server's close codes become 4999, which `CloseCode` does not declare.
    UndeclaredCloseCode,
    /// `unknown_topic` errors do not say which topic.
    DropErrorTopic,
    /// A connection authenticated by its `Authorization` header also gets an `authenticated`
    /// frame nobody asked for, before the reply to its first frame: one mistake that fails
    /// many cases, for the report to show as one cause.
    AnnounceHeaderAuth,
    /// Activity snapshots keep every event: the family's cap of entries is not applied.
    SnapshotUncapped,
    /// Upsert snapshots keep the entries an event marked removed (a `closed` session).
    SnapshotKeepsClosed,
    /// Upsert snapshots list entries in the order their keys first appeared, not by key.
    SnapshotUnsorted,
    /// The auth deadline closes authenticated connections too (on their first frame after it).
    DeadlineForAll,
    /// Re-authenticating ends every subscription, even with a token of the same principal.
    ForgetSubscriptionsOnRefresh,
    /// Anonymous connections act as the publisher, who may read every topic.
    AnonymousAsPublisher,
    /// A handshake offering no subprotocol is refused instead of treated as `rtbus.v1`.
    RequireSubprotocol,
    /// One `seq` counter for every topic, as if numbering were global to the server.
    GlobalSeq,
    /// `published` replies carry an epoch that changes from one publish to the next.
    UnstableAckEpoch,
    /// Not a proxy: the reference server itself, misconfigured against the declared contract.
    NoAuthDeadline,
    NoHeartbeat,
    NoTopicLimit,
    NoSizeLimit,
    /// The size limit one byte below the declared one: a message of exactly the maximum is
    /// refused.
    RefuseExactMax,
    /// The size limit one byte above the declared one: a message one byte too big is read.
    AcceptOneOverMax,
}

impl Mutation {
    fn configure(self, config: &mut rtbus_server::Config) -> bool {
        let hour = Duration::from_secs(3600);
        match self {
            Mutation::NoAuthDeadline => config.limits.auth_deadline = hour,
            Mutation::NoHeartbeat => {
                config.limits.heartbeat_interval = hour;
                config.limits.heartbeat_timeout = hour;
            }
            Mutation::NoTopicLimit => config.limits.max_topics_per_connection = 100_000,
            Mutation::NoSizeLimit => config.limits.max_message_bytes = 64 << 20,
            Mutation::RefuseExactMax => config.limits.max_message_bytes -= 1,
            Mutation::AcceptOneOverMax => config.limits.max_message_bytes += 1,
            _ => return false,
        }
        true
    }
}

/// Cases a WebSocket-level proxy cannot carry faithfully, with the reason.
const NOT_PROXIABLE: &[(&str, &str)] = &[(
    "heartbeat.*",
    "the proxy's WebSocket layer answers the server's pings itself, so a client that stops \
         reading is invisible to the server's heartbeat; heartbeat.timeout is proved by the \
         NoHeartbeat server mutation instead",
)];

/// Shared state of one proxy across its connections (and the server's restarts).
#[derive(Default)]
struct Shared {
    first_subscriber: HashMap<String, u64>,
    next_conn: u64,
    /// The latest epoch the server named per topic.
    epochs: HashMap<String, String>,
    /// The contract's tokens: any other token is one the server rejects.
    tokens: Vec<String>,
    /// [`Mutation::GlobalSeq`]: the global number given to each (topic, seq), and the last one.
    global_seq: HashMap<(String, u64), u64>,
    last_global_seq: u64,
    /// Every payload the server acknowledged as `published`, per topic, in order (kept for the
    /// snapshot mutations only).
    published: HashMap<String, Vec<Value>>,
}

struct MutatedTarget {
    mutation: Mutation,
    contract: Contract,
}

/// The reference server behind the proxy (or alone, for server mutations), restartable.
struct Handle {
    config: rtbus_server::Config,
    server: Option<rtbus_server::RunningServer>,
    /// Where the proxy dials: the current server's address, changed by a restart.
    upstream: Arc<Mutex<SocketAddr>>,
    /// The proxy's own URL, stable across restarts; `None` for server mutations.
    proxy_url: Option<String>,
    proxy: Option<tokio::task::JoinHandle<()>>,
}

impl ServerHandle for Handle {
    fn shutdown(&mut self) -> BoxFuture<'static, Result<(), InfraError>> {
        let server = self.server.take();
        Box::pin(async move {
            if let Some(server) = server {
                server.shutdown().await;
            }
            Ok(())
        })
    }

    fn restart(&mut self) -> BoxFuture<'_, Result<Vec<String>, InfraError>> {
        Box::pin(async move {
            let addr = *self.upstream.lock().unwrap();
            let server =
                rtbus_conformance::embedded::restart(self.server.take(), &self.config, addr)
                    .await?;
            let addr = server.local_addr();
            *self.upstream.lock().unwrap() = addr;
            self.server = Some(server);
            Ok(vec![
                self.proxy_url
                    .clone()
                    .unwrap_or_else(|| format!("ws://{addr}/api/realtime")),
            ])
        })
    }

    fn release(mut self: Box<Self>) -> BoxFuture<'static, Result<(), InfraError>> {
        Box::pin(async move {
            self.shutdown().await?;
            if let Some(proxy) = self.proxy.take() {
                proxy.abort();
            }
            Ok(())
        })
    }
}

impl Target for MutatedTarget {
    fn describe(&self) -> String {
        format!("reference server behind a {:?} mutation", self.mutation)
    }

    /// Nothing is absent: even the `cluster` cases run, every connection on the one node, which
    /// is all a mutation of their rules needs to make them fail.
    fn absent(&self) -> Vec<Capability> {
        Vec::new()
    }

    fn prepare(&self) -> BoxFuture<'_, Result<Prepared, InfraError>> {
        Box::pin(async move {
            let mut config = server_config(&self.contract);
            let server_only = self.mutation.configure(&mut config);
            let server = rtbus_server::start(config.clone())
                .await
                .map_err(InfraError::Start)?;
            let upstream = Arc::new(Mutex::new(server.local_addr()));
            let mut handle = Handle {
                config,
                server: Some(server),
                upstream: Arc::clone(&upstream),
                proxy_url: None,
                proxy: None,
            };
            if server_only {
                let url = format!("ws://{}/api/realtime", *upstream.lock().unwrap());
                return Ok(Prepared {
                    urls: vec![url],
                    server: Some(Box::new(handle)),
                });
            }
            let socket = TcpSocket::new_v4().map_err(InfraError::Listen)?;
            // Accepted sockets inherit this: a small send buffer keeps back-pressure visible.
            let _ = socket.set_send_buffer_size(16 * 1024);
            socket
                .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                .map_err(InfraError::Listen)?;
            let listener = socket.listen(64).map_err(InfraError::Listen)?;
            let addr = listener.local_addr().map_err(InfraError::Listen)?;
            let url = format!("ws://{addr}/api/realtime");
            let proxy = tokio::spawn(accept_loop(
                listener,
                upstream,
                self.mutation,
                self.contract.clone(),
            ));
            handle.proxy_url = Some(url.clone());
            handle.proxy = Some(proxy);
            Ok(Prepared {
                urls: vec![url],
                server: Some(Box::new(handle)),
            })
        })
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: Arc<Mutex<SocketAddr>>,
    m: Mutation,
    contract: Contract,
) {
    let shared = Arc::new(Mutex::new(Shared {
        tokens: contract
            .credentials
            .values()
            .map(|c| c.token.clone())
            .collect(),
        ..Shared::default()
    }));
    let publisher = contract.credentials["publisher"].token.clone();
    while let Ok((stream, _)) = listener.accept().await {
        // Read per connection: a restart may have moved the server.
        let upstream = *upstream.lock().unwrap();
        let id = {
            let mut s = shared.lock().unwrap();
            s.next_conn += 1;
            s.next_conn
        };
        let tap = Mutant {
            m,
            publisher_auth: format!("Bearer {publisher}"),
            shared: Arc::clone(&shared),
            id,
            state: tokio::sync::Mutex::default(),
            since: std::time::Instant::now(),
            auth_deadline: Duration::from_millis(contract.limits.auth_deadline_ms),
        };
        let url = Url::parse(&format!("ws://{upstream}/api/realtime")).unwrap();
        // A small receive buffer toward the server keeps its back-pressure visible.
        let upstream = Upstream::new(url).dial_with(Dial::new().recv_buffer(8 * 1024));
        let queue = if m == Mutation::NeverDisconnectSlowConsumer {
            1 << 20
        } else {
            1
        };
        let proxy = Proxy::new(upstream).client_queue(queue);
        tokio::spawn(async move { proxy.serve(stream, tap).await });
    }
}

/// Per-connection state of the mutations.
#[derive(Default)]
struct ConnState {
    held_event: Option<Value>,
    held_subscribed: Option<Value>,
    /// [`Mutation::NonAtomicSubscribe`]: the `error` held until the partial subscription exists.
    held_error: Option<Value>,
    subscribes: HashMap<String, Vec<Value>>,
    resumed: BTreeSet<String>,
    side: Option<WsStream>,
    /// The connection acts as a principal (a bearer header, or an `authenticated` seen).
    authenticated: bool,
    /// An `authenticated` frame is still to be announced ([`Mutation::AnnounceHeaderAuth`]).
    announce: bool,
    /// The topics the connection holds, by the `subscribed` and `unsubscribed` frames seen.
    held: BTreeSet<String>,
    /// The connection held a subscription at some point (the auth deadline no longer applies).
    ever_subscribed: bool,
    /// This connection's publishes not answered yet: (id, topic, payload), oldest first.
    publishing: std::collections::VecDeque<(Option<Value>, String, Value)>,
}

enum Out {
    Up(Message),
    Down(Message),
    CloseDown(u16),
}

fn text(v: &Value) -> Message {
    Message::text(v.to_string())
}

/// The mutating tap of one proxied connection.
struct Mutant {
    m: Mutation,
    /// `Authorization` for the publisher's credential.
    publisher_auth: String,
    shared: Arc<Mutex<Shared>>,
    id: u64,
    state: tokio::sync::Mutex<ConnState>,
    /// When the connection was accepted, and the contract's auth deadline.
    since: std::time::Instant,
    auth_deadline: Duration,
}

impl Tap for Mutant {
    async fn handshake(&self, mut offer: Offer, upstream: &Upstream) -> Answer {
        let m = self.m;
        if m == Mutation::WrongEndpoint {
            return Answer::refuse(StatusCode::NOT_FOUND);
        }
        if m == Mutation::RequireSubprotocol && offer.subprotocols.is_empty() {
            return Answer::refuse(StatusCode::BAD_REQUEST);
        }
        match m {
            Mutation::AnonymousAsPublisher if offer.authorization.is_none() => {
                offer.authorization = Some(self.publisher_auth.clone());
            }
            Mutation::IgnoreBearerHeader => offer.authorization = None,
            Mutation::EscalateReaders if offer.authorization.is_some() => {
                offer.authorization = Some(self.publisher_auth.clone());
            }
            _ => {}
        }
        let mut answer = upstream.dial(&offer).await;
        if m == Mutation::AcceptAnySubprotocol && answer.status() == StatusCode::BAD_REQUEST {
            let anything = Offer {
                subprotocols: Vec::new(),
                ..offer.clone()
            };
            answer = upstream.dial(&anything).await;
        }
        if let Answer::Accept { subprotocol, .. } = &mut answer {
            if m == Mutation::AcceptAnySubprotocol {
                if let Some(first) = offer.subprotocols.first() {
                    *subprotocol = Some(first.clone());
                }
            }
            let mut st = self.state.lock().await;
            st.authenticated = offer.authorization.is_some();
            st.announce = m == Mutation::AnnounceHeaderAuth && st.authenticated;
            if m == Mutation::AcceptUnauthorizedPublish {
                let side = Offer {
                    path: "/api/realtime".into(),
                    subprotocols: Vec::new(),
                    authorization: Some(self.publisher_auth.clone()),
                };
                st.side = upstream.connect(&side).await.ok().map(|(ws, _)| ws);
            }
        }
        answer
    }

    async fn message(&self, direction: Direction, message: Message) -> Vec<Action> {
        let m = self.m;
        let outs = match (direction, message) {
            (Direction::ToServer, Message::Text(_))
                if m == Mutation::DeadlineForAll
                    && self.since.elapsed() > self.auth_deadline
                    && !self.state.lock().await.ever_subscribed =>
            {
                vec![Out::CloseDown(4001)]
            }
            (Direction::ToServer, Message::Text(t)) => {
                let announce = std::mem::take(&mut self.state.lock().await.announce);
                let mut outs = Vec::new();
                if announce {
                    let frame = json!({"type": "authenticated",
                        "data": {"principal": "header", "roles": []}});
                    outs.push(Out::Down(text(&frame)));
                }
                outs.extend(client_text(m, &t, &self.state, &self.shared).await);
                outs
            }
            (Direction::ToServer, Message::Binary(_)) if m == Mutation::IgnoreBinaryFrame => {
                vec![]
            }
            (Direction::ToClient, Message::Text(t)) => {
                server_text(m, &t, &self.state, &self.shared, self.id).await
            }
            (Direction::ToClient, Message::Close(f)) => {
                let f = f.map(|mut f| {
                    if m == Mutation::WrongCloseCodes {
                        f.code = 1000.into();
                    }
                    if m == Mutation::UndeclaredCloseCode {
                        f.code = 4999.into();
                    }
                    f
                });
                vec![Out::Down(Message::Close(f))]
            }
            (direction, message) => return vec![Action::send(direction, message)],
        };
        actions(outs)
    }
}

/// The proxy's actions for the outputs; a `CloseDown` closes both sides and ends the list.
fn actions(outs: Vec<Out>) -> Vec<Action> {
    let mut actions = Vec::with_capacity(outs.len());
    for out in outs {
        match out {
            Out::Up(msg) => actions.push(Action::ToServer(msg)),
            Out::Down(msg) => actions.push(Action::ToClient(msg)),
            Out::CloseDown(code) => {
                let frame = CloseFrame {
                    code: code.into(),
                    reason: "".into(),
                };
                actions.push(Action::ToClient(Message::Close(Some(frame))));
                actions.push(Action::ToServer(Message::Close(None)));
                break;
            }
        }
    }
    actions
}

async fn client_text(
    m: Mutation,
    t: &str,
    state: &tokio::sync::Mutex<ConnState>,
    shared: &Mutex<Shared>,
) -> Vec<Out> {
    let Ok(mut v) = serde_json::from_str::<Value>(t) else {
        return if m == Mutation::IgnoreBadFrame {
            vec![]
        } else {
            vec![Out::Up(Message::text(t))]
        };
    };
    if m == Mutation::IgnoreBadFrame && rtbus_protocol::decode_client_frame(t).is_err() {
        return vec![];
    }
    let kind = v["type"].as_str().unwrap_or("").to_owned();
    let mut st = state.lock().await;
    if m.rebuilds_snapshots() && kind == "publish" {
        let topic = v["data"]["topic"].as_str().unwrap_or("").to_owned();
        let entry = (v.get("id").cloned(), topic, v["data"]["payload"].clone());
        st.publishing.push_back(entry);
    }
    if let Some(outs) = client_epoch_mutations(m, &kind, &mut v, &mut st, shared) {
        return outs;
    }
    match (m, kind.as_str()) {
        (Mutation::EventAfterUnsubscribe, "unsubscribe") => {
            let mut reply =
                json!({"type": "unsubscribed", "data": {"topics": v["data"]["topics"]}});
            if let Some(id) = v.get("id") {
                reply["id"] = id.clone();
            }
            return vec![Out::Down(text(&reply))];
        }
        (Mutation::AcceptUnauthorizedPublish, "publish") => {
            if let Some(side) = st.side.as_mut() {
                let _ = side.send(Message::text(t)).await;
                while let Some(Ok(reply)) = side.next().await {
                    if let Message::Text(r) = reply {
                        return vec![Out::Down(Message::text(r.to_string()))];
                    }
                }
            }
        }
        (Mutation::AcceptAnyToken, "auth") => {
            // Any token is as good as the publisher's.
            let mut reply = json!({"type": "authenticated", "data": {"principal": "publisher", "roles": ["publisher"]}});
            if let Some(id) = v.get("id") {
                reply["id"] = id.clone();
            }
            return vec![Out::Down(text(&reply))];
        }
        (Mutation::NonAtomicSubscribe, "subscribe") => {
            if let (Some(id), Some(topics)) = (v["id"].as_str(), v["data"]["topics"].as_array()) {
                st.subscribes.insert(id.to_owned(), topics.clone());
            }
        }
        (Mutation::ResumeIgnored, "subscribe") => {
            if let Some(topics) = v["data"]["topics"].as_array_mut() {
                for t in topics {
                    if let Some(o) = t.as_object_mut() {
                        o.remove("resumeAfter");
                        o.remove("epoch");
                    }
                }
            }
            return vec![Out::Up(text(&v))];
        }
        (Mutation::EmptySnapshot | Mutation::DropSnapshot, "subscribe") => {}
        (Mutation::IgnoreSnapshotOptOut, "subscribe") => {
            if let Some(topics) = v["data"]["topics"].as_array_mut() {
                for t in topics {
                    if let Some(o) = t.as_object_mut() {
                        o.remove("snapshot");
                    }
                }
            }
            return vec![Out::Up(text(&v))];
        }
        _ => {}
    }
    if kind == "subscribe" {
        if let Some(topics) = v["data"]["topics"].as_array() {
            for t in topics {
                if t.get("resumeAfter").is_some() {
                    if let Some(name) = t["topic"].as_str() {
                        st.resumed.insert(name.to_owned());
                    }
                }
            }
        }
    }
    vec![Out::Up(Message::text(t))]
}

async fn server_text(
    m: Mutation,
    t: &str,
    state: &tokio::sync::Mutex<ConnState>,
    shared: &Mutex<Shared>,
    conn: u64,
) -> Vec<Out> {
    let Ok(mut v) = serde_json::from_str::<Value>(t) else {
        return vec![Out::Down(Message::text(t))];
    };
    let kind = v["type"].as_str().unwrap_or("").to_owned();
    let mut st = state.lock().await;
    let topic = v["data"]["topic"].as_str().unwrap_or("").to_owned();
    remember_epochs(&v, shared);
    let was_authenticated = st.authenticated;
    if kind == "authenticated" {
        st.authenticated = true;
    }
    track_held(&kind, &v, &mut st);
    if m == Mutation::GlobalSeq {
        renumber_globally(&mut v, shared);
    }
    if m.rebuilds_snapshots() {
        rebuild_snapshot(m, &kind, &mut v, &mut st, shared);
    }
    match (m, kind.as_str()) {
        (Mutation::UnstableEpoch, "event") => {
            if let Some(epoch) = v["data"]["epoch"].as_str() {
                v["data"]["epoch"] = json!(format!("{epoch}x"));
            }
        }
        (Mutation::WrongStart, "subscribed") => {
            for entry in v["data"]["topics"].as_array_mut().into_iter().flatten() {
                let swapped = match entry["start"].as_str() {
                    Some("snapshot") => "live",
                    Some("live") => "snapshot",
                    Some("resumed") => "reset",
                    Some("reset") => "resumed",
                    _ => continue,
                };
                entry["start"] = json!(swapped);
            }
        }
        (Mutation::KeepSubscriptionsOnRefresh, "unsubscribed") if v.get("id").is_none() => {
            return vec![];
        }
        (Mutation::ForgetSubscriptionsOnRefresh, "authenticated")
            if was_authenticated && !st.held.is_empty() =>
        {
            let topics: Vec<String> = std::mem::take(&mut st.held).into_iter().collect();
            let leave = json!({"type": "unsubscribe", "id": "mutant", "data": {"topics": topics}});
            let notice =
                json!({"type": "unsubscribed", "data": {"topics": topics, "reason": "forbidden"}});
            return vec![
                Out::Up(text(&leave)),
                Out::Down(text(&v)),
                Out::Down(text(&notice)),
            ];
        }
        (Mutation::ForgetSubscriptionsOnRefresh, "unsubscribed") if v["id"] == "mutant" => {
            return vec![];
        }
        (Mutation::UnstableAckEpoch, "published") => {
            if let (Some(epoch), Some(seq)) =
                (v["data"]["epoch"].as_str(), v["data"]["seq"].as_u64())
            {
                v["data"]["epoch"] =
                    json!(format!("{epoch}{}", "x".repeat(usize::from(seq % 2 == 1))));
            }
        }
        (Mutation::DropErrorTopic, "error") if v["data"]["code"] == "unknown_topic" => {
            if let Some(d) = v["data"].as_object_mut() {
                d.remove("topic");
            }
        }
        (Mutation::DropSnapshot, "snapshot") => return vec![],
        (Mutation::SkipSeq, "event") => {
            if let Some(seq) = v["data"]["seq"].as_u64().filter(|s| *s >= 2) {
                v["data"]["seq"] = json!(seq + 1);
            }
        }
        (Mutation::ReorderEvents, "event") => {
            return match st.held_event.take() {
                Some(held) => vec![Out::Down(text(&v)), Out::Down(text(&held))],
                None => {
                    st.held_event = Some(v);
                    vec![]
                }
            };
        }
        (Mutation::ReorderEvents, _) => {
            let mut outs: Vec<Out> = st
                .held_event
                .take()
                .map(|h| Out::Down(text(&h)))
                .into_iter()
                .collect();
            outs.push(Out::Down(text(&v)));
            return outs;
        }
        (
            Mutation::LoseRequestId,
            "subscribed" | "unsubscribed" | "published" | "authenticated" | "error" | "pong",
        ) => {
            if let Some(o) = v.as_object_mut() {
                o.remove("id");
            }
        }
        (Mutation::OmitEmittedAt, "snapshot" | "event") => {
            if let Some(d) = v["data"].as_object_mut() {
                d.remove("emittedAt");
            }
        }
        (Mutation::EmptySnapshot, "snapshot") => {
            if let Ok(t) = rtbus_protocol::Topic::new(&topic) {
                if let Ok(family) = rtbus_protocol::catalog::Family::of(&t) {
                    v["data"]["payload"] =
                        rtbus_protocol::catalog::TopicSnapshot::empty(family).to_value();
                }
            }
        }
        (Mutation::ReplayNotMarked, "event") => v["data"]["isReplay"] = json!(false),
        (Mutation::DuplicateEvents, "event") => {
            return vec![Out::Down(text(&v)), Out::Down(text(&v))];
        }
        (Mutation::VagueErrorCodes, "error") => {
            let code = v["data"]["code"].as_str().unwrap_or("");
            let vague = match code {
                "forbidden" => "unauthorized",
                "invalid_topic" | "unknown_topic" | "invalid_payload" | "limit_exceeded" => {
                    "bad_request"
                }
                other => other,
            };
            v["data"]["code"] = json!(vague);
        }
        (Mutation::ErrorCloses, "error") => {
            return vec![Out::Down(text(&v)), Out::CloseDown(1008)];
        }
        (Mutation::AckAfterSnapshot, "subscribed") => {
            st.held_subscribed = Some(v);
            return vec![];
        }
        (Mutation::AckAfterSnapshot, _) => {
            let mut outs = vec![Out::Down(text(&v))];
            if let Some(held) = st.held_subscribed.take() {
                outs.push(Out::Down(text(&held)));
            }
            return outs;
        }
        (Mutation::NonAtomicSubscribe, "error") => {
            let rejected = v["data"]["topic"].as_str().unwrap_or("").to_owned();
            if let Some(topics) = v["id"].as_str().and_then(|id| st.subscribes.get(id)) {
                let rest: Vec<Value> = topics
                    .iter()
                    .filter(|t| t["topic"] != rejected.as_str())
                    .map(|t| json!({"topic": t["topic"], "snapshot": false}))
                    .collect();
                if !rest.is_empty() && rest.len() < topics.len() {
                    let sub =
                        json!({"type": "subscribe", "id": "mutant", "data": {"topics": rest}});
                    // The error waits for the rest to be subscribed, so the client cannot act
                    // on it before the partial subscription exists.
                    st.held_error = Some(v);
                    return vec![Out::Up(text(&sub))];
                }
            }
        }
        (Mutation::NonAtomicSubscribe, "subscribed") if v["id"] == "mutant" => {
            return st
                .held_error
                .take()
                .map(|e| Out::Down(text(&e)))
                .into_iter()
                .collect();
        }
        (Mutation::FanoutToFirstOnly, "event") => {
            let mut s = shared.lock().unwrap();
            let first = *s.first_subscriber.entry(topic.clone()).or_insert(conn);
            if first != conn {
                return vec![];
            }
        }
        (Mutation::ExtraEnvelopeField, _) => v["server"] = json!("rtbus-mutant"),
        (Mutation::AckWrongSeq, "published") => {
            if let Some(seq) = v["data"]["seq"].as_u64() {
                v["data"]["seq"] = json!(seq + 1);
            }
        }
        (Mutation::PongWithoutData, "pong") => {
            if let Some(o) = v.as_object_mut() {
                o.remove("data");
            }
        }
        (Mutation::WrongPrincipal, "authenticated") => {
            v["data"]["principal"] = json!("somebody-else")
        }
        (Mutation::SubscribedOutOfOrder, "subscribed") => {
            if let Some(topics) = v["data"]["topics"].as_array_mut() {
                topics.reverse();
            }
        }
        (Mutation::DropSnapshot | Mutation::ResumeIgnored, _) => {}
        _ => {}
    }
    if kind == "snapshot" && st.resumed.contains(&topic) && m == Mutation::DropSnapshot {
        return vec![];
    }
    vec![Out::Down(text(&v))]
}

impl Mutation {
    /// Whether the mutation rebuilds snapshots from the payloads the server acknowledged.
    fn rebuilds_snapshots(self) -> bool {
        matches!(
            self,
            Mutation::SnapshotUncapped | Mutation::SnapshotKeepsClosed | Mutation::SnapshotUnsorted
        )
    }
}

/// For the snapshot mutations: records each acknowledged publish, and replaces the payload of
/// each snapshot with the topic's events folded by the mutation's broken rule.
fn rebuild_snapshot(
    m: Mutation,
    kind: &str,
    v: &mut Value,
    st: &mut ConnState,
    shared: &Mutex<Shared>,
) {
    let topic = v["data"]["topic"].as_str().unwrap_or("").to_owned();
    match kind {
        "published" => {
            // Replies come in request order: the oldest publish of this topic is the one
            // acknowledged, and publishes before it that got an error are dropped.
            while let Some((_, t, payload)) = st.publishing.pop_front() {
                if t == topic {
                    let mut s = shared.lock().unwrap();
                    s.published.entry(topic).or_default().push(payload);
                    break;
                }
            }
        }
        "error"
            if st
                .publishing
                .front()
                .is_some_and(|(id, _, _)| id.as_ref() == v.get("id")) =>
        {
            st.publishing.pop_front();
        }
        "snapshot" => {
            let Ok(t) = rtbus_protocol::Topic::new(&topic) else {
                return;
            };
            let Ok(family) = rtbus_protocol::catalog::Family::of(&t) else {
                return;
            };
            let seq = v["data"]["seq"].as_u64().unwrap_or(0);
            let s = shared.lock().unwrap();
            let events = s
                .published
                .get(&topic)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let events = &events[..events.len().min(usize::try_from(seq).unwrap_or(usize::MAX))];
            if let Some(payload) = broken_fold(m, family.fold(), events) {
                v["data"]["payload"] = payload;
            }
        }
        _ => {}
    }
}

/// The snapshot of `events` under the mutation's broken fold, or `None` when the mutation
/// does not touch this family's rule.
fn broken_fold(
    m: Mutation,
    fold: rtbus_protocol::catalog::Fold,
    events: &[Value],
) -> Option<Value> {
    use rtbus_protocol::catalog::Fold;
    match (m, fold) {
        (Mutation::SnapshotUncapped, Fold::Append { list, .. }) => Some(json!({ list: events })),
        (
            Mutation::SnapshotKeepsClosed | Mutation::SnapshotUnsorted,
            Fold::Upsert {
                list,
                key,
                remove_when,
                ..
            },
        ) => {
            let mut entries: Vec<Value> = Vec::new();
            for event in events {
                let removes = m == Mutation::SnapshotUnsorted
                    && remove_when.is_some_and(|w| event[w.field] == w.value);
                let at = entries.iter().position(|e| e[key] == event[key]);
                match (at, removes) {
                    (Some(at), true) => {
                        entries.remove(at);
                    }
                    (None, true) => {}
                    (Some(at), false) => entries[at] = event.clone(),
                    (None, false) => entries.push(event.clone()),
                }
            }
            if m == Mutation::SnapshotKeepsClosed {
                entries.sort_by(|a, b| a[key].as_str().cmp(&b[key].as_str()));
            }
            Some(json!({ list: entries }))
        }
        _ => None,
    }
}

/// Keeps [`ConnState::held`] up to date from the server's `subscribed` and `unsubscribed`.
fn track_held(kind: &str, v: &Value, st: &mut ConnState) {
    let topics = v["data"]["topics"].as_array().into_iter().flatten();
    match kind {
        "subscribed" => {
            for entry in topics {
                if let Some(topic) = entry["topic"].as_str() {
                    st.held.insert(topic.to_owned());
                    st.ever_subscribed = true;
                }
            }
        }
        "unsubscribed" => {
            for topic in topics.filter_map(Value::as_str) {
                st.held.remove(topic);
            }
        }
        _ => {}
    }
}

/// [`Mutation::GlobalSeq`]: every (topic, seq) other than 0 gets the next number of one
/// counter shared by all topics, the first time any frame names it.
fn renumber_globally(v: &mut Value, shared: &Mutex<Shared>) {
    let mut s = shared.lock().unwrap();
    let mut renumber = |entry: &mut Value| {
        let (Some(topic), Some(seq)) = (entry["topic"].as_str(), entry["seq"].as_u64()) else {
            return;
        };
        if seq == 0 {
            return;
        }
        let key = (topic.to_owned(), seq);
        let next = s.last_global_seq + 1;
        let global = *s.global_seq.entry(key).or_insert(next);
        s.last_global_seq = s.last_global_seq.max(global);
        entry["seq"] = json!(global);
    };
    let Some(data) = v.get_mut("data").filter(|d| d.is_object()) else {
        return;
    };
    renumber(data);
    let topics = data.get_mut("topics").and_then(Value::as_array_mut);
    for entry in topics.into_iter().flatten() {
        renumber(entry);
    }
}

/// Records the epoch of every topic a server frame names.
fn remember_epochs(v: &Value, shared: &Mutex<Shared>) {
    let data = &v["data"];
    let mut s = shared.lock().unwrap();
    let mut note = |entry: &Value| {
        if let (Some(topic), Some(epoch)) = (entry["topic"].as_str(), entry["epoch"].as_str()) {
            s.epochs.insert(topic.to_owned(), epoch.to_owned());
        }
    };
    note(data);
    for entry in data["topics"].as_array().into_iter().flatten() {
        note(entry);
    }
}

/// The mutations of client frames about epochs, resumes, nesting and re-authentication; `None`
/// leaves the frame to the others.
/// The topic entries of a `subscribe` frame.
fn entries(v: &mut Value) -> Vec<&mut serde_json::Map<String, Value>> {
    v["data"]["topics"]
        .as_array_mut()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
        .collect()
}

fn client_epoch_mutations(
    m: Mutation,
    kind: &str,
    v: &mut Value,
    st: &mut ConnState,
    shared: &Mutex<Shared>,
) -> Option<Vec<Out>> {
    match (m, kind) {
        (Mutation::IgnoreEpoch, "subscribe") => {
            let s = shared.lock().unwrap();
            for entry in entries(v) {
                let latest = entry
                    .get("topic")
                    .and_then(Value::as_str)
                    .and_then(|t| s.epochs.get(t));
                if let (Some(latest), true) = (latest, entry.contains_key("epoch")) {
                    entry.insert("epoch".into(), json!(latest));
                }
            }
        }
        (Mutation::AcceptUnpairedResume, "subscribe") => {
            for entry in entries(v) {
                if entry.contains_key("resumeAfter") != entry.contains_key("epoch") {
                    entry.remove("resumeAfter");
                    entry.remove("epoch");
                }
            }
        }
        (Mutation::NoNestingLimit, _)
            if rtbus_protocol::nesting_depth(&v.to_string())
                > rtbus_protocol::MAX_NESTING_DEPTH =>
        {
            v["data"]["payload"] = Value::Null;
        }
        (Mutation::KeepPrincipalOnRejectedAuth, "auth") if st.authenticated => {
            let token = v["data"]["token"].as_str().unwrap_or("");
            if !shared.lock().unwrap().tokens.iter().any(|t| t == token) {
                let mut reply = json!({"type": "error", "data": {"code": "unauthorized",
                    "message": "the token is not accepted"}});
                if let Some(id) = v.get("id") {
                    reply["id"] = id.clone();
                }
                return Some(vec![Out::Down(text(&reply))]);
            }
            return None;
        }
        _ => return None,
    }
    Some(vec![Out::Up(text(v))])
}

fn excluded(id: &str, proxied: bool) -> bool {
    proxied
        && NOT_PROXIABLE.iter().any(|(p, _)| {
            p.strip_suffix('*')
                .map_or(id == *p, |prefix| id.starts_with(prefix))
        })
}

fn run_mutated(m: Mutation) -> Vec<CaseResult> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut contract = Contract::default();
    // What this setup's sockets hold for a stalled reader is far less: the server's and the
    // proxy's 16 KiB send buffers, the proxy's 8 KiB receive buffer and queue of one message,
    // the client's 4 KiB receive buffer. So a server that never cuts a slow consumer off fails
    // after 1 MiB, not after the default 64 MiB.
    contract.limits.socket_buffer_bytes = 1 << 20;
    let proxied = !m.configure(&mut server_config(&contract));
    let cases: Vec<_> = suite::bundled()
        .unwrap()
        .into_iter()
        .filter(|c| !excluded(&c.case.id, proxied))
        .collect();
    let target = Arc::new(MutatedTarget {
        mutation: m,
        contract: contract.clone(),
    });
    // Generous for the unmutated baseline, which must not flake on a busy machine; short for
    // mutations, where the catching cases fail anyway and waiting only costs time.
    let step_ms = if m == Mutation::None { 3000 } else { 1000 };
    let options = RunOptions {
        step_timeout: Duration::from_millis(step_ms),
        close_timeout: Duration::from_millis(500),
        jobs: 8,
        contract,
    };
    runtime.block_on(run_suite(cases, target, options, |_, _, _| {}))
}

/// The suite's results under `m`, run once per test process: the test of the mutation and
/// the citation meta-test share them.
fn results(m: Mutation) -> Arc<Vec<CaseResult>> {
    type Runs = Mutex<HashMap<Mutation, Arc<OnceLock<Arc<Vec<CaseResult>>>>>>;
    static RUNS: OnceLock<Runs> = OnceLock::new();
    let cell = {
        let mut runs = RUNS.get_or_init(Runs::default).lock().unwrap();
        Arc::clone(runs.entry(m).or_default())
    };
    Arc::clone(cell.get_or_init(|| Arc::new(run_mutated(m))))
}

/// Whether `case` failed under `m` (it ran: a heartbeat case does not run behind the proxy).
fn fails(m: Mutation, case: &str) -> bool {
    results(m)
        .iter()
        .any(|r| r.id == case && matches!(r.verdict, Verdict::Failed(_)))
}

/// Asserts the suite fails under `m`, for each of `rules` in at least one case citing it;
/// prints the cases that caught it.
fn assert_caught(m: Mutation, rules: &[&str]) {
    let results = results(m);
    let failed: Vec<&CaseResult> = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Failed(_)))
        .collect();
    let names: Vec<&str> = failed.iter().map(|r| r.id.as_str()).collect();
    println!(
        "{m:?} (breaks {}) caught by {} case(s): {}",
        rules.join(", "),
        names.len(),
        names.join(", ")
    );
    assert!(
        !failed.is_empty(),
        "{m:?}: the suite passed against a server that breaks {rules:?}"
    );
    for rule in rules {
        assert!(rtbus_protocol::rules::Rule::find(rule).is_some(), "{rule}");
        assert!(
            failed.iter().any(|r| r.rules.iter().any(|x| x == rule)),
            "{m:?}: no failing case cites {rule}; failing: {names:?}"
        );
    }
}

#[test]
fn unmutated_proxy_passes_everything() {
    let results = results(Mutation::None);
    let failures: Vec<String> = results
        .iter()
        .filter_map(|r| match &r.verdict {
            Verdict::Failed(f) => Some(render_failure(r, f, Style { color: false })),
            _ => None,
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(results.iter().all(|r| r.passed()));
    let total = suite::bundled().unwrap().len();
    let excluded_count = suite::bundled()
        .unwrap()
        .iter()
        .filter(|c| excluded(&c.case.id, true))
        .count();
    assert_eq!(results.len() + excluded_count, total);
    assert!(
        excluded_count <= 2,
        "keep the proxy exclusions few: {excluded_count}"
    );
}

/// One mistake in a server is one cause in the report, listing every case it failed, however
/// many cases and rules that is.
#[test]
fn one_mistake_is_one_cause() {
    let results = results(Mutation::AnnounceHeaderAuth);
    let failed = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Failed(_)))
        .count();
    let causes = causes(&results);
    for c in &causes {
        println!(
            "{} case(s): {}: {}",
            c.cases.len(),
            c.cause,
            c.cases.join(", ")
        );
    }
    let announced: Vec<&Cause> = causes
        .iter()
        .filter(|c| c.cause.contains("`authenticated`"))
        .collect();
    assert_eq!(announced.len(), 1, "{causes:#?}");
    let cause = announced[0];
    assert!(
        cause.cases.len() >= 10 && cause.rules.len() >= 5,
        "the mistake fails many cases under many rules: {cause:#?}"
    );
    assert!(
        cause.cases.len() * 10 >= failed * 9,
        "{} of {failed} failures are that one cause: {causes:#?}",
        cause.cases.len()
    );
    let console = summary(&results, "mutant", 0, Style { color: false });
    assert_eq!(console.matches(&cause.cause).count(), 1, "{console}");
    assert!(console.contains(&format!(
        "cause 1 of {}, {} cases:",
        causes.len(),
        cause.cases.len()
    )));
}

macro_rules! mutation_tests {
    ($($name:ident: $m:ident breaks $($rule:literal),+;)+) => {
        $(
            #[test]
            fn $name() {
                assert_caught(Mutation::$m, &[$($rule),+]);
            }
        )+

        /// Every mutation above with the rules it breaks.
        const MUTATIONS: &[(Mutation, &[&str])] = &[$((Mutation::$m, &[$($rule),+])),+];

        /// A case's citation of a rule is a claim that the case checks the rule: for every
        /// (case, rule) citation, some mutation above that breaks the rule makes the case
        /// fail. A citation no mutation of its rule can fail is removed from the case, or the
        /// rule gets the mutation that shows the case checks it.
        #[test]
        fn every_citation_is_failed_by_a_mutation_of_its_rule() {
            let mut unproven = Vec::new();
            for loaded in suite::bundled().unwrap() {
                let case = &loaded.case;
                for rule in &case.rules {
                    let breaking: Vec<Mutation> = MUTATIONS
                        .iter()
                        .filter(|(_, rules)| rules.contains(&rule.as_str()))
                        .map(|(m, _)| *m)
                        .collect();
                    if !breaking.iter().any(|m| fails(*m, &case.id)) {
                        unproven.push(format!(
                            "{} cites {rule}, but passes under every mutation that breaks it: {breaking:?}",
                            case.id
                        ));
                    }
                }
            }
            assert!(unproven.is_empty(), "{}", unproven.join("\n"));
        }

        /// Every rule is broken by at least one mutation above.
        #[test]
        fn every_rule_has_a_mutation() {
            let broken: BTreeSet<&str> = [$($($rule),+),+].into_iter().collect();
            let missing: Vec<&str> = rtbus_protocol::rules::RULES
                .iter()
                .map(|r| r.id)
                .filter(|id| !broken.contains(id))
                .collect();
            assert!(missing.is_empty(), "rules no mutation breaks: {missing:?}");
        }
    };
}

mutation_tests! {
    drop_snapshot: DropSnapshot breaks "subscribe.snapshot", "resume.exhausted";
    skip_seq: SkipSeq breaks "delivery.seq";
    reorder_events: ReorderEvents breaks "delivery.fanout";
    lose_request_id: LoseRequestId breaks "request.id";
    event_after_unsubscribe: EventAfterUnsubscribe breaks "unsubscribe.stops";
    omit_emitted_at: OmitEmittedAt breaks "delivery.fields";
    extra_envelope_field: ExtraEnvelopeField breaks "frame.schema";
    ignore_bad_frame: IgnoreBadFrame breaks "frame.malformed";
    ignore_binary_frame: IgnoreBinaryFrame breaks "frame.binary";
    never_disconnect_slow_consumer: NeverDisconnectSlowConsumer breaks "slow-consumer.cutoff";
    accept_unauthorized_publish: AcceptUnauthorizedPublish breaks "authz.publish";
    wrong_close_codes: WrongCloseCodes breaks "shutdown.going-away";
    empty_snapshot: EmptySnapshot breaks "delivery.snapshot-state";
    replay_not_marked: ReplayNotMarked breaks "resume.replay";
    resume_ignored: ResumeIgnored breaks "resume.up-to-date";
    duplicate_events: DuplicateEvents breaks "subscribe.repeat";
    accept_any_subprotocol: AcceptAnySubprotocol breaks "handshake.subprotocol";
    vague_error_codes: VagueErrorCodes breaks "topic.invalid", "topic.unknown", "publish.payload";
    error_closes: ErrorCloses breaks "error.keeps-open";
    ack_after_snapshot: AckAfterSnapshot breaks "subscribe.ack-first";
    subscribed_out_of_order: SubscribedOutOfOrder breaks "subscribe.ack-first";
    non_atomic_subscribe: NonAtomicSubscribe breaks "subscribe.atomic";
    ignore_bearer_header: IgnoreBearerHeader breaks "auth.header";
    accept_any_token: AcceptAnyToken breaks "auth.reject";
    escalate_readers: EscalateReaders breaks "authz.subscribe";
    fanout_to_first_only: FanoutToFirstOnly breaks "delivery.fanout";
    ack_wrong_seq: AckWrongSeq breaks "publish.ack";
    ignore_snapshot_opt_out: IgnoreSnapshotOptOut breaks "subscribe.no-snapshot";
    pong_without_data: PongWithoutData breaks "ping.pong";
    wrong_principal: WrongPrincipal breaks "auth.message";
    wrong_endpoint: WrongEndpoint breaks "handshake.endpoint";
    no_auth_deadline: NoAuthDeadline breaks "auth.deadline";
    no_heartbeat: NoHeartbeat breaks "heartbeat.timeout";
    no_topic_limit: NoTopicLimit breaks "subscribe.limit";
    no_size_limit: NoSizeLimit breaks "frame.too-big";
    refuse_exact_max: RefuseExactMax breaks "frame.too-big";
    accept_one_over_max: AcceptOneOverMax breaks "frame.too-big";
    snapshot_uncapped: SnapshotUncapped breaks "delivery.snapshot-state";
    snapshot_keeps_closed: SnapshotKeepsClosed breaks "delivery.snapshot-state";
    snapshot_unsorted: SnapshotUnsorted breaks "delivery.snapshot-state";
    ignore_epoch: IgnoreEpoch breaks "resume.epoch";
    unstable_epoch: UnstableEpoch breaks "delivery.epoch";
    wrong_start: WrongStart breaks "subscribe.start", "resume.exhausted", "resume.epoch";
    deadline_for_all: DeadlineForAll breaks "auth.deadline";
    forget_subscriptions_on_refresh: ForgetSubscriptionsOnRefresh breaks "auth.refresh";
    anonymous_as_publisher: AnonymousAsPublisher breaks "authz.subscribe";
    require_subprotocol: RequireSubprotocol breaks "handshake.subprotocol";
    global_seq: GlobalSeq breaks "delivery.seq";
    unstable_ack_epoch: UnstableAckEpoch breaks "delivery.epoch";
    accept_unpaired_resume: AcceptUnpairedResume breaks "resume.pair";
    keep_subscriptions_on_refresh: KeepSubscriptionsOnRefresh breaks "auth.refresh";
    keep_principal_on_rejected_auth: KeepPrincipalOnRejectedAuth breaks "auth.refresh-reject";
    no_nesting_limit: NoNestingLimit breaks "frame.nesting";
    undeclared_close_code: UndeclaredCloseCode breaks "frame.close-code";
    drop_error_topic: DropErrorTopic breaks "topic.unknown";
}
