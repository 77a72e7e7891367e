//! The `rtbus-bench` command line: one load against a server, the loopback floor (`--floor`), the
//! reference server in its bench configuration (`--serve`), or the whole suite (`--suite`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use crate::generator::{self, TopicKind};
use crate::report::Report;
use crate::soak::verdict::{SAMPLE_HEADER, sample_row};
use crate::{cluster, embedded, floor, soak, suite};

/// Exit code: an error (bad arguments, the server could not be reached, a run broke).
pub const EXIT_ERROR: u8 = 2;

/// Load generator, loopback floor and benchmark suite for rtbus v1 servers.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "rtbus-bench", version, about, long_about = None)]
#[command(group(clap::ArgGroup::new("bulk").args(["suite", "cluster"])))]
pub struct BenchArgs {
    /// The server to drive, e.g. ws://127.0.0.1:8080/api/realtime. Without it, the reference
    /// server is started in-process on a free loopback port. The publishers connect here.
    #[arg(long, env = "RTBUS_URL")]
    pub url: Option<String>,
    /// Another server for the subscribers, e.g. a second node of a cluster; repeatable. The
    /// publishers stay on --url; subscriber i takes topic i mod --topics and server
    /// (i div --topics) mod (1 + number of --subscriber-url), server 0 being --url, so each
    /// topic's subscribers are split evenly over the servers.
    #[arg(long = "subscriber-url", requires = "url")]
    pub subscriber_urls: Vec<String>,
    /// A Redis (redis://HOST:PORT) the servers share: its `INFO commandstats` is read before the
    /// first step and after the last one, and the report gives its commands per publish.
    #[arg(long, requires = "url", conflicts_with_all = ["idle", "floor", "soak"])]
    pub redis_stats: Option<String>,
    /// Bearer token for the publishers (sent in an `auth` frame). Defaults to the embedded
    /// server's bench publisher token when no --url is given; none otherwise.
    #[arg(long, env = "RTBUS_PUBLISHER_TOKEN")]
    pub token: Option<String>,
    /// Name of the server under test in the report.
    #[arg(long)]
    pub label: Option<String>,
    /// Subscriber connections (stalled ones included).
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    /// Topics the subscribers are spread over; subscriber i takes topic i mod topics.
    #[arg(long, default_value_t = 1)]
    pub topics: usize,
    /// Topic family: custom.bench.<n> or sessions.activity:bench-<n>.
    #[arg(long, value_enum, default_value_t = TopicKind::Custom)]
    pub topic_kind: TopicKind,
    /// Publisher connections; topics are split among them.
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    /// Approximate size of each event payload in bytes.
    #[arg(long, default_value_t = 100)]
    pub payload_bytes: usize,
    /// Publish at this fixed rate (publishes/s, all publishers together) in a single step
    /// instead of stepping up to saturation.
    #[arg(long)]
    pub rate: Option<f64>,
    /// First step of the ladder, in offered deliveries per second.
    #[arg(long, default_value_t = 100_000.0)]
    pub start_deliveries: f64,
    /// Each step offers this factor more than the previous one.
    #[arg(long, default_value_t = 2.0)]
    pub step_factor: f64,
    /// Most steps in the ladder; it stops at the first saturated step.
    #[arg(long, default_value_t = 8)]
    pub max_steps: usize,
    /// Seconds of publishing per step.
    #[arg(long, default_value_t = 2.0)]
    pub step_secs: f64,
    /// Seconds to wait for a step's events after its publishing ended.
    #[arg(long, default_value_t = 10.0)]
    pub drain_secs: f64,
    /// After the ladder, run a step at half the saturation rate and report its latency.
    #[arg(long)]
    pub half_load: bool,
    /// How many of the subscribers stop reading right after subscribing (slow consumers).
    #[arg(long, default_value_t = 0)]
    pub stalled: usize,
    /// Idle mode: connect and subscribe, wait this many seconds, report the server's resident
    /// memory per connection (needs --server-pid), publish nothing.
    #[arg(long)]
    pub idle: Option<f64>,
    /// Process id of the server under test, to report its CPU time and memory.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Fully decode and schema-check every n-th frame (and each connection's first frames);
    /// 1 checks every frame.
    #[arg(long, default_value_t = 1024)]
    pub validate_every: u64,
    /// Connections opened at once.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
    /// Seconds allowed for each connection to open and subscribe.
    #[arg(long, default_value_t = 30.0)]
    pub connect_timeout_secs: f64,
    /// Write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Do not generate load: start the reference server on this address with the bench
    /// configuration, print its URL and pid, and serve until interrupted (so it can be pinned to
    /// its own core).
    #[arg(long, conflicts_with = "url")]
    pub serve: Option<std::net::SocketAddr>,
    /// With --serve: use the Redis engine on this Redis (redis://HOST:PORT), so several served
    /// nodes form one cluster.
    #[arg(long, requires = "serve")]
    pub redis_url: Option<String>,
    /// Run the benchmark suite instead of one load: every scenario against the reference server
    /// and each --peer, each server pinned to core 0 and the generator to core 1.
    #[arg(long, value_enum, conflicts_with_all = ["url", "serve"])]
    pub suite: Option<suite::Mode>,
    /// A peer server for --suite, as NAME=COMMAND; the command must print
    /// `listening <ws-url> pid <pid>` as its first line. Repeatable.
    #[arg(long = "peer", requires = "suite")]
    pub peers: Vec<suite::ServerSpec>,
    /// Run the scale-out comparison instead of one load: a fresh redis-server on a free loopback
    /// port, two reference-server nodes on it, and the same loads against one node with the
    /// memory engine and against the two nodes (publisher on the first, subscribers split);
    /// writes cluster.json and cluster.md to --out.
    #[arg(long, value_enum, conflicts_with_all = ["url", "serve", "suite"])]
    pub cluster: Option<suite::Mode>,
    /// The redis-server binary --cluster starts.
    #[arg(long, default_value = "redis-server", requires = "cluster")]
    pub redis_server: PathBuf,
    /// Where --suite writes results.json, results.md and chart.svg, and --cluster cluster.json
    /// and cluster.md.
    #[arg(long, default_value = "bench/results", requires = "bulk")]
    pub out: PathBuf,
    /// Criterion's output directory, to include its frame micro-benchmarks in the suite results.
    #[arg(long, requires = "suite")]
    pub criterion_dir: Option<PathBuf>,
    /// Run only the suite scenarios whose id starts with one of these (e.g. fanout, idle).
    #[arg(long, requires = "suite")]
    pub only: Vec<String>,
    /// Measure the loopback floor instead of a server: --rate bursts per second, each one
    /// --payload-bytes record written with a blocking `write` to each of --subscribers plain TCP
    /// loopback connections (no WebSocket, no JSON, no async runtime), read with epoll on
    /// another core; writer pinned to the first usable core, reader to the second.
    #[arg(
        long,
        requires = "rate",
        conflicts_with_all = [
            "url", "serve", "suite", "idle", "half_load", "stalled", "server_pid", "token",
            "topics", "topic_kind", "publishers",
        ]
    )]
    pub floor: bool,
    /// Soak the server at --url instead of measuring it: publish at --rate for this many
    /// seconds over --topics, with --subscribers (the last --churners of them churning), sample
    /// its memory (--server-pid) every --sample-secs, and fail on any lost, duplicated or
    /// reordered event, any error, or memory growth after the warm-up beyond --rss-growth-mib.
    #[arg(
        long,
        requires_all = ["url", "server_pid", "rate"],
        conflicts_with_all = ["serve", "suite", "floor", "idle", "half_load", "stalled"]
    )]
    pub soak: Option<f64>,
    /// Soak: seconds between samples of the server's memory and the counters.
    #[arg(long, default_value_t = 5.0, requires = "soak")]
    pub sample_secs: f64,
    /// Soak: seconds after the first publish that the memory bound ignores. Default: 1.5 × the
    /// time the histories take to fill (--history-per-topic × --topics / --rate), at least 10.
    #[arg(long, requires = "soak")]
    pub warmup_secs: Option<f64>,
    /// Soak: the server's events kept per topic (its `history_per_topic`), for the warm-up.
    #[arg(long, default_value_t = 1024, requires = "soak")]
    pub history_per_topic: usize,
    /// Soak: how many of the subscribers leave and come back (alternately unsubscribing and
    /// reconnecting, each time resuming after the last seq seen).
    #[arg(long, default_value_t = 0, requires = "soak")]
    pub churners: usize,
    /// Soak: seconds between a churner's cycles.
    #[arg(long, default_value_t = 0.5, requires = "soak")]
    pub churn_secs: f64,
    /// Soak: the growth of the server's memory allowed from the first sample after the warm-up
    /// to the last one, in MiB.
    #[arg(long, default_value_t = 8.0, requires = "soak")]
    pub rss_growth_mib: f64,
    /// Soak: where to write soak.json (the report) and samples.csv.
    #[arg(long, default_value = "target/soak", requires = "soak")]
    pub soak_dir: PathBuf,
}

/// Runs `rtbus-bench`. Exit code 0: no lost, reordered or erroneous event; 1: some; errors
/// (server unreachable, bad arguments) are returned, and `main` exits with [`EXIT_ERROR`].
pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if let Some(addr) = args.serve {
        return embedded::serve(addr, args.redis_url.clone())
            .await
            .map(|()| ExitCode::SUCCESS);
    }
    if let Some(mode) = args.cluster {
        let options = cluster::ClusterOptions {
            mode,
            out: args.out.clone(),
            redis_server: args.redis_server.clone(),
        };
        let results = tokio::task::spawn_blocking(move || cluster::run(&options)).await??;
        return Ok(if results.is_clean() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    if let Some(mode) = args.suite {
        let options = suite::SuiteOptions {
            mode,
            peers: args.peers.clone(),
            out: args.out.clone(),
            criterion_dir: args.criterion_dir.clone(),
            only: args.only.clone(),
        };
        let results = tokio::task::spawn_blocking(move || suite::run(&options)).await??;
        let clean = results
            .entries
            .iter()
            .all(|e| e.report.as_ref().is_some_and(Report::is_clean) && e.failure.is_none());
        return Ok(if clean {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let secs = |s: f64, flag: &str| {
        Duration::try_from_secs_f64(s).with_context(|| format!("{flag} {s}: not a duration"))
    };
    if args.floor {
        let plan = floor::FloorPlan {
            connections: args.subscribers,
            record_bytes: args.payload_bytes,
            rate: args
                .rate
                .context("--floor needs --rate (bursts per second)")?,
            step_time: secs(args.step_secs, "--step-secs")?,
            drain_timeout: secs(args.drain_secs, "--drain-secs")?,
        };
        // Plain threads, off the runtime: the floor is measured without an async runtime.
        let report = tokio::task::spawn_blocking(move || floor::run(&plan)).await??;
        return finish(&report, args.json.as_deref());
    }
    if let Some(soak_secs) = args.soak {
        return soak(&args, secs(soak_secs, "--soak")?).await;
    }
    let (url, token, embedded) = match &args.url {
        Some(url) => (url.clone(), args.token.clone(), None),
        None => {
            let server = embedded::start("127.0.0.1:0".parse()?).await?;
            let token = args
                .token
                .clone()
                .or_else(|| Some(embedded::PUBLISHER_TOKEN.to_owned()));
            (server.url(), token, Some(server))
        }
    };
    let plan = generator::Plan {
        label: args.label.clone().unwrap_or_else(|| {
            if embedded.is_some() {
                "rtbus-server (in-process)".to_owned()
            } else {
                url.clone()
            }
        }),
        url,
        subscriber_urls: args.subscriber_urls.clone(),
        redis_stats: args.redis_stats.clone(),
        token,
        subscribers: args.subscribers,
        topics: args.topics,
        topic_kind: args.topic_kind,
        publishers: args.publishers,
        payload_bytes: args.payload_bytes,
        fixed_publish_rate: args.rate,
        start_deliveries: args.start_deliveries,
        step_factor: args.step_factor,
        max_steps: args.max_steps,
        step_time: secs(args.step_secs, "--step-secs")?,
        drain_timeout: secs(args.drain_secs, "--drain-secs")?,
        half_load: args.half_load,
        stalled: args.stalled,
        idle: args.idle.map(|s| secs(s, "--idle")).transpose()?,
        server_pid: args.server_pid,
        validate_every: args.validate_every,
        connect_concurrency: args.connect_concurrency,
        connect_timeout: secs(args.connect_timeout_secs, "--connect-timeout-secs")?,
    };
    let report = generator::run(plan).await;
    if let Some(server) = embedded {
        server.shutdown().await;
    }
    finish(&report?, args.json.as_deref())
}

/// Prints the report, writes it as JSON if asked, and turns it into the exit code.
fn finish(report: &Report, json: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    print!("{}", report.render());
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Runs `--soak`: prints the samples as they come and the summary, writes `soak.json` and
/// `samples.csv` to `--soak-dir`, and turns the verdict into the exit code.
async fn soak(args: &BenchArgs, duration: Duration) -> anyhow::Result<ExitCode> {
    let secs = |s: f64, flag: &str| {
        Duration::try_from_secs_f64(s).with_context(|| format!("{flag} {s}: not a duration"))
    };
    let rate = args
        .rate
        .context("--soak needs --rate (publishes per second)")?;
    let server_pid = args.server_pid.context("--soak needs --server-pid")?;
    let url = args.url.clone().context("--soak needs --url")?;
    let warmup_s = match args.warmup_secs {
        Some(w) if w.is_finite() && w >= 0.0 => w,
        Some(w) => anyhow::bail!("--warmup-secs {w}: expected a number of seconds ≥ 0"),
        None => soak::warmup_secs(rate, args.topics, args.history_per_topic),
    };
    anyhow::ensure!(
        args.rss_growth_mib.is_finite() && args.rss_growth_mib >= 0.0,
        "--rss-growth-mib {}: expected a number of MiB ≥ 0",
        args.rss_growth_mib
    );
    let plan = soak::SoakPlan {
        url,
        token: args.token.clone(),
        server_pid,
        duration,
        rate,
        topics: args.topics,
        subscribers: args.subscribers,
        churners: args.churners,
        churn: secs(args.churn_secs, "--churn-secs")?,
        publishers: args.publishers,
        payload_bytes: args.payload_bytes,
        sample_every: secs(args.sample_secs, "--sample-secs")?,
        bound: soak::verdict::RssBound {
            warmup_s,
            growth_bytes: (args.rss_growth_mib * 1024.0 * 1024.0) as u64,
        },
        drain_timeout: secs(args.drain_secs, "--drain-secs")?,
        connect_timeout: secs(args.connect_timeout_secs, "--connect-timeout-secs")?,
    };
    println!(
        "soak: {:.0} s, warm-up {warmup_s:.1} s (w), memory bound: last ≤ first after the \
         warm-up + {} MiB",
        duration.as_secs_f64(),
        args.rss_growth_mib
    );
    println!("{SAMPLE_HEADER}");
    let report = soak::run(plan, |sample| println!("{}", sample_row(sample))).await?;
    print!("{}", report.render());
    let dir = &args.soak_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let json = dir.join("soak.json");
    let text = serde_json::to_string_pretty(&report)?;
    std::fs::write(&json, text + "\n").with_context(|| format!("writing {}", json.display()))?;
    let csv = dir.join("samples.csv");
    std::fs::write(&csv, report.csv()).with_context(|| format!("writing {}", csv.display()))?;
    println!("samples: {} and {}", csv.display(), json.display());
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
