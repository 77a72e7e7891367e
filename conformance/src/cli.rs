//! The command line: `run`, `record`, `coverage`, `contract`, `serve`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};

use crate::contract::Contract;
use crate::embedded::{self, Cluster, Embedded, Scripted, ServerCommands};
use crate::error::{Error, LoadErrors, Result, UsageError};
use crate::report::{self, Style};
use crate::runner::{self, CaseResult, RunOptions, Target};
use crate::transcript::{Capability, LoadedCase};

/// Exit code: every case passed (or was unsupported).
pub const EXIT_PASSED: u8 = 0;
/// Exit code: at least one case failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad usage, bad transcript, the server could not be reached, or a restart or
/// shutdown command failed.
pub const EXIT_ERROR: u8 = 2;

/// Conformance harness for rtbus v1 servers.
#[derive(Debug, Parser)]
#[command(name = "rtbus-conformance", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// A subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the conformance suite (against the embedded reference server unless --url is given).
    Run(RunArgs),
    /// Proxy a live session to a server and write it as a replayable transcript.
    Record(crate::record::RecordArgs),
    /// Print the rule → cases coverage table (Markdown).
    Coverage,
    /// Print the testee contract (what a server under test must provide) as TOML.
    Contract(ContractArgs),
    /// Run the reference server configured as the contract says, until SIGTERM or Ctrl-C
    /// (then it closes its connections with 1001): a server to try a client against, or to
    /// restart from a `--restart-command` script.
    Serve(ServeArgs),
}

/// Arguments of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// A TOML contract whose credentials and limits configure the server.
    #[arg(long, value_name = "FILE")]
    pub contract: Option<PathBuf>,
    /// Keep topics in this Redis (`redis://HOST:PORT`), so several `serve` processes on it are
    /// one cluster to run the suite against with `run --url A --url B`.
    #[arg(long, value_name = "URL")]
    pub redis_url: Option<String>,
}

/// Arguments of `contract`.
#[derive(Debug, Clone, Args)]
pub struct ContractArgs {
    /// Print an rtbus-server configuration that fulfils the contract instead.
    #[arg(long)]
    pub server_toml: bool,
    /// The listen address written into the server configuration.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
}

/// Arguments of `run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The server under test, e.g. ws://127.0.0.1:8080/api/realtime. Without it, a fresh
    /// embedded reference server is started for each case.
    ///
    /// Repeat it for a cluster whose nodes serve one stream: a case's connections, taken in the
    /// order of their names, go to the URLs in turn (the i-th to URL i mod n, from 0; a
    /// connection's `node` in the case overrides its position), so publishers and subscribers
    /// sit on different nodes; the cases tagged `cluster` (publish on one node, read on
    /// another) need two or more. Restart and shutdown commands run once per node.
    #[arg(long, env = "RTBUS_CONFORMANCE_URL", value_name = "URL")]
    pub url: Vec<String>,
    /// A credential of the testee contract as NAME=TOKEN (publisher, reader, narrow); also
    /// read from RTBUS_CONFORMANCE_TOKEN_<NAME>.
    #[arg(long = "token", value_name = "NAME=TOKEN")]
    pub tokens: Vec<String>,
    /// A TOML file describing the server under test (credentials, limits, absent
    /// capabilities); see conformance/README.md.
    #[arg(long, value_name = "FILE")]
    pub contract: Option<PathBuf>,
    /// Declare a capability absent (auth, publish, resume, public-topics, limits, heartbeat,
    /// slow-consumer, shutdown, restart, cluster): cases needing it are reported unsupported.
    #[arg(long = "without", value_name = "CAPABILITY")]
    pub without: Vec<String>,
    /// With --url: a shell command (sh -c) that stops the server and starts it again with its
    /// state lost; enables the `restart` cases (overrides the contract's restartCommand).
    #[arg(long, value_name = "COMMAND")]
    pub restart_command: Option<String>,
    /// With --url: a shell command that shuts the server down gracefully (close 1001);
    /// enables the `shutdown` cases (overrides the contract's shutdownCommand).
    #[arg(long, value_name = "COMMAND")]
    pub shutdown_command: Option<String>,
    /// Milliseconds a restart or shutdown command may run, and then the server may take to
    /// accept connections (overrides the contract's commandTimeoutMs).
    #[arg(long, value_name = "MS")]
    pub command_timeout: Option<u64>,
    /// Run the cases in this directory instead of the bundled suite.
    #[arg(long, value_name = "DIR")]
    pub cases: Option<PathBuf>,
    /// Only cases whose id, rule or tag matches (trailing * for a prefix); repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub filter: Vec<String>,
    /// Skip cases whose id, rule or tag matches; repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// Cases run at once.
    #[arg(long, short = 'j', default_value_t = 4)]
    pub jobs: usize,
    /// Default milliseconds an expect step waits.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub step_timeout: u64,
    /// Write a report: json=PATH or junit=PATH; repeatable.
    #[arg(long, value_name = "KIND=PATH")]
    pub report: Vec<String>,
    /// List the selected cases instead of running them.
    #[arg(long)]
    pub list: bool,
    /// Never colour the output (also: NO_COLOR).
    #[arg(long)]
    pub no_color: bool,
}

/// Runs the command line.
pub async fn main(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => Ok(run(args).await),
        Command::Record(args) => crate::record::run(args).await,
        Command::Serve(args) => serve(args).await,
        Command::Contract(args) => {
            let contract = Contract::default();
            if args.server_toml {
                print!("{}", contract.server_toml(&args.listen));
            } else {
                print!("{}", contract.to_toml());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Coverage => match crate::suite::bundled() {
            Ok(cases) => {
                print!("{}", crate::coverage::coverage_markdown(&cases));
                Ok(ExitCode::SUCCESS)
            }
            Err(errors) => {
                for e in errors {
                    eprintln!("error: {e}");
                }
                Ok(ExitCode::from(EXIT_ERROR))
            }
        },
    }
}

/// `rtbus-conformance serve`.
async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    use anyhow::Context as _;
    let contract = match &args.contract {
        Some(path) => Contract::from_file(path)?,
        None => Contract::default(),
    };
    let mut config = embedded::server_config(&contract);
    config.listen = args.listen;
    config.redis_url = args.redis_url;
    let server = rtbus_server::start(config)
        .await
        .with_context(|| format!("cannot start the reference server on {}", args.listen))?;
    println!("serving the reference server at {}", server.url());
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch for SIGTERM")?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_ERROR)
}

enum ReportKind {
    Json,
    Junit,
}

/// `rtbus-conformance run`.
pub async fn run(args: RunArgs) -> ExitCode {
    match execute(args).await {
        Ok(code) => code,
        Err(Error::Load(errors)) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            eprintln!(
                "{} transcript(s) could not be loaded; nothing was run",
                errors.0.len()
            );
            ExitCode::from(EXIT_ERROR)
        }
        Err(e) => usage_error(e),
    }
}

/// `run` up to its exit code; an `Err` is reported with exit code 2.
async fn execute(args: RunArgs) -> Result<ExitCode> {
    let style = Style {
        color: !args.no_color
            && std::env::var_os("NO_COLOR").is_none()
            && std::io::stdout().is_terminal(),
    };
    let reports = parse_reports(&args.report)?;
    let mut contract = contract_of(&args)?;
    let loaded = match &args.cases {
        Some(dir) => crate::suite::from_dir(dir),
        None => crate::suite::bundled(),
    };
    let cases = loaded.map_err(LoadErrors)?;
    let (cases, unmatched) = crate::suite::select(cases, &args.filter, &args.exclude);
    for p in unmatched {
        eprintln!("warning: --filter/--exclude {p:?} matches no case id, rule or tag");
    }
    if args.list {
        for c in &cases {
            println!(
                "{:<44} {:<28} {}",
                c.case.id,
                c.case.rules.join(","),
                c.case.title
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if cases.is_empty() {
        return Err(UsageError::NoCaseSelected.into());
    }
    apply_command_flags(&args, &mut contract);
    let target = target_of(&args, &contract).await?;
    let description = target.describe();
    let nodes = target.nodes();
    let rules_checked = rules_checked(&cases);
    println!(
        "rtbus conformance: {} case(s) against {description}, {} at a time",
        cases.len(),
        args.jobs.max(1)
    );
    let options = RunOptions {
        step_timeout: Duration::from_millis(args.step_timeout),
        jobs: args.jobs.max(1),
        contract,
        ..RunOptions::default()
    };
    let started = Instant::now();
    let results = runner::run_suite(cases, target, options, |r, done, total| {
        println!("{}", report::progress_line(r, done, total, style));
    })
    .await;
    print!(
        "{}",
        report::summary(&results, &description, started.elapsed().as_millis(), style)
    );
    println!(
        "rules: {rules_checked} of {} protocol rules checked by the selected cases (table: generated/CONFORMANCE.md)",
        rtbus_protocol::rules::RULES.len()
    );
    print_next_step(&results, args.url.is_empty());
    for (kind, path) in reports {
        let text = match kind {
            ReportKind::Json => report::json_report(&results, &description, &nodes),
            ReportKind::Junit => report::junit_report(&results),
        };
        std::fs::write(&path, text).map_err(|source| UsageError::WriteReport {
            path: path.clone(),
            source,
        })?;
        println!("report written to {}", path.display());
    }
    Ok(exit_code(&results))
}

/// The `--report KIND=PATH` flags.
fn parse_reports(flags: &[String]) -> Result<Vec<(ReportKind, PathBuf)>, UsageError> {
    flags
        .iter()
        .map(|r| match r.split_once('=') {
            Some(("json", path)) if !path.is_empty() => Ok((ReportKind::Json, PathBuf::from(path))),
            Some(("junit", path)) if !path.is_empty() => {
                Ok((ReportKind::Junit, PathBuf::from(path)))
            }
            _ => Err(UsageError::BadReport(r.clone())),
        })
        .collect()
}

/// The contract the flags describe: `--contract`, then the token environment variables,
/// `--token` and `--without`.
fn contract_of(args: &RunArgs) -> Result<Contract> {
    let mut contract = match &args.contract {
        Some(path) => Contract::from_file(path)?,
        None => Contract::default(),
    };
    contract.apply_env();
    for t in &args.tokens {
        contract.set_token(t)?;
    }
    for w in &args.without {
        let capability =
            Capability::parse(w).ok_or_else(|| UsageError::UnknownCapability(w.clone()))?;
        contract.absent.push(capability);
    }
    Ok(contract)
}

/// `--restart-command`, `--shutdown-command` and `--command-timeout` over the contract's.
fn apply_command_flags(args: &RunArgs, contract: &mut Contract) {
    if let Some(command) = &args.restart_command {
        contract.restart_command = Some(command.clone());
    }
    if let Some(command) = &args.shutdown_command {
        contract.shutdown_command = Some(command.clone());
    }
    if let Some(ms) = args.command_timeout {
        contract.command_timeout_ms = ms;
    }
}

/// The server under test: the `--url` one (or the cluster of every `--url`), once something
/// accepts TCP at each, or the embedded reference server.
async fn target_of(args: &RunArgs, contract: &Contract) -> Result<Arc<dyn Target>> {
    for url in &args.url {
        embedded::probe(url).await?;
    }
    let commands = ServerCommands::from_contract(contract);
    Ok(match args.url.as_slice() {
        [url] => Arc::new(Scripted {
            url: url.clone(),
            commands,
        }),
        [_, _, ..] => Arc::new(Cluster {
            urls: args.url.clone(),
            commands,
        }),
        [] => {
            if contract.restart_command.is_some() || contract.shutdown_command.is_some() {
                eprintln!(
                    "warning: restart and shutdown commands apply only with --url; the embedded \
                     server is restarted and shut down by the harness itself"
                );
            }
            Arc::new(Embedded::new(contract))
        }
    })
}

/// How many distinct protocol rules the cases cite.
fn rules_checked(cases: &[LoadedCase]) -> usize {
    let mut rules: Vec<&str> = cases
        .iter()
        .flat_map(|c| c.case.rules.iter().map(String::as_str))
        .collect();
    rules.sort_unstable();
    rules.dedup();
    rules.len()
}

/// After the summary: how to re-run the first failed case, or, after a green run against the
/// embedded server, how to test one's own.
fn print_next_step(results: &[CaseResult], embedded: bool) {
    if report::totals(results).failed > 0 {
        let first = results
            .iter()
            .find(|r| !r.passed() && matches!(r.verdict, runner::Verdict::Failed(_)));
        if let Some(first) = first {
            println!(
                "re-run one case: rtbus-conformance run --filter {}",
                first.id
            );
        }
    } else if embedded {
        println!(
            "next: test your own server with `rtbus-conformance run --url ws://HOST:PORT/api/realtime --token publisher=... --token reader=... --token narrow=...`;\n      `rtbus-conformance contract` prints what it must provide (conformance/README.md explains it)"
        );
    }
}

/// 2 when the run itself broke in a case (reported on stderr), 1 when a case failed, else 0.
fn exit_code(results: &[CaseResult]) -> ExitCode {
    let broken: Vec<&str> = results
        .iter()
        .filter(|r| matches!(&r.verdict, runner::Verdict::Failed(f) if f.infrastructure))
        .map(|r| r.id.as_str())
        .collect();
    if !broken.is_empty() {
        eprintln!(
            "error: the run itself broke in {} case(s) ({}): see the messages above",
            broken.len(),
            broken.join(", ")
        );
        ExitCode::from(EXIT_ERROR)
    } else if report::totals(results).failed > 0 {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::from(EXIT_PASSED)
    }
}
