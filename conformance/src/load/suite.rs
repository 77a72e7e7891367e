//! The benchmark suite: every scenario against every server, each server pinned to its own core
//! and the generator to another, results as JSON, a Markdown table and an SVG chart.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use super::report::Report;

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
    /// The loopback floor (`bench --floor`), at [`FLOOR_LOW_RATE`] and at the reference
    /// server's fan-out half-load rate.
    Floor,
}

/// The name of the loopback floor in results.
pub const FLOOR: &str = super::floor::LABEL;

/// The fixed low rate of `latency-1k` and the first floor run: publishes (bursts) per second.
pub const FLOOR_LOW_RATE: f64 = 25.0;

/// The floor's second rate when `fanout-1k` did not run (or the reference server failed it):
/// the reference server's fanout-1k half-load rate in the last recorded full run.
pub const FALLBACK_HALF_LOAD_RATE: f64 = 456.0;

/// Scenario id of the floor run at [`FLOOR_LOW_RATE`].
const FLOOR_LOW: &str = "floor-1k-25";
/// Scenario id of the floor run at the reference server's half-load rate.
const FLOOR_HALF: &str = "floor-1k-half-load";

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
struct Server {
    child: Child,
    url: String,
    pid: u32,
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

fn pinned() -> bool {
    super::sys::usable_cores() >= 2
        && Command::new("taskset")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// `sh -c` with the fd limit raised to its hard limit (10,000 connections need 10,000 fds) and
/// the command pinned to `core`.
fn shell(command: &str, core: Option<usize>) -> Command {
    let pin = core.map_or(String::new(), |c| format!("taskset -c {c} "));
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -n \"$(ulimit -Hn)\"; exec {pin}{command}"));
    cmd
}

fn start_server(spec: &ServerSpec, core: Option<usize>) -> anyhow::Result<Server> {
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

fn run_generator(
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
        "bench".to_owned(),
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
        command.push(super::embedded::PUBLISHER_TOKEN.to_owned());
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

/// Runs `bench --floor` with `args` in a child process (its threads pin themselves, so it is
/// not started under `taskset`) and reads its JSON report.
fn run_floor(args: &[String], out: &Path) -> anyhow::Result<Report> {
    let exe = std::env::current_exe()?;
    let json = out.join(format!(".floor-{}.json", std::process::id()));
    let mut command = vec![
        quote(&exe.to_string_lossy()),
        "bench".to_owned(),
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

/// The bundled cases tagged [`GATE_TAG`] that every benchmarked server must pass.
pub const GATE_TAG: &str = "fanout";

/// Runs `rtbus-conformance run --filter fanout` against a fresh instance of the server. The
/// reference server is checked as the harness embeds it (with the testee contract's tokens);
/// a peer at its URL (peers implement no authorization, so any token is accepted).
fn conformance_gate(spec: &ServerSpec, core: Option<usize>) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    command
        .args(["run", "--no-color", "--filter", GATE_TAG])
        .env_remove("RTBUS_CONFORMANCE_URL");
    let _server = if spec.name == REFERENCE {
        None
    } else {
        let server = start_server(spec, core)?;
        command.args(["--url", &server.url]);
        for credential in ["publisher", "reader", "narrow"] {
            command.arg("--token").arg(format!("{credential}=peer"));
        }
        Some(server)
    };
    let output = command
        .output()
        .context("running the conformance harness")?;
    if !output.status.success() {
        bail!(
            "failed the fan-out conformance cases ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout)
        );
    }
    Ok(())
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Runs the suite and writes `results.json`, `results.md` and `chart.svg` into `out`.
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
        command: format!(
            "{} bench --serve 127.0.0.1:0",
            quote(&exe.to_string_lossy())
        ),
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
    std::fs::write(options.out.join("results.md"), markdown(&results))?;
    std::fs::write(options.out.join("chart.svg"), chart(&results))?;
    print!("{}", markdown(&results));
    Ok(results)
}

fn machine() -> String {
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

fn find<'a>(r: &'a SuiteResults, scenario: &str, server: &str) -> Option<&'a Entry> {
    r.entries
        .iter()
        .find(|e| e.scenario == scenario && e.server == server)
}

fn servers(r: &SuiteResults) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for e in &r.entries {
        if e.server != FLOOR && !names.contains(&e.server) {
            names.push(e.server.clone());
        }
    }
    names
}

/// Scenarios measured at fixed rates for the floor table, not for throughput.
fn fixed_rate(id: &str) -> bool {
    id.starts_with("latency") || id.starts_with("floor")
}

fn scenario_ids(r: &SuiteResults) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for e in &r.entries {
        if !ids.contains(&e.scenario) {
            ids.push(e.scenario.clone());
        }
    }
    ids
}

fn kib(bytes: f64) -> String {
    format!("{:.1} KiB", bytes / 1024.0)
}

fn verdict(report: &Report) -> String {
    let mut notes = Vec::new();
    if report.lost > 0 {
        notes.push(format!("**{} lost**", report.lost));
    }
    if report.out_of_order > 0 {
        notes.push(format!("**{} out of order**", report.out_of_order));
    }
    if report.epoch_changes > 0 {
        notes.push(format!("**{} epoch changes**", report.epoch_changes));
    }
    if report.undelivered > 0 {
        notes.push(format!(
            "{} still undelivered at the drain deadline",
            report.undelivered
        ));
    }
    if report.errors > 0 {
        notes.push(format!("{} errors", report.errors));
    }
    if report.generator_saturated {
        notes.push("generator CPU-bound".to_owned());
    }
    if notes.is_empty() {
        "clean".to_owned()
    } else {
        notes.join(", ")
    }
}

/// The Markdown table of a suite run, with ratios against the reference server.
pub fn markdown(r: &SuiteResults) -> String {
    let mut out = String::new();
    let names = servers(r);
    let _ = writeln!(
        out,
        "Machine: {}. Server pinned to core 0 and generator to core 1: {}. Mode: {:?}.\n",
        r.machine,
        if r.pinned { "yes" } else { "no" },
        r.mode
    );
    // The throughput table, left out when only fixed-rate or memory scenarios ran.
    let table_start = out.len();
    let mut rows = 0usize;
    let _ = writeln!(
        out,
        "| scenario | server | delivered events/s (saturation) | × vs reference | p50 / p99 / p999 at half load | server CPU-s per million deliveries | connect p99 | result |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---|---:|---:|---|");
    for id in scenario_ids(r) {
        if id.starts_with("idle") || id.starts_with("slow") || fixed_rate(&id) {
            continue;
        }
        let reference = find(r, &id, REFERENCE)
            .and_then(|e| e.report.as_ref())
            .map(|rep| rep.saturation_deliveries_per_s);
        for name in &names {
            let Some(entry) = find(r, &id, name) else {
                continue;
            };
            rows += 1;
            let Some(rep) = &entry.report else {
                let _ = writeln!(
                    out,
                    "| {id} | {name} | — | — | — | — | — | failed: {} |",
                    entry.failure.as_deref().unwrap_or("?")
                );
                continue;
            };
            let ratio = match reference {
                Some(base) if rep.saturation_deliveries_per_s > 0.0 && name != REFERENCE => {
                    format!("{:.2}×", base / rep.saturation_deliveries_per_s)
                }
                _ => "—".to_owned(),
            };
            let half = rep.half_load.as_ref().map_or("—".to_owned(), |h| {
                format!(
                    "{:.2} / {:.2} / {:.2} ms",
                    h.latency.p50_us / 1000.0,
                    h.latency.p99_us / 1000.0,
                    h.latency.p999_us / 1000.0
                )
            });
            // CPU per million at the busiest step.
            let cpu = rep
                .steps
                .iter()
                .max_by(|a, b| a.delivered_per_s.total_cmp(&b.delivered_per_s))
                .and_then(|s| s.server_cpu_s_per_million)
                .map_or("—".to_owned(), |c| format!("{c:.2}"));
            let _ = writeln!(
                out,
                "| {id} | {name} | {:.0} | {ratio} | {half} | {cpu} | {:.1} ms | {} |",
                rep.saturation_deliveries_per_s,
                rep.connect.p99_us / 1000.0,
                verdict(rep)
            );
        }
    }
    let _ = writeln!(
        out,
        "\n× vs reference: the reference server's throughput divided by this server's.\n"
    );
    if rows == 0 {
        out.truncate(table_start);
    }
    out.push_str(&floor_table(r));
    for id in scenario_ids(r) {
        if id.starts_with("idle") {
            let _ = writeln!(
                out,
                "| {id} | server | RSS before | RSS with every client connected, subscribed, idle | per connection | × vs reference |"
            );
            let _ = writeln!(out, "|---|---|---:|---:|---:|---:|");
            let reference = find(r, &id, REFERENCE)
                .and_then(|e| e.report.as_ref()?.idle.as_ref())
                .map(|i| i.bytes_per_connection);
            for name in &names {
                let Some(entry) = find(r, &id, name) else {
                    continue;
                };
                match entry.report.as_ref().and_then(|rep| rep.idle.as_ref()) {
                    Some(idle) => {
                        let ratio = match reference {
                            Some(base) if name != REFERENCE && base > 0.0 => {
                                format!("{:.2}× more", idle.bytes_per_connection / base)
                            }
                            _ => "—".to_owned(),
                        };
                        let _ = writeln!(
                            out,
                            "| {id} | {name} | {} | {} | {} | {ratio} |",
                            kib(idle.rss_before as f64),
                            kib(idle.rss_after as f64),
                            kib(idle.bytes_per_connection)
                        );
                    }
                    None => {
                        let _ = writeln!(
                            out,
                            "| {id} | {name} | — | — | — | failed: {} |",
                            entry.failure.as_deref().unwrap_or("no memory figure")
                        );
                    }
                }
            }
            let _ = writeln!(out);
        }
        if id.starts_with("slow") {
            let _ = writeln!(
                out,
                "| {id} | server | healthy p99 without the stalled subscriber (runs 1, 4) | with it (runs 2, 3) | change of the means | runs 1 vs 4 (noise) | stalled subscriber cut off | result |"
            );
            let _ = writeln!(out, "|---|---|---|---|---:|---:|---|---|");
            for name in &names {
                let Some(entry) = find(r, &id, name) else {
                    continue;
                };
                let (Some(base), Some(rep)) = (&entry.baseline, &entry.report) else {
                    let _ = writeln!(
                        out,
                        "| {id} | {name} | — | — | — | — | — | failed: {} |",
                        entry.failure.as_deref().unwrap_or("?")
                    );
                    continue;
                };
                let p99 = |rep: &Report| rep.steps.first().map_or(0.0, |s| s.latency.p99_us);
                let mut clean = vec![p99(base)];
                let mut stalled = vec![p99(rep)];
                if let [again, base_again] = entry.repeats.as_slice() {
                    stalled.push(p99(again));
                    clean.push(p99(base_again));
                }
                let ms = |v: &[f64]| {
                    v.iter()
                        .map(|us| format!("{:.2}", us / 1000.0))
                        .collect::<Vec<_>>()
                        .join(", ")
                        + " ms"
                };
                let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
                let pct = |a: f64, b: f64| {
                    if a > 0.0 {
                        format!("{:+.0}%", (b - a) / a * 100.0)
                    } else {
                        "—".to_owned()
                    }
                };
                let noise = match clean.as_slice() {
                    [a, b] => pct(*a, *b),
                    _ => "—".to_owned(),
                };
                let cut = rep.stalled.as_ref().map_or("—".to_owned(), |s| {
                    if s.cut_off > 0 {
                        format!(
                            "after {} (close {:?})",
                            s.cut_off_after_ms
                                .map_or("?".to_owned(), |ms| format!("{ms:.0} ms")),
                            s.close_codes
                        )
                    } else {
                        "never".to_owned()
                    }
                });
                let _ = writeln!(
                    out,
                    "| {id} | {name} | {} | {} | {} | {noise} | {cut} | {} |",
                    ms(&clean),
                    ms(&stalled),
                    pct(mean(&clean), mean(&stalled)),
                    verdict(rep)
                );
            }
            let _ = writeln!(out);
        }
    }
    if !r.micro.is_empty() {
        let _ = writeln!(out, "| micro-benchmark (criterion) | ns per frame |");
        let _ = writeln!(out, "|---|---:|");
        for m in &r.micro {
            let _ = writeln!(out, "| {} | {:.0} |", m.id, m.ns);
        }
        let _ = writeln!(out);
    }
    out
}

/// One latency cell: p50 / p99 / p999 of a fixed-rate step, flagged when the step saturated or
/// the run was not clean.
fn latency_cell(report: &Report, step: &super::report::Step) -> String {
    let mut cell = format!(
        "{:.2} / {:.2} / {:.2} ms",
        step.latency.p50_us / 1000.0,
        step.latency.p99_us / 1000.0,
        step.latency.p999_us / 1000.0
    );
    if step.saturated.is_some() {
        let _ = write!(
            cell,
            " (saturated: {:.0} of {:.0} deliveries/s)",
            step.delivered_per_s, step.offered_deliveries_per_s
        );
    }
    if !report.is_clean() || report.undelivered > 0 {
        let _ = write!(cell, " — {}", verdict(report));
    }
    cell
}

/// The cell of a fixed-rate run: its only step, or why there is none.
fn fixed_rate_cell(entry: Option<&Entry>) -> String {
    let Some(entry) = entry else {
        return "—".to_owned();
    };
    match entry
        .report
        .as_ref()
        .and_then(|r| Some((r, r.steps.first()?)))
    {
        Some((report, step)) => latency_cell(report, step),
        None => format!(
            "failed: {}",
            entry
                .failure
                .as_deref()
                .and_then(|f| f.lines().next())
                .unwrap_or("no step")
        ),
    }
}

/// The "loopback floor vs servers at the same rates" table: the floor and every server at the
/// low fixed rate (`latency-1k`), and the floor and the reference server at the reference
/// server's fanout-1k half-load rate. Empty when neither ran.
fn floor_table(r: &SuiteResults) -> String {
    let names = servers(r);
    let low = find(r, FLOOR_LOW, FLOOR);
    let half = find(r, FLOOR_HALF, FLOOR);
    let has_latency = names.iter().any(|n| find(r, "latency-1k", n).is_some());
    if low.is_none() && half.is_none() && !has_latency {
        return String::new();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Loopback floor vs servers at the same rates (1,000 subscribers, 100-byte payloads). The \
         floor is what this machine allows without any server: per publish, one blocking `write` \
         of a 100-byte record to each of 1,000 plain TCP loopback sockets by a thread on core 0, \
         read with epoll by a thread on core 1 (no WebSocket, no JSON, no async runtime; \
         `rtbus-conformance bench --floor`). Servers at {FLOOR_LOW_RATE:.0}/s: the `latency-1k` \
         scenario; {REFERENCE} at the half-load rate: its fanout-1k half-load step.\n"
    );
    let _ = write!(
        out,
        "| publishes/s × 1,000 subscribers | loopback floor p50 / p99 / p999 | floor writer CPU-µs per record, reader share of its core |"
    );
    for name in &names {
        let _ = write!(out, " {name} p50 / p99 / p999 |");
    }
    let _ = write!(out, "\n|---:|---|---|");
    for _ in &names {
        let _ = write!(out, "---|");
    }
    let _ = writeln!(out);
    let floor_cpu = |entry: Option<&Entry>| {
        entry
            .and_then(|e| e.report.as_ref()?.floor.as_ref())
            .map_or("—".to_owned(), |f| {
                let mut cell = format!(
                    "{:.1} µs, {:.0} %",
                    f.writer_cpu_us_per_record,
                    f.reader_cpu_share * 100.0
                );
                if f.writer_core.is_none() || f.reader_core.is_none() {
                    cell.push_str(" (threads not pinned)");
                }
                cell
            })
    };
    let rate_of = |entry: Option<&Entry>, fallback: f64| {
        entry
            .and_then(|e| e.report.as_ref()?.steps.first())
            .map_or(fallback, |s| s.offered_publishes_per_s)
    };
    // The low rate: every server's latency-1k run.
    if low.is_some() || has_latency {
        let _ = write!(
            out,
            "| {:.0} | {} | {} |",
            rate_of(low, FLOOR_LOW_RATE),
            fixed_rate_cell(low),
            floor_cpu(low)
        );
        for name in &names {
            let _ = write!(out, " {} |", fixed_rate_cell(find(r, "latency-1k", name)));
        }
        let _ = writeln!(out);
    }
    // The half-load rate: the reference server's half-load step, when it ran at that rate.
    if let Some(half_entry) = half {
        let rate = rate_of(half, FALLBACK_HALF_LOAD_RATE);
        let reference = find(r, "fanout-1k", REFERENCE)
            .and_then(|e| Some((e.report.as_ref()?, e.report.as_ref()?.half_load.as_ref()?)))
            .filter(|(_, step)| (step.offered_publishes_per_s - rate).abs() < 1.0);
        let _ = write!(
            out,
            "| {rate:.0} ({REFERENCE} half load) | {} | {} |",
            fixed_rate_cell(half),
            floor_cpu(half)
        );
        for name in &names {
            let cell = match reference {
                Some((report, step)) if name == REFERENCE => latency_cell(report, step),
                _ => "—".to_owned(),
            };
            let _ = write!(out, " {cell} |");
        }
        let _ = writeln!(out);
        if let Some(note) = &half_entry.note {
            let _ = writeln!(out, "\nHalf-load rate: {note}.");
        }
    }
    let _ = writeln!(out);
    out
}

/// A bar chart of saturation throughput per scenario and server, and idle memory per
/// connection, as a self-contained SVG.
pub fn chart(r: &SuiteResults) -> String {
    const COLORS: [&str; 4] = ["#2f6fdf", "#e07a22", "#3a9a4a", "#9a3a8a"];
    let names = servers(r);
    let mut groups: Vec<(String, Vec<f64>, String)> = Vec::new();
    for id in scenario_ids(r) {
        let idle = id.starts_with("idle");
        if id.starts_with("slow") || fixed_rate(&id) {
            continue;
        }
        let values = names
            .iter()
            .map(|n| {
                find(r, &id, n)
                    .and_then(|e| e.report.as_ref())
                    .map_or(0.0, |rep| match &rep.idle {
                        Some(i) => i.bytes_per_connection / 1024.0,
                        None => rep.saturation_deliveries_per_s,
                    })
            })
            .collect();
        let unit = if idle {
            "KiB per idle connection (less is better)"
        } else {
            "delivered events/s (more is better)"
        };
        groups.push((id, values, unit.to_owned()));
    }
    let bar = 18.0;
    let group_h = bar * names.len() as f64 + 34.0;
    let width = 760.0;
    let left = 150.0;
    let plot = width - left - 130.0;
    let height = 40.0 + group_h * groups.len() as f64 + 24.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height:.0}" viewBox="0 0 {width} {height:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r##"<rect width="100%" height="100%" fill="#ffffff"/><text x="10" y="22" font-size="15" font-weight="bold">rtbus benchmarks ({:?} run)</text>"##,
        r.mode
    );
    for (i, name) in names.iter().enumerate() {
        let x = 330.0 + i as f64 * 140.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="11" width="12" height="12" fill="{}"/><text x="{}" y="22">{}</text>"#,
            COLORS[i % COLORS.len()],
            x + 16.0,
            escape(name)
        );
    }
    let mut y = 40.0;
    for (id, values, unit) in &groups {
        let max = values.iter().copied().fold(0.0, f64::max).max(1e-9);
        let _ = writeln!(
            svg,
            r##"<text x="10" y="{:.0}" font-weight="bold">{}</text><text x="{left}" y="{:.0}" fill="#555">{}</text>"##,
            y + 14.0,
            escape(id),
            y + 14.0,
            escape(unit)
        );
        for (i, value) in values.iter().enumerate() {
            let by = y + 22.0 + i as f64 * bar;
            let w = (value / max * plot).max(1.0);
            let label = if unit.starts_with("KiB") {
                format!("{value:.1} KiB")
            } else {
                format!("{value:.0}/s")
            };
            let _ = writeln!(
                svg,
                r#"<rect x="{left}" y="{by:.0}" width="{w:.1}" height="{:.0}" fill="{}"/><text x="{:.1}" y="{:.0}">{label}</text>"#,
                bar - 4.0,
                COLORS[i % COLORS.len()],
                left + w + 4.0,
                by + bar - 7.0
            );
        }
        y += group_h;
    }
    let _ = writeln!(svg, "</svg>");
    svg
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::super::report::{FloorReport, Percentiles, Step};
    use super::*;

    fn step(rate: f64, p50_ms: f64, p99_ms: f64, p999_ms: f64) -> Step {
        Step {
            offered_publishes_per_s: rate,
            offered_deliveries_per_s: rate * 1000.0,
            delivered_per_s: rate * 1000.0,
            latency: Percentiles {
                count: 1000,
                p50_us: p50_ms * 1000.0,
                p99_us: p99_ms * 1000.0,
                p999_us: p999_ms * 1000.0,
                max_us: p999_ms * 1000.0,
            },
            ..Step::default()
        }
    }

    fn entry(scenario: &str, server: &str, report: Report) -> Entry {
        Entry {
            scenario: scenario.to_owned(),
            server: server.to_owned(),
            report: Some(report),
            failure: None,
            baseline: None,
            repeats: Vec::new(),
            note: None,
        }
    }

    fn floor_report(step: Step) -> Report {
        Report {
            label: FLOOR.to_owned(),
            steps: vec![step],
            floor: Some(FloorReport {
                writer_core: Some(0),
                reader_core: Some(1),
                writer_cpu_us_per_record: 5.25,
                reader_cpu_share: 0.125,
                ..FloorReport::default()
            }),
            ..Report::default()
        }
    }

    fn results(entries: Vec<Entry>) -> SuiteResults {
        SuiteResults {
            mode: Mode::Quick,
            machine: "test".to_owned(),
            pinned: true,
            entries,
            micro: Vec::new(),
        }
    }

    #[test]
    fn the_slow_consumer_table_compares_the_means_and_shows_the_clean_to_clean_noise() {
        let run = |p99_ms| Report {
            steps: vec![step(40.0, 1.0, p99_ms, p99_ms)],
            ..Report::default()
        };
        let mut slow = entry("slow-consumer-1k", REFERENCE, run(12.0));
        slow.baseline = Some(run(10.0));
        slow.repeats = vec![run(14.0), run(10.0)];
        let md = markdown(&results(vec![slow]));
        let row = md
            .lines()
            .find(|l| l.starts_with("| slow-consumer-1k | rtbus-server"))
            .unwrap_or_else(|| panic!("no slow-consumer row in\n{md}"));
        // Clean 10, 10; stalled 12, 14: the means differ by +30 %, the clean runs by 0 %.
        assert!(
            row.contains("| 10.00, 10.00 ms | 12.00, 14.00 ms | +30% | +0% |"),
            "{row}"
        );
    }

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

    #[test]
    fn the_floor_table_puts_floor_and_servers_side_by_side_at_each_rate() {
        let mut fanout = Report {
            saturation_deliveries_per_s: 900_000.0,
            half_load: Some(step(450.0, 9.5, 55.0, 70.0)),
            ..Report::default()
        };
        fanout.steps.push(step(900.0, 20.0, 90.0, 99.0));
        let mut saturated = step(450.0, 300.0, 900.0, 950.0);
        saturated.saturated = Some("delivered 55% of the offered rate".to_owned());
        saturated.delivered_per_s = 247_000.0;
        let mut half_floor = entry(FLOOR_HALF, FLOOR, floor_report(saturated));
        half_floor.note = Some("rtbus-server's fanout-1k half-load rate in this run".to_owned());
        let r = results(vec![
            entry("fanout-1k", REFERENCE, fanout),
            entry(
                "latency-1k",
                REFERENCE,
                Report {
                    steps: vec![step(25.0, 6.9, 19.4, 25.0)],
                    ..Report::default()
                },
            ),
            entry(
                "latency-1k",
                "node-ws",
                Report {
                    steps: vec![step(25.0, 4.0, 30.0, 41.0)],
                    lost: 3,
                    ..Report::default()
                },
            ),
            entry(FLOOR_LOW, FLOOR, floor_report(step(25.0, 0.6, 6.25, 9.0))),
            half_floor,
        ]);
        let md = markdown(&r);
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| ")).collect();
        let row = |prefix: &str| {
            rows.iter()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no row {prefix:?} in\n{md}"))
                .to_string()
        };
        assert_eq!(
            row("| publishes/s"),
            "| publishes/s × 1,000 subscribers | loopback floor p50 / p99 / p999 | floor writer CPU-µs per record, reader share of its core | rtbus-server p50 / p99 / p999 | node-ws p50 / p99 / p999 |"
        );
        assert_eq!(
            row("| 25 |"),
            "| 25 | 0.60 / 6.25 / 9.00 ms | 5.2 µs, 12 % | 6.90 / 19.40 / 25.00 ms | 4.00 / 30.00 / 41.00 ms — **3 lost** |"
        );
        assert_eq!(
            row("| 450 "),
            "| 450 (rtbus-server half load) | 300.00 / 900.00 / 950.00 ms (saturated: 247000 of 450000 deliveries/s) | 5.2 µs, 12 % | 9.50 / 55.00 / 70.00 ms | — |"
        );
        assert!(
            md.contains("Half-load rate: rtbus-server's fanout-1k half-load rate in this run.")
        );
        // Fixed-rate runs and the floor stay out of the throughput table and the chart.
        assert!(!rows.iter().any(|l| l.starts_with("| latency-1k")), "{md}");
        assert!(!rows.iter().any(|l| l.starts_with("| floor-1k")), "{md}");
        assert!(
            rows.iter()
                .any(|l| l.starts_with("| fanout-1k | rtbus-server"))
        );
        let svg = chart(&r);
        assert!(!svg.contains("latency-1k") && !svg.contains(FLOOR), "{svg}");
        assert!(svg.contains("fanout-1k"));
    }

    #[test]
    fn without_fixed_rate_runs_there_is_no_floor_table() {
        let r = results(vec![entry("fanout-1k", REFERENCE, Report::default())]);
        assert!(!markdown(&r).contains("Loopback floor"));
    }

    #[test]
    fn with_only_fixed_rate_runs_there_is_no_empty_throughput_table() {
        let r = results(vec![entry(
            FLOOR_LOW,
            FLOOR,
            floor_report(step(25.0, 0.6, 6.25, 9.0)),
        )]);
        let md = markdown(&r);
        assert!(!md.contains("| scenario | server |"), "{md}");
        assert!(md.contains("| 25 | 0.60 / 6.25 / 9.00 ms |"), "{md}");
    }
}
