//! The scale-out comparison (`rtbus-bench --cluster`): the same loads against one reference
//! server on the memory engine and against two nodes sharing a Redis (publisher on node A,
//! subscribers split over A and B), in one run, with Redis's commands per publish at 100 and
//! 1,000 subscribers. Writes `cluster.json` and `cluster.md`.

mod table;

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::report::Report;
use crate::suite::{self, Mode, REFERENCE, ServerSpec};

pub use table::markdown;

/// Options of a `--cluster` run.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// quick or full.
    pub mode: Mode,
    /// Where `cluster.json` and `cluster.md` go.
    pub out: PathBuf,
    /// The `redis-server` binary to start.
    pub redis_server: PathBuf,
}

/// Where the load runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// One node, memory engine.
    Single,
    /// Two nodes on one Redis; the publisher on the first, the subscribers split over both.
    Cluster,
}

/// One load against one shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterRun {
    /// Scenario id (`fanout-1k`, `latency-1k`, `latency-100`).
    pub scenario: String,
    /// Where it ran.
    pub shape: Shape,
    /// Which round of the scenario (the fixed-rate ones run several rounds, one node and two
    /// alternately, so that drift on the machine reaches both alike).
    #[serde(default)]
    pub round: usize,
    /// The generator's report (with Redis's commands on the cluster's fixed-rate runs).
    pub report: Option<Report>,
    /// Why there is no report.
    pub failure: Option<String>,
}

/// Everything one `--cluster` run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterResults {
    /// quick or full.
    pub mode: Mode,
    /// Machine description.
    pub machine: String,
    /// Whether the servers and Redis ran on one core and the generator on another.
    pub pinned: bool,
    /// `redis-server --version`.
    pub redis_version: String,
    /// The publish rate of the fixed-rate runs.
    pub fixed_rate: f64,
    /// Every run, single before cluster for each scenario.
    pub runs: Vec<ClusterRun>,
}

impl ClusterResults {
    /// Whether every run produced a report without loss, reordering, epoch change or error.
    pub fn is_clean(&self) -> bool {
        self.runs
            .iter()
            .all(|r| r.failure.is_none() && r.report.as_ref().is_some_and(Report::is_clean))
    }

    /// The runs of `scenario` on `shape`, round by round.
    pub fn runs_of(&self, scenario: &str, shape: Shape) -> impl Iterator<Item = &ClusterRun> {
        let scenario = scenario.to_owned();
        self.runs
            .iter()
            .filter(move |r| r.scenario == scenario && r.shape == shape)
    }

    /// The report of the first round of `scenario` on `shape`, if it ran and reported.
    pub fn report(&self, scenario: &str, shape: Shape) -> Option<&Report> {
        self.runs_of(scenario, shape).next()?.report.as_ref()
    }
}

/// The fixed publish rate of the latency runs: the suite's `latency-1k` rate.
pub const FIXED_RATE: f64 = suite::FLOOR_LOW_RATE;

/// Scenario ids, in the order they run.
pub const FANOUT: &str = "fanout-1k";
/// The fixed-rate run at 1,000 subscribers.
pub const LATENCY_1K: &str = "latency-1k";
/// The fixed-rate run at 100 subscribers.
pub const LATENCY_100: &str = "latency-100";

/// Rounds of each fixed-rate scenario (one node, then two, each round).
fn rounds(mode: Mode, scenario: &str) -> usize {
    match (mode, scenario) {
        (_, FANOUT) | (Mode::Quick, _) => 1,
        (Mode::Full, _) => 3,
    }
}

/// A scenario: its id and the generator's arguments. The ladder starts at 25,000 deliveries/s
/// (a quarter of the suite's fanout-1k start), low enough for the cluster's first step to be
/// under its saturation.
fn scenarios(mode: Mode) -> Vec<(&'static str, Vec<String>)> {
    let quick = mode == Mode::Quick;
    let (ladder_step, ladder, fixed_step) = if quick {
        ("0.5", "6", "2")
    } else {
        ("2", "8", "5")
    };
    let rate = FIXED_RATE.to_string();
    let s = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let common = ["--topics", "1", "--payload-bytes", "100"];
    let fixed = |subscribers: &str| {
        let mut args = s(&common);
        args.extend(s(&[
            "--subscribers",
            subscribers,
            "--rate",
            &rate,
            "--step-secs",
            fixed_step,
        ]));
        args
    };
    let mut fanout = s(&common);
    fanout.extend(s(&[
        "--subscribers",
        "1000",
        "--start-deliveries",
        "25000",
        "--max-steps",
        ladder,
        "--step-secs",
        ladder_step,
    ]));
    vec![
        (FANOUT, fanout),
        (LATENCY_1K, fixed("1000")),
        (LATENCY_100, fixed("100")),
    ]
}

/// The `redis-server` under test; dropping it kills the process, so no way out of [`run`] (an
/// error, a panic) leaves it running.
struct Redis {
    child: Child,
    url: String,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port: one the kernel hands out, released for Redis to bind (another
/// process could take it in between; Redis then fails to start and says so).
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Whether a Redis answers `PING` on `port`.
fn answers_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

/// Starts `redis-server` on a free loopback port without persistence (`--save ''
/// --appendonly no`), pinned to `core`, its log in `log`, and waits until it answers.
fn start_redis(binary: &Path, core: Option<usize>, log: &Path) -> anyhow::Result<Redis> {
    let port = free_port()?;
    let command = format!(
        "{} --bind 127.0.0.1 --port {port} --save '' --appendonly no",
        suite::quote(&binary.to_string_lossy())
    );
    let log_file =
        std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let child = suite::shell(&command, core)
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let mut redis = Redis {
        child,
        url: format!("redis://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if answers_ping(port) {
            return Ok(redis);
        }
        if let Ok(Some(status)) = redis.child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            bail!(
                "{} exited with {status} before answering on port {port}; its log ends:\n{}",
                binary.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!(
        "{} did not answer PING on port {port} within 10 s (log: {})",
        binary.display(),
        log.display()
    )
}

/// `redis-server --version`, or why it could not be read.
fn redis_version(binary: &Path) -> anyhow::Result<String> {
    let output = std::process::Command::new(binary)
        .arg("--version")
        .output()
        .with_context(|| {
            format!(
                "running {} --version (is redis-server installed? --redis-server names it)",
                binary.display()
            )
        })?;
    if !output.status.success() {
        bail!(
            "{} --version exited with {}",
            binary.display(),
            output.status
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    // "Redis server v=7.0.15 sha=… malloc=… bits=64 build=…": the version is what counts.
    Ok(text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("v="))
        .map_or_else(|| text.trim().to_owned(), |v| format!("Redis {v}")))
}

/// The reference server as `rtbus-bench --serve`, on the memory engine or on `redis`.
fn node(redis: Option<&Redis>) -> anyhow::Result<ServerSpec> {
    let exe = std::env::current_exe()?;
    let mut command = format!(
        "{} --serve 127.0.0.1:0",
        suite::quote(&exe.to_string_lossy())
    );
    if let Some(redis) = redis {
        command.push_str(&format!(" --redis-url {}", suite::quote(&redis.url)));
    }
    Ok(ServerSpec {
        name: REFERENCE.to_owned(),
        command,
    })
}

/// Runs one scenario on one shape, on fresh servers: the generator's report.
fn run_one(
    shape: Shape,
    args: &[String],
    redis: &Redis,
    cores: (Option<usize>, Option<usize>),
    out: &Path,
) -> anyhow::Result<Report> {
    let (server_core, generator_core) = cores;
    match shape {
        Shape::Single => {
            let server = suite::start_server(&node(None)?, server_core)?;
            suite::run_generator(&server, REFERENCE, args, &[], generator_core, out)
        }
        Shape::Cluster => {
            let spec = node(Some(redis))?;
            let a = suite::start_server(&spec, server_core)?;
            let b = suite::start_server(&spec, server_core)?;
            // The fixed-rate runs count Redis's commands; the ladder's would mix steps.
            let fixed = args.iter().any(|a| a == "--rate");
            let mut extra = vec!["--subscriber-url".to_owned(), suite::quote(&b.url)];
            if fixed {
                extra.extend(["--redis-stats".to_owned(), suite::quote(&redis.url)]);
            }
            let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
            suite::run_generator(&a, REFERENCE, args, &extra, generator_core, out)
        }
    }
}

/// Runs the comparison and writes `cluster.json` and `cluster.md` into `options.out`.
///
/// Blocking (it runs and waits for processes): call it from a blocking thread.
pub fn run(options: &ClusterOptions) -> anyhow::Result<ClusterResults> {
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("creating {}", options.out.display()))?;
    let redis_version = redis_version(&options.redis_server)?;
    let pinned = suite::pinned();
    if !pinned {
        eprintln!(
            "warning: taskset or a second core is missing; servers and generator share cores"
        );
    }
    let cores = if pinned {
        (Some(0), Some(1))
    } else {
        (None, None)
    };
    let log = options
        .out
        .join(format!(".redis-{}.log", std::process::id()));
    let redis = start_redis(&options.redis_server, cores.0, &log)?;
    eprintln!("== {redis_version} on {}", redis.url);
    let mut runs = Vec::new();
    for (scenario, args) in scenarios(options.mode) {
        for round in 0..rounds(options.mode, scenario) {
            for shape in [Shape::Single, Shape::Cluster] {
                eprintln!("== {scenario} on {shape:?} (round {})", round + 1);
                let outcome = run_one(shape, &args, &redis, cores, &options.out);
                // The generator prints its own report.
                if let Err(e) = &outcome {
                    eprintln!("   failed: {e:#}");
                }
                runs.push(ClusterRun {
                    scenario: scenario.to_owned(),
                    shape,
                    round,
                    failure: outcome.as_ref().err().map(|e| format!("{e:#}")),
                    report: outcome.ok(),
                });
            }
        }
    }
    drop(redis);
    let _ = std::fs::remove_file(&log);
    let results = ClusterResults {
        mode: options.mode,
        machine: suite::machine(),
        pinned,
        redis_version,
        fixed_rate: FIXED_RATE,
        runs,
    };
    let json = serde_json::to_string_pretty(&results)? + "\n";
    std::fs::write(options.out.join("cluster.json"), json)?;
    let markdown = markdown(&results);
    std::fs::write(options.out.join("cluster.md"), &markdown)?;
    print!("{markdown}");
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_runs_one_publisher_on_one_topic_and_the_fixed_ones_at_one_rate() {
        for mode in [Mode::Quick, Mode::Full] {
            let scenarios = scenarios(mode);
            let ids: Vec<_> = scenarios.iter().map(|(id, _)| *id).collect();
            assert_eq!(ids, [FANOUT, LATENCY_1K, LATENCY_100]);
            let value = |args: &[String], flag: &str| {
                args.iter()
                    .position(|a| a == flag)
                    .and_then(|i| args.get(i + 1).cloned())
            };
            for (id, args) in &scenarios {
                assert_eq!(value(args, "--topics").as_deref(), Some("1"), "{id}");
                // The suite's publisher count (the default, 1) for every shape.
                assert_eq!(value(args, "--publishers"), None, "{id}");
            }
            let rate = FIXED_RATE.to_string();
            assert_eq!(value(&scenarios[0].1, "--rate"), None);
            assert_eq!(value(&scenarios[1].1, "--rate"), Some(rate.clone()));
            assert_eq!(value(&scenarios[2].1, "--rate"), Some(rate));
            assert_eq!(
                value(&scenarios[1].1, "--subscribers").as_deref(),
                Some("1000")
            );
            assert_eq!(
                value(&scenarios[2].1, "--subscribers").as_deref(),
                Some("100")
            );
        }
    }

    #[test]
    fn a_port_nobody_answers_on_is_no_redis() {
        // A port just released: connecting is refused.
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        assert!(!answers_ping(port));
    }
}
