//! The coverage table: which cases check each rule, and which rules no case checks.
//!
//! It is a generated file (`generated/CONFORMANCE.md`), so its header and trailing newline come
//! from `rtbus_codegen::GeneratedFile`, like every other generated file's.

use std::fmt::Write as _;

use rtbus_codegen::{Body, GeneratedFile};
use rtbus_protocol::rules::{RULES, Rule};

use crate::transcript::LoadedCase;

/// The rules no case cites.
pub fn uncovered(cases: &[LoadedCase]) -> Vec<&'static Rule> {
    RULES
        .iter()
        .filter(|r| {
            !cases
                .iter()
                .any(|c| c.case.rules.iter().any(|id| id == r.id))
        })
        .collect()
}

/// Where the coverage table of the bundled suite is committed.
pub const COVERAGE_PATH: &str = "generated/CONFORMANCE.md";

/// The coverage table as the generated file [`COVERAGE_PATH`].
pub fn coverage_file(cases: &[LoadedCase]) -> rtbus_codegen::Result<GeneratedFile> {
    GeneratedFile::new(COVERAGE_PATH, Body::text(coverage_table(cases)))
}

/// The coverage table as Markdown, header included: exactly the text of [`coverage_file`].
pub fn coverage_markdown(cases: &[LoadedCase]) -> String {
    coverage_file(cases)
        // A `.md` path and a text body that does not spell the header are all
        // `GeneratedFile::new` asks for; `coverage_table` never writes the header.
        .expect("the coverage table is a valid generated Markdown file")
        .contents()
        .to_owned()
}

/// The coverage table's Markdown body, without the generated-file header.
fn coverage_table(cases: &[LoadedCase]) -> String {
    let mut out = String::new();
    out.push_str("# Conformance coverage\n\n");
    out.push_str(
        "Every normative rule of the protocol reference ([PROTOCOL.md](PROTOCOL.md)) and the \
         conformance cases that check it (`conformance/cases/<id>.json`). Run them with \
         `cargo run -p rtbus-conformance -- run`.\n\n",
    );
    let _ = writeln!(
        out,
        "{} rules, {} cases, {} rule(s) without a case.\n",
        RULES.len(),
        cases.len(),
        uncovered(cases).len()
    );
    out.push_str("| rule | section | cases |\n|---|---|---|\n");
    for rule in RULES {
        let mut ids: Vec<&str> = cases
            .iter()
            .filter(|c| c.case.rules.iter().any(|id| id == rule.id))
            .map(|c| c.case.id.as_str())
            .collect();
        ids.sort_unstable();
        let cell = if ids.is_empty() {
            "**none**".to_owned()
        } else {
            ids.iter()
                .map(|id| format!("`{id}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "| [`{}`](PROTOCOL.md#{}) | {} | {} |",
            rule.id,
            rule.anchor(),
            rule.section,
            cell
        );
    }
    let missing = uncovered(cases);
    out.push_str("\n## Rules without a case\n\n");
    if missing.is_empty() {
        out.push_str("None: every rule is checked by at least one case.\n");
    } else {
        for rule in missing {
            let _ = writeln!(out, "- `{}`: {}", rule.id, rule.text);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_a_case() {
        let cases = crate::suite::bundled().unwrap();
        let missing: Vec<&str> = uncovered(&cases).iter().map(|r| r.id).collect();
        assert!(missing.is_empty(), "rules without a case: {missing:?}");
        let table = coverage_markdown(&cases);
        assert!(table.ends_with('\n'));
        assert!(table.contains("None: every rule is checked"));
        assert!(
            table.starts_with(&format!(
                "<!-- {} -->\n\n# Conformance",
                rtbus_codegen::HEADER
            )),
            "{table}"
        );
    }
}
