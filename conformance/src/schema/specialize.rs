//! Resolves the server schema's `if`/`then` rules for one message type and topic, so a frame is
//! checked against the rules that apply to it instead of evaluating every `if`.
//!
//! The generated schema states "a `snapshot`/`event` whose `data.topic` matches this family's
//! pattern carries that family's payload" as one `if`/`then` per family and kind in the root
//! `allOf`. Given the frame's `type` and which of those patterns its topic matches, each rule is
//! decided in advance: its `then` (or `else`) joins the schema, or it disappears. Everything is
//! read from the schema itself, so a family added to the catalog is picked up on the next
//! `cargo xtask codegen` with no change here. A rule in any other shape is kept as written, which
//! is always exact and only slower.
//!
//! Why this is exact: the harness compiles one schema per message type (the `oneOf` branches are
//! exclusive by their `type` const), so the frame is an object whose `type` is a known string.
//! A rule's `if` may test only that `type` (`const`/`enum`), that `type` and `data` are present,
//! and that `data.topic` is present and passes `pattern`/`anyOf`/`allOf` tests. For a frame
//! whose `data` is an object holding a string `topic` ("the topic is known"), such an `if` is a
//! function of the `type` and of which patterns the topic matches. For any other frame, only the
//! rules that do not look at `data` at all (or whose `type` test already fails) are decided.

use serde_json::{Map, Value};

/// Keywords that never change a verdict.
const ANNOTATIONS: &[&str] = &[
    "$comment",
    "description",
    "title",
    "examples",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// The schema path, from a schema applied to the whole frame, to the one applied to `data.topic`.
const TOPIC_PATH: [&str; 4] = ["properties", "data", "properties", "topic"];

fn is_annotation(keyword: &str) -> bool {
    ANNOTATIONS.contains(&keyword)
}

/// A subschema applied to the topic string, made only of `pattern`, `anyOf`, `allOf` and
/// boolean schemas: its verdict on a string follows from which patterns the string matches.
#[derive(Debug, Clone, PartialEq)]
enum TopicTest {
    Const(bool),
    Pattern(String),
    Any(Vec<TopicTest>),
    All(Vec<TopicTest>),
}

impl TopicTest {
    fn parse(node: &Value) -> Option<TopicTest> {
        match node {
            Value::Bool(b) => Some(TopicTest::Const(*b)),
            Value::Object(map) => {
                let mut all = Vec::new();
                for (keyword, value) in map {
                    match keyword.as_str() {
                        "pattern" => all.push(TopicTest::Pattern(value.as_str()?.to_owned())),
                        // Only a string topic is ever decided, and every string passes.
                        "type" if value == "string" => {}
                        "anyOf" => all.push(TopicTest::Any(Self::parse_all(value)?)),
                        "allOf" => all.push(TopicTest::All(Self::parse_all(value)?)),
                        k if is_annotation(k) => {}
                        _ => return None,
                    }
                }
                Some(TopicTest::All(all))
            }
            _ => None,
        }
    }

    fn parse_all(list: &Value) -> Option<Vec<TopicTest>> {
        let list = list.as_array()?;
        // An empty `anyOf`/`allOf` is not a valid schema; leave it to the compiler to say so.
        if list.is_empty() {
            return None;
        }
        list.iter().map(TopicTest::parse).collect()
    }

    fn eval(&self, matched: &dyn Fn(&str) -> bool) -> bool {
        match self {
            TopicTest::Const(b) => *b,
            TopicTest::Pattern(p) => matched(p),
            TopicTest::Any(tests) => tests.iter().any(|t| t.eval(matched)),
            TopicTest::All(tests) => tests.iter().all(|t| t.eval(matched)),
        }
    }

    fn patterns<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            TopicTest::Const(_) => {}
            TopicTest::Pattern(p) => out.push(p),
            TopicTest::Any(tests) | TopicTest::All(tests) => {
                for t in tests {
                    t.patterns(out);
                }
            }
        }
    }
}

/// A `then` or `else` schema, and the test it applies to the topic, if it is one we can decide.
#[derive(Debug, Clone)]
struct Outcome {
    schema: Value,
    topic: Option<TopicTest>,
}

impl Outcome {
    fn new(schema: &Value) -> Outcome {
        let topic = TOPIC_PATH
            .iter()
            .try_fold(schema, |node, key| node.get(key))
            .and_then(TopicTest::parse);
        Outcome {
            schema: schema.clone(),
            topic,
        }
    }

    /// The schema, with its topic test replaced by its verdict when the topic is known.
    fn resolve(&self, topic: Option<&dyn Fn(&str) -> bool>) -> Value {
        let mut schema = self.schema.clone();
        if let (Some(matched), Some(test)) = (topic, &self.topic) {
            let verdict = test.eval(matched);
            let node = TOPIC_PATH
                .iter()
                .try_fold(&mut schema, |node, key| node.get_mut(key));
            if let Some(node) = node {
                *node = Value::Bool(verdict);
            }
        }
        schema
    }
}

/// An `if`/`then`/`else` entry of the root `allOf` whose `if` we can decide.
#[derive(Debug, Clone)]
struct Rule {
    /// The entry as the schema wrote it, kept when it cannot be decided.
    original: Value,
    /// The values the frame's `type` must equal one of (`None`: not tested).
    types: Option<Vec<Value>>,
    /// Whether the `if` looks at `data` (requires it or tests its properties).
    reads_data: bool,
    /// The test on `data.topic`, if any.
    topic: Option<TopicTest>,
    then: Option<Outcome>,
    otherwise: Option<Outcome>,
}

impl Rule {
    fn parse(entry: &Value) -> Option<Rule> {
        let original = entry.clone();
        let entry = entry.as_object()?;
        if !entry
            .keys()
            .all(|k| matches!(k.as_str(), "if" | "then" | "else") || is_annotation(k))
        {
            return None;
        }
        let mut rule = Rule {
            original,
            types: None,
            reads_data: false,
            topic: None,
            then: entry.get("then").map(Outcome::new),
            otherwise: entry.get("else").map(Outcome::new),
        };
        for (keyword, value) in entry.get("if")?.as_object()? {
            match keyword.as_str() {
                "required" => {
                    for name in value.as_array()? {
                        match name.as_str()? {
                            "type" => {}
                            "data" => rule.reads_data = true,
                            _ => return None,
                        }
                    }
                }
                "properties" => {
                    for (name, sub) in value.as_object()? {
                        match name.as_str() {
                            "type" => rule.types = Some(parse_type_test(sub)?),
                            "data" => {
                                rule.reads_data = true;
                                rule.topic = parse_data_test(sub)?;
                            }
                            _ => return None,
                        }
                    }
                }
                // The frame is an object (the root says so); the `type` is there for ajv.
                "type" if value == "object" => {}
                k if is_annotation(k) => {}
                _ => return None,
            }
        }
        Some(rule)
    }

    /// The `if`'s verdict for a frame of type `kind`: `None` when it depends on `data` and the
    /// topic is not known.
    fn decide(&self, kind: &str, topic: Option<&dyn Fn(&str) -> bool>) -> Option<bool> {
        let type_ok = self
            .types
            .as_ref()
            .is_none_or(|values| values.iter().any(|v| v.as_str() == Some(kind)));
        if !type_ok {
            return Some(false);
        }
        if !self.reads_data {
            return Some(true);
        }
        let matched = topic?;
        Some(self.topic.as_ref().is_none_or(|t| t.eval(matched)))
    }

    fn outcome(&self, verdict: bool) -> Option<&Outcome> {
        if verdict {
            self.then.as_ref()
        } else {
            self.otherwise.as_ref()
        }
    }
}

/// `{"const": v}` or `{"enum": [...]}` on the frame's `type`.
fn parse_type_test(node: &Value) -> Option<Vec<Value>> {
    let mut values = None;
    for (keyword, value) in node.as_object()? {
        match keyword.as_str() {
            "const" if values.is_none() => values = Some(vec![value.clone()]),
            "enum" if values.is_none() => values = Some(value.as_array()?.clone()),
            k if is_annotation(k) => {}
            _ => return None,
        }
    }
    values
}

/// `{"properties": {"topic": <topic test>}, "required": ["topic"]}` on the frame's `data`.
/// `Some(None)`: understood, with no test on the topic's value.
fn parse_data_test(node: &Value) -> Option<Option<TopicTest>> {
    let mut topic = None;
    for (keyword, value) in node.as_object()? {
        match keyword.as_str() {
            "required" => {
                if !value
                    .as_array()?
                    .iter()
                    .all(|n| n.as_str() == Some("topic"))
                {
                    return None;
                }
            }
            "properties" => {
                for (name, sub) in value.as_object()? {
                    if name != "topic" {
                        return None;
                    }
                    topic = Some(TopicTest::parse(sub)?);
                }
            }
            // `data` is an object whenever a topic can be known; the `type` is there for ajv.
            "type" if value == "object" => {}
            k if is_annotation(k) => {}
            _ => return None,
        }
    }
    Some(topic)
}

/// An entry of the root `allOf`.
#[derive(Debug, Clone)]
enum Entry {
    /// Not a rule we can decide: kept as written.
    Kept(Value),
    Rule(Rule),
}

/// The root schema taken apart: its `allOf` rules, and every topic pattern they test.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    /// The root's keywords other than `oneOf` and `allOf`.
    rest: Map<String, Value>,
    entries: Vec<Entry>,
    patterns: Vec<String>,
}

impl Plan {
    pub(super) fn new(root: &Value) -> Plan {
        let mut rest = root.as_object().cloned().unwrap_or_default();
        rest.remove("oneOf");
        let all = match rest.remove("allOf") {
            Some(Value::Array(all)) => all,
            Some(other) => vec![Value::Object(Map::from_iter([("allOf".into(), other)]))],
            None => Vec::new(),
        };
        // Deciding rules removes `if`s, whose annotations `unevaluated*` would see, and moves
        // `allOf` entries, which a `$ref` into `#/allOf` would name: keep such schemas as written.
        let decidable = !mentions(root, &|k, _| k.starts_with("unevaluated"))
            && !mentions(root, &|k, v| {
                k == "$ref" && v.as_str().is_some_and(|r| r.contains("#/allOf"))
            });
        let entries: Vec<Entry> = all
            .into_iter()
            .map(|entry| match Rule::parse(&entry) {
                Some(rule) if decidable => Entry::Rule(rule),
                _ => Entry::Kept(entry),
            })
            .collect();
        let mut patterns: Vec<&str> = Vec::new();
        for entry in &entries {
            if let Entry::Rule(rule) = entry {
                let outcomes = rule.then.iter().chain(rule.otherwise.iter());
                for test in rule
                    .topic
                    .iter()
                    .chain(outcomes.filter_map(|o| o.topic.as_ref()))
                {
                    test.patterns(&mut patterns);
                }
            }
        }
        let mut distinct: Vec<String> = Vec::new();
        for p in patterns {
            if !distinct.iter().any(|d| d == p) {
                distinct.push(p.to_owned());
            }
        }
        Plan {
            rest,
            entries,
            patterns: distinct,
        }
    }

    /// Every topic pattern the rules test, in first-seen order; a topic's match set is given to
    /// [`Plan::schema_for`] as one flag per pattern in this order.
    pub(super) fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// How many root `allOf` entries are kept as written because they are not rules this module
    /// can decide.
    #[cfg(test)]
    pub(super) fn kept(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e, Entry::Kept(_)))
            .count()
    }

    /// Whether a frame of type `kind` is judged by rules that depend on its topic.
    pub(super) fn reads_topic(&self, kind: &str) -> bool {
        self.entries.iter().any(|entry| match entry {
            Entry::Kept(_) => false,
            Entry::Rule(rule) => match rule.decide(kind, None) {
                None => true,
                Some(verdict) => rule.outcome(verdict).is_some_and(|o| o.topic.is_some()),
            },
        })
    }

    /// The schema a frame of type `kind` (with `branch`, its `oneOf` branch) must satisfy:
    /// exact for every such frame when `matched` is `None`; with `Some(flags)`, exact for the
    /// frames whose `data` is an object holding a string `topic` that matches exactly the
    /// patterns flagged (one flag per [`Plan::patterns`] entry).
    pub(super) fn schema_for(&self, branch: &Value, kind: &str, matched: Option<&[bool]>) -> Value {
        let lookup = |pattern: &str| {
            self.patterns
                .iter()
                .position(|p| p == pattern)
                .and_then(|i| matched.and_then(|m| m.get(i)))
                .copied()
                .unwrap_or(false)
        };
        let topic: Option<&dyn Fn(&str) -> bool> = matched.map(|_| &lookup as _);
        let mut all = Vec::new();
        for entry in &self.entries {
            match entry {
                Entry::Kept(schema) => all.push(schema.clone()),
                Entry::Rule(rule) => match rule.decide(kind, topic) {
                    None => all.push(rule.original.clone()),
                    Some(verdict) => {
                        if let Some(outcome) = rule.outcome(verdict) {
                            all.push(outcome.resolve(topic));
                        }
                    }
                },
            }
        }
        all.push(branch.clone());
        all.retain(|schema| !always_valid(schema));
        let mut one = self.rest.clone();
        one.insert("allOf".into(), Value::Array(all));
        Value::Object(one)
    }
}

/// Whether `schema` accepts every instance: `true`, `{}`, or `properties` whose subschemas all
/// accept everything, with annotations.
fn always_valid(schema: &Value) -> bool {
    match schema {
        Value::Bool(b) => *b,
        Value::Object(map) => map.iter().all(|(keyword, value)| match keyword.as_str() {
            "properties" => value
                .as_object()
                .is_some_and(|props| props.values().all(always_valid)),
            k => is_annotation(k),
        }),
        _ => false,
    }
}

/// Whether any object member anywhere in `value` satisfies `hit(key, value)`.
fn mentions(value: &Value, hit: &dyn Fn(&str, &Value) -> bool) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(k, v)| hit(k, v) || mentions(v, hit)),
        Value::Array(items) => items.iter().any(|v| mentions(v, hit)),
        _ => false,
    }
}
