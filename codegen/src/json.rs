//! Canonical JSON output: sorted keys, two-space indent, trailing newline.

use serde_json::{Map, Value};

use crate::{Error, Result};

/// A copy of `value` with every object's keys in sorted order, whatever `serde_json` features
/// the build enabled (with `preserve_order`, maps keep insertion order).
pub fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for key in keys {
                out.insert(key.clone(), canonical(&map[key]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// `value` as canonical pretty JSON with a trailing newline.
pub fn to_pretty(value: &Value) -> Result<String> {
    let mut text =
        serde_json::to_string_pretty(&canonical(value)).map_err(|source| Error::Json {
            what: "a generated JSON document".into(),
            source,
        })?;
    text.push('\n');
    Ok(text)
}
