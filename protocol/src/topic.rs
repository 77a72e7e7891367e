//! The topic grammar and the validating [`Topic`] type.

use std::fmt;
use std::sync::Arc;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use ts_rs::TS;

/// The longest topic, in bytes.
pub const MAX_TOPIC_LEN: usize = 200;

/// The grammar every topic matches, as a regular expression.
///
/// A topic is one or more dot-separated *segments* of lowercase letters, digits, `_` and `-`,
/// optionally followed by `:` and a *key* of ASCII letters, digits, `_`, `-`, `.` and `~`
/// (enough for ids and UUIDs). Examples: `sessions.state`, `sessions.activity:abc123`,
/// `custom.builds.main`.
pub const TOPIC_PATTERN: &str = r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*(:[A-Za-z0-9_.~-]+)?$";

/// A topic name that follows the grammar in [`TOPIC_PATTERN`] and is at most
/// [`MAX_TOPIC_LEN`] bytes long.
///
/// Cloning is cheap: the name is shared.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, TS)]
#[ts(type = "string")]
pub struct Topic(Arc<str>);

/// Why a string is not a valid topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The string is empty.
    #[error("topic is empty (expected e.g. \"sessions.state\")")]
    Empty,
    /// The string is longer than [`MAX_TOPIC_LEN`].
    #[error("topic is {len} bytes long; the limit is {MAX_TOPIC_LEN}")]
    TooLong {
        /// The length found.
        len: usize,
    },
    /// Two dots in a row, or a dot at the start or end of the path.
    #[error(
        "topic {topic:?} has an empty segment at byte {at} (segments are separated by single dots)"
    )]
    EmptySegment {
        /// The offending topic.
        topic: String,
        /// Byte offset of the empty segment.
        at: usize,
    },
    /// A `:` with nothing after it.
    #[error("topic {topic:?} has an empty key after ':'")]
    EmptyKey {
        /// The offending topic.
        topic: String,
    },
    /// A character the grammar does not allow where it stands.
    #[error(
        "topic {topic:?} has {ch:?} at byte {at}, which is not allowed in a {part} (expected {expected})"
    )]
    BadChar {
        /// The offending topic.
        topic: String,
        /// The character found.
        ch: char,
        /// Its byte offset.
        at: usize,
        /// `segment` or `key`.
        part: &'static str,
        /// The characters allowed there.
        expected: &'static str,
    },
}

const SEGMENT_CHARS: &str = "lowercase letters, digits, '_', '-' or a '.' between segments";
const KEY_CHARS: &str = "ASCII letters, digits, '_', '-', '.' or '~'";

fn is_segment_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'~')
}

impl Topic {
    /// Validates `name` against the topic grammar.
    pub fn new(name: &str) -> Result<Topic, TopicError> {
        Topic::validate(name)?;
        Ok(Topic(Arc::from(name)))
    }

    /// Checks `name` against the grammar without allocating.
    pub fn validate(name: &str) -> Result<(), TopicError> {
        if name.is_empty() {
            return Err(TopicError::Empty);
        }
        if name.len() > MAX_TOPIC_LEN {
            return Err(TopicError::TooLong { len: name.len() });
        }
        let (path, key) = match name.find(':') {
            Some(colon) => (&name[..colon], Some((colon + 1, &name[colon + 1..]))),
            None => (name, None),
        };
        let mut segment_start = 0;
        for (at, ch) in path.char_indices() {
            if ch == '.' {
                if at == segment_start {
                    return Err(TopicError::EmptySegment {
                        topic: name.into(),
                        at,
                    });
                }
                segment_start = at + 1;
            } else if !ch.is_ascii() || !is_segment_byte(ch as u8) {
                return Err(TopicError::BadChar {
                    topic: name.into(),
                    ch,
                    at,
                    part: "segment",
                    expected: SEGMENT_CHARS,
                });
            }
        }
        if segment_start == path.len() {
            return Err(TopicError::EmptySegment {
                topic: name.into(),
                at: segment_start,
            });
        }
        if let Some((offset, key)) = key {
            if key.is_empty() {
                return Err(TopicError::EmptyKey { topic: name.into() });
            }
            if let Some((at, ch)) = key
                .char_indices()
                .find(|&(_, ch)| !ch.is_ascii() || !is_key_byte(ch as u8))
            {
                return Err(TopicError::BadChar {
                    topic: name.into(),
                    ch,
                    at: offset + at,
                    part: "key",
                    expected: KEY_CHARS,
                });
            }
        }
        Ok(())
    }

    /// The whole topic as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The dotted path before any `:key`, e.g. `sessions.activity` for
    /// `sessions.activity:abc123`.
    pub fn path(&self) -> &str {
        self.0.split_once(':').map_or(&self.0, |(path, _)| path)
    }

    /// The key after `:`, if any, e.g. `abc123` for `sessions.activity:abc123`.
    pub fn key(&self) -> Option<&str> {
        self.0.split_once(':').map(|(_, key)| key)
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Topic {
    type Err = TopicError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Topic::new(s)
    }
}

impl Serialize for Topic {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Topic {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Topic::new(&name).map_err(de::Error::custom)
    }
}

impl JsonSchema for Topic {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Topic".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A topic name: dot-separated lowercase segments with an optional `:key`, e.g. `sessions.activity:abc123`.",
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_TOPIC_LEN,
            "pattern": TOPIC_PATTERN,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_examples() {
        for ok in [
            "sessions.state",
            "sessions.activity:abc123",
            "custom.builds.main",
            "a",
            "x:Y-1.2~_",
        ] {
            let topic = Topic::new(ok).unwrap();
            assert_eq!(topic.as_str(), ok);
        }
        let topic = Topic::new("sessions.activity:abc").unwrap();
        assert_eq!(
            (topic.path(), topic.key()),
            ("sessions.activity", Some("abc"))
        );
    }

    #[test]
    fn rejects_with_a_precise_reason() {
        let cases = [
            ("", "topic is empty"),
            ("sessions..state", "empty segment at byte 9"),
            (".a", "empty segment at byte 0"),
            ("a.", "empty segment at byte 2"),
            ("a:", "empty key"),
            (
                "Sessions",
                "'S' at byte 0, which is not allowed in a segment",
            ),
            ("a:b c", "' ' at byte 3, which is not allowed in a key"),
            ("a:b:c", "':' at byte 3, which is not allowed in a key"),
            ("sessions.é", "'é' at byte 9"),
        ];
        for (input, reason) in cases {
            let err = Topic::new(input).unwrap_err().to_string();
            assert!(err.contains(reason), "{input:?}: {err}");
        }
        let long = "a".repeat(MAX_TOPIC_LEN + 1);
        assert_eq!(
            Topic::new(&long).unwrap_err(),
            TopicError::TooLong {
                len: MAX_TOPIC_LEN + 1
            }
        );
    }

    #[test]
    fn grammar_agrees_with_the_published_pattern() {
        // The schema publishes TOPIC_PATTERN; the hand-written validator must agree with it.
        let pattern = regex::Regex::new(TOPIC_PATTERN).unwrap();
        let inputs = [
            "a.b",
            "a..b",
            "a:b",
            "a:",
            "A",
            "a-b_c.d:K~.-",
            "a b",
            ":k",
            "a.b:c:d",
            "é",
            "a.b.",
        ];
        for input in inputs {
            assert_eq!(
                Topic::new(input).is_ok(),
                pattern.is_match(input),
                "{input:?}"
            );
        }
    }
}
