//! The Rust fold (what the server sends as snapshots) and the generated TypeScript fold
//! (`generated/typescript/fold.ts`, what clients fold events with) agree: sampled event
//! sequences of every family, folded both ways from the family's empty snapshot, give the same
//! snapshot JSON.
//!
//! The TypeScript side runs under Node: one script transpiles the committed
//! `generated/typescript/**/*.ts` (the files the generators write there, so a stray file in the
//! directory is ignored; the drift check reports it) with the TypeScript compiler of
//! `codegen/typescript-check` into a temporary directory and
//! folds every sequence of one JSON file there. The events go to Node as raw JSON, as the
//! server relays a publish's payload; the Rust side decodes each into its family's type first,
//! as the server does. Every value Node folds is deep-frozen, so a fold that mutates its
//! arguments throws.

mod common;

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use rtbus_codegen::corpus::{self, strategies};
use rtbus_protocol::Topic;
use rtbus_protocol::catalog::{
    Family, FamilyVisitor, FieldIs, Fields, Fold, TopicEvent, TopicFamily, TopicSnapshot,
    visit_families,
};
use serde_json::{Value, json};

/// Keys that collide often (so events replace and remove entries) and that order differently
/// by code point than by UTF-16 code unit (U+FF5E and U+FFFF sort before U+10000 and up).
const KEYS: &[&str] = &[
    "",
    "a",
    "b",
    "B",
    "ab",
    "é",
    "\u{FF5E}",
    "\u{1F600}",
    "a\u{FFFF}",
    "a\u{10000}",
];

/// Short sequences per family; families with an `Append` rule get long ones on top.
const SEQUENCES: usize = 160;
const MAX_LEN: usize = 32;
const LONG_SEQUENCES: usize = 6;

struct Sequence {
    family: Family,
    topic: Topic,
    events: Vec<Value>,
}

/// Events of `family`; for a keyed rule most of them take their key from [`KEYS`].
fn event(family: Family) -> BoxedStrategy<Value> {
    let key = match family.fold() {
        Fold::Upsert { key, .. } => Some(key),
        Fold::Latest | Fold::Append { .. } => None,
    };
    (strategies::event_of(family), 0..KEYS.len() + 3)
        .prop_map(move |(mut event, pick)| {
            if let (Some(key), Some(object), Some(value)) =
                (key, event.as_object_mut(), KEYS.get(pick))
            {
                object.insert(key.to_owned(), json!(value));
            }
            event
        })
        .boxed()
}

fn sequences(family: Family, lengths: std::ops::Range<usize>, count: usize) -> Vec<Sequence> {
    let strategy = (
        strategies::topic_of(family),
        proptest::collection::vec(event(family), lengths),
    )
        .boxed();
    corpus::sample(strategy, count)
        .into_iter()
        .map(|(topic, events)| Sequence {
            family,
            topic,
            events,
        })
        .collect()
}

fn all_sequences() -> Vec<Sequence> {
    let mut out = Vec::new();
    for family in Family::ALL.iter().copied() {
        out.extend(sequences(family, 0..MAX_LEN, SEQUENCES));
        if let Fold::Append { cap, .. } = family.fold() {
            out.extend(sequences(
                family,
                cap.saturating_sub(2)..2 * cap + 5,
                LONG_SEQUENCES,
            ));
        }
    }
    out
}

/// The snapshot the server holds after `sequence`, as JSON.
fn rust_fold(sequence: &Sequence) -> Value {
    let mut snapshot = TopicSnapshot::empty(sequence.family);
    for (at, raw) in sequence.events.iter().enumerate() {
        let event = TopicEvent::decode(&sequence.topic, raw).unwrap_or_else(|err| {
            panic!(
                "sampled event {at} of a {} sequence does not decode: {err}\n{raw}",
                sequence.family.name()
            )
        });
        assert!(
            snapshot.fold(&event),
            "{} event {at} refused by its own family's snapshot",
            sequence.family.name()
        );
    }
    snapshot.to_value()
}

/// The JSON pointer of the first place where `a` and `b` differ, with both values there.
fn first_difference(a: &Value, b: &Value, pointer: &str) -> Option<String> {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            let lengths = (x.len() != y.len())
                .then(|| format!("{pointer}: {} entries vs {}", x.len(), y.len()));
            let first = x
                .iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (x, y))| first_difference(x, y, &format!("{pointer}/{i}")));
            match (lengths, first) {
                (Some(lengths), Some(first)) => {
                    Some(format!("{lengths}; first entry differs at {first}"))
                }
                (lengths, first) => lengths.or(first),
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(x), Some(y)) => first_difference(x, y, &format!("{pointer}/{k}")),
                (x, y) => Some(format!("{pointer}/{k}: {x:?} vs {y:?}")),
            })
        }
        _ => (a != b).then(|| format!("{pointer}: {} vs {}", short(a), short(b))),
    }
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(600) {
        Some((at, _)) => format!("{}… ({} bytes)", &text[..at], text.len()),
        None => text,
    }
}

/// Folds each sequence from the family's empty snapshot; everything folded is deep-frozen, so
/// a fold that mutates its arguments throws. A throw is reported, never propagated.
const NODE_BODY: &str = r#"
function deepFreeze(value) {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
return input.map(({ family, events }) => {
  try {
    const empty = generated.emptySnapshot(family);
    const emptyJson = JSON.stringify(empty);
    let snapshot = deepFreeze(empty);
    for (const event of events) {
      snapshot = deepFreeze(generated.foldEvent(family, snapshot, deepFreeze(event)));
    }
    return { empty: JSON.parse(emptyJson), snapshot };
  } catch (error) {
    return { error: String(error && error.stack ? error.stack : error) };
  }
});
"#;

/// Folds every sequence with the generated TypeScript fold under Node; one result per sequence.
fn typescript_fold(sequences: &[Sequence]) -> Vec<Value> {
    let input: Vec<Value> = sequences
        .iter()
        .map(|s| json!({ "family": s.family.name(), "events": s.events }))
        .collect();
    let results = common::run_generated_typescript(
        "fold agreement test",
        "fold.js",
        NODE_BODY,
        &Value::Array(input),
    );
    assert_eq!(
        results.len(),
        sequences.len(),
        "node returned {} results for {} sequences",
        results.len(),
        sequences.len()
    );
    results
}

#[test]
fn rust_and_typescript_folds_agree_on_sampled_sequences() {
    let sequences = all_sequences();
    let results = typescript_fold(&sequences);
    let mut per_family: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    for (at, (sequence, result)) in sequences.iter().zip(&results).enumerate() {
        let name = sequence.family.name();
        let counts = per_family.entry(name).or_default();
        counts.0 += 1;
        counts.1 += sequence.events.len();
        let context = format!(
            "sequence {at} ({name} on {}, {} events: {})",
            sequence.topic,
            sequence.events.len(),
            short(&Value::Array(sequence.events.clone()))
        );
        if let Some(error) = result.get("error") {
            failures.push(format!("{context}: the TypeScript fold threw {error}"));
            continue;
        }
        let empty = TopicSnapshot::empty(sequence.family).to_value();
        if common::numbers_as_f64(&result["empty"]) != common::numbers_as_f64(&empty) {
            failures.push(format!(
                "{context}: emptySnapshot({name:?}) is {}, the Rust empty snapshot is {empty}",
                result["empty"]
            ));
        }
        let rust = common::numbers_as_f64(&rust_fold(sequence));
        let typescript = common::numbers_as_f64(&result["snapshot"]);
        if let Some(difference) = first_difference(&rust, &typescript, "") {
            failures.push(format!(
                "{context}:\n  first difference (Rust vs TypeScript) at {difference}\n  \
                 Rust snapshot:       {}\n  TypeScript snapshot: {}",
                short(&rust),
                short(&typescript)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} sequences fold differently in Rust and in generated/typescript/fold.ts; \
         the first:\n{}",
        failures.len(),
        sequences.len(),
        failures
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    // The samples must exercise every family, and long enough to pass every cap.
    for family in Family::ALL {
        let (count, events) = per_family.get(family.name()).copied().unwrap_or_default();
        assert!(
            count >= SEQUENCES && events > 0,
            "{}: only {count} sequences with {events} events were folded",
            family.name()
        );
    }
}

/// Checks, on sampled events, that each field a family's rule names reads the same through the
/// event type's [`Fields`] (what the Rust fold uses) as in the event's JSON (what the
/// TypeScript fold uses).
struct FieldsMatchJson {
    events: BTreeMap<&'static str, Vec<Value>>,
    failures: Vec<String>,
}

impl FamilyVisitor for FieldsMatchJson {
    fn visit<F: TopicFamily>(&mut self, family: Family) {
        let names: Vec<&str> = match F::FOLD {
            Fold::Upsert {
                key, remove_when, ..
            } => std::iter::once(key)
                .chain(remove_when.map(|FieldIs { field, .. }| field))
                .collect(),
            Fold::Latest | Fold::Append { .. } => Vec::new(),
        };
        for raw in self.events.get(family.name()).into_iter().flatten() {
            let event: F::Event = match serde_json::from_value(raw.clone()) {
                Ok(event) => event,
                Err(err) => {
                    self.failures.push(format!(
                        "{}: sampled event {raw} does not decode: {err}",
                        F::NAME
                    ));
                    continue;
                }
            };
            for name in &names {
                let typed = event.str_field(name);
                let json = raw.get(*name).and_then(Value::as_str);
                if typed != json {
                    self.failures.push(format!(
                        "{}: field {name:?} reads {typed:?} through Fields but {json:?} in {raw}",
                        F::NAME
                    ));
                }
            }
        }
    }
}

#[test]
fn rule_fields_read_the_same_typed_and_as_json() {
    let mut check = FieldsMatchJson {
        events: Family::ALL
            .iter()
            .map(|f| (f.name(), corpus::sample(event(*f), 200)))
            .collect(),
        failures: Vec::new(),
    };
    visit_families(&mut check);
    assert!(check.failures.is_empty(), "{:#?}", check.failures);
}
