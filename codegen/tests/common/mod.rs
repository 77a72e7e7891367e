//! Helpers shared by the agreement tests: loading the published schemas and validating.

#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("codegen/ has a parent")
        .to_path_buf()
}

/// A published schema, as committed under `generated/schema/`.
pub fn schema(relative: &str) -> Value {
    let path = repo_root().join("generated/schema").join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run `cargo xtask codegen`", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A validator for `schema` that also asserts `format` (so `date-time` is checked).
pub fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|e| panic!("schema does not compile: {e}"))
}

/// The validation errors of `instance`, one line each.
pub fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("at {}: {e}", e.instance_path()))
        .collect()
}

/// A validator for one `$defs` entry (`snapshot`, `event` or `topic`) of a family schema.
pub fn family_part(family: &str, part: &str) -> jsonschema::Validator {
    let mut schema = schema(&format!("topics/{family}.schema.json"));
    let map = schema.as_object_mut().expect("schemas are objects");
    map.remove("anyOf");
    map.insert("$ref".into(), Value::String(format!("#/$defs/{part}")));
    validator(&schema)
}
