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

#[cfg(test)]
mod tests {
    //! End to end: a scratch git repository with two commits of `generated/schema/`.
    use super::*;

    fn git_ok(dir: &Path, args: &[&str]) -> String {
        let output = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=breaking test",
                "-c",
                "user.email=test@example.invalid",
            ])
            .args([
                "-c",
                "commit.gpgsign=false",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("git {args:?}: {e}"));
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("mkdir {}: {e}", to.display()));
        for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
            let entry = entry.unwrap_or_else(|e| panic!("{}: {e}", from.display()));
            let target = to.join(entry.file_name());
            if entry.path().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target)
                    .unwrap_or_else(|e| panic!("copy to {}: {e}", target.display()));
            }
        }
    }

    fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut value: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        edit(&mut value);
        std::fs::write(path, format!("{value:#}\n"))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// A repository whose first commit holds the real schemas and whose second (also the
    /// working tree) removes `ping` from client→server and adds a `start` value server→client.
    fn scratch() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let root = dir.path();
        git_ok(root, &["init", "-q"]);
        copy_dir(
            &crate::project_root().join(SCHEMA_DIR),
            &root.join(SCHEMA_DIR),
        );
        git_ok(root, &["add", "."]);
        git_ok(root, &["commit", "-q", "-m", "the real schema"]);
        let first = git_ok(root, &["rev-parse", "HEAD"]);
        let schema = root.join(SCHEMA_DIR);
        edit_json(&schema.join("client-to-server.schema.json"), |v| {
            let branches = v["oneOf"].as_array_mut().unwrap_or_else(|| panic!("oneOf"));
            branches.retain(|b| b["properties"]["type"]["const"] != "ping");
        });
        edit_json(&schema.join("server-to-client.schema.json"), |v| {
            let values = v["$defs"]["Start"]["oneOf"]
                .as_array_mut()
                .unwrap_or_else(|| panic!("Start"));
            values.push(serde_json::json!({"const": "paused", "type": "string"}));
        });
        git_ok(root, &["commit", "-q", "-am", "a mutated schema"]);
        (dir, first)
    }

    fn args(against: &str) -> Args {
        Args {
            against: against.to_owned(),
            level: LevelArg::Wire,
            allow: None,
            repo: None,
            format: Format::Text,
        }
    }

    const ALLOW: &str = "[[allow]]\nrule = \"MESSAGE_TYPE_REMOVED\"\nat = \"ping\"\nreason = \"ping is gone\"\n\n\
        [[allow]]\nrule = \"ENUM_VALUE_ADDED\"\nat = \"subscribed#/properties/data\"\ndirection = \"server-to-client\"\nreason = \"every client is updated first\"\n";

    #[test]
    fn breaks_against_the_first_commit_exit_1_with_their_rule_ids() {
        let (dir, first) = scratch();
        let outcome = run_in(dir.path(), &args(&first));
        assert_eq!(outcome.code, 1, "{outcome:?}");
        let lines: Vec<&str> = outcome.stdout.lines().collect();
        assert_eq!(lines.len(), 3, "{}", outcome.stdout);
        assert!(
            lines[0].starts_with("breaking")
                && lines[0].contains("MESSAGE_TYPE_REMOVED")
                && lines[0].contains("client-to-server ping"),
            "{}",
            lines[0]
        );
        assert!(lines[1].starts_with("breaking") && lines[1].contains("ENUM_VALUE_ADDED") && lines[1].contains("server-to-client subscribed#/properties/data/properties/topics/items/properties/start"), "{}", lines[1]);
        assert!(
            lines[2].ends_with("2 breaking, 0 warning, 0 safe; 0 accepted; FAILED"),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn the_json_report_names_the_same_changes() {
        let (dir, first) = scratch();
        let outcome = run_in(
            dir.path(),
            &Args {
                format: Format::Json,
                ..args(&first)
            },
        );
        assert_eq!(outcome.code, 1, "{outcome:?}");
        let report: serde_json::Value = serde_json::from_str(&outcome.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", outcome.stdout));
        assert_eq!(report["passes"], false);
        let rules: Vec<&str> = report["changes"]
            .as_array()
            .map(|c| c.iter().filter_map(|c| c["rule"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(rules, ["MESSAGE_TYPE_REMOVED", "ENUM_VALUE_ADDED"]);
    }

    #[test]
    fn the_allow_file_at_the_root_accepts_both_breaks() {
        let (dir, first) = scratch();
        std::fs::write(dir.path().join(DEFAULT_ALLOW), ALLOW).unwrap_or_else(|e| panic!("{e}"));
        let outcome = run_in(dir.path(), &args(&first));
        assert_eq!(outcome.code, 0, "{outcome:?}");
        assert!(
            outcome.stdout.contains("[allowed: ping is gone]"),
            "{}",
            outcome.stdout
        );
        assert!(
            outcome
                .stdout
                .contains("[allowed: every client is updated first]"),
            "{}",
            outcome.stdout
        );
        assert!(
            outcome.stdout.contains("2 accepted; ok"),
            "{}",
            outcome.stdout
        );
    }

    #[test]
    fn a_stale_allow_entry_exits_2() {
        let (dir, _) = scratch();
        let path = dir.path().join("extra.toml");
        std::fs::write(&path, ALLOW).unwrap_or_else(|e| panic!("{e}"));
        // Against HEAD nothing changed, so both entries are stale.
        let outcome = run_in(
            dir.path(),
            &Args {
                allow: Some(path),
                ..args("HEAD")
            },
        );
        assert_eq!(outcome.code, 2, "{outcome:?}");
        let error = outcome.error.unwrap_or_default();
        assert!(error.contains("2 allow entries match no change"), "{error}");
    }

    #[test]
    fn against_head_nothing_changed() {
        let (dir, _) = scratch();
        let outcome = run_in(dir.path(), &args("HEAD"));
        assert_eq!(outcome.code, 0, "{outcome:?}");
        assert_eq!(
            outcome.stdout,
            "0 change(s) at level wire: 0 breaking, 0 warning, 0 safe; 0 accepted; ok\n"
        );
    }

    #[test]
    fn bad_input_exits_2_with_what_and_where() {
        let (dir, first) = scratch();
        let outcome = run_in(dir.path(), &args("no-such-branch"));
        assert_eq!(outcome.code, 2);
        let error = outcome.error.unwrap_or_default();
        assert!(
            error.starts_with("--against \"no-such-branch\" is not a commit in the repository at "),
            "{error}"
        );

        let outcome = run_in(
            dir.path(),
            &Args {
                allow: Some(dir.path().join("absent.toml")),
                ..args(&first)
            },
        );
        assert_eq!(outcome.code, 2);
        assert!(
            outcome
                .error
                .unwrap_or_default()
                .starts_with("cannot read the allow file ")
        );

        std::fs::write(
            dir.path()
                .join(SCHEMA_DIR)
                .join("server-to-client.schema.json"),
            "{",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let outcome = run_in(dir.path(), &args(&first));
        assert_eq!(outcome.code, 2);
        let error = outcome.error.unwrap_or_default();
        assert!(
            error.starts_with(
                "generated/schema/server-to-client.schema.json in the working tree is not JSON"
            ),
            "{error}"
        );

        let empty = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        git_ok(empty.path(), &["init", "-q"]);
        git_ok(
            empty.path(),
            &["commit", "-q", "--allow-empty", "-m", "nothing"],
        );
        let outcome = run_in(empty.path(), &args("HEAD"));
        assert_eq!(outcome.code, 2);
        assert!(
            outcome
                .error
                .unwrap_or_default()
                .contains("has no generated/schema/*.schema.json")
        );
    }
}
