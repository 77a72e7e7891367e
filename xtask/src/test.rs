//! `cargo xtask test`: every check CI runs, in one command, installing what it needs.
//!
//! Steps: `cargo fmt --check`, `cargo clippy -D warnings`, the drift check, the TypeScript
//! checks (`npm ci` in `codegen/typescript-check`, then `tsc --strict` over the generated types
//! and the corpus), and `cargo test --workspace`. Cheap checks run first so a mistake fails fast.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use crate::codegen::{self, Mode};
use crate::{cargo, step};

/// The TypeScript check package, relative to the repository root.
pub const TYPESCRIPT_CHECK_DIR: &str = "codegen/typescript-check";

/// Arguments of `cargo xtask test`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Skip `cargo test --workspace` (for quick local runs; CI never passes this).
    #[arg(long)]
    pub no_cargo_test: bool,
}

fn npm() -> Command {
    Command::new(if cfg!(windows) { "npm.cmd" } else { "npm" })
}

/// Installs the pinned TypeScript compiler and type-checks the generated TypeScript and the
/// corpus under `tsc --strict`.
pub fn typescript_checks(root: &Path) -> anyhow::Result<()> {
    let dir = root.join(TYPESCRIPT_CHECK_DIR);
    let mut install = npm();
    install.args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]);
    step("npm ci (TypeScript check package)", install, &dir)?;
    let tsc = dir.join("node_modules/typescript/bin/tsc");
    let mut check = Command::new("node");
    check.arg(tsc).args(["--project", "tsconfig.json"]);
    step("tsc --strict (generated types and corpus)", check, &dir)
}

/// Runs `cargo xtask test`.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let root = crate::project_root();
    let started = Instant::now();

    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--check"]);
    step("cargo fmt --check", fmt, &root)?;

    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]);
    step("cargo clippy -D warnings", clippy, &root)?;

    println!("==> cargo xtask codegen --check");
    let files = codegen::all_files()?;
    let drift = codegen::sync(&root, &files, Mode::Check)?;
    if !drift.is_empty() {
        eprint!("{}", codegen::report(&drift));
        return Ok(ExitCode::FAILURE);
    }
    println!("    generated files are up to date ({} files)", files.len());

    typescript_checks(&root)?;

    if !args.no_cargo_test {
        let mut test = cargo();
        test.args(["test", "--workspace", "--locked"]);
        step("cargo test --workspace", test, &root)?;
    }

    println!(
        "all checks passed in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
