//! Constrained scalar types: JSON-safe integers, UTC timestamps, request ids, ratios.

use std::fmt;
use std::time::SystemTime;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, de};
use ts_rs::TS;

/// The largest integer that survives `JSON.parse` in JavaScript without rounding (2^53 − 1).
///
/// Every integer rtbus puts on the wire stays at or below this bound.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A per-topic sequence number.
///
/// The first event published on a topic has `seq` 1 and every later event on the same topic has
/// exactly the previous `seq` plus one. A snapshot carries the `seq` of the last event folded into
/// it (0 when no event has been published yet), so the first live event after a snapshot with
/// `seq` n has `seq` n + 1. Always an integer in 0..=2^53−1, so it is a plain `number` in
/// JavaScript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, TS)]
#[serde(transparent)]
pub struct Seq(#[ts(type = "number")] u64);

impl Seq {
    /// The sequence number of a topic on which nothing was published yet.
    pub const ZERO: Seq = Seq(0);

    /// Wraps `value` if it is JSON-safe.
    pub fn new(value: u64) -> Result<Seq, RangeError> {
        if value <= MAX_SAFE_INTEGER {
            Ok(Seq(value))
        } else {
            Err(RangeError {
                value: value.to_string(),
                expected: "an integer in 0..=9007199254740991",
            })
        }
    }

    /// The raw number.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The next sequence number, or `None` once the JSON-safe range is used up.
    pub fn next(self) -> Option<Seq> {
        Seq::new(self.0 + 1).ok()
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for Seq {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = whole_number(deserializer, 0, MAX_SAFE_INTEGER as i64)?;
        // `whole_number` returned a value in 0..=MAX_SAFE_INTEGER.
        Ok(Seq(value.unsigned_abs()))
    }
}

/// Reads an integer in `min..=max`, written either as an integer (`80`) or as a number with no
/// fractional part (`80.0`): JSON Schema's `integer` accepts both, so the decoder does too.
pub(crate) fn whole_number<'de, D: Deserializer<'de>>(
    deserializer: D,
    min: i64,
    max: i64,
) -> Result<i64, D::Error> {
    struct Whole {
        min: i64,
        max: i64,
    }
    impl Whole {
        fn expected(&self) -> String {
            format!("an integer in {}..={}", self.min, self.max)
        }
        fn check<E: de::Error>(&self, value: i128, shown: &dyn fmt::Display) -> Result<i64, E> {
            if (i128::from(self.min)..=i128::from(self.max)).contains(&value) {
                // In range of i64 because min and max are.
                Ok(value as i64)
            } else {
                Err(E::custom(format!(
                    "{shown} is out of range: expected {}",
                    self.expected()
                )))
            }
        }
    }
    impl de::Visitor<'_> for Whole {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.expected())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            self.check(i128::from(v), &v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            self.check(i128::from(v), &v)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
            if v.fract() != 0.0 || !v.is_finite() || v.abs() > MAX_SAFE_INTEGER as f64 {
                return Err(E::custom(format!(
                    "{v} is not a whole number in range: expected {}",
                    self.expected()
                )));
            }
            // Whole and within ±2^53−1, so the conversion is exact.
            self.check(v as i128, &v)
        }
    }
    deserializer.deserialize_any(Whole { min, max })
}

/// Reads a `u16` written as an integer or a whole number (see [`whole_number`]).
pub(crate) fn whole_u16<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    let value = whole_number(deserializer, 0, i64::from(u16::MAX))?;
    // In range by the bounds just checked.
    Ok(u16::try_from(value).unwrap_or(u16::MAX))
}

/// Reads an optional `i32` that, when present, is an integer or a whole number and not `null`.
pub(crate) fn present_whole_i32<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i32>, D::Error> {
    let value = whole_number(deserializer, i64::from(i32::MIN), i64::from(i32::MAX))?;
    // In range by the bounds just checked.
    Ok(Some(i32::try_from(value).unwrap_or(i32::MAX)))
}

/// Reads an optional field that, when present, must hold a value: `null` is rejected, because
/// an absent field and `null` would otherwise be two spellings of one thing that servers and
/// clients fold differently. (For a field of type `serde_json::Value`, `null` is the value.)
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

impl JsonSchema for Seq {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Seq".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A per-topic sequence number: an integer in 0..=2^53-1 (JSON-safe).",
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_SAFE_INTEGER,
        })
    }
}

/// The longest epoch, in characters.
pub const MAX_EPOCH_LEN: usize = 64;

/// The shape every epoch has.
pub const EPOCH_PATTERN: &str = "^[A-Za-z0-9_-]{1,64}$";

/// The name of a topic's sequence stream: an opaque string of 1 to 64 URL-safe characters
/// (ASCII letters, digits, `_`, `-`).
///
/// Two frames of the same topic with the same `epoch` belong to the same `seq` numbering and
/// the same history. A server gives a topic a new epoch whenever its numbering restarts or its
/// history is lost (a restart of a server that keeps topics in memory, a topic forgotten and
/// created again, data lost by the engine), and never reuses one. A client keeps the epoch
/// beside the last `seq` it saw and sends both to resume; compare epochs only for equality.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, TS)]
#[serde(transparent)]
#[ts(type = "string")]
pub struct Epoch(String);

impl Epoch {
    /// Wraps `epoch` if it is 1 to 64 URL-safe characters.
    pub fn new(epoch: impl Into<String>) -> Result<Epoch, RangeError> {
        let epoch = epoch.into();
        let ok = !epoch.is_empty()
            && epoch.len() <= MAX_EPOCH_LEN
            && epoch
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(RangeError {
                value: format!("{epoch:?}"),
                expected: "1 to 64 of A-Z, a-z, 0-9, '_', '-'",
            });
        }
        Ok(Epoch(epoch))
    }

    /// The epoch as written on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Epoch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Epoch::new(String::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

impl JsonSchema for Epoch {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Epoch".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "The name of a topic's sequence stream: 1 to 64 URL-safe characters. Same topic and same epoch means the same `seq` numbering and history.",
            "type": "string",
            "pattern": EPOCH_PATTERN,
        })
    }
}

/// A value outside the range a wire field allows.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{value} is out of range: expected {expected}")]
pub struct RangeError {
    value: String,
    expected: &'static str,
}

/// A point in time, as an RFC 3339 UTC timestamp with a `Z` suffix, e.g.
/// `2026-11-21T09:30:00.125Z`.
///
/// Servers write millisecond precision; readers accept 0 to 9 fractional digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, TS)]
#[serde(transparent)]
#[ts(type = "string")]
pub struct Timestamp(String);

/// The shape every timestamp on the wire has.
pub const TIMESTAMP_PATTERN: &str =
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z$";

impl Timestamp {
    /// The current time, with millisecond precision.
    pub fn now() -> Timestamp {
        Timestamp::from_system_time(SystemTime::now())
    }

    /// Formats `time` with millisecond precision.
    pub fn from_system_time(time: SystemTime) -> Timestamp {
        Timestamp(humantime::format_rfc3339_millis(time).to_string())
    }

    /// Parses an RFC 3339 UTC timestamp (`Z` suffix, 0 to 9 fractional digits).
    pub fn parse(text: &str) -> Result<Timestamp, TimestampError> {
        let bytes = text.as_bytes();
        // humantime accepts a space for `T` and a missing `Z`; the wire format does not.
        let shape_ok = bytes.len() >= 20
            && bytes.get(10) == Some(&b'T')
            && bytes.last() == Some(&b'Z')
            && bytes.len() <= 30;
        if !shape_ok {
            return Err(TimestampError {
                text: text.to_owned(),
            });
        }
        match humantime::parse_rfc3339(text) {
            Ok(_) => Ok(Timestamp(text.to_owned())),
            Err(_) => Err(TimestampError {
                text: text.to_owned(),
            }),
        }
    }

    /// The timestamp as written on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The point in time this timestamp names.
    pub fn to_system_time(&self) -> SystemTime {
        // Every Timestamp was produced by `parse` or formatted by humantime, so it parses.
        humantime::parse_rfc3339(&self.0).unwrap_or(SystemTime::UNIX_EPOCH)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A string that is not an RFC 3339 UTC timestamp.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{text:?} is not an RFC 3339 UTC timestamp (expected e.g. \"2026-11-21T09:30:00.125Z\")")]
pub struct TimestampError {
    text: String,
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Timestamp::parse(&text).map_err(de::Error::custom)
    }
}

impl JsonSchema for Timestamp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An RFC 3339 UTC timestamp with a `Z` suffix, e.g. `2026-11-21T09:30:00.125Z`.",
            "type": "string",
            "format": "date-time",
            "pattern": TIMESTAMP_PATTERN,
        })
    }
}

/// The longest request id a client may choose, in characters (Unicode scalar values, as JSON
/// Schema's `maxLength` counts them).
pub const MAX_REQUEST_ID_LEN: usize = 64;

/// A client-chosen string that correlates a request with its reply or error: 1 to 64
/// characters.
///
/// The server copies it unchanged into the acknowledgement or error that answers the request.
/// Clients usually send a counter (`"1"`, `"2"`, …) or a UUID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, TS)]
#[serde(transparent)]
#[ts(type = "string")]
pub struct RequestId(String);

impl RequestId {
    /// Wraps `id` if it is 1 to 64 characters long.
    pub fn new(id: impl Into<String>) -> Result<RequestId, RangeError> {
        let id = id.into();
        if id.is_empty() || id.chars().count() > MAX_REQUEST_ID_LEN {
            return Err(RangeError {
                value: format!("{id:?}"),
                expected: "a string of 1 to 64 characters",
            });
        }
        Ok(RequestId(id))
    }

    /// The id as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        RequestId::new(String::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

impl JsonSchema for RequestId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RequestId".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A client-chosen request id, copied into the reply: 1 to 64 characters.",
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_REQUEST_ID_LEN,
        })
    }
}

/// A fraction between 0.0 and 1.0 inclusive.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, TS)]
#[serde(transparent)]
#[ts(type = "number")]
pub struct Ratio(f64);

impl Ratio {
    /// Wraps `value` if it lies in 0.0..=1.0.
    pub fn new(value: f64) -> Result<Ratio, RangeError> {
        if (0.0..=1.0).contains(&value) {
            Ok(Ratio(value))
        } else {
            Err(RangeError {
                value: value.to_string(),
                expected: "a number in 0.0..=1.0",
            })
        }
    }

    /// The raw fraction.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ratio::new(f64::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

impl JsonSchema for Ratio {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Ratio".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A fraction between 0.0 and 1.0 inclusive.",
            "type": "number",
            "minimum": 0,
            "maximum": 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_rejects_unsafe_integers() {
        assert!(Seq::new(MAX_SAFE_INTEGER).is_ok());
        let err = serde_json::from_str::<Seq>("9007199254740992").unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
        assert_eq!(Seq::new(MAX_SAFE_INTEGER).unwrap().next(), None);
    }

    #[test]
    fn timestamp_accepts_only_utc_rfc3339() {
        for ok in [
            "2026-11-21T09:30:00Z",
            "2026-11-21T09:30:00.125Z",
            "2026-11-21T09:30:00.123456789Z",
        ] {
            assert!(Timestamp::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "2026-11-21 09:30:00Z",
            "2026-11-21T09:30:00",
            "2026-13-21T09:30:00Z",
            "yesterday",
            "",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
        let now = Timestamp::now();
        assert_eq!(Timestamp::parse(now.as_str()).unwrap(), now);
    }

    #[test]
    fn seq_accepts_whole_floats_like_the_schema() {
        assert_eq!(serde_json::from_str::<Seq>("80.0").unwrap(), Seq(80));
        assert!(serde_json::from_str::<Seq>("80.5").is_err());
        assert!(serde_json::from_str::<Seq>("-1").is_err());
        assert!(serde_json::from_str::<Seq>("1e300").is_err());
    }

    #[test]
    fn epochs_are_url_safe_and_bounded() {
        assert!(Epoch::new("a").is_ok());
        assert!(Epoch::new("A-z_09".repeat(10)).is_ok());
        assert!(Epoch::new("x".repeat(65)).is_err());
        for bad in ["", "a b", "a/b", "é", "a.b"] {
            assert!(Epoch::new(bad).is_err(), "{bad}");
        }
        let pattern = regex::Regex::new(EPOCH_PATTERN).unwrap();
        for s in ["a", "a-b_C9", "", "a.b", "é"] {
            assert_eq!(pattern.is_match(s), Epoch::new(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn request_id_length_is_bounded() {
        assert!(RequestId::new("").is_err());
        assert!(RequestId::new("x".repeat(64)).is_ok());
        assert!(RequestId::new("x".repeat(65)).is_err());
        // Characters, not bytes, so the decoder agrees with the schema's `maxLength`.
        assert!(RequestId::new("é".repeat(64)).is_ok());
        assert!(RequestId::new("é".repeat(65)).is_err());
    }
}
