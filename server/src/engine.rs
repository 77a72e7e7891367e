//! The engine: who names each topic's stream (its epoch), assigns its `seq`, keeps its history
//! and snapshot, and brings every published event to the node's hub. Two engines sit behind one
//! seam, [`Engine`]:
//!
//! - **memory** (the default): the node's own [`Hub`] is the engine; a publish appends to the
//!   topic's log and fans out under the topic's lock, in one synchronous step (today's path,
//!   nothing added).
//! - **Redis** (`redis_url`): several nodes share one Redis, so one numbering and one epoch per
//!   topic across all of them, and a client resumes on whichever node it reconnects to.
//!
//! # The Redis engine
//!
//! Per topic, under a configurable key prefix `P` (default `rtbus:`), hash-tagged by topic so a
//! topic's keys share a cluster slot:
//!
//! - `P{topic}:meta`, a hash: `epoch`, `seq` and `snapshot` (the family's snapshot at `seq`,
//!   as JSON: the fold is Rust code in the protocol crate, so Redis keeps the folded result and
//!   never folds itself);
//! - `P{topic}:stream`, a stream of the latest `history_per_topic` events with explicit ids
//!   `<seq>-0`, the time the publishing node stamped in field `t` and the payload in field `p`;
//! - the channel `P{topic}`, on which each event is published once as
//!   `<epoch> <seq> <emittedAt>\n<payload>`.
//!
//! The publishing node stamps each event once (`emittedAt`, RFC 3339 in UTC) and Redis carries
//! that stamp in the stream entry and the channel message, so every node sends the same frame
//! for one event (same epoch, `seq`, `emittedAt` and payload), and a replay, from any node's
//! replica or from the stream, equals the live frame but for `isReplay`. Both parsers are
//! strict, and a payload must fit the topic's family; what does not is an error, never a
//! guess. A channel message reloads the topic from Redis (its local subscribers are closed with
//! 4013 and resume); a stream entry fails the load that read it (the subscribe is answered
//! `unavailable`, a replica it was to replace is dropped and its subscribers closed with 4013)
//! or, read for a resume's backfill, makes that resume a `reset`.
//!
//! **Publish** is one optimistic compare-and-set script: the node sends the epoch and `seq` it
//! expects the topic at, the next `seq`, the snapshot it folded from the expected one and the
//! event, and a fresh epoch to use if the topic has no meta. The script either finds the
//! expectation true (or the topic absent and nothing expected), then writes meta, `XADD`s with
//! `MAXLEN` and `PUBLISH`es, all atomically; or answers `conflict` with the topic's current
//! epoch, `seq` and snapshot, on which the node folds again and retries (each round some
//! publisher wins, so contention slows a publish but never loses one; after
//! [`MAX_ROUNDS`] it is refused with `unavailable`). A node expects what its last publish or
//! conflict on the topic told it, else what its replica holds.
//!
//! **Follow**: the first local subscribe of a topic `SUBSCRIBE`s its channel, waits for the
//! confirmation, then runs the state script (epoch, `seq`, snapshot and the stream's tail;
//! it creates the meta with a fresh epoch when there is none, so even a topic nobody published
//! on has one epoch on every node). Channel messages that arrive meanwhile are held; those with
//! a `seq` the state already covers are dropped, the rest appended in order. The result is a
//! [`TopicLog`] replica in the hub, and from there subscribe, resume, replay and the handover
//! to live events are the hub's own code under the topic's lock: every node delivers in the
//! one order Redis published in, with no gap and no duplicate. A message that skips `seq`s is
//! filled from the stream (`XRANGE`); one the stream no longer covers, or one of another epoch
//! (the topic was lost and started again), reloads the replica and ends its local subscribers
//! with `engineUnavailable` (4013) so they resume. Delivery to local subscribers comes from the
//! channel only, the node's own publishes included.
//!
//! **Resume**: a replica starts with the stream's tail (up to `history_per_topic`, what the
//! stream keeps), so a node that starts following a topic after its events resumes a client
//! from them. A replica's history may be shorter than the stream's later, when the node
//! shortens histories to stay under `max_history_bytes`. A resume with the replica's epoch that
//! its history no longer reaches is then backfilled before it attaches: the range script reads
//! the missing events (after the resume point, up to the replica's `seq`) with `XRANGE`,
//! together with a check that the topic is still at that epoch. The hub decides under the
//! topic's lock, as for any subscribe: when the backfill and the history together cover every
//! event after the resume point (the backfill runs from it to at least the history's start),
//! the client is `resumed` with the backfill's events up to where the history starts, then the
//! history's, then live events; whatever the replica received meanwhile is in its history, so
//! the handover has no gap or duplicate. Otherwise (the stream was trimmed too, or events kept
//! arriving until even the history the check saw was shortened away) it is `reset`. The
//! backfill is one round trip, only for such resumes, and goes to that client alone: the
//! replica does not grow.
//!
//! **Unfollow**: a replica without local subscribers for `follow_linger` (5 s) is dropped and
//! its channel `UNSUBSCRIBE`d, so a node listens only to topics it serves; the linger spares a
//! client that reconnects at once the unsubscribe and the reload. A subscribe that finds the
//! replica dropped between its follow and its attach follows again (at most
//! [`FOLLOW_ATTEMPTS`] times).
//!
//! **Losing Redis**: when the connection fails (or a ping every second goes unanswered),
//! `/healthz` answers 503 with the reason, a publish is refused with `unavailable` (retry; but
//! one whose script call was sent and whose answer was lost, [`PublishError::Uncertain`], may
//! have been applied, and its message tells the client to resume and look before publishing
//! again), a subscribe too, every local subscriber of a replica is closed with 4013 (messages
//! may have been missed meanwhile), and the node reconnects with backoff (100 ms doubling to
//! 2 s). When
//! Redis lost its data (a restart without persistence, `FLUSHALL`: a generation key the nodes
//! check every second is gone), every replica is dropped the same way; a topic's meta lost
//! alone (eviction) shows at the next publish or follow, which starts it under a new epoch.
//! Either way a client resuming from before is answered `reset` and reloads.
//!
//! # Cost per publish
//!
//! One round trip from the publishing node: one `EVALSHA` that runs `HMGET`, `HSET`, `XADD …
//! MAXLEN` and `PUBLISH` (plus one more round trip per conflict, which a node publishing alone
//! on a topic does not have once it has published there). Redis then sends one message per node
//! subscribed to the channel, whatever the number of subscribers on each node; each node folds
//! the event into its replica and frames it once for all its local subscribers
//! (`server/tests/cluster.rs` counts it in `INFO commandstats`: the same commands, one
//! `EVALSHA`, per publish with 1 and with 50 subscribers on a node). The script carries the
//! whole snapshot, so a publish costs in proportion to the topic's snapshot.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt as _, StreamExt};
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use redis::{AsyncConnectionConfig, RedisError};
use rtbus_protocol::catalog::{Family, TopicEvent, TopicSnapshot};
use rtbus_protocol::{Epoch, RequestId, Seq, Timestamp, Topic};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::timeout;

use crate::config::Config;
use crate::error::Error;
use crate::hub::{Delivered, Hub, TopicCell, Want, next_epoch};
use crate::log::{Entry, Resume, SeqExhausted, TopicLog};
use crate::outbox::{Dirty, Outbox};

/// Most compare-and-set rounds one publish takes before it is refused as contended.
pub(crate) const MAX_ROUNDS: usize = 32;
/// Most times a subscribe follows its topics when a replica is dropped before it attaches.
const FOLLOW_ATTEMPTS: usize = 3;
/// Most channel messages applied before the subscribers' outboxes are written.
const BATCH_MESSAGES: usize = 64;
/// How long one Redis request may take before the engine counts Redis as unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the engine checks that Redis answers and still holds its data.
const CHECK_EVERY: Duration = Duration::from_secs(1);
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Where topics live: the node's memory or a Redis shared by several nodes.
#[derive(Debug)]
pub(crate) struct Engine {
    hub: Arc<Hub>,
    redis: Option<Arc<RedisEngine>>,
}

/// Why a publish was not carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublishError {
    /// The topic's `seq` reached 2^53−1.
    Exhausted,
    /// The engine cannot reach its storage (or gave up on contention): nothing was published;
    /// retry.
    Unavailable(String),
    /// The request reached the storage but no answer came back (the connection failed or the
    /// answer was late): the event may or may not have been published. Only a look at the
    /// topic tells (a resume from the last `seq` seen replays it if it was).
    Uncertain(String),
    /// The storage holds something that is not a valid state of the topic.
    Corrupt(String),
}

impl Engine {
    /// The engine `config` asks for, over `hub` (a replica hub when it is Redis).
    pub fn new(config: &Config, counters: Arc<crate::stats::Counters>) -> Result<Engine, Error> {
        let Some(url) = &config.redis_url else {
            return Ok(Engine {
                hub: Arc::new(Hub::new(&config.limits, counters)),
                redis: None,
            });
        };
        let client = redis::Client::open(url.as_str()).map_err(|err| {
            Error::Config(format!(
                "redis_url: {err}; expected redis://HOST:PORT (or redis://HOST:PORT/DB)"
            ))
        })?;
        let hub = Arc::new(Hub::replicas(&config.limits, counters));
        let (commands, receiver) = mpsc::unbounded_channel();
        let redis = RedisEngine {
            hub: Arc::clone(&hub),
            client,
            prefix: config.redis_key_prefix.clone(),
            history_limit: config.limits.history_per_topic,
            link: Mutex::new(Link::Down("not connected to Redis yet".to_owned())),
            commands,
            receiver: Mutex::new(Some(receiver)),
            expected: Mutex::new(HashMap::new()),
            idle_timeout: config.limits.topic_idle_timeout,
            publish_script: redis::Script::new(PUBLISH_SCRIPT),
            state_script: redis::Script::new(STATE_SCRIPT),
            range_script: redis::Script::new(RANGE_SCRIPT),
        };
        Ok(Engine {
            hub,
            redis: Some(Arc::new(redis)),
        })
    }

    /// The node's hub (the memory engine itself, or the Redis engine's replicas).
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Starts the engine's background work (the Redis connection), until `shutdown`.
    pub fn start(&self, shutdown: watch::Receiver<bool>) {
        if let Some(redis) = &self.redis {
            tokio::spawn(Arc::clone(redis).run(shutdown));
        }
    }

    /// Whether the engine can serve: `Err` says why not.
    pub fn health(&self) -> Result<(), String> {
        match &self.redis {
            None => Ok(()),
            Some(redis) => match &*lock(&redis.link) {
                Link::Up(_) => Ok(()),
                Link::Down(why) => Err(why.clone()),
            },
        }
    }

    /// Publishes `event` (whose JSON is `payload`) on `topic`; returns its epoch and `seq`.
    /// With the memory engine it is fanned out before this returns; with Redis it reaches this
    /// node's subscribers, like every node's, from the topic's channel.
    pub async fn publish(
        &self,
        topic: &Topic,
        family: Family,
        event: &TopicEvent,
        payload: Value,
        dirty: &mut Dirty,
    ) -> Result<(Epoch, Seq), PublishError> {
        match &self.redis {
            None => self
                .hub
                .publish(topic, family, event, payload, dirty)
                .map_err(|SeqExhausted| PublishError::Exhausted),
            Some(redis) => redis.publish(topic, family, event, &payload).await,
        }
    }

    /// Subscribes connection `conn` to `wants` as [`Hub::subscribe`] does; with Redis, after
    /// making sure this node follows every topic of them. `Err` says why nothing was
    /// subscribed.
    pub async fn subscribe(
        &self,
        id: Option<RequestId>,
        wants: &[Want],
        conn: u64,
        outbox: &Arc<Outbox>,
    ) -> Result<Vec<Arc<TopicCell>>, String> {
        let Some(redis) = &self.redis else {
            return Ok(self.hub.subscribe(id, wants, conn, outbox));
        };
        let mut dropped = None;
        for _ in 0..FOLLOW_ATTEMPTS {
            let follows = wants.iter().map(|want| redis.follow(&want.topic));
            for result in futures_util::future::join_all(follows).await {
                result?;
            }
            let mut wants = wants.to_vec();
            for want in &mut wants {
                let Some(resume) = want.ask.resume.as_mut() else {
                    continue;
                };
                if let Some(upto) = self.hub.needs_backfill(&want.topic, resume) {
                    resume.backfill = redis.backfill(&want.topic, resume, upto).await?;
                }
            }
            match self
                .hub
                .subscribe_replicas(id.clone(), &wants, conn, outbox)
            {
                Ok(cells) => return Ok(cells),
                // Dropped since it was followed (Redis was lost, or the linger ended): again.
                Err(topic) => dropped = Some(topic),
            }
        }
        let topic = dropped.map_or_else(String::new, |topic| topic.to_string());
        Err(format!(
            "the node's copy of {topic} was dropped {FOLLOW_ATTEMPTS} times before the \
             subscription could attach (Redis was lost meanwhile?); retry"
        ))
    }

    /// Forgets idle topics (see [`Hub::sweep`]); with Redis, stops following them. Returns how
    /// many.
    pub fn sweep(&self) -> usize {
        let forgotten = self.hub.sweep();
        if let Some(redis) = &self.redis {
            // What a publish expects is only a guess that saves a round trip; forgetting the
            // guesses unused for `topic_idle_timeout` bounds their memory.
            let now = Instant::now();
            lock(&redis.expected)
                .retain(|_, (_, used)| now.saturating_duration_since(*used) < redis.idle_timeout);
            for topic in &forgotten {
                let _ = redis.commands.send(Command::Unfollow(topic.clone()));
            }
        }
        forgotten.len()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its value consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The publish script. KEYS: meta, stream. ARGV: expected epoch (empty: none), expected `seq`,
/// a fresh epoch, the next `seq`, the snapshot at it (JSON), the event's payload (JSON), the
/// history length, the channel, the event's `emittedAt`.
const PUBLISH_SCRIPT: &str = r"
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'seq', 'snapshot')
local epoch = meta[1]
if not epoch then
  redis.call('DEL', KEYS[2])
  if ARGV[1] ~= '' or ARGV[2] ~= '0' then
    return {'conflict', '', '0', ''}
  end
  epoch = ARGV[3]
elseif epoch ~= ARGV[1] or meta[2] ~= ARGV[2] then
  return {'conflict', epoch, meta[2], meta[3] or ''}
end
redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', ARGV[4], 'snapshot', ARGV[5])
if ARGV[7] ~= '0' then
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[7], ARGV[4] .. '-0', 't', ARGV[9], 'p', ARGV[6])
end
redis.call('PUBLISH', ARGV[8], epoch .. ' ' .. ARGV[4] .. ' ' .. ARGV[9] .. '\n' .. ARGV[6])
return {'ok', epoch, ARGV[4]}
";

/// The state script. KEYS: meta, stream. ARGV: a fresh epoch (used when the topic has no
/// meta), how many of the latest events to return. Returns epoch, `seq`, snapshot (JSON, empty
/// at `seq` 0) and the events newest first.
const STATE_SCRIPT: &str = r"
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'seq', 'snapshot')
if not meta[1] then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'seq', '0', 'snapshot', '')
  return {ARGV[1], '0', '', {}}
end
local tail = {}
if ARGV[2] ~= '0' then
  tail = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[2])
end
return {meta[1], meta[2], meta[3] or '', tail}
";

/// The range script. KEYS: meta, stream. ARGV: an epoch, the first and the last `seq` wanted.
/// Returns the stream's entries in that range, oldest first, if the topic is still at that
/// epoch (else nothing): read together, so the entries belong to that epoch's stream.
const RANGE_SCRIPT: &str = r"
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then
  return {}
end
return redis.call('XRANGE', KEYS[2], ARGV[2] .. '-0', ARGV[3] .. '-0')
";

/// The generation key's value is this node's guess at the data set Redis holds: gone or
/// changed means Redis lost (or was emptied of) everything.
const GENERATION_KEY: &str = "generation";

/// The Redis engine: the connection task's inbox, the link state and what publishes expect.
pub(crate) struct RedisEngine {
    hub: Arc<Hub>,
    client: redis::Client,
    prefix: String,
    history_limit: usize,
    link: Mutex<Link>,
    commands: mpsc::UnboundedSender<Command>,
    /// Taken by the connection task when it starts.
    receiver: Mutex<Option<mpsc::UnboundedReceiver<Command>>>,
    /// Per topic, where this node's last publish or conflict saw it, and when.
    expected: Mutex<HashMap<Topic, (Expect, Instant)>>,
    /// How long an entry of `expected` is kept unused.
    idle_timeout: Duration,
    publish_script: redis::Script,
    state_script: redis::Script,
    range_script: redis::Script,
}

impl std::fmt::Debug for RedisEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisEngine")
            .field("prefix", &self.prefix)
            .field("history_limit", &self.history_limit)
            .finish_non_exhaustive()
    }
}

/// Whether Redis is reachable: the connection publishes use, or why there is none.
enum Link {
    Up(MultiplexedConnection),
    Down(String),
}

/// Where a topic is expected to stand (`epoch` `None`: the topic has no meta).
#[derive(Debug, Clone)]
struct Expect {
    epoch: Option<Epoch>,
    seq: Seq,
    snapshot: TopicSnapshot,
}

/// What the connection task is asked to do.
enum Command {
    /// Follow a topic (if not yet) and answer once its replica is installed.
    Follow(Topic, oneshot::Sender<Result<(), String>>),
    /// Stop following a topic the hub forgot (unless it is in use again).
    Unfollow(Topic),
}

/// One event as the channel carries it: its stream's epoch, the entry, and the entry's
/// payload decoded (it fits the topic's family).
#[derive(Debug)]
struct Incoming {
    epoch: Epoch,
    entry: Entry,
    event: TopicEvent,
}

/// A topic's state as the state script returns it.
struct Loaded {
    epoch: Epoch,
    seq: Seq,
    snapshot: TopicSnapshot,
    /// Oldest first.
    history: Vec<Entry>,
}

/// A follow under way: messages that arrived meanwhile, and who waits for it.
#[derive(Default)]
struct Loading {
    held: Vec<Incoming>,
    /// A message that was not an event arrived meanwhile: what was loaded may miss it, so the
    /// load is done again.
    stale: bool,
    waiters: Vec<oneshot::Sender<Result<(), String>>>,
}

type Load = Pin<Box<dyn Future<Output = (Topic, Result<Loaded, String>)> + Send>>;

/// One connection to Redis: commands, pub/sub, and the state of the topics followed on it.
struct Session {
    conn: MultiplexedConnection,
    sink: PubSubSink,
    stream: PubSubStream,
    generation: String,
    /// Channels subscribed, by topic.
    subscribed: HashSet<Topic>,
    loading: HashMap<Topic, Loading>,
    loads: FuturesUnordered<Load>,
}

fn unavailable(err: &RedisError) -> String {
    format!("Redis is unreachable: {err}")
}

impl RedisEngine {
    fn meta_key(&self, topic: &Topic) -> String {
        format!("{}{{{topic}}}:meta", self.prefix)
    }

    fn stream_key(&self, topic: &Topic) -> String {
        format!("{}{{{topic}}}:stream", self.prefix)
    }

    fn channel(&self, topic: &Topic) -> String {
        format!("{}{{{topic}}}", self.prefix)
    }

    /// The topic a channel name names, if it is one of this engine's.
    fn topic_of(&self, channel: &str) -> Option<Topic> {
        let name = channel
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix('{')?
            .strip_suffix('}')?;
        Topic::new(name).ok()
    }

    fn connection(&self) -> Result<MultiplexedConnection, PublishError> {
        match &*lock(&self.link) {
            Link::Up(conn) => Ok(conn.clone()),
            Link::Down(why) => Err(PublishError::Unavailable(why.clone())),
        }
    }

    fn set_down(&self, why: String) {
        *lock(&self.link) = Link::Down(why);
    }

    async fn publish(
        &self,
        topic: &Topic,
        family: Family,
        event: &TopicEvent,
        payload: &Value,
    ) -> Result<(Epoch, Seq), PublishError> {
        let mut conn = self.connection()?;
        let payload = payload.to_string();
        // Stamped once, here: every node's frame of the event, and every replay, carries it.
        let emitted_at = Timestamp::now();
        let cached = lock(&self.expected)
            .get(topic)
            .map(|(expect, _)| expect.clone());
        let mut expect = cached
            .or_else(|| {
                self.hub
                    .replica_state(topic)
                    .map(|(epoch, seq, snapshot)| Expect {
                        epoch: Some(epoch),
                        seq,
                        snapshot,
                    })
            })
            .unwrap_or_else(|| Expect {
                epoch: None,
                seq: Seq::ZERO,
                snapshot: TopicSnapshot::empty(family),
            });
        let history = self.history_limit.to_string();
        for _ in 0..MAX_ROUNDS {
            let seq = expect.seq.next().ok_or(PublishError::Exhausted)?;
            let mut snapshot = expect.snapshot.clone();
            snapshot.fold(event);
            let mut invocation = self.publish_script.prepare_invoke();
            invocation
                .key(self.meta_key(topic))
                .key(self.stream_key(topic))
                .arg(expect.epoch.as_ref().map_or("", Epoch::as_str))
                .arg(expect.seq.get())
                .arg(next_epoch().as_str())
                .arg(seq.get())
                .arg(snapshot.to_value().to_string())
                .arg(&payload)
                .arg(&history)
                .arg(self.channel(topic))
                .arg(emitted_at.as_str());
            let reply: Vec<String> =
                match timeout(REQUEST_TIMEOUT, invocation.invoke_async(&mut conn)).await {
                    Ok(Ok(reply)) => reply,
                    // Sent, perhaps carried out: the answer is what was lost.
                    Ok(Err(err)) if !err.is_timeout() => {
                        return Err(PublishError::Uncertain(unavailable(&err)));
                    }
                    Ok(Err(_)) | Err(_) => {
                        return Err(PublishError::Uncertain(format!(
                            "Redis did not answer within {} ms",
                            REQUEST_TIMEOUT.as_millis()
                        )));
                    }
                };
            match reply.as_slice() {
                [status, epoch, _] if status == "ok" => {
                    let epoch = parse_epoch(topic, epoch)?;
                    let expect = Expect {
                        epoch: Some(epoch.clone()),
                        seq,
                        snapshot,
                    };
                    lock(&self.expected).insert(topic.clone(), (expect, Instant::now()));
                    return Ok((epoch, seq));
                }
                [status, epoch, seq, snapshot] if status == "conflict" => {
                    expect = Expect {
                        epoch: (!epoch.is_empty())
                            .then(|| parse_epoch(topic, epoch))
                            .transpose()?,
                        seq: parse_seq(topic, seq)?,
                        snapshot: parse_snapshot(topic, family, snapshot)?,
                    };
                }
                other => {
                    return Err(PublishError::Corrupt(format!(
                        "the publish script answered {other:?}"
                    )));
                }
            }
        }
        Err(PublishError::Unavailable(format!(
            "{topic} changed under {MAX_ROUNDS} publish attempts in a row (contention); retry"
        )))
    }

    /// The events of `resume.epoch` after `resume.after` up to `upto` that the topic's stream
    /// in Redis still holds, for a resume the replica's history no longer covers (it was
    /// shortened to bound the node's memory). Empty when the stream does not hold them all
    /// (the resume is then `reset`), or holds something that is not an event of the topic
    /// (logged). `Err` when Redis cannot be asked.
    async fn backfill(
        &self,
        topic: &Topic,
        resume: &Resume,
        upto: Seq,
    ) -> Result<Vec<Entry>, String> {
        let Some(from) = resume.after.next() else {
            return Ok(Vec::new());
        };
        let mut conn = self.connection().map_err(|e| describe(&e))?;
        let mut invocation = self.range_script.prepare_invoke();
        invocation
            .key(self.meta_key(topic))
            .key(self.stream_key(topic))
            .arg(resume.epoch.as_str())
            .arg(from.get())
            .arg(upto.get());
        let entries: Vec<(String, Vec<String>)> =
            timeout(REQUEST_TIMEOUT, invocation.invoke_async(&mut conn))
                .await
                .map_err(|_| "Redis did not answer in time".to_owned())?
                .map_err(|err| unavailable(&err))?;
        let parsed: Result<Vec<Entry>, String> = entries
            .iter()
            .map(|(id, fields)| {
                let entry = parse_entry(topic, id, fields)?;
                check_event(topic, &entry)?;
                Ok(entry)
            })
            .collect();
        match parsed {
            Ok(entries) => Ok(entries),
            Err(why) => {
                tracing::warn!(%topic, %why, "the topic's stream holds an invalid entry");
                Ok(Vec::new())
            }
        }
    }

    /// Makes sure this node follows `topic` (its replica is installed); `Err` says why not.
    async fn follow(&self, topic: &Topic) -> Result<(), String> {
        if let Err(PublishError::Unavailable(why)) = self.connection().map(drop) {
            return Err(why);
        }
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Follow(topic.clone(), tx))
            .map_err(|_| "the Redis engine has stopped".to_owned())?;
        rx.await
            .unwrap_or_else(|_| Err("the Redis engine has stopped".to_owned()))
    }

    /// The connection task: connects, serves a session until it fails, drops every replica,
    /// and reconnects with backoff, until `shutdown`.
    async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let Some(mut commands) = lock(&self.receiver).take() else {
            return;
        };
        let mut backoff = MIN_BACKOFF;
        loop {
            let connected = tokio::select! {
                _ = shutdown.changed() => return,
                connected = timeout(REQUEST_TIMEOUT * 2, self.connect()) => connected,
            };
            let why = match connected {
                Ok(Ok(session)) => {
                    backoff = MIN_BACKOFF;
                    tracing::info!("connected to Redis");
                    *lock(&self.link) = Link::Up(session.conn.clone());
                    let why = tokio::select! {
                        _ = shutdown.changed() => return,
                        why = self.serve(session, &mut commands) => why,
                    };
                    self.set_down(why.clone());
                    lock(&self.expected).clear();
                    let ended = self
                        .hub
                        .drop_replicas("the node lost its connection to Redis");
                    tracing::warn!(%why, ended, "lost Redis; subscribers closed with 4013");
                    why
                }
                Ok(Err(err)) => unavailable(&err),
                Err(_) => "Redis did not answer in time".to_owned(),
            };
            self.set_down(why.clone());
            tracing::debug!(%why, ?backoff, "Redis unreachable; retrying");
            let wake = tokio::time::sleep(backoff);
            tokio::pin!(wake);
            loop {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    () = &mut wake => break,
                    command = commands.recv() => match command {
                        Some(Command::Follow(_, reply)) => {
                            let _ = reply.send(Err(why.clone()));
                        }
                        Some(Command::Unfollow(_)) => {}
                        None => return,
                    },
                }
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn connect(&self) -> Result<Session, RedisError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(REQUEST_TIMEOUT)
            .set_response_timeout(REQUEST_TIMEOUT);
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let (sink, stream) = self.client.get_async_pubsub().await?.split();
        let generation = self.generation(&mut conn).await?;
        Ok(Session {
            conn,
            sink,
            stream,
            generation,
            subscribed: HashSet::new(),
            loading: HashMap::new(),
            loads: FuturesUnordered::new(),
        })
    }

    /// The data set's generation: set by the first node to find none.
    async fn generation(&self, conn: &mut MultiplexedConnection) -> Result<String, RedisError> {
        let key = format!("{}{GENERATION_KEY}", self.prefix);
        let _: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(next_epoch().as_str())
            .arg("NX")
            .query_async(conn)
            .await?;
        let value: Option<String> = redis::cmd("GET").arg(&key).query_async(conn).await?;
        Ok(value.unwrap_or_default())
    }

    /// Serves one connection until it fails; returns why.
    async fn serve(
        &self,
        mut session: Session,
        commands: &mut mpsc::UnboundedReceiver<Command>,
    ) -> String {
        let mut checks = tokio::time::interval(CHECK_EVERY);
        checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Follow(topic, reply)) => self.on_follow(&mut session, topic, reply),
                    Some(Command::Unfollow(topic)) => {
                        if let Err(err) = self.on_unfollow(&mut session, topic).await {
                            return unavailable(&err);
                        }
                    }
                    None => return "the engine stopped".to_owned(),
                },
                message = session.stream.next() => match message {
                    Some(message) => {
                        // The messages already received go out together: every subscriber's
                        // outbox is written once for all of them (as a publishing connection
                        // writes once per batch of requests), not once per event.
                        let mut dirty = Dirty::default();
                        if let Err(err) = self.on_message(&mut session, &message, &mut dirty).await {
                            return unavailable(&err);
                        }
                        for _ in 1..BATCH_MESSAGES {
                            let Some(next) = session.stream.next().now_or_never() else {
                                break;
                            };
                            let Some(message) = next else {
                                return "the Redis pub/sub connection closed".to_owned();
                            };
                            if let Err(err) =
                                self.on_message(&mut session, &message, &mut dirty).await
                            {
                                return unavailable(&err);
                            }
                        }
                        dirty.flush();
                    }
                    None => return "the Redis pub/sub connection closed".to_owned(),
                },
                Some((topic, loaded)) = session.loads.next(), if !session.loads.is_empty() => {
                    if let Err(err) = self.on_loaded(&mut session, topic, loaded).await {
                        return unavailable(&err);
                    }
                }
                _ = checks.tick() => {
                    if let Err(why) = self.check(&mut session).await {
                        return why;
                    }
                }
            }
        }
    }

    /// Pings both connections and compares the data set's generation.
    async fn check(&self, session: &mut Session) -> Result<(), String> {
        let late = || "Redis did not answer a ping in time".to_owned();
        // A subscribed connection answers a ping with `["pong", ""]`; any answer will do.
        let pong: Result<redis::Value, RedisError> = timeout(REQUEST_TIMEOUT, session.sink.ping())
            .await
            .map_err(|_| late())?;
        pong.map_err(|err| unavailable(&err))?;
        let generation = timeout(REQUEST_TIMEOUT, self.generation(&mut session.conn))
            .await
            .map_err(|_| late())?
            .map_err(|err| unavailable(&err))?;
        if generation != session.generation {
            session.generation = generation;
            lock(&self.expected).clear();
            let ended = self
                .hub
                .drop_replicas("Redis lost the topics' data (restart or flush)");
            tracing::warn!(ended, "Redis lost its data; every replica dropped");
        }
        Ok(())
    }

    fn on_follow(
        &self,
        session: &mut Session,
        topic: Topic,
        reply: oneshot::Sender<Result<(), String>>,
    ) {
        if let Some(loading) = session.loading.get_mut(&topic) {
            loading.waiters.push(reply);
            return;
        }
        if session.subscribed.contains(&topic) && self.hub.replica(&topic).is_some() {
            // A subscribe attaches next: the linger starts again, so no sweep drops it first.
            self.hub.touch(&topic);
            let _ = reply.send(Ok(()));
            return;
        }
        self.load(session, topic, Some(reply));
    }

    /// Starts loading `topic`'s state (subscribing first when not yet), holding its messages
    /// until then.
    fn load(
        &self,
        session: &mut Session,
        topic: Topic,
        reply: Option<oneshot::Sender<Result<(), String>>>,
    ) {
        let loading = session.loading.entry(topic.clone()).or_default();
        loading.waiters.extend(reply);
        let subscribe = session.subscribed.insert(topic.clone());
        let mut sink = session.sink.clone();
        let mut conn = session.conn.clone();
        let channel = self.channel(&topic);
        let script = self.state_script.clone();
        let keys = [self.meta_key(&topic), self.stream_key(&topic)];
        let fresh = next_epoch();
        let count = self.history_limit;
        let load = async move {
            let result = async {
                if subscribe {
                    timeout(REQUEST_TIMEOUT, sink.subscribe(&channel))
                        .await
                        .map_err(|_| "Redis did not confirm a SUBSCRIBE in time".to_owned())?
                        .map_err(|err| unavailable(&err))?;
                }
                let mut invocation = script.prepare_invoke();
                invocation
                    .key(&keys[0])
                    .key(&keys[1])
                    .arg(fresh.as_str())
                    .arg(count);
                let state: (String, String, String, Vec<(String, Vec<String>)>) =
                    timeout(REQUEST_TIMEOUT, invocation.invoke_async(&mut conn))
                        .await
                        .map_err(|_| "Redis did not answer in time".to_owned())?
                        .map_err(|err| unavailable(&err))?;
                Ok(state)
            }
            .await;
            (topic, result)
        };
        let topic_for = load;
        session.loads.push(Box::pin(async move {
            let (topic, result) = topic_for.await;
            let loaded = result.and_then(|(epoch, seq, snapshot, tail)| {
                let family = Family::of(&topic).map_err(|err| err.to_string())?;
                let mut history = Vec::with_capacity(tail.len());
                for (id, fields) in tail.into_iter().rev() {
                    let entry = parse_entry(&topic, &id, &fields)?;
                    check_event(&topic, &entry)?;
                    history.push(entry);
                }
                Ok(Loaded {
                    epoch: parse_epoch(&topic, &epoch).map_err(|e| describe(&e))?,
                    seq: parse_seq(&topic, &seq).map_err(|e| describe(&e))?,
                    snapshot: parse_snapshot(&topic, family, &snapshot)
                        .map_err(|e| describe(&e))?,
                    history,
                })
            });
            (topic, loaded)
        }));
    }

    /// A load finished: continue its log with the messages held meanwhile and install it.
    async fn on_loaded(
        &self,
        session: &mut Session,
        topic: Topic,
        loaded: Result<Loaded, String>,
    ) -> Result<(), RedisError> {
        let Some(loading) = session.loading.remove(&topic) else {
            return Ok(());
        };
        let loaded = match loaded {
            Ok(loaded) if !loading.stale => loaded,
            Ok(_) => {
                // A message that was not an event came meanwhile: read the state again.
                self.reload(session, &topic, loading.waiters);
                return Ok(());
            }
            Err(why) => return self.fail_load(session, &topic, loading.waiters, why).await,
        };
        let mut log = TopicLog::restore(
            topic.clone(),
            loaded.epoch,
            loaded.seq,
            loaded.snapshot,
            loaded.history,
            self.history_limit,
        );
        for Incoming {
            epoch,
            entry,
            event,
        } in loading.held
        {
            if &epoch != log.epoch() || entry.seq > log.seq().next().unwrap_or(log.seq()) {
                // The topic changed streams, or skipped, after the state was read: read again.
                tracing::debug!(%topic, "the topic moved on while it was loaded; reloading");
                self.reload(session, &topic, loading.waiters);
                return Ok(());
            }
            if entry.seq <= log.seq() {
                continue;
            }
            let _ = log.append(&event, entry.payload, entry.emitted_at, |_| ());
        }
        let ended = self.hub.install(&topic, log);
        if ended > 0 {
            tracing::info!(%topic, ended, "replica reloaded; its subscribers resume");
        }
        for waiter in loading.waiters {
            let _ = waiter.send(Ok(()));
        }
        Ok(())
    }

    /// Loads `topic` again, for `waiters` too.
    fn reload(
        &self,
        session: &mut Session,
        topic: &Topic,
        waiters: Vec<oneshot::Sender<Result<(), String>>>,
    ) {
        self.load(session, topic.clone(), None);
        if let Some(again) = session.loading.get_mut(topic) {
            again.waiters.extend(waiters);
        }
    }

    /// A load failed (Redis did not answer, or holds something that is not a state of the
    /// topic): the waiters are told why, a replica the load was to replace is dropped (its
    /// subscribers end with 4013: the node cannot continue their stream), and the channel is
    /// left until someone follows the topic again.
    async fn fail_load(
        &self,
        session: &mut Session,
        topic: &Topic,
        waiters: Vec<oneshot::Sender<Result<(), String>>>,
        why: String,
    ) -> Result<(), RedisError> {
        tracing::warn!(%topic, %why, "cannot follow the topic");
        for waiter in waiters {
            let _ = waiter.send(Err(why.clone()));
        }
        self.hub
            .drop_replica(topic, "the topic could not be read from Redis");
        if session.subscribed.remove(topic) {
            session.sink.unsubscribe(self.channel(topic)).await?;
        }
        Ok(())
    }

    async fn on_unfollow(&self, session: &mut Session, topic: Topic) -> Result<(), RedisError> {
        if session.loading.contains_key(&topic) || self.hub.replica(&topic).is_some() {
            return Ok(());
        }
        if session.subscribed.remove(&topic) {
            session.sink.unsubscribe(self.channel(&topic)).await?;
        }
        Ok(())
    }

    async fn on_message(
        &self,
        session: &mut Session,
        message: &redis::Msg,
        dirty: &mut Dirty,
    ) -> Result<(), RedisError> {
        let Some(topic) = self.topic_of(message.get_channel_name()) else {
            return Ok(());
        };
        let incoming = match parse_message(&topic, message.get_payload_bytes()) {
            Ok(incoming) => incoming,
            Err(why) => {
                // What it stood for is unknown: read the topic again from Redis.
                tracing::warn!(%topic, %why, "a message on the topic's channel is not an event");
                match session.loading.get_mut(&topic) {
                    Some(loading) => loading.stale = true,
                    None if self.hub.replica(&topic).is_some() => {
                        self.load(session, topic, None);
                    }
                    None => {}
                }
                return Ok(());
            }
        };
        if let Some(loading) = session.loading.get_mut(&topic) {
            loading.held.push(incoming);
            return Ok(());
        }
        self.apply(session, &topic, incoming, dirty).await
    }

    /// Appends one event to the replica, filling a gap from the stream first.
    async fn apply(
        &self,
        session: &mut Session,
        topic: &Topic,
        incoming: Incoming,
        dirty: &mut Dirty,
    ) -> Result<(), RedisError> {
        let Incoming {
            epoch,
            entry,
            event,
        } = incoming;
        match self.hub.deliver(topic, &epoch, &event, entry, dirty) {
            Delivered::Appended | Delivered::Duplicate | Delivered::NotFollowed => {}
            Delivered::OtherEpoch => self.load(session, topic.clone(), None),
            Delivered::Gap(have, entry) => {
                let seq = entry.seq;
                let missing = self.range(&mut session.conn, topic, have, seq).await?;
                let covered = missing.as_ref().is_ok_and(|missing| {
                    missing.len() as u64 == seq.get() - have.get() - 1
                        && missing
                            .iter()
                            .zip(1..)
                            .all(|((e, _), n)| e.seq.get() == have.get() + n)
                });
                let missing = match missing {
                    Ok(missing) if covered => missing,
                    Ok(_) => {
                        tracing::debug!(%topic, "the stream no longer covers a gap; reloading");
                        self.load(session, topic.clone(), None);
                        return Ok(());
                    }
                    Err(why) => {
                        tracing::warn!(%topic, %why, "the topic's stream holds an invalid entry");
                        self.load(session, topic.clone(), None);
                        return Ok(());
                    }
                };
                for (filled, event) in missing.into_iter().chain([(entry, event)]) {
                    self.hub.deliver(topic, &epoch, &event, filled, dirty);
                }
            }
        }
        Ok(())
    }

    /// The stream's events after `after` and before `before`, oldest first; `Ok(Err)` when an
    /// entry is not an event of the topic.
    async fn range(
        &self,
        conn: &mut MultiplexedConnection,
        topic: &Topic,
        after: Seq,
        before: Seq,
    ) -> Result<Result<Vec<(Entry, TopicEvent)>, String>, RedisError> {
        let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
            .arg(self.stream_key(topic))
            .arg(format!("{}-0", after.get() + 1))
            .arg(format!("{}-0", before.get().saturating_sub(1)))
            .query_async(conn)
            .await?;
        Ok(entries
            .iter()
            .map(|(id, fields)| {
                let entry = parse_entry(topic, id, fields)?;
                let event = check_event(topic, &entry)?;
                Ok((entry, event))
            })
            .collect())
    }
}

/// The event `entry` holds, or why it is not one of `topic`'s family.
fn check_event(topic: &Topic, entry: &Entry) -> Result<TopicEvent, String> {
    TopicEvent::decode(topic, &entry.payload).map_err(|err| {
        format!(
            "event {} of {topic} in Redis does not fit its family: {err}",
            entry.seq
        )
    })
}

fn describe(err: &PublishError) -> String {
    match err {
        PublishError::Exhausted => "the topic has used up its seq range".to_owned(),
        PublishError::Unavailable(why)
        | PublishError::Uncertain(why)
        | PublishError::Corrupt(why) => why.clone(),
    }
}

fn parse_epoch(topic: &Topic, text: &str) -> Result<Epoch, PublishError> {
    Epoch::new(text).map_err(|err| {
        PublishError::Corrupt(format!("Redis holds epoch {text:?} for {topic}: {err}"))
    })
}

fn parse_seq(topic: &Topic, text: &str) -> Result<Seq, PublishError> {
    text.parse::<u64>()
        .ok()
        .and_then(|n| Seq::new(n).ok())
        .ok_or_else(|| PublishError::Corrupt(format!("Redis holds seq {text:?} for {topic}")))
}

fn parse_snapshot(
    topic: &Topic,
    family: Family,
    text: &str,
) -> Result<TopicSnapshot, PublishError> {
    if text.is_empty() {
        return Ok(TopicSnapshot::empty(family));
    }
    let corrupt = |why: String| {
        PublishError::Corrupt(format!("Redis holds an invalid snapshot of {topic}: {why}"))
    };
    let value: Value = serde_json::from_str(text).map_err(|err| corrupt(err.to_string()))?;
    TopicSnapshot::decode(topic, &value).map_err(|err| corrupt(err.to_string()))
}

/// One stream entry: id `<seq>-0`, fields `t <emittedAt>` and `p <payload>` (in either
/// order), nothing else.
fn parse_entry(topic: &Topic, id: &str, fields: &[String]) -> Result<Entry, String> {
    let bad = |why: String| format!("stream entry {id} of {topic}: {why}");
    let seq = id
        .strip_suffix("-0")
        .ok_or_else(|| bad("the id is not <seq>-0".to_owned()))?;
    let seq = parse_seq(topic, seq).map_err(|e| bad(describe(&e)))?;
    let (mut time, mut payload) = (None, None);
    for pair in fields.chunks(2) {
        let slot = match pair {
            [name, _] if name == "t" => &mut time,
            [name, _] if name == "p" => &mut payload,
            [name, _] => return Err(bad(format!("unexpected field {name:?}"))),
            _ => return Err(bad("a field without a value".to_owned())),
        };
        if slot.replace(&pair[1]).is_some() {
            return Err(bad(format!("field {:?} twice", pair[0])));
        }
    }
    let (Some(time), Some(payload)) = (time, payload) else {
        return Err(bad(
            "expected the fields t (emittedAt) and p (payload)".to_owned()
        ));
    };
    let emitted_at =
        Timestamp::parse(time).map_err(|err| bad(format!("t is not a timestamp: {err}")))?;
    let payload =
        serde_json::from_str(payload).map_err(|err| bad(format!("p is not JSON: {err}")))?;
    Ok(Entry {
        seq,
        emitted_at,
        payload,
    })
}

/// A channel message of `topic`: `<epoch> <seq> <emittedAt>\n<payload>`, with a payload of
/// the topic's family.
fn parse_message(topic: &Topic, bytes: &[u8]) -> Result<Incoming, String> {
    let text = std::str::from_utf8(bytes).map_err(|err| err.to_string())?;
    let (head, payload) = text
        .split_once('\n')
        .ok_or("expected `<epoch> <seq> <emittedAt>` and a payload line")?;
    let [epoch, seq, time] = head.split(' ').collect::<Vec<_>>()[..] else {
        return Err(format!(
            "expected `<epoch> <seq> <emittedAt>` on the first line, got {head:?}"
        ));
    };
    let epoch = Epoch::new(epoch).map_err(|err| format!("epoch {epoch:?}: {err}"))?;
    let seq = seq
        .parse::<u64>()
        .ok()
        .and_then(|n| Seq::new(n).ok())
        .ok_or_else(|| format!("seq {seq:?} is not a seq"))?;
    let emitted_at = Timestamp::parse(time).map_err(|err| format!("emittedAt: {err}"))?;
    let payload = serde_json::from_str(payload).map_err(|err| format!("payload: {err}"))?;
    let entry = Entry {
        seq,
        emitted_at,
        payload,
    };
    let event = check_event(topic, &entry)?;
    Ok(Incoming {
        epoch,
        entry,
        event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "2026-11-21T09:30:00.125Z";

    #[test]
    fn a_channel_message_is_parsed_or_refused_with_the_reason() {
        let topic = Topic::new("custom.a").unwrap();
        let text = format!("e1-2 7 {T}\n{{\"n\":1}}");
        let incoming = parse_message(&topic, text.as_bytes()).unwrap();
        assert_eq!(incoming.epoch.as_str(), "e1-2");
        assert_eq!(incoming.entry.seq.get(), 7);
        assert_eq!(incoming.entry.emitted_at.as_str(), T);
        assert_eq!(incoming.entry.payload, serde_json::json!({"n": 1}));
        let pressure = Topic::new("drives.pressure").unwrap();
        for (topic, bad, why) in [
            (&topic, format!("e1 7 {T}"), "payload line"),
            (&topic, "e1 7\n{}".to_owned(), "first line"),
            (&topic, "e1\n{}".to_owned(), "first line"),
            (&topic, format!("e1 7 {T} x\n{{}}"), "first line"),
            (&topic, format!("e1  7 {T}\n{{}}"), "first line"),
            (&topic, format!("e1 x {T}\n{{}}"), "not a seq"),
            (
                &topic,
                format!("e1 9007199254740992 {T}\n{{}}"),
                "not a seq",
            ),
            (
                &topic,
                "e1 1 2026-11-21 09:30:00Z\n{}".to_owned(),
                "first line",
            ),
            (&topic, "e1 1 yesterday\n{}".to_owned(), "emittedAt"),
            (&topic, format!("e1 1 {T}\n{{"), "payload"),
            (&pressure, format!("e1 1 {T}\n{{\"n\":1}}"), "does not fit"),
        ] {
            let err = parse_message(topic, bad.as_bytes()).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn stream_entries_and_stored_state_are_parsed_or_refused() {
        let topic = Topic::new("custom.a").unwrap();
        let fields = |pairs: &[&str]| pairs.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let entry = parse_entry(&topic, "3-0", &fields(&["t", T, "p", "{\"n\":3}"])).unwrap();
        assert_eq!(
            entry,
            Entry {
                seq: Seq::new(3).unwrap(),
                emitted_at: Timestamp::parse(T).unwrap(),
                payload: serde_json::json!({"n": 3}),
            }
        );
        let swapped = parse_entry(&topic, "3-0", &fields(&["p", "{\"n\":3}", "t", T]));
        assert_eq!(swapped.unwrap(), entry, "fields in either order");
        for (id, pairs, why) in [
            ("3-1", &["t", T, "p", "{}"][..], "not <seq>-0"),
            ("x-0", &["t", T, "p", "{}"], "seq"),
            ("3-0", &["p", "{}"], "expected the fields t"),
            ("3-0", &["t", T], "expected the fields t"),
            (
                "3-0",
                &["t", T, "p", "{}", "q", "1"],
                "unexpected field \"q\"",
            ),
            ("3-0", &["t", T, "p", "{}", "p", "{}"], "twice"),
            ("3-0", &["t", T, "p"], "without a value"),
            ("3-0", &["t", "now", "p", "{}"], "not a timestamp"),
            ("3-0", &["t", T, "p", "{"], "not JSON"),
        ] {
            let err = parse_entry(&topic, id, &fields(pairs)).unwrap_err();
            assert!(err.contains(why) && err.contains(id), "{pairs:?}: {err}");
        }
        let pressure = Topic::new("drives.pressure").unwrap();
        assert!(
            check_event(&pressure, &entry)
                .unwrap_err()
                .contains("does not fit")
        );
        let family = Family::of(&topic).unwrap();
        assert_eq!(
            parse_snapshot(&topic, family, "").unwrap(),
            TopicSnapshot::empty(family)
        );
        assert!(matches!(
            parse_snapshot(&topic, family, "[1"),
            Err(PublishError::Corrupt(_))
        ));
        assert!(matches!(
            parse_seq(&topic, "-1"),
            Err(PublishError::Corrupt(_))
        ));
    }
}
