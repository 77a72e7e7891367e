//! `rtbus-conformance`: the conformance harness's command line.

use std::process::ExitCode;

use clap::Parser;
use rtbus_conformance::cli::{self, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli::main(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}
