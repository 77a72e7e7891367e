//! The soak: steady load well below saturation for minutes, the server's resident memory
//! sampled over time, every event accounted for by `seq`, and a verdict that fails on any loss,
//! duplicate, reordering or error, or on memory growth after the warm-up beyond a bound.
//!
//! Publishers send at a fixed open-loop rate, round robin over the topics. Subscribers (one
//! topic each, subscriber i on topic i mod topics) follow their topic from the `seq` of their
//! first subscription to the end of the run; the churners among them leave and come back every
//! `churn` (alternately unsubscribing and resubscribing on the same connection, and closing and
//! reconnecting), each time resuming after the last `seq` they saw, so the subscribe,
//! unsubscribe, resume and connection paths run thousands of times while every event must still
//! arrive exactly once. At the end the publishers stop, and every subscriber reads until it has
//! its topic's last acknowledged `seq` (or the drain deadline passes: what is missing is lost).
//!
//! - `subscriber`: one subscriber and its stream accounting.
//! - [`verdict`]: the samples, the totals and the rules that judge them.

mod subscriber;
pub mod verdict;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use rtbus_protocol::decode_server_frame;
use rtbus_protocol::{ClientMessage, PublishData, RequestId, ServerMessage, Topic};
use rtbus_socket::Inbound;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::TopicKind;
use crate::generator::{AckTrouble, Acked, PayloadMaker, Ws, acknowledge, open_publisher, resolve};
use crate::sys::{self, Pid};
use subscriber::Subscriber;
use verdict::{RssBound, Sample, SoakLoad, SoakReport};

/// How many error messages a report keeps verbatim.
const MAX_ERROR_SAMPLES: usize = 10;

/// Everything a soak run needs, resolved from the command line.
#[derive(Debug, Clone)]
pub struct SoakPlan {
    /// `ws://` URL of the endpoint.
    pub url: String,
    /// Bearer token for the publishers.
    pub token: Option<String>,
    /// The server's process id, whose `/proc/<pid>/status` gives its memory.
    pub server_pid: u32,
    /// How long to publish.
    pub duration: Duration,
    /// Publishes per second, all publishers together.
    pub rate: f64,
    /// Topics (`custom.bench.<n>`).
    pub topics: usize,
    /// Subscriber connections, churners included.
    pub subscribers: usize,
    /// How many of the subscribers churn.
    pub churners: usize,
    /// Time between a churner's cycles.
    pub churn: Duration,
    /// Publisher connections.
    pub publishers: usize,
    /// Approximate payload size in bytes.
    pub payload_bytes: usize,
    /// Time between samples.
    pub sample_every: Duration,
    /// The memory rule.
    pub bound: RssBound,
    /// Time for every subscriber to catch up after publishing stopped.
    pub drain_timeout: Duration,
    /// Time allowed for each connection to open and subscribe.
    pub connect_timeout: Duration,
}

impl SoakPlan {
    /// Refuses a plan that cannot judge anything.
    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.subscribers > 0, "--subscribers must be at least 1");
        anyhow::ensure!(self.topics > 0, "--topics must be at least 1");
        anyhow::ensure!(self.publishers > 0, "--publishers must be at least 1");
        anyhow::ensure!(
            self.rate.is_finite() && self.rate > 0.0,
            "--rate {}: expected a positive number of publishes per second",
            self.rate
        );
        anyhow::ensure!(
            self.churners <= self.subscribers,
            "--churners {} is more than --subscribers {}",
            self.churners,
            self.subscribers
        );
        anyhow::ensure!(
            !self.sample_every.is_zero(),
            "--sample-secs must be more than 0"
        );
        anyhow::ensure!(
            self.churners == 0 || !self.churn.is_zero(),
            "--churn-secs must be more than 0"
        );
        let measured = self.duration.as_secs_f64() - self.bound.warmup_s;
        anyhow::ensure!(
            measured >= 2.0 * self.sample_every.as_secs_f64(),
            "a {:.0} s soak with a {:.0} s warm-up leaves {measured:.0} s after it, less than \
             two samples ({:.0} s apart): run longer, or shorten --warmup-secs",
            self.duration.as_secs_f64(),
            self.bound.warmup_s,
            self.sample_every.as_secs_f64()
        );
        Ok(())
    }

    fn load(&self) -> SoakLoad {
        SoakLoad {
            url: self.url.clone(),
            duration_s: self.duration.as_secs_f64(),
            rate: self.rate,
            topics: self.topics,
            subscribers: self.subscribers,
            churners: self.churners,
            churn_s: self.churn.as_secs_f64(),
            publishers: self.publishers,
            payload_bytes: self.payload_bytes,
            sample_s: self.sample_every.as_secs_f64(),
        }
    }
}

/// The shortest warm-up that lets the server's per-topic histories fill at `rate` (publishes
/// per second spread over `topics`, `history` events kept per topic), with half as much again
/// for the allocator to settle, and at least 10 s. Memory grows by design until every history is
/// full, so a baseline taken earlier would count that as growth.
pub fn warmup_secs(rate: f64, topics: usize, history: usize) -> f64 {
    let fill = history as f64 * topics as f64 / rate.max(1e-9);
    (1.5 * fill).max(10.0)
}

/// State shared by every task of a run.
#[derive(Debug)]
pub(crate) struct Shared {
    topics: Vec<Topic>,
    topic_index: HashMap<String, usize>,
    /// Per topic, its acknowledged streams in the order their epochs appeared.
    acks: Mutex<Vec<Vec<Acked>>>,
    sent: AtomicU64,
    acked: AtomicU64,
    received: AtomicU64,
    lost: AtomicU64,
    duplicated: AtomicU64,
    out_of_order: AtomicU64,
    errors: AtomicU64,
    resubscribes: AtomicU64,
    reconnects: AtomicU64,
    error_samples: Mutex<Vec<String>>,
}

impl Shared {
    fn new(topics: Vec<Topic>) -> Shared {
        Shared {
            topic_index: topics
                .iter()
                .enumerate()
                .map(|(i, t)| (t.as_str().to_owned(), i))
                .collect(),
            acks: Mutex::new(vec![Vec::new(); topics.len()]),
            topics,
            sent: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            received: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            duplicated: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            resubscribes: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            error_samples: Mutex::new(Vec::new()),
        }
    }

    fn error(&self, message: impl Into<String>) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut samples) = self.error_samples.lock() {
            if samples.len() < MAX_ERROR_SAMPLES {
                samples.push(message.into());
            }
        }
    }

    fn sample(&self, t_s: f64, warmup: bool, rss_bytes: Option<u64>) -> Sample {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Sample {
            t_s,
            warmup,
            rss_bytes,
            published: get(&self.acked),
            received: get(&self.received),
            lost: get(&self.lost),
            duplicated: get(&self.duplicated),
            out_of_order: get(&self.out_of_order),
            errors: get(&self.errors),
            resubscribes: get(&self.resubscribes),
            reconnects: get(&self.reconnects),
        }
    }
}

/// Where the run ends, sent to every subscriber once publishing stopped: per topic, the epoch
/// and `seq` of its last acknowledged publish, and the time by which it must have arrived.
#[derive(Debug)]
pub(crate) struct Finish {
    last: Vec<Option<(String, u64)>>,
    deadline: Instant,
}

/// Runs the soak and judges it; `on_sample` sees each sample as it is taken (to print the table
/// while the run goes on).
pub async fn run(plan: SoakPlan, mut on_sample: impl FnMut(&Sample)) -> anyhow::Result<SoakReport> {
    plan.check()?;
    let addr = resolve(&plan.url).await?;
    let topics = (0..plan.topics)
        .map(|i| {
            let name = format!("custom.bench.{i}");
            Topic::new(&name).map_err(|e| anyhow::anyhow!("topic {name}: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let shared = Arc::new(Shared::new(topics));
    let (finish_tx, finish_rx) = watch::channel(None::<Arc<Finish>>);

    let subscribers = start_subscribers(&plan, &shared, addr, &finish_rx).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let publishers = start_publishers(&plan, &shared, addr, &stop_rx).await?;

    let samples = sample_until_the_end(&plan, &shared, &mut on_sample).await;
    let _ = stop_tx.send(true);
    let (expected, received) = drain(&plan, &shared, publishers, subscribers, &finish_tx).await;
    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let mut report = SoakReport {
        load: plan.load(),
        bound: plan.bound,
        published: get(&shared.acked),
        expected,
        received,
        lost: get(&shared.lost),
        duplicated: get(&shared.duplicated),
        out_of_order: get(&shared.out_of_order),
        errors: get(&shared.errors),
        error_samples: shared
            .error_samples
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default(),
        resubscribes: get(&shared.resubscribes),
        reconnects: get(&shared.reconnects),
        rss: verdict::rss_summary(&samples, &plan.bound),
        samples,
        failures: Vec::new(),
    };
    report.failures = verdict::verdict(&report);
    Ok(report)
}

/// Samples the server's memory and the counters every [`SoakPlan::sample_every`] until the
/// run's length has passed.
async fn sample_until_the_end(
    plan: &SoakPlan,
    shared: &Shared,
    on_sample: &mut impl FnMut(&Sample),
) -> Vec<Sample> {
    let server = Pid::Other(plan.server_pid);
    let start = Instant::now();
    let end = start + plan.duration;
    let mut samples = Vec::new();
    let mut next = start + plan.sample_every;
    while next <= end + Duration::from_millis(1) {
        tokio::time::sleep_until(next.into()).await;
        let t_s = (next - start).as_secs_f64();
        let sample = shared.sample(t_s, t_s < plan.bound.warmup_s, sys::rss_bytes(server));
        on_sample(&sample);
        samples.push(sample);
        next += plan.sample_every;
    }
    tokio::time::sleep_until(end.into()).await;
    samples
}

/// Once the publishers were told to stop: waits for every publish to be acknowledged, tells
/// every subscriber where its topic's stream ended, and collects what they were owed and got
/// (expected, received).
async fn drain(
    plan: &SoakPlan,
    shared: &Shared,
    publishers: Vec<tokio::task::JoinHandle<()>>,
    subscribers: Vec<tokio::task::JoinHandle<subscriber::Outcome>>,
    finish_tx: &watch::Sender<Option<Arc<Finish>>>,
) -> (u64, u64) {
    let drain = Instant::now() + plan.drain_timeout;
    for publisher in publishers {
        let _ = tokio::time::timeout_at(drain.into(), publisher).await;
    }
    // Every publish sent is acknowledged before the targets are taken.
    while shared.acked.load(Ordering::Relaxed) < shared.sent.load(Ordering::Relaxed)
        && Instant::now() < drain
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let unacked = shared
        .sent
        .load(Ordering::Relaxed)
        .saturating_sub(shared.acked.load(Ordering::Relaxed));
    if unacked > 0 {
        shared.error(format!(
            "{unacked} publish(es) not acknowledged within the drain timeout"
        ));
    }
    let last = shared
        .acks
        .lock()
        .map(|acks| {
            acks.iter()
                .map(|streams| streams.last().map(|a| (a.epoch.clone(), a.last)))
                .collect()
        })
        .unwrap_or_default();
    let _ = finish_tx.send(Some(Arc::new(Finish {
        last,
        deadline: drain,
    })));
    let (mut expected, mut received) = (0u64, 0u64);
    for handle in subscribers {
        match tokio::time::timeout_at((drain + Duration::from_secs(5)).into(), handle).await {
            Ok(Ok(outcome)) => {
                expected += outcome.expected;
                received += outcome.received;
            }
            Ok(Err(e)) => shared.error(format!("a subscriber task failed: {e}")),
            Err(_) => shared.error("a subscriber did not stop after the drain deadline"),
        }
    }
    (expected, received)
}

/// Starts every subscriber (the last `churners` of them churn) and waits until each has
/// subscribed or failed; fails when any failed, since a soak with a missing subscriber would
/// judge less than it says.
async fn start_subscribers(
    plan: &SoakPlan,
    shared: &Arc<Shared>,
    addr: SocketAddr,
    finish: &watch::Receiver<Option<Arc<Finish>>>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<subscriber::Outcome>>> {
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::with_capacity(plan.subscribers);
    let steady = plan.subscribers - plan.churners;
    for i in 0..plan.subscribers {
        let subscriber = Subscriber {
            shared: Arc::clone(shared),
            addr,
            url: plan.url.clone(),
            topic: i % plan.topics,
            index: i,
            churn: (i >= steady).then_some(plan.churn),
            connect_timeout: plan.connect_timeout,
        };
        tasks.push(tokio::spawn(
            subscriber.run(ready_tx.clone(), finish.clone()),
        ));
        // A few at a time, so the server's accept queue never overflows.
        if i % 64 == 63 {
            tokio::task::yield_now().await;
        }
    }
    drop(ready_tx);
    let mut failed = 0usize;
    for _ in 0..plan.subscribers {
        match ready_rx.recv().await {
            Some(true) => {}
            Some(false) | None => failed += 1,
        }
    }
    if failed > 0 {
        let samples = shared
            .error_samples
            .lock()
            .map(|s| s.join("; "))
            .unwrap_or_default();
        anyhow::bail!(
            "{failed} of {} subscribers could not subscribe: {samples}",
            plan.subscribers
        );
    }
    Ok(tasks)
}

/// Opens and authenticates the publishers (publisher p takes the topics t with t mod
/// publishers = p) and starts their publish loops and acknowledgement readers.
async fn start_publishers(
    plan: &SoakPlan,
    shared: &Arc<Shared>,
    addr: SocketAddr,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let payload = PayloadMaker::new(TopicKind::Custom, plan.payload_bytes);
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
        tokio::spawn(read_acks(Arc::clone(shared), stream, stop.clone()));
        let rate = plan.rate * mine.len() as f64 / plan.topics as f64;
        publishers.push(tokio::spawn(publish(
            Arc::clone(shared),
            sink,
            mine,
            rate,
            payload.clone(),
            stop.clone(),
        )));
    }
    Ok(publishers)
}

/// Publishes on `topics` (round robin) at `rate` per second until told to stop, on an open-loop
/// schedule (the k-th publish is due at k / rate).
async fn publish(
    shared: Arc<Shared>,
    mut sink: SplitSink<Ws, Message>,
    topics: Vec<usize>,
    rate: f64,
    payload: PayloadMaker,
    mut stop: watch::Receiver<bool>,
) {
    let id = RequestId::new("p").ok();
    let interval = 1.0 / rate.max(1e-3);
    let start = Instant::now();
    let mut k = 0u64;
    while !*stop.borrow() {
        let due = (start.elapsed().as_secs_f64() / interval) as u64 + 1;
        while k < due {
            let t = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let message = ClientMessage::Publish {
                id: id.clone(),
                data: PublishData {
                    topic: shared.topics[topics[(k as usize) % topics.len()]].clone(),
                    payload: payload.make(t, 0),
                },
            };
            let sent = match serde_json::to_string(&message) {
                Ok(text) => sink.feed(Message::text(text)).await,
                Err(e) => {
                    shared.error(format!("publisher: {e}"));
                    return;
                }
            };
            if let Err(e) = sent {
                shared.error(format!("publisher: {e}"));
                return;
            }
            shared.sent.fetch_add(1, Ordering::Relaxed);
            k += 1;
        }
        if let Err(e) = sink.flush().await {
            shared.error(format!("publisher: {e}"));
            return;
        }
        let next = start + Duration::from_secs_f64(k as f64 * interval);
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Reads a publisher's acknowledgements: each publish's `seq` must follow the previous one of
/// its topic in the same epoch. Anything else the server sends is an error, and so is a close
/// before the run is over.
async fn read_acks(shared: Arc<Shared>, mut stream: SplitStream<Ws>, stop: watch::Receiver<bool>) {
    loop {
        let text = match rtbus_socket::next(&mut stream).await {
            Inbound::Text(text) => text,
            Inbound::Binary(_) => {
                shared.error("publisher: unexpected binary frame");
                continue;
            }
            other => {
                let drained = *stop.borrow()
                    && shared.acked.load(Ordering::Relaxed) >= shared.sent.load(Ordering::Relaxed);
                if !drained {
                    shared.error(format!("publisher: connection lost: {other:?}"));
                }
                break;
            }
        };
        let (topic, epoch, seq) = match decode_server_frame(text.as_str()) {
            Ok(ServerMessage::Published { data, .. }) => (data.topic, data.epoch, data.seq),
            Ok(_) => {
                shared.error(format!("publisher: unexpected frame {text}"));
                continue;
            }
            Err(e) => {
                shared.error(format!("publisher: invalid frame: {e}: {text}"));
                continue;
            }
        };
        let Some(&index) = shared.topic_index.get(topic.as_str()) else {
            shared.error(format!(
                "publisher: ack for a topic never published: {text}"
            ));
            continue;
        };
        let seq = seq.get();
        let recorded = match shared.acks.lock() {
            Ok(mut acks) => acknowledge(&mut acks[index], epoch.as_str(), seq),
            Err(_) => Ok(()),
        };
        match recorded {
            Ok(()) => {}
            Err(AckTrouble::NotNext { previous }) => shared.error(format!(
                "publish on {topic} acknowledged with seq {seq} after {previous} (epoch {epoch})"
            )),
            Err(AckTrouble::NewEpoch { previous }) => shared.error(format!(
                "publish on {topic} acknowledged in epoch {epoch} after epoch {previous}: the \
                 server reset the topic's stream mid-run"
            )),
        }
        shared.acked.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warm_up_covers_filling_every_history() {
        // 4 topics × 1,024 events at 400 publishes/s fill in 10.24 s; half as much again.
        assert!((warmup_secs(400.0, 4, 1024) - 15.36).abs() < 1e-9);
        // A fast fill still gets 10 s.
        assert_eq!(warmup_secs(10_000.0, 1, 1024), 10.0);
    }

    fn plan(url: String) -> SoakPlan {
        SoakPlan {
            url,
            token: Some(crate::embedded::PUBLISHER_TOKEN.to_owned()),
            server_pid: std::process::id(),
            duration: Duration::from_millis(1500),
            rate: 200.0,
            topics: 2,
            subscribers: 12,
            churners: 4,
            churn: Duration::from_millis(100),
            publishers: 1,
            payload_bytes: 100,
            sample_every: Duration::from_millis(500),
            bound: RssBound {
                warmup_s: 0.4,
                // The process is the test binary (server and generator together): the bound is
                // not what this test is about.
                growth_bytes: u64::MAX / 2,
            },
            drain_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn a_plan_too_short_for_its_warm_up_is_refused() {
        let mut p = plan("ws://127.0.0.1:1/api/realtime".to_owned());
        p.bound.warmup_s = 1.0;
        let err = p
            .check()
            .expect_err("0.5 s after the warm-up is one sample");
        assert!(err.to_string().contains("less than two samples"), "{err}");
        p.churners = 13;
        p.bound.warmup_s = 0.4;
        let err = p.check().expect_err("more churners than subscribers");
        assert!(err.to_string().contains("--churners 13"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn churning_subscribers_resume_without_losing_an_event() {
        let server = crate::embedded::start("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("reference server starts");
        let mut seen = 0;
        let report = run(plan(server.url()), |_| seen += 1)
            .await
            .expect("run completes");
        server.shutdown().await;
        assert!(report.is_clean(), "{}", report.render());
        assert_eq!(seen, 3, "a sample every 0.5 s for 1.5 s");
        assert_eq!(report.samples.len(), 3);
        assert!(report.published > 0, "{}", report.render());
        // Every subscriber is owed every publish of its topic (6 per topic, all subscribed
        // before the first publish), and got each exactly once.
        assert_eq!(report.expected, report.published * 6, "{}", report.render());
        assert_eq!(report.received, report.expected, "{}", report.render());
        assert_eq!(
            (
                report.lost,
                report.duplicated,
                report.out_of_order,
                report.errors
            ),
            (0, 0, 0, 0)
        );
        assert!(
            report.resubscribes > 0 && report.reconnects > 0,
            "{}",
            report.render()
        );
    }
}
