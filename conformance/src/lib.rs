//! The rtbus v1 conformance harness: replays transcripts (recorded sessions) against any
//! server and judges it only by the published contract, the server-to-client JSON Schema and
//! the transcripts.
//!
//! - [`transcript`]: the case file format and its loader (errors name file, line, expectation).
//! - [`matcher`], [`template`], [`expr`]: what expected frames may say about varying values.
//! - [`runner`]: connections, steps, verdicts; [`embedded`]: the reference server as a target.
//! - [`report`]: console, JSON and JUnit output; [`coverage`]: the rule → cases table.
//! - [`error`]: the typed errors, one enum per concern, and [`Result`].
//! - [`record`]: the recording proxy.
#![deny(missing_docs)]

pub mod cli;
pub mod contract;
pub mod coverage;
pub mod embedded;
pub mod error;
pub mod expr;
mod hex;
pub mod matcher;
mod position;
pub mod record;
pub mod report;
pub mod runner;
pub mod schema;
pub mod suite;
pub mod template;
pub mod transcript;

pub use coverage::coverage_markdown;
pub use error::{Error, Result};
pub use transcript::{Case, Step, parse as parse_transcript};

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub(crate) fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let end = (0..=max)
        .rev()
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(0);
    &s[..end]
}

/// The JSON Schema of the transcript format (`generated/schema/transcript.schema.json`).
pub fn transcript_schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(transcript::Case))
        .unwrap_or(serde_json::Value::Null);
    if let Some(obj) = schema.as_object_mut() {
        obj.insert(
            "$id".into(),
            "https://rtbus.dev/schema/v1/transcript.schema.json".into(),
        );
        obj.insert("title".into(), "rtbus conformance transcript".into());
        obj.insert(
            "description".into(),
            "One conformance case: connections, steps and expected frames. Expected frames are \
             matchers: plain JSON matches itself (objects exactly, unless they hold \
             \"$extra\": \"ignore\"), and objects whose keys all start with `$` match varying \
             values: $type, $regex, $timestamp, $capture, $eq, $expr, $increasing, $unordered, \
             $literal. Strings may hold {{...}} templates. Reference: conformance/README.md."
                .into(),
        );
    }
    schema
}

/// The coverage table of the bundled suite (`generated/CONFORMANCE.md`); `Err` lists the
/// transcripts that do not load.
pub fn bundled_coverage_markdown() -> Result<String, error::LoadErrors> {
    suite::bundled()
        .map(|cases| coverage_markdown(&cases))
        .map_err(error::LoadErrors)
}
