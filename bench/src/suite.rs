//! The benchmark suite: every scenario against every server, each server pinned to its own core
//! and the generator to another, results as JSON, a Markdown table and an SVG chart.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::report::Report;
use crate::{embedded, floor, gate, render, sys};

/// How long to run: `quick` is a smoke run of a minute or two, `full` gives stable numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
pub enum Mode {
    /// Smaller counts and short steps.
    Quick,
    /// The scenarios as specified.
    Full,
}

/// A server to benchmark: a name and a shell command that starts it and prints
/// `listening <ws-url> pid <pid>` on its first line of output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// Name in tables and charts.
    pub name: String,
    /// Shell command (run with `sh -c`).
    pub command: String,
}

impl std::str::FromStr for ServerSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, command) = s
            .split_once('=')
            .ok_or_else(|| format!("expected NAME=COMMAND, got {s:?}"))?;
        if name.is_empty() || command.is_empty() {
            return Err(format!("expected NAME=COMMAND, got {s:?}"));
        }
        Ok(ServerSpec {
            name: name.to_owned(),
            command: command.to_owned(),
        })
    }
}

/// The name of the reference server in results.
pub const REFERENCE: &str = "rtbus-server";

/// One scenario's result for one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// Scenario id.
    pub scenario: String,
    /// Server name.
    pub server: String,
    /// The generator's report (or the failure to get one).
    pub report: Option<Report>,
    /// Why there is no report.
    pub failure: Option<String>,
    /// For the slow-consumer scenario: the same run without the stalled subscriber.
    pub baseline: Option<Report>,
    /// For the slow-consumer scenario: a second run with the stalled subscriber and then a
    /// second one without, in that order (clean, stalled, stalled, clean), so drift cancels out
    /// and the two clean runs show how much p99 moves between identical runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repeats: Vec<Report>,
    /// How the run was set up where that is not obvious (e.g. where a floor run's rate came
    /// from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Criterion estimates, ns per iteration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Micro {
    /// Benchmark id.
    pub id: String,
    /// Mean nanoseconds per iteration.
    pub ns: f64,
}

/// Everything one suite run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuiteResults {
    /// quick or full.
    pub mode: Mode,
    /// Machine description.
    pub machine: String,
    /// Whether servers and generator were pinned to separate cores.
    pub pinned: bool,
    /// Scenario results.
    pub entries: Vec<Entry>,
    /// Criterion micro-benchmarks found in the criterion directory.
    pub micro: Vec<Micro>,
}

/// Options of a suite run.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// quick or full.
    pub mode: Mode,
    /// Peers, benchmarked after the reference server.
    pub peers: Vec<ServerSpec>,
    /// Where results go.
    pub out: PathBuf,
    /// Where criterion wrote its estimates, if it ran.
    pub criterion_dir: Option<PathBuf>,
    /// Only these scenarios (all when empty).
    pub only: Vec<String>,
}

struct Scenario {
    id: &'static str,
    args: Vec<String>,
    /// The slow-consumer scenario: run once clean, once with a stalled subscriber.
    stalled: bool,
    /// What the scenario measures.
    target: Target,
}

/// What a scenario drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Every admitted server, one fresh instance each.
    Servers,
    /// The loopback floor (`rtbus-bench --floor`), at [`FLOOR_LOW_RATE`] and at the reference
    /// server's fan-out half-load rate.
    Floor,
}

/// The name of the loopback floor in results.
pub const FLOOR: &str = floor::LABEL;

/// The fixed low rate of `latency-1k` and the first floor run: publishes (bursts) per second.
pub const FLOOR_LOW_RATE: f64 = 25.0;

/// The floor's second rate when `fanout-1k` did not run (or the reference server failed it):
/// the reference server's fanout-1k half-load rate in the last recorded full run.
pub const FALLBACK_HALF_LOAD_RATE: f64 = 456.0;

/// Scenario id of the floor run at [`FLOOR_LOW_RATE`].
pub(crate) const FLOOR_LOW: &str = "floor-1k-25";
/// Scenario id of the floor run at the reference server's half-load rate.
pub(crate) const FLOOR_HALF: &str = "floor-1k-half-load";

fn scenarios(mode: Mode) -> Vec<Scenario> {
    let quick = mode == Mode::Quick;
    let (big, step, ladder) = if quick {
        ("2000", "0.5", "4")
    } else {
        ("10000", "2", "6")
    };
    // Fixed-rate latency runs, servers and floor alike.
    let latency_step = if quick { "2" } else { "5" };
    let low_rate = FLOOR_LOW_RATE.to_string();
    let s = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    vec![
        Scenario {
            id: "fanout-1k",
            args: s(&[
                "--subscribers",
                "1000",
                "--topics",
                "1",
                "--payload-bytes",
                "100",
                "--start-deliveries",
                "100000",
                "--max-steps",
                ladder,
                "--step-secs",
                step,
                "--half-load",
            ]),
            stalled: false,
            target: Target::Servers,
        },
        Scenario {
            id: "latency-1k",
            args: s(&[
                "--subscribers",
                "1000",
                "--topics",
                "1",
                "--payload-bytes",
                "100",
                "--rate",
                &low_rate,
                "--step-secs",
                latency_step,
            ]),
            stalled: false,
            target: Target::Servers,
        },
        Scenario {
            id: "floor-1k",
            args: s(&[
                "--subscribers",
                "1000",
                "--payload-bytes",
                "100",
                "--step-secs",
                latency_step,
            ]),
            stalled: false,
            target: Target::Floor,
        },
        Scenario {
            id: if quick { "fanout-2k" } else { "fanout-10k" },
            args: s(&[
                "--subscribers",
                big,
                "--topics",
                "1",
                "--payload-bytes",
                "100",
                "--start-deliveries",
                "100000",
                "--max-steps",
                ladder,
                "--step-secs",
                step,
                "--half-load",
            ]),
            stalled: false,
            target: Target::Servers,
        },
        Scenario {
            id: if quick { "topics-2k" } else { "topics-10k" },
            args: s(&[
                "--subscribers",
                big,
                "--topics",
                big,
                "--topic-kind",
                "activity",
                "--publishers",
                "2",
                "--payload-bytes",
                "100",
                "--start-deliveries",
                "25000",
                "--max-steps",
                ladder,
                "--step-secs",
                step,
                "--half-load",
            ]),
            stalled: false,
            target: Target::Servers,
        },
        Scenario {
            id: if quick { "idle-2k" } else { "idle-10k" },
            args: s(&["--subscribers", big, "--topics", big, "--idle", "2"]),
            stalled: false,
            target: Target::Servers,
        },
        Scenario {
            id: "slow-consumer-1k",
            args: s(&[
                "--subscribers",
                "1000",
                "--topics",
                "1",
                "--payload-bytes",
                "1024",
                "--rate",
                "40",
                "--step-secs",
                if quick { "6" } else { "15" },
            ]),
            stalled: true,
            target: Target::Servers,
        },
    ]
}

/// A running server process.
pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
    pub(crate) pid: u32,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM for a graceful stop; the child is reaped below.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn pinned() -> bool {
    sys::usable_cores() >= 2
        && Command::new("taskset")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// `sh -c` with the fd limit raised to its hard limit (10,000 connections need 10,000 fds) and
/// the command pinned to `core`.
pub(crate) fn shell(command: &str, core: Option<usize>) -> Command {
    let pin = core.map_or(String::new(), |c| format!("taskset -c {c} "));
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -n \"$(ulimit -Hn)\"; exec {pin}{command}"));
    cmd
}

pub(crate) fn start_server(spec: &ServerSpec, core: Option<usize>) -> anyhow::Result<Server> {
    let mut child = shell(&spec.command, core)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}: {}", spec.name, spec.command))?;
    let stdout = child.stdout.take().context("server stdout")?;
    let mut line = String::new();
    let mut reader = BufReader::new(stdout);
    reader
        .read_line(&mut line)
        .with_context(|| format!("reading {}'s first line", spec.name))?;
    // Keep reading so that a server that logs to stdout never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let mut words = line.split_whitespace();
    let (Some("listening"), Some(url), Some("pid"), Some(pid)) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        let _ = child.kill();
        let _ = child.wait();
        bail!(
            "{} printed {line:?}; expected `listening <ws-url> pid <pid>`",
            spec.name
        );
    };
    Ok(Server {
        url: url.to_owned(),
        pid: pid.parse().with_context(|| format!("pid {pid:?}"))?,
        child,
    })
}

pub(crate) fn run_generator(
    server: &Server,
    name: &str,
    args: &[String],
    extra: &[&str],
    core: Option<usize>,
    out: &Path,
) -> anyhow::Result<Report> {
    let exe = std::env::current_exe()?;
    let json = out.join(format!(".run-{}.json", std::process::id()));
    let mut command = vec![
        quote(&exe.to_string_lossy()),
        "--url".to_owned(),
        quote(&server.url),
        "--label".to_owned(),
        quote(name),
        "--server-pid".to_owned(),
        server.pid.to_string(),
        "--json".to_owned(),
        quote(&json.to_string_lossy()),
    ];
    if name == REFERENCE {
        command.push("--token".to_owned());
        command.push(embedded::PUBLISHER_TOKEN.to_owned());
    }
    command.extend(args.iter().cloned());
    command.extend(extra.iter().map(|s| (*s).to_owned()));
    let status = shell(&command.join(" "), core)
        .env_remove("RTBUS_URL")
        .env_remove("RTBUS_PUBLISHER_TOKEN")
        .status()
        .context("running the generator")?;
    let text = std::fs::read_to_string(&json)
        .with_context(|| format!("the generator exited with {status} and wrote no report"))?;
    let _ = std::fs::remove_file(&json);
    Ok(serde_json::from_str(&text)?)
}

/// Runs `rtbus-bench --floor` with `args` in a child process (its threads pin themselves, so it is
/// not started under `taskset`) and reads its JSON report.
fn run_floor(args: &[String], out: &Path) -> anyhow::Result<Report> {
    let exe = std::env::current_exe()?;
    let json = out.join(format!(".floor-{}.json", std::process::id()));
    let mut command = vec![
        quote(&exe.to_string_lossy()),
        "--floor".to_owned(),
        "--json".to_owned(),
        quote(&json.to_string_lossy()),
    ];
    command.extend(args.iter().map(|a| quote(a)));
    let status = shell(&command.join(" "), None)
        .status()
        .context("running the loopback floor")?;
    let text = std::fs::read_to_string(&json)
        .with_context(|| format!("the floor exited with {status} and wrote no report"))?;
    let _ = std::fs::remove_file(&json);
    Ok(serde_json::from_str(&text)?)
}

/// The floor's rates: [`FLOOR_LOW_RATE`], and the reference server's fanout-1k half-load
/// publish rate from this run (or [`FALLBACK_HALF_LOAD_RATE`] when there is none), with where
/// the second came from.
fn floor_rates(entries: &[Entry]) -> [(&'static str, f64, Option<String>); 2] {
    let measured = entries
        .iter()
        .find(|e| e.scenario == "fanout-1k" && e.server == REFERENCE)
        .and_then(|e| e.report.as_ref()?.half_load.as_ref())
        .map(|h| h.offered_publishes_per_s)
        .filter(|r| r.is_finite() && *r > 0.0);
    let (half, note) = match measured {
        Some(rate) => (
            rate.round().max(1.0),
            format!("{REFERENCE}'s fanout-1k half-load rate in this run"),
        ),
        None => (
            FALLBACK_HALF_LOAD_RATE,
            format!(
                "fanout-1k gave no half-load rate for {REFERENCE} in this run: the rate of the last recorded full run"
            ),
        ),
    };
    [
        (FLOOR_LOW, FLOOR_LOW_RATE, None),
        (FLOOR_HALF, half, Some(note)),
    ]
}

/// Runs the harness's fan-out cases against a fresh instance of the server (the reference
/// server as the harness embeds it; a peer started here, pinned like its benchmark runs).
fn conformance_gate(spec: &ServerSpec, core: Option<usize>) -> anyhow::Result<()> {
    let server = if spec.name == REFERENCE {
        None
    } else {
        Some(start_server(spec, core)?)
    };
    let url = server.as_ref().map(|s| s.url.as_str());
    block_on(gate::fanout_cases(url))?
}

/// Drives `future` to completion from this blocking thread: on the runtime the suite was
/// started from (the embedded reference server's tasks run on it), or on one of its own.
fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    Ok(match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.block_on(future),
        Err(_) => tokio::runtime::Runtime::new()
            .context("starting an async runtime for the conformance gate")?
            .block_on(future),
    })
}

pub(crate) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Runs the suite and writes `results.json`, `results.md` and `chart.svg` into `out`.
///
/// Blocking (it runs and waits for processes): call it from a blocking thread, e.g. under
/// `tokio::task::spawn_blocking`, never from a task on a runtime's worker.
pub fn run(options: &SuiteOptions) -> anyhow::Result<SuiteResults> {
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("creating {}", options.out.display()))?;
    let pin = pinned();
    if !pin {
        eprintln!("warning: taskset or a second core is missing; server and generator share cores");
    }
    let (server_core, generator_core) = if pin {
        (Some(0), Some(1))
    } else {
        (None, None)
    };
    let exe = std::env::current_exe()?;
    let mut servers = vec![ServerSpec {
        name: REFERENCE.to_owned(),
        command: format!("{} --serve 127.0.0.1:0", quote(&exe.to_string_lossy())),
    }];
    servers.extend(options.peers.iter().cloned());
    // A server is benchmarked only if it passes the harness's fan-out cases, so that every
    // server in the comparison does the same work.
    let mut admitted = Vec::new();
    let mut entries = Vec::new();
    for spec in servers {
        eprintln!("== conformance gate (fan-out cases) on {}", spec.name);
        match conformance_gate(&spec, server_core) {
            Ok(()) => admitted.push(spec),
            Err(e) => {
                eprintln!("   not benchmarked: {e:#}");
                entries.push(Entry {
                    scenario: "conformance-gate".to_owned(),
                    server: spec.name.clone(),
                    report: None,
                    failure: Some(format!("{e:#}")),
                    baseline: None,
                    repeats: Vec::new(),
                    note: None,
                });
            }
        }
    }
    let servers = admitted;
    for scenario in scenarios(options.mode) {
        if !options.only.is_empty() && !options.only.iter().any(|o| scenario.id.starts_with(o)) {
            continue;
        }
        if scenario.target == Target::Floor {
            for (id, rate, note) in floor_rates(&entries) {
                eprintln!("== {id} ({rate:.0} bursts/s)");
                let mut args = scenario.args.clone();
                args.extend(["--rate".to_owned(), format!("{rate}")]);
                let outcome = run_floor(&args, &options.out);
                if let Err(e) = &outcome {
                    eprintln!("   failed: {e:#}");
                }
                entries.push(Entry {
                    scenario: id.to_owned(),
                    server: FLOOR.to_owned(),
                    failure: outcome.as_ref().err().map(|e| format!("{e:#}")),
                    report: outcome.ok(),
                    baseline: None,
                    repeats: Vec::new(),
                    note,
                });
            }
            continue;
        }
        for spec in &servers {
            eprintln!("== {} on {}", scenario.id, spec.name);
            let mut entry = Entry {
                scenario: scenario.id.to_owned(),
                server: spec.name.clone(),
                report: None,
                failure: None,
                baseline: None,
                repeats: Vec::new(),
                note: None,
            };
            let outcome = (|| -> anyhow::Result<()> {
                // A fresh server per run: memory and state start from zero.
                if scenario.stalled {
                    let server = start_server(spec, server_core)?;
                    entry.baseline = Some(run_generator(
                        &server,
                        &spec.name,
                        &scenario.args,
                        &[],
                        generator_core,
                        &options.out,
                    )?);
                }
                let extra: &[&str] = if scenario.stalled {
                    &["--stalled", "1"]
                } else {
                    &[]
                };
                let server = start_server(spec, server_core)?;
                entry.report = Some(run_generator(
                    &server,
                    &spec.name,
                    &scenario.args,
                    extra,
                    generator_core,
                    &options.out,
                )?);
                if scenario.stalled {
                    for extra in [extra, &[]] {
                        let server = start_server(spec, server_core)?;
                        entry.repeats.push(run_generator(
                            &server,
                            &spec.name,
                            &scenario.args,
                            extra,
                            generator_core,
                            &options.out,
                        )?);
                    }
                }
                Ok(())
            })();
            if let Err(e) = outcome {
                eprintln!("   failed: {e:#}");
                entry.failure = Some(format!("{e:#}"));
            }
            entries.push(entry);
        }
    }
    let results = SuiteResults {
        mode: options.mode,
        machine: machine(),
        pinned: pin,
        entries,
        micro: options
            .criterion_dir
            .as_deref()
            .map(read_criterion)
            .unwrap_or_default(),
    };
    let json = serde_json::to_string_pretty(&results)? + "\n";
    std::fs::write(options.out.join("results.json"), json)?;
    let markdown = render::markdown(&results);
    std::fs::write(options.out.join("results.md"), &markdown)?;
    std::fs::write(options.out.join("chart.svg"), render::chart(&results))?;
    print!("{markdown}");
    Ok(results)
}

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or("unknown memory".to_owned(), |kib| {
            format!("{:.1} GiB RAM", kib / 1024.0 / 1024.0)
        });
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{cores} cores, {cpu}, {mem}")
}

/// Reads `<dir>/<group>/<bench>/new/estimates.json` (criterion's layout).
fn read_criterion(dir: &Path) -> Vec<Micro> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(read) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in read.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == "new") {
                    let estimates = path.join("estimates.json");
                    let ns = std::fs::read_to_string(&estimates)
                        .ok()
                        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                        .and_then(|v| v.pointer("/mean/point_estimate")?.as_f64());
                    let id = d
                        .strip_prefix(dir)
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    if let Some(ns) = ns {
                        out.push(Micro { id, ns });
                    }
                } else if path
                    .file_name()
                    .is_none_or(|n| n != "base" && n != "report")
                {
                    stack.push(path);
                }
            }
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::{entry, step};

    #[test]
    fn the_floor_runs_at_the_reference_half_load_rate_of_this_run_or_the_fallback() {
        let [low, half] = floor_rates(&[]);
        assert_eq!((low.0, low.1), (FLOOR_LOW, FLOOR_LOW_RATE));
        assert_eq!((half.0, half.1), (FLOOR_HALF, FALLBACK_HALF_LOAD_RATE));
        assert!(
            half.2
                .as_deref()
                .is_some_and(|n| n.contains("last recorded"))
        );

        let fanout = Report {
            half_load: Some(step(301.6, 1.0, 2.0, 3.0)),
            ..Report::default()
        };
        // A peer's half load is not the reference's.
        let peer = entry("fanout-1k", "node-ws", fanout.clone());
        assert_eq!(floor_rates(std::slice::from_ref(&peer))[1].1, 456.0);
        let [_, half] = floor_rates(&[peer, entry("fanout-1k", REFERENCE, fanout)]);
        assert_eq!(half.1, 302.0);
        assert!(half.2.as_deref().is_some_and(|n| n.contains("in this run")));
    }
}
