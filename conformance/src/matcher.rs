//! Matchers: expected frames where plain JSON matches itself and `$`-objects match what varies
//! between runs (types, patterns, timestamps, captures, arithmetic, order).

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

use crate::error::AtPointer;
pub use crate::error::MatcherError;
use crate::expr::{Expr, Vars};
use crate::template;

/// Every matcher key, for error messages.
pub const KEYS: &[&str] = &[
    "$type",
    "$regex",
    "$timestamp",
    "$capture",
    "$eq",
    "$expr",
    "$increasing",
    "$unordered",
    "$only",
    "$literal",
];

const TYPES: &[&str] = &[
    "any", "null", "boolean", "integer", "number", "string", "array", "object",
];

/// The key that lets a plain object have fields beyond those listed.
pub const EXTRA_KEY: &str = "$extra";

/// What matching remembers between frames: captured values and the last value of each
/// strictly increasing series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    /// Captures and contract values, readable by templates and expressions.
    pub vars: Vars,
    /// The last value of every `$increasing` series.
    pub series: BTreeMap<String, i64>,
}

/// Why a frame did not match.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// Where in the frame (JSON pointer).
    pub pointer: String,
    /// What was expected there and what was found.
    pub message: String,
}

fn is_matcher(map: &serde_json::Map<String, Value>) -> bool {
    !map.is_empty() && map.keys().all(|k| k.starts_with('$')) && !map.contains_key(EXTRA_KEY)
}

/// Checks a matcher's syntax before the run; the error names the JSON pointer.
pub fn check(expected: &Value, pointer: &str) -> Result<(), AtPointer<MatcherError>> {
    match expected {
        Value::String(s) => template::check_str(s).map_err(|e| AtPointer::new(pointer, e)),
        Value::Array(items) => check_items(items, pointer),
        Value::Object(map) if is_matcher(map) => {
            for (key, arg) in map {
                let here = format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                let at = |error: MatcherError| AtPointer::new(&here, error);
                let bad = |what: &str| {
                    Err(at(MatcherError::BadArgument {
                        key: key.clone(),
                        expected: what.to_owned(),
                        found: arg.clone(),
                    }))
                };
                match key.as_str() {
                    "$type" => match arg.as_str() {
                        Some(t) if TYPES.contains(&t) => {}
                        _ => return bad(&format!("one of {}", TYPES.join(", "))),
                    },
                    "$regex" => {
                        let Some(re) = arg.as_str() else {
                            return bad("a regular expression string");
                        };
                        // A pattern with templates is compiled once they are filled in.
                        if re.contains("{{") {
                            template::check_str(re).map_err(|e| at(e.into()))?;
                        } else {
                            Regex::new(re).map_err(|e| at(e.into()))?;
                        }
                    }
                    "$timestamp" => {
                        if arg != &Value::Bool(true) {
                            return bad("true");
                        }
                    }
                    "$capture" | "$increasing" => match arg.as_str() {
                        Some(name)
                            if !name.is_empty()
                                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                                && !name.starts_with(|c: char| c.is_ascii_digit()) => {}
                        _ => return bad("a name of letters, digits and '_'"),
                    },
                    "$expr" => {
                        let Some(text) = arg.as_str() else {
                            return bad("an expression string such as \"snap + 1\"");
                        };
                        Expr::parse(text).map_err(|e| at(e.into()))?;
                    }
                    "$eq" => {
                        template::check_value(arg, &here).map_err(|e| e.map(Into::into))?;
                    }
                    "$unordered" => {
                        let Some(items) = arg.as_array() else {
                            return bad("an array of matchers");
                        };
                        for (i, item) in items.iter().enumerate() {
                            check(item, &format!("{here}/{i}"))?;
                        }
                    }
                    "$only" => {
                        let only = arg.as_object().filter(|o| {
                            o.len() == 2
                                && o.contains_key("where")
                                && o.get("items").is_some_and(Value::is_array)
                        });
                        let Some(only) = only else {
                            return bad("{\"where\": MATCHER, \"items\": [MATCHERS]}");
                        };
                        check(&only["where"], &format!("{here}/where"))?;
                        check_items(
                            only["items"]
                                .as_array()
                                .map(Vec::as_slice)
                                .unwrap_or_default(),
                            &format!("{here}/items"),
                        )?;
                    }
                    "$literal" => {}
                    _ => return Err(at(MatcherError::Unknown { key: key.clone() })),
                }
            }
            Ok(())
        }
        Value::Object(map) => {
            if let Some(extra) = map.get(EXTRA_KEY) {
                if extra != "ignore" {
                    return Err(AtPointer::new(
                        format!("{pointer}/$extra"),
                        MatcherError::BadExtra {
                            found: extra.clone(),
                        },
                    ));
                }
            }
            for (k, v) in map {
                if k == EXTRA_KEY {
                    continue;
                }
                check(
                    v,
                    &format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1")),
                )?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Checks the items of an expected array; an item `{"$repeat": COUNT, "item": MATCHER}` stands
/// for COUNT items matching MATCHER, with `{{k}}` counting from 1.
fn check_items(items: &[Value], pointer: &str) -> Result<(), AtPointer<MatcherError>> {
    for (i, item) in items.iter().enumerate() {
        let here = format!("{pointer}/{i}");
        match template::as_repeat(item) {
            Some((count, inner)) => {
                let count = count.map_err(|e| AtPointer::new(&here, MatcherError::from(e)))?;
                if let crate::expr::Count::Expr(text) = &count {
                    Expr::parse(text).map_err(|e| AtPointer::new(&here, MatcherError::from(e)))?;
                }
                check(inner, &format!("{here}/item"))?;
            }
            None => check(item, &here)?,
        }
    }
    Ok(())
}

/// The expected items of an array with every `$repeat` item expanded: each matcher with the
/// value `{{k}}` takes while it is matched (`None`: `k` is not set by this item).
fn expand<'e>(
    items: &'e [Value],
    st: &State,
    ptr: &str,
) -> Result<Vec<(&'e Value, Option<u64>)>, Mismatch> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match template::as_repeat(item) {
            Some((count, inner)) => {
                let n = count
                    .and_then(|c| c.eval(&st.vars).map_err(Into::into))
                    .map_err(|e| Mismatch {
                        pointer: ptr.to_owned(),
                        message: format!("cannot count the $repeat item: {e}"),
                    })?;
                out.extend((1..=n).map(|k| (inner, Some(k))));
            }
            None => out.push((item, None)),
        }
    }
    Ok(out)
}

/// Matches `actual` against `expected` with `{{k}}` = `k` when it is set, restoring the
/// previous `k` afterwards.
fn match_item(
    expected: &Value,
    k: Option<u64>,
    actual: &Value,
    st: &mut State,
    ptr: &str,
) -> Result<(), Mismatch> {
    let Some(k) = k else {
        return match_at(expected, actual, st, ptr);
    };
    let before = st.vars.insert("k".into(), Value::from(k));
    let outcome = match_at(expected, actual, st, ptr);
    match before {
        Some(v) => st.vars.insert("k".into(), v),
        None => st.vars.remove("k"),
    };
    outcome
}

/// Matches an array against expected items (`$repeat` items expanded), in order.
fn match_array(items: &[Value], arr: &[Value], st: &mut State, ptr: &str) -> Result<(), Mismatch> {
    let items = expand(items, st, ptr)?;
    if arr.len() != items.len() {
        return miss(
            ptr,
            format!(
                "expected an array of {} item(s), found {}: {}",
                items.len(),
                arr.len(),
                short(&Value::Array(arr.to_vec()))
            ),
        );
    }
    for (i, ((e, k), a)) in items.iter().zip(arr).enumerate() {
        match_item(e, *k, a, st, &format!("{ptr}/{i}"))?;
    }
    Ok(())
}

/// `$only`: the items of `actual` that match `where` must be exactly `items`, in order; the
/// others are not looked at (e.g. entries of other clients in a shared list).
fn match_only(arg: &Value, actual: &Value, st: &mut State, ptr: &str) -> Result<(), Mismatch> {
    let filter = &arg["where"];
    let items = arg["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let Some(arr) = actual.as_array() else {
        return miss(ptr, format!("expected an array, found {}", short(actual)));
    };
    let (at, kept): (Vec<usize>, Vec<Value>) = arr
        .iter()
        .enumerate()
        .filter(|(_, a)| match_at(filter, a, &mut st.clone(), "").is_ok())
        .map(|(i, a)| (i, a.clone()))
        .unzip();
    let mut trial = st.clone();
    match match_array(items, &kept, &mut trial, "") {
        Ok(()) => {
            *st = trial;
            Ok(())
        }
        Err(m) => {
            // The pointer names the item in the actual array, not in the filtered one.
            let mut segments = m.pointer.splitn(3, '/').skip(1);
            let pointer = match segments.next().and_then(|i| i.parse::<usize>().ok()) {
                Some(i) => format!(
                    "{ptr}/{}{}",
                    at.get(i).copied().unwrap_or(i),
                    segments
                        .next()
                        .map_or(String::new(), |rest| format!("/{rest}"))
                ),
                None => ptr.to_owned(),
            };
            miss(
                &pointer,
                format!(
                    "among the {} of {} item(s) matching {}: {}",
                    kept.len(),
                    arr.len(),
                    short(filter),
                    m.message
                ),
            )
        }
    }
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 120 {
        format!("{}…", crate::prefix(&s, 117))
    } else {
        s
    }
}

/// Matches `actual` against `expected`, updating `state` only when the whole value matches.
pub fn matches(expected: &Value, actual: &Value, state: &mut State) -> Result<(), Mismatch> {
    let mut trial = state.clone();
    match_at(expected, actual, &mut trial, "")?;
    *state = trial;
    Ok(())
}

fn miss(pointer: &str, message: String) -> Result<(), Mismatch> {
    Err(Mismatch {
        pointer: pointer.to_owned(),
        message,
    })
}

fn match_at(expected: &Value, actual: &Value, st: &mut State, ptr: &str) -> Result<(), Mismatch> {
    match expected {
        Value::Object(map) if is_matcher(map) => {
            for (key, arg) in map {
                match_one(key, arg, actual, st, ptr)?;
            }
            // Captures last, so a capture only records a value the other matchers accepted.
            if let Some(name) = map.get("$capture").and_then(Value::as_str) {
                st.vars.insert(name.to_owned(), actual.clone());
            }
            Ok(())
        }
        Value::Object(map) => {
            let Some(obj) = actual.as_object() else {
                return miss(ptr, format!("expected an object, found {}", short(actual)));
            };
            for (k, v) in map {
                if k == EXTRA_KEY {
                    continue;
                }
                let here = format!("{ptr}/{}", k.replace('~', "~0").replace('/', "~1"));
                match obj.get(k) {
                    Some(a) => match_at(v, a, st, &here)?,
                    None => return miss(&here, format!("missing field {k:?}")),
                }
            }
            if !map.contains_key(EXTRA_KEY) {
                if let Some(extra) = obj.keys().find(|k| !map.contains_key(*k)) {
                    return miss(
                        &format!("{ptr}/{extra}"),
                        format!(
                            "unexpected field {extra:?} = {}",
                            short(obj.get(extra).unwrap_or(&Value::Null))
                        ),
                    );
                }
            }
            Ok(())
        }
        Value::Array(items) => {
            let Some(arr) = actual.as_array() else {
                return miss(ptr, format!("expected an array, found {}", short(actual)));
            };
            match_array(items, arr, st, ptr)
        }
        Value::String(s) if s.contains("{{") => {
            let want = template::render_value(expected, &st.vars).map_err(|e| Mismatch {
                pointer: ptr.to_owned(),
                message: format!("cannot fill in {s:?}: {e}"),
            })?;
            if &want == actual {
                Ok(())
            } else {
                miss(
                    ptr,
                    format!("expected {}, found {}", short(&want), short(actual)),
                )
            }
        }
        Value::Number(e) => match (e.as_f64(), actual.as_f64()) {
            (Some(x), Some(y)) if x == y && actual.is_number() => Ok(()),
            _ => miss(ptr, format!("expected {e}, found {}", short(actual))),
        },
        _ if expected == actual => Ok(()),
        _ => miss(
            ptr,
            format!("expected {}, found {}", short(expected), short(actual)),
        ),
    }
}

fn match_one(
    key: &str,
    arg: &Value,
    actual: &Value,
    st: &mut State,
    ptr: &str,
) -> Result<(), Mismatch> {
    match key {
        "$type" => {
            let want = arg.as_str().unwrap_or("any");
            let got = type_of(actual);
            let ok = want == "any" || want == got || (want == "number" && got == "integer");
            if !ok {
                return miss(ptr, format!("expected any {want}, found {}", short(actual)));
            }
        }
        "$regex" => {
            let pattern =
                template::render_str(arg.as_str().unwrap_or(""), &st.vars).map_err(|e| {
                    Mismatch {
                        pointer: ptr.to_owned(),
                        message: e.to_string(),
                    }
                })?;
            let re = Regex::new(&pattern).map_err(|e| Mismatch {
                pointer: ptr.to_owned(),
                message: format!("invalid regex {pattern:?}: {e}"),
            })?;
            match actual.as_str() {
                Some(s) if re.is_match(s) => {}
                _ => {
                    return miss(
                        ptr,
                        format!(
                            "expected a string matching /{pattern}/, found {}",
                            short(actual)
                        ),
                    );
                }
            }
        }
        "$timestamp" => {
            let ok = actual
                .as_str()
                .is_some_and(|s| rtbus_protocol::Timestamp::parse(s).is_ok());
            if !ok {
                return miss(
                    ptr,
                    format!(
                        "expected an RFC 3339 UTC timestamp like \"2026-11-21T09:30:00.125Z\", found {}",
                        short(actual)
                    ),
                );
            }
        }
        "$capture" => {}
        "$eq" => {
            let want = template::render_value(arg, &st.vars).map_err(|e| Mismatch {
                pointer: ptr.to_owned(),
                message: e.to_string(),
            })?;
            match_at(&Value::Object(literal(want)), actual, st, ptr)?;
        }
        "$expr" => {
            let text = arg.as_str().unwrap_or("");
            let want = Expr::parse(text)
                .and_then(|e| e.eval(&st.vars))
                .map_err(|e| Mismatch {
                    pointer: ptr.to_owned(),
                    message: e.to_string(),
                })?;
            if actual.as_i64() != Some(want) {
                return miss(
                    ptr,
                    format!("expected {text} = {want}, found {}", short(actual)),
                );
            }
        }
        "$increasing" => {
            let name = arg.as_str().unwrap_or("");
            let Some(n) = actual.as_i64() else {
                return miss(ptr, format!("expected an integer, found {}", short(actual)));
            };
            if let Some(last) = st.series.get(name) {
                if n <= *last {
                    return miss(
                        ptr,
                        format!(
                            "expected more than {last} (series {name:?} must strictly increase), found {n}"
                        ),
                    );
                }
            }
            st.series.insert(name.to_owned(), n);
        }
        "$unordered" => {
            let items = arg.as_array().map(Vec::as_slice).unwrap_or_default();
            let Some(arr) = actual.as_array() else {
                return miss(ptr, format!("expected an array, found {}", short(actual)));
            };
            if arr.len() != items.len() {
                return miss(
                    ptr,
                    format!(
                        "expected an array of {} item(s) in any order, found {}: {}",
                        items.len(),
                        arr.len(),
                        short(actual)
                    ),
                );
            }
            let assignment = assign(items, arr, st).ok_or_else(|| Mismatch {
                pointer: ptr.to_owned(),
                message: format!(
                    "no order of {} matches the expected items {}",
                    short(actual),
                    short(arg)
                ),
            })?;
            *st = assignment;
        }
        "$only" => match_only(arg, actual, st, ptr)?,
        "$literal" => {
            if arg != actual {
                return miss(
                    ptr,
                    format!("expected {}, found {}", short(arg), short(actual)),
                );
            }
        }
        _ => return miss(ptr, format!("unknown matcher {key}")),
    }
    Ok(())
}

fn literal(v: Value) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("$literal".into(), v);
    m
}

/// Finds an assignment of expected items to actual items (backtracking; sets are small).
fn assign(expected: &[Value], actual: &[Value], st: &State) -> Option<State> {
    fn go(expected: &[Value], actual: &[Value], used: &mut Vec<bool>, st: &State) -> Option<State> {
        let Some((first, rest)) = expected.split_first() else {
            return Some(st.clone());
        };
        for (i, a) in actual.iter().enumerate() {
            if used[i] {
                continue;
            }
            let mut trial = st.clone();
            if match_at(first, a, &mut trial, "").is_ok() {
                used[i] = true;
                if let Some(done) = go(rest, actual, used, &trial) {
                    return Some(done);
                }
                used[i] = false;
            }
        }
        None
    }
    go(expected, actual, &mut vec![false; actual.len()], st)
}

/// Matches a set of frames in any order: returns the index of the expected matcher for each
/// actual frame, or the best explanation of why no assignment exists.
pub fn match_set(expected: &[Value], actual: &[Value], state: &mut State) -> Result<(), Mismatch> {
    match assign(expected, actual, state) {
        Some(done) => {
            *state = done;
            Ok(())
        }
        None => {
            // Explain with the first actual frame no expected matcher accepts.
            for (i, a) in actual.iter().enumerate() {
                let mut closest = None;
                for e in expected {
                    let mut trial = state.clone();
                    match match_at(e, a, &mut trial, "") {
                        Ok(()) => {
                            closest = None;
                            break;
                        }
                        Err(m) => {
                            closest.get_or_insert(m);
                        }
                    }
                }
                if let Some(m) = closest {
                    return Err(Mismatch {
                        pointer: m.pointer,
                        message: format!(
                            "frame {} of the set matches no expected frame: {}",
                            i + 1,
                            m.message
                        ),
                    });
                }
            }
            Err(Mismatch {
                pointer: String::new(),
                message: "the frames match the expected ones only individually, not all at once"
                    .into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::TemplateError;
    use serde_json::json;

    fn run(expected: Value, actual: Value, st: &mut State) -> Result<(), String> {
        check(&expected, "").map_err(|e| format!("check: {e}"))?;
        matches(&expected, &actual, st).map_err(|m| format!("{}: {}", m.pointer, m.message))
    }

    #[test]
    fn each_matcher_accepts_and_rejects() {
        let cases: Vec<(Value, Value, Result<(), &str>)> = vec![
            (json!({"a": 1}), json!({"a": 1}), Ok(())),
            (
                json!({"a": 1}),
                json!({"a": 1, "b": 2}),
                Err("/b: unexpected field"),
            ),
            (
                json!({"a": 1, "$extra": "ignore"}),
                json!({"a": 1, "b": 2}),
                Ok(()),
            ),
            (json!({"a": 1}), json!({}), Err("/a: missing field")),
            (json!({"$type": "integer"}), json!(3), Ok(())),
            (
                json!({"$type": "integer"}),
                json!("3"),
                Err("expected any integer"),
            ),
            (json!({"$type": "number"}), json!(3), Ok(())),
            (json!({"$regex": "^a+$"}), json!("aaa"), Ok(())),
            (
                json!({"$regex": "^a+$"}),
                json!("ab"),
                Err("matching /^a+$/"),
            ),
            (
                json!({"$timestamp": true}),
                json!("2026-11-21T09:30:00.125Z"),
                Ok(()),
            ),
            (
                json!({"$timestamp": true}),
                json!("2026-11-21 09:30:00"),
                Err("RFC 3339"),
            ),
            (json!({"$unordered": [1, 2]}), json!([2, 1]), Ok(())),
            (
                json!({"$unordered": [1, 2]}),
                json!([2, 2]),
                Err("no order"),
            ),
            (json!([1, 2]), json!([2, 1]), Err("/0: expected 1, found 2")),
            (
                json!({"$literal": {"$type": "x"}}),
                json!({"$type": "x"}),
                Ok(()),
            ),
            // `$repeat` items: `{{k}}` counts from 1, in strings and expressions.
            (
                json!([0, {"$repeat": 3, "item": {"n": {"$expr": "k + 1"}, "t": "s{{k}}"}}]),
                json!([0, {"n": 2, "t": "s1"}, {"n": 3, "t": "s2"}, {"n": 4, "t": "s3"}]),
                Ok(()),
            ),
            (
                json!([{"$repeat": 2, "item": "s{{k}}"}]),
                json!(["s1", "s2", "s3"]),
                Err("expected an array of 2 item(s), found 3"),
            ),
            (
                json!([{"$repeat": 2, "item": "s{{k}}"}]),
                json!(["s2", "s1"]),
                Err("/0: expected \"s1\", found \"s2\""),
            ),
            // `$only`: the items matching `where` are exactly `items`, in order.
            (
                json!({"$only": {"where": {"id": {"$regex": "^m"}, "$extra": "ignore"},
                                 "items": [{"id": "m1"}, {"id": "m2"}]}}),
                json!([{"id": "a"}, {"id": "m1"}, {"id": "z"}, {"id": "m2"}]),
                Ok(()),
            ),
            (
                json!({"$only": {"where": {"id": {"$regex": "^m"}, "$extra": "ignore"},
                                 "items": [{"id": "m1"}, {"id": "m2"}]}}),
                json!([{"id": "m2"}, {"id": "a"}, {"id": "m1"}]),
                Err("/0/id: among the 2 of 3 item(s) matching"),
            ),
            (
                json!({"$only": {"where": {"id": {"$regex": "^m"}, "$extra": "ignore"},
                                 "items": [{"id": "m1"}]}}),
                json!([{"id": "m1"}, {"id": "a"}, {"id": "m3"}]),
                Err("expected an array of 1 item(s), found 2"),
            ),
            (
                json!({"$only": {"where": {"$type": "any"}, "items": []}}),
                json!({"id": "m1"}),
                Err("expected an array"),
            ),
        ];
        for (expected, actual, want) in cases {
            let got = run(expected.clone(), actual.clone(), &mut State::default());
            match (&got, want) {
                (Ok(()), Ok(())) => {}
                (Err(e), Err(needle)) => assert!(e.contains(needle), "{expected} vs {actual}: {e}"),
                _ => panic!("{expected} vs {actual}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn captures_feed_later_expressions_and_series_increase() {
        let mut st = State::default();
        run(
            json!({"seq": {"$capture": "snap", "$type": "integer"}}),
            json!({"seq": 4}),
            &mut st,
        )
        .unwrap();
        run(
            json!({"seq": {"$expr": "snap + 1", "$increasing": "s"}}),
            json!({"seq": 5}),
            &mut st,
        )
        .unwrap();
        let e = run(
            json!({"seq": {"$expr": "snap + 2"}}),
            json!({"seq": 7}),
            &mut st,
        )
        .unwrap_err();
        assert!(e.contains("snap + 2 = 6, found 7"), "{e}");
        let e = run(
            json!({"seq": {"$increasing": "s"}}),
            json!({"seq": 5}),
            &mut st,
        )
        .unwrap_err();
        assert!(e.contains("more than 5"), "{e}");
        // A failed match records nothing.
        let before = st.clone();
        let _ = run(
            json!({"a": {"$capture": "x"}, "b": 1}),
            json!({"a": 1, "b": 2}),
            &mut st,
        );
        assert_eq!(st, before);
        run(
            json!({"t": "custom.{{snap}}"}),
            json!({"t": "custom.4"}),
            &mut st,
        )
        .unwrap();
    }

    #[test]
    fn sets_match_in_any_order_and_explain_failures() {
        let mut st = State::default();
        let expected = [
            json!({"type": "a"}),
            json!({"type": "b", "n": {"$capture": "n"}}),
        ];
        match_set(
            &expected,
            &[json!({"type": "b", "n": 2}), json!({"type": "a"})],
            &mut st,
        )
        .unwrap();
        assert_eq!(st.vars.get("n"), Some(&json!(2)));
        let err = match_set(
            &expected,
            &[json!({"type": "c"}), json!({"type": "a"})],
            &mut st,
        )
        .unwrap_err();
        assert!(err.message.contains("frame 1 of the set"), "{err:?}");
    }

    #[test]
    fn bad_matchers_are_reported_with_their_pointer() {
        let err = check(&json!({"a": {"$tyep": "x"}}), "/frame").unwrap_err();
        assert_eq!(err.pointer, "/frame/a/$tyep");
        assert!(matches!(&err.error, MatcherError::Unknown { key } if key == "$tyep"));
        assert!(err.error.to_string().contains("unknown matcher"), "{err}");
        let err = check(&json!({"$type": "int"}), "").unwrap_err();
        assert!(
            matches!(&err.error, MatcherError::BadArgument { key, found, .. }
                if key == "$type" && found == "int"),
            "{err}"
        );
        assert!(err.error.to_string().contains("one of any"), "{err}");
        let err = check(&json!({"t": {"$regex": "("}}), "").unwrap_err();
        assert_eq!(err.pointer, "/t/$regex");
        assert!(matches!(err.error, MatcherError::Regex(_)), "{err}");
        let err = check(&json!({"$eq": {"a": ["{{x"]}}), "/f").unwrap_err();
        assert_eq!(err.pointer, "/f/$eq/a/0");
        assert!(
            matches!(
                err.error,
                MatcherError::Template(TemplateError::Unclosed { .. })
            ),
            "{err}"
        );
        let err = check(&json!({"$only": {"items": []}}), "/f").unwrap_err();
        assert_eq!(err.pointer, "/f/$only");
        assert!(err.error.to_string().contains("\"where\""), "{err}");
        let err = check(&json!([{"$repeat": "n *", "item": 1}]), "/f").unwrap_err();
        assert_eq!(err.pointer, "/f/0");
        let err = check(&json!({"$only": {"where": 1, "items": [{"$tyep": 1}]}}), "").unwrap_err();
        assert_eq!(err.pointer, "/$only/items/0/$tyep");
        let err = check(&json!({"a": 1, "$extra": "all"}), "").unwrap_err();
        assert_eq!(err.pointer, "/$extra");
        assert!(matches!(err.error, MatcherError::BadExtra { .. }), "{err}");
    }
}
