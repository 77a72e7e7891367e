//! Installs what the tests need from Debian's packages when it is missing, so `cargo xtask
//! test` (and `.ci/run`) work on a fresh machine.
//!
//! Only what a test starts as a real process is installed here: today `redis-server`, which
//! the server's scale-out tests and the conformance run against a Redis cluster start on a
//! loopback port. Chromium is installed by `examples/dashboard/test/run.sh`, which also runs on
//! its own.

use std::path::Path;
use std::process::Command;

use anyhow::bail;

use crate::step;

/// A program a test runs, and the Debian package that provides it.
#[derive(Debug, Clone, Copy)]
pub struct Needed {
    /// The program, looked up on `PATH`.
    pub program: &'static str,
    /// The Debian package that installs it.
    pub package: &'static str,
}

/// What `cargo test --workspace` starts.
pub const TEST_PROGRAMS: &[Needed] = &[Needed {
    program: "redis-server",
    package: "redis-server",
}];

/// Whether `program` is an executable file in one of `PATH`'s directories.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| is_executable(&dir.join(program)))
    })
}

fn is_executable(file: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.metadata()
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        file.is_file()
    }
}

/// Whether this process runs as root (then `apt-get` runs directly, else through `sudo`).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Installs, with `apt-get`, every package of `needed` whose program is not on `PATH`; fails
/// with what to run by hand when that is not possible here.
pub fn ensure(needed: &[Needed], dir: &Path) -> anyhow::Result<()> {
    let missing: Vec<&Needed> = needed.iter().filter(|n| !on_path(n.program)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().map(|n| n.package).collect();
    let by_hand = format!("apt-get install -y {}", packages.join(" "));
    if !on_path("apt-get") {
        bail!(
            "{} missing and this machine has no apt-get; install it (Debian: `{by_hand}`)",
            missing
                .iter()
                .map(|n| n.program)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let sudo = !is_root();
    if sudo && !on_path("sudo") {
        bail!("missing packages and this user cannot install them; run `{by_hand}` as root");
    }
    let apt = |args: &[&str]| {
        let mut command = Command::new(if sudo { "sudo" } else { "apt-get" });
        if sudo {
            command.arg("apt-get");
        }
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        command
    };
    step("apt-get update", apt(&["update", "-qq"]), dir)?;
    let mut install = apt(&["install", "-y", "-qq", "--no-install-recommends"]);
    install.args(&packages);
    step(
        &format!("apt-get install {}", packages.join(" ")),
        install,
        dir,
    )?;
    for n in &missing {
        if !on_path(n.program) {
            bail!("`{by_hand}` ran but {} is still not on PATH", n.program);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_program_every_unix_has_and_not_one_nobody_has() {
        assert!(on_path("sh"));
        assert!(!on_path("rtbus-no-such-program-anywhere"));
    }

    #[test]
    fn nothing_missing_runs_nothing() {
        let present = [Needed {
            program: "sh",
            package: "no-such-package",
        }];
        // With `sh` present, no apt-get runs (it would fail on the made-up package).
        ensure(&present, Path::new(".")).unwrap();
    }
}
