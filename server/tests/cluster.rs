//! Scale-out on Redis: a real `redis-server` on a loopback port (no persistence) and two
//! `rtbus-server --redis-url` processes. One `seq` numbering and epoch per topic across nodes,
//! the snapshot on any node equal to the fold of every node's events, the handover from
//! snapshot or replay to live events without a gap or duplicate while another node publishes,
//! resume on the surviving node after `kill -9`, and what clients learn when Redis loses its
//! data or goes away.
//!
//! Needs Debian's `redis-server` (`apt-get install redis-server`); without it every test fails
//! saying so.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use rtbus_protocol::catalog::{TopicEvent, TopicSnapshot};
use rtbus_protocol::{CloseCode, Epoch, ErrorCode, ServerMessage, Start, SubscriptionRequest};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const READER: &str = "tok-reader";
const REDIS: &str = "/usr/bin/redis-server";

/// A `redis-server` on a free loopback port, without persistence; killed when dropped.
struct Redis {
    child: Option<Child>,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        Redis::start_on(port)
    }

    fn start_on(port: u16) -> Redis {
        let binary = if std::path::Path::new(REDIS).exists() {
            REDIS
        } else {
            "redis-server"
        };
        let child = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "cannot run redis-server ({err}): these tests need a real Redis; install \
                     Debian's redis-server package (apt-get install redis-server)"
                )
            });
        let redis = Redis {
            child: Some(child),
            port,
        };
        for _ in 0..100 {
            if redis
                .command("PING")
                .is_some_and(|r| r.starts_with("+PONG"))
            {
                return redis;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not answer PING on port {port}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends one inline command; the first reply line, if Redis answered.
    fn command(&self, command: &str) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(STEP)).ok()?;
        stream.write_all(format!("{command}\r\n").as_bytes()).ok()?;
        let mut buf = [0u8; 256];
        let n = stream.read(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// How many connections are subscribed to `channel` (`PUBSUB NUMSUB`).
    fn numsub(&self, channel: &str) -> u64 {
        let reply = self
            .command(&format!("PUBSUB NUMSUB {channel}"))
            .expect("Redis answers PUBSUB");
        // `*2 $len channel :count`, one item a line.
        reply
            .lines()
            .rev()
            .find_map(|line| line.strip_prefix(':'))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected PUBSUB NUMSUB reply {reply:?}"))
    }

    /// `INFO commandstats`: calls per command.
    fn command_calls(&self) -> std::collections::BTreeMap<String, u64> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connects");
        stream.set_read_timeout(Some(STEP)).expect("timeout set");
        stream
            .write_all(b"INFO commandstats\r\n")
            .expect("request sent");
        // A bulk string: `$<len>\r\n<len bytes>\r\n`.
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).expect("INFO answered");
            assert!(n > 0, "Redis closed during INFO");
            reply.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&reply);
            if let Some((head, body)) = text.split_once("\r\n") {
                let len: usize = head[1..].parse().expect("a bulk length");
                if body.len() >= len {
                    break;
                }
            }
        }
        let text = String::from_utf8_lossy(&reply).into_owned();
        // Lines like `cmdstat_evalsha:calls=3,usec=…`.
        text.lines()
            .filter_map(|line| {
                let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = rest
                    .strip_prefix("calls=")?
                    .split(',')
                    .next()?
                    .parse()
                    .ok()?;
                Some((name.to_owned(), calls))
            })
            .collect()
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills Redis and starts a new one, empty, on the same port.
    fn restart(&mut self) {
        self.kill();
        let again = Redis::start_on(self.port);
        *self = again;
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A config file with a publisher and a reader token, removed when dropped.
struct ConfigFile(std::path::PathBuf);

impl ConfigFile {
    fn new(name: &str) -> ConfigFile {
        let dir = std::env::temp_dir().join(format!("rtbus-cluster-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("rtbus.toml");
        let config = format!(
            "[[tokens]]\ntoken = \"{PUBLISHER}\"\nprincipal = \"feeder\"\nroles = [\"publisher\"]\n\
             read = [\"*\"]\npublish = [\"*\"]\n\n[[tokens]]\ntoken = \"{READER}\"\n\
             principal = \"reader\"\nread = [\"*\"]\n\n[[tokens]]\ntoken = \"{ADMIN}\"\n\
             principal = \"root\"\nroles = [\"admin\"]\n"
        );
        std::fs::write(&path, config).expect("config written");
        ConfigFile(path)
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A node: the real binary on an ephemeral port, on `redis`.
async fn node(config: &ConfigFile, redis: &Redis) -> ServerProcess {
    node_with(config, redis, &[]).await
}

/// A node with more flags.
async fn node_with(config: &ConfigFile, redis: &Redis, flags: &[&str]) -> ServerProcess {
    let path = config.0.to_str().expect("a UTF-8 temp path");
    let url = redis.url();
    let mut args = vec![
        "--config",
        path,
        "--listen",
        "127.0.0.1:0",
        "--redis-url",
        &url,
        "--log",
        "error",
        "--workers",
        "2",
    ];
    args.extend_from_slice(flags);
    let node = ServerProcess::spawn(&args).await;
    wait_healthy(node.addr()).await;
    node
}

/// The node's `/api/realtime/stats`, as JSON.
async fn stats(addr: SocketAddr) -> Value {
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).expect("connects");
        stream.set_read_timeout(Some(STEP)).expect("timeout set");
        let request = format!(
            "GET /api/realtime/stats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n\
             Connection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).expect("request sent");
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
        serde_json::from_str(body).unwrap_or_else(|err| panic!("stats {text:?}: {err}"))
    })
    .await
    .expect("joined")
}

/// `/healthz`: the status code and body.
async fn health(addr: SocketAddr) -> (u16, String) {
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).expect("connects");
        stream.set_read_timeout(Some(STEP)).expect("timeout set");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("request sent");
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
        (status, body)
    })
    .await
    .expect("joined")
}

/// Waits (bounded) until `/healthz` answers `status`; returns the body.
async fn wait_health(addr: SocketAddr, status: u16) -> String {
    let mut last = (0, String::new());
    for _ in 0..100 {
        last = health(addr).await;
        if last.0 == status {
            return last.1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("/healthz of {addr} did not answer {status}; last {last:?}");
}

async fn wait_healthy(addr: SocketAddr) {
    wait_health(addr, 200).await;
}

async fn connect(addr: SocketAddr, token: &str) -> Client {
    let dial = Dial {
        token: Some(token),
        ..Dial::default()
    };
    Client::dial_addr(addr, dial).await.expect("handshake")
}

fn payload(name: &str, n: u64) -> Value {
    if name.starts_with("drives.") {
        pressure(&format!("d{}", n % 3), n as f64 / 1000.0)
    } else {
        json!({"n": n})
    }
}

/// The fold of events `1..=n` of `name`, as a client would compute it.
fn fold(name: &str, n: u64) -> Value {
    let topic = topic(name);
    let family = rtbus_protocol::catalog::Family::of(&topic).expect("catalog topic");
    let mut snapshot = TopicSnapshot::empty(family);
    for at in 1..=n {
        snapshot.fold(&TopicEvent::decode(&topic, &payload(name, at)).expect("valid"));
    }
    snapshot.to_value()
}

/// Publishes event `n` of `name` and waits for the reply.
async fn publish_one(publisher: &mut Client, name: &str, n: u64) -> (Epoch, u64) {
    let id = format!("p{n}");
    let reply = publisher
        .request(&publish(&id, name, payload(name, n)))
        .await;
    published(&reply, &id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_published_on_both_nodes_share_one_seq_and_epoch_and_the_snapshot_is_their_fold() {
    let redis = Redis::start();
    let config = ConfigFile::new("fold");
    let (a, b) = (node(&config, &redis).await, node(&config, &redis).await);
    let names = ["custom.cluster.fold", "drives.pressure"];
    let mut watcher = connect(b.addr(), READER).await;
    let requests: Vec<SubscriptionRequest> = names.iter().map(|n| no_snapshot(n)).collect();
    let entries = subscribed(&watcher.request(&subscribe_with("s", requests)).await, "s");
    let epochs: Vec<Epoch> = entries.iter().map(|e| e.epoch.clone()).collect();
    let (mut on_a, mut on_b) = (
        connect(a.addr(), PUBLISHER).await,
        connect(b.addr(), PUBLISHER).await,
    );
    for (at, name) in names.iter().enumerate() {
        for n in 1..=10 {
            let publisher = if n % 2 == 1 { &mut on_a } else { &mut on_b };
            let (epoch, seq) = publish_one(publisher, name, n).await;
            assert_eq!(
                (&epoch, seq),
                (&epochs[at], n),
                "{name}: one numbering, one epoch"
            );
        }
    }
    for (at, name) in names.iter().enumerate() {
        for n in 1..=10 {
            let message = watcher.recv().await;
            assert_eq!(event_on(&message, name), (n, false));
            assert_eq!(delivery(&message).epoch, epochs[at]);
            assert_eq!(delivery(&message).payload, payload(name, n));
        }
    }
    for addr in [a.addr(), b.addr()] {
        let mut late = connect(addr, READER).await;
        for (at, name) in names.iter().enumerate() {
            let id = format!("late{at}");
            let (epoch, seq, start) =
                subscribed_one(&late.request(&subscribe(&id, &[name])).await, &id);
            assert_eq!(
                (epoch, seq, start),
                (epochs[at].clone(), 10, Start::Snapshot)
            );
            let (seq, state) = snapshot_on(&late.recv().await, name);
            assert_eq!((seq, state), (10, fold(name, 10)), "{name} on {addr}");
        }
    }
}

/// The `data` of an `event` frame, as the server wrote it (byte for byte), and the frame
/// decoded.
fn event_data(text: &str) -> (String, rtbus_protocol::Delivery) {
    let frame: Value = serde_json::from_str(text).expect("JSON");
    assert_eq!(frame["type"], "event", "{text}");
    let message = rtbus_protocol::decode_server_frame(text).expect("a valid frame");
    // The raw `data` member: the frame is `{"type":"event","data":{…}}`, so `data` runs from
    // after its key to the frame's last brace.
    let at = text.find("\"data\":").expect("a data member") + "\"data\":".len();
    let data = text[at..text.len() - 1].to_owned();
    assert_eq!(
        serde_json::from_str::<Value>(&data).expect("data is JSON"),
        frame["data"],
        "the slice is the data member: {text}"
    );
    (data, delivery(&message).clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_sends_one_event_as_the_same_bytes_and_a_replay_from_redis_equals_the_live_frame()
 {
    const EVENTS: u64 = 8;
    let redis = Redis::start();
    let config = ConfigFile::new("same");
    let (a, b) = (node(&config, &redis).await, node(&config, &redis).await);
    let name = "custom.cluster.same";
    let (mut on_a, mut on_b) = (
        connect(a.addr(), READER).await,
        connect(b.addr(), READER).await,
    );
    let mut epoch = None;
    for reader in [&mut on_a, &mut on_b] {
        let reply = reader
            .request(&subscribe_with("s", [no_snapshot(name)]))
            .await;
        epoch = Some(subscribed_one(&reply, "s").0);
    }
    let epoch = epoch.expect("subscribed");
    let (mut pub_a, mut pub_b) = (
        connect(a.addr(), PUBLISHER).await,
        connect(b.addr(), PUBLISHER).await,
    );
    for n in 1..=EVENTS {
        // From both nodes, a few milliseconds apart, so a stamp taken on receipt would differ.
        let publisher = if n % 2 == 1 { &mut pub_a } else { &mut pub_b };
        publish_one(publisher, name, n).await;
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let mut live = Vec::new();
    for n in 1..=EVENTS {
        let (data_a, event_a) = event_data(&on_a.recv_text().await);
        let (data_b, _) = event_data(&on_b.recv_text().await);
        assert_eq!(data_a, data_b, "event {n}: the same bytes on both nodes");
        assert_eq!((event_a.seq.get(), event_a.is_replay), (n, false));
        assert_eq!(event_a.payload, payload(name, n));
        live.push(event_a);
    }
    let stamps: std::collections::BTreeSet<_> = live.iter().map(|e| &e.emitted_at).collect();
    assert!(
        stamps.len() > 1,
        "publishes milliseconds apart carry their own stamps"
    );
    // A replay equals the live frame but for isReplay: from a replica that followed the
    // events live (B), and from one loaded from the Redis stream afterwards (C).
    let c = node(&config, &redis).await;
    for addr in [b.addr(), c.addr()] {
        let mut resumer = connect(addr, READER).await;
        let reply = resumer
            .request(&subscribe_with("r", [resume(name, &epoch, 0)]))
            .await;
        assert_eq!(
            subscribed_one(&reply, "r"),
            (epoch.clone(), EVENTS, Start::Resumed)
        );
        for original in &live {
            let (_, replayed) = event_data(&resumer.recv_text().await);
            assert!(replayed.is_replay);
            let as_live = rtbus_protocol::Delivery {
                is_replay: false,
                ..replayed
            };
            assert_eq!(&as_live, original, "replay on {addr}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_starts_following_after_the_events_resumes_a_client_from_the_redis_stream() {
    let redis = Redis::start();
    let config = ConfigFile::new("late");
    let (a, b) = (node(&config, &redis).await, node(&config, &redis).await);
    let name = "custom.cluster.late";
    let mut publisher = connect(a.addr(), PUBLISHER).await;
    let mut epoch = None;
    for n in 1..=50 {
        epoch = Some(publish_one(&mut publisher, name, n).await.0);
    }
    let epoch = epoch.expect("published");
    // B has never followed the topic: its replica is loaded now, with the stream's tail.
    let mut client = connect(b.addr(), READER).await;
    let reply = client
        .request(&subscribe_with("r", [resume(name, &epoch, 10)]))
        .await;
    assert_eq!(subscribed_one(&reply, "r"), (epoch, 50, Start::Resumed));
    for n in 11..=50 {
        let message = client.recv().await;
        assert_eq!(event_on(&message, name), (n, true));
        assert_eq!(delivery(&message).payload, payload(name, n));
    }
    publish_one(&mut publisher, name, 51).await;
    assert_eq!(
        event_on(&client.recv().await, name),
        (51, false),
        "then live"
    );
}

/// A `custom` event of about 2 KB.
fn bulky(n: u64) -> Value {
    json!({"n": n, "text": "x".repeat(2000)})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_the_nodes_shortened_history_misses_is_replayed_from_the_redis_stream() {
    const EVENTS: u64 = 60;
    let redis = Redis::start();
    let config = ConfigFile::new("short");
    // 64 KiB of history on the node: about 30 of these events; Redis keeps 1024.
    let b = node_with(&config, &redis, &["--max-history-bytes", "65536"]).await;
    let name = "custom.cluster.short";
    let mut watcher = connect(b.addr(), READER).await;
    let reply = watcher
        .request(&subscribe_with("s", [no_snapshot(name)]))
        .await;
    let (epoch, _, _) = subscribed_one(&reply, "s");
    let mut publisher = connect(b.addr(), PUBLISHER).await;
    for n in 1..=EVENTS {
        let id = format!("p{n}");
        let reply = publisher.request(&publish(&id, name, bulky(n))).await;
        assert_eq!(published(&reply, &id), (epoch.clone(), n));
    }
    let mut live = Vec::new();
    for n in 1..=EVENTS {
        let message = watcher.recv().await;
        assert_eq!(event_on(&message, name), (n, false));
        live.push(delivery(&message).clone());
    }
    let evicted = stats(b.addr()).await["historyBytesEvicted"]
        .as_u64()
        .expect("historyBytesEvicted");
    assert!(evicted > 0, "the replica's history was shortened");
    let mut client = connect(b.addr(), READER).await;
    let reply = client
        .request(&subscribe_with("r", [resume(name, &epoch, 10)]))
        .await;
    assert_eq!(
        subscribed_one(&reply, "r"),
        (epoch.clone(), EVENTS, Start::Resumed)
    );
    for original in &live[10..] {
        let message = client.recv().await;
        let replayed = delivery(&message);
        assert!(replayed.is_replay, "{message:?}");
        let as_live = rtbus_protocol::Delivery {
            is_replay: false,
            ..replayed.clone()
        };
        assert_eq!(&as_live, original, "the replay equals the live frame");
    }
    let id = format!("p{}", EVENTS + 1);
    publisher
        .request(&publish(&id, name, bulky(EVENTS + 1)))
        .await;
    assert_eq!(
        event_on(&client.recv().await, name),
        (EVENTS + 1, false),
        "then live, without a gap"
    );
}

/// Waits (bounded) until `channel` has `count` subscribed connections in Redis.
async fn wait_numsub(redis: &Redis, channel: &str, count: u64) {
    let mut last = u64::MAX;
    for _ in 0..200 {
        last = redis.numsub(channel);
        if last == count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{channel} has {last} subscribed connections in Redis, not {count}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stops_listening_to_a_topic_soon_after_its_last_local_subscriber_leaves() {
    let redis = Redis::start();
    let config = ConfigFile::new("linger");
    // A short linger here; the default is 5 s. The other node's 60 s linger is long enough
    // that a reconnect within it is certain.
    let quick = node_with(&config, &redis, &["--follow-linger-ms", "200"]).await;
    let patient = node_with(&config, &redis, &["--follow-linger-ms", "60000"]).await;
    let name = "custom.cluster.linger";
    let channel = format!("rtbus:{{{name}}}");
    assert_eq!(redis.numsub(&channel), 0);
    let mut reader = connect(quick.addr(), READER).await;
    let reply = reader
        .request(&subscribe_with("s", [no_snapshot(name)]))
        .await;
    let (epoch, _, _) = subscribed_one(&reply, "s");
    assert_eq!(
        redis.numsub(&channel),
        1,
        "the node listens while it serves"
    );
    let mut publisher = connect(patient.addr(), PUBLISHER).await;
    publish_one(&mut publisher, name, 1).await;
    assert_eq!(event_on(&reader.recv().await, name), (1, false));
    let reply = reader.request(&unsubscribe("u", &[name])).await;
    assert_eq!(reply.kind(), "unsubscribed");
    wait_numsub(&redis, &channel, 0).await;
    assert_eq!(
        stats(quick.addr()).await["topics"],
        0,
        "its copy of the topic is gone too"
    );
    // The topic lives on in Redis: subscribing again follows it again, same stream.
    publish_one(&mut publisher, name, 2).await;
    let reply = reader
        .request(&subscribe_with("r", [resume(name, &epoch, 1)]))
        .await;
    assert_eq!(
        subscribed_one(&reply, "r"),
        (epoch.clone(), 2, Start::Resumed)
    );
    assert_eq!(event_on(&reader.recv().await, name), (2, true));
    assert_eq!(redis.numsub(&channel), 1);
    drop(reader);
    wait_numsub(&redis, &channel, 0).await;

    // Within the linger, a client that leaves and comes back causes no churn in Redis.
    let mut client = connect(patient.addr(), READER).await;
    let reply = client
        .request(&subscribe_with("s", [no_snapshot(name)]))
        .await;
    assert_eq!(subscribed_one(&reply, "s").1, 2);
    let before = redis.command_calls();
    let reply = client.request(&unsubscribe("u", &[name])).await;
    assert_eq!(reply.kind(), "unsubscribed");
    let reply = client
        .request(&subscribe_with("again", [resume(name, &epoch, 2)]))
        .await;
    assert_eq!(subscribed_one(&reply, "again"), (epoch, 2, Start::Resumed));
    let after = redis.command_calls();
    for command in ["subscribe", "unsubscribe", "evalsha", "eval"] {
        assert_eq!(
            after.get(command),
            before.get(command),
            "no {command} for a client back within the linger"
        );
    }
    assert_eq!(redis.numsub(&channel), 1);
}

/// What Redis ran while `publishes` events were published on `name` (one at a time, from
/// `publisher`) and every one of `readers` received them: calls per command, less those of
/// the nodes' periodic health checks (PING, and GET and SET of the generation key).
async fn calls_for_publishes(
    redis: &Redis,
    publisher: &mut Client,
    readers: &mut [Client],
    name: &str,
    from: u64,
    publishes: u64,
) -> std::collections::BTreeMap<String, u64> {
    let before = redis.command_calls();
    for n in from..from + publishes {
        publish_one(publisher, name, n).await;
    }
    for reader in readers.iter_mut() {
        for n in from..from + publishes {
            assert_eq!(event_on(&reader.recv().await, name), (n, false));
        }
    }
    let after = redis.command_calls();
    after
        .into_iter()
        .filter(|(command, _)| {
            !["ping", "get", "set", "info", "pubsub"].contains(&command.as_str())
        })
        .map(|(command, calls)| {
            let delta = calls - before.get(&command).copied().unwrap_or(0);
            (command, delta)
        })
        .filter(|(_, delta)| *delta > 0)
        .collect()
}

/// Adds `count` readers of `name` on the node at `addr`, subscribed without a snapshot.
async fn add_readers(addr: SocketAddr, name: &str, readers: &mut Vec<Client>, count: usize) {
    for _ in 0..count {
        let mut reader = connect(addr, READER).await;
        let reply = reader
            .request(&subscribe_with("s", [no_snapshot(name)]))
            .await;
        subscribed_one(&reply, "s");
        readers.push(reader);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_traffic_per_publish_does_not_grow_with_the_subscribers_on_a_node() {
    const PUBLISHES: u64 = 20;
    let redis = Redis::start();
    let config = ConfigFile::new("cost");
    let b = node(&config, &redis).await;
    let name = "custom.cluster.cost";
    let channel = format!("rtbus:{{{name}}}");
    let mut publisher = connect(b.addr(), PUBLISHER).await;
    let mut readers = Vec::new();
    add_readers(b.addr(), name, &mut readers, 1).await;
    // The first publish loads the script into Redis; the measured ones only call it.
    publish_one(&mut publisher, name, 1).await;
    assert_eq!(event_on(&readers[0].recv().await, name), (1, false));
    let one = calls_for_publishes(&redis, &mut publisher, &mut readers, name, 2, PUBLISHES).await;
    add_readers(b.addr(), name, &mut readers, 49).await;
    assert_eq!(readers.len(), 50);
    assert_eq!(
        redis.numsub(&channel),
        1,
        "one channel subscription per node"
    );
    let fifty = calls_for_publishes(
        &redis,
        &mut publisher,
        &mut readers,
        name,
        2 + PUBLISHES,
        PUBLISHES,
    )
    .await;
    eprintln!(
        "Redis commands for {PUBLISHES} publishes: 1 subscriber {one:?}, 50 subscribers {fifty:?}"
    );
    assert_eq!(
        one.get("evalsha"),
        Some(&PUBLISHES),
        "one script call per publish: {one:?}"
    );
    assert_eq!(
        one, fifty,
        "the same commands with 1 and with 50 subscribers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_cut_off_after_it_reached_redis_says_it_may_have_been_applied_and_a_resume_tells()
{
    let redis = Redis::start();
    let config = ConfigFile::new("cut");
    let a = node(&config, &redis).await;
    let name = "custom.cluster.cut";
    let mut publisher = connect(a.addr(), PUBLISHER).await;
    let (epoch, _) = publish_one(&mut publisher, name, 1).await;
    // Redis holds every write until told otherwise: the script call goes out and its answer
    // never comes back in time.
    let paused = redis.command("CLIENT PAUSE 60000 WRITE");
    assert!(
        paused.as_deref().is_some_and(|r| r.starts_with("+OK")),
        "{paused:?}"
    );
    let reply = publisher
        .request(&publish("cut", name, payload(name, 2)))
        .await;
    let unpaused = redis.command("CLIENT UNPAUSE");
    assert!(
        unpaused.as_deref().is_some_and(|r| r.starts_with("+OK")),
        "{unpaused:?}"
    );
    assert_eq!(error_code(&reply, "cut"), ErrorCode::Unavailable);
    let ServerMessage::Error { data, .. } = &reply else {
        unreachable!("error_code checked the kind");
    };
    for told in [
        "may or may not have been applied",
        "did not answer",
        "resuming from the last epoch and seq you saw",
    ] {
        assert!(
            data.message.contains(told),
            "{:?} lacks {told:?}",
            data.message
        );
    }
    // Whichever it was, a resume from the last seq seen tells.
    wait_healthy(a.addr()).await;
    let mut reader = connect(a.addr(), READER).await;
    let mut answer = None;
    for attempt in 0..100 {
        let id = format!("r{attempt}");
        let reply = reader
            .request(&subscribe_with(&id, [resume(name, &epoch, 1)]))
            .await;
        if reply.kind() == "subscribed" {
            answer = Some(subscribed_one(&reply, &id));
            break;
        }
        assert_eq!(error_code(&reply, &id), ErrorCode::Unavailable, "{reply:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (at, seq, start) = answer.expect("the node serves again");
    assert_eq!((&at, start), (&epoch, Start::Resumed));
    let applied = match seq {
        1 => false,
        2 => {
            let message = reader.recv().await;
            assert_eq!(event_on(&message, name), (2, true));
            assert_eq!(delivery(&message).payload, payload(name, 2));
            true
        }
        other => panic!("seq {other} after one publish and one cut off"),
    };
    eprintln!("the publish cut off was applied: {applied}");
    let (_, next) = publish_one(&mut publisher, name, seq + 1).await;
    assert_eq!(
        next,
        seq + 1,
        "the next publish continues where the resume said"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_cluster_starts_in_process_nodes_that_share_one_stream_per_topic_and_prefix() {
    let redis = Redis::start();
    let prefix = format!("helper-{}:", std::process::id());
    let cluster = rtbus_server::start_cluster(config(), &redis.url(), &prefix, 2)
        .await
        .expect("the cluster starts");
    let addrs = cluster.addrs();
    assert_eq!(addrs.len(), 2);
    assert_ne!(addrs[0], addrs[1]);
    for (addr, url) in addrs.iter().zip(cluster.urls()) {
        assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
        assert_eq!(url, format!("ws://{addr}/api/realtime"));
        assert_eq!(health(*addr).await.0, 200, "ready when returned");
    }
    for node in cluster.nodes() {
        assert_eq!(node.engine_health(), Ok(()));
    }
    let name = "custom.cluster.helper";
    let mut reader = connect(addrs[0], ALICE).await;
    let reply = reader
        .request(&subscribe_with("s", [no_snapshot(name)]))
        .await;
    let (epoch, _, _) = subscribed_one(&reply, "s");
    let mut publisher = connect(addrs[1], PUBLISHER).await;
    assert_eq!(
        publish_one(&mut publisher, name, 1).await,
        (epoch.clone(), 1)
    );
    assert_eq!(event_on(&reader.recv().await, name), (1, false));
    // Under its own prefix, another cluster on the same Redis shares nothing with this one.
    let other = rtbus_server::start_cluster(config(), &redis.url(), &format!("{prefix}other:"), 1)
        .await
        .expect("the other cluster starts");
    let mut elsewhere = connect(other.addrs()[0], PUBLISHER).await;
    let (their_epoch, seq) = publish_one(&mut elsewhere, name, 1).await;
    assert_eq!(seq, 1, "a stream of its own");
    assert_ne!(their_epoch, epoch);
    assert!(redis.numsub(&format!("{prefix}{{{name}}}")) >= 1);
    other.shutdown().await;
    cluster.shutdown().await;
    for addr in addrs {
        assert!(
            TcpStream::connect(addr).is_err(),
            "{addr} no longer accepts after shutdown"
        );
    }
    // Bad input: no node, or a Redis nobody answers at.
    let err = rtbus_server::start_cluster(config(), &redis.url(), &prefix, 0)
        .await
        .expect_err("no node");
    assert!(err.to_string().contains("at least 1 node"), "{err}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let url = format!("redis://{closed}");
    let err = rtbus_server::start_cluster(config(), &url, &prefix, 1)
        .await
        .expect_err("nothing answers at that port");
    assert!(
        matches!(&err, rtbus_server::Error::NotReady { waited, .. }
            if *waited == rtbus_server::CLUSTER_READY_TIMEOUT),
        "{err}"
    );
    assert!(err.to_string().contains("did not reach Redis"), "{err}");
}

/// A reader of one topic that checks every frame continues its stream.
struct Follower {
    client: Client,
    epoch: Option<Epoch>,
    seq: u64,
    seen: Vec<u64>,
    duplicates: u64,
    gaps: u64,
}

impl Follower {
    async fn start(addr: SocketAddr, name: &str, resume_from: Option<(Epoch, u64)>) -> Follower {
        let mut client = connect(addr, READER).await;
        let request = match &resume_from {
            Some((epoch, after)) => resume(name, epoch, *after),
            None => SubscriptionRequest::new(topic(name)),
        };
        let (epoch, at, start) =
            subscribed_one(&client.request(&subscribe_with("s", [request])).await, "s");
        let mut follower = Follower {
            client,
            epoch: Some(epoch),
            seq: 0,
            seen: Vec::new(),
            duplicates: 0,
            gaps: 0,
        };
        match start {
            Start::Snapshot => {
                let (seq, state) = snapshot_on(&follower.client.recv().await, name);
                assert_eq!(seq, at, "the snapshot is at the acknowledged seq");
                assert_eq!(state, fold(name, seq), "the snapshot is the fold");
                follower.seq = seq;
            }
            Start::Resumed => {
                let (_, after) = resume_from.expect("resumed only when resuming");
                follower.seq = after;
            }
            other => panic!("unexpected start {other:?}"),
        }
        follower
    }

    fn take(&mut self, message: &ServerMessage) {
        let data = delivery(message);
        assert_eq!(Some(&data.epoch), self.epoch.as_ref(), "one epoch");
        let seq = data.seq.get();
        if seq <= self.seq {
            self.duplicates += 1;
        } else {
            if seq != self.seq + 1 {
                self.gaps += seq - self.seq - 1;
            }
            self.seq = seq;
            self.seen.push(seq);
        }
    }

    /// Reads until `last`.
    async fn read_to(&mut self, last: u64) {
        while self.seq < last {
            let message = self.client.recv().await;
            self.take(&message);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_on_one_node_hand_over_to_live_events_without_gap_or_duplicate_while_another_publishes()
 {
    const EVENTS: u64 = 400;
    let redis = Redis::start();
    let config = ConfigFile::new("race");
    let (a, b) = (node(&config, &redis).await, node(&config, &redis).await);
    let name = "custom.cluster.race";
    let mut publisher = connect(a.addr(), PUBLISHER).await;
    let hammer = tokio::spawn(async move {
        // Pipelined in bursts, so subscribes below land among publishes in flight.
        for burst in 0..EVENTS / 20 {
            for n in 1..=20 {
                let n = burst * 20 + n;
                publisher
                    .send(&publish(&format!("p{n}"), name, payload(name, n)))
                    .await;
            }
            for _ in 0..20 {
                assert_eq!(publisher.recv().await.kind(), "published");
            }
        }
    });
    let mut followers = Vec::new();
    let mut last_seen: Option<(Epoch, u64)> = None;
    for round in 0..8 {
        // Alternately a fresh subscriber (snapshot) and one resuming where the previous one
        // stood (replay from the shared stream, on another node than where it was published).
        let from = if round % 2 == 1 {
            last_seen.clone()
        } else {
            None
        };
        let mut follower = Follower::start(b.addr(), name, from).await;
        // Read a little, so the next one resumes from a point in the middle.
        let message = follower.client.recv().await;
        follower.take(&message);
        last_seen = Some((follower.epoch.clone().expect("epoch"), follower.seq));
        followers.push(follower);
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    hammer.await.expect("the publisher finished");
    for (at, follower) in followers.iter_mut().enumerate() {
        follower.read_to(EVENTS).await;
        assert_eq!(
            (follower.gaps, follower.duplicates),
            (0, 0),
            "subscriber {at}: no gap, no duplicate"
        );
        assert_eq!(follower.seq, EVENTS);
    }
    let first = followers[0].seen[0];
    assert!(
        first < EVENTS,
        "the first subscriber started before the last publish"
    );
}

/// A subscriber that survives its node: on a connection lost it reconnects to the next address
/// and resumes with the epoch and last `seq` it saw.
struct Survivor {
    name: &'static str,
    epoch: Epoch,
    seq: u64,
    received: u64,
    duplicates: u64,
    gaps: u64,
    resets: u64,
    reconnects: u64,
}

impl Survivor {
    async fn connect(&mut self, addr: SocketAddr) -> Option<Client> {
        let dial = Dial {
            token: Some(READER),
            ..Dial::default()
        };
        let mut client = Client::dial_addr(addr, dial).await.ok()?;
        let request = resume(self.name, &self.epoch, self.seq);
        client.send(&subscribe_with("r", [request])).await;
        let reply = client.recv().await;
        if reply.kind() == "error" {
            // The node cannot reach Redis yet (`unavailable`): retry.
            assert_eq!(error_code(&reply, "r"), ErrorCode::Unavailable);
            return None;
        }
        let (epoch, at, start) = subscribed_one(&reply, "r");
        match start {
            Start::Resumed => {}
            Start::Reset => {
                self.resets += 1;
                self.epoch = epoch;
                let (seq, _) = snapshot_on(&client.recv().await, self.name);
                assert_eq!(seq, at);
                self.seq = seq;
            }
            other => panic!("unexpected start {other:?}"),
        }
        Some(client)
    }

    fn take(&mut self, message: &ServerMessage) {
        let data = delivery(message);
        if data.epoch != self.epoch {
            panic!("{}: an event of another stream without a reset", self.name);
        }
        let seq = data.seq.get();
        if seq <= self.seq {
            self.duplicates += 1;
            return;
        }
        self.gaps += seq - self.seq - 1;
        self.seq = seq;
        self.received += 1;
    }

    /// Reads until `last` (or until `stop` says so), reconnecting to `fallback` when the
    /// connection is lost or closed. Returns the close codes it saw.
    async fn follow(&mut self, mut client: Client, fallback: SocketAddr, last: u64) -> Vec<u16> {
        let mut closes = Vec::new();
        while self.seq < last {
            let next = tokio::time::timeout(STEP, client.ws.next()).await;
            let message = match next {
                Ok(Some(Ok(Message::Text(text)))) => {
                    rtbus_protocol::decode_server_frame(&text).expect("valid frame")
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    closes.push(frame.map_or(0, |f| u16::from(f.code)));
                    client = self.reconnect(fallback).await;
                    continue;
                }
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_)) | None) => {
                    closes.push(0);
                    client = self.reconnect(fallback).await;
                    continue;
                }
                Err(_) => panic!("{}: nothing for {STEP:?} at seq {}", self.name, self.seq),
            };
            self.take(&message);
        }
        closes
    }

    async fn reconnect(&mut self, addr: SocketAddr) -> Client {
        self.reconnects += 1;
        for _ in 0..100 {
            if let Some(client) = self.connect(addr).await {
                return client;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{}: could not resume on {addr}", self.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_killed_node_resume_on_the_other_with_nothing_lost_or_duplicated_and_learn_of_a_redis_restart()
 {
    const EVENTS: u64 = 600;
    const PER_NODE: usize = 3;
    let mut redis = Redis::start();
    let config = ConfigFile::new("fault");
    let (mut a, b) = (node(&config, &redis).await, node(&config, &redis).await);
    let (a_addr, b_addr) = (a.addr(), b.addr());
    let name = "custom.cluster.fault";
    let mut survivors = Vec::new();
    for at in 0..PER_NODE * 2 {
        let addr = if at < PER_NODE { a_addr } else { b_addr };
        let mut client = connect(addr, READER).await;
        let (epoch, seq, _) = subscribed_one(
            &client
                .request(&subscribe_with("s", [no_snapshot(name)]))
                .await,
            "s",
        );
        let survivor = Survivor {
            name,
            epoch,
            seq,
            received: 0,
            duplicates: 0,
            gaps: 0,
            resets: 0,
            reconnects: 0,
        };
        survivors.push((survivor, client));
    }
    let mut publisher = connect(b_addr, PUBLISHER).await;
    let feeder = tokio::spawn(async move {
        for n in 1..=EVENTS {
            let reply = publisher
                .request(&publish(&format!("p{n}"), name, payload(name, n)))
                .await;
            assert_eq!(reply.kind(), "published", "{reply:?}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        publisher
    });
    let readers: Vec<_> = survivors
        .into_iter()
        .map(|(mut survivor, client)| {
            tokio::spawn(async move {
                let closes = survivor.follow(client, b_addr, EVENTS).await;
                (survivor, closes)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(400)).await;
    a.kill_9();
    let mut publisher = feeder.await.expect("the publisher finished");
    let mut survivors = Vec::new();
    for reader in readers {
        let (survivor, _) = reader.await.expect("the reader finished");
        survivors.push(survivor);
    }
    let lost: u64 = survivors.iter().map(|s| s.gaps).sum();
    let duplicated: u64 = survivors.iter().map(|s| s.duplicates).sum();
    let moved = survivors.iter().filter(|s| s.reconnects > 0).count();
    let received: u64 = survivors.iter().map(|s| s.received).sum();
    eprintln!(
        "fault test: {EVENTS} events, {} subscribers, {moved} resumed on the other node, \
         {received} events received, {lost} lost, {duplicated} duplicated",
        survivors.len()
    );
    assert_eq!((lost, duplicated), (0, 0));
    assert_eq!(moved, PER_NODE, "every client of the killed node moved");
    assert_eq!(received, EVENTS * survivors.len() as u64);

    // Redis restarts empty: every client is told (4013), resumes, and is answered `reset`.
    let old_epoch = survivors[0].epoch.clone();
    let mut clients = Vec::new();
    for survivor in &mut survivors {
        clients.push(
            survivor
                .connect(b_addr)
                .await
                .expect("resumed on the survivor"),
        );
    }
    redis.restart();
    for (survivor, client) in survivors.iter_mut().zip(clients) {
        assert_eq!(
            client_close(client).await,
            CloseCode::EngineUnavailable.value()
        );
        let client = survivor.reconnect(b_addr).await;
        drop(client);
        assert_eq!(survivor.resets, 1, "the client learnt it must reload");
        assert_ne!(survivor.epoch, old_epoch);
        assert_eq!(survivor.seq, 0, "the new stream starts empty");
    }
    wait_healthy(b_addr).await;
    let (epoch, seq) = publish_one(&mut publisher, name, 1).await;
    assert_eq!((epoch, seq), (survivors[0].epoch.clone(), 1));
}

/// Reads until the close frame; its code (0 when the connection ended without one).
async fn client_close(mut client: Client) -> u16 {
    loop {
        match tokio::time::timeout(STEP, client.ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map_or(0, |f| u16::from(f.code)),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => return 0,
            Err(_) => panic!("no close within {STEP:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushall_gives_topics_a_new_epoch_and_resuming_clients_are_reset() {
    let redis = Redis::start();
    let config = ConfigFile::new("flush");
    let (a, b) = (node(&config, &redis).await, node(&config, &redis).await);
    let name = "custom.cluster.flush";
    let mut publisher = connect(a.addr(), PUBLISHER).await;
    let mut reader = connect(b.addr(), READER).await;
    let (old, _, _) = subscribed_one(
        &reader
            .request(&subscribe_with("s", [no_snapshot(name)]))
            .await,
        "s",
    );
    for n in 1..=3 {
        publish_one(&mut publisher, name, n).await;
        assert_eq!(event_on(&reader.recv().await, name), (n, false));
    }
    assert!(
        redis
            .command("FLUSHALL")
            .is_some_and(|r| r.starts_with("+OK"))
    );
    assert_eq!(
        client_close(reader).await,
        CloseCode::EngineUnavailable.value()
    );
    let mut reader = connect(b.addr(), READER).await;
    let reply = reader
        .request(&subscribe_with("r", [resume(name, &old, 3)]))
        .await;
    let (new, seq, start) = subscribed_one(&reply, "r");
    assert_eq!((seq, start), (0, Start::Reset));
    assert_ne!(new, old);
    assert_eq!(snapshot_on(&reader.recv().await, name), (0, fold(name, 0)));
    let (epoch, seq) = publish_one(&mut publisher, name, 1).await;
    assert_eq!(
        (epoch, seq),
        (new.clone(), 1),
        "the publishing node follows the new stream"
    );
    assert_eq!(event_on(&reader.recv().await, name), (1, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_redis_is_reported_publishes_and_subscribes_fail_retryably_and_the_node_recovers() {
    let mut redis = Redis::start();
    let config = ConfigFile::new("down");
    let a = node(&config, &redis).await;
    let name = "custom.cluster.down";
    let mut publisher = connect(a.addr(), PUBLISHER).await;
    let mut reader = connect(a.addr(), READER).await;
    let (old, _, _) = subscribed_one(
        &reader
            .request(&subscribe_with("s", [no_snapshot(name)]))
            .await,
        "s",
    );
    publish_one(&mut publisher, name, 1).await;
    assert_eq!(event_on(&reader.recv().await, name), (1, false));
    let port = redis.port;
    redis.kill();
    assert_eq!(
        client_close(reader).await,
        CloseCode::EngineUnavailable.value()
    );
    assert!(CloseCode::EngineUnavailable.reconnect());
    let body = wait_health(a.addr(), 503).await;
    assert!(body.contains("unavailable"), "{body}");
    let reply = publisher
        .request(&publish("down", name, payload(name, 2)))
        .await;
    assert_eq!(error_code(&reply, "down"), ErrorCode::Unavailable);
    assert!(
        ErrorCode::Unavailable.reconnect(),
        "unavailable says to retry"
    );
    let mut reader = connect(a.addr(), READER).await;
    let reply = reader.request(&subscribe("s2", &[name])).await;
    assert_eq!(error_code(&reply, "s2"), ErrorCode::Unavailable);

    let _redis = Redis::start_on(port);
    wait_healthy(a.addr()).await;
    let reply = reader
        .request(&subscribe_with("s3", [resume(name, &old, 1)]))
        .await;
    let (new, seq, start) = subscribed_one(&reply, "s3");
    assert_eq!((seq, start), (0, Start::Reset), "Redis came back empty");
    assert_ne!(new, old);
    assert_eq!(snapshot_on(&reader.recv().await, name), (0, fold(name, 0)));
    let (epoch, seq) = publish_one(&mut publisher, name, 1).await;
    assert_eq!((epoch, seq), (new, 1));
    assert_eq!(event_on(&reader.recv().await, name), (1, false));
}
