//! Comparing generated files with a tree and writing them: the drift check.
//!
//! `cargo xtask codegen` and the tests share these functions; every write goes through
//! [`ensure_file_contents`].

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::{GeneratedFile, OWNED_DIRS, REGENERATE};

/// A file-system failure while checking or writing generated files.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}: {source}", path.display())]
pub struct IoError {
    action: &'static str,
    path: PathBuf,
    #[source]
    source: io::Error,
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> IoError {
    let path = path.to_path_buf();
    move |source| IoError {
        action,
        path,
        source,
    }
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
) -> Result<Option<Drift>, IoError> {
    let path = root.join(file.path());
    let drift = match fs::read_to_string(&path) {
        Ok(old) if old == file.contents() => None,
        Ok(old) => Some(Drift::Changed {
            path: file.path().to_owned(),
            diff: unified_diff(file.path(), &old, file.contents()),
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Some(Drift::Missing {
            path: file.path().to_owned(),
        }),
        Err(err) => return Err(io_err("reading", &path)(err)),
    };
    if drift.is_some() && mode == Mode::Write {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
        }
        fs::write(&path, file.contents()).map_err(io_err("writing", &path))?;
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
pub fn stray_files(
    root: &Path,
    files: &[GeneratedFile],
    mode: Mode,
) -> Result<Vec<Drift>, IoError> {
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
        if files.iter().any(|f| f.path() == relative) {
            continue;
        }
        if mode == Mode::Write {
            fs::remove_file(&path).map_err(io_err("removing", &path))?;
        }
        stray.push(Drift::Stray { path: relative });
    }
    stray.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(stray)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), IoError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(io_err("listing", dir)(err)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err("listing", dir))?;
        let path = entry.path();
        if entry
            .file_type()
            .map_err(io_err("inspecting", &path))?
            .is_dir()
        {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Compares (or, in [`Mode::Write`], updates) every generated file under `root`.
pub fn sync(root: &Path, files: &[GeneratedFile], mode: Mode) -> Result<Vec<Drift>, IoError> {
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
