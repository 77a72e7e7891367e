//! Templates in sent frames and headers: `{{name}}`, `{{name + 1}}`, `{{pad:N}}`,
//! `{{token:NAME}}`, and `{"$repeat": N, "item": ...}` inside arrays.

use serde_json::{Map, Value};

pub use crate::error::TemplateError;
use crate::error::{AtPointer, ExprError};
use crate::expr::{Count, Expr, Vars};

/// The variable prefix under which credentials are kept in [`Vars`].
pub const TOKEN_PREFIX: &str = "token:";

enum Piece<'a> {
    Text(&'a str),
    Hole(&'a str),
}

fn pieces(text: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            out.push(Piece::Text(&rest[..open]));
        }
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or_else(|| TemplateError::Unclosed {
            text: text.to_owned(),
        })?;
        out.push(Piece::Hole(after[..close].trim()));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

fn check_hole(hole: &str) -> Result<(), TemplateError> {
    if let Some(n) = hole.strip_prefix("pad:") {
        Expr::parse(n)?;
    } else if let Some(name) = hole.strip_prefix(TOKEN_PREFIX) {
        if name.is_empty() {
            return Err(TemplateError::EmptyCredentialName);
        }
    } else {
        Expr::parse(hole)?;
    }
    Ok(())
}

/// Checks the syntax of a string template.
pub fn check_str(text: &str) -> Result<(), TemplateError> {
    for piece in pieces(text)? {
        if let Piece::Hole(hole) = piece {
            check_hole(hole)?;
        }
    }
    Ok(())
}

/// Checks every template in a JSON value; the error carries the JSON pointer.
pub fn check_value(value: &Value, pointer: &str) -> Result<(), AtPointer<TemplateError>> {
    match value {
        Value::String(s) => check_str(s).map_err(|e| AtPointer::new(pointer, e)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let here = format!("{pointer}/{i}");
                if let Some((count, inner)) = as_repeat(item) {
                    let count = count.map_err(|e| AtPointer::new(&here, e))?;
                    if let Count::Expr(e) = &count {
                        Expr::parse(e).map_err(|e| AtPointer::new(&here, e))?;
                    }
                    check_value(inner, &format!("{here}/item"))?;
                } else {
                    check_value(item, &here)?;
                }
            }
            Ok(())
        }
        Value::Object(map) => {
            for (k, v) in map {
                check_value(
                    v,
                    &format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1")),
                )?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// An array item `{"$repeat": COUNT, "item": ...}`: its count (or why it is not one) and its
/// item; `None` for any other value. Shared by sent frames and matchers.
pub(crate) fn as_repeat(item: &Value) -> Option<(Result<Count, TemplateError>, &Value)> {
    let map = item.as_object()?;
    let count = map.get("$repeat")?;
    let inner = map.get("item").unwrap_or(&Value::Null);
    let parsed =
        serde_json::from_value::<Count>(count.clone()).map_err(|_| TemplateError::BadRepeatCount {
            count: count.clone(),
        });
    let parsed = if map.len() != 2 || !map.contains_key("item") {
        Err(TemplateError::BadRepeatShape)
    } else {
        parsed
    };
    Some((parsed, inner))
}

/// Whether a value holds any template, so it cannot be checked as a client message before
/// the run.
pub fn has_placeholders(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains("{{"),
        Value::Array(items) => items
            .iter()
            .any(|i| as_repeat(i).is_some() || has_placeholders(i)),
        Value::Object(map) => map.values().any(has_placeholders),
        _ => false,
    }
}

fn fill_hole(hole: &str, vars: &Vars) -> Result<Value, TemplateError> {
    if let Some(n) = hole.strip_prefix("pad:") {
        let n = Expr::parse(n)?.eval(vars)?;
        return Ok(Value::String("x".repeat(usize::try_from(n).unwrap_or(0))));
    }
    if hole.starts_with(TOKEN_PREFIX) {
        return vars
            .get(hole)
            .cloned()
            .ok_or_else(|| TemplateError::UnknownCredential {
                name: hole[TOKEN_PREFIX.len()..].to_owned(),
            });
    }
    let expr = Expr::parse(hole)?;
    if let Some(name) = expr.as_var() {
        return vars.get(name).cloned().ok_or_else(|| {
            TemplateError::Expr(ExprError::Unset {
                name: name.to_owned(),
            })
        });
    }
    Ok(Value::from(expr.eval(vars)?))
}

/// Fills in a string template. A string that is exactly one `{{...}}` keeps the value's JSON
/// type (see [`render_value`]); here everything becomes text.
pub fn render_str(text: &str, vars: &Vars) -> Result<String, TemplateError> {
    let mut out = String::new();
    for piece in pieces(text)? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Hole(h) => match fill_hole(h, vars)? {
                Value::String(s) => out.push_str(&s),
                other => out.push_str(&other.to_string()),
            },
        }
    }
    Ok(out)
}

/// Fills in every template in a JSON value.
pub fn render_value(value: &Value, vars: &Vars) -> Result<Value, TemplateError> {
    Ok(match value {
        Value::String(s) => {
            let parts = pieces(s)?;
            match parts.as_slice() {
                [Piece::Hole(h)] => fill_hole(h, vars)?,
                _ => Value::String(render_str(s, vars)?),
            }
        }
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                if let Some((count, inner)) = as_repeat(item) {
                    let n = count?.eval(vars)?;
                    let mut scoped = vars.clone();
                    for k in 1..=n {
                        scoped.insert("k".into(), Value::from(k));
                        out.push(render_value(inner, &scoped)?);
                    }
                } else {
                    out.push(render_value(item, vars)?);
                }
            }
            Value::Array(out)
        }
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(k.clone(), render_value(v, vars)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fills_values_keeping_types() {
        let vars: Vars = [
            ("n".to_owned(), json!(3)),
            ("nonce".to_owned(), json!("ab12")),
            ("token:reader".to_owned(), json!("secret")),
        ]
        .into();
        let template = json!({
            "a": "{{n}}", "b": "{{n + 1}}", "c": "custom.t{{nonce}}", "d": "{{pad:3}}",
            "e": [{"$repeat": "n - 1", "item": {"topic": "x.{{k}}"}}], "f": "Bearer {{token:reader}}"
        });
        assert_eq!(
            render_value(&template, &vars).unwrap(),
            json!({"a": 3, "b": 4, "c": "custom.tab12", "d": "xxx",
                   "e": [{"topic": "x.1"}, {"topic": "x.2"}], "f": "Bearer secret"})
        );
        assert!(has_placeholders(&template));
        assert!(!has_placeholders(&json!({"a": ["b"]})));
    }

    #[test]
    fn explains_bad_templates() {
        assert_eq!(
            check_str("{{a"),
            Err(TemplateError::Unclosed { text: "{{a".into() })
        );
        assert!(matches!(
            check_str("{{a * 2}}"),
            Err(TemplateError::Expr(ExprError::Unexpected { token, .. })) if token == "*"
        ));
        assert_eq!(
            check_str("{{token:}}"),
            Err(TemplateError::EmptyCredentialName)
        );
        let err = check_value(&json!({"x": [1, {"$repeat": true, "item": 1}]}), "").unwrap_err();
        assert_eq!(err.pointer, "/x/1");
        assert_eq!(
            err.error,
            TemplateError::BadRepeatCount { count: json!(true) }
        );
        let err = check_value(&json!([{"$repeat": 1}]), "/f").unwrap_err();
        assert_eq!(
            (err.pointer.as_str(), err.error),
            ("/f/0", TemplateError::BadRepeatShape)
        );
        let err = render_value(&json!("{{missing}}"), &Vars::new()).unwrap_err();
        assert_eq!(
            err,
            TemplateError::Expr(ExprError::Unset {
                name: "missing".into()
            })
        );
        let err = render_str("Bearer {{token:nobody}}", &Vars::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no credential \"nobody\" in the testee contract"
        );
    }
}
