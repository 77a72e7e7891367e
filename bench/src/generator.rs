//! The load generator: subscriber and publisher connections, the open-loop rate ladder, and the
//! accounting that turns a missing `seq` into a failure.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use rtbus_protocol::{
    AuthData, ClientMessage, PublishData, RequestId, SUBPROTOCOL, ServerFrameView, ServerMessage,
    Start, SubscribeData, SubscribedTopic, SubscriptionRequest, Timestamp, Topic,
    decode_server_frame,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use rtbus_socket::{Dial, Inbound, Url};

use crate::commandstats;
use crate::report::{self, IdleReport, Percentiles, Report, StalledReport, Step};
use crate::sys::{self, Pid};

/// Steps the ladder may take, plus the half-load step.
const MAX_STEPS: usize = 32;
/// How many error messages a report keeps verbatim.
const MAX_ERROR_SAMPLES: usize = 10;
/// Generator CPU use (share of its cores) above which its own numbers are suspect.
const GENERATOR_SATURATED: f64 = 0.9;

pub(crate) type Ws = WebSocketStream<TcpStream>;

/// Which topic family the generated topics belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TopicKind {
    /// `custom.bench.<n>`: free-form payloads.
    Custom,
    /// `sessions.activity:bench-<n>`: activity entries, the timestamp under `data`.
    Activity,
}

/// Everything a run needs to know, resolved from the command line.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Name of the server under test in the report.
    pub label: String,
    /// `ws://` URL of the endpoint: the publishers' server, and the first subscribers' server.
    pub url: String,
    /// More servers for the subscribers (nodes of one cluster): with these, subscriber i takes
    /// server [`subscriber_server`]`(i, topics, 1 + subscriber_urls.len())`, 0 being `url`.
    pub subscriber_urls: Vec<String>,
    /// A Redis whose `INFO commandstats` is read before the first step and after the last one,
    /// to report its commands per publish.
    pub redis_stats: Option<String>,
    /// Bearer token for the publishers, sent in an `auth` frame.
    pub token: Option<String>,
    /// Subscriber connections, stalled ones included.
    pub subscribers: usize,
    /// Topics the subscribers are spread over (subscriber i takes topic i mod topics).
    pub topics: usize,
    /// Topic family.
    pub topic_kind: TopicKind,
    /// Publisher connections.
    pub publishers: usize,
    /// Target payload size in bytes.
    pub payload_bytes: usize,
    /// Fixed publish rate (one step) instead of a ladder.
    pub fixed_publish_rate: Option<f64>,
    /// First ladder step, in offered deliveries per second.
    pub start_deliveries: f64,
    /// Each ladder step offers this factor more than the previous one.
    pub step_factor: f64,
    /// Most ladder steps.
    pub max_steps: usize,
    /// Publishing time of each step.
    pub step_time: Duration,
    /// How long to wait for a step's events after its publishing ended.
    pub drain_timeout: Duration,
    /// Run a final step at half the saturation rate.
    pub half_load: bool,
    /// Subscribers (among `subscribers`) that stop reading after subscribing.
    pub stalled: usize,
    /// Idle mode: connect and subscribe, wait this long, measure server memory, publish nothing.
    pub idle: Option<Duration>,
    /// Server process to account CPU and memory to.
    pub server_pid: Option<u32>,
    /// Fully decode and validate every n-th frame a subscriber receives (and its first few).
    pub validate_every: u64,
    /// Connections opened at once.
    pub connect_concurrency: usize,
    /// Time allowed for each connection to open and subscribe.
    pub connect_timeout: Duration,
}

/// Seq bookkeeping of one epoch of a topic, from the publishers' acknowledgements. A `seq`
/// means something only with its epoch, so a topic whose epoch changes mid-run gets a second
/// one instead of having two unrelated counts merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Acked {
    pub(crate) epoch: String,
    pub(crate) first: u64,
    pub(crate) last: u64,
    pub(crate) count: u64,
}

/// What was wrong with an acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AckTrouble {
    /// The seq does not follow the previous one of its epoch.
    NotNext { previous: u64 },
    /// The topic's epoch changed: the server reset its stream mid-run.
    NewEpoch { previous: String },
}

/// Records the acknowledgement of `seq` in `epoch` on a topic's acknowledged streams.
pub(crate) fn acknowledge(
    streams: &mut Vec<Acked>,
    epoch: &str,
    seq: u64,
) -> Result<(), AckTrouble> {
    if let Some(acked) = streams.last_mut().filter(|a| a.epoch == epoch) {
        let previous = acked.last;
        acked.last = seq;
        acked.count += 1;
        return if seq == previous + 1 {
            Ok(())
        } else {
            Err(AckTrouble::NotNext { previous })
        };
    }
    let previous = streams.last().map(|a| a.epoch.clone());
    streams.push(Acked {
        epoch: epoch.to_owned(),
        first: seq,
        last: seq,
        count: 1,
    });
    previous.map_or(Ok(()), |previous| Err(AckTrouble::NewEpoch { previous }))
}

/// The events one subscriber saw in one epoch of its topic.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stream {
    epoch: String,
    /// The `seq` the `subscribed` entry named: events follow from the next one. `None` for an
    /// epoch that began mid-run, whose start only the acknowledgements know.
    start: Option<u64>,
    /// The first event's `seq`.
    first: Option<u64>,
    /// The latest event's `seq`, or `start` before any.
    last: Option<u64>,
    received: u64,
}

/// What one event's `seq` says about its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Advance {
    /// The next one (or the first of an epoch that began mid-run).
    Next,
    /// Events `from..=to` never came.
    Gap { from: u64, to: u64 },
    /// Not after the latest one: a duplicate or a reordering.
    Backwards { last: u64 },
}

impl Stream {
    fn subscribed(epoch: &str, seq: u64) -> Stream {
        Stream {
            epoch: epoch.to_owned(),
            start: Some(seq),
            first: None,
            last: Some(seq),
            received: 0,
        }
    }

    fn mid_run(epoch: &str) -> Stream {
        Stream {
            epoch: epoch.to_owned(),
            start: None,
            first: None,
            last: None,
            received: 0,
        }
    }

    /// Takes the event `seq` into account; a backwards one leaves the stream as it was.
    fn advance(&mut self, seq: u64) -> Advance {
        let advance = match self.last {
            None => Advance::Next,
            Some(last) if seq == last + 1 => Advance::Next,
            Some(last) if seq > last + 1 => Advance::Gap {
                from: last + 1,
                to: seq - 1,
            },
            Some(last) => return Advance::Backwards { last },
        };
        self.received += 1;
        self.first.get_or_insert(seq);
        self.last = Some(seq);
        advance
    }
}

/// State shared by every task of a run.
#[derive(Debug)]
struct Shared {
    epoch: Instant,
    topics: Vec<Topic>,
    topic_index: HashMap<String, usize>,
    /// Healthy subscribers per topic, counted as they finish subscribing.
    subs_on_topic: Vec<AtomicU64>,
    hists: Vec<Mutex<Histogram<u64>>>,
    delivered: Vec<AtomicU64>,
    last_delivery_ns: Vec<AtomicU64>,
    expected: Vec<AtomicU64>,
    sent: Vec<AtomicU64>,
    acked: Vec<AtomicU64>,
    /// Per topic, its acknowledged streams in the order their epochs appeared.
    acks: Mutex<Vec<Vec<Acked>>>,
    lost: AtomicU64,
    epoch_changes: AtomicU64,
    out_of_order: AtomicU64,
    errors: AtomicU64,
    error_samples: Mutex<Vec<String>>,
    validate_every: u64,
    /// When the first step started publishing (and stalled subscribers count as stalled).
    publish_start_ns: AtomicU64,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn error(&self, message: impl Into<String>) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut samples) = self.error_samples.lock() {
            if samples.len() < MAX_ERROR_SAMPLES {
                samples.push(message.into());
            }
        }
    }
}

/// What the coordinator tells the publishers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Command {
    Wait,
    Publish {
        step: usize,
        rate_per_publisher: f64,
        start: Instant,
        until: Instant,
    },
    Stop,
}

/// What a subscriber saw, returned when it ends.
#[derive(Debug, Default)]
struct SubResult {
    topic: usize,
    stalled: bool,
    connected: bool,
    /// Healthy subscribers: what they saw, per epoch, in order; the first is the one the
    /// `subscribed` entry named.
    streams: Vec<Stream>,
    /// Stalled subscribers: frames read after the stall.
    received: u64,
    close_code: Option<u16>,
    closed_by_server: bool,
    last_t_ns: Option<u64>,
}

/// The send stamp the publishers put in each payload (top level for `custom.*`, under `data`
/// for activity entries): what the generator reads of an event's payload through the protocol
/// crate's [`ServerFrameView`]. Every frame is also fully decoded and validated with
/// [`decode_server_frame`] at a sampling rate; the view is the cheap path that keeps the
/// generator from being the bottleneck.
#[derive(Deserialize, Default)]
struct StampView {
    #[serde(default)]
    t: Option<u64>,
    #[serde(default)]
    s: Option<usize>,
    #[serde(default)]
    data: Option<Stamp>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct Stamp {
    t: u64,
    s: usize,
}

impl StampView {
    fn stamp(&self) -> Option<Stamp> {
        match (self.t, self.s, self.data) {
            (Some(t), Some(s), _) => Some(Stamp { t, s }),
            (_, _, Some(stamp)) => Some(stamp),
            _ => None,
        }
    }
}

/// Runs the plan and reports what happened: subscribers connect and subscribe, publishers
/// authenticate, then either the rate ladder (and the half-load step) or the idle wait runs,
/// and at the end what every subscriber saw is compared with what the server acknowledged.
pub async fn run(plan: Plan) -> anyhow::Result<Report> {
    plan.check()?;
    let addr = resolve(&plan.url).await?;
    // Before any subscriber connects: a wrong Redis URL fails at once.
    let mut probe = match &plan.redis_stats {
        Some(url) => Some(commandstats::Probe::connect(url).await?),
        None => None,
    };
    let mut endpoints = vec![(plan.url.clone(), addr)];
    for url in &plan.subscriber_urls {
        endpoints.push((url.clone(), resolve(url).await?));
    }
    let shared = Arc::new(Shared::new(plan.topic_names()?, plan.validate_every)?);
    let server = plan.server_pid.map(Pid::Other);
    let rss_before = server.and_then(sys::rss_bytes);

    let signals = Signals::new();
    let subscribers = connect_subscribers(&plan, &shared, &endpoints, &signals).await?;
    let (command_tx, command_rx) = watch::channel(Command::Wait);
    let publishers = if plan.idle.is_none() {
        start_publishers(&plan, &shared, addr, &command_rx).await?
    } else {
        Vec::new()
    };

    let mut report = Report {
        label: plan.label.clone(),
        url: plan.url.clone(),
        subscriber_urls: plan.subscriber_urls.clone(),
        subscribers: plan.subscribers,
        topics: plan.topics,
        publishers: plan.publishers,
        payload_bytes: plan.payload_bytes,
        generator_cores: sys::usable_cores(),
        connect: Percentiles::of(&subscribers.connect_hist),
        setup_s: subscribers.setup_s,
        ..Report::default()
    };
    match plan.idle {
        Some(settle) => {
            tokio::time::sleep(settle).await;
            let after = server.and_then(sys::rss_bytes);
            report.idle = idle_report(rss_before, after, subscribers.connected);
            if report.idle.is_none() {
                shared.error("idle mode needs --server-pid of a local server to read its memory");
            }
        }
        None => {
            let before = match probe.as_mut() {
                Some(probe) => Some((probe.read().await?, Instant::now())),
                None => None,
            };
            run_ladder(&plan, &shared, &command_tx, server, &mut report).await;
            if let (Some(probe), Some((before, at))) = (probe.as_mut(), before) {
                // Every step has drained: each acknowledged publish has run its script.
                let after = probe.read().await?;
                let delta = before.until(&after).map_err(|e| anyhow::anyhow!(e))?;
                let published = report
                    .steps
                    .iter()
                    .chain(&report.half_load)
                    .map(|s| s.published)
                    .sum();
                report.redis = Some(commandstats::RedisCommands::of(
                    &delta,
                    published,
                    at.elapsed().as_secs_f64(),
                ));
            }
        }
    }

    let results = stop(
        &plan,
        &shared,
        signals,
        &command_tx,
        publishers,
        subscribers.tasks,
    )
    .await?;
    account(&shared, &results, plan.stalled, &mut report);
    Ok(report)
}

impl Plan {
    /// Refuses a plan that cannot measure anything.
    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.subscribers > 0, "--subscribers must be at least 1");
        anyhow::ensure!(self.topics > 0, "--topics must be at least 1");
        anyhow::ensure!(self.publishers > 0, "--publishers must be at least 1");
        anyhow::ensure!(
            self.stalled < self.subscribers,
            "--stalled must leave at least one healthy subscriber"
        );
        anyhow::ensure!(
            self.subscriber_urls.is_empty() || self.idle.is_none(),
            "--subscriber-url is for load runs, not --idle (which reads one server's memory)"
        );
        Ok(())
    }

    /// The generated topics, `custom.bench.<n>` or `sessions.activity:bench-<n>`.
    fn topic_names(&self) -> anyhow::Result<Vec<Topic>> {
        (0..self.topics)
            .map(|i| {
                let name = match self.topic_kind {
                    TopicKind::Custom => format!("custom.bench.{i}"),
                    TopicKind::Activity => format!("sessions.activity:bench-{i}"),
                };
                Topic::new(&name).map_err(|e| anyhow::anyhow!("topic {name}: {e}"))
            })
            .collect()
    }

    /// Whether subscriber `i` is one of the stalled ones, spread evenly so each lands among
    /// healthy ones.
    fn is_stalled(&self, i: usize) -> bool {
        self.stalled > 0 && {
            let stride = self.subscribers / self.stalled;
            i % stride == 0 && i / stride < self.stalled
        }
    }
}

/// The server subscriber `i` connects to, of `servers` (0 is the publishers' own): subscriber i
/// takes topic i mod `topics` and server (i div `topics`) mod `servers`, so the subscribers of
/// every topic are split evenly over the servers, the first one of each topic on server 0.
pub fn subscriber_server(i: usize, topics: usize, servers: usize) -> usize {
    (i / topics.max(1)) % servers.max(1)
}

/// A latency histogram: 1 ns to 120 s, 3 significant digits.
fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::<u64>::new_with_bounds(1, 120_000_000_000, 3)?)
}

impl Shared {
    fn new(topics: Vec<Topic>, validate_every: u64) -> anyhow::Result<Shared> {
        let counters = || (0..MAX_STEPS).map(|_| AtomicU64::new(0)).collect();
        Ok(Shared {
            epoch: Instant::now(),
            topic_index: topics
                .iter()
                .enumerate()
                .map(|(i, t)| (t.as_str().to_owned(), i))
                .collect(),
            subs_on_topic: (0..topics.len()).map(|_| AtomicU64::new(0)).collect(),
            acks: Mutex::new(vec![Vec::new(); topics.len()]),
            topics,
            hists: (0..MAX_STEPS)
                .map(|_| histogram().map(Mutex::new))
                .collect::<anyhow::Result<_>>()?,
            delivered: counters(),
            last_delivery_ns: counters(),
            expected: counters(),
            sent: counters(),
            acked: counters(),
            lost: AtomicU64::new(0),
            epoch_changes: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            error_samples: Mutex::new(Vec::new()),
            validate_every,
            publish_start_ns: AtomicU64::new(0),
        })
    }
}

/// What the coordinator tells the subscribers: stop (healthy ones), and read again (stalled
/// ones).
struct Signals {
    shutdown_tx: watch::Sender<bool>,
    shutdown_rx: watch::Receiver<bool>,
    unstall_tx: watch::Sender<bool>,
    unstall_rx: watch::Receiver<bool>,
}

impl Signals {
    fn new() -> Signals {
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (unstall_tx, unstall_rx) = watch::channel(false);
        Signals {
            shutdown_tx,
            shutdown_rx,
            unstall_tx,
            unstall_rx,
        }
    }
}

/// The subscriber tasks once every one has subscribed (or failed to).
struct Subscribers {
    tasks: Vec<JoinHandle<SubResult>>,
    /// Connect-and-subscribe time of each that made it.
    connect_hist: Histogram<u64>,
    connected: usize,
    /// Seconds until the last one was ready.
    setup_s: f64,
}

/// Starts every subscriber, [`Plan::connect_concurrency`] connecting at a time, and waits until
/// each has subscribed or failed.
async fn connect_subscribers(
    plan: &Plan,
    shared: &Arc<Shared>,
    endpoints: &[(String, SocketAddr)],
    signals: &Signals,
) -> anyhow::Result<Subscribers> {
    let setup_start = Instant::now();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Option<Duration>>();
    let permits = Arc::new(Semaphore::new(plan.connect_concurrency.max(1)));
    let mut tasks = Vec::with_capacity(plan.subscribers);
    anyhow::ensure!(!endpoints.is_empty(), "no server for the subscribers");
    for i in 0..plan.subscribers {
        // In range: subscriber_server answers modulo the number of endpoints, which is not 0.
        let (url, addr) = &endpoints[subscriber_server(i, plan.topics, endpoints.len())];
        let conn = SubscriberConn {
            shared: Arc::clone(shared),
            addr: *addr,
            url: url.clone(),
            topic: i % plan.topics,
            stalled: plan.is_stalled(i),
            connect_timeout: plan.connect_timeout,
        };
        tasks.push(tokio::spawn(conn.run(
            Arc::clone(&permits),
            ready_tx.clone(),
            signals.shutdown_rx.clone(),
            signals.unstall_rx.clone(),
        )));
    }
    drop(ready_tx);
    let mut connect_hist = histogram()?;
    let mut connected = 0usize;
    while let Some(outcome) = ready_rx.recv().await {
        if let Some(took) = outcome {
            connected += 1;
            let _ = connect_hist.record(duration_ns(took).max(1));
        }
        if connected + (shared.errors.load(Ordering::Relaxed) as usize) >= plan.subscribers {
            break;
        }
    }
    Ok(Subscribers {
        tasks,
        connect_hist,
        connected,
        setup_s: setup_start.elapsed().as_secs_f64(),
    })
}

/// Opens and authenticates every publisher that has topics (publisher p takes the topics t with
/// t mod publishers = p) and starts its publish loop and its acknowledgement reader.
async fn start_publishers(
    plan: &Plan,
    shared: &Arc<Shared>,
    addr: SocketAddr,
    commands: &watch::Receiver<Command>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let payload = PayloadMaker::new(plan.topic_kind, plan.payload_bytes);
    let mut publishers = Vec::new();
    for p in 0..plan.publishers {
        let mine: Vec<usize> = (0..plan.topics)
            .filter(|t| t % plan.publishers == p)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let ws = open_publisher(&plan.url, addr, plan.token.as_deref(), p).await?;
        let (sink, stream) = ws.split();
        tokio::spawn(read_acks(Arc::clone(shared), stream));
        publishers.push(tokio::spawn(publish_loop(
            Arc::clone(shared),
            sink,
            mine,
            payload.clone(),
            commands.clone(),
        )));
    }
    Ok(publishers)
}

/// The server's memory per idle connection, when both readings exist.
fn idle_report(before: Option<u64>, after: Option<u64>, connected: usize) -> Option<IdleReport> {
    let (before, after) = (before?, after?);
    Some(IdleReport {
        rss_before: before,
        rss_after: after,
        bytes_per_connection: (after as f64 - before as f64) / connected.max(1) as f64,
    })
}

/// The publish rate of each step: the fixed rate, or a ladder from
/// [`Plan::start_deliveries`] up by [`Plan::step_factor`], in publishes per second given
/// `fanout` healthy subscribers per topic.
fn step_rates(plan: &Plan, fanout: f64) -> Vec<f64> {
    match plan.fixed_publish_rate {
        Some(rate) => vec![rate],
        None => (0..plan.max_steps.min(MAX_STEPS - 1))
            .map(|i| plan.start_deliveries * plan.step_factor.powi(i as i32) / fanout)
            .collect(),
    }
}

/// Runs the steps until one saturates or loses an event, then the half-load step if asked for,
/// and records the saturation throughput and whether the generator was the bottleneck.
async fn run_ladder(
    plan: &Plan,
    shared: &Shared,
    command_tx: &watch::Sender<Command>,
    server: Option<Pid>,
    report: &mut Report,
) {
    let healthy: u64 = shared
        .subs_on_topic
        .iter()
        .map(|n| n.load(Ordering::Relaxed))
        .sum();
    let fanout = (healthy as f64 / shared.topics.len() as f64).max(1.0);
    for (index, rate) in step_rates(plan, fanout).into_iter().enumerate() {
        let step = run_step(plan, shared, command_tx, index, rate, fanout, server).await;
        let saturated = step.saturated.is_some();
        report.steps.push(step);
        if saturated || shared.lost.load(Ordering::Relaxed) > 0 {
            break;
        }
    }
    report.saturation_deliveries_per_s = report
        .steps
        .iter()
        .map(|s| s.delivered_per_s)
        .fold(0.0, f64::max);
    if plan.half_load && plan.fixed_publish_rate.is_none() && report.steps.len() < MAX_STEPS {
        let rate = report.saturation_deliveries_per_s / 2.0 / fanout;
        let index = report.steps.len();
        report.half_load =
            Some(run_step(plan, shared, command_tx, index, rate, fanout, server).await);
    }
    report.generator_saturated = generator_saturated(&report.steps);
}

/// Whether the generator's own CPU was saturated where the result was taken (the busiest step,
/// or the saturated last one): its numbers are then suspect.
fn generator_saturated(steps: &[Step]) -> bool {
    let best = steps
        .iter()
        .max_by(|a, b| a.delivered_per_s.total_cmp(&b.delivered_per_s));
    best.is_some_and(|s| s.generator_cpu > GENERATOR_SATURATED)
        || steps
            .last()
            .is_some_and(|s| s.saturated.is_some() && s.generator_cpu > GENERATOR_SATURATED)
}

/// Ends the run: publishers stop, stalled subscribers read what is left, healthy ones stop;
/// returns what each subscriber saw (a stalled one that does not finish draining within the
/// drain timeout is counted as an error).
async fn stop(
    plan: &Plan,
    shared: &Shared,
    signals: Signals,
    command_tx: &watch::Sender<Command>,
    publishers: Vec<JoinHandle<()>>,
    subscribers: Vec<JoinHandle<SubResult>>,
) -> anyhow::Result<Vec<SubResult>> {
    let _ = command_tx.send(Command::Stop);
    let _ = signals.unstall_tx.send(true);
    for publisher in publishers {
        let _ = publisher.await;
    }
    // Healthy subscribers end on shutdown; stalled ones end when drained (or at the deadline).
    let _ = signals.shutdown_tx.send(true);
    let stalled_done = Instant::now() + plan.drain_timeout;
    let mut results = Vec::with_capacity(subscribers.len());
    for handle in subscribers {
        match tokio::time::timeout_at(stalled_done.into(), handle).await {
            Ok(result) => results.push(result?),
            Err(_) => shared.error("a subscriber did not stop within the drain timeout"),
        }
    }
    Ok(results)
}

/// Runs one step of the ladder and waits for its events to drain.
async fn run_step(
    plan: &Plan,
    shared: &Shared,
    command_tx: &watch::Sender<Command>,
    index: usize,
    publish_rate: f64,
    fanout: f64,
    server: Option<Pid>,
) -> Step {
    let cpu_self = sys::cpu_seconds(Pid::SelfProcess);
    let cpu_server = server.and_then(sys::cpu_seconds);
    let machine = sys::machine_jiffies();
    let start = Instant::now() + Duration::from_millis(20);
    let until = start + plan.step_time;
    let start_ns = u64::try_from((start - shared.epoch).as_nanos()).unwrap_or(0);
    if index == 0 {
        shared.publish_start_ns.store(start_ns, Ordering::Relaxed);
    }
    let _ = command_tx.send(Command::Publish {
        step: index,
        rate_per_publisher: publish_rate / plan.publishers as f64,
        start,
        until,
    });
    tokio::time::sleep_until(until.into()).await;
    let _ = command_tx.send(Command::Wait);
    // Drain: every publish acknowledged and every acknowledged event delivered.
    let deadline = Instant::now() + plan.drain_timeout;
    let mut drained = false;
    let mut settled_acks = None;
    while Instant::now() < deadline {
        let acked = shared.acked[index].load(Ordering::Relaxed);
        let sent = shared.sent[index].load(Ordering::Relaxed);
        let expected = shared.expected[index].load(Ordering::Relaxed);
        let delivered = shared.delivered[index].load(Ordering::Relaxed);
        // Publishers finish sending shortly after `until`; acks follow.
        if acked == sent && settled_acks == Some(acked) && delivered >= expected {
            drained = true;
            break;
        }
        settled_acks = (acked == sent).then_some(acked);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let end = Instant::now();
    let wall = (end - start).as_secs_f64();
    let delivered = shared.delivered[index].load(Ordering::Relaxed);
    let expected = shared.expected[index].load(Ordering::Relaxed);
    let last_ns = shared.last_delivery_ns[index].load(Ordering::Relaxed);
    let elapsed_s = if last_ns > start_ns {
        (last_ns - start_ns) as f64 / 1e9
    } else {
        wall
    };
    let delivered_per_s = delivered as f64 / elapsed_s.max(1e-9);
    let offered = publish_rate * fanout;
    let generator_cpu_s = match (cpu_self, sys::cpu_seconds(Pid::SelfProcess)) {
        (Some(a), Some(b)) => b - a,
        _ => 0.0,
    };
    let generator_cpu = generator_cpu_s / (wall * sys::usable_cores() as f64);
    let server_cpu_s = match (cpu_server, server.and_then(sys::cpu_seconds)) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let other_cpu = match (machine, sys::machine_jiffies()) {
        (Some((busy_a, _)), Some((busy_b, _))) => {
            let busy_s = (busy_b.saturating_sub(busy_a)) as f64 * sys::seconds_per_jiffy();
            let ours = generator_cpu_s + server_cpu_s.unwrap_or(0.0);
            Some(((busy_s - ours) / wall).max(0.0))
        }
        _ => None,
    };
    let latency = shared.hists[index]
        .lock()
        .map(|h| Percentiles::of(&h))
        .unwrap_or_default();
    let behind = (!drained).then(|| {
        format!(
            "{} of {} events not delivered within the drain timeout",
            expected.saturating_sub(delivered),
            expected
        )
    });
    let saturated = report::saturation(behind, delivered_per_s, offered);
    Step {
        offered_publishes_per_s: publish_rate,
        offered_deliveries_per_s: offered,
        published: shared.acked[index].load(Ordering::Relaxed),
        delivered,
        expected,
        delivered_per_s,
        latency,
        elapsed_s,
        generator_cpu,
        server_cpu_s,
        server_cpu_s_per_million: server_cpu_s
            .filter(|_| delivered > 0)
            .map(|cpu| cpu * 1e6 / delivered as f64),
        other_cpu,
        saturated,
    }
}

/// Compares what each subscriber saw with what the server acknowledged.
fn account(shared: &Shared, results: &[SubResult], stalled: usize, report: &mut Report) {
    let acks = shared.acks.lock().map(|a| a.clone()).unwrap_or_default();
    let mut stalled_report = StalledReport {
        stalled,
        ..StalledReport::default()
    };
    let mut cut_off_after: Option<f64> = None;
    let first_publish_ns = shared.publish_start_ns.load(Ordering::Relaxed);
    let mut undelivered = 0u64;
    for result in results {
        if !result.connected {
            continue;
        }
        if result.stalled {
            stalled_report.events_received += result.received;
            if result.closed_by_server {
                stalled_report.cut_off += 1;
                if let Some(code) = result.close_code {
                    stalled_report.close_codes.push(code);
                }
                if let Some(t) = result.last_t_ns {
                    let ms = t.saturating_sub(first_publish_ns) as f64 / 1e6;
                    cut_off_after = Some(cut_off_after.map_or(ms, |m: f64| m.max(ms)));
                }
            }
            continue;
        }
        let acked = acks.get(result.topic).map_or(&[][..], Vec::as_slice);
        undelivered += account_subscriber(shared, result, acked);
    }
    stalled_report.close_codes.sort_unstable();
    stalled_report.close_codes.dedup();
    stalled_report.cut_off_after_ms = cut_off_after;
    if stalled > 0 {
        report.stalled = Some(stalled_report);
    }
    report.lost = shared.lost.load(Ordering::Relaxed);
    report.epoch_changes = shared.epoch_changes.load(Ordering::Relaxed);
    report.undelivered = undelivered;
    report.out_of_order = shared.out_of_order.load(Ordering::Relaxed);
    report.errors = shared.errors.load(Ordering::Relaxed);
    report.error_samples = shared
        .error_samples
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();
}

/// Compares one healthy subscriber's streams with its topic's acknowledged ones, epoch by
/// epoch; counts what it missed as lost and returns how many were still on their way.
fn account_subscriber(shared: &Shared, result: &SubResult, acked: &[Acked]) -> u64 {
    let topic = &shared.topics[result.topic];
    let mut undelivered = 0;
    for stream in &result.streams {
        let Some(acks) = acked.iter().find(|a| a.epoch == stream.epoch) else {
            if stream.received > 0 {
                shared.error(format!(
                    "a subscriber of {topic} got {} event(s) in epoch {}, in which no publish was acknowledged",
                    stream.received, stream.epoch
                ));
            }
            continue;
        };
        // A stream the `subscribed` entry started had its gaps counted as they came, from its
        // start on. One that began mid-run should have begun at its first acknowledged publish.
        if stream.start.is_none() {
            let missing = stream.first.map_or(0, |f| f.saturating_sub(acks.first));
            if missing > 0 {
                shared.lost.fetch_add(missing, Ordering::Relaxed);
                shared.error(format!(
                    "a subscriber of {topic} missed {missing} event(s) at the start of epoch {}: saw seq {:?}..={:?}, server acknowledged {}..={}",
                    stream.epoch, stream.first, stream.last, acks.first, acks.last
                ));
            }
        }
        // Missing at the end means the run's drain deadline came first.
        let seen = stream.last.unwrap_or(acks.first.saturating_sub(1));
        undelivered += acks.last.saturating_sub(seen);
    }
    // Publishes acknowledged in an epoch the subscriber never saw did not reach it (yet).
    for acks in acked {
        if !result.streams.iter().any(|s| s.epoch == acks.epoch) {
            undelivered += acks.count;
        }
    }
    undelivered
}

/// One subscriber connection.
struct SubscriberConn {
    shared: Arc<Shared>,
    addr: SocketAddr,
    url: String,
    topic: usize,
    stalled: bool,
    connect_timeout: Duration,
}

impl SubscriberConn {
    async fn run(
        self,
        permits: Arc<Semaphore>,
        ready: mpsc::UnboundedSender<Option<Duration>>,
        mut shutdown: watch::Receiver<bool>,
        mut unstall: watch::Receiver<bool>,
    ) -> SubResult {
        let mut result = SubResult {
            topic: self.topic,
            stalled: self.stalled,
            ..SubResult::default()
        };
        let permit = permits.acquire().await;
        let started = Instant::now();
        let ws = tokio::time::timeout(self.connect_timeout, self.subscribe()).await;
        drop(permit);
        let mut ws = match ws {
            Ok(Ok((ws, entry))) => {
                result
                    .streams
                    .push(Stream::subscribed(entry.epoch.as_str(), entry.seq.get()));
                ws
            }
            Ok(Err(e)) => {
                self.shared.error(format!("subscriber: {e}"));
                let _ = ready.send(None);
                return result;
            }
            Err(_) => {
                self.shared.error(format!(
                    "subscriber: not subscribed within {:?}",
                    self.connect_timeout
                ));
                let _ = ready.send(None);
                return result;
            }
        };
        result.connected = true;
        if !self.stalled {
            self.shared.subs_on_topic[self.topic].fetch_add(1, Ordering::Relaxed);
        }
        let _ = ready.send(Some(started.elapsed()));
        if self.stalled {
            // Stop reading until the run is over, then read what is left to see whether and
            // when the server cut the connection off.
            let _ = unstall.wait_for(|u| *u).await.map(|_| ());
            loop {
                match tokio::time::timeout(Duration::from_millis(500), rtbus_socket::next(&mut ws))
                    .await
                {
                    Err(_) => break, // quiet: the server kept the connection open
                    Ok(Inbound::Ended | Inbound::Failed(_)) => {
                        result.closed_by_server = true;
                        break;
                    }
                    Ok(Inbound::Close { code, .. }) => {
                        result.closed_by_server = true;
                        result.close_code = code;
                        break;
                    }
                    Ok(Inbound::Text(text)) => {
                        result.received += 1;
                        if let Ok(view) = ServerFrameView::<StampView>::parse(text.as_str()) {
                            if let Some(stamp) = view.data.and_then(|d| d.payload?.stamp()) {
                                result.last_t_ns = Some(stamp.t);
                            }
                        }
                    }
                    Ok(Inbound::Binary(_)) => {}
                }
            }
            return result;
        }
        let mut frames = 0u64;
        // One shutdown future for the whole loop: creating it per frame costs more than the
        // frame's own bookkeeping.
        let stop = shutdown.wait_for(|s| *s);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                biased;
                message = rtbus_socket::next(&mut ws) => match message {
                    Inbound::Text(text) => {
                        frames += 1;
                        self.on_text(text.as_str(), frames, &mut result);
                    }
                    Inbound::Binary(_) => {
                        self.shared.error("subscriber: unexpected binary frame");
                    }
                    Inbound::Close { code, reason } => {
                        result.close_code = code;
                        self.shared.error(format!(
                            "subscriber: server closed the connection: code {code:?}, reason {reason:?}"
                        ));
                        break;
                    }
                    Inbound::Failed(e) => {
                        self.shared.error(format!("subscriber: {e}"));
                        break;
                    }
                    Inbound::Ended => {
                        self.shared.error("subscriber: connection ended");
                        break;
                    }
                },
                _ = &mut stop => break,
            }
        }
        let _ = ws.close(None).await;
        result
    }

    /// Opens the connection and subscribes to the topic, live only; returns the `subscribed`
    /// entry, which says where the topic's stream stands.
    async fn subscribe(&self) -> Result<(Ws, SubscribedTopic), String> {
        let mut ws = open(&self.url, self.addr, self.stalled).await?;
        let topic = &self.shared.topics[self.topic];
        let subscribe = ClientMessage::Subscribe {
            id: RequestId::new("sub").ok(),
            data: SubscribeData {
                topics: vec![SubscriptionRequest {
                    snapshot: Some(false),
                    ..SubscriptionRequest::new(topic.clone())
                }],
            },
        };
        send(&mut ws, &subscribe).await?;
        let reply = next_message(&mut ws).await?;
        let text = serde_json::to_string(&reply).unwrap_or_default();
        let ServerMessage::Subscribed { data, .. } = reply else {
            return Err(format!("expected `subscribed`, got {text}"));
        };
        match <[SubscribedTopic; 1]>::try_from(data.topics) {
            Ok([entry]) if entry.topic == *topic && entry.start == Start::Live => Ok((ws, entry)),
            _ => Err(format!(
                "expected `subscribed` with one entry for {topic} with start \"live\" (the \
                 request said snapshot: false and no resume), got {text}"
            )),
        }
    }

    fn on_text(&self, text: &str, frames: u64, result: &mut SubResult) {
        let shared = &self.shared;
        if shared.validate_every > 0 && (frames <= 4 || frames % shared.validate_every == 0) {
            if let Err(e) = decode_server_frame(text) {
                shared.error(format!("invalid frame: {e}: {text}"));
                return;
            }
        }
        let view: ServerFrameView<'_, StampView> = match ServerFrameView::parse(text) {
            Ok(view) => view,
            Err(e) => {
                shared.error(format!("unreadable frame: {e}: {text}"));
                return;
            }
        };
        if view.kind != "event" {
            shared.error(format!("subscriber: unexpected frame {text}"));
            return;
        }
        let Some(data) = view.data else {
            shared.error(format!("event without data: {text}"));
            return;
        };
        if data.topic.as_deref() != Some(shared.topics[self.topic].as_str()) {
            shared.error(format!("event for a topic not subscribed: {text}"));
            return;
        }
        if data.is_replay != Some(false) {
            shared.error(format!("live event not marked isReplay: false: {text}"));
        }
        let (Some(epoch), Some(seq)) = (data.epoch, data.seq) else {
            shared.error(format!("event without epoch or seq: {text}"));
            return;
        };
        if !self.count(&epoch, seq, result) {
            return;
        }
        let Some(stamp) = data.payload.and_then(|p| p.stamp()) else {
            shared.error(format!("event payload without a send stamp: {text}"));
            return;
        };
        let now = shared.now_ns();
        let step = stamp.s.min(MAX_STEPS - 1);
        if let Ok(mut hist) = shared.hists[step].lock() {
            let _ = hist.record(now.saturating_sub(stamp.t).max(1));
        }
        shared.delivered[step].fetch_add(1, Ordering::Relaxed);
        shared.last_delivery_ns[step].fetch_max(now, Ordering::Relaxed);
    }
}

impl SubscriberConn {
    /// Accounts the event `seq` of `epoch` to the subscriber's streams: a gap is a loss, a
    /// step back a reordering, and a new epoch a reset of the topic's stream mid-run, reported
    /// and counted on its own. Returns whether the event is new (and its latency counts).
    fn count(&self, epoch: &str, seq: u64, result: &mut SubResult) -> bool {
        let shared = &self.shared;
        let topic = &shared.topics[self.topic];
        let current = result.streams.last().map(|s| s.epoch.as_str());
        if current != Some(epoch) {
            shared.epoch_changes.fetch_add(1, Ordering::Relaxed);
            shared.error(format!(
                "a subscriber of {topic} got seq {seq} in epoch {epoch} after epoch {}: the \
                 server reset the topic's stream mid-run",
                current.unwrap_or("(none)")
            ));
            result.streams.push(Stream::mid_run(epoch));
        }
        let Some(stream) = result.streams.last_mut() else {
            return false;
        };
        match stream.advance(seq) {
            Advance::Next => true,
            Advance::Gap { from, to } => {
                shared.lost.fetch_add(to - from + 1, Ordering::Relaxed);
                shared.error(format!(
                    "a subscriber of {topic} missed seq {from}..={to} (epoch {epoch})"
                ));
                true
            }
            Advance::Backwards { last } => {
                shared.out_of_order.fetch_add(1, Ordering::Relaxed);
                shared.error(format!(
                    "a subscriber of {topic} got seq {seq} after {last} (epoch {epoch})"
                ));
                false
            }
        }
    }
}

/// Builds event payloads of about the requested size, carrying the send stamp.
#[derive(Debug, Clone)]
pub(crate) struct PayloadMaker {
    kind: TopicKind,
    pad: String,
}

impl PayloadMaker {
    pub(crate) fn new(kind: TopicKind, bytes: usize) -> PayloadMaker {
        let mut maker = PayloadMaker {
            kind,
            pad: String::new(),
        };
        let base = maker.make(999_999_999_999_999, 9).to_string().len();
        maker.pad = "x".repeat(bytes.saturating_sub(base));
        maker
    }

    pub(crate) fn make(&self, t: u64, step: usize) -> Value {
        match self.kind {
            TopicKind::Custom => json!({ "t": t, "s": step, "pad": self.pad }),
            TopicKind::Activity => json!({
                "kind": "output",
                "text": self.pad,
                "at": Timestamp::now(),
                "data": { "t": t, "s": step },
            }),
        }
    }
}

/// Publishes on `topics` (round robin) at the commanded open-loop rate. Each event's intended
/// send time is its stamp, so a publisher that falls behind shows up as latency instead of
/// hiding it (no coordinated omission).
async fn publish_loop(
    shared: Arc<Shared>,
    mut sink: SplitSink<Ws, Message>,
    topics: Vec<usize>,
    payload: PayloadMaker,
    mut commands: watch::Receiver<Command>,
) {
    let mut next_topic = 0usize;
    loop {
        let command = *commands.borrow_and_update();
        match command {
            Command::Stop => break,
            Command::Wait => {
                if commands.changed().await.is_err() {
                    break;
                }
            }
            Command::Publish {
                step,
                rate_per_publisher,
                start,
                until,
            } => {
                let id = RequestId::new(step.to_string()).ok();
                let interval = 1.0 / rate_per_publisher.max(1e-3);
                let start_ns = u64::try_from((start - shared.epoch).as_nanos()).unwrap_or(0);
                let mut k = 0u64;
                tokio::time::sleep_until(start.into()).await;
                'step: loop {
                    let now = Instant::now();
                    if now >= until {
                        break;
                    }
                    let due = ((now - start).as_secs_f64() / interval) as u64 + 1;
                    while k < due {
                        let t = start_ns + (k as f64 * interval * 1e9) as u64;
                        let topic = topics[next_topic % topics.len()];
                        next_topic += 1;
                        let message = ClientMessage::Publish {
                            id: id.clone(),
                            data: PublishData {
                                topic: shared.topics[topic].clone(),
                                payload: payload.make(t, step),
                            },
                        };
                        let text = match serde_json::to_string(&message) {
                            Ok(text) => text,
                            Err(e) => {
                                shared.error(format!("publisher: {e}"));
                                break 'step;
                            }
                        };
                        if let Err(e) = sink.feed(Message::text(text)).await {
                            shared.error(format!("publisher: {e}"));
                            return;
                        }
                        shared.sent[step].fetch_add(1, Ordering::Relaxed);
                        k += 1;
                    }
                    if let Err(e) = sink.flush().await {
                        shared.error(format!("publisher: {e}"));
                        return;
                    }
                    let next = start + Duration::from_secs_f64(k as f64 * interval);
                    tokio::time::sleep_until(next.min(until).into()).await;
                }
                if commands.changed().await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = sink.close().await;
}

/// Reads a publisher's acknowledgements: the `seq` each publish got, per step and topic.
async fn read_acks(shared: Arc<Shared>, mut stream: SplitStream<Ws>) {
    loop {
        let text = match rtbus_socket::next(&mut stream).await {
            Inbound::Text(text) => text,
            Inbound::Binary(_) => continue,
            Inbound::Close { .. } | Inbound::Ended | Inbound::Failed(_) => break,
        };
        match decode_server_frame(text.as_str()) {
            Ok(ServerMessage::Published { id, data }) => {
                let Some(&topic) = shared.topic_index.get(data.topic.as_str()) else {
                    shared.error(format!("ack for a topic never published: {text}"));
                    continue;
                };
                let step = id
                    .and_then(|id| id.as_str().parse::<usize>().ok())
                    .filter(|s| *s < MAX_STEPS);
                let Some(step) = step else {
                    shared.error(format!("ack without the publish's id: {text}"));
                    continue;
                };
                let seq = data.seq.get();
                let recorded = match shared.acks.lock() {
                    Ok(mut acks) => acknowledge(&mut acks[topic], data.epoch.as_str(), seq),
                    Err(_) => Ok(()),
                };
                let (topic_name, epoch) = (&data.topic, &data.epoch);
                match recorded {
                    Ok(()) => {}
                    Err(AckTrouble::NotNext { previous }) => shared.error(format!(
                        "publish on {topic_name} acknowledged with seq {seq} after {previous} (epoch {epoch})"
                    )),
                    Err(AckTrouble::NewEpoch { previous }) => {
                        shared.epoch_changes.fetch_add(1, Ordering::Relaxed);
                        shared.error(format!(
                            "publish on {topic_name} acknowledged in epoch {epoch} (seq {seq}) after epoch {previous}: the server reset the topic's stream mid-run"
                        ));
                    }
                }
                let fanout = shared.subs_on_topic[topic].load(Ordering::Relaxed);
                shared.expected[step].fetch_add(fanout, Ordering::Relaxed);
                shared.acked[step].fetch_add(1, Ordering::Relaxed);
            }
            Ok(ServerMessage::Pong { .. }) => {}
            Ok(_) => shared.error(format!("publisher: unexpected frame {text}")),
            Err(e) => shared.error(format!("publisher: invalid frame: {e}: {text}")),
        }
    }
}

/// Sends `auth` and waits for `authenticated` when a token is given.
pub(crate) async fn authenticate(mut ws: Ws, token: Option<&str>) -> Result<Ws, String> {
    let Some(token) = token else { return Ok(ws) };
    let auth = ClientMessage::Auth {
        id: RequestId::new("auth").ok(),
        data: AuthData {
            token: token.to_owned(),
        },
    };
    send(&mut ws, &auth).await?;
    match next_message(&mut ws).await? {
        ServerMessage::Authenticated { .. } => Ok(ws),
        other => Err(format!(
            "authentication failed: {}",
            serde_json::to_string(&other).unwrap_or_default()
        )),
    }
}

pub(crate) async fn send(ws: &mut Ws, message: &ClientMessage) -> Result<(), String> {
    let text = serde_json::to_string(message).map_err(|e| e.to_string())?;
    ws.send(Message::text(text))
        .await
        .map_err(|e| format!("send {}: {e}", message.kind()))
}

/// The next text frame, fully decoded and validated.
pub(crate) async fn next_message(ws: &mut Ws) -> Result<ServerMessage, String> {
    loop {
        match rtbus_socket::next(ws).await {
            Inbound::Text(text) => {
                return decode_server_frame(text.as_str())
                    .map_err(|e| format!("invalid frame {text}: {e}"));
            }
            Inbound::Binary(_) => {}
            Inbound::Close { code, reason } => {
                return Err(format!("closed: code {code:?}, reason {reason:?}"));
            }
            Inbound::Failed(e) => return Err(e.to_string()),
            Inbound::Ended => return Err("connection ended".to_owned()),
        }
    }
}

/// Publisher `p`'s connection: dialled and authenticated with `token`.
pub(crate) async fn open_publisher(
    url: &str,
    addr: SocketAddr,
    token: Option<&str>,
    p: usize,
) -> anyhow::Result<Ws> {
    let ws = open(url, addr, false)
        .await
        .map_err(|e| anyhow::anyhow!("publisher {p}: {e}"))?;
    authenticate(ws, token)
        .await
        .map_err(|e| anyhow::anyhow!("publisher {p}: {e}"))
}

/// Opens a WebSocket offering the rtbus subprotocol and requiring the server to select it. A
/// `stalled` connection gets a tiny receive buffer so that the server notices it stopped reading
/// after little data; every subscriber holds small buffers so 10,000 of them fit comfortably.
pub(crate) async fn open(url: &str, addr: SocketAddr, stalled: bool) -> Result<Ws, String> {
    let url = Url::parse(url).map_err(|e| e.to_string())?;
    let dial = Dial::new()
        .require_subprotocol(SUBPROTOCOL)
        .write_buffer_size(0);
    let dial = if stalled {
        dial.recv_buffer(4096).read_buffer_size(4096)
    } else {
        dial.read_buffer_size(16 * 1024)
    };
    let (ws, _) = dial
        .connect_to(&url, addr)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// The one address every connection of a run dials (`--url` is resolved once).
pub(crate) async fn resolve(url: &str) -> anyhow::Result<SocketAddr> {
    let parsed = Url::parse(url).map_err(|e| anyhow::anyhow!("--url {url}: {e}"))?;
    parsed
        .resolve()
        .await
        .map_err(|e| anyhow::anyhow!("--url {url}: {e}"))
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(url: String, token: &str) -> Plan {
        Plan {
            label: "smoke".to_owned(),
            url,
            subscriber_urls: Vec::new(),
            redis_stats: None,
            token: Some(token.to_owned()),
            subscribers: 20,
            topics: 2,
            topic_kind: TopicKind::Custom,
            publishers: 2,
            payload_bytes: 100,
            fixed_publish_rate: Some(200.0),
            start_deliveries: 0.0,
            step_factor: 2.0,
            max_steps: 1,
            step_time: Duration::from_millis(300),
            drain_timeout: Duration::from_secs(5),
            half_load: false,
            stalled: 0,
            idle: None,
            server_pid: None,
            validate_every: 1,
            connect_concurrency: 8,
            connect_timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn the_ladder_offers_deliveries_and_stalled_subscribers_are_spread_out() {
        let mut p = plan("ws://127.0.0.1:1/api/realtime".to_owned(), "t");
        p.fixed_publish_rate = None;
        p.start_deliveries = 1000.0;
        p.max_steps = 3;
        // 10 healthy subscribers per topic: 1000, 2000, 4000 deliveries/s are 100, 200, 400
        // publishes/s.
        assert_eq!(step_rates(&p, 10.0), [100.0, 200.0, 400.0]);
        p.fixed_publish_rate = Some(25.0);
        assert_eq!(step_rates(&p, 10.0), [25.0]);
        p.stalled = 3;
        let stalled: Vec<usize> = (0..p.subscribers).filter(|i| p.is_stalled(*i)).collect();
        assert_eq!(stalled, [0, 6, 12]);
        p.stalled = 0;
        assert!(!(0..p.subscribers).any(|i| p.is_stalled(i)));
    }

    #[test]
    fn subscribers_of_every_topic_are_split_evenly_over_the_servers() {
        // One topic, two servers: alternately, the first on the publishers' server.
        let one: Vec<usize> = (0..6).map(|i| subscriber_server(i, 1, 2)).collect();
        assert_eq!(one, [0, 1, 0, 1, 0, 1]);
        // Two topics, two servers: topic i mod 2, each topic's subscribers on both servers
        // (i mod servers alone would put all of topic 0 on server 0).
        let two: Vec<(usize, usize)> = (0..8)
            .map(|i| (i % 2, subscriber_server(i, 2, 2)))
            .collect();
        assert_eq!(
            two,
            [
                (0, 0),
                (1, 0),
                (0, 1),
                (1, 1),
                (0, 0),
                (1, 0),
                (0, 1),
                (1, 1)
            ]
        );
        // 1,000 subscribers over 3 servers: 334, 333, 333.
        let mut counts = [0usize; 3];
        (0..1000).for_each(|i| counts[subscriber_server(i, 1, 3)] += 1);
        assert_eq!(counts, [334, 333, 333]);
        // One server, or nonsense counts: everyone on the first, never out of range.
        assert!((0..50).all(|i| subscriber_server(i, 4, 1) == 0));
        assert_eq!(subscriber_server(7, 0, 0), 0);
    }

    #[test]
    fn a_seq_gap_is_a_loss_and_a_step_back_a_reordering() {
        let mut stream = Stream::subscribed("e1", 4);
        assert_eq!(stream.advance(5), Advance::Next);
        assert_eq!(stream.advance(8), Advance::Gap { from: 6, to: 7 });
        assert_eq!(stream.advance(8), Advance::Backwards { last: 8 });
        assert_eq!(stream.advance(9), Advance::Next);
        assert_eq!(
            (stream.first, stream.last, stream.received),
            (Some(5), Some(9), 3)
        );
        // The first event after `subscribed` must be seq + 1, or the ones before it are lost.
        assert_eq!(
            Stream::subscribed("e1", 0).advance(3),
            Advance::Gap { from: 1, to: 2 }
        );
        // An epoch that began mid-run starts wherever its first event is.
        assert_eq!(Stream::mid_run("e2").advance(3), Advance::Next);
    }

    #[test]
    fn acknowledgements_are_counted_per_epoch() {
        let mut streams = Vec::new();
        assert_eq!(acknowledge(&mut streams, "e1", 1), Ok(()));
        assert_eq!(acknowledge(&mut streams, "e1", 2), Ok(()));
        assert_eq!(
            acknowledge(&mut streams, "e1", 4),
            Err(AckTrouble::NotNext { previous: 2 })
        );
        assert_eq!(
            acknowledge(&mut streams, "e2", 1),
            Err(AckTrouble::NewEpoch {
                previous: "e1".to_owned()
            })
        );
        assert_eq!(acknowledge(&mut streams, "e2", 2), Ok(()));
        let summary: Vec<_> = streams
            .iter()
            .map(|a| (a.epoch.as_str(), a.first, a.last, a.count))
            .collect();
        assert_eq!(summary, [("e1", 1, 4, 3), ("e2", 1, 2, 2)]);
    }

    fn shared_for(topic: &str) -> Shared {
        let topic = Topic::new(topic).expect("valid topic");
        Shared {
            epoch: Instant::now(),
            topic_index: HashMap::new(),
            topics: vec![topic],
            subs_on_topic: Vec::new(),
            hists: Vec::new(),
            delivered: Vec::new(),
            last_delivery_ns: Vec::new(),
            expected: Vec::new(),
            sent: Vec::new(),
            acked: Vec::new(),
            acks: Mutex::new(Vec::new()),
            lost: AtomicU64::new(0),
            epoch_changes: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            error_samples: Mutex::new(Vec::new()),
            validate_every: 0,
            publish_start_ns: AtomicU64::new(0),
        }
    }

    #[test]
    fn a_reset_topic_is_accounted_epoch_by_epoch() {
        let shared = shared_for("custom.bench.0");
        let acked = |epoch: &str, first, last| Acked {
            epoch: epoch.to_owned(),
            first,
            last,
            count: last - first + 1,
        };
        let acks = [acked("e1", 1, 10), acked("e2", 1, 5)];
        // Saw e1 up to 8 (2 still on their way), then e2 from 3: 1 and 2 of e2 were lost.
        let mut first = Stream::subscribed("e1", 0);
        (1..=8).for_each(|seq| assert_eq!(first.advance(seq), Advance::Next));
        let mut second = Stream::mid_run("e2");
        (3..=5).for_each(|seq| assert_eq!(second.advance(seq), Advance::Next));
        let result = SubResult {
            connected: true,
            streams: vec![first, second],
            ..SubResult::default()
        };
        assert_eq!(account_subscriber(&shared, &result, &acks), 2);
        assert_eq!(shared.lost.load(Ordering::Relaxed), 2);
        let samples = shared.error_samples.lock().expect("not poisoned").clone();
        assert!(
            samples[0].contains("missed 2 event(s) at the start of epoch e2"),
            "{samples:?}"
        );

        // A subscriber that never saw the second epoch has all of it still undelivered.
        let shared = shared_for("custom.bench.0");
        let result = SubResult {
            connected: true,
            streams: vec![Stream::subscribed("e1", 10)],
            ..SubResult::default()
        };
        assert_eq!(account_subscriber(&shared, &result, &acks), 5);
        assert_eq!(shared.lost.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_published_event_reaches_every_subscriber_of_its_topic() {
        let server = crate::embedded::start("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("reference server starts");
        let mut p = plan(server.url(), crate::embedded::PUBLISHER_TOKEN);
        let report = run(p.clone()).await.expect("run completes");
        server.shutdown().await;
        assert!(report.is_clean(), "{}", report.render());
        let step = &report.steps[0];
        assert!(step.published > 0, "{}", report.render());
        // 20 subscribers over 2 topics, publishes alternate between the topics.
        assert_eq!(step.expected, step.published * 10, "{}", report.render());
        assert_eq!(step.delivered, step.expected, "{}", report.render());
        assert_eq!(step.latency.count, step.delivered);

        // The same plan with a wrong token fails loudly instead of measuring nothing.
        let server = crate::embedded::start("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("reference server starts");
        p.url = server.url();
        p.token = Some("not-a-token".to_owned());
        let err = run(p).await.expect_err("publisher cannot authenticate");
        server.shutdown().await;
        assert!(err.to_string().contains("authentication failed"), "{err}");
    }
}
