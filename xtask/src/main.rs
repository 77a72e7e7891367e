//! `cargo xtask`: the repository's own automation (code generation, the full test gate).
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Repository automation for rtbus. Run as `cargo xtask <command>`.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// One variant per subcommand, each backed by its own module in the library.
#[derive(Debug, Subcommand)]
enum Command {
    /// Regenerate generated/ (TypeScript, JSON Schema, PROTOCOL.md) from the protocol crate.
    Codegen(xtask::codegen::Args),
    /// Run every check CI runs: fmt, clippy, drift check, TypeScript checks, npm package checks
    /// (build, publint, attw, consumer check, client tests), cargo test, a 60 s soak.
    Test(xtask::test::Args),
    /// Benchmarks: criterion frame micro-benchmarks and the load suite against the peers.
    Bench(xtask::bench::Args),
    /// Fuzz the server's frame path in release (a million inputs by default).
    Fuzz(xtask::fuzz::Args),
    /// Is the working tree's generated/schema/ a breaking change against --against <ref>?
    /// Direction-aware; exit 1 on breaking changes at --level, 2 on a usage or input error.
    Breaking(xtask::breaking::Args),
    /// Soak the release server: steady load with churn for --minutes (or --seconds), its memory
    /// over time; fails on any lost event, any error, or memory growth beyond the bound.
    Soak(xtask::soak::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Codegen(args) => xtask::codegen::run(&args),
        Command::Test(args) => xtask::test::run(&args),
        Command::Bench(args) => xtask::bench::run(&args),
        Command::Fuzz(args) => xtask::fuzz::run(&args),
        Command::Soak(args) => xtask::soak::run(&args),
        Command::Breaking(args) => xtask::breaking::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
