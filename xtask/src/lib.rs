//! The library behind `cargo xtask`: one module per subcommand.
//!
//! To add a subcommand, add a module here with an `Args` (clap) and a
//! `run(&Args) -> anyhow::Result<ExitCode>`, and one variant in `main.rs`.
#![deny(missing_docs)]

pub mod bench;
pub mod codegen;
pub mod test;

use std::path::{Path, PathBuf};

/// The repository root (the parent of this crate's directory).
pub fn project_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}
