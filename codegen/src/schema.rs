//! JSON Schema draft 2020-12 for both directions and for every topic family.

use rtbus_protocol::catalog::{Family, FamilyVisitor, TopicFamily, visit_families};
use rtbus_protocol::{ClientMessage, ServerMessage};
use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value, json};

use crate::{Body, Error, GeneratedFile, Result};

/// The base of every schema `$id`.
pub const SCHEMA_BASE: &str = "https://rtbus.dev/schema/v1/";

/// The absolute `$id` of the schema at `relative` (e.g. `topics/sessions.state.schema.json`).
pub fn schema_id(relative: &str) -> String {
    format!("{SCHEMA_BASE}{relative}")
}

/// Which payload a frame type carries.
#[derive(Clone, Copy)]
pub(crate) enum PayloadKind {
    Snapshot,
    Event,
}

/// One family's payload schemas, generated into a shared generator's `$defs`.
pub(crate) struct FamilySchemas {
    pub(crate) family: Family,
    pub(crate) snapshot: Value,
    pub(crate) event: Value,
}

struct Collect<'a> {
    generator: &'a mut SchemaGenerator,
    out: Vec<FamilySchemas>,
}

impl FamilyVisitor for Collect<'_> {
    fn visit<F: TopicFamily>(&mut self, family: Family) {
        let snapshot = self.generator.subschema_for::<F::Snapshot>().to_value();
        let event = self.generator.subschema_for::<F::Event>().to_value();
        self.out.push(FamilySchemas {
            family,
            snapshot,
            event,
        });
    }
}

impl FamilySchemas {
    /// The family's schema of `kind`.
    pub(crate) fn payload(&self, kind: PayloadKind) -> &Value {
        match kind {
            PayloadKind::Snapshot => &self.snapshot,
            PayloadKind::Event => &self.event,
        }
    }
}

fn generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12().into_generator()
}

/// schemars lets every `Option` field hold `null`. On the rtbus wire an optional field is absent
/// or holds a value, never `null` (the decoder rejects it, so a client folding events and a
/// server building snapshots cannot disagree about it), so the schema says so too. A field whose
/// type itself admits `null` (a free-form `JsonValue`) keeps it.
pub(crate) fn forbid_null_for_optional(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let required: Vec<String> = map
                .get("required")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            if let Some(Value::Object(properties)) = map.get_mut("properties") {
                for (name, property) in properties.iter_mut() {
                    if !required.contains(name) {
                        strip_null(property);
                    }
                }
            }
            map.values_mut().for_each(forbid_null_for_optional);
        }
        Value::Array(items) => items.iter_mut().for_each(forbid_null_for_optional),
        _ => {}
    }
}

/// Removes the `null` alternative schemars adds for an `Option`: a `"null"` in a `type` array,
/// or a `{"type": "null"}` branch of an `anyOf` (which then collapses when one branch is left).
fn strip_null(schema: &mut Value) {
    let Value::Object(map) = schema else { return };
    if let Some(Value::Array(types)) = map.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            map.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(branches)) = map.get_mut("anyOf") {
        branches.retain(|b| b != &json!({"type": "null"}));
        if branches.len() == 1 {
            if let Some(Value::Object(only)) = branches.pop() {
                map.remove("anyOf");
                for (key, value) in only {
                    map.entry(key).or_insert(value);
                }
            }
        }
    }
}

pub(crate) fn families(generator: &mut SchemaGenerator) -> Vec<FamilySchemas> {
    let mut collect = Collect {
        generator,
        out: Vec::new(),
    };
    visit_families(&mut collect);
    collect.out
}

fn topic_regex(family: Family) -> String {
    family.shape().topic_regex(family.name())
}

/// `if` the frame has type `kind` and a topic of `family`, `then` its payload has `payload`.
///
/// Every subschema states the `type` its keywords apply to, although the frame schema already
/// requires it: ajv's default `strictTypes` refuses `properties`, `required` or `pattern`
/// without one, and the extra `type` never changes which frames validate.
pub(crate) fn payload_rule(frame_type: &str, family: Family, payload: &Value) -> Value {
    json!({
        "if": {
            "type": "object",
            "properties": {
                "type": { "const": frame_type },
                "data": {
                    "type": "object",
                    "properties": {
                        "topic": { "type": "string", "pattern": topic_regex(family) },
                    },
                    "required": ["topic"],
                },
            },
            "required": ["type", "data"],
        },
        "then": {
            "type": "object",
            "properties": {
                "data": { "type": "object", "properties": { "payload": payload } },
            },
        },
    })
}

/// `if` the frame has one of `frame_types`, `then` its topic belongs to some family (typed like
/// [`payload_rule`]).
pub(crate) fn known_family_rule(frame_types: &[&str], families: &[FamilySchemas]) -> Value {
    let patterns: Vec<Value> = families
        .iter()
        .map(|f| json!({ "type": "string", "pattern": topic_regex(f.family) }))
        .collect();
    json!({
        "if": {
            "type": "object",
            "properties": { "type": { "enum": frame_types } },
            "required": ["type"],
        },
        "then": {
            "type": "object",
            "properties": {
                "data": {
                    "type": "object",
                    "properties": { "topic": { "anyOf": patterns } },
                },
            },
        },
    })
}

fn direction_schema<T: JsonSchema>(
    file: &str,
    frames: &[(&str, PayloadKind)],
) -> Result<GeneratedFile> {
    let mut generator = generator();
    let root = generator.root_schema_for::<T>();
    let families = families(&mut generator);
    let mut root = into_object(root, file)?;
    let mut rules = Vec::new();
    let frame_types: Vec<&str> = frames.iter().map(|(t, _)| *t).collect();
    rules.push(known_family_rule(&frame_types, &families));
    for family in &families {
        for (frame_type, kind) in frames {
            rules.push(payload_rule(
                frame_type,
                family.family,
                family.payload(*kind),
            ));
        }
    }
    root.insert("allOf".into(), Value::Array(rules));
    // `root_schema_for` filled `$defs` before the families were visited; take them all now.
    let defs: Map<String, Value> = generator.take_definitions(true);
    root.insert("$defs".into(), Value::Object(defs));
    finish(root, file)
}

fn into_object(schema: Schema, file: &str) -> Result<Map<String, Value>> {
    match schema.to_value() {
        Value::Object(map) => Ok(map),
        other => Err(Error::SchemaShape(format!(
            "{file}: expected an object schema, got {other}"
        ))),
    }
}

fn finish(mut root: Map<String, Value>, file: &str) -> Result<GeneratedFile> {
    root.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    root.insert("$id".into(), json!(schema_id(file)));
    let mut root = Value::Object(root);
    forbid_null_for_optional(&mut root);
    make_portable(&mut root);
    check_integers(&root, file, "")?;
    GeneratedFile::new(format!("generated/schema/{file}"), Body::json(root))
}

/// The integer `format`s schemars writes (`uint16`, `int32`, `uint64`, …), with the range each
/// names. They are not JSON Schema formats: ajv refuses a schema that holds one (unless told
/// to ignore unknown formats) and other validators skip them, so a reader who relied on them
/// would check nothing.
const INTEGER_FORMATS: &[(&str, i128, i128)] = &[
    ("int8", i8::MIN as i128, i8::MAX as i128),
    ("int16", i16::MIN as i128, i16::MAX as i128),
    ("int32", i32::MIN as i128, i32::MAX as i128),
    ("int64", i64::MIN as i128, i64::MAX as i128),
    ("int", i64::MIN as i128, i64::MAX as i128),
    ("uint8", 0, u8::MAX as i128),
    ("uint16", 0, u16::MAX as i128),
    ("uint32", 0, u32::MAX as i128),
    ("uint64", 0, u64::MAX as i128),
    ("uint", 0, u64::MAX as i128),
];

/// Makes a schema schemars wrote portable to other validators (ajv with its default strict
/// options in particular), without changing which values it accepts:
///
/// - every integer `format` ([`INTEGER_FORMATS`]) is replaced by the `minimum`/`maximum` it
///   names, where schemars did not already state them (it does for 8- and 16-bit integers);
/// - a `type` list of several non-null types inside an `anyOf` (ajv's `strictTypes` refuses
///   union types) becomes one `anyOf` branch per type.
///
/// [`generate`] applies it to every schema it writes; `cargo xtask codegen` also applies it to
/// the conformance harness's transcript schema, so every file in `generated/schema/` compiles
/// under ajv. Bounds wider than ±(2^53−1) survive only in schemas outside the protocol: the
/// protocol's own schemas are refused by [`generate`] if any integer could exceed them.
pub fn make_portable(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let format = map.get("format").and_then(Value::as_str);
            if let Some(&(_, min, max)) = INTEGER_FORMATS.iter().find(|f| Some(f.0) == format) {
                map.entry("minimum").or_insert_with(|| integer(min));
                map.entry("maximum").or_insert_with(|| integer(max));
                map.remove("format");
            }
            if let Some(Value::Array(branches)) = map.get_mut("anyOf") {
                *branches = std::mem::take(branches)
                    .into_iter()
                    .flat_map(split_union_type)
                    .collect();
            }
            map.values_mut().for_each(make_portable);
        }
        Value::Array(items) => items.iter_mut().for_each(make_portable),
        _ => {}
    }
}

/// `{"type": ["null", "boolean"]}` (nothing else) as `[{"type": "null"}, {"type": "boolean"}]`;
/// any other branch unchanged.
fn split_union_type(branch: Value) -> Vec<Value> {
    match &branch {
        Value::Object(map) if map.len() == 1 => match map.get("type") {
            Some(Value::Array(types)) if types.len() > 1 => {
                types.iter().map(|t| json!({ "type": t })).collect()
            }
            _ => vec![branch],
        },
        _ => vec![branch],
    }
}

/// An integer bound as a JSON number (every bound in [`INTEGER_FORMATS`] fits `i64` or `u64`).
fn integer(n: i128) -> Value {
    i64::try_from(n)
        .map(Value::from)
        .or_else(|_| u64::try_from(n).map(Value::from))
        .unwrap_or(Value::Null)
}

/// Every integer on the wire must be JSON-safe: refuse to publish a schema that allows more.
pub(crate) fn check_integers(value: &Value, file: &str, at: &str) -> Result<()> {
    const SAFE: i64 = 9_007_199_254_740_991;
    match value {
        Value::Object(map) => {
            let is_integer = match map.get("type") {
                Some(Value::String(t)) => t == "integer",
                Some(Value::Array(types)) => types.contains(&json!("integer")),
                _ => false,
            };
            if is_integer {
                let within = |key: &str, ok: fn(i64) -> bool| {
                    map.get(key).and_then(Value::as_i64).is_some_and(ok)
                };
                if !within("minimum", |m| m >= -SAFE) || !within("maximum", |m| m <= SAFE) {
                    return Err(Error::SchemaShape(format!(
                        "{file}{at}: integer without bounds within ±(2^53−1); \
                         use rtbus_protocol::Seq or a bounded integer type"
                    )));
                }
            }
            for (key, child) in map {
                check_integers(child, file, &format!("{at}/{key}"))?;
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                check_integers(child, file, &format!("{at}/{i}"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn family_schema(index: usize) -> Result<Option<GeneratedFile>> {
    let mut generator = generator();
    let families = families(&mut generator);
    let Some(family) = families.get(index) else {
        return Ok(None);
    };
    let name = family.family.name();
    let file = format!("topics/{name}.schema.json");
    let mut defs = generator.take_definitions(true);
    // Every family's payload types land in the shared generator; keep only what this family
    // references so the file changes only when the family does.
    let mut keep = Map::new();
    let mut pending = vec![family.snapshot.clone(), family.event.clone()];
    while let Some(value) = pending.pop() {
        for reference in refs(&value) {
            if let Some(def) = defs.remove(&reference) {
                pending.push(def.clone());
                keep.insert(reference, def);
            }
        }
    }
    keep.insert("snapshot".into(), family.snapshot.clone());
    keep.insert("event".into(), family.event.clone());
    keep.insert(
        "topic".into(),
        json!({
            "description": format!("A topic of this family: {}.", family.family.shape().display(name)),
            "type": "string",
            "pattern": topic_regex(family.family),
        }),
    );
    let mut root = Map::new();
    root.insert("title".into(), json!(format!("{name} topic family")));
    root.insert(
        "description".into(),
        json!(format!(
            "{} Fold rule: {} This schema accepts a snapshot or an event payload of the family; \
             `#/$defs/snapshot`, `#/$defs/event` and `#/$defs/topic` describe each alone.",
            family.family.description(),
            family.family.fold_rule()
        )),
    );
    root.insert(
        "anyOf".into(),
        json!([{ "$ref": "#/$defs/snapshot" }, { "$ref": "#/$defs/event" }]),
    );
    root.insert("$defs".into(), Value::Object(keep));
    finish(root, &file).map(Some)
}

/// The `$defs` names that `value` references.
fn refs(value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    if let Some(name) = target.strip_prefix("#/$defs/") {
                        out.push(name.to_owned());
                    }
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    out
}

/// Generates `generated/schema/**`.
pub fn generate() -> Result<Vec<GeneratedFile>> {
    let mut files = vec![
        direction_schema::<ClientMessage>(
            "client-to-server.schema.json",
            &[("publish", PayloadKind::Event)],
        )?,
        direction_schema::<ServerMessage>(
            "server-to-client.schema.json",
            &[
                ("snapshot", PayloadKind::Snapshot),
                ("event", PayloadKind::Event),
            ],
        )?,
    ];
    for index in 0..Family::ALL.len() {
        files.extend(family_schema(index)?);
    }
    Ok(files)
}
