//! The generated TypeScript decoders (`generated/typescript/decode.ts`) and the Rust decoder
//! agree: every corpus message (hand-written and sampled, both directions) decodes, unchanged;
//! every negative case is refused, at a place compatible with the Rust decoder's complaint;
//! frames the corpus never produces (alternative spellings, the nesting limit, code-point
//! lengths) get the Rust verdict.
//!
//! The TypeScript side runs under Node: one script transpiles `generated/typescript/**/*.ts`
//! with the TypeScript compiler of `codegen/typescript-check` into a temporary directory and
//! runs `decode*Message` on the text and `check*Message` on the parsed value of every frame of
//! one JSON file.

mod common;

use std::sync::LazyLock;

use rtbus_codegen::corpus::{self, Direction, strategies};
use rtbus_protocol::catalog::TopicEvent;
use rtbus_protocol::{
    ClientMessage, MAX_NESTING_DEPTH, MAX_REQUEST_ID_LEN, decode_client_frame, decode_server_frame,
};
use serde_json::{Value, json};

/// Property-generated messages per direction on top of the corpus (a superset of its samples).
const SAMPLES: usize = 300;

/// One frame for Node.
struct Input {
    name: String,
    direction: Direction,
    text: String,
}

/// What Node said about one frame: `decode*Message(text)` and `check*Message(JSON.parse(text))`
/// (`check` is absent when the text is not JSON).
struct Verdicts {
    decode: Value,
    check: Option<Value>,
}

/// For each frame: `decode*Message(text)` and `check*Message(JSON.parse(text))` (`check` is
/// `null` when the text is not JSON); a throw is reported, never propagated.
const NODE_BODY: &str = r#"
return input.map(({ direction, text }) => {
  const [decodeFn, checkFn] = direction === "client"
    ? [generated.decodeClientMessage, generated.checkClientMessage]
    : [generated.decodeServerMessage, generated.checkServerMessage];
  const run = (f, arg) => {
    try {
      return f(arg);
    } catch (error) {
      return { threw: String(error && error.stack ? error.stack : error) };
    }
  };
  let parsed;
  try {
    parsed = { value: JSON.parse(text) };
  } catch {
    parsed = undefined;
  }
  return { decode: run(decodeFn, text), check: parsed ? run(checkFn, parsed.value) : null };
});
"#;

/// Runs every input through the generated decoder under Node; one result per input.
fn node_verdicts(inputs: &[Input]) -> Vec<Verdicts> {
    let input: Vec<Value> = inputs
        .iter()
        .map(|i| json!({ "direction": side(i.direction), "text": i.text }))
        .collect();
    let results = common::run_generated_typescript(
        "decode agreement test",
        "decode.js",
        NODE_BODY,
        &Value::Array(input),
    );
    assert_eq!(results.len(), inputs.len(), "one verdict per frame");
    results
        .into_iter()
        .map(|mut r| Verdicts {
            decode: r["decode"].take(),
            check: Some(r["check"].take()).filter(|c| !c.is_null()),
        })
        .collect()
}

fn side(direction: Direction) -> &'static str {
    match direction {
        Direction::ClientToServer => "client",
        Direction::ServerToClient => "server",
    }
}

/// What the Rust side says: `Ok` or the pointer of its complaint. A publish whose envelope
/// decodes is also judged by the catalog, as a server would (pointer `/data/payload`).
fn rust_verdict(direction: Direction, text: &str) -> Result<(), String> {
    match direction {
        Direction::ClientToServer => match decode_client_frame(text) {
            Err(e) => Err(e.pointer),
            Ok(ClientMessage::Publish { data, .. }) => {
                TopicEvent::decode(&data.topic, &data.payload)
                    .map(|_| ())
                    .map_err(|e| match e {
                        rtbus_protocol::catalog::CatalogError::UnknownTopic { .. } => {
                            "/data/topic".to_owned()
                        }
                        _ => "/data/payload".to_owned(),
                    })
            }
            Ok(_) => Ok(()),
        },
        Direction::ServerToClient => decode_server_frame(text).map(|_| ()).map_err(|e| e.pointer),
    }
}

/// Whether one pointer names the other or a place inside it (`""` contains every place).
fn nested(a: &str, b: &str) -> bool {
    let inside = |outer: &str, inner: &str| {
        inner == outer
            || inner
                .strip_prefix(outer)
                .is_some_and(|r| r.starts_with('/'))
    };
    inside(a, b) || inside(b, a)
}

/// The shape every refusal must have; `Err` says what is wrong with it.
fn refusal(result: &Value) -> Result<(&str, &str, &str), String> {
    if let Some(threw) = result.get("threw") {
        return Err(format!("threw {threw}"));
    }
    if result["ok"] != json!(false) {
        return Err(format!("accepted it: {result}"));
    }
    let error = &result["error"];
    let field = |name: &str| error[name].as_str().filter(|s| !s.is_empty());
    match (field("pointer"), field("expected"), field("message")) {
        (pointer, Some(expected), Some(message)) => {
            let pointer = pointer.unwrap_or("");
            if !(pointer.is_empty() || pointer.starts_with('/')) {
                return Err(format!("pointer {pointer:?} is not a JSON pointer"));
            }
            if !message.starts_with("at ") || !message.contains(expected) || message.contains('\n')
            {
                return Err(format!(
                    "message {message:?} is not one line \"at <where>: expected {expected}, found …\""
                ));
            }
            Ok((pointer, expected, message))
        }
        _ => Err(format!(
            "error without pointer, expected or message: {error}"
        )),
    }
}

fn to_text<T: serde::Serialize>(message: &T) -> String {
    serde_json::to_string(message).expect("wire types serialize")
}

fn valid_inputs() -> Vec<Input> {
    let mut out = Vec::new();
    let client = corpus::client_corpus().expect("the client corpus builds");
    let server = corpus::server_corpus().expect("the server corpus builds");
    for example in &client {
        out.push(Input {
            name: format!("client/{}", example.name),
            direction: Direction::ClientToServer,
            text: to_text(&example.message),
        });
    }
    for example in &server {
        out.push(Input {
            name: format!("server/{}", example.name),
            direction: Direction::ServerToClient,
            text: to_text(&example.message),
        });
    }
    for (i, message) in corpus::sample(strategies::client_message(), SAMPLES)
        .iter()
        .enumerate()
    {
        out.push(Input {
            name: format!("client/extra_sample_{i}"),
            direction: Direction::ClientToServer,
            text: to_text(message),
        });
    }
    for (i, message) in corpus::sample(strategies::server_message(), SAMPLES)
        .iter()
        .enumerate()
    {
        out.push(Input {
            name: format!("server/extra_sample_{i}"),
            direction: Direction::ServerToClient,
            text: to_text(message),
        });
    }
    out
}

fn negative_inputs() -> Vec<Input> {
    corpus::negative_cases()
        .into_iter()
        .map(|case| Input {
            name: case.name.to_owned(),
            direction: case.direction,
            text: case.frame.to_string(),
        })
        .collect()
}

/// A ping whose `data` nests `levels` arrays: the frame is `levels + 1` deep.
fn nested_ping(levels: usize) -> String {
    format!(
        r#"{{"type":"ping","data":{}{}}}"#,
        "[".repeat(levels),
        "]".repeat(levels)
    )
}

fn event_at(time: &str) -> String {
    json!({"type": "event", "data": {"topic": "custom.x", "epoch": "e", "seq": 1, "emittedAt": time, "isReplay": false, "payload": 1}}).to_string()
}

/// Frames the corpus never produces; the TypeScript verdict must be Rust's.
fn unusual_inputs() -> Vec<Input> {
    use Direction::{ClientToServer as C, ServerToClient as S};
    let astral = |n: usize| json!({"type": "ping", "id": "\u{1F600}".repeat(n)}).to_string();
    let cases: Vec<(&str, Direction, String)> = vec![
        ("whole_float_seq", C, r#"{"type":"subscribe","data":{"topics":[{"topic":"custom.x","resumeAfter":80.0,"epoch":"e1"}]}}"#.into()),
        ("whole_float_u16", C, r#"{"type":"publish","data":{"topic":"terminals.state","payload":{"terminalId":"t","status":"exited","exitCode":1.0,"cols":80.0,"rows":24}}}"#.into()),
        ("fraction_seq", C, r#"{"type":"subscribe","data":{"topics":[{"topic":"custom.x","resumeAfter":80.5,"epoch":"e1"}]}}"#.into()),
        ("ping_data_null", C, r#"{"type":"ping","data":null}"#.into()),
        ("safe_edges", C, r#"{"type":"publish","data":{"topic":"custom.x","payload":[9007199254740991, -9007199254740991, 0.1]}}"#.into()),
        ("unsafe_2_53", C, r#"{"type":"publish","data":{"topic":"custom.x","payload":[9007199254740992]}}"#.into()),
        ("unsafe_negative", S, r#"{"type":"pong","data":{"n":-9007199254740992}}"#.into()),
        ("ping_2_64", C, r#"{"type":"ping","data":{"big":18446744073709551616}}"#.into()),
        ("id_64_astral", C, astral(MAX_REQUEST_ID_LEN)),
        ("id_65_astral", C, astral(MAX_REQUEST_ID_LEN + 1)),
        ("depth_at_limit", C, nested_ping(MAX_NESTING_DEPTH - 1)),
        ("depth_over_limit", C, nested_ping(MAX_NESTING_DEPTH)),
        ("depth_over_limit_server", S, format!(r#"{{"type":"pong","data":{}{}}}"#, "{\"a\":".repeat(MAX_NESTING_DEPTH), "}".repeat(MAX_NESTING_DEPTH))),
        ("brackets_in_strings", C, format!(r#"{{"type":"ping","data":"{}\"{}"}}"#, "[".repeat(100), "{".repeat(100))),
        ("proto_key_free_form", C, r#"{"type":"ping","data":{"__proto__":1,"constructor":2}}"#.into()),
        ("proto_key_unknown_field", C, r#"{"type":"auth","data":{"token":"t","__proto__":{}}}"#.into()),
        ("constructor_unknown_field", C, r#"{"type":"auth","data":{"token":"t","constructor":"x"}}"#.into()),
        ("not_json", C, r#"{"type":"ping""#.into()),
        ("trailing_garbage", S, r#"{"type":"pong"} x"#.into()),
        ("not_an_object", S, "[]".into()),
        ("type_not_string", S, r#"{"type":1}"#.into()),
        ("leap_day", S, event_at("2024-02-29T00:00:00Z")),
        ("no_feb_30", S, event_at("2026-02-30T00:00:00Z")),
        ("no_month_13", S, event_at("2026-13-01T00:00:00Z")),
        ("no_hour_24", S, event_at("2026-11-21T24:00:00Z")),
        ("leap_second", S, event_at("2016-12-31T23:59:60Z")),
        ("nine_fraction_digits", S, event_at("2026-11-21T09:30:00.123456789Z")),
        ("ten_fraction_digits", S, event_at("2026-11-21T09:30:00.1234567890Z")),
        ("keyed_topic_any_key", S, r#"{"type":"event","data":{"topic":"sessions.activity:A.b~c-d_e","epoch":"e","seq":1,"emittedAt":"2026-11-21T09:30:00Z","isReplay":true,"payload":{"kind":"status","text":"","at":"2026-11-21T09:30:00Z"}}}"#.into()),
    ];
    cases
        .into_iter()
        .map(|(name, direction, text)| Input {
            name: format!("unusual/{name}"),
            direction,
            text,
        })
        .collect()
}

struct Run {
    valid: Vec<Input>,
    negative: Vec<Input>,
    unusual: Vec<Input>,
    verdicts: Vec<Verdicts>,
}

impl Run {
    fn verdicts(&self) -> impl Iterator<Item = (&Input, &Verdicts)> {
        self.valid
            .iter()
            .chain(&self.negative)
            .chain(&self.unusual)
            .zip(&self.verdicts)
    }

    fn find(&self, name: &str) -> &Verdicts {
        self.verdicts()
            .find(|(input, _)| input.name == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no input named {name}"))
    }
}

/// Node runs once per test binary: transpiling and starting it dominate the cost.
fn run() -> &'static Run {
    static RUN: LazyLock<Run> = LazyLock::new(|| {
        let (valid, negative, unusual) = (valid_inputs(), negative_inputs(), unusual_inputs());
        let all: Vec<Input> = valid
            .iter()
            .chain(&negative)
            .chain(&unusual)
            .map(|i| Input {
                name: i.name.clone(),
                direction: i.direction,
                text: i.text.clone(),
            })
            .collect();
        let verdicts = node_verdicts(&all);
        Run {
            valid,
            negative,
            unusual,
            verdicts,
        }
    });
    &RUN
}

fn report(failures: &[String], of: usize, what: &str) {
    assert!(
        failures.is_empty(),
        "{} of {of} {what}; the first:\n{}",
        failures.len(),
        failures
            .iter()
            .take(8)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn every_valid_message_decodes_unchanged() {
    let run = run();
    let mut failures = Vec::new();
    for (input, verdicts) in run.verdicts().take(run.valid.len()) {
        let sent: Value = serde_json::from_str(&input.text).expect("corpus text is JSON");
        for (how, result) in [
            ("decode", Some(&verdicts.decode)),
            ("check", verdicts.check.as_ref()),
        ] {
            let Some(result) = result else {
                failures.push(format!("{}: Node could not parse it", input.name));
                continue;
            };
            if result["ok"] != json!(true) {
                failures.push(format!(
                    "{}: {how} refuses {}: {result}",
                    input.name, input.text
                ));
            } else if common::numbers_as_f64(&result["value"]) != common::numbers_as_f64(&sent) {
                failures.push(format!(
                    "{}: {how} changed the value: {} became {}",
                    input.name, input.text, result["value"]
                ));
            }
        }
    }
    report(
        &failures,
        run.valid.len(),
        "valid messages fail in decode.ts",
    );
    assert!(run.valid.len() > 2 * SAMPLES, "the corpus was not included");
}

#[test]
fn every_negative_case_is_refused_where_rust_complains() {
    let run = run();
    let mut failures = Vec::new();
    let negatives = run
        .verdicts()
        .skip(run.valid.len())
        .take(run.negative.len());
    for (input, verdicts) in negatives {
        let Err(rust) = rust_verdict(input.direction, &input.text) else {
            failures.push(format!("{}: Rust accepts it", input.name));
            continue;
        };
        for (how, result) in [
            ("decode", Some(&verdicts.decode)),
            ("check", verdicts.check.as_ref()),
        ] {
            let Some(result) = result else { continue };
            match refusal(result) {
                Err(why) => failures.push(format!("{}: {how} {why}", input.name)),
                Ok((pointer, _, _)) if !nested(&rust, pointer) => failures.push(format!(
                    "{}: {how} points at {pointer:?}, Rust at {rust:?}: {}",
                    input.name, result["error"]["message"]
                )),
                Ok(_) => {}
            }
        }
        if verdicts.check.as_ref().map(|c| &c["error"]) != Some(&verdicts.decode["error"]) {
            failures.push(format!(
                "{}: decode and check disagree: {} vs {:?}",
                input.name, verdicts.decode, verdicts.check
            ));
        }
    }
    report(
        &failures,
        run.negative.len(),
        "negative cases are not refused properly",
    );
}

#[test]
fn unusual_frames_get_the_rust_verdict() {
    let run = run();
    let mut failures = Vec::new();
    for (input, verdicts) in run.verdicts().skip(run.valid.len() + run.negative.len()) {
        let rust = rust_verdict(input.direction, &input.text);
        let results = [
            ("decode", Some(&verdicts.decode)),
            ("check", verdicts.check.as_ref()),
        ];
        for (how, result) in results {
            let Some(result) = result else { continue };
            match (&rust, refusal(result)) {
                (Ok(()), _) if result["ok"] == json!(true) => {}
                (Ok(()), _) => failures.push(format!(
                    "{}: Rust accepts {}, {how} says {result}",
                    input.name, input.text
                )),
                (Err(_), Err(why)) => failures.push(format!(
                    "{}: Rust refuses {}, {how} {why}",
                    input.name, input.text
                )),
                (Err(rust), Ok((pointer, _, _))) if !nested(rust, pointer) => {
                    failures.push(format!(
                        "{}: {how} points at {pointer:?}, Rust at {rust:?}",
                        input.name
                    ))
                }
                (Err(_), Ok(_)) => {}
            }
        }
    }
    report(
        &failures,
        run.unusual.len(),
        "unusual frames get another verdict than in Rust",
    );
}

/// The error a user sees, for a few typical mistakes: pointer and expected text exactly.
#[test]
fn typical_errors_name_the_place_and_the_expectation() {
    let run = run();
    let known = "a topic of a known family: sessions.state, sessions.activity:<sessionId>, \
                 terminals.state, drives.pressure or custom.<name>[:<key>]";
    let too_deep = format!("at most {MAX_NESTING_DEPTH} levels of nested arrays and objects");
    let cases: &[(&str, &str, &str)] = &[
        (
            "event_seq_unsafe",
            "/data/seq",
            "an integer in 0..=9007199254740991",
        ),
        (
            "resume_after_fraction",
            "/data/topics/0/resumeAfter",
            "an integer in 0..=9007199254740991",
        ),
        ("auth_unknown_field", "/data/user", "only the fields token"),
        (
            "missing_type",
            "/type",
            "one of \"auth\", \"subscribe\", \"unsubscribe\", \"publish\", \"ping\"",
        ),
        (
            "resume_after_without_epoch",
            "/data/topics/0",
            "the field \"epoch\" together with \"resumeAfter\"",
        ),
        (
            "event_payload_missing_field",
            "/data/payload",
            "the field \"threshold\"",
        ),
        ("event_unknown_family", "/data/topic", known),
        (
            "id_too_many_characters",
            "/id",
            "a string of 1 to 64 characters",
        ),
        (
            "event_custom_unsafe_integer",
            "/data/payload/n/0",
            "a number in -9007199254740991..=9007199254740991",
        ),
        (
            "subscribed_unknown_start",
            "/data/topics/0/start",
            "one of \"snapshot\", \"live\", \"resumed\", \"reset\"",
        ),
        ("unusual/depth_over_limit", "", &too_deep),
        (
            "unusual/no_feb_30",
            "/data/emittedAt",
            "an RFC 3339 date-time matching ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?Z$",
        ),
    ];
    let mut failures = Vec::new();
    for (name, pointer, expected) in cases {
        let decode = &run.find(name).decode;
        match refusal(decode) {
            Ok((p, e, _)) if (p, e) == (*pointer, *expected) => {}
            Ok((p, e, message)) => failures.push(format!(
                "{name}: expected pointer {pointer:?} and expected {expected:?}, got {p:?} and \
                 {e:?} ({message})"
            )),
            Err(why) => failures.push(format!("{name}: {why}")),
        }
    }
    // The message quotes the offending value.
    let message = run.find("id_too_many_characters").decode["error"]["message"].clone();
    assert_eq!(
        message,
        json!("at /id: expected a string of 1 to 64 characters, found 65 characters"),
    );
    report(&failures, cases.len(), "typical errors read differently");
}
