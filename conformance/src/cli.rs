//! The command line: `run`, `record`, `coverage`, `contract`, `serve`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};

use crate::contract::Contract;
use crate::embedded::{self, Embedded, Scripted, ServerCommands};
use crate::report::{self, Style};
use crate::runner::{self, RunOptions, Target};
use crate::transcript::Capability;

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
    #[arg(long, env = "RTBUS_CONFORMANCE_URL")]
    pub url: Option<String>,
    /// A credential of the testee contract as NAME=TOKEN (publisher, reader, narrow); also
    /// read from RTBUS_CONFORMANCE_TOKEN_<NAME>.
    #[arg(long = "token", value_name = "NAME=TOKEN")]
    pub tokens: Vec<String>,
    /// A TOML file describing the server under test (credentials, limits, absent
    /// capabilities); see conformance/README.md.
    #[arg(long, value_name = "FILE")]
    pub contract: Option<PathBuf>,
    /// Declare a capability absent (auth, publish, resume, public-topics, limits, heartbeat,
    /// slow-consumer, shutdown, restart): cases needing it are reported unsupported.
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
    let style = Style {
        color: !args.no_color
            && std::env::var_os("NO_COLOR").is_none()
            && std::io::stdout().is_terminal(),
    };
    let mut reports = Vec::new();
    for r in &args.report {
        let parsed = match r.split_once('=') {
            Some(("json", path)) if !path.is_empty() => (ReportKind::Json, PathBuf::from(path)),
            Some(("junit", path)) if !path.is_empty() => (ReportKind::Junit, PathBuf::from(path)),
            _ => {
                return usage_error(format!("--report {r:?}: expected json=PATH or junit=PATH"));
            }
        };
        reports.push(parsed);
    }
    let mut contract = match &args.contract {
        Some(path) => match Contract::from_file(path) {
            Ok(c) => c,
            Err(e) => return usage_error(e),
        },
        None => Contract::default(),
    };
    contract.apply_env();
    for t in &args.tokens {
        if let Err(e) = contract.set_token(t) {
            return usage_error(e);
        }
    }
    for w in &args.without {
        match Capability::parse(w) {
            Some(c) => contract.absent.push(c),
            None => {
                let names: Vec<&str> = Capability::ALL.iter().map(|c| c.name()).collect();
                return usage_error(format!(
                    "--without {w:?}: unknown capability; expected one of {}",
                    names.join(", ")
                ));
            }
        }
    }
    let loaded = match &args.cases {
        Some(dir) => crate::suite::from_dir(dir),
        None => crate::suite::bundled(),
    };
    let cases = match loaded {
        Ok(cases) => cases,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!(
                "{} transcript(s) could not be loaded; nothing was run",
                errors.len()
            );
            return ExitCode::from(EXIT_ERROR);
        }
    };
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
        return ExitCode::SUCCESS;
    }
    if cases.is_empty() {
        return usage_error("no case selected");
    }
    if let Some(command) = args.restart_command {
        contract.restart_command = Some(command);
    }
    if let Some(command) = args.shutdown_command {
        contract.shutdown_command = Some(command);
    }
    if let Some(ms) = args.command_timeout {
        contract.command_timeout_ms = ms;
    }
    let target: Arc<dyn Target> = match &args.url {
        Some(url) => {
            if let Err(e) = embedded::probe(url).await {
                return usage_error(e);
            }
            Arc::new(Scripted {
                url: url.clone(),
                commands: ServerCommands::from_contract(&contract),
            })
        }
        None => {
            if contract.restart_command.is_some() || contract.shutdown_command.is_some() {
                eprintln!(
                    "warning: restart and shutdown commands apply only with --url; the embedded \
                     server is restarted and shut down by the harness itself"
                );
            }
            Arc::new(Embedded::new(&contract))
        }
    };
    let description = target.describe();
    let mut rules: Vec<&str> = cases
        .iter()
        .flat_map(|c| c.case.rules.iter().map(String::as_str))
        .collect();
    rules.sort_unstable();
    rules.dedup();
    let rules_checked = rules.len();
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
    let totals = report::totals(&results);
    println!(
        "rules: {rules_checked} of {} protocol rules checked by the selected cases (table: generated/CONFORMANCE.md)",
        rtbus_protocol::rules::RULES.len()
    );
    if totals.failed > 0 {
        let first = results
            .iter()
            .find(|r| !r.passed() && matches!(r.verdict, runner::Verdict::Failed(_)));
        if let Some(first) = first {
            println!(
                "re-run one case: rtbus-conformance run --filter {}",
                first.id
            );
        }
    } else if args.url.is_none() {
        println!(
            "next: test your own server with `rtbus-conformance run --url ws://HOST:PORT/api/realtime --token publisher=... --token reader=... --token narrow=...`;\n      `rtbus-conformance contract` prints what it must provide (conformance/README.md explains it)"
        );
    }
    for (kind, path) in reports {
        let text = match kind {
            ReportKind::Json => report::json_report(&results, &description),
            ReportKind::Junit => report::junit_report(&results),
        };
        if let Err(e) = std::fs::write(&path, text) {
            return usage_error(format!("cannot write report {}: {e}", path.display()));
        }
        println!("report written to {}", path.display());
    }
    let broken = results.iter().filter(|r| match &r.verdict {
        runner::Verdict::Failed(f) => f.infrastructure,
        _ => false,
    });
    let broken: Vec<&str> = broken.map(|r| r.id.as_str()).collect();
    if !broken.is_empty() {
        eprintln!(
            "error: the run itself broke in {} case(s) ({}): see the messages above",
            broken.len(),
            broken.join(", ")
        );
        ExitCode::from(EXIT_ERROR)
    } else if totals.failed > 0 {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::from(EXIT_PASSED)
    }
}
