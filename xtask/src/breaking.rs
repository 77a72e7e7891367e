//! `cargo xtask breaking --against <ref>`: is the working tree's `generated/schema/` a
//! breaking change against the one at a git ref? The comparison, rule ids, verdicts, levels
//! and the allow file are `rtbus_codegen::breaking` (its module documentation is the manual);
//! this reads the files: the ref's with `git show` (no checkout), the working tree's from disk.
//!
//! Exit 0: no unallowed breaking change at the level; 1: some; 2: a usage or input error (a
//! bad ref, a missing or malformed schema, a bad or stale allow file).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context as _, bail};
use rtbus_codegen::breaking::{self, AllowFile, Level, Report, SchemaSet, Side};

/// Where the schemas live, relative to the repository root.
const SCHEMA_DIR: &str = "generated/schema";

/// The default allow file, relative to the repository root (read when it exists).
pub const DEFAULT_ALLOW: &str = "breaking.toml";

/// Arguments of `cargo xtask breaking`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The git ref to compare against (a branch, tag, commit, or `$(git merge-base …)`).
    #[arg(long)]
    pub against: String,
    /// `wire`: only what breaks a deployed peer; `strict`: also what breaks code built on the
    /// generated types.
    #[arg(long, value_enum, default_value_t = LevelArg::Wire)]
    pub level: LevelArg,
    /// The allow file (default: `breaking.toml` at the repository root, if it exists).
    #[arg(long)]
    pub allow: Option<PathBuf>,
    /// The repository to check (default: this one).
    #[arg(long)]
    pub repo: Option<PathBuf>,
    /// `text` (one line per change and a summary) or `json`.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// The `--level` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LevelArg {
    /// Only what breaks a deployed peer on the wire.
    Wire,
    /// Also what breaks generated code and exhaustive matches.
    Strict,
}

/// The `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per change, then a summary.
    Text,
    /// One JSON object.
    Json,
}

/// What one run produced: the exit code and what it prints on stdout.
#[derive(Debug)]
pub struct Outcome {
    /// 0, 1 or 2.
    pub code: u8,
    /// The report (empty after an error).
    pub stdout: String,
    /// The error, if the check could not run (exit 2).
    pub error: Option<String>,
}

/// Runs the check in the repository at [`crate::project_root`].
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let root = args.repo.clone().unwrap_or_else(crate::project_root);
    let outcome = run_in(&root, args);
    print!("{}", outcome.stdout);
    if let Some(error) = &outcome.error {
        eprintln!("error: {error}");
    }
    Ok(ExitCode::from(outcome.code))
}

/// Runs the check in the repository at `root` (the library entry point the tests use).
pub fn run_in(root: &Path, args: &Args) -> Outcome {
    match check(root, args) {
        Ok(report) => Outcome {
            code: if report.passes() { 0 } else { 1 },
            stdout: match args.format {
                Format::Text => report.render(),
                Format::Json => format!("{}\n", report.to_json()),
            },
            error: None,
        },
        Err(err) => Outcome {
            code: 2,
            stdout: String::new(),
            error: Some(format!("{err:#}")),
        },
    }
}

fn check(root: &Path, args: &Args) -> anyhow::Result<Report> {
    let level = match args.level {
        LevelArg::Wire => Level::Wire,
        LevelArg::Strict => Level::Strict,
    };
    let old = read_ref(root, &args.against)?;
    let new = read_working_tree(root)?;
    let allow = read_allow(root, args.allow.as_deref())?;
    Ok(breaking::check(&old, &new, level, allow.as_ref())?)
}

fn git(root: &Path, args: &[&str]) -> anyhow::Result<Result<Vec<u8>, String>> {
    let output = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .with_context(|| format!("could not run git {}", args.join(" ")))?;
    if output.status.success() {
        Ok(Ok(output.stdout))
    } else {
        Ok(Err(String::from_utf8_lossy(&output.stderr)
            .trim()
            .to_owned()))
    }
}

/// The ref's schema files, read with `git ls-tree` and `git show` (no checkout).
fn read_ref(root: &Path, reference: &str) -> anyhow::Result<SchemaSet> {
    if reference.is_empty() || reference.starts_with('-') {
        bail!("--against {reference:?}: expected a git ref (a branch, tag or commit)");
    }
    let spec = format!("{reference}^{{commit}}");
    let commit = match git(root, &["rev-parse", "--verify", "--end-of-options", &spec])? {
        Ok(out) => String::from_utf8_lossy(&out).trim().to_owned(),
        Err(why) => bail!(
            "--against {reference:?} is not a commit in the repository at {}: {why}",
            root.display()
        ),
    };
    let listing = match git(
        root,
        &["ls-tree", "-r", "--name-only", &commit, "--", SCHEMA_DIR],
    )? {
        Ok(out) => String::from_utf8_lossy(&out).into_owned(),
        Err(why) => bail!("cannot list {SCHEMA_DIR} at {reference} ({commit}): {why}"),
    };
    let mut files = BTreeMap::new();
    for path in listing.lines() {
        let Some(relative) = path
            .strip_prefix(SCHEMA_DIR)
            .and_then(|p| p.strip_prefix('/'))
        else {
            continue;
        };
        if !SchemaSet::wanted(relative) {
            continue;
        }
        let text = match git(root, &["show", &format!("{commit}:{path}")])? {
            Ok(out) => String::from_utf8(out)
                .with_context(|| format!("{path} at {reference} is not UTF-8"))?,
            Err(why) => bail!("cannot read {path} at {reference}: {why}"),
        };
        files.insert(relative.to_owned(), text);
    }
    if files.is_empty() {
        bail!(
            "{reference} ({commit}) has no {SCHEMA_DIR}/*.schema.json: expected the generated schemas there"
        );
    }
    Ok(SchemaSet::new(Side::Ref(reference.to_owned()), files))
}

/// The working tree's schema files.
fn read_working_tree(root: &Path) -> anyhow::Result<SchemaSet> {
    let dir = root.join(SCHEMA_DIR);
    let mut files = BTreeMap::new();
    let mut read_dir = |sub: &str| -> anyhow::Result<()> {
        let path = if sub.is_empty() {
            dir.clone()
        } else {
            dir.join(sub)
        };
        let entries = match std::fs::read_dir(&path) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && !sub.is_empty() => {
                return Ok(());
            }
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", path.display()))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let relative = if sub.is_empty() {
                name
            } else {
                format!("{sub}/{name}")
            };
            if SchemaSet::wanted(&relative) {
                let text = std::fs::read_to_string(entry.path())
                    .with_context(|| format!("cannot read {}", entry.path().display()))?;
                files.insert(relative, text);
            }
        }
        Ok(())
    };
    read_dir("")?;
    read_dir("topics")?;
    Ok(SchemaSet::new(Side::WorkingTree, files))
}

fn read_allow(root: &Path, explicit: Option<&Path>) -> anyhow::Result<Option<AllowFile>> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None => {
            let default = root.join(DEFAULT_ALLOW);
            if !default.exists() {
                return Ok(None);
            }
            default
        }
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the allow file {}", path.display()))?;
    Ok(Some(AllowFile::parse(&path.display().to_string(), &text)?))
}
