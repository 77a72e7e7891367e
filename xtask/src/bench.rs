//! `cargo xtask bench`: installs the peers, runs the criterion frame benchmarks and the load
//! suite (reference server and every peer, same generator), writes bench/results/. With
//! `--cluster`, the scale-out comparison instead: one node beside two nodes on a Redis it starts.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use crate::{cargo, step};
use anyhow::Context as _;

/// Arguments of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A smoke run (smaller counts, short steps; a couple of minutes) instead of the full run.
    #[arg(long)]
    pub quick: bool,
    /// Only the load scenarios whose id starts with one of these (e.g. `fanout`, `idle`).
    #[arg(long)]
    pub only: Vec<String>,
    /// Skip the criterion micro-benchmarks.
    #[arg(long)]
    pub no_micro: bool,
    /// Run the scale-out comparison instead of the suite: a fresh redis-server on a free
    /// loopback port, one node on the memory engine beside two nodes on that Redis, the same
    /// loads; writes bench/results/cluster.{md,json}. Needs no peers.
    #[arg(long, conflicts_with_all = ["only", "no_micro"])]
    pub cluster: bool,
    /// The redis-server binary `--cluster` starts.
    #[arg(long, default_value = "redis-server", requires = "cluster")]
    pub redis_server: PathBuf,
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// Runs the benchmarks and writes `bench/results/{results.json,results.md,chart.svg}`.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if args.cluster {
        return cluster(args);
    }
    let root = crate::project_root();
    let bench = root.join("bench");
    let mut setup = Command::new("sh");
    setup.arg(bench.join("setup.sh"));
    step(
        "install the peers (npm ci, pip into bench/.venv)",
        setup,
        &root,
    )?;
    let mut build = cargo();
    build.args(["build", "--release", "-p", "rtbus-bench"]);
    step(
        "build the generator and reference server (release)",
        build,
        &root,
    )?;
    let target = target_dir(&root);
    let criterion = target.join("criterion");
    if !args.no_micro {
        let quick: &[&str] = if args.quick {
            &["--warm-up-time", "1", "--measurement-time", "2"]
        } else {
            &[]
        };
        for (package, name) in [
            ("rtbus-protocol", "frames"),
            ("rtbus-conformance", "validation"),
        ] {
            let mut run = cargo();
            run.args(["bench", "-p", package, "--bench", name, "--"])
                .args(quick);
            step(&format!("criterion: {package} {name}"), run, &root)?;
        }
    }
    let mut suite = Command::new(target.join("release/rtbus-bench"));
    suite
        .args(["--suite", if args.quick { "quick" } else { "full" }])
        .arg("--out")
        .arg(bench.join("results"))
        .arg("--peer")
        .arg(format!(
            "node-ws=node {} 127.0.0.1:0",
            bench.join("peers/node/server.js").display()
        ))
        .arg("--peer")
        .arg(format!(
            "python-websockets={} {} 127.0.0.1:0",
            bench.join(".venv/bin/python").display(),
            bench.join("peers/python/server.py").display()
        ));
    if !args.no_micro {
        suite.arg("--criterion-dir").arg(&criterion);
    }
    for only in &args.only {
        suite.arg("--only").arg(only);
    }
    println!("==> load suite");
    let status = suite
        .current_dir(&root)
        .status()
        .context("running the load suite")?;
    println!("results: {}", bench.join("results/results.md").display());
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `cargo xtask bench --cluster`: builds `rtbus-bench` (release) and runs `rtbus-bench
/// --cluster`, which starts Redis and the nodes itself and stops them on every way out.
fn cluster(args: &Args) -> anyhow::Result<ExitCode> {
    let root = crate::project_root();
    let mut build = cargo();
    build.args(["build", "--release", "-p", "rtbus-bench"]);
    step(
        "build the generator and reference server (release)",
        build,
        &root,
    )?;
    let mut run = Command::new(target_dir(&root).join("release/rtbus-bench"));
    run.args(["--cluster", if args.quick { "quick" } else { "full" }])
        .arg("--redis-server")
        .arg(&args.redis_server)
        .arg("--out")
        .arg(root.join("bench/results"));
    println!("==> scale-out on Redis: one node, then two nodes on one Redis");
    let status = run
        .current_dir(&root)
        .status()
        .context("running rtbus-bench --cluster")?;
    println!(
        "results: {}",
        root.join("bench/results/cluster.md").display()
    );
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
