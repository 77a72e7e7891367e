//! `cargo xtask codegen [--check]`: writes or checks every generated file.
//!
//! Which files exist is decided by `rtbus_codegen::GENERATORS`; this module only compares and
//! writes, through the single [`ensure_file_contents`].

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use rtbus_codegen::{GeneratedFile, OWNED_DIRS, REGENERATE};

/// Arguments of `cargo xtask codegen`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Change nothing; exit non-zero with a diff if any generated file is out of date.
    #[arg(long)]
    pub check: bool,
}

/// Whether to write files or only compare them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Write files that differ.
    Write,
    /// Report files that differ.
    Check,
}

/// One way a generated file disagrees with the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// The file differs; the unified diff goes from the tree's version to the generated one.
    Changed {
        /// Path relative to the root.
        path: String,
        /// The unified diff.
        diff: String,
    },
    /// The generator produces the file but the tree lacks it.
    Missing {
        /// Path relative to the root.
        path: String,
    },
    /// The tree has a file in a generated directory that the generator does not produce.
    Stray {
        /// Path relative to the root.
        path: String,
    },
}

impl Drift {
    /// The path the drift concerns.
    pub fn path(&self) -> &str {
        match self {
            Drift::Changed { path, .. } | Drift::Missing { path } | Drift::Stray { path } => path,
        }
    }
}

/// Makes `root/file.path` hold `file.contents`. In [`Mode::Write`] it writes the file when it
/// differs (creating directories); in [`Mode::Check`] it only reports. Returns the drift found
/// before any write.
pub fn ensure_file_contents(
    root: &Path,
    file: &GeneratedFile,
    mode: Mode,
) -> anyhow::Result<Option<Drift>> {
    let path = root.join(&file.path);
    let drift = match fs::read_to_string(&path) {
        Ok(old) if old == file.contents => None,
        Ok(old) => Some(Drift::Changed {
            path: file.path.clone(),
            diff: unified_diff(&file.path, &old, &file.contents),
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Some(Drift::Missing {
            path: file.path.clone(),
        }),
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    };
    if drift.is_some() && mode == Mode::Write {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        fs::write(&path, &file.contents).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(drift)
}

fn unified_diff(path: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("a/{path} (in the tree)"),
            &format!("b/{path} (generated)"),
        )
        .to_string()
}

/// Files under `root`'s generated directories that `files` does not produce. In
/// [`Mode::Write`] they are deleted.
pub fn stray_files(root: &Path, files: &[GeneratedFile], mode: Mode) -> anyhow::Result<Vec<Drift>> {
    let mut found = Vec::new();
    for dir in OWNED_DIRS {
        walk(&root.join(dir), &mut found)?;
    }
    let mut stray = Vec::new();
    for path in found {
        let relative = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        if files.iter().any(|f| f.path == relative) {
            continue;
        }
        if mode == Mode::Write {
            fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
        stray.push(Drift::Stray { path: relative });
    }
    stray.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(stray)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err).with_context(|| format!("listing {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Compares (or, in [`Mode::Write`], updates) every generated file under `root`.
pub fn sync(root: &Path, files: &[GeneratedFile], mode: Mode) -> anyhow::Result<Vec<Drift>> {
    let mut drift = Vec::new();
    for file in files {
        drift.extend(ensure_file_contents(root, file, mode)?);
    }
    drift.extend(stray_files(root, files, mode)?);
    Ok(drift)
}

/// A readable report of `drift`: a diff per changed file, the missing and stray files, and the
/// command that fixes them.
pub fn report(drift: &[Drift]) -> String {
    let mut out = String::new();
    for d in drift {
        match d {
            Drift::Changed { path, diff } => {
                let _ = writeln!(out, "{path} is out of date:\n{diff}");
            }
            Drift::Missing { path } => {
                let _ = writeln!(out, "{path} is missing");
            }
            Drift::Stray { path } => {
                let _ = writeln!(
                    out,
                    "{path} is a stray file: the generator does not produce it"
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "\n{} generated file(s) differ from what the protocol crate produces.\n\
         Run `{REGENERATE}` and commit the result.",
        drift.len()
    );
    out
}

/// Every generated file: the protocol crate's (`rtbus_codegen::generate`) plus the conformance
/// harness's transcript schema and coverage table, sorted by path.
pub fn all_files() -> anyhow::Result<Vec<GeneratedFile>> {
    let mut files = rtbus_codegen::generate().context("generating files")?;
    let mut schema = rtbus_conformance::transcript_schema();
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("$comment".into(), rtbus_codegen::HEADER.into());
    }
    files.push(GeneratedFile {
        path: "generated/schema/transcript.schema.json".into(),
        contents: rtbus_codegen::json_to_pretty(&schema)
            .context("formatting the transcript schema")?,
    });
    files.push(GeneratedFile {
        path: "generated/CONFORMANCE.md".into(),
        contents: rtbus_conformance::bundled_coverage_markdown()
            .map_err(|e| anyhow::anyhow!("conformance cases do not load:\n{e}"))?,
    });
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Runs `cargo xtask codegen`.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let root = crate::project_root();
    let files = all_files()?;
    if args.check {
        let drift = sync(&root, &files, Mode::Check)?;
        if drift.is_empty() {
            println!("generated files are up to date ({} files)", files.len());
            return Ok(ExitCode::SUCCESS);
        }
        eprint!("{}", report(&drift));
        return Ok(ExitCode::FAILURE);
    }
    let drift = sync(&root, &files, Mode::Write)?;
    for d in &drift {
        let verb = match d {
            Drift::Changed { .. } => "updated",
            Drift::Missing { .. } => "created",
            Drift::Stray { .. } => "removed",
        };
        println!("{verb} {}", d.path());
    }
    println!("{} generated files, {} changed", files.len(), drift.len());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain `cargo test` catches drift: the committed tree must match the generator.
    #[test]
    fn generated_files_are_up_to_date() {
        let files = all_files().unwrap();
        let drift = sync(&crate::project_root(), &files, Mode::Check).unwrap();
        assert!(drift.is_empty(), "{}", report(&drift));
    }

    fn scratch_tree(files: &[GeneratedFile]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let drift = sync(dir.path(), files, Mode::Write).unwrap();
        assert_eq!(drift.len(), files.len(), "a fresh tree misses every file");
        assert!(sync(dir.path(), files, Mode::Check).unwrap().is_empty());
        dir
    }

    /// The gate can fail: a changed field in a scratch copy is reported, with a diff, for
    /// exactly the file that changed.
    #[test]
    fn check_reports_exactly_the_changed_file() {
        let files = all_files().unwrap();
        let dir = scratch_tree(&files);
        let target = "generated/typescript/DrivePressure.ts";
        let path = dir.path().join(target);
        let old = fs::read_to_string(&path).unwrap();
        assert!(old.contains("threshold: Ratio"), "{old}");
        fs::write(&path, old.replace("threshold: Ratio", "threshold: number")).unwrap();

        let drift = sync(dir.path(), &files, Mode::Check).unwrap();
        let paths: Vec<&str> = drift.iter().map(Drift::path).collect();
        assert_eq!(paths, [target]);
        let Drift::Changed { diff, .. } = &drift[0] else {
            panic!("expected a changed file, got {drift:?}");
        };
        assert!(diff.contains("-threshold: number"), "{diff}");
        assert!(diff.contains("+threshold: Ratio"), "{diff}");
        let text = report(&drift);
        assert!(text.contains("Run `cargo xtask codegen`"), "{text}");
    }

    /// Editing a doc comment's output in one schema is reported for that schema alone.
    #[test]
    fn check_reports_a_changed_description() {
        let files = all_files().unwrap();
        let dir = scratch_tree(&files);
        let target = "generated/schema/topics/drives.pressure.schema.json";
        let path = dir.path().join(target);
        let old = fs::read_to_string(&path).unwrap();
        let needle = "The drive, e.g. a mount point or device name.";
        assert!(old.contains(needle), "{old}");
        fs::write(&path, old.replace(needle, "The disk.")).unwrap();
        let drift = sync(dir.path(), &files, Mode::Check).unwrap();
        assert_eq!(drift.iter().map(Drift::path).collect::<Vec<_>>(), [target]);
    }

    #[test]
    fn check_reports_stray_and_missing_files_and_write_repairs_them() {
        let files = all_files().unwrap();
        let dir = scratch_tree(&files);
        fs::write(dir.path().join("generated/typescript/Old.ts"), "x\n").unwrap();
        fs::remove_file(dir.path().join("generated/PROTOCOL.md")).unwrap();
        let drift = sync(dir.path(), &files, Mode::Check).unwrap();
        assert_eq!(
            drift,
            [
                Drift::Missing {
                    path: "generated/PROTOCOL.md".into()
                },
                Drift::Stray {
                    path: "generated/typescript/Old.ts".into()
                },
            ]
        );
        assert_eq!(sync(dir.path(), &files, Mode::Write).unwrap(), drift);
        assert!(sync(dir.path(), &files, Mode::Check).unwrap().is_empty());
    }
}
