//! `cargo xtask codegen [--check]`: writes or checks every generated file.
//!
//! Which files exist is decided by `rtbus_codegen::GENERATORS` plus [`all_files`]; comparing
//! and writing is `rtbus_codegen::drift` (one `ensure_file_contents` for every file).

use std::process::ExitCode;

use anyhow::Context as _;
pub use rtbus_codegen::drift::{Drift, Mode, ensure_file_contents, report, stray_files, sync};
use rtbus_codegen::{Body, GeneratedFile};

/// Arguments of `cargo xtask codegen`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Change nothing; exit non-zero with a diff if any generated file is out of date.
    #[arg(long)]
    pub check: bool,
}

/// The registration point for generated files of crates downstream of `rtbus-codegen` (which
/// cannot be listed in `rtbus_codegen::GENERATORS`): push one `GeneratedFile` per file below,
/// built by `GeneratedFile::new` like every other (it adds the header and the trailing newline).
///
/// Every generated file: the protocol crate's (`rtbus_codegen::generate`), the TypeScript
/// corpus (behind rtbus-codegen's `strategies` feature, which this crate enables), and the
/// conformance harness's transcript schema and coverage table, sorted by path.
pub fn all_files() -> anyhow::Result<Vec<GeneratedFile>> {
    let mut files = rtbus_codegen::generate().context("generating files")?;
    files.extend(rtbus_codegen::corpus::typescript_corpus().context("the TypeScript corpus")?);
    // Portable like the protocol's schemas, so every file in generated/schema/ compiles in ajv.
    let mut transcript = rtbus_conformance::transcript_schema();
    rtbus_codegen::make_portable(&mut transcript);
    files.push(
        GeneratedFile::new(
            "generated/schema/transcript.schema.json",
            Body::json(transcript),
        )
        .context("the transcript schema")?,
    );
    let cases = rtbus_conformance::suite::bundled().map_err(|errors| {
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("conformance cases do not load:\n{}", errors.join("\n"))
    })?;
    files.push(rtbus_conformance::coverage::coverage_file(&cases).context("the coverage table")?);
    files.sort_by(|a, b| a.path().cmp(b.path()));
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
    use std::fs;

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
