//! `cargo xtask test`: every check CI runs, in one command, installing what it needs.
//!
//! Steps: `cargo fmt --check`, `cargo clippy -D warnings`, the drift check, the TypeScript
//! checks (`npm ci` in `codegen/typescript-check`, then `tsc --strict` over the generated types
//! and the corpus), the npm package checks ([`package_checks`]: build, `publint`, `attw`, pack,
//! a scratch consumer, the client's tests against `rtbus-server`), and `cargo test --workspace`.
//! Cheap checks run first so a mistake fails fast.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use crate::codegen::{self, Mode};
use crate::{cargo, step};

/// The TypeScript check package, relative to the repository root.
pub const TYPESCRIPT_CHECK_DIR: &str = "codegen/typescript-check";

/// The npm workspaces root of the TypeScript SDK, relative to the repository root.
pub const PACKAGES_DIR: &str = "packages";

/// The workspaces under [`PACKAGES_DIR`], in build order (the client depends on the protocol).
const WORKSPACES: &[(&str, &str)] = &[("protocol", "@rtbus/protocol"), ("client", "@rtbus/client")];

/// Arguments of `cargo xtask test`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Skip `cargo test --workspace` (for quick local runs; CI never passes this).
    #[arg(long)]
    pub no_cargo_test: bool,
    /// Skip the npm package checks (for quick local runs; CI never passes this).
    #[arg(long)]
    pub no_packages: bool,
    /// Run only the npm package checks (for work on the TypeScript SDK).
    #[arg(long, conflicts_with = "no_packages")]
    pub packages_only: bool,
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

/// `npm <args>` with the flags that keep CI output to what matters.
fn npm_quiet(args: &[&str]) -> Command {
    let mut command = npm();
    command.args(args).arg("--loglevel=error");
    command
}

/// `npm exec` of a tool installed in [`PACKAGES_DIR`] (`--no`: never download it).
fn npm_exec(tool: &str, args: &[&str]) -> Command {
    let mut command = npm();
    command.args(["exec", "--no", "--", tool]).args(args);
    command
}

/// Where cargo puts `rtbus-server` for the client tests.
fn server_binary(root: &Path) -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    target
        .join("debug")
        .join(format!("rtbus-server{}", std::env::consts::EXE_SUFFIX))
}

/// The workspaces that can be built: those with a `tsconfig.json` (the client arrives in steps;
/// a missing one is reported, not silently passed over).
fn buildable_workspaces(dir: &Path) -> Vec<(&'static str, &'static str)> {
    WORKSPACES
        .iter()
        .copied()
        .filter(|(path, name)| {
            let ready = dir.join(path).join("tsconfig.json").is_file();
            if !ready {
                println!("    note: {name} has no {PACKAGES_DIR}/{path}/tsconfig.json yet; not built or checked");
            }
            ready
        })
        .collect()
}

/// Builds one workspace and lints what it would publish.
fn build_and_lint(dir: &Path, name: &str) -> anyhow::Result<()> {
    step(
        &format!("build {name}"),
        npm_quiet(&["run", "build", "--workspace", name]),
        dir,
    )?;
    let path = WORKSPACES
        .iter()
        .find_map(|(path, n)| (*n == name).then_some(*path))
        .unwrap_or(name);
    step(
        &format!("publint {name}"),
        npm_exec("publint", &["--strict", path]),
        dir,
    )?;
    // The packages are ESM only (`"type": "module"`, one `import` entry point), on purpose: the
    // `esm-only` profile leaves out the two resolutions that cannot load ESM (`node10`, and
    // `require` from CommonJS under node16) instead of reporting them as problems. Every other
    // problem fails the step.
    let attw = npm_exec(
        "attw",
        &[
            "--pack",
            path,
            "--profile",
            "esm-only",
            "--format",
            "table-flipped",
        ],
    );
    step(&format!("attw --pack {name}"), attw, dir)
}

/// Packs the workspaces into a fresh `target/npm/pack`, installs the tarballs into a scratch
/// copy of `packages/consumer-check` and compiles and runs it there.
fn consumer_check(root: &Path, dir: &Path, workspaces: &[(&str, &str)]) -> anyhow::Result<()> {
    let scratch = root.join("target").join("npm");
    let pack_dir = scratch.join("pack");
    if pack_dir.exists() {
        std::fs::remove_dir_all(&pack_dir)
            .map_err(|e| anyhow::anyhow!("removing {}: {e}", pack_dir.display()))?;
    }
    std::fs::create_dir_all(&pack_dir)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", pack_dir.display()))?;
    let mut pack = npm_quiet(&["pack"]);
    pack.arg("--pack-destination").arg(&pack_dir);
    for (_, name) in workspaces {
        pack.args(["--workspace", name]);
    }
    step("npm pack", pack, dir)?;
    let mut check = Command::new("node");
    check
        .arg("consumer-check/run.mjs")
        .arg(&pack_dir)
        .arg(scratch.join("consumer"));
    step(
        "consumer check (packed tarballs, NodeNext + Bundler + node)",
        check,
        dir,
    )
}

/// The client's `node --test` suite against the real `rtbus-server`.
fn client_tests(root: &Path, dir: &Path) -> anyhow::Result<()> {
    if !dir.join("client").join("test").is_dir() {
        println!("    note: {PACKAGES_DIR}/client/test does not exist yet; client tests skipped");
        return Ok(());
    }
    let mut test = npm_quiet(&["test", "--workspace", "@rtbus/client"]);
    test.env("RTBUS_SERVER_BIN", server_binary(root));
    step("npm test (@rtbus/client against rtbus-server)", test, dir)
}

/// Builds `rtbus-server`, installs the npm workspaces, then builds, lints (`publint`, `attw`),
/// packs and consumer-checks each package and runs the client's tests.
pub fn package_checks(root: &Path) -> anyhow::Result<()> {
    let mut server = cargo();
    server.args(["build", "-p", "rtbus-server", "--locked"]);
    step(
        "cargo build -p rtbus-server (for the client tests)",
        server,
        root,
    )?;
    let dir = root.join(PACKAGES_DIR);
    let install = npm_quiet(&["ci", "--no-audit", "--no-fund"]);
    step("npm ci (packages workspaces)", install, &dir)?;
    let workspaces = buildable_workspaces(&dir);
    for (_, name) in &workspaces {
        build_and_lint(&dir, name)?;
    }
    consumer_check(root, &dir, &workspaces)?;
    client_tests(root, &dir)
}

/// Runs `cargo xtask test`.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let root = crate::project_root();
    let started = Instant::now();
    if args.packages_only {
        package_checks(&root)?;
        println!(
            "package checks passed in {:.0}s",
            started.elapsed().as_secs_f64()
        );
        return Ok(ExitCode::SUCCESS);
    }

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
    if !args.no_packages {
        package_checks(&root)?;
    }

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
