//! The recording proxy: forwards real clients to a real server and writes what happened as a
//! transcript, with volatile values (timestamps, `epoch`, `seq`, error messages) turned into
//! matchers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::Args;
use rtbus_socket::{Action, Answer, Direction, Message, Offer, Proxy, Tap, Upstream, Url};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::contract::Contract;
use crate::transcript::{Case, ConnectionSpec, Step};

/// Arguments of `record`.
#[derive(Debug, Clone, Args)]
pub struct RecordArgs {
    /// Where clients connect, e.g. 127.0.0.1:9000.
    #[arg(long)]
    pub listen: SocketAddr,
    /// The real server, e.g. ws://127.0.0.1:8080/api/realtime.
    #[arg(long)]
    pub upstream: String,
    /// The transcript to write.
    #[arg(long, short, default_value = "recorded.json")]
    pub out: PathBuf,
    /// The case id.
    #[arg(long, default_value = "recorded.session")]
    pub id: String,
    /// The case title.
    #[arg(long, default_value = "Recorded session")]
    pub title: String,
    /// Rule ids the case checks (default: frame.schema).
    #[arg(long = "rule")]
    pub rules: Vec<String>,
    /// Keep listening after every client has disconnected (stop with Ctrl-C).
    #[arg(long)]
    pub keep_listening: bool,
    /// Credentials as NAME=TOKEN, so tokens in the session are written as names, not secrets.
    #[arg(long = "token", value_name = "NAME=TOKEN")]
    pub tokens: Vec<String>,
}

/// Something that happened on a proxied connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A client connected (its handshake as offered) and the server answered with `status`.
    Connect {
        /// The connection name (`c1`, `c2`, ...).
        conn: String,
        /// The subprotocols the client offered.
        subprotocols: Vec<String>,
        /// The `Authorization` header, if any.
        authorization: Option<String>,
        /// The HTTP status of the upstream handshake (101 when upgraded).
        status: u16,
    },
    /// The client sent a text frame.
    ClientText(String, String),
    /// The client sent a binary frame.
    ClientBinary(String, Vec<u8>),
    /// The server sent a text frame.
    ServerText(String, String),
    /// The server sent a binary frame (which an rtbus v1 server never does).
    ServerBinary(String, Vec<u8>),
    /// The server closed the connection.
    ServerClose(String, Option<u16>),
    /// The client closed the connection.
    ClientClose(String, Option<u16>),
}

type Log = Arc<Mutex<Vec<Event>>>;

fn push(log: &Log, event: Event) {
    // A poisoned lock means a proxy task panicked; keep recording what we can.
    match log.lock() {
        Ok(mut l) => l.push(event),
        Err(poisoned) => poisoned.into_inner().push(event),
    }
}

/// A recording proxy bound to a local address.
#[derive(Debug)]
pub struct Recorder {
    listener: TcpListener,
    proxy: Proxy,
}

impl Recorder {
    /// Binds the listening socket; clients are proxied to `upstream`.
    pub async fn bind(listen: SocketAddr, upstream: Url) -> std::io::Result<Recorder> {
        Ok(Recorder {
            listener: TcpListener::bind(listen).await?,
            proxy: Proxy::new(Upstream::new(upstream)),
        })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Proxies connections until every one has ended (after at least one), or until `stop`
    /// resolves; returns everything that happened, in order.
    pub async fn run(
        self,
        keep_listening: bool,
        stop: impl std::future::Future<Output = ()>,
    ) -> Vec<Event> {
        let log: Log = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = tokio::task::JoinSet::new();
        let mut count = 0usize;
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                accepted = self.listener.accept() => {
                    if let Ok((stream, _)) = accepted {
                        count += 1;
                        let tap = Recording {
                            conn: format!("c{count}"),
                            log: Arc::clone(&log),
                        };
                        let proxy = self.proxy.clone();
                        tasks.spawn(async move { proxy.serve(stream, tap).await });
                    }
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {
                    if tasks.is_empty() && !keep_listening {
                        break;
                    }
                }
            }
        }
        tasks.abort_all();
        match log.lock() {
            Ok(l) => l.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

/// The tap of one recorded connection: notes the handshake upstream answered and every frame,
/// and passes everything on unchanged.
struct Recording {
    conn: String,
    log: Log,
}

impl Tap for Recording {
    async fn handshake(&self, offer: Offer, upstream: &Upstream) -> Answer {
        // Upstream answers inside the client's handshake: the client sees the status recorded.
        let answer = upstream.dial(&offer).await;
        push(
            &self.log,
            Event::Connect {
                conn: self.conn.clone(),
                subprotocols: offer.subprotocols,
                authorization: offer.authorization,
                status: answer.status().as_u16(),
            },
        );
        answer
    }

    async fn message(&self, direction: Direction, message: Message) -> Vec<Action> {
        let conn = self.conn.clone();
        let code = |f: &Option<rtbus_socket::CloseFrame>| f.as_ref().map(|f| u16::from(f.code));
        let event = match (direction, &message) {
            (Direction::ToServer, Message::Text(t)) => Some(Event::ClientText(conn, t.to_string())),
            (Direction::ToServer, Message::Binary(b)) => {
                Some(Event::ClientBinary(conn, b.to_vec()))
            }
            (Direction::ToServer, Message::Close(f)) => Some(Event::ClientClose(conn, code(f))),
            (Direction::ToClient, Message::Text(t)) => Some(Event::ServerText(conn, t.to_string())),
            (Direction::ToClient, Message::Binary(b)) => {
                Some(Event::ServerBinary(conn, b.to_vec()))
            }
            (Direction::ToClient, Message::Close(f)) => Some(Event::ServerClose(conn, code(f))),
            _ => None,
        };
        if let Some(event) = event {
            push(&self.log, event);
        }
        vec![Action::send(direction, message)]
    }
}

/// Names for recorded bearer tokens: contract credentials whose token matches.
fn credential_name(contract: &Contract, token: &str) -> Option<String> {
    contract
        .credentials
        .iter()
        .find(|(_, c)| c.token == token)
        .map(|(n, _)| n.clone())
}

/// The credential name used for a token the contract does not know.
pub const UNKNOWN_CREDENTIAL: &str = "recorded";

/// Turns a recording into a case. Tokens become credential names; each topic's `epoch` is
/// captured on first sight and checked for equality afterwards, its `seq` captured and checked
/// by arithmetic; a resume the client sent names them as templates; timestamps and error
/// messages become type matchers.
pub fn to_case(
    events: &[Event],
    id: &str,
    title: &str,
    rules: Vec<String>,
    contract: &Contract,
) -> Case {
    let mut connections = BTreeMap::new();
    let mut steps = Vec::new();
    let mut volatile = Volatile::default();
    let mut closed_by_server = std::collections::BTreeSet::new();
    for event in events {
        match event {
            Event::Connect {
                conn,
                subprotocols,
                authorization,
                status,
            } => {
                let bearer = authorization
                    .as_deref()
                    .and_then(|a| a.strip_prefix("Bearer "))
                    .map(|t| {
                        credential_name(contract, t).unwrap_or_else(|| UNKNOWN_CREDENTIAL.into())
                    });
                connections.insert(
                    conn.clone(),
                    ConnectionSpec {
                        bearer,
                        subprotocols: if subprotocols.len() == 1
                            && subprotocols[0] == rtbus_protocol::SUBPROTOCOL
                        {
                            None
                        } else {
                            Some(subprotocols.clone())
                        },
                        ..ConnectionSpec::default()
                    },
                );
                steps.push(Step::Connect {
                    conn: conn.clone(),
                    status: (*status != 101).then_some(*status),
                    protocol: None,
                });
            }
            Event::ClientText(conn, text) => {
                let step = match rtbus_protocol::decode_client_frame(text) {
                    Ok(_) => {
                        let mut frame: Value = serde_json::from_str(text).unwrap_or(Value::Null);
                        if let Some(token) = frame.pointer_mut("/data/token") {
                            let name = token
                                .as_str()
                                .and_then(|t| credential_name(contract, t))
                                .unwrap_or_else(|| UNKNOWN_CREDENTIAL.into());
                            *token = Value::String(format!("{{{{token:{name}}}}}"));
                        }
                        volatile.client_frame(&mut frame);
                        Step::Send {
                            conn: conn.clone(),
                            frame: Some(frame),
                            text: None,
                            binary: None,
                            repeat: None,
                        }
                    }
                    Err(_) => Step::Send {
                        conn: conn.clone(),
                        frame: None,
                        text: Some(text.clone()),
                        binary: None,
                        repeat: None,
                    },
                };
                steps.push(step);
            }
            Event::ClientBinary(conn, bytes) => steps.push(Step::Send {
                conn: conn.clone(),
                frame: None,
                text: None,
                binary: Some(crate::hex::encode(bytes)),
                repeat: None,
            }),
            Event::ServerText(conn, text) => {
                let frame = match serde_json::from_str::<Value>(text) {
                    Ok(v) => volatile.server_frame(v),
                    Err(_) => json!({"$literal": text}),
                };
                steps.push(Step::Expect {
                    conn: conn.clone(),
                    frame,
                    repeat: None,
                    timeout_ms: None,
                });
            }
            Event::ServerBinary(conn, bytes) => {
                // No step accepts a binary frame from the server (rtbus v1 servers send text
                // only), so a replay fails here, naming the frame.
                steps.push(Step::Expect {
                    conn: conn.clone(),
                    frame: json!({"$literal": {"binary": crate::hex::encode(bytes)}}),
                    repeat: None,
                    timeout_ms: None,
                });
            }
            Event::ServerClose(conn, code) => {
                closed_by_server.insert(conn.clone());
                steps.push(Step::ExpectClose {
                    conn: conn.clone(),
                    code: *code,
                    skip_frames: false,
                    timeout_ms: None,
                });
            }
            Event::ClientClose(conn, code) => {
                if !closed_by_server.contains(conn) {
                    steps.push(Step::Close {
                        conn: conn.clone(),
                        code: *code,
                    });
                }
            }
        }
    }
    Case {
        schema: Some("../../generated/schema/transcript.schema.json".into()),
        id: id.to_owned(),
        title: title.to_owned(),
        description: Some(
            "Recorded with `rtbus-conformance record`; each topic's epoch and seq are captured \
             on first sight and checked by equality and arithmetic afterwards (a resume sent \
             names them as templates), timestamps and messages by type."
                .into(),
        ),
        rules: if rules.is_empty() {
            vec!["frame.schema".into()]
        } else {
            rules
        },
        tags: vec!["recorded".into()],
        requires: Vec::new(),
        connections,
        steps,
    }
}

/// What the recording has captured so far, per topic: the name and value of its current
/// `seq` base and `epoch`. Names are numbered in order of first sight (`seq1`, `ep1`, ...).
#[derive(Debug, Default)]
struct Volatile {
    seqs: BTreeMap<String, (String, i64)>,
    epochs: BTreeMap<String, (String, String)>,
    seq_names: usize,
    epoch_names: usize,
}

impl Volatile {
    /// A server frame with its volatile values turned into matchers.
    fn server_frame(&mut self, mut frame: Value) -> Value {
        let kind = frame
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let Some(data) = frame.get_mut("data").and_then(Value::as_object_mut) else {
            return frame;
        };
        match kind.as_str() {
            "snapshot" | "event" | "published" => {
                if kind != "published" && data.contains_key("emittedAt") {
                    data.insert("emittedAt".into(), json!({"$timestamp": true}));
                }
                self.stream_position(data);
            }
            "subscribed" => {
                let entries = data.get_mut("topics").and_then(Value::as_array_mut);
                for entry in entries.into_iter().flatten() {
                    if let Some(entry) = entry.as_object_mut() {
                        self.stream_position(entry);
                    }
                }
            }
            "error" if data.contains_key("message") => {
                data.insert("message".into(), json!({"$type": "string"}));
            }
            _ => {}
        }
        frame
    }

    /// Replaces the `epoch` and `seq` of an object naming a `topic` (a delivery, a `published`
    /// reply, a `subscribed` entry). The epoch goes first: a new one restarts the topic's seq.
    fn stream_position(&mut self, data: &mut serde_json::Map<String, Value>) {
        let Some(topic) = data.get("topic").and_then(Value::as_str).map(str::to_owned) else {
            return;
        };
        if let Some(epoch) = data.get("epoch").and_then(Value::as_str).map(str::to_owned) {
            let matcher = self.epoch(&topic, epoch);
            data.insert("epoch".into(), matcher);
        }
        if let Some(seq) = data.get("seq").and_then(Value::as_i64) {
            let matcher = self.seq(&topic, seq);
            data.insert("seq".into(), matcher);
        }
    }

    /// The matcher of a topic's epoch: the same as before is `$eq` the captured one; a first or
    /// a different one (the topic's stream was reset) is captured under a new name.
    fn epoch(&mut self, topic: &str, epoch: String) -> Value {
        if let Some((name, value)) = self.epochs.get(topic) {
            if *value == epoch {
                return json!({"$eq": format!("{{{{{name}}}}}")});
            }
            // A new epoch starts a new seq stream, unrelated to the old one.
            self.seqs.remove(topic);
        }
        self.epoch_names += 1;
        let name = format!("ep{}", self.epoch_names);
        self.epochs.insert(topic.to_owned(), (name.clone(), epoch));
        json!({"$capture": name, "$type": "string"})
    }

    /// The matcher of a topic's seq: captured on first sight, arithmetic on it afterwards.
    fn seq(&mut self, topic: &str, seq: i64) -> Value {
        if let Some((name, base)) = self.seqs.get(topic) {
            return json!({"$expr": offset(name, seq - base)});
        }
        self.seq_names += 1;
        let name = format!("seq{}", self.seq_names);
        self.seqs.insert(topic.to_owned(), (name.clone(), seq));
        json!({"$capture": name, "$type": "integer"})
    }

    /// A client frame with each resume point written as templates of the captured values, so
    /// that it names the replaying server's epoch (and seq), not the recorded one's. A value
    /// the recording never captured stays as sent.
    fn client_frame(&self, frame: &mut Value) {
        let entries = frame
            .pointer_mut("/data/topics")
            .and_then(Value::as_array_mut);
        for entry in entries.into_iter().flatten() {
            let Some(entry) = entry.as_object_mut() else {
                continue;
            };
            let topic = entry.get("topic").and_then(Value::as_str).unwrap_or("");
            let epoch = entry.get("epoch").and_then(Value::as_str);
            let seq = entry.get("resumeAfter").and_then(Value::as_i64);
            let same_epoch = self
                .epochs
                .get(topic)
                .filter(|(_, v)| Some(v.as_str()) == epoch);
            let epoch_name = same_epoch
                .or_else(|| {
                    self.epochs
                        .values()
                        .find(|(_, v)| Some(v.as_str()) == epoch)
                })
                .map(|(name, _)| name.clone());
            // The seq is the topic's only when the epoch is its current one.
            let seq_template = same_epoch
                .and(self.seqs.get(topic))
                .zip(seq)
                .map(|((name, base), seq)| format!("{{{{{}}}}}", offset(name, seq - base)));
            if let Some(name) = epoch_name {
                entry.insert("epoch".into(), Value::String(format!("{{{{{name}}}}}")));
            }
            if let Some(template) = seq_template {
                entry.insert("resumeAfter".into(), Value::String(template));
            }
        }
    }
}

/// `name`, `name + d` or `name - d`.
fn offset(name: &str, delta: i64) -> String {
    match delta {
        0 => name.to_owned(),
        d if d > 0 => format!("{name} + {d}"),
        d => format!("{name} - {}", d.unsigned_abs()),
    }
}

/// `rtbus-conformance record`.
pub async fn run(args: RecordArgs) -> anyhow::Result<ExitCode> {
    use anyhow::Context as _;
    let mut contract = Contract::default();
    contract.credentials.clear();
    contract.apply_env();
    for t in &args.tokens {
        contract.set_token(t)?;
    }
    let upstream = Url::parse(&args.upstream).context("--upstream")?;
    let recorder = Recorder::bind(args.listen, upstream)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = recorder.local_addr()?;
    eprintln!(
        "recording: point your client at ws://{addr}{}; forwarding to {}{}",
        rtbus_protocol::ENDPOINT_PATH,
        args.upstream,
        if args.keep_listening {
            "; Ctrl-C to stop"
        } else {
            "; stops when the last client disconnects (or Ctrl-C)"
        }
    );
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let events = recorder.run(args.keep_listening, stop).await;
    let case = to_case(
        &events,
        &args.id,
        &args.title,
        args.rules.clone(),
        &contract,
    );
    let unknown = case
        .connections
        .values()
        .any(|c| c.bearer.as_deref() == Some(UNKNOWN_CREDENTIAL))
        || serde_json::to_string(&case.steps).is_ok_and(|s| s.contains("{{token:recorded}}"));
    let mut text = serde_json::to_string_pretty(&case)?;
    text.push('\n');
    // The transcript must load again; refuse to write one that would not.
    crate::transcript::parse(&args.out, &text)
        .map_err(|e| anyhow::anyhow!("the recorded transcript does not load: {e}"))?;
    std::fs::write(&args.out, text)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!(
        "wrote {} ({} connection(s), {} step(s)); replay with: rtbus-conformance run --cases {}",
        args.out.display(),
        case.connections.len(),
        case.steps.len(),
        args.out
            .parent()
            .map_or(".".into(), |p| if p.as_os_str().is_empty() {
                ".".into()
            } else {
                p.display().to_string()
            })
    );
    let binary = events
        .iter()
        .filter(|e| matches!(e, Event::ServerBinary(..)))
        .count();
    if binary > 0 {
        eprintln!(
            "note: the server sent {binary} binary frame(s), which an rtbus v1 server never sends; \
             the transcript expects each as {{\"$literal\": {{\"binary\": ...}}}}, so its replay \
             fails there"
        );
    }
    if unknown {
        eprintln!(
            "note: a token not given with --token was recorded as credential \"{UNKNOWN_CREDENTIAL}\"; replay with --token {UNKNOWN_CREDENTIAL}=..."
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_and_time_become_matchers() {
        let events = vec![
            Event::Connect {
                conn: "c1".into(),
                subprotocols: vec!["rtbus.v1".into()],
                authorization: Some("Bearer conformance-reader-token".into()),
                status: 101,
            },
            Event::ClientText("c1".into(), r#"{"type":"auth","data":{"token":"zzz"}}"#.into()),
            Event::ServerText(
                "c1".into(),
                r#"{"type":"snapshot","data":{"topic":"custom.a","epoch":"k1","seq":4,"emittedAt":"2026-11-21T09:30:00.125Z","isReplay":false,"payload":null}}"#.into(),
            ),
            Event::ServerText(
                "c1".into(),
                r#"{"type":"event","data":{"topic":"custom.a","epoch":"k1","seq":5,"emittedAt":"2026-11-21T09:30:00.125Z","isReplay":false,"payload":1}}"#.into(),
            ),
            Event::ClientText("c1".into(), "{oops".into()),
            Event::ServerClose("c1".into(), Some(4009)),
        ];
        let case = to_case(&events, "r", "t", vec![], &Contract::default());
        assert_eq!(case.connections["c1"].bearer.as_deref(), Some("reader"));
        let json = serde_json::to_value(&case.steps).unwrap();
        assert_eq!(json[1]["frame"]["data"]["token"], "{{token:recorded}}");
        assert_eq!(
            json[2]["frame"]["data"]["seq"],
            json!({"$capture": "seq1", "$type": "integer"})
        );
        assert_eq!(
            json[2]["frame"]["data"]["epoch"],
            json!({"$capture": "ep1", "$type": "string"})
        );
        assert_eq!(
            json[3]["frame"]["data"]["seq"],
            json!({"$expr": "seq1 + 1"})
        );
        assert_eq!(json[3]["frame"]["data"]["epoch"], json!({"$eq": "{{ep1}}"}));
        assert_eq!(
            json[3]["frame"]["data"]["emittedAt"],
            json!({"$timestamp": true})
        );
        assert_eq!(json[4]["text"], "{oops");
        assert_eq!(json[5]["code"], 4009);
        let text = serde_json::to_string(&case).unwrap();
        crate::transcript::parse(std::path::Path::new("r.json"), &text).unwrap();
    }

    fn server(text: &str) -> Event {
        Event::ServerText("c1".into(), text.into())
    }

    #[test]
    fn epochs_are_captured_per_topic_and_resumes_name_them() {
        let events = vec![
            Event::Connect {
                conn: "c1".into(),
                subprotocols: vec!["rtbus.v1".into()],
                authorization: None,
                status: 101,
            },
            server(
                r#"{"type":"published","data":{"topic":"custom.a","epoch":"k1","seq":7}}"#,
            ),
            server(
                r#"{"type":"subscribed","id":"s","data":{"topics":[{"topic":"custom.a","epoch":"k1","seq":7,"start":"snapshot"},{"topic":"custom.b","epoch":"k2","seq":0,"start":"live"}]}}"#,
            ),
            // The same epoch on another topic is still that topic's own capture.
            server(
                r#"{"type":"event","data":{"topic":"custom.b","epoch":"k2","seq":1,"emittedAt":"2026-11-21T09:30:00.125Z","isReplay":false,"payload":1}}"#,
            ),
            Event::ClientText(
                "c1".into(),
                r#"{"type":"subscribe","data":{"topics":[{"topic":"custom.a","resumeAfter":6,"epoch":"k1"},{"topic":"custom.c","resumeAfter":3,"epoch":"zz"}]}}"#.into(),
            ),
            // A reset topic: a new epoch is captured anew and restarts the seq.
            server(
                r#"{"type":"published","data":{"topic":"custom.a","epoch":"k9","seq":1}}"#,
            ),
        ];
        let case = to_case(&events, "r", "t", vec![], &Contract::default());
        let json = serde_json::to_value(&case.steps).unwrap();
        assert_eq!(
            json[1]["frame"]["data"],
            json!({"topic": "custom.a", "epoch": {"$capture": "ep1", "$type": "string"},
                   "seq": {"$capture": "seq1", "$type": "integer"}})
        );
        assert_eq!(
            json[2]["frame"]["data"]["topics"],
            json!([
                {"topic": "custom.a", "epoch": {"$eq": "{{ep1}}"}, "seq": {"$expr": "seq1"},
                 "start": "snapshot"},
                {"topic": "custom.b", "epoch": {"$capture": "ep2", "$type": "string"},
                 "seq": {"$capture": "seq2", "$type": "integer"}, "start": "live"},
            ])
        );
        assert_eq!(json[3]["frame"]["data"]["epoch"], json!({"$eq": "{{ep2}}"}));
        assert_eq!(
            json[3]["frame"]["data"]["seq"],
            json!({"$expr": "seq2 + 1"})
        );
        assert_eq!(
            json[4]["frame"]["data"]["topics"],
            json!([
                {"topic": "custom.a", "resumeAfter": "{{seq1 - 1}}", "epoch": "{{ep1}}"},
                {"topic": "custom.c", "resumeAfter": 3, "epoch": "zz"},
            ])
        );
        assert_eq!(
            json[5]["frame"]["data"],
            json!({"topic": "custom.a", "epoch": {"$capture": "ep3", "$type": "string"},
                   "seq": {"$capture": "seq3", "$type": "integer"}})
        );
        let text = serde_json::to_string(&case).unwrap();
        crate::transcript::parse(std::path::Path::new("r.json"), &text).unwrap();
    }
}
