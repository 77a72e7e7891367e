//! The bundled suite and case selection: loading, `--filter` / `--exclude` by id or tag.

use std::path::{Path, PathBuf};

use crate::error::{TranscriptError, TranscriptErrorKind};
use crate::transcript::{self, LoadedCase};

/// The bundled cases, as (file name, text), sorted by file name.
pub const BUNDLED: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/bundled_cases.rs"));

/// Loads the bundled suite.
pub fn bundled() -> Result<Vec<LoadedCase>, Vec<TranscriptError>> {
    load_all(BUNDLED.iter().map(|(name, text)| {
        (
            Path::new("conformance/cases").join(name),
            (*text).to_owned(),
        )
    }))
}

/// Loads every `*.json` file of a directory (sorted by name).
pub fn from_dir(dir: &Path) -> Result<Vec<LoadedCase>, Vec<TranscriptError>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        vec![TranscriptError {
            file: dir.to_owned(),
            line: 0,
            column: 0,
            kind: TranscriptErrorKind::ReadDir(e),
        }]
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut texts = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => texts.push((file, text)),
            Err(e) => errors.push(TranscriptError {
                file,
                line: 0,
                column: 0,
                kind: TranscriptErrorKind::Read(e),
            }),
        }
    }
    let loaded = load_all(texts.into_iter());
    match (loaded, errors.is_empty()) {
        (Ok(cases), true) => Ok(cases),
        (Ok(_), false) => Err(errors),
        (Err(mut more), _) => {
            errors.append(&mut more);
            Err(errors)
        }
    }
}

/// Parses cases, collecting every error (not just the first) and rejecting duplicate ids.
pub fn load_all(
    files: impl Iterator<Item = (PathBuf, String)>,
) -> Result<Vec<LoadedCase>, Vec<TranscriptError>> {
    let mut cases: Vec<LoadedCase> = Vec::new();
    let mut errors = Vec::new();
    for (file, text) in files {
        match transcript::parse(&file, &text) {
            Ok(case) => {
                if let Some(other) = cases.iter().find(|c| c.case.id == case.case.id) {
                    let (line, column) = crate::position::locate(&text, "/id");
                    errors.push(TranscriptError {
                        file,
                        line,
                        column,
                        kind: TranscriptErrorKind::DuplicateId {
                            id: case.case.id,
                            other: other.file.clone(),
                        },
                    });
                } else {
                    cases.push(case);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(cases)
    } else {
        Err(errors)
    }
}

/// Keeps the cases selected by `filters` (any matches; empty keeps all) and not matched by
/// `excludes`. A pattern matches a case id, a rule id or a tag; a trailing `*` matches a
/// prefix. Returns the patterns that matched nothing, so the caller can warn.
pub fn select(
    cases: Vec<LoadedCase>,
    filters: &[String],
    excludes: &[String],
) -> (Vec<LoadedCase>, Vec<String>) {
    let unmatched: Vec<String> = filters
        .iter()
        .chain(excludes)
        .filter(|p| !cases.iter().any(|c| selects(p, c)))
        .cloned()
        .collect();
    let kept = cases
        .into_iter()
        .filter(|c| filters.is_empty() || filters.iter().any(|p| selects(p, c)))
        .filter(|c| !excludes.iter().any(|p| selects(p, c)))
        .collect();
    (kept, unmatched)
}

fn selects(pattern: &str, case: &LoadedCase) -> bool {
    let hit = |s: &str| match pattern.strip_suffix('*') {
        Some(prefix) => s.starts_with(prefix),
        None => s == pattern,
    };
    let c = &case.case;
    hit(&c.id) || c.tags.iter().any(|t| hit(t)) || c.rules.iter().any(|r| hit(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_suite_loads() {
        let cases = bundled().unwrap_or_else(|errors| {
            panic!(
                "{}",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
        assert!(!cases.is_empty());
    }

    #[test]
    fn every_bundled_case_validates_against_the_generated_transcript_schema() {
        let committed: serde_json::Value = serde_json::from_str(include_str!(
            "../../generated/schema/transcript.schema.json"
        ))
        .unwrap();
        let validator = jsonschema::validator_for(&committed).unwrap();
        for (name, text) in BUNDLED {
            let case: serde_json::Value = serde_json::from_str(text).unwrap();
            let errors: Vec<String> = validator
                .iter_errors(&case)
                .map(|e| format!("{}: {e}", e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{name}: {errors:?}");
        }
        // The schema rejects what the loader rejects, e.g. an unknown step.
        let bad = serde_json::json!({"id": "x", "title": "t", "rules": [], "connections": {},
            "steps": [{"do": "jump"}]});
        assert!(!validator.is_valid(&bad));
    }

    #[test]
    fn selection_by_id_tag_and_prefix_warns_on_no_match() {
        let cases = bundled().unwrap();
        let total = cases.len();
        let (kept, unmatched) = select(
            cases.clone(),
            &["ping.*".into(), "nothing-here".into()],
            &[],
        );
        assert!(!kept.is_empty() && kept.len() < total);
        assert!(kept.iter().all(|c| c.case.id.starts_with("ping.")
            || c.case.rules.iter().any(|r| r.starts_with("ping."))
            || c.case.tags.iter().any(|t| t.starts_with("ping."))));
        assert_eq!(unmatched, vec!["nothing-here".to_owned()]);
        let (rest, _) = select(cases, &[], &["ping.*".into()]);
        assert_eq!(rest.len() + kept.len(), total);
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let text = r#"{"id":"x","title":"t","rules":["ping.pong"],"connections":{},"steps":[]}"#;
        let errors = load_all(
            [
                ("a.json".into(), text.to_owned()),
                ("b.json".into(), text.to_owned()),
            ]
            .into_iter(),
        )
        .unwrap_err();
        assert!(
            matches!(&errors[0].kind, TranscriptErrorKind::DuplicateId { id, other }
                if id == "x" && other == std::path::Path::new("a.json")),
            "{}",
            errors[0]
        );
        assert_eq!(
            errors[0].to_string(),
            "b.json:1:7: duplicate case id \"x\" (also in a.json); ids must be unique"
        );
    }
}
