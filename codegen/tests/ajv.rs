//! The published schemas work in another ecosystem: ajv's 2020-12 build, with its default
//! (strict) options plus `ajv-formats`, compiles every file in `generated/schema/` without an
//! error or a strict-mode warning, and gives the Rust validator's verdict on the whole message
//! corpus: every valid message (hand-written and sampled, both directions, and every family's
//! example payloads against its family schema) validates, every negative case is refused.
//!
//! ajv runs under Node from `codegen/schema-check` (`ajv.mjs`), installed by `npm ci` there.

mod common;

use std::path::Path;

use common::{errors, repo_root, run_schema_check, schema, validator};
use rtbus_codegen::corpus::{self, Direction};
use rtbus_protocol::catalog::Family;
use serde_json::{Value, json};

const CLIENT: &str = "client-to-server.schema.json";
const SERVER: &str = "server-to-client.schema.json";

/// Every file under `generated/schema/`, as paths relative to it, sorted.
fn schema_files() -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, base, out);
            } else if let Ok(relative) = path.strip_prefix(base) {
                out.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let base = repo_root().join("generated/schema");
    let mut out = Vec::new();
    walk(&base, &base, &mut out);
    out.sort();
    out
}

/// One frame, the schema (relative to `generated/schema/`) it is checked against, and whether
/// the corpus says it is valid.
struct Frame {
    name: String,
    schema: String,
    frame: Value,
    valid: bool,
}

fn corpus_frames() -> Vec<Frame> {
    let mut frames = Vec::new();
    let value = |m: &dyn erased::Serialize| m.to_value();
    for case in corpus::client_corpus().expect("the client corpus builds") {
        frames.push(Frame {
            name: format!("client/{}", case.name),
            schema: CLIENT.to_owned(),
            frame: value(&case.message),
            valid: true,
        });
    }
    for case in corpus::server_corpus().expect("the server corpus builds") {
        frames.push(Frame {
            name: format!("server/{}", case.name),
            schema: SERVER.to_owned(),
            frame: value(&case.message),
            valid: true,
        });
    }
    for case in corpus::negative_cases() {
        frames.push(Frame {
            name: format!("negative/{}", case.name),
            schema: match case.direction {
                Direction::ClientToServer => CLIENT,
                Direction::ServerToClient => SERVER,
            }
            .to_owned(),
            frame: case.frame,
            valid: false,
        });
    }
    for family in Family::ALL {
        let (snapshot, events) =
            corpus::example_payloads(*family).expect("the example payloads build");
        let file = format!("topics/{}.schema.json", family.name());
        for (i, payload) in std::iter::once(snapshot).chain(events).enumerate() {
            frames.push(Frame {
                name: format!("{}/payload {i}", family.name()),
                schema: file.clone(),
                frame: payload,
                valid: true,
            });
        }
    }
    frames
}

/// Serializes a corpus message (the corpus holds typed messages of two types).
mod erased {
    pub trait Serialize {
        fn to_value(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Serialize for T {
        fn to_value(&self) -> serde_json::Value {
            serde_json::to_value(self).expect("a wire type serializes")
        }
    }
}

/// ajv's report on every schema and every frame.
struct Report {
    schemas: Vec<Value>,
    frames: Vec<Value>,
}

fn ajv(files: &[String], frames: &[Frame]) -> Report {
    let schemas: Vec<Value> = files
        .iter()
        .map(|name| json!({ "name": name, "schema": schema(name) }))
        .collect();
    let frames_in: Vec<Value> = frames
        .iter()
        .map(|f| json!({ "schema": f.schema, "frame": f.frame }))
        .collect();
    let mut out = run_schema_check(
        "ajv test",
        "ajv.mjs",
        &json!({ "schemas": schemas, "frames": frames_in }),
    );
    let take = |out: &mut Value, key: &str| match out[key].take() {
        Value::Array(items) => items,
        other => panic!("ajv.mjs wrote no {key} array: {other}"),
    };
    let report = Report {
        schemas: take(&mut out, "schemas"),
        frames: take(&mut out, "frames"),
    };
    assert_eq!(report.schemas.len(), files.len(), "one result per schema");
    assert_eq!(report.frames.len(), frames.len(), "one result per frame");
    report
}

#[test]
fn ajv_compiles_every_published_schema_and_agrees_on_the_corpus() {
    let files = schema_files();
    for expected in [CLIENT, SERVER, "transcript.schema.json"] {
        assert!(
            files.iter().any(|f| f == expected),
            "no {expected} in {files:?}"
        );
    }
    for family in Family::ALL {
        let file = format!("topics/{}.schema.json", family.name());
        assert!(files.contains(&file), "no {file} in {files:?}");
    }
    let frames = corpus_frames();
    let report = ajv(&files, &frames);

    let mut failures = Vec::new();
    for (name, result) in files.iter().zip(&report.schemas) {
        if let Some(error) = result["error"].as_str() {
            failures.push(format!("{name}: ajv does not compile it: {error}"));
        }
        match result["warnings"].as_array() {
            Some(warnings) => failures.extend(
                warnings
                    .iter()
                    .map(|w| format!("{name}: ajv warns: {}", w.as_str().unwrap_or_default())),
            ),
            None => failures.push(format!("{name}: ajv.mjs wrote no warnings array")),
        }
    }
    let validators: std::collections::HashMap<&str, jsonschema::Validator> = frames
        .iter()
        .map(|f| f.schema.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|name| (name, validator(&schema(name))))
        .collect();
    let (mut valid, mut invalid) = (0, 0);
    for (frame, result) in frames.iter().zip(&report.frames) {
        let rust = errors(&validators[frame.schema.as_str()], &frame.frame);
        let by_ajv = result["valid"].as_bool();
        let expected = if frame.valid { "valid" } else { "invalid" };
        if rust.is_empty() != frame.valid {
            failures.push(format!(
                "{}: the corpus says {expected}, the Rust validator says otherwise ({rust:?}): {}",
                frame.name, frame.frame
            ));
        }
        if by_ajv != Some(frame.valid) {
            failures.push(format!(
                "{}: the corpus says {expected}, ajv says {} ({}): {}",
                frame.name, result["valid"], result["errors"], frame.frame
            ));
        }
        if frame.valid {
            valid += 1;
        } else {
            invalid += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The corpus is not trivially small: both verdicts were exercised.
    assert!(
        valid > 100 && invalid > 10,
        "{valid} valid, {invalid} invalid frames"
    );
}
