//! `generated/typescript/decode.ts`: decoders and type guards for both directions, compiled
//! from the JSON Schemas [`crate::schema::generate`] writes in the same run.
//!
//! Each `$defs` entry becomes one `const $Name: K = …` built from a handful of shared checker
//! factories (`str`, `num`, `en`, `arr`, `obj`, `tagged`, `byType`); the message unions dispatch
//! on their `type` tag; the schemas' `allOf` of `if`/`then` rules (payload by topic family)
//! becomes a table of topic patterns per frame type. A schema keyword the compiler does not
//! know fails generation, so the decoder never silently checks less than the schema says.
//!
//! `codegen/tests/decode_agreement.rs` runs the output under Node against the Rust decoder.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use rtbus_protocol::MAX_NESTING_DEPTH;
use rtbus_protocol::catalog::Family;
use serde_json::{Map, Value};

use crate::{Body, Error, GeneratedFile, Result};

/// The direction schemas and the TypeScript type each one describes (its checker is `$<type>`).
const DIRECTIONS: &[Direction] = &[
    Direction {
        file: "generated/schema/client-to-server.schema.json",
        ty: "ClientMessage",
    },
    Direction {
        file: "generated/schema/server-to-client.schema.json",
        ty: "ServerMessage",
    },
];

struct Direction {
    file: &'static str,
    ty: &'static str,
}

/// Keywords that only annotate: they never change what validates.
const ANNOTATIONS: &[&str] = &["description", "title", "$comment", "examples", "default"];

fn shape(at: &str, what: impl std::fmt::Display) -> Error {
    Error::SchemaShape(format!("decode.ts: at {at}: {what}"))
}

/// A JavaScript string literal.
fn js_string(text: &str) -> String {
    // JSON string syntax is a subset of JavaScript's; serializing a `&str` cannot fail.
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// A JavaScript literal for a JSON value (JSON is JavaScript).
fn js_value(value: &Value) -> String {
    serde_json::to_string(&crate::json::canonical(value)).unwrap_or_else(|_| "null".to_owned())
}

/// A number as JavaScript source; integers without a fraction.
fn js_number(value: &Value, at: &str) -> Result<String> {
    match value {
        Value::Number(n) => Ok(n.to_string()),
        other => Err(shape(at, format!("expected a number, found {other}"))),
    }
}

/// A property name as an object-literal key: bare when it is an identifier.
fn js_key(name: &str) -> String {
    let mut chars = name.chars();
    let identifier = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if identifier {
        name.to_owned()
    } else {
        js_string(name)
    }
}

/// The schema keywords of `map` outside `allowed` and the annotations, as an error.
fn only(map: &Map<String, Value>, allowed: &[&str], at: &str) -> Result<()> {
    let extra: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|k| !allowed.contains(k) && !ANNOTATIONS.contains(k))
        .collect();
    if extra.is_empty() {
        Ok(())
    } else {
        Err(shape(
            at,
            format!(
                "keyword(s) {} not supported by the TypeScript decoder generator \
                 (codegen/src/decode_ts.rs); teach it the keyword or change the schema",
                extra.join(", ")
            ),
        ))
    }
}

fn object<'a>(value: &'a Value, at: &str) -> Result<&'a Map<String, Value>> {
    value
        .as_object()
        .ok_or_else(|| shape(at, format!("expected a schema object, found {value}")))
}

fn strings<'a>(value: Option<&'a Value>, at: &str) -> Result<Vec<&'a str>> {
    match value {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .ok_or_else(|| shape(at, format!("expected strings, found {i}")))
            })
            .collect(),
        Some(other) => Err(shape(
            at,
            format!("expected an array of strings, found {other}"),
        )),
    }
}

/// The JSON types a schema's `type` keyword admits (`integer` as `number`), or `None` when it
/// has no `type`.
fn json_types(map: &Map<String, Value>, at: &str) -> Result<Option<Vec<String>>> {
    let types = match map.get("type") {
        None => return Ok(None),
        Some(Value::String(t)) => vec![t.as_str()],
        Some(other) => strings(Some(other), at)?,
    };
    Ok(Some(
        types
            .into_iter()
            .map(|t| if t == "integer" { "number" } else { t }.to_owned())
            .collect(),
    ))
}

/// Compiles schemas to checker expressions over the helpers of [`RUNTIME`].
struct Compiler<'a> {
    defs: &'a BTreeMap<String, Value>,
    /// How often each ref-free factory call occurs (first pass), so the second pass can hoist
    /// repeated ones into shared constants.
    counts: HashMap<String, usize>,
    /// Hoisted expressions: expression -> constant name, in creation order.
    shared: Vec<(String, String)>,
    hoisting: bool,
    /// Defs whose initializer is being compiled: a reference to one of them is a cycle and
    /// must be deferred.
    stack: Vec<String>,
    /// Defs already emitted (or being emitted), and the emitted `const` lines in order.
    done: BTreeSet<String>,
    out: Vec<String>,
}

impl<'a> Compiler<'a> {
    fn new(defs: &'a BTreeMap<String, Value>, counts: HashMap<String, usize>) -> Compiler<'a> {
        let hoisting = !counts.is_empty();
        Compiler {
            defs,
            counts,
            shared: Vec::new(),
            hoisting,
            stack: Vec::new(),
            done: BTreeSet::new(),
            out: Vec::new(),
        }
    }

    /// A factory call that references no def: counted in the first pass, hoisted in the
    /// second when it occurs more than once.
    fn leaf(&mut self, expr: String) -> String {
        if !self.hoisting {
            *self.counts.entry(expr.clone()).or_default() += 1;
            return expr;
        }
        if self.counts.get(&expr).copied().unwrap_or(0) < 2 {
            return expr;
        }
        if let Some((_, name)) = self.shared.iter().find(|(e, _)| *e == expr) {
            return name.clone();
        }
        let name = format!("k{}", self.shared.len());
        self.shared.push((expr, name.clone()));
        name
    }

    /// The checker of def `name`, emitting it (and what it needs) first.
    fn reference(&mut self, name: &str, at: &str) -> Result<String> {
        let ident = format!("${name}");
        if self.stack.iter().any(|n| n == name) {
            // A cycle (SafeJsonValue holds SafeJsonValue): look the checker up at call time.
            return Ok(format!("(v) => {ident}(v)"));
        }
        if self.done.insert(name.to_owned()) {
            let schema = self
                .defs
                .get(name)
                .ok_or_else(|| shape(at, format!("$ref to unknown def {name:?}")))?;
            self.stack.push(name.to_owned());
            let expr = self.compile(schema, &format!("#/$defs/{name}"))?;
            self.stack.pop();
            self.out.push(format!("const {ident}: K = {expr};"));
        }
        Ok(ident)
    }

    fn compile(&mut self, schema: &Value, at: &str) -> Result<String> {
        let map = object(schema, at)?;
        if let Some(target) = map.get("$ref") {
            only(map, &["$ref"], at)?;
            let name = target
                .as_str()
                .and_then(|t| t.strip_prefix("#/$defs/"))
                .ok_or_else(|| shape(at, format!("unsupported $ref {target}")))?;
            return self.reference(name, at);
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(branches) = map.get(key) {
                only(map, &[key], at)?;
                let branches = branches
                    .as_array()
                    .ok_or_else(|| shape(at, format!("{key} is not an array")))?;
                return self.alternatives(branches, &format!("{at}/{key}"));
            }
        }
        if let Some(value) = map.get("const") {
            only(map, &["const", "type"], at)?;
            return Ok(self.leaf(format!("en([{}])", js_value(value))));
        }
        if let Some(Value::Array(values)) = map.get("enum") {
            only(map, &["enum", "type"], at)?;
            let values: Vec<String> = values.iter().map(js_value).collect();
            return Ok(self.leaf(format!("en([{}])", values.join(", "))));
        }
        let Some(types) = json_types(map, at)? else {
            only(map, &[], at)?;
            // No constraint at all (a payload the allOf rules check by topic).
            return Ok("ok".to_owned());
        };
        if types.len() > 1 {
            only(map, &["type"], at)?;
            let table: Vec<String> = types
                .iter()
                .map(|t| format!("{}: {}", js_key(t), plain(t)))
                .collect();
            return Ok(self.leaf(format!("byType({{ {} }})", table.join(", "))));
        }
        let integer = map.get("type") == Some(&Value::from("integer"));
        match types[0].as_str() {
            "string" => self.string(map, at),
            "number" => self.number(map, integer, at),
            "boolean" | "null" => {
                only(map, &["type"], at)?;
                Ok(plain(&types[0]).to_owned())
            }
            "array" => {
                only(map, &["type", "items", "minItems"], at)?;
                let items = match map.get("items") {
                    Some(items) => self.compile(items, &format!("{at}/items"))?,
                    None => "ok".to_owned(),
                };
                let min = match map.get("minItems") {
                    Some(m) => format!(", {}", js_number(m, at)?),
                    None => String::new(),
                };
                Ok(format!("arr({items}{min})"))
            }
            "object" => self.object(map, at),
            other => Err(shape(at, format!("unsupported type {other:?}"))),
        }
    }

    fn string(&mut self, map: &Map<String, Value>, at: &str) -> Result<String> {
        only(
            map,
            &["type", "minLength", "maxLength", "pattern", "format"],
            at,
        )?;
        let date_time = match map.get("format").and_then(Value::as_str) {
            None => false,
            Some("date-time") => true,
            Some(other) => {
                return Err(shape(at, format!("unsupported string format {other:?}")));
            }
        };
        if map.len() == 1
            || (map
                .keys()
                .all(|k| k == "type" || ANNOTATIONS.contains(&&**k)))
        {
            return Ok("text".to_owned());
        }
        let lo = match map.get("minLength") {
            Some(m) => js_number(m, at)?,
            None => "0".to_owned(),
        };
        let hi = match map.get("maxLength") {
            Some(m) => js_number(m, at)?,
            None => "Infinity".to_owned(),
        };
        let mut args = vec![lo, hi];
        if let Some(pattern) = map.get("pattern") {
            let pattern = pattern
                .as_str()
                .ok_or_else(|| shape(at, "pattern is not a string"))?;
            // Inline, not hoisted: the `str(…)` call is what gets shared.
            args.push(format!("re({})", js_string(pattern)));
        } else if date_time {
            args.push("undefined".to_owned());
        }
        if date_time {
            args.push("true".to_owned());
        }
        Ok(self.leaf(format!("str({})", args.join(", "))))
    }

    fn number(&mut self, map: &Map<String, Value>, integer: bool, at: &str) -> Result<String> {
        // Integer formats (`uint16`, `int32`, …) only name what the bounds already say; the
        // schema generator refuses an integer without bounds.
        only(map, &["type", "minimum", "maximum", "format"], at)?;
        let bound = |key: &str, default: &str| match map.get(key) {
            Some(v) => js_number(v, at),
            None => Ok(default.to_owned()),
        };
        let lo = bound("minimum", "-Infinity")?;
        let hi = bound("maximum", "Infinity")?;
        Ok(self.leaf(format!("num({lo}, {hi}, {integer})")))
    }

    fn object(&mut self, map: &Map<String, Value>, at: &str) -> Result<String> {
        only(
            map,
            &[
                "type",
                "properties",
                "required",
                "additionalProperties",
                "dependentRequired",
            ],
            at,
        )?;
        let mut props = Vec::new();
        if let Some(properties) = map.get("properties") {
            let properties = object(properties, at)?;
            for (name, schema) in properties {
                let checker = self.compile(schema, &format!("{at}/properties/{name}"))?;
                props.push(format!("{}: {checker}", js_key(name)));
            }
        }
        let required: Vec<String> = strings(map.get("required"), at)?
            .into_iter()
            .map(js_string)
            .collect();
        let extra = match map.get("additionalProperties") {
            None | Some(Value::Bool(true)) => "ok".to_owned(),
            Some(Value::Bool(false)) => "null".to_owned(),
            Some(schema) => self.compile(schema, &format!("{at}/additionalProperties"))?,
        };
        let mut args = vec![
            format!("{{ {} }}", props.join(", ")),
            format!("[{}]", required.join(", ")),
            extra,
        ];
        if let Some(deps) = map.get("dependentRequired") {
            let deps = object(deps, at)?;
            let entries: Result<Vec<String>> = deps
                .iter()
                .map(|(name, needs)| {
                    let needs: Vec<String> = strings(Some(needs), at)?
                        .into_iter()
                        .map(js_string)
                        .collect();
                    Ok(format!("{}: [{}]", js_key(name), needs.join(", ")))
                })
                .collect();
            args.push(format!("{{ {} }}", entries?.join(", ")));
        }
        Ok(format!("obj({})", args.join(", ")).replace("obj({  }", "obj({}"))
    }

    /// `oneOf`/`anyOf`: string constants become an enum, objects with a constant tag a
    /// dispatch on the tag, branches of disjoint JSON types a dispatch on the type.
    fn alternatives(&mut self, branches: &[Value], at: &str) -> Result<String> {
        let consts: Option<Vec<String>> = branches
            .iter()
            .map(|b| {
                let map = b.as_object()?;
                let value = map.get("const")?;
                only(map, &["const", "type"], at).ok()?;
                Some(js_value(value))
            })
            .collect();
        if let Some(values) = consts {
            return Ok(self.leaf(format!("en([{}])", values.join(", "))));
        }
        if let Some(tag) = common_tag(branches) {
            let mut table = Vec::new();
            for (i, branch) in branches.iter().enumerate() {
                let value = branch
                    .pointer(&format!("/properties/{tag}/const"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let checker = self.compile(branch, &format!("{at}/{i}"))?;
                table.push(format!("{}: {checker}", js_key(value)));
            }
            return Ok(format!(
                "tagged({}, {{\n  {},\n}})",
                js_string(&tag),
                table.join(",\n  ")
            ));
        }
        let mut table: BTreeMap<String, String> = BTreeMap::new();
        for (i, branch) in branches.iter().enumerate() {
            let here = format!("{at}/{i}");
            let map = object(branch, &here)?;
            let types = json_types(map, &here)?.ok_or_else(|| {
                shape(
                    &here,
                    "alternatives that are neither constants, tagged objects nor of disjoint types",
                )
            })?;
            for t in types {
                let mut narrowed = map.clone();
                let original = narrowed.get("type").cloned();
                let ty = match original {
                    Some(Value::String(s)) if s == "integer" => "integer".to_owned(),
                    _ => t.clone(),
                };
                narrowed.insert("type".into(), Value::String(ty));
                let checker = self.compile(&Value::Object(narrowed), &here)?;
                if table.insert(t.clone(), checker).is_some() {
                    return Err(shape(
                        &here,
                        format!("two alternatives admit JSON type {t}; they must be disjoint"),
                    ));
                }
            }
        }
        let table: Vec<String> = JSON_TYPES
            .iter()
            .filter_map(|t| Some(format!("{}: {}", js_key(t), table.get(*t)?)))
            .collect();
        Ok(format!("byType({{ {} }})", table.join(", ")))
    }
}

/// The JSON types in the order the decoder lists them.
const JSON_TYPES: &[&str] = &["null", "boolean", "number", "string", "array", "object"];

/// The runtime checker of a bare JSON type.
fn plain(json_type: &str) -> &'static str {
    match json_type {
        "null" => "nul",
        "boolean" => "bool",
        "number" => "num(-Infinity, Infinity, false)",
        "string" => "text",
        "array" => "arr(ok)",
        _ => "obj({}, [], ok)",
    }
}

/// The property every branch requires and pins with a distinct string `const`, if any.
fn common_tag(branches: &[Value]) -> Option<String> {
    let first = branches.first()?.get("properties")?.as_object()?;
    first
        .keys()
        .find(|name| {
            let mut seen = BTreeSet::new();
            branches.iter().all(|b| {
                let required = b
                    .get("required")
                    .and_then(Value::as_array)
                    .is_some_and(|r| r.iter().any(|x| x == name.as_str()));
                let value = b
                    .pointer(&format!("/properties/{name}/const"))
                    .and_then(Value::as_str);
                required && b.get("type") == Some(&Value::from("object")) && {
                    value.is_some_and(|v| seen.insert(v.to_owned()))
                }
            })
        })
        .cloned()
}

/// The `allOf` of a direction schema, read as payload-by-topic rules.
#[derive(Default)]
struct PayloadRules {
    /// The tag, container, selector and target fields: `type`, `data`, `topic`, `payload`.
    fields: Option<[String; 4]>,
    /// Per frame type, the (selector pattern, payload schema) pairs.
    by_type: BTreeMap<String, Vec<(String, Value)>>,
    /// The frame types whose selector must match one of the patterns, and those patterns.
    known: Option<(BTreeSet<String>, BTreeSet<String>)>,
}

fn single_key<'a>(value: &'a Value, at: &str) -> Result<(&'a String, &'a Value)> {
    let map = object(value, at)?;
    let mut entries = map.iter();
    match (entries.next(), entries.next()) {
        (Some(entry), None) => Ok(entry),
        _ => Err(shape(at, "expected an object with exactly one property")),
    }
}

impl PayloadRules {
    fn read(all_of: &[Value], at: &str) -> Result<PayloadRules> {
        let mut rules = PayloadRules::default();
        for (i, rule) in all_of.iter().enumerate() {
            let here = format!("{at}/allOf/{i}");
            let map = object(rule, &here)?;
            only(map, &["if", "then"], &here)?;
            let (Some(cond), Some(then)) = (map.get("if"), map.get("then")) else {
                return Err(shape(&here, "an allOf entry without if and then"));
            };
            let unsupported = || {
                shape(
                    &here,
                    "an if/then rule of a shape the TypeScript decoder generator does not \
                     know (it reads payload-by-topic rules, see codegen/src/schema.rs)",
                )
            };
            let cond_props = cond.get("properties").ok_or_else(unsupported)?;
            let then_props = then.get("properties").ok_or_else(unsupported)?;
            let (container, then_inner) = single_key(then_props, &here)?;
            let (target_or_selector, what) =
                single_key(then_inner.get("properties").ok_or_else(unsupported)?, &here)?;
            let cond_props = object(cond_props, &here)?;
            if let Some(any_of) = what.get("anyOf") {
                // The known-family rule: `if` the type is one of these, `then` the selector
                // matches one of the patterns.
                let (tag, types) =
                    single_key(cond.get("properties").ok_or_else(unsupported)?, &here)?;
                let types: BTreeSet<String> = strings(types.get("enum"), &here)?
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                let patterns: Option<BTreeSet<String>> = any_of
                    .as_array()
                    .ok_or_else(unsupported)?
                    .iter()
                    .map(|p| Some(p.get("pattern")?.as_str()?.to_owned()))
                    .collect();
                rules.set_fields(tag, container, target_or_selector, None, &here)?;
                if rules.known.is_some() {
                    return Err(shape(&here, "two known-topic rules"));
                }
                rules.known = Some((types, patterns.ok_or_else(unsupported)?));
                continue;
            }
            // A payload rule: `if` the type is T and the selector matches P, `then` the
            // target has schema S.
            let mut tag = None;
            let mut selector = None;
            for (name, schema) in cond_props {
                if let Some(value) = schema.get("const").and_then(Value::as_str) {
                    tag = Some((name, value.to_owned()));
                } else {
                    let (sel, pattern) =
                        single_key(schema.get("properties").ok_or_else(unsupported)?, &here)?;
                    let pattern = pattern
                        .get("pattern")
                        .and_then(Value::as_str)
                        .ok_or_else(unsupported)?;
                    selector = Some((name, sel, pattern.to_owned()));
                }
            }
            let (Some((tag, frame_type)), Some((cont, sel, pattern))) = (tag, selector) else {
                return Err(unsupported());
            };
            if cont != container {
                return Err(unsupported());
            }
            rules.set_fields(tag, container, sel, Some(target_or_selector), &here)?;
            rules
                .by_type
                .entry(frame_type)
                .or_default()
                .push((pattern, what.clone()));
        }
        rules.check(at)?;
        Ok(rules)
    }

    /// Records the field names a rule uses; every rule must use the same ones.
    fn set_fields(
        &mut self,
        tag: &str,
        container: &str,
        selector: &str,
        target: Option<&str>,
        at: &str,
    ) -> Result<()> {
        let current = self.fields.get_or_insert_with(|| {
            [
                tag.to_owned(),
                container.to_owned(),
                selector.to_owned(),
                target.unwrap_or_default().to_owned(),
            ]
        });
        if current[3].is_empty() {
            if let Some(target) = target {
                current[3] = target.to_owned();
            }
        }
        let same = current[0] == tag
            && current[1] == container
            && current[2] == selector
            && target.is_none_or(|t| current[3] == t);
        if same {
            Ok(())
        } else {
            Err(shape(at, "payload rules that name different fields"))
        }
    }

    /// The known-topic rule must say exactly what the payload rules imply: the decoder fails
    /// a frame whose topic matches no payload rule of its type.
    fn check(&self, at: &str) -> Result<()> {
        if self.by_type.is_empty() && self.known.is_none() {
            return Ok(());
        }
        let Some((types, patterns)) = &self.known else {
            return Err(shape(at, "payload rules without a known-topic rule"));
        };
        let rule_types: BTreeSet<String> = self.by_type.keys().cloned().collect();
        if &rule_types != types {
            return Err(shape(
                at,
                format!("the known-topic rule covers {types:?}, the payload rules {rule_types:?}"),
            ));
        }
        for (ty, rules) in &self.by_type {
            let own: BTreeSet<String> = rules.iter().map(|(p, _)| p.clone()).collect();
            if &own != patterns {
                return Err(shape(
                    at,
                    format!(
                        "the payload rules of {ty:?} cover other topics than the known-topic rule"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `a, b or c`.
fn listing(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// What a frame whose topic belongs to no family should have had, in the catalog's words.
fn known_topics(patterns: &BTreeSet<String>, at: &str) -> Result<String> {
    let mut shown = Vec::new();
    for family in Family::ALL {
        let pattern = family.shape().topic_regex(family.name());
        if patterns.contains(&pattern) {
            shown.push(family.shape().display(family.name()));
        }
    }
    if shown.len() != patterns.len() {
        return Err(shape(
            at,
            "a topic pattern of the payload rules that no catalog family has",
        ));
    }
    Ok(format!("a topic of a known family: {}", listing(&shown)))
}

/// The schemas' `$defs`, merged: both directions share most of them.
fn merged_defs(roots: &[(&Direction, Value)]) -> Result<BTreeMap<String, Value>> {
    let mut defs = BTreeMap::new();
    for (direction, root) in roots {
        let Some(Value::Object(own)) = root.get("$defs") else {
            continue;
        };
        for (name, schema) in own {
            if let Some(previous) = defs.insert(name.clone(), schema.clone()) {
                if &previous != schema {
                    return Err(shape(
                        direction.file,
                        format!("$defs/{name} differs between the direction schemas"),
                    ));
                }
            }
        }
    }
    Ok(defs)
}

/// The root of one direction: its tagged union, wrapped with its payload rules.
fn root_checker(
    compiler: &mut Compiler<'_>,
    direction: &Direction,
    root: &Value,
) -> Result<String> {
    let at = direction.file;
    let map = object(root, at)?;
    only(
        map,
        &["oneOf", "anyOf", "allOf", "$defs", "$schema", "$id"],
        at,
    )?;
    let mut union = map.clone();
    for key in ["allOf", "$defs", "$schema", "$id"] {
        union.remove(key);
    }
    let frame = compiler.compile(&Value::Object(union), at)?;
    let all_of = match map.get("allOf") {
        None => return Ok(frame),
        Some(Value::Array(rules)) => rules,
        Some(_) => return Err(shape(at, "allOf is not an array")),
    };
    let rules = PayloadRules::read(all_of, at)?;
    let (Some(fields), Some((_, patterns))) = (&rules.fields, &rules.known) else {
        return Ok(frame);
    };
    let mut table = Vec::new();
    for (ty, entries) in &rules.by_type {
        let mut pairs = Vec::new();
        for (pattern, schema) in entries {
            let re = compiler.leaf(format!("re({})", js_string(pattern)));
            let checker =
                compiler.compile(schema, &format!("{at}: payload of {ty} on {pattern}"))?;
            pairs.push(format!("[{re}, {checker}]"));
        }
        table.push(format!("{}: [{}]", js_key(ty), pairs.join(", ")));
    }
    let fields: Vec<String> = fields.iter().map(|f| js_string(f)).collect();
    Ok(format!(
        "byTopic({frame}, {}, {{\n  {},\n}}, {})",
        fields.join(", "),
        table.join(",\n  "),
        js_string(&known_topics(patterns, at)?)
    ))
}

/// Compiles every direction: the shared constants, the defs and the two roots, as TypeScript.
fn compile_all(roots: &[(&Direction, Value)], defs: &BTreeMap<String, Value>) -> Result<String> {
    // First pass: count the ref-free factory calls; second pass: emit, hoisting repeats.
    let mut counting = Compiler::new(defs, HashMap::new());
    for (direction, root) in roots {
        root_checker(&mut counting, direction, root)?;
    }
    let counts = counting.counts;
    let mut compiler = Compiler::new(defs, counts);
    let mut root_lines = Vec::new();
    for (direction, root) in roots {
        let checker = root_checker(&mut compiler, direction, root)?;
        root_lines.push(format!("const ${}: K = {checker};", direction.ty));
    }
    let mut out = String::new();
    for (expr, name) in &compiler.shared {
        let _ = writeln!(out, "const {name} = {expr};");
    }
    for line in compiler.out.iter().chain(&root_lines) {
        let _ = writeln!(out, "{line}");
    }
    Ok(out)
}

/// The hand-written half of `decode.ts`: the API types and the checker factories the compiled
/// schemas are built from. `@@MAX_DEPTH@@` is replaced by the protocol's nesting limit.
const RUNTIME: &str = r#"import type { ClientMessage } from "./ClientMessage.js";
import type { ServerMessage } from "./ServerMessage.js";

/** The outcome of decoding or checking a frame. */
export type DecodeResult<T> = { ok: true; value: T } | { ok: false; error: DecodeError };

/** Why a frame was refused: the first offending value found. */
export interface DecodeError {
  /** JSON pointer to the offending value ("" = the whole frame). */
  pointer: string;
  /** What was expected there, e.g. "an integer in 0..=9007199254740991". */
  expected: string;
  /** One sentence: "at /data/seq: expected ..., found ...". */
  message: string;
}

/** Parses and checks a frame received from a server. Never throws. */
export function decodeServerMessage(text: string): DecodeResult<ServerMessage> {
  return decode(text, $ServerMessage);
}

/** Parses and checks a frame a client sends (e.g. in a test server or a proxy). Never throws. */
export function decodeClientMessage(text: string): DecodeResult<ClientMessage> {
  return decode(text, $ClientMessage);
}

/**
 * Checks an already parsed JSON value as a server frame; the value is returned as is, not
 * copied. Anything that is not JSON data (plain objects, arrays, strings, finite numbers,
 * booleans, null) is refused; getters and proxies are read like plain fields.
 */
export function checkServerMessage(value: unknown): DecodeResult<ServerMessage> {
  return check(value, $ServerMessage);
}

/** Checks an already parsed JSON value as a client frame; see `checkServerMessage`. */
export function checkClientMessage(value: unknown): DecodeResult<ClientMessage> {
  return check(value, $ClientMessage);
}

/**
 * Checks `v`: `undefined` when it fits, otherwise what went wrong, with a pointer relative to
 * `v`. Containers prefix their segment on the way out, so no pointer is built for a valid frame.
 */
type K = (v: unknown) => Bad | undefined;
interface Bad {
  pointer: string;
  expected: string;
  found: string;
}
type O = Record<string, unknown>;

/** The protocol's nesting limit (arrays and objects, counting the frame's own object). */
const MAX_DEPTH = @@MAX_DEPTH@@;
const TOO_DEEP = `at most ${MAX_DEPTH} levels of nested arrays and objects`;

function decode<T>(text: string, k: K): DecodeResult<T> {
  if (typeof text !== "string") return no(fail("a JSON text", text));
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return no(fail("a JSON text", null, `invalid JSON (${e instanceof Error ? e.message : String(e)})`));
  }
  // JSON.parse does not recurse, so the depth is checked on the value, far cheaper than on
  // the text; the text is scanned (as the Rust decoder does) only to say how deep it was.
  return no(tooDeep(value, 1) ? fail(TOO_DEEP, null, `${textDepth(text)} levels`) : k(value), value);
}

function check<T>(value: unknown, k: K): DecodeResult<T> {
  return no(tooDeep(value, 1) ? fail(TOO_DEEP, null, "a deeper value") : k(value), value);
}

/** Whether `v`, at depth `d`, holds arrays or objects deeper than the limit. */
function tooDeep(v: unknown, d: number): boolean {
  if (typeof v !== "object" || v === null) return false;
  if (d > MAX_DEPTH) return true;
  for (const key in v) if (tooDeep((v as O)[key], d + 1)) return true;
  return false;
}

/** How deeply `text` nests arrays and objects outside strings. */
function textDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  for (let i = 0, s = false; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (s) {
      if (c === 92) i++;
      else if (c === 34) s = false;
    } else if (c === 34) s = true;
    else if (c === 91 || c === 123) deepest = Math.max(deepest, ++depth);
    else if ((c === 93 || c === 125) && depth > 0) depth--;
  }
  return deepest;
}

/** The result for `bad` (none: `value` is a `T`). */
function no<T>(bad: Bad | undefined, value?: unknown): DecodeResult<T> {
  if (!bad) return { ok: true, value: value as T };
  const { pointer, expected, found } = bad;
  return { ok: false, error: { pointer, expected, message: `at ${pointer === "" ? "the frame" : pointer}: expected ${expected}, found ${found}` } };
}

function show(v: unknown): string {
  switch (typeof v) {
    case "string":
      return v.length > 60 ? `${JSON.stringify(v.slice(0, 60))}…` : JSON.stringify(v);
    case "number":
    case "boolean":
      return String(v);
    case "undefined":
      return "nothing";
    case "object":
      return v === null ? "null" : Array.isArray(v) ? "an array" : isObject(v) ? "an object" : `a ${Object.prototype.toString.call(v).slice(8, -1)}`;
    default:
      return `a ${typeof v}`;
  }
}

function fail(expected: string, v: unknown, found = show(v)): Bad {
  return { pointer: "", expected, found };
}

/** `bad`, which happened at `key` of the value checked: its pointer gains the segment. */
function under(bad: Bad | undefined, key: string | number): Bad | undefined {
  if (bad) {
    const segment = typeof key === "number" ? key : key.replace(/~/g, "~0").replace(/\//g, "~1");
    bad.pointer = `/${segment}${bad.pointer}`;
  }
  return bad;
}

const isObject = (v: unknown): v is O =>
  typeof v === "object" && v !== null && (Object.getPrototypeOf(v) === Object.prototype || Object.prototype.toString.call(v) === "[object Object]");

const quoted = (names: readonly unknown[]): string => names.map((n) => JSON.stringify(n)).join(", ");

const ok: K = () => undefined;
const nul: K = (v) => (v === null ? undefined : fail("null", v));
const bool: K = (v) => (typeof v === "boolean" ? undefined : fail("a boolean", v));
const re = /* @__NO_SIDE_EFFECTS__ */ (source: string): RegExp => new RegExp(source, "u");

/** A string of `lo` to `hi` code points (as JSON Schema counts), matching `pattern`. */
/* @__NO_SIDE_EFFECTS__ */ function str(lo: number, hi: number, pattern?: RegExp, dateTime?: boolean): K {
  const sized = lo > 0 || hi < Infinity;
  const what = `${dateTime ? "an RFC 3339 date-time" : "a string"}${sized ? ` of ${lo} to ${hi} characters` : ""}${pattern ? ` matching ${pattern.source}` : ""}`;
  return (v) => {
    if (typeof v !== "string") return fail(what, v);
    // UTF-16 length n holds n/2 to n code points: count them only when that range is not inside.
    if (sized && (v.length > hi || v.length < 2 * lo)) {
      const n = [...v].length;
      if (n < lo || n > hi) return fail(what, v, `${n} characters`);
    }
    if (pattern && !pattern.test(v)) return fail(what, v);
    if (dateTime && !isDateTime(v)) return fail(what, v, `${show(v)}, which is not a valid date and time`);
    return undefined;
  };
}
const text = str(0, Infinity);

const DATE_TIME = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(?:Z|([+-])(\d\d):(\d\d))$/i;

/** JSON Schema's `date-time` format (RFC 3339): real dates, leap seconds only at 23:59 UTC. */
function isDateTime(s: string): boolean {
  const m = DATE_TIME.exec(s);
  if (!m) return false;
  const [y, mo, d, h, mi, se] = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])];
  const oh = Number(m[8] ?? 0);
  const om = Number(m[9] ?? 0);
  const days = mo === 2 ? (y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28) : 30 + ((mo + (mo >> 3)) & 1);
  if (mo < 1 || mo > 12 || d < 1 || d > days || h > 23 || mi > 59 || se > 60 || oh > 23 || om > 59) return false;
  const utc = (h * 60 + mi - (m[7] === "-" ? -1 : 1) * (oh * 60 + om) + 1440) % 1440;
  return se < 60 || utc === 1439;
}

/** A finite number (an integer when `int`) in `lo..=hi`; `80.0` is the integer 80. */
/* @__NO_SIDE_EFFECTS__ */ function num(lo: number, hi: number, int: boolean): K {
  const what = `${int ? "an integer" : "a number"}${lo > -Infinity || hi < Infinity ? ` in ${lo}..=${hi}` : ""}`;
  return (v) =>
    typeof v === "number" && (int ? Number.isInteger(v) : Number.isFinite(v)) && v >= lo && v <= hi
      ? undefined
      : fail(what, v);
}

/** One of these constants. */
/* @__NO_SIDE_EFFECTS__ */ function en(values: readonly unknown[]): K {
  const what = values.length === 1 ? quoted(values) : `one of ${quoted(values)}`;
  return (v) => (values.includes(v) ? undefined : fail(what, v));
}

/** An array of at least `min` items, each checked by `item`. */
/* @__NO_SIDE_EFFECTS__ */ function arr(item: K, min = 0): K {
  const what = min > 0 ? `an array of at least ${min} item${min > 1 ? "s" : ""}` : "an array";
  return (v) => {
    if (!Array.isArray(v)) return fail(what, v);
    if (v.length < min) return fail(what, v, `${v.length} items`);
    for (let i = 0; i < v.length; i++) {
      const bad = item(v[i]);
      if (bad) return under(bad, i);
    }
    return undefined;
  };
}

/**
 * An object with `props` (each checked by its checker), the `req`uired ones present, any other
 * field checked by `extra` (`null`: refused), and each field of `deps` present only together
 * with the fields it names.
 */
/* @__NO_SIDE_EFFECTS__ */ function obj(props: Readonly<Record<string, K>>, req: readonly string[], extra: K | null, deps: Readonly<Record<string, readonly string[]>> = {}): K {
  const names = Object.keys(props);
  const known = names.length > 0 ? `only the fields ${names.join(", ")}` : "no fields";
  return (v) => {
    if (!isObject(v)) return fail("an object", v);
    for (const key of Object.keys(v)) {
      const k = Object.hasOwn(props, key) ? props[key] : extra;
      const bad = k ? k(v[key]) : fail(known, v[key], `an unknown field ${JSON.stringify(key)}`);
      if (bad) return under(bad, key);
    }
    for (const key of req) {
      if (!Object.hasOwn(v, key)) return fail(`the field ${JSON.stringify(key)}`, v, "an object without it");
    }
    for (const [key, needs] of Object.entries(deps)) {
      for (const need of needs) {
        if (Object.hasOwn(v, key) && !Object.hasOwn(v, need)) {
          return fail(`the field ${JSON.stringify(need)} together with ${JSON.stringify(key)}`, v, `${JSON.stringify(key)} alone`);
        }
      }
    }
    return undefined;
  };
}

/** An object whose string field `tag` picks the checker of the whole object. */
/* @__NO_SIDE_EFFECTS__ */ function tagged(tag: string, branches: Readonly<Record<string, K>>): K {
  const what = `one of ${quoted(Object.keys(branches))}`;
  return (v) => {
    if (!isObject(v)) return fail(`an object with a ${JSON.stringify(tag)}`, v);
    const t = v[tag];
    const k = typeof t === "string" && Object.hasOwn(branches, t) ? branches[t] : undefined;
    return k ? k(v) : under(fail(what, t), tag);
  };
}

type JsonType = "null" | "boolean" | "number" | "string" | "array" | "object";

/** A value checked by the checker of its JSON type; other types are refused. */
/* @__NO_SIDE_EFFECTS__ */ function byType(table: Readonly<Partial<Record<JsonType, K>>>): K {
  const names: Record<JsonType, string> = { null: "null", boolean: "a boolean", number: "a number", string: "a string", array: "an array", object: "an object" };
  const list = Object.keys(table).map((t) => names[t as JsonType]);
  const what = list.length > 1 ? `${list.slice(0, -1).join(", ")} or ${String(list[list.length - 1])}` : String(list[0]);
  return (v) => {
    const t = v === null ? "null" : Array.isArray(v) ? "array" : isObject(v) ? "object" : typeof v;
    const k = Object.hasOwn(table, t) ? table[t as JsonType] : undefined;
    return k ? k(v) : fail(what, v);
  };
}

/**
 * `frame`, then the payload rules of the schema's `allOf`: for a frame whose `tag` has rules,
 * `container.target` is checked by the checker of each pattern `container.selector` matches,
 * and a selector that matches none is refused (`unknown` says what was expected).
 */
/* @__NO_SIDE_EFFECTS__ */ function byTopic(frame: K, tag: string, container: string, selector: string, target: string, rules: Readonly<Record<string, readonly (readonly [RegExp, K])[]>>, unknown: string): K {
  return (v) => {
    const bad = frame(v);
    if (bad) return bad;
    const t = (v as O)[tag];
    const list = typeof t === "string" && Object.hasOwn(rules, t) ? rules[t] : undefined;
    const data = (v as O)[container];
    if (!list || !isObject(data)) return undefined;
    const topic = data[selector];
    if (typeof topic !== "string") return undefined;
    let matched = false;
    for (const [pattern, k] of list) {
      if (!pattern.test(topic)) continue;
      matched = true;
      const found = Object.hasOwn(data, target) ? under(k(data[target]), target) : undefined;
      if (found) return under(found, container);
    }
    return matched ? undefined : under(under(fail(unknown, topic), selector), container);
  };
}
"#;

/// Generates `generated/typescript/decode.ts` from the direction schemas of this run.
pub fn generate() -> Result<Vec<GeneratedFile>> {
    let schemas = crate::schema::generate()?;
    let mut roots = Vec::new();
    for direction in DIRECTIONS {
        let file = schemas
            .iter()
            .find(|f| f.path() == direction.file)
            .ok_or_else(|| shape(direction.file, "the schema generator no longer writes it"))?;
        let value: Value = serde_json::from_str(file.contents()).map_err(|source| Error::Json {
            what: file.path().to_owned(),
            source,
        })?;
        roots.push((direction, value));
    }
    let defs = merged_defs(&roots)?;
    let compiled = compile_all(&roots, &defs)?;
    let mut out = String::from(
        "/**\n * Decoders and type guards for every frame, compiled from the JSON Schemas in\n * generated/schema (the same rules, without a schema library): field types, required and\n * unknown fields, ranges, string lengths and patterns, payloads by topic family, JSON-safe\n * numbers and the nesting limit. Errors carry a JSON pointer and what was expected.\n */\n\n",
    );
    out.push_str(&RUNTIME.replace("@@MAX_DEPTH@@", &MAX_NESTING_DEPTH.to_string()));
    out.push_str("\n// Compiled from the schemas' $defs and roots.\n");
    out.push_str(&compiled);
    Ok(vec![GeneratedFile::new(
        "generated/typescript/decode.ts",
        Body::text(out),
    )?])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compile_one(schema: Value) -> Result<String> {
        let defs = BTreeMap::new();
        Compiler::new(&defs, HashMap::new()).compile(&schema, "#")
    }

    #[test]
    fn a_keyword_the_compiler_does_not_know_fails_generation() {
        for schema in [
            json!({"type": "integer", "minimum": 0, "maximum": 9, "multipleOf": 3}),
            json!({"type": "string", "format": "email"}),
            json!({"type": "array", "items": {"type": "string"}, "uniqueItems": true}),
            json!({"type": "object", "patternProperties": {"^x": {}}}),
            json!({"not": {"type": "null"}}),
        ] {
            let err = compile_one(schema.clone()).expect_err("an unsupported keyword");
            assert!(
                err.to_string().contains("decode.ts"),
                "{schema}: the error names the generator: {err}"
            );
        }
    }

    #[test]
    fn constraints_compile_to_the_shared_factories() {
        let cases = [
            (json!({"type": "string"}), "text"),
            (
                json!({"type": "string", "minLength": 1, "maxLength": 64}),
                "str(1, 64)",
            ),
            (
                json!({"type": "integer", "minimum": 0, "maximum": 65535, "format": "uint16"}),
                "num(0, 65535, true)",
            ),
            (json!({"enum": ["a", "b"]}), "en([\"a\", \"b\"])"),
            (
                json!({"type": "array", "items": {"type": "boolean"}, "minItems": 1}),
                "arr(bool, 1)",
            ),
            (
                json!({"type": "object", "properties": {"a-b": {"type": "null"}}, "required": ["a-b"], "additionalProperties": false}),
                "obj({ \"a-b\": nul }, [\"a-b\"], null)",
            ),
        ];
        for (schema, expected) in cases {
            assert_eq!(compile_one(schema.clone()).unwrap(), expected, "{schema}");
        }
    }
}
