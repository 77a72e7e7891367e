//! typify's copies of the direction schemas (`codegen/tests/typify/`), converted to the dialect
//! typify 0.6 reads.

use serde_json::{Value, json};

use crate::{Body, Error, GeneratedFile, Result};
/// typify 0.6 reads draft-07 style `definitions`, not 2020-12 `$defs`, and does not understand
/// the `if`/`then` payload rules. This produces a mechanically converted copy of each direction
/// schema for it: `$defs` renamed to `definitions` (and every `$ref` with it), the `allOf` of
/// payload rules dropped, and `format: date-time` removed where a `pattern` already constrains
/// the string (typify 0.6 emits conflicting impls for the pair, and would need chrono).
/// Everything else is the published schema unchanged.
pub fn typify_input() -> Result<Vec<GeneratedFile>> {
    let mut files = Vec::new();
    for file in crate::schema::generate()? {
        let Some(name) = file
            .path()
            .strip_prefix("generated/schema/")
            .filter(|n| !n.contains('/'))
        else {
            continue;
        };
        let mut value: Value =
            serde_json::from_str(file.contents()).map_err(|source| Error::Json {
                what: file.path().to_owned(),
                source,
            })?;
        if let Some(map) = value.as_object_mut() {
            map.remove("$comment");
            map.remove("allOf");
            if let Some(mut defs) = map.remove("$defs") {
                // typify 0.6 reads the bounded-number branch as `f64` and would turn `1` into
                // `1.0` on the way back; any value it round-trips exactly is enough here.
                if let Some(safe) = defs.get_mut("SafeJsonValue") {
                    *safe = json!({"description": "Any JSON value (bounds checked by the real schema)."});
                }
                map.insert("definitions".into(), defs);
            }
        }
        drop_date_time_format(&mut value);
        rename_defs_refs(&mut value);
        let note = format!(
            "A copy of generated/schema/{name} for typify 0.6: $defs renamed to \
             definitions, the allOf of topic payload rules removed, format date-time removed beside a pattern, SafeJsonValue any value."
        );
        files.push(GeneratedFile::new(
            format!("codegen/tests/typify/{name}"),
            Body::json(value).note(note),
        )?);
    }
    Ok(files)
}

/// Every `$ref` into `$defs` pointed at `definitions` instead.
fn rename_defs_refs(value: &mut Value) {
    match value {
        Value::String(text) => {
            if let Some(rest) = text.strip_prefix("#/$defs/") {
                *text = format!("#/definitions/{rest}");
            }
        }
        Value::Object(map) => map.values_mut().for_each(rename_defs_refs),
        Value::Array(items) => items.iter_mut().for_each(rename_defs_refs),
        _ => {}
    }
}

fn drop_date_time_format(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.contains_key("pattern") && map.get("format") == Some(&json!("date-time")) {
                map.remove("format");
            }
            map.values_mut().for_each(drop_date_time_format);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_date_time_format),
        _ => {}
    }
}
