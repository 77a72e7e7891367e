//! Bundles `cases/*.json` into the library and generates one test per case.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut bundled = String::from("&[\n");
    let mut tests = String::new();
    for name in &files {
        let path = dir.join(name);
        println!("cargo:rerun-if-changed={}", path.display());
        let _ = writeln!(
            bundled,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        );
        let ident: String = name
            .trim_end_matches(".json")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        let _ = writeln!(tests, "case_test!({ident}, {name:?});");
    }
    bundled.push(']');
    let out = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into());
    let out = Path::new(&out);
    let _ = std::fs::write(out.join("bundled_cases.rs"), bundled);
    let _ = std::fs::write(out.join("case_tests.rs"), tests);
}
