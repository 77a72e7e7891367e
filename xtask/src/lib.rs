//! The library behind `cargo xtask`: one module per subcommand.
//!
//! To add a subcommand, add a module here with an `Args` (clap) and a
//! `run(&Args) -> anyhow::Result<ExitCode>`, and one variant in `main.rs`. `tidy` is no
//! subcommand but the tidy test, house rules that plain `cargo test -p xtask` checks.
#![deny(missing_docs)]

pub mod bench;
pub mod breaking;
pub mod codegen;
pub mod fuzz;
pub mod install;
pub mod soak;
pub mod test;
#[cfg(test)]
mod tidy;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail};

/// The repository root (the parent of this crate's directory).
pub fn project_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The cargo that runs this xtask, so nested builds use the same toolchain.
pub(crate) fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Runs one named step of a pipeline in `dir`, printing its name and duration, and fails with
/// the command line when it fails.
pub(crate) fn step(name: &str, mut command: Command, dir: &Path) -> anyhow::Result<()> {
    println!("==> {name}");
    let started = Instant::now();
    let status = command
        .current_dir(dir)
        .status()
        .with_context(|| format!("{name}: could not start {command:?}"))?;
    if !status.success() {
        bail!("{name} failed ({status}); command: {command:?}");
    }
    println!("    {name}: ok in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}
