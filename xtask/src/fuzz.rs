//! `cargo xtask fuzz`: the server's frame-path fuzz run (`server/tests/fuzz.rs`) at full size,
//! in release: a million inputs by default, from a fixed seed unless one is given.

use std::process::ExitCode;

use crate::{cargo, step};

/// Arguments of `cargo xtask fuzz`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many inputs to offer (CI's ordinary test run offers 10,000).
    #[arg(long, default_value_t = 1_000_000)]
    pub inputs: u64,
    /// The seed of the input generator; the same seed offers the same inputs.
    #[arg(long, default_value_t = 0x5eed)]
    pub seed: u64,
}

/// Runs the fuzz test in release with `RTBUS_FUZZ_INPUTS` and `RTBUS_FUZZ_SEED` set.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let root = crate::project_root();
    let mut test = cargo();
    test.args([
        "test",
        "--release",
        "-p",
        "rtbus-server",
        "--test",
        "fuzz",
        "--",
        "--nocapture",
    ])
    .env("RTBUS_FUZZ_INPUTS", args.inputs.to_string())
    .env("RTBUS_FUZZ_SEED", args.seed.to_string());
    step(
        &format!(
            "fuzz the server's frame path ({} inputs, seed {})",
            args.inputs, args.seed
        ),
        test,
        &root,
    )?;
    Ok(ExitCode::SUCCESS)
}
