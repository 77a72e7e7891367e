//! Resuming across a crash: the real `rtbus-server` binary, subscribers stopped mid-stream,
//! `kill -9`, a restart on the same port with more events than before, and every client
//! resuming with the epoch and `seq` it last saw. Each one must either continue with no gap or
//! be told to reload (`start: reset` with a fresh snapshot of the new stream): no silent loss.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use rtbus_protocol::catalog::{TopicEvent, TopicSnapshot};
use rtbus_protocol::{Epoch, ServerMessage, Start, SubscriptionRequest};
use serde_json::{Value, json};

const READER: &str = "tok-reader";

/// The topics every client follows: three free-form ones whose new `seq` ends above, at and
/// below the clients' seqs, and one typed family.
const TOPICS: [&str; 4] = [
    "custom.restart.above",
    "custom.restart.equal",
    "custom.restart.below",
    "drives.pressure",
];
/// Events per topic before the crash.
const BEFORE: u64 = 30;
/// Where each client stops reading before the crash (the last one reads everything).
const STOPS: [u64; 4] = [0, 10, 20, BEFORE];
/// Events per topic after the restart, per topic of [`TOPICS`]: above every client's seq,
/// equal to one client's (20), below most, and for the typed topic between two.
const AFTER: [u64; 4] = [BEFORE + 10, 20, 5, 25];

fn payload(name: &str, n: u64) -> Value {
    if name.starts_with("drives.") {
        pressure(&format!("d{}", n % 3), n as f64 / 1000.0)
    } else {
        json!({"topic": name, "n": n})
    }
}

/// A directory for one test's config file, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("rtbus-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A config file with a publisher and a reader token and no public topic.
fn write_config(name: &str) -> TempDir {
    let dir = TempDir::new(name);
    let config = format!(
        "[[tokens]]\ntoken = \"{PUBLISHER}\"\nprincipal = \"feeder\"\nroles = [\"publisher\"]\n\
         read = [\"*\"]\npublish = [\"*\"]\n\n[[tokens]]\ntoken = \"{READER}\"\n\
         principal = \"reader\"\nread = [\"*\"]\n"
    );
    std::fs::write(dir.path().join("rtbus.toml"), config).expect("config written");
    dir
}

async fn spawn(dir: &TempDir, listen: &str) -> Option<ServerProcess> {
    let path = dir.path().join("rtbus.toml");
    let path = path.to_str().expect("a UTF-8 temp path");
    ServerProcess::try_spawn(&["--config", path, "--listen", listen, "--log", "warn"]).await
}

/// Starts the server again on `addr`, retrying briefly while the old socket lets go of it.
async fn respawn(dir: &TempDir, addr: SocketAddr) -> ServerProcess {
    for _ in 0..50 {
        if let Some(server) = spawn(dir, &addr.to_string()).await {
            assert_eq!(server.addr(), addr);
            return server;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("rtbus-server could not listen on {addr} again");
}

async fn connect(addr: SocketAddr, token: &str) -> Client {
    let dial = Dial {
        token: Some(token),
        ..Dial::default()
    };
    Client::dial_addr(addr, dial).await.expect("handshake")
}

/// Publishes `counts[i]` events on `TOPICS[i]`, round robin, numbered from `from[i] + 1`.
async fn publish_rounds(publisher: &mut Client, from: [u64; 4], counts: [u64; 4]) {
    let rounds = counts.iter().copied().max().unwrap_or(0);
    let mut sent = 0;
    for round in 0..rounds {
        for (at, name) in TOPICS.iter().enumerate() {
            if round < counts[at] {
                let n = from[at] + round + 1;
                let id = format!("p{at}-{n}");
                publisher.send(&publish(&id, name, payload(name, n))).await;
                sent += 1;
            }
        }
    }
    for _ in 0..sent {
        let reply = publisher.recv().await;
        assert_eq!(reply.kind(), "published", "{reply:?}");
    }
}

/// What a client holds for one topic: the stream, the last `seq` and the folded state.
#[derive(Debug, Clone)]
struct View {
    epoch: Epoch,
    seq: u64,
    state: TopicSnapshot,
    /// How many of the events 1..=seq of `epoch` the state really holds: all of them after a
    /// snapshot, one more per event that follows in the same stream, and only the events of
    /// the stream since it changed when one of another stream was applied.
    held: u64,
}

/// A client that folds what it receives, like an application would, and counts what breaks
/// the protocol's promise.
struct Reader {
    client: Client,
    views: BTreeMap<String, View>,
    /// How each topic started on the latest subscribe.
    starts: BTreeMap<String, Start>,
    /// Events that did not follow the previous `seq` of the same stream.
    gaps: Vec<String>,
    /// Frames of another stream applied on top of a topic's state, or replays where none was
    /// promised.
    foreign: Vec<String>,
}

impl Reader {
    fn new(client: Client) -> Reader {
        Reader {
            client,
            views: BTreeMap::new(),
            starts: BTreeMap::new(),
            gaps: Vec::new(),
            foreign: Vec::new(),
        }
    }

    /// Subscribes to every topic, resuming those it has a view of; checks the ack.
    async fn subscribe(&mut self, id: &str) -> Vec<rtbus_protocol::SubscribedTopic> {
        let requests = TOPICS.iter().map(|name| match self.views.get(*name) {
            Some(view) => resume(name, &view.epoch, view.seq),
            None => SubscriptionRequest::new(topic(name)),
        });
        let message = subscribe_with(id, requests.collect::<Vec<_>>());
        self.client.send(&message).await;
        let entries = subscribed(&self.client.recv().await, id);
        assert_eq!(entries.len(), TOPICS.len(), "{entries:?}");
        for entry in &entries {
            self.starts.insert(entry.topic.to_string(), entry.start);
            // What a client does on `reset`: discard the state, wait for the snapshot.
            if entry.start == Start::Reset {
                self.views.remove(entry.topic.as_str());
            }
        }
        entries
    }

    fn apply(&mut self, message: &ServerMessage) {
        let data = delivery(message);
        let name = data.topic.to_string();
        if let ServerMessage::Snapshot { .. } = message {
            let state = TopicSnapshot::decode(&data.topic, &data.payload).expect("snapshot");
            let view = View {
                epoch: data.epoch.clone(),
                seq: data.seq.get(),
                state,
                held: data.seq.get(),
            };
            self.views.insert(name, view);
            return;
        }
        let Some(view) = self.views.get_mut(&name) else {
            self.foreign
                .push(format!("{name}: an event before any snapshot"));
            return;
        };
        if data.epoch != view.epoch {
            self.foreign.push(format!(
                "{name}: event of stream {} on {}",
                data.epoch, view.epoch
            ));
            view.held = 0;
        }
        view.held += 1;
        if data.is_replay && self.starts.get(&name) != Some(&Start::Resumed) {
            self.foreign
                .push(format!("{name}: replay without a resume"));
        }
        if data.seq.get() != view.seq + 1 {
            self.gaps
                .push(format!("{name}: {} after {}", data.seq.get(), view.seq));
        }
        let event = TopicEvent::decode(&data.topic, &data.payload).expect("event");
        view.state.fold(&event);
        view.seq = data.seq.get();
        view.epoch = data.epoch.clone();
    }

    /// Reads and applies frames until every topic's view has reached `seqs`.
    async fn read_until(&mut self, seqs: &BTreeMap<String, u64>) {
        for _ in 0..10_000 {
            let done = seqs
                .iter()
                .all(|(name, seq)| self.views.get(name).is_some_and(|v| v.seq >= *seq));
            if done {
                return;
            }
            let message = self.client.recv().await;
            self.apply(&message);
        }
        panic!("never reached {seqs:?}: {:?}", self.views);
    }
}

fn all_at(seqs: [u64; 4]) -> BTreeMap<String, u64> {
    TOPICS
        .iter()
        .zip(seqs)
        .map(|(name, seq)| ((*name).to_owned(), seq))
        .collect()
}

/// What a fresh subscriber of the running server sees: the truth every client must match.
async fn truth(addr: SocketAddr, seqs: [u64; 4]) -> BTreeMap<String, View> {
    let mut fresh = Reader::new(connect(addr, READER).await);
    fresh.subscribe("truth").await;
    fresh.read_until(&all_at(seqs)).await;
    fresh.views
}

/// Silent losses: events of the server's streams that a client believes it holds and does
/// not (it missed them and was not told), and topics whose state differs from the server's.
fn losses(reader: &Reader, truth: &BTreeMap<String, View>) -> (u64, Vec<String>) {
    let (mut events, mut why) = (0, reader.gaps.clone());
    for (name, right) in truth {
        let Some(view) = reader.views.get(name) else {
            why.push(format!("{name}: no state at all"));
            continue;
        };
        if view.seq == right.seq && view.held < view.seq {
            events += view.seq - view.held;
            why.push(format!(
                "{name}: holds {} of {} events",
                view.held, view.seq
            ));
        }
        if view.epoch != right.epoch || view.state.to_value() != right.state.to_value() {
            why.push(format!("{name}: holds {view:?}, the server {right:?}"));
        }
    }
    (events, why)
}

#[tokio::test]
async fn every_client_resuming_after_a_crash_continues_or_is_told_to_reload() {
    let dir = write_config("crash");
    let mut first = spawn(&dir, "127.0.0.1:0").await.expect("server starts");
    let addr = first.addr();

    // Before the crash: every client follows every topic and stops at its own seq.
    let mut readers = Vec::new();
    for at in 0..STOPS.len() {
        let mut reader = Reader::new(connect(addr, READER).await);
        reader.subscribe(&format!("s{at}")).await;
        reader.read_until(&all_at([0; 4])).await;
        readers.push(reader);
    }
    let mut publisher = connect(addr, PUBLISHER).await;
    publish_rounds(&mut publisher, [0; 4], [BEFORE; 4]).await;
    for (reader, stop) in readers.iter_mut().zip(STOPS) {
        reader.read_until(&all_at([stop; 4])).await;
        for view in reader.views.values() {
            assert_eq!(view.seq, stop, "{view:?}");
        }
    }
    let before: Vec<BTreeMap<String, View>> = readers.iter().map(|r| r.views.clone()).collect();

    first.kill_9();
    let second = respawn(&dir, addr).await;
    let mut publisher = connect(addr, PUBLISHER).await;
    publish_rounds(&mut publisher, [0; 4], AFTER).await;

    // Every client reconnects and resumes with what it last saw. Each topic must either
    // continue the client's stream (`resumed`, which a new process cannot honour) or tell the
    // client to reload (`reset`, then a snapshot of a new stream).
    let mut wrong = Vec::new();
    for (at, reader) in readers.iter_mut().enumerate() {
        reader.client = connect(addr, READER).await;
        let entries = reader.subscribe(&format!("r{at}")).await;
        for (entry, at_topic) in entries.iter().zip(0..) {
            let old = &before[at][entry.topic.as_str()];
            let fine = match entry.start {
                Start::Reset => entry.epoch != old.epoch,
                Start::Resumed => entry.epoch == old.epoch && entry.seq.get() >= old.seq,
                Start::Snapshot | Start::Live => false,
            };
            if !fine || entry.seq.get() != AFTER[at_topic] {
                wrong.push(format!("client {at}: {entry:?} after {old:?}"));
            }
        }
        reader.read_until(&all_at(AFTER)).await;
    }
    // Live events continue on the new stream.
    let next = AFTER.map(|n| n + 1);
    publish_rounds(&mut publisher, AFTER, [1; 4]).await;
    let truth = truth(addr, next).await;
    let (mut lost_events, mut lost) = (0, Vec::new());
    for (reader, before) in readers.iter_mut().zip(&before) {
        reader.read_until(&all_at(next)).await;
        let (events, why) = losses(reader, &truth);
        lost_events += events;
        lost.extend(why);
        wrong.extend(reader.foreign.iter().cloned());
        for (name, view) in &reader.views {
            if view.epoch == before[name].epoch {
                wrong.push(format!("{name}: still on the crashed process's stream"));
            }
        }
    }
    assert_eq!(
        lost_events, 0,
        "{lost_events} events silently lost: {lost:?}"
    );
    assert_eq!(lost, Vec::<String>::new());
    assert_eq!(wrong, Vec::<String>::new());
    drop(second);
}

#[tokio::test]
async fn a_client_that_reconnects_to_the_same_process_gets_every_missed_event() {
    let dir = write_config("reconnect");
    let server = spawn(&dir, "127.0.0.1:0").await.expect("server starts");
    let addr = server.addr();
    let mut publisher = connect(addr, PUBLISHER).await;
    publish_rounds(&mut publisher, [0; 4], [5; 4]).await;

    let mut reader = Reader::new(connect(addr, READER).await);
    reader.subscribe("s").await;
    reader.read_until(&all_at([5; 4])).await;
    publish_rounds(&mut publisher, [5; 4], [10; 4]).await;
    // Read part of what was sent, then lose the connection with the rest unread.
    reader.read_until(&all_at([8; 4])).await;
    let seen: Vec<u64> = reader.views.values().map(|v| v.seq).collect();
    reader.client = connect(addr, READER).await;
    publish_rounds(&mut publisher, [15; 4], [3; 4]).await;

    let entries = reader.subscribe("r").await;
    for (entry, last) in entries.iter().zip(&seen) {
        assert_eq!(
            (entry.start, entry.seq.get()),
            (Start::Resumed, 18),
            "{entry:?}"
        );
        assert_eq!(entry.epoch, reader.views[entry.topic.as_str()].epoch);
        // The replay: every event after the last one seen, in order, marked as replays.
        for seq in last + 1..=18 {
            let message = reader.client.recv().await;
            assert_eq!(event_on(&message, entry.topic.as_str()), (seq, true));
            reader.apply(&message);
        }
    }
    publish_rounds(&mut publisher, [18; 4], [2; 4]).await;
    let truth = truth(addr, [20; 4]).await;
    reader.read_until(&all_at([20; 4])).await;
    assert!(reader.foreign.is_empty(), "{:?}", reader.foreign);
    assert_eq!(losses(&reader, &truth), (0, Vec::new()));
    drop(server);
}
