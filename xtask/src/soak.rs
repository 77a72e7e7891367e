//! `cargo xtask soak`: builds `rtbus-server` and `rtbus-bench` in release, starts the server on a
//! loopback port as a child process (killed on every way out), and runs `rtbus-bench --soak`
//! against it: steady load well below saturation with subscribe, unsubscribe and reconnect
//! churn, the server's memory sampled over time, samples written to `target/soak/`. Exits 1 on
//! any lost, duplicated or reordered event, any error, or memory growth beyond the bound.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};

use anyhow::{Context as _, bail};

use crate::{cargo, step};

/// The publisher token written into the soak server's configuration. Loopback only; not a
/// secret.
const PUBLISHER_TOKEN: &str = "soak-publisher";

/// Events the soak server keeps per topic (its `history_per_topic`, the server's default),
/// which the warm-up must give time to fill.
const HISTORY_PER_TOPIC: usize = 1024;

/// Arguments of `cargo xtask soak`.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct Args {
    /// How many minutes to publish.
    #[arg(long, required_unless_present = "seconds", conflicts_with = "seconds")]
    pub minutes: Option<f64>,
    /// How many seconds to publish (CI runs 60).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Publishes per second, all topics together.
    #[arg(long, default_value_t = 400.0)]
    pub rate: f64,
    /// Topics the publishes are spread over.
    #[arg(long, default_value_t = 4)]
    pub topics: usize,
    /// Subscriber connections, churners included (subscriber i takes topic i mod topics).
    #[arg(long, default_value_t = 220)]
    pub subscribers: usize,
    /// Subscribers that leave and come back every --churn-secs, alternately unsubscribing and
    /// reconnecting, each time resuming after the last seq they saw.
    #[arg(long, default_value_t = 20)]
    pub churners: usize,
    /// Seconds between a churner's cycles.
    #[arg(long, default_value_t = 0.5)]
    pub churn_secs: f64,
    /// Seconds between samples of the server's memory.
    #[arg(long, default_value_t = 5.0)]
    pub sample_secs: f64,
    /// Seconds the memory bound ignores at the start (default: 1.5 × the time the histories
    /// take to fill, at least 10).
    #[arg(long)]
    pub warmup_secs: Option<f64>,
    /// The growth of the server's memory allowed from the first sample after the warm-up to the
    /// last one, in MiB.
    #[arg(long, default_value_t = 8.0)]
    pub rss_growth_mib: f64,
    /// Approximate payload size in bytes.
    #[arg(long, default_value_t = 100)]
    pub payload_bytes: usize,
    /// Build and run the dev-profile binaries instead of release ones. CI does: they are the
    /// ones `cargo test` already built, so the soak costs no build; loss, errors and growth are
    /// judged the same, but memory and CPU figures are not the release build's.
    #[arg(long)]
    pub debug: bool,
}

impl Args {
    /// The soak `cargo xtask test` runs: 60 seconds of the default load on the dev-profile
    /// binaries.
    pub fn ci() -> Args {
        Args {
            minutes: None,
            seconds: Some(60.0),
            rate: 400.0,
            topics: 4,
            subscribers: 220,
            churners: 20,
            churn_secs: 0.5,
            sample_secs: 5.0,
            warmup_secs: None,
            rss_growth_mib: 8.0,
            payload_bytes: 100,
            debug: true,
        }
    }

    /// The soak's length in seconds, refused unless it is a positive number.
    fn seconds(&self) -> anyhow::Result<f64> {
        let seconds = match (self.minutes, self.seconds) {
            (Some(m), None) => m * 60.0,
            (None, Some(s)) => s,
            _ => bail!("give exactly one of --minutes and --seconds"),
        };
        if !(seconds.is_finite() && seconds > 0.0) {
            bail!("the soak's length must be a positive number of seconds, got {seconds}");
        }
        Ok(seconds)
    }

    /// The `rtbus-bench --soak` command line against `url` and the server's `pid`.
    fn bench_args(&self, seconds: f64, url: &str, pid: u32, dir: &Path) -> Vec<String> {
        let mut args = vec![
            format!("--soak={seconds}"),
            format!("--url={url}"),
            format!("--token={PUBLISHER_TOKEN}"),
            format!("--server-pid={pid}"),
            format!("--rate={}", self.rate),
            format!("--topics={}", self.topics),
            format!("--subscribers={}", self.subscribers),
            format!("--churners={}", self.churners),
            format!("--churn-secs={}", self.churn_secs),
            format!("--sample-secs={}", self.sample_secs),
            format!("--rss-growth-mib={}", self.rss_growth_mib),
            format!("--payload-bytes={}", self.payload_bytes),
            format!("--history-per-topic={HISTORY_PER_TOPIC}"),
            format!("--soak-dir={}", dir.display()),
        ];
        if let Some(warmup) = self.warmup_secs {
            args.push(format!("--warmup-secs={warmup}"));
        }
        args
    }
}

/// The soak server's configuration: the bench topics public, a publisher token, the default
/// limits (a soak judges the server as it ships) with the history written out because the
/// warm-up depends on it.
fn server_config() -> String {
    format!(
        "listen = \"127.0.0.1:0\"\n\
         public_topics = [\"custom.bench.*\"]\n\
         \n\
         [[tokens]]\n\
         token = \"{PUBLISHER_TOKEN}\"\n\
         principal = \"soak\"\n\
         roles = [\"publisher\"]\n\
         read = [\"custom.bench.*\"]\n\
         publish = [\"custom.bench.*\"]\n\
         \n\
         [limits]\n\
         history_per_topic = {HISTORY_PER_TOPIC}\n"
    )
}

/// The server under test; dropping it kills the process, so no way out of [`run`] (an error,
/// a panic) leaves it running.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the server's first stdout line, `listening on ws://…`, and returns the URL.
fn listening_url(line: &str) -> anyhow::Result<String> {
    let url = line.trim().strip_prefix("listening on ").with_context(|| {
        format!("expected `listening on ws://…` from rtbus-server, got {line:?}")
    })?;
    if !url.starts_with("ws://") {
        bail!("expected a ws:// URL after `listening on`, got {line:?}");
    }
    Ok(url.to_owned())
}

/// Starts `rtbus-server --config <dir>/server.toml` (logs to `<dir>/server.log`) and waits for
/// the URL it listens on.
fn start_server(binary: &Path, dir: &Path) -> anyhow::Result<(Server, String)> {
    let config = dir.join("server.toml");
    std::fs::write(&config, server_config())
        .with_context(|| format!("writing {}", config.display()))?;
    let log_path = dir.join("server.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let mut child = Command::new(binary)
        .arg("--config")
        .arg(&config)
        .args(["--log", "warn"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let stdout = child.stdout.take();
    let server = Server { child };
    let mut lines = BufReader::new(stdout.context("rtbus-server's stdout")?).lines();
    let first = match lines.next() {
        Some(line) => line.context("reading rtbus-server's stdout")?,
        None => bail!(
            "rtbus-server exited before listening; see {}",
            log_path.display()
        ),
    };
    let url = listening_url(&first)?;
    // Whatever else the server prints is drained, so it can never block on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Ok((server, url))
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// Runs the soak; exit code 1 when the verdict fails.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    Ok(if passes(args)? {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Runs the soak and returns its verdict; an error when it could not run.
pub fn passes(args: &Args) -> anyhow::Result<bool> {
    let seconds = args.seconds()?;
    let root = crate::project_root();
    let (profile, dir_name) = if args.debug {
        ("dev", "debug")
    } else {
        ("release", "release")
    };
    let mut build = cargo();
    build.args([
        "build",
        "--profile",
        profile,
        "--locked",
        "-p",
        "rtbus-server",
        "-p",
        "rtbus-bench",
    ]);
    step(
        &format!("build rtbus-server and rtbus-bench ({profile} profile)"),
        build,
        &root,
    )?;
    let target = target_dir(&root);
    let binaries = target.join(dir_name);
    let dir = target.join("soak");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (mut server, url) = start_server(&binaries.join("rtbus-server"), &dir)?;
    let pid = server.child.id();
    println!("==> soak rtbus-server ({profile} profile, pid {pid}, {url}) for {seconds} s");
    let status = Command::new(binaries.join("rtbus-bench"))
        .args(args.bench_args(seconds, &url, pid, &dir))
        .current_dir(&root)
        .status()
        .context("running rtbus-bench --soak")?;
    // A server that died under the soak fails it even if the generator somehow did not notice.
    if let Some(exit) = server.child.try_wait().context("checking rtbus-server")? {
        bail!(
            "rtbus-server exited during the soak ({exit}); see {}",
            dir.join("server.log").display()
        );
    }
    drop(server);
    match status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => bail!("rtbus-bench --soak failed ({status})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_length_is_minutes_or_seconds_and_positive() {
        let args = |minutes, seconds| Args {
            minutes,
            seconds,
            ..Args::ci()
        };
        assert_eq!(args(Some(10.0), None).seconds().ok(), Some(600.0));
        assert_eq!(args(None, Some(60.0)).seconds().ok(), Some(60.0));
        for bad in [args(None, Some(0.0)), args(Some(f64::NAN), None)] {
            let err = bad.seconds().expect_err("not a length");
            assert!(err.to_string().contains("positive number"), "{err}");
        }
        let flags = args(None, Some(60.0)).bench_args(60.0, "ws://x", 7, Path::new("/t"));
        assert!(flags.contains(&"--server-pid=7".to_owned()), "{flags:?}");
        assert!(flags.contains(&"--soak-dir=/t".to_owned()), "{flags:?}");
        assert!(!flags.iter().any(|f| f.starts_with("--warmup-secs")));
    }

    #[test]
    fn the_ci_soak_is_the_command_line_defaults_for_60_seconds_in_debug() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        use clap::Parser as _;
        let parsed = Cli::try_parse_from(["soak", "--seconds", "60", "--debug"])
            .expect("valid flags")
            .args;
        assert_eq!(parsed, Args::ci());
        let err = Cli::try_parse_from(["soak", "--seconds", "60", "--minutes", "1"])
            .err()
            .expect("both lengths given");
        assert!(err.to_string().contains("cannot be used with"), "{err}");
    }

    #[test]
    fn the_server_announces_its_url() {
        assert_eq!(
            listening_url("listening on ws://127.0.0.1:4242/api/realtime\n").ok(),
            Some("ws://127.0.0.1:4242/api/realtime".to_owned())
        );
        let err = listening_url("rtbus-server: cannot start").expect_err("no URL");
        assert!(err.to_string().contains("expected `listening on"), "{err}");
    }
}
