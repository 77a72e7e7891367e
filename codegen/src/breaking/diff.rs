//! The structural walk: two schemas side by side, `$ref`s resolved into `$defs`, each
//! difference recorded as a [`Found`] with whether it narrows or widens what is accepted.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::rules::Rule;
use super::{BreakingError, Side};

/// One difference, before a direction gives it a verdict.
#[derive(Debug, Clone)]
pub(super) struct Found {
    pub rule: Rule,
    /// The JSON pointer of the schema node, relative to the message type or family.
    pub pointer: String,
    pub detail: String,
    /// Some value the old schema accepted is rejected by the new one.
    pub narrows: bool,
    /// Some value the new schema accepts was rejected by the old one.
    pub widens: bool,
}

/// One schema document: its file name (for errors) and its root (for `$ref`s).
#[derive(Debug, Clone, Copy)]
pub(super) struct Doc<'a> {
    pub side: &'a Side,
    pub file: &'a str,
    pub root: &'a Value,
}

impl Doc<'_> {
    pub fn shape(&self, pointer: &str, expected: impl Into<String>) -> BreakingError {
        BreakingError::Shape {
            side: self.side.to_string(),
            file: self.file.to_owned(),
            pointer: pointer.to_owned(),
            expected: expected.into(),
        }
    }
}

/// A schema node with its `$ref` chain resolved: the target's keywords, overlaid by the
/// referring node's own (2020-12 applies `$ref` siblings too), and the names of the defs
/// passed through.
struct Node {
    map: Map<String, Value>,
    refs: Vec<String>,
    /// `true`/`{}`-free schemas are objects; `false` accepts nothing.
    accepts_nothing: bool,
}

const LOWER_BOUNDS: &[&str] = &[
    "minimum",
    "exclusiveMinimum",
    "minLength",
    "minItems",
    "minProperties",
];
const UPPER_BOUNDS: &[&str] = &[
    "maximum",
    "exclusiveMaximum",
    "maxLength",
    "maxItems",
    "maxProperties",
];
/// Keywords that constrain nothing.
const ANNOTATIONS: &[&str] = &[
    "description",
    "title",
    "$comment",
    "default",
    "examples",
    "deprecated",
];
const ALL_TYPES: &[&str] = &[
    "null", "boolean", "object", "array", "number", "string", "integer",
];

/// Walks two schemas in parallel, collecting differences.
pub(super) struct Walker<'a> {
    pub old: Doc<'a>,
    pub new: Doc<'a>,
    pub found: Vec<Found>,
    /// The `$ref` pairs on the current path, so recursive defs end.
    stack: Vec<(Vec<String>, Vec<String>)>,
}

impl<'a> Walker<'a> {
    pub fn new(old: Doc<'a>, new: Doc<'a>) -> Self {
        Walker {
            old,
            new,
            found: Vec::new(),
            stack: Vec::new(),
        }
    }

    fn push(&mut self, rule: Rule, pointer: &str, detail: String, narrows: bool, widens: bool) {
        self.found.push(Found {
            rule,
            pointer: pointer.to_owned(),
            detail,
            narrows,
            widens,
        });
    }

    /// Compares the node `old` with `new`, reporting at `pointer` (relative to the message
    /// type or family; errors name it too).
    pub fn compare(
        &mut self,
        old: &Value,
        new: &Value,
        pointer: &str,
    ) -> Result<(), BreakingError> {
        let old_node = resolve(self.old, old, pointer)?;
        let new_node = resolve(self.new, new, pointer)?;
        let pair = (old_node.refs.clone(), new_node.refs.clone());
        if !pair.0.is_empty() && self.stack.contains(&pair) {
            return Ok(());
        }
        self.stack.push(pair);
        let result = self.compare_nodes(&old_node, &new_node, pointer);
        self.stack.pop();
        result
    }

    fn compare_nodes(
        &mut self,
        old: &Node,
        new: &Node,
        pointer: &str,
    ) -> Result<(), BreakingError> {
        if old.accepts_nothing || new.accepts_nothing {
            if old.accepts_nothing != new.accepts_nothing {
                let (narrows, widens) = (new.accepts_nothing, old.accepts_nothing);
                self.push(
                    Rule::TypeChanged,
                    pointer,
                    format!(
                        "schema {}",
                        if narrows {
                            "now accepts nothing"
                        } else {
                            "no longer accepts nothing"
                        }
                    ),
                    narrows,
                    widens,
                );
            }
            return Ok(());
        }
        let (old_union, new_union) = (union_keyword(old), union_keyword(new));
        match (old_union, new_union) {
            (Some(keyword), None) => {
                return self.compare_with_union(new, old, keyword, true, pointer);
            }
            (None, Some(keyword)) => {
                return self.compare_with_union(old, new, keyword, false, pointer);
            }
            _ => {}
        }
        self.compare_types(old, new, pointer);
        let old_values = values(old);
        let new_values = values(new);
        match (&old_values, &new_values) {
            (Some(a), Some(b)) => {
                for value in a.iter().filter(|v| !b.contains(v)) {
                    self.push(
                        Rule::EnumValueRemoved,
                        pointer,
                        format!("value {value} removed"),
                        true,
                        false,
                    );
                }
                for value in b.iter().filter(|v| !a.contains(v)) {
                    self.push(
                        Rule::EnumValueAdded,
                        pointer,
                        format!("value {value} added"),
                        false,
                        true,
                    );
                }
                return Ok(());
            }
            (None, Some(b)) => {
                self.push(
                    Rule::ValuesRestricted,
                    pointer,
                    format!("now only {}", list(b)),
                    true,
                    false,
                );
                return Ok(());
            }
            (Some(a), None) => {
                self.push(
                    Rule::ValuesUnrestricted,
                    pointer,
                    format!("was only {}", list(a)),
                    false,
                    true,
                );
            }
            (None, None) => {}
        }
        self.compare_bounds(old, new, pointer);
        self.compare_text(
            "pattern",
            Rule::PatternAdded,
            Rule::PatternRemoved,
            Rule::PatternChanged,
            old,
            new,
            pointer,
        );
        self.compare_text(
            "format",
            Rule::FormatAdded,
            Rule::FormatRemoved,
            Rule::FormatChanged,
            old,
            new,
            pointer,
        );
        self.compare_object(old, new, pointer)?;
        self.compare_dependencies(old, new, pointer)?;
        self.compare_subschema(old, new, "items", pointer)?;
        self.compare_unions(old, new, pointer)
    }

    fn compare_types(&mut self, old: &Node, new: &Node, pointer: &str) {
        let (a, b) = (types(&old.map), types(&new.map));
        let covers = |set: &BTreeSet<String>, t: &str| {
            set.contains(t) || (t == "integer" && set.contains("number"))
        };
        let lost: Vec<&String> = a.iter().filter(|t| !covers(&b, t)).collect();
        let gained: Vec<&String> = b.iter().filter(|t| !covers(&a, t)).collect();
        let show = |ts: &[&String]| ts.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ");
        match (lost.is_empty(), gained.is_empty()) {
            (true, true) => {}
            (false, true) => self.push(
                Rule::TypeNarrowed,
                pointer,
                format!("no longer {}", show(&lost)),
                true,
                false,
            ),
            (true, false) => self.push(
                Rule::TypeWidened,
                pointer,
                format!("now also {}", show(&gained)),
                false,
                true,
            ),
            (false, false) => self.push(
                Rule::TypeChanged,
                pointer,
                format!("no longer {}, now {}", show(&lost), show(&gained)),
                true,
                true,
            ),
        }
    }

    fn compare_bounds(&mut self, old: &Node, new: &Node, pointer: &str) {
        for (keywords, lower) in [(LOWER_BOUNDS, true), (UPPER_BOUNDS, false)] {
            for keyword in keywords {
                let a = old.map.get(*keyword).and_then(Value::as_f64);
                let b = new.map.get(*keyword).and_then(Value::as_f64);
                let tightened = match (a, b) {
                    (None, None) => continue,
                    (Some(x), Some(y)) if x == y => continue,
                    (None, Some(_)) => true,
                    (Some(_), None) => false,
                    (Some(x), Some(y)) => (y > x) == lower,
                };
                let show = |v: Option<f64>| v.map_or_else(|| "none".to_owned(), |v| v.to_string());
                let detail = format!("{keyword} {} → {}", show(a), show(b));
                if tightened {
                    self.push(Rule::BoundTightened, pointer, detail, true, false);
                } else {
                    self.push(Rule::BoundLoosened, pointer, detail, false, true);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn compare_text(
        &mut self,
        keyword: &str,
        added: Rule,
        removed: Rule,
        changed: Rule,
        old: &Node,
        new: &Node,
        pointer: &str,
    ) {
        let a = old.map.get(keyword).and_then(Value::as_str);
        let b = new.map.get(keyword).and_then(Value::as_str);
        match (a, b) {
            (None, None) => {}
            (Some(x), Some(y)) if x == y => {}
            (None, Some(y)) => self.push(
                added,
                pointer,
                format!("{keyword} {y:?} added"),
                true,
                false,
            ),
            (Some(x), None) => self.push(
                removed,
                pointer,
                format!("{keyword} {x:?} removed"),
                false,
                true,
            ),
            (Some(x), Some(y)) => self.push(
                changed,
                pointer,
                format!("{keyword} {x:?} → {y:?}"),
                true,
                true,
            ),
        }
    }

    fn compare_object(
        &mut self,
        old: &Node,
        new: &Node,
        pointer: &str,
    ) -> Result<(), BreakingError> {
        let empty = Map::new();
        let old_props = properties(self.old, &old.map, pointer)?.unwrap_or(&empty);
        let new_props = properties(self.new, &new.map, pointer)?.unwrap_or(&empty);
        let old_required = required(self.old, &old.map, pointer)?;
        let new_required = required(self.new, &new.map, pointer)?;
        let old_closed = closed(&old.map);
        let new_closed = closed(&new.map);
        for (name, schema) in old_props {
            let at = format!("{pointer}/properties/{}", escape(name));
            let was_required = old_required.contains(name);
            match new_props.get(name) {
                None => {
                    let rule = if was_required {
                        Rule::RequiredFieldRemoved
                    } else {
                        Rule::FieldRemoved
                    };
                    // A closed object now rejects the field; an old reader that required it
                    // rejects every new value without it.
                    self.push(
                        rule,
                        &at,
                        format!("field `{name}` removed"),
                        new_closed,
                        was_required,
                    );
                }
                Some(new_schema) => {
                    let now_required = new_required.contains(name);
                    if now_required && !was_required {
                        self.push(
                            Rule::FieldNowRequired,
                            &at,
                            format!("field `{name}` now required"),
                            true,
                            false,
                        );
                    } else if was_required && !now_required {
                        self.push(
                            Rule::FieldNowOptional,
                            &at,
                            format!("field `{name}` now optional"),
                            false,
                            true,
                        );
                    }
                    self.compare(schema, new_schema, &at)?;
                }
            }
        }
        for name in new_props
            .keys()
            .filter(|name| !old_props.contains_key(*name))
        {
            let at = format!("{pointer}/properties/{}", escape(name));
            if new_required.contains(name) {
                self.push(
                    Rule::RequiredFieldAdded,
                    &at,
                    format!("required field `{name}` added"),
                    true,
                    old_closed,
                );
            } else {
                self.push(
                    Rule::FieldAdded,
                    &at,
                    format!("optional field `{name}` added"),
                    false,
                    old_closed,
                );
            }
        }
        // Required names without a property schema (allowed by JSON Schema).
        for name in new_required.difference(&old_required) {
            if !new_props.contains_key(name) && !old_props.contains_key(name) {
                let at = format!("{pointer}/required");
                self.push(
                    Rule::FieldNowRequired,
                    &at,
                    format!("field `{name}` now required"),
                    true,
                    false,
                );
            }
        }
        match (old_closed, new_closed) {
            (false, true) => self.push(
                Rule::AdditionalPropertiesClosed,
                &format!("{pointer}/additionalProperties"),
                "unknown fields now rejected".to_owned(),
                true,
                false,
            ),
            (true, false) => self.push(
                Rule::AdditionalPropertiesOpened,
                &format!("{pointer}/additionalProperties"),
                "unknown fields now accepted".to_owned(),
                false,
                true,
            ),
            _ => {}
        }
        let schema = |map: &Map<String, Value>| {
            map.get("additionalProperties")
                .filter(|v| v.is_object())
                .is_some()
        };
        if schema(&old.map) || schema(&new.map) {
            self.compare_subschema(old, new, "additionalProperties", pointer)?;
        }
        Ok(())
    }

    fn compare_dependencies(
        &mut self,
        old: &Node,
        new: &Node,
        pointer: &str,
    ) -> Result<(), BreakingError> {
        let at = format!("{pointer}/dependentRequired");
        let a = dependencies(self.old, &old.map, &at)?;
        let b = dependencies(self.new, &new.map, &at)?;
        for (key, names) in &b {
            let before = a
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, n)| n.clone())
                .unwrap_or_default();
            for name in names.difference(&before) {
                self.push(
                    Rule::DependencyAdded,
                    &at,
                    format!("`{key}` now needs `{name}`"),
                    true,
                    false,
                );
            }
        }
        for (key, names) in &a {
            let after = b
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, n)| n.clone())
                .unwrap_or_default();
            for name in names.difference(&after) {
                self.push(
                    Rule::DependencyRemoved,
                    &at,
                    format!("`{key}` no longer needs `{name}`"),
                    false,
                    true,
                );
            }
        }
        Ok(())
    }

    /// `items` or an `additionalProperties` schema: present on both sides, compared; on one
    /// side only, a constraint added or lifted.
    fn compare_subschema(
        &mut self,
        old: &Node,
        new: &Node,
        keyword: &str,
        pointer: &str,
    ) -> Result<(), BreakingError> {
        let at = format!("{pointer}/{keyword}");
        let pick = |map: &Map<String, Value>| map.get(keyword).filter(|v| v.is_object()).cloned();
        match (pick(&old.map), pick(&new.map)) {
            (None, None) => Ok(()),
            (Some(a), Some(b)) => self.compare(&a, &b, &at),
            (None, Some(_)) => {
                // `additionalProperties: false` → schema is an opening, reported above.
                if keyword == "additionalProperties" && closed(&old.map) {
                    return Ok(());
                }
                self.push(
                    Rule::SubschemaAdded,
                    &at,
                    format!("`{keyword}` schema added"),
                    true,
                    false,
                );
                Ok(())
            }
            (Some(_), None) => {
                if keyword == "additionalProperties" && closed(&new.map) {
                    return Ok(());
                }
                self.push(
                    Rule::SubschemaRemoved,
                    &at,
                    format!("`{keyword}` schema removed"),
                    false,
                    true,
                );
                Ok(())
            }
        }
    }

    /// One side is a union (`keyword`), the other a plain schema `single`: the branch that
    /// is the same variant as `single` (by [`branch_key`]) is compared with it, every other
    /// branch is a variant removed (`union_is_old`) or added. No branch of that variant: the
    /// union replaced the schema, reported once as `UNION_CHANGED`.
    fn compare_with_union(
        &mut self,
        single: &Node,
        union: &Node,
        keyword: &str,
        union_is_old: bool,
        pointer: &str,
    ) -> Result<(), BreakingError> {
        let doc = if union_is_old { self.old } else { self.new };
        let branches = branches(doc, &union.map, keyword, pointer)?.unwrap_or_default();
        let key = branch_key(single);
        let Some(position) = branches.iter().position(|(k, _)| Some(k) == key.as_ref()) else {
            let detail = format!(
                "`{keyword}` {}",
                if union_is_old { "removed" } else { "added" }
            );
            // A schema without constraints (`{}`) accepts everything: a union in its place
            // only narrows, and one replaced by it only widens.
            let free = single.map.keys().all(|k| ANNOTATIONS.contains(&k.as_str()));
            let (narrows, widens) = match (free, union_is_old) {
                (true, false) => (true, false),
                (true, true) => (false, true),
                (false, _) => (true, true),
            };
            self.push(
                Rule::UnionChanged,
                &format!("{pointer}/{keyword}"),
                detail,
                narrows,
                widens,
            );
            return Ok(());
        };
        let single_value = Value::Object(single.map.clone());
        for (index, (key, (at_index, branch))) in branches.iter().enumerate() {
            let at = format!("{pointer}/{keyword}/{at_index}");
            if index == position {
                if union_is_old {
                    self.compare(branch, &single_value, &at)?;
                } else {
                    self.compare(&single_value, branch, &at)?;
                }
            } else if union_is_old {
                self.push(
                    Rule::VariantRemoved,
                    &at,
                    format!("variant {key} removed"),
                    true,
                    false,
                );
            } else {
                self.push(
                    Rule::VariantAdded,
                    &at,
                    format!("variant {key} added"),
                    false,
                    true,
                );
            }
        }
        Ok(())
    }

    fn compare_unions(
        &mut self,
        old: &Node,
        new: &Node,
        pointer: &str,
    ) -> Result<(), BreakingError> {
        for keyword in ["oneOf", "anyOf"] {
            let a = branches(self.old, &old.map, keyword, pointer)?;
            let b = branches(self.new, &new.map, keyword, pointer)?;
            match (a, b) {
                (None, None) => {}
                (Some(_), None) | (None, Some(_)) => self.push(
                    Rule::UnionChanged,
                    &format!("{pointer}/{keyword}"),
                    format!(
                        "`{keyword}` {}",
                        if new.map.contains_key(keyword) {
                            "added"
                        } else {
                            "removed"
                        }
                    ),
                    true,
                    true,
                ),
                (Some(a), Some(b)) => {
                    for (key, (index, schema)) in &a {
                        let at = format!("{pointer}/{keyword}/{index}");
                        match b.iter().find(|(k, _)| k == key) {
                            None => self.push(
                                Rule::VariantRemoved,
                                &at,
                                format!("variant {key} removed"),
                                true,
                                false,
                            ),
                            Some((_, (new_index, new_schema))) => {
                                let new_at = format!("{pointer}/{keyword}/{new_index}");
                                self.compare(schema, new_schema, &new_at)?;
                            }
                        }
                    }
                    for (key, (index, _)) in
                        b.iter().filter(|(k, _)| !a.iter().any(|(o, _)| o == k))
                    {
                        let at = format!("{pointer}/{keyword}/{index}");
                        self.push(
                            Rule::VariantAdded,
                            &at,
                            format!("variant {key} added"),
                            false,
                            true,
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

/// The union keyword of a node that is a union of schemas (not of consts, which is a value
/// set).
fn union_keyword(node: &Node) -> Option<&'static str> {
    if values(node).is_some() {
        return None;
    }
    ["oneOf", "anyOf"]
        .into_iter()
        .find(|k| node.map.contains_key(*k))
}

fn list(values: &[Value]) -> String {
    values
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Escapes a property name as a JSON pointer token (RFC 6901).
pub(super) fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

fn resolve(doc: Doc<'_>, value: &Value, at: &str) -> Result<Node, BreakingError> {
    let mut map = Map::new();
    let mut refs = Vec::new();
    let mut current = value;
    loop {
        let object = match current {
            Value::Bool(true) => break,
            Value::Bool(false) => {
                return Ok(Node {
                    map,
                    refs,
                    accepts_nothing: true,
                });
            }
            Value::Object(object) => object,
            _ => return Err(doc.shape(at, "a schema (an object or a boolean)")),
        };
        for (key, v) in object {
            if key != "$ref" && !map.contains_key(key) {
                map.insert(key.clone(), v.clone());
            }
        }
        let Some(reference) = object.get("$ref") else {
            break;
        };
        let Some(name) = reference.as_str().and_then(|r| r.strip_prefix("#/$defs/")) else {
            return Err(doc.shape(
                at,
                format!("a `$ref` of the form \"#/$defs/<name>\", not {reference}"),
            ));
        };
        if refs.iter().any(|r| r == name) {
            return Err(doc.shape(
                at,
                format!("a `$ref` chain that ends, not a loop through {name:?}"),
            ));
        }
        refs.push(name.to_owned());
        current = doc
            .root
            .get("$defs")
            .and_then(|defs| defs.get(name))
            .ok_or_else(|| doc.shape(at, format!("a `$defs` entry {name:?} for its `$ref`")))?;
    }
    Ok(Node {
        map,
        refs,
        accepts_nothing: false,
    })
}

/// The set of values a node is restricted to (`const`, `enum`, or a `oneOf`/`anyOf` whose
/// every branch is a `const`), or `None`.
fn values(node: &Node) -> Option<Vec<Value>> {
    if let Some(value) = node.map.get("const") {
        return Some(vec![value.clone()]);
    }
    if let Some(Value::Array(values)) = node.map.get("enum") {
        return Some(values.clone());
    }
    for keyword in ["oneOf", "anyOf"] {
        if let Some(Value::Array(branches)) = node.map.get(keyword) {
            let consts: Option<Vec<Value>> = branches
                .iter()
                .map(|b| {
                    b.as_object()
                        .filter(|b| !b.contains_key("$ref"))
                        .and_then(|b| b.get("const"))
                        .cloned()
                })
                .collect();
            if let Some(consts) = consts.filter(|c| !c.is_empty()) {
                return Some(consts);
            }
        }
    }
    None
}

fn types(map: &Map<String, Value>) -> BTreeSet<String> {
    let all = || ALL_TYPES.iter().map(|t| (*t).to_owned()).collect();
    match map.get("type") {
        Some(Value::String(t)) => BTreeSet::from([t.clone()]),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => all(),
    }
}

fn closed(map: &Map<String, Value>) -> bool {
    matches!(
        map.get("additionalProperties"),
        Some(Value::Bool(false)) | Some(Value::Object(_))
    )
}

fn properties<'m>(
    doc: Doc<'_>,
    map: &'m Map<String, Value>,
    pointer: &str,
) -> Result<Option<&'m Map<String, Value>>, BreakingError> {
    match map.get("properties") {
        None => Ok(None),
        Some(Value::Object(props)) => Ok(Some(props)),
        Some(_) => Err(doc.shape(
            &format!("{pointer}/properties"),
            "`properties` to be an object",
        )),
    }
}

fn required(
    doc: Doc<'_>,
    map: &Map<String, Value>,
    pointer: &str,
) -> Result<BTreeSet<String>, BreakingError> {
    match map.get("required") {
        None => Ok(BTreeSet::new()),
        Some(Value::Array(names)) => names
            .iter()
            .map(|n| n.as_str().map(str::to_owned))
            .collect::<Option<BTreeSet<_>>>()
            .ok_or_else(|| {
                doc.shape(
                    &format!("{pointer}/required"),
                    "`required` to be an array of strings",
                )
            }),
        Some(_) => Err(doc.shape(
            &format!("{pointer}/required"),
            "`required` to be an array of strings",
        )),
    }
}

fn dependencies(
    doc: Doc<'_>,
    map: &Map<String, Value>,
    at: &str,
) -> Result<Vec<(String, BTreeSet<String>)>, BreakingError> {
    let Some(value) = map.get("dependentRequired") else {
        return Ok(Vec::new());
    };
    let expected = || doc.shape(at, "`dependentRequired` to map names to arrays of strings");
    let object = value.as_object().ok_or_else(expected)?;
    object
        .iter()
        .map(|(key, names)| {
            let names = names
                .as_array()
                .and_then(|ns| {
                    ns.iter()
                        .map(|n| n.as_str().map(str::to_owned))
                        .collect::<Option<BTreeSet<_>>>()
                })
                .ok_or_else(expected)?;
            Ok((key.clone(), names))
        })
        .collect()
}

/// The branches of a union, each keyed by what identifies it across versions: its `type`
/// property's const (a message or tagged variant), else its `$ref` name, else its `type`
/// set, else its index.
#[allow(clippy::type_complexity)]
fn branches(
    doc: Doc<'_>,
    map: &Map<String, Value>,
    keyword: &str,
    pointer: &str,
) -> Result<Option<Vec<(String, (usize, Value))>>, BreakingError> {
    let Some(value) = map.get(keyword) else {
        return Ok(None);
    };
    let at = format!("{pointer}/{keyword}");
    let items = value
        .as_array()
        .ok_or_else(|| doc.shape(&at, format!("`{keyword}` to be an array")))?;
    let mut out = Vec::new();
    for (index, branch) in items.iter().enumerate() {
        let resolved = resolve(doc, branch, &format!("{at}/{index}"))?;
        let key = branch_key(&resolved).unwrap_or_else(|| format!("#{index}"));
        out.push((key, (index, branch.clone())));
    }
    Ok(Some(out))
}

fn branch_key(node: &Node) -> Option<String> {
    if let Some(tag) = node
        .map
        .get("properties")
        .and_then(|p| p.get("type"))
        .and_then(|t| t.get("const"))
    {
        return Some(format!("type={tag}"));
    }
    if let Some(name) = node.refs.first() {
        return Some(format!("{name:?}"));
    }
    node.map.get("type").map(|t| format!("type {t}"))
}
