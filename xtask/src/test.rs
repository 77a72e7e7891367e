//! `cargo xtask test`: every check CI runs, in one command, installing what it needs.
//!
//! Steps: `cargo fmt --check`, `cargo clippy -D warnings`, the drift check, the TypeScript
//! checks (`npm ci` in `codegen/typescript-check`, then `tsc --strict` over the generated types
//! and the corpus; `npm ci` in `codegen/schema-check` for the ajv and AsyncAPI tests), the npm
//! package checks ([`package_checks`]: build, `publint`, `attw`, pack, a scratch consumer, the
//! client's tests against `rtbus-server`), `cargo test --workspace` (after installing Debian's
//! `redis-server` when it is missing, see [`crate::install`]), and a 60-second soak of the
//! server ([`crate::soak`], dev profile). Cheap checks run first so a mistake fails fast.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::Context as _;

use crate::codegen::{self, Mode};
use crate::install;
use crate::{cargo, step};

/// The TypeScript check package, relative to the repository root.
pub const TYPESCRIPT_CHECK_DIR: &str = "codegen/typescript-check";

/// The schema check package (ajv, ajv-formats, @asyncapi/parser) that `codegen/tests/ajv.rs`
/// and `codegen/tests/asyncapi.rs` run under Node, relative to the repository root.
pub const SCHEMA_CHECK_DIR: &str = "codegen/schema-check";

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
    /// Skip the 60-second soak (for quick local runs; CI never passes this).
    #[arg(long)]
    pub no_soak: bool,
    /// Run only the npm package checks (for work on the TypeScript SDK).
    #[arg(long, conflicts_with = "no_packages")]
    pub packages_only: bool,
}

fn npm() -> Command {
    Command::new(if cfg!(windows) { "npm.cmd" } else { "npm" })
}

/// Installs the pinned TypeScript compiler and type-checks the generated TypeScript and the
/// corpus under `tsc --strict`; installs the schema check package.
pub fn typescript_checks(root: &Path) -> anyhow::Result<()> {
    let dir = root.join(TYPESCRIPT_CHECK_DIR);
    let mut install = npm();
    install.args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]);
    step("npm ci (TypeScript check package)", install, &dir)?;
    // Installed here, before `cargo test`, because the codegen tests that run ajv and the
    // AsyncAPI parser never download anything themselves.
    let mut install = npm();
    install.args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]);
    step(
        "npm ci (schema check package: ajv, @asyncapi/parser)",
        install,
        &root.join(SCHEMA_CHECK_DIR),
    )?;
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

/// Builds one workspace (`path` under [`PACKAGES_DIR`], package `name`) and lints what it would
/// publish.
fn build_and_lint(dir: &Path, path: &str, name: &str) -> anyhow::Result<()> {
    let build = npm_quiet(&["run", "build", "--workspace", name]);
    step(&format!("build {name}"), build, dir)?;
    let publint = npm_exec("publint", &["--strict", path]);
    step(&format!("publint {name}"), publint, dir)?;
    // The packages are ESM only (`"type": "module"`, one `import` entry point), on purpose: the
    // `esm-only` profile leaves out the two resolutions that cannot load ESM (`node10`, and
    // `require` from CommonJS under node16) instead of reporting them as problems. Every other
    // problem fails the step.
    let attw = npm_exec("attw", &["--pack", path, "--profile", "esm-only"]);
    step(&format!("attw --pack {name}"), attw, dir)
}

/// Empties `dir`, creating it if needed.
fn fresh_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Packs the workspaces into a fresh `target/npm/pack`, installs the tarballs into a scratch
/// copy of `packages/consumer-check` (`target/npm/consumer`) and compiles and runs it there.
fn consumer_check(root: &Path, dir: &Path) -> anyhow::Result<()> {
    let scratch = root.join("target").join("npm");
    let pack_dir = scratch.join("pack");
    fresh_dir(&pack_dir)?;
    let mut pack = npm_quiet(&["pack"]);
    pack.arg("--pack-destination").arg(&pack_dir);
    for (_, name) in WORKSPACES {
        pack.args(["--workspace", name]);
    }
    step("npm pack", pack, dir)?;
    let mut check = Command::new("node");
    check.arg("consumer-check/run.mjs").arg(&pack_dir);
    check.arg(scratch.join("consumer"));
    let name = "consumer check (packed tarballs: tsc NodeNext and Bundler, node)";
    step(name, check, dir)
}

/// The client's `node --test` suite against the real `rtbus-server`.
fn client_tests(root: &Path, dir: &Path) -> anyhow::Result<()> {
    let mut test = npm_quiet(&["test", "--workspace", "@rtbus/client"]);
    test.env("RTBUS_SERVER_BIN", server_binary(root));
    step("npm test (@rtbus/client against rtbus-server)", test, dir)
}

/// The live dashboard in headless Chromium against `rtbus-server --demo`, with a server restart
/// (`examples/dashboard/test/run.sh`, which installs Debian's `chromium` when it is missing).
/// Leaves `target/dashboard.png` and `target/dashboard-after-restart.png`.
fn dashboard_tests(root: &Path) -> anyhow::Result<()> {
    let mut test = Command::new("bash");
    test.arg(root.join("examples/dashboard/test/run.sh"))
        .env("RTBUS_SERVER_BIN", server_binary(root))
        .env("RTBUS_PACKAGES_BUILT", "1");
    step(
        "dashboard in headless Chromium (examples/dashboard/test/run.sh)",
        test,
        root,
    )
}

/// Builds `rtbus-server`, installs the npm workspaces, then builds, lints (`publint`, `attw`),
/// packs and consumer-checks each package, runs the client's tests and the dashboard's browser
/// test.
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
    for (path, name) in WORKSPACES {
        build_and_lint(&dir, path, name)?;
    }
    consumer_check(root, &dir)?;
    client_tests(root, &dir)?;
    dashboard_tests(root)
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
        install::ensure(install::TEST_PROGRAMS, &root)?;
        let mut test = cargo();
        test.args(["test", "--workspace", "--locked"]);
        step("cargo test --workspace", test, &root)?;
    }

    // Last, because it reuses the dev-profile binaries `cargo test` built.
    if !args.no_soak {
        println!("==> soak (60 s, dev profile; fails on loss, errors or memory growth)");
        if !crate::soak::passes(&crate::soak::Args::ci())? {
            eprintln!("the soak failed; its samples are in target/soak/");
            return Ok(ExitCode::FAILURE);
        }
    }

    println!(
        "all checks passed in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
