//! The corpus as TypeScript (`codegen/typescript-check/corpus/`): every valid message must
//! type-check and every negative case TypeScript can express must fail to.

use std::fmt::Write as _;

use serde_json::Value;

use super::{Direction, Example, TsCheck, client_corpus, negative_cases, server_corpus};
use crate::json::to_pretty;
use crate::{Body, Error, GeneratedFile, Result};
const TS_CORPUS_DIR: &str = "codegen/typescript-check/corpus";

/// The imports both corpus files start with.
const TS_IMPORTS: &str = "import type { ClientMessage, ServerMessage, SnapshotData, EventData } from \"../../../generated/typescript\";\n\n";

const VALID_NOTE: &str = "Every message of the valid corpus, as serialized by Rust, must type-check. Snapshots and \
    events are also checked against the payload type their topic selects.";

const NEGATIVE_NOTE: &str = "Every negative case TypeScript can express must fail to type-check: each assignment \
    carries `@ts-expect-error`, so tsc reports an error if the generated types stop rejecting it.";

fn ts_literal(value: &Value) -> Result<String> {
    Ok(to_pretty(value)?.trim_end().to_owned())
}

/// One line, because `@ts-expect-error` covers only the line after it.
fn ts_inline(value: &Value) -> Result<String> {
    serde_json::to_string(&crate::json::canonical(value)).map_err(|source| Error::Json {
        what: "a negative case".into(),
        source,
    })
}

fn message_value<T: serde::Serialize>(message: &T, name: &str) -> Result<Value> {
    serde_json::to_value(message).map_err(|source| Error::Json {
        what: format!("corpus message {name}"),
        source,
    })
}

/// The corpus as TypeScript: every valid message must type-check, and every negative case that
/// TypeScript can express must fail to (`// @ts-expect-error`, so `tsc` fails when an expected
/// error disappears).
pub fn typescript_corpus() -> Result<Vec<GeneratedFile>> {
    let mut valid = String::from(TS_IMPORTS);
    let mut exports = Vec::new();
    for (direction, examples) in [
        ("client", message_values(client_corpus()?)?),
        ("server", message_values(server_corpus()?)?),
    ] {
        let ty = if direction == "client" {
            "ClientMessage"
        } else {
            "ServerMessage"
        };
        for (name, value) in examples {
            let var = format!("{direction}_{name}");
            let _ = writeln!(valid, "const {var}: {ty} = {};\n", ts_literal(&value)?);
            exports.push(var.clone());
            let kind = value.get("type").and_then(Value::as_str);
            if let (Some(kind @ ("snapshot" | "event")), Some(data), Some(topic)) = (
                kind,
                value.get("data"),
                value.pointer("/data/topic").and_then(Value::as_str),
            ) {
                let helper = if kind == "snapshot" {
                    "SnapshotData"
                } else {
                    "EventData"
                };
                let typed = format!("{var}_typed");
                let _ = writeln!(
                    valid,
                    "const {typed}: {helper}<{}> = {};\n",
                    serde_json::to_string(topic).unwrap_or_default(),
                    ts_literal(data)?
                );
                exports.push(typed);
            }
        }
    }
    let _ = writeln!(
        valid,
        "export const corpus = [\n  {},\n];",
        exports.join(",\n  ")
    );

    let mut negative = String::from(TS_IMPORTS);
    let mut names = Vec::new();
    for case in negative_cases() {
        let ty = match case.direction {
            Direction::ClientToServer => "ClientMessage",
            Direction::ServerToClient => "ServerMessage",
        };
        let var = format!("negative_{}", case.name);
        match &case.ts {
            TsCheck::Frame => {
                let _ = writeln!(
                    negative,
                    "// {}\n// @ts-expect-error {}\nconst {var}: {ty} = {};\n",
                    case.reason,
                    case.name,
                    ts_inline(&case.frame)?
                );
            }
            TsCheck::Data(data_type) => {
                let data = case.frame.get("data").cloned().unwrap_or(Value::Null);
                let _ = writeln!(
                    negative,
                    "// {}\n// @ts-expect-error {}\nconst {var}: {data_type} = {};\n",
                    case.reason,
                    case.name,
                    ts_inline(&data)?
                );
            }
            TsCheck::Inexpressible(why) => {
                let _ = writeln!(negative, "// {}: not checked here; {why}.\n", case.name);
                continue;
            }
        }
        names.push(var);
    }
    let _ = writeln!(
        negative,
        "export const negatives = [\n  {},\n];",
        names.join(",\n  ")
    );

    Ok(vec![
        GeneratedFile::new(
            format!("{TS_CORPUS_DIR}/valid.ts"),
            Body::text(valid).note(VALID_NOTE),
        )?,
        GeneratedFile::new(
            format!("{TS_CORPUS_DIR}/negative.ts"),
            Body::text(negative).note(NEGATIVE_NOTE),
        )?,
    ])
}

fn message_values<T: serde::Serialize>(examples: Vec<Example<T>>) -> Result<Vec<(String, Value)>> {
    examples
        .into_iter()
        .map(|e| Ok((e.name.clone(), message_value(&e.message, &e.name)?)))
        .collect()
}
