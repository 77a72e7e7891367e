//! Free-form JSON on the wire: the numbers every reader represents exactly, and the nesting
//! depth every reader must accept.

use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use ts_rs::TS;

use crate::scalar::MAX_SAFE_INTEGER;

/// The deepest a frame may nest arrays and objects, counting the frame's own object as 1.
///
/// A frame nested deeper is answered with `bad_request`; every frame within the limit is read.
/// Payloads start at depth 3 (`{"data": {"payload": …}}`), so a payload may nest 62 levels.
pub const MAX_NESTING_DEPTH: usize = 64;

/// How deeply `text` nests arrays and objects (outside strings). Runs over the bytes once and
/// does not parse, so it is safe to call on any input, however deep.
pub fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// A number in a free-form value that not every JSON reader holds exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "at {pointer}: the number {shown} is outside ±9007199254740991 (2^53−1), the range every JSON \
     reader holds exactly; send larger numbers as strings"
)]
pub struct UnsafeNumber {
    /// A JSON pointer to the number, relative to the checked value (`""` for the value itself).
    pub pointer: String,
    /// The number as the decoder read it.
    pub shown: String,
}

/// Checks that every number in `value` lies within ±(2^53−1).
///
/// JavaScript reads every JSON number as an IEEE 754 double, so a larger integer would reach a
/// browser rounded, and a server relaying it would have to rewrite it. rtbus refuses such
/// numbers instead of changing them. Fractions within the range are kept as the double they
/// denote.
pub fn check_numbers(value: &Value) -> Result<(), UnsafeNumber> {
    fn walk(value: &Value, pointer: &mut String) -> Result<(), UnsafeNumber> {
        match value {
            Value::Number(n) => {
                let safe = match (n.as_u64(), n.as_i64(), n.as_f64()) {
                    (Some(u), _, _) => u <= MAX_SAFE_INTEGER,
                    (None, Some(i), _) => i.unsigned_abs() <= MAX_SAFE_INTEGER,
                    (None, None, Some(f)) => f.abs() <= MAX_SAFE_INTEGER as f64,
                    (None, None, None) => false,
                };
                if safe {
                    Ok(())
                } else {
                    Err(UnsafeNumber {
                        pointer: pointer.clone(),
                        shown: n.to_string(),
                    })
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = pointer.len();
                    pointer.push_str(&format!("/{i}"));
                    walk(item, pointer)?;
                    pointer.truncate(len);
                }
                Ok(())
            }
            Value::Object(map) => {
                for (key, item) in map {
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                    walk(item, pointer)?;
                    pointer.truncate(len);
                }
                Ok(())
            }
            Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
        }
    }
    walk(value, &mut String::new())
}

/// Any JSON value whose numbers all lie within ±(2^53−1): free-form application data (a
/// `custom.*` payload, an activity entry's `data`, a `ping`'s `data`).
///
/// Relayed exactly as published: strings, booleans, `null`, arrays and objects unchanged, and
/// every number as the same IEEE 754 double. Larger integers must travel as strings.
///
/// TypeScript and the schema call it `SafeJsonValue`, beside the unconstrained `JsonValue`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, TS)]
#[serde(transparent)]
#[ts(rename = "SafeJsonValue")]
pub struct JsonValue(Value);

impl JsonValue {
    /// Wraps `value` if every number in it is JSON-safe.
    pub fn new(value: Value) -> Result<JsonValue, UnsafeNumber> {
        check_numbers(&value)?;
        Ok(JsonValue(value))
    }

    /// The value.
    pub fn get(&self) -> &Value {
        &self.0
    }

    /// The value, unwrapped.
    pub fn into_inner(self) -> Value {
        self.0
    }
}

impl fmt::Display for JsonValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for JsonValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        JsonValue::new(Value::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for JsonValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SafeJsonValue".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let this = generator.subschema_for::<JsonValue>();
        json_schema!({
            "description": "Any JSON value whose numbers all lie within ±(2^53−1); larger numbers travel as strings.",
            "anyOf": [
                { "type": ["null", "boolean", "string"] },
                { "type": "number", "minimum": -(MAX_SAFE_INTEGER as i64), "maximum": MAX_SAFE_INTEGER },
                { "type": "array", "items": this },
                { "type": "object", "additionalProperties": this },
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn depth_counts_brackets_outside_strings() {
        assert_eq!(nesting_depth("1"), 0);
        assert_eq!(nesting_depth(r#"{"a":[1,{"b":"[[[{"}]}"#), 3);
        assert_eq!(nesting_depth(r#"["\"[[", [[]]]"#), 3);
        assert_eq!(nesting_depth(&"[".repeat(100_000)), 100_000);
    }

    #[test]
    fn unsafe_numbers_are_found_with_their_pointer() {
        assert!(
            check_numbers(&json!({"a": [1, 9007199254740991_u64, -9007199254740991_i64, 0.5]}))
                .is_ok()
        );
        let big: Value = serde_json::from_str(r#"{"a/b": [0, 18446744073709551616]}"#).unwrap();
        let err = check_numbers(&big).unwrap_err();
        assert_eq!(err.pointer, "/a~1b/1");
        assert!(err.to_string().contains("as strings"), "{err}");
        assert!(check_numbers(&json!(9007199254740992_u64)).is_err());
        assert!(check_numbers(&json!(-9007199254740992_i64)).is_err());
        assert!(serde_json::from_str::<JsonValue>("[1e300]").is_err());
        assert!(serde_json::from_str::<JsonValue>("{\"x\":null}").is_ok());
    }
}
