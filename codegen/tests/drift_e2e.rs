//! The drift gate fails for real. In a scratch copy of the protocol and codegen crates, a changed
//! doc comment on one payload field makes the check fail and report exactly the files that render
//! that comment, with a diff, until the files are regenerated.
//!
//! The scratch workspace builds in its own target directory under `CARGO_TARGET_TMPDIR` (so it
//! never contends for the lock of the `cargo test` running it); dependencies stay cached there
//! between runs.

// Test helpers: an I/O failure here is a test failure, reported by the panic.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("codegen/ has a parent")
        .to_path_buf()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "node_modules" || name == "target" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&src, &dst);
        } else {
            fs::copy(&src, &dst).unwrap();
        }
    }
}

/// The root manifest with only the crates the scratch copy holds.
fn scratch_manifest(root: &Path) -> String {
    let manifest = fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let start = manifest
        .find("members = [")
        .expect("root manifest lists members");
    let end = start + manifest[start..].find(']').expect("members list ends");
    format!(
        "{}members = [\"protocol\", \"codegen\", \"driver\"]{}",
        &manifest[..start],
        &manifest[end + 1..]
    )
}

const DRIVER_MANIFEST: &str = r#"[package]
name = "driver"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
rtbus-codegen = { path = "../codegen" }
"#;

/// `driver write|check <root>`: the drift check as `cargo xtask codegen` runs it, for the
/// generated files of the protocol crate alone. Prints `DRIFT <path>` per differing file, then
/// the report.
const DRIVER_MAIN: &str = r#"
use rtbus_codegen::drift::{sync, report, Mode};
fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let mode = if args[1] == "write" { Mode::Write } else { Mode::Check };
    let root = std::path::Path::new(&args[2]);
    let files = rtbus_codegen::generate().expect("generation succeeds");
    let drift = sync(root, &files, mode).expect("the tree is readable");
    if mode == Mode::Write || drift.is_empty() {
        return std::process::ExitCode::SUCCESS;
    }
    for d in &drift {
        println!("DRIFT {}", d.path());
    }
    println!("{}", report(&drift));
    std::process::ExitCode::FAILURE
}
"#;

fn driver(scratch: &Path, mode: &str) -> Output {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("drift-e2e-target");
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "run",
            "--quiet",
            "--offline",
            "--package",
            "driver",
            "--",
            mode,
        ])
        .arg(scratch)
        .current_dir(scratch)
        .env("CARGO_TARGET_DIR", target)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_changed_doc_comment_fails_the_check_for_exactly_the_files_that_render_it() {
    let root = repo_root();
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("drift-e2e-src");
    let _ = fs::remove_dir_all(&scratch);
    for dir in ["protocol", "codegen"] {
        copy_dir(&root.join(dir), &scratch.join(dir));
    }
    for file in ["Cargo.lock", "rustfmt.toml", "clippy.toml"] {
        fs::copy(root.join(file), scratch.join(file)).unwrap();
    }
    fs::write(scratch.join("Cargo.toml"), scratch_manifest(&root)).unwrap();
    fs::create_dir_all(scratch.join("driver/src")).unwrap();
    fs::write(scratch.join("driver/Cargo.toml"), DRIVER_MANIFEST).unwrap();
    fs::write(scratch.join("driver/src/main.rs"), DRIVER_MAIN).unwrap();

    // Generate from the unchanged source: the check passes.
    let out = driver(&scratch, "write");
    assert!(out.status.success(), "{}", text(&out));
    let out = driver(&scratch, "check");
    assert!(out.status.success(), "{}", text(&out));

    // Change one doc comment in the source.
    let drives = scratch.join("protocol/src/catalog/drives.rs");
    let source = fs::read_to_string(&drives).unwrap();
    let old = "/// The drive, e.g. a mount point or device name.";
    assert!(source.contains(old), "the doc comment to change moved");
    fs::write(
        &drives,
        source.replace(old, "/// The drive's mount point, e.g. `/var`."),
    )
    .unwrap();

    let out = driver(&scratch, "check");
    assert!(
        !out.status.success(),
        "the check passed after a change:\n{}",
        text(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let reported: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("DRIFT "))
        .collect();
    assert_eq!(
        reported,
        [
            "codegen/tests/typify/client-to-server.schema.json",
            "codegen/tests/typify/server-to-client.schema.json",
            "generated/PROTOCOL.md",
            "generated/asyncapi.yaml",
            "generated/schema/client-to-server.schema.json",
            "generated/schema/server-to-client.schema.json",
            "generated/schema/topics/drives.pressure.schema.json",
            "generated/typescript/DrivePressure.ts",
        ],
        "{}",
        text(&out)
    );
    assert!(
        stdout.contains("+ * The drive's mount point, e.g. `/var`."),
        "{stdout}"
    );
    assert!(
        stdout.contains("- * The drive, e.g. a mount point or device name."),
        "{stdout}"
    );
    assert!(stdout.contains("Run `cargo xtask codegen`"), "{stdout}");

    // Regenerating repairs it.
    let out = driver(&scratch, "write");
    assert!(out.status.success(), "{}", text(&out));
    let out = driver(&scratch, "check");
    assert!(out.status.success(), "{}", text(&out));
}
