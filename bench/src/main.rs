//! `rtbus-bench`: the benchmarks' command line.

use std::process::ExitCode;

use clap::Parser;
use rtbus_bench::cli::{self, BenchArgs};

#[tokio::main]
async fn main() -> ExitCode {
    let args = BenchArgs::parse();
    match cli::run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}
