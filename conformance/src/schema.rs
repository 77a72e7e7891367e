//! The published server-to-client JSON Schema, compiled once, judging every received frame.

mod specialize;

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

use serde_json::Value;

pub use crate::error::SchemaError;

/// The published server-to-client schema (`generated/schema/server-to-client.schema.json`).
pub const SERVER_SCHEMA: &str = include_str!("../../generated/schema/server-to-client.schema.json");

/// The server-to-client schema the harness judges frames by.
pub fn server_schema() -> Value {
    serde_json::from_str(SERVER_SCHEMA).unwrap_or(Value::Null)
}

/// A received frame that breaks the server-to-client schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", if pointer.is_empty() { "frame" } else { pointer.as_str() })]
pub struct Violation {
    /// Where in the frame (JSON pointer; empty for the whole frame).
    pub pointer: String,
    /// What the schema expected.
    pub message: String,
}

/// The compiled server schema, as the harness applies it.
///
/// One schema per message `type` with only that branch of the top-level `oneOf`: validating
/// against it alone is equivalent to the whole schema (the branches are exclusive by their `type`
/// const) and reports a violation at the offending field instead of as "no branch matched".
/// For the types whose rules depend on the topic (`snapshot`, `event`), one schema more per topic
/// pattern of those rules, with the rules decided (see [`specialize`]), picked by the patterns
/// the frame's `data.topic` matches; that match is cached per topic, since topics repeat.
struct Compiled {
    kinds: Vec<Kind>,
    /// `{"pattern": p}` for every topic pattern of the rules, in [`specialize::Plan::patterns`]
    /// order: the topic is matched by the schema's own patterns, with the validator's engine.
    patterns: Vec<jsonschema::Validator>,
    topics: RwLock<HashMap<String, TopicMatch>>,
}

/// The schemas of one message type.
struct Kind {
    name: String,
    /// Exact for every frame of this type; also the one that explains violations.
    base: jsonschema::Validator,
    /// Exact for the frames whose `data` is an object with a string `topic`, by the patterns
    /// that topic matches.
    by_topic: Option<ByTopic>,
}

struct ByTopic {
    /// The topic matches none of the patterns.
    none: jsonschema::Validator,
    /// `one[i]`: the topic matches pattern `i` and no other.
    one: Vec<jsonschema::Validator>,
}

/// Which of the rules' topic patterns a topic matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TopicMatch {
    None,
    One(usize),
    /// More than one: no family schema is compiled for that; the type's base schema decides.
    Several,
}

/// Distinct topics remembered before the cache starts over; bounds its memory.
const TOPIC_CACHE_ENTRIES: usize = 4096;
/// Topics longer than this (the grammar allows 200 bytes) are matched without being cached.
const TOPIC_CACHE_MAX_LEN: usize = 256;

impl Compiled {
    fn new(root: &Value) -> Result<Compiled, SchemaError> {
        let build = |schema: &Value| {
            jsonschema::validator_for(schema).map_err(|e| SchemaError::Compile(e.to_string()))
        };
        let plan = specialize::Plan::new(root);
        let branches = root
            .get("oneOf")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let n = plan.patterns().len();
        let mut kinds: Vec<Kind> = Vec::new();
        for branch in branches {
            let Some(name) = branch
                .pointer("/properties/type/const")
                .or_else(|| branch.pointer("/properties/type/enum/0"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            if kinds.iter().any(|k| k.name == name) {
                return Err(SchemaError::DuplicateType {
                    name: name.to_owned(),
                });
            }
            let base = build(&plan.schema_for(branch, name, None))?;
            let by_topic = if plan.reads_topic(name) {
                let only = |i: Option<usize>| {
                    let flags: Vec<bool> = (0..n).map(|j| Some(j) == i).collect();
                    build(&plan.schema_for(branch, name, Some(&flags)))
                };
                Some(ByTopic {
                    none: only(None)?,
                    one: (0..n).map(|i| only(Some(i))).collect::<Result<_, _>>()?,
                })
            } else {
                None
            };
            kinds.push(Kind {
                name: name.to_owned(),
                base,
                by_topic,
            });
        }
        if kinds.len() != branches.len() {
            return Err(SchemaError::UntypedBranches {
                untyped: branches.len() - kinds.len(),
                total: branches.len(),
            });
        }
        let draft = root.get("$schema").cloned();
        let patterns = plan
            .patterns()
            .iter()
            .map(|p| {
                let mut schema = serde_json::Map::new();
                if let Some(draft) = &draft {
                    schema.insert("$schema".into(), draft.clone());
                }
                schema.insert("pattern".into(), Value::String(p.clone()));
                build(&Value::Object(schema))
            })
            .collect::<Result<_, _>>()?;
        Ok(Compiled {
            kinds,
            patterns,
            topics: RwLock::new(HashMap::new()),
        })
    }

    fn kind(&self, value: &Value) -> Option<&Kind> {
        let name = value.get("type").and_then(Value::as_str)?;
        self.kinds.iter().find(|k| k.name == name)
    }

    fn is_valid(&self, kind: &Kind, value: &Value) -> bool {
        let topic = value
            .get("data")
            .and_then(|data| data.get("topic"))
            .and_then(Value::as_str);
        let validator = match (&kind.by_topic, topic) {
            (Some(by_topic), Some(topic)) => match self.topic_match(topic) {
                TopicMatch::None => &by_topic.none,
                TopicMatch::One(i) => by_topic.one.get(i).unwrap_or(&kind.base),
                TopicMatch::Several => &kind.base,
            },
            _ => &kind.base,
        };
        validator.is_valid(value)
    }

    fn topic_match(&self, topic: &str) -> TopicMatch {
        let cached = self
            .topics
            .read()
            .ok()
            .and_then(|cache| cache.get(topic).copied());
        if let Some(found) = cached {
            return found;
        }
        let instance = Value::String(topic.to_owned());
        let mut found = TopicMatch::None;
        for (i, pattern) in self.patterns.iter().enumerate() {
            if pattern.is_valid(&instance) {
                found = match found {
                    TopicMatch::None => TopicMatch::One(i),
                    _ => TopicMatch::Several,
                };
            }
        }
        if topic.len() <= TOPIC_CACHE_MAX_LEN {
            if let Ok(mut cache) = self.topics.write() {
                if cache.len() >= TOPIC_CACHE_ENTRIES {
                    cache.clear();
                }
                cache.insert(topic.to_owned(), found);
            }
        }
        found
    }

    fn check(&self, value: &Value) -> Result<(), Violation> {
        let Some(kind) = self.kind(value) else {
            let kinds: Vec<&str> = self.kinds.iter().map(|k| k.name.as_str()).collect();
            return Err(Violation {
                pointer: "/type".into(),
                message: format!(
                    "{} is not a server message type; expected one of {}",
                    value
                        .get("type")
                        .map_or("a missing \"type\"".to_owned(), ToString::to_string),
                    kinds.join(", ")
                ),
            });
        };
        if self.is_valid(kind, value) {
            return Ok(());
        }
        let mut best: Option<(String, String)> = None;
        for e in kind.base.iter_errors(value) {
            let p = e.instance_path().to_string();
            if best.as_ref().is_none_or(|(b, _)| p.len() > b.len()) {
                best = Some((p, e.to_string()));
            }
        }
        let (pointer, message) = best.unwrap_or_else(|| {
            (
                String::new(),
                "the frame does not validate against the schema".into(),
            )
        });
        Err(Violation { pointer, message })
    }
}

fn compiled() -> Result<&'static Compiled, &'static SchemaError> {
    static COMPILED: OnceLock<Result<Compiled, SchemaError>> = OnceLock::new();
    COMPILED
        .get_or_init(|| Compiled::new(&server_schema()))
        .as_ref()
}

/// Parses a text frame and checks it against the server-to-client schema.
pub fn check_text(text: &str) -> Result<Value, (Option<Value>, Violation)> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        (
            None,
            Violation {
                pointer: String::new(),
                message: format!("not valid JSON: {e}"),
            },
        )
    })?;
    match check_value(&value) {
        Ok(()) => Ok(value),
        Err(v) => Err((Some(value), v)),
    }
}

/// Checks a parsed frame against the server-to-client schema.
pub fn check_value(value: &Value) -> Result<(), Violation> {
    let compiled = compiled().map_err(|e| Violation {
        pointer: String::new(),
        message: format!("the server-to-client schema does not compile: {e}"),
    })?;
    compiled.check(value)
}

#[cfg(test)]
mod tests;
