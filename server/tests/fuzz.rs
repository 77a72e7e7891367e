//! Fuzzing the server's frame path (decode, dispatch, replies) over loopback sockets, on stable
//! Rust: valid frames (built here and taken from `conformance/cases`) mutated by bit flips,
//! truncation, splicing, insertion, deep nesting, huge numbers, odd strings and structural edits,
//! plus random text and fragmented messages, from a deterministic seed.
//!
//! Every input goes to a real server in this process as a WebSocket text frame, followed by a
//! `ping` that must be answered (or a close frame with a declared code when the input was one
//! the server closes for). Every frame the server sends must decode against the protocol. The
//! run fails on any panic anywhere in the process, on a connection that ends without a close
//! frame, and when the server does not serve a normal session afterwards.
//!
//! `RTBUS_FUZZ_INPUTS` (default 10,000, the CI size) and `RTBUS_FUZZ_SEED` set the run;
//! `cargo xtask fuzz --inputs 1000000` runs it in release.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use rtbus_protocol::{CloseCode, ServerMessage, decode_server_frame};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// Connections fuzzing side by side, each with its own share of the inputs.
const LANES: usize = 4;
/// The server's `max_message_bytes` in this run.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// splitmix64: small, fast, and the same sequence on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// One fuzz input as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Input {
    /// A text frame; the bytes may be invalid UTF-8 (the server then closes with 1007).
    Text(Vec<u8>),
    /// A valid text message split into fragments (a text frame and continuations).
    Fragmented(Vec<Vec<u8>>),
}

/// Valid frames of every kind, built from the protocol's own shapes.
fn built_corpus() -> Vec<String> {
    let now = "2026-11-21T09:30:00.125Z";
    let frames = vec![
        auth("a1", PUBLISHER),
        auth("a2", ALICE),
        auth("a3", "not-a-token"),
        subscribe("s1", &["drives.pressure", "custom.public.fz"]),
        subscribe_with(
            "s2",
            [no_snapshot("custom.public.fz"), no_snapshot("custom.fz")],
        ),
        subscribe_with("s3", [resume("custom.public.fz", &foreign_epoch(), 3)]),
        subscribe("s4", &["sessions.state", "terminals.state"]),
        subscribe("s5", &["sessions.activity:alice-1"]),
        unsubscribe("u1", &["custom.public.fz", "drives.pressure"]),
        publish(
            "p1",
            "custom.public.fz",
            json!({"n": 1, "list": [1, 2.5, "x", null, true]}),
        ),
        publish("p2", "drives.pressure", pressure("sda", 0.5)),
        publish(
            "p3",
            "sessions.state",
            json!({"sessionId": "s", "status": "running", "title": "t", "updatedAt": now}),
        ),
        publish(
            "p4",
            "sessions.activity:alice-1",
            json!({"kind": "message", "text": "hi", "at": now}),
        ),
        publish(
            "p5",
            "terminals.state",
            json!({"terminalId": "t", "status": "running", "cols": 80, "rows": 24}),
        ),
        publish("p6", "custom.fz", json!("a string payload")),
        ping("k1"),
    ];
    let mut corpus: Vec<String> = frames
        .iter()
        .map(|f| serde_json::to_string(f).expect("encodable"))
        .collect();
    corpus.push(r#"{"type":"ping","id":"k2","data":{"nested":[{"a":[1,2,{"b":null}]}]}}"#.into());
    corpus
}

/// Replaces every `{{…}}` template of a conformance case with a plain word.
fn untemplate(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        match rest[start..].find("}}") {
            Some(end) => {
                out.push_str("fz");
                rest = &rest[start + end + 2..];
            }
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every frame the conformance cases send (`send` steps' `frame` or `text`), templates filled.
fn case_corpus() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/cases");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    let mut frames = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("readable case");
        let case: Value =
            serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        let steps = case["steps"].as_array().cloned().unwrap_or_default();
        for step in steps {
            if step["do"] != "send" {
                continue;
            }
            if let Some(frame) = step.get("frame") {
                frames.push(untemplate(&frame.to_string()));
            } else if let Some(text) = step["text"].as_str() {
                frames.push(untemplate(text));
            }
        }
    }
    frames
}

const NUMBERS: &[&str] = &[
    "1e400",
    "-1e400",
    "-0",
    "18446744073709551616",
    "9007199254740993",
    "-9007199254740992",
    "9007199254740991",
    "1.7976931348623157e309",
    "0.000000000000000000001",
    "123456789012345678901234567890",
    "1E+2",
    "01",
    "NaN",
];

const STRINGS: &[&str] = &[
    "",
    "\\ud800",
    "\\udc00\\ud800",
    "\\u0000",
    "\u{1F600}",
    "a\\\"b",
    "\\n\\t\\r",
    "*",
    "custom.",
    "..",
    "sessions.activity:",
];

/// Bytes that matter to a JSON parser.
const JSON_BYTES: &[u8] = b"{}[]\":,\\ 0123456789eE-+.ntfrul\x00\x7f";

fn mutate(rng: &mut Rng, corpus: &[String], seed: &str) -> Vec<u8> {
    let mut bytes = seed.as_bytes().to_vec();
    for _ in 0..=rng.below(3) {
        let len = bytes.len().max(1);
        match rng.below(11) {
            0 => {
                // Bit flip (may make the text invalid UTF-8).
                let at = rng.below(len);
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= 1 << rng.below(8);
                }
            }
            1 => {
                let at = rng.below(len);
                bytes.truncate(at);
            }
            2 => {
                let at = rng.below(len + 1).min(bytes.len());
                bytes.insert(at, *rng.pick(JSON_BYTES));
            }
            3 => {
                let from = rng.below(len).min(bytes.len());
                let to = (from + 1 + rng.below(16)).min(bytes.len());
                bytes.drain(from..to);
            }
            4 => {
                // Splice: this frame's head, another's tail.
                let other = rng.pick(corpus).as_bytes();
                let head = rng.below(len + 1).min(bytes.len());
                let tail = rng.below(other.len() + 1);
                bytes.truncate(head);
                bytes.extend_from_slice(&other[tail..]);
            }
            5 => {
                // Duplicate a range.
                let from = rng.below(len).min(bytes.len());
                let to = (from + 1 + rng.below(32)).min(bytes.len());
                let copy = bytes[from..to].to_vec();
                let at = rng.below(bytes.len() + 1);
                bytes.splice(at..at, copy);
            }
            6 => bytes = replace_token(rng, &bytes, |b| b.is_ascii_digit(), NUMBERS),
            7 => bytes = replace_string(rng, &bytes),
            8 => bytes = nest(rng, &bytes),
            9 => bytes = edit_structure(rng, &bytes),
            _ => {
                // A duplicate key or a second top-level field.
                let extra = rng.pick(&[
                    r#""type":"ping","#,
                    r#""id":"dup","#,
                    r#""data":{},"#,
                    r#""extra":1,"#,
                ]);
                if let Some(at) = bytes.iter().position(|&b| b == b'{') {
                    bytes.splice(at + 1..at + 1, extra.bytes());
                }
            }
        }
    }
    bytes
}

/// Replaces one run of bytes matching `class` by a pick from `with`.
fn replace_token(rng: &mut Rng, bytes: &[u8], class: fn(&u8) -> bool, with: &[&str]) -> Vec<u8> {
    let starts: Vec<usize> = (0..bytes.len())
        .filter(|&i| class(&bytes[i]) && (i == 0 || !class(&bytes[i - 1])))
        .collect();
    if starts.is_empty() {
        return bytes.to_vec();
    }
    let start = *rng.pick(&starts);
    let end = (start..bytes.len())
        .find(|&i| !class(&bytes[i]))
        .unwrap_or(bytes.len());
    let mut out = bytes[..start].to_vec();
    out.extend_from_slice(rng.pick(with).as_bytes());
    out.extend_from_slice(&bytes[end..]);
    out
}

/// Replaces the contents of one string literal: an odd string, or a long one (sometimes past
/// the message limit).
fn replace_string(rng: &mut Rng, bytes: &[u8]) -> Vec<u8> {
    let quotes: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i] == b'"').collect();
    if quotes.len() < 2 {
        return bytes.to_vec();
    }
    let at = rng.below(quotes.len() - 1);
    let (open, close) = (quotes[at], quotes[at + 1]);
    let filler = if rng.chance(10) {
        let n = *rng.pick(&[1000, 60_000, MAX_MESSAGE_BYTES + 10]);
        "x".repeat(n)
    } else {
        (*rng.pick(STRINGS)).to_owned()
    };
    let mut out = bytes[..=open].to_vec();
    out.extend_from_slice(filler.as_bytes());
    out.extend_from_slice(&bytes[close..]);
    out
}

/// Wraps a value (from some `[`, `{` or `:`) in many arrays.
fn nest(rng: &mut Rng, bytes: &[u8]) -> Vec<u8> {
    let depth = *rng.pick(&[60, 62, 63, 64, 65, 200, 5000]);
    let colons: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i] == b':').collect();
    let Some(&colon) = colons.get(rng.below(colons.len().max(1))) else {
        return bytes.to_vec();
    };
    // The value after the colon ends at the next ',' or '}' (good enough for mutation).
    let end = (colon + 1..bytes.len())
        .find(|&i| bytes[i] == b',' || bytes[i] == b'}')
        .unwrap_or(bytes.len());
    let mut out = bytes[..=colon].to_vec();
    out.extend(std::iter::repeat_n(b'[', depth));
    out.extend_from_slice(&bytes[colon + 1..end]);
    out.extend(std::iter::repeat_n(b']', depth));
    out.extend_from_slice(&bytes[end..]);
    out
}

/// Parses the frame and edits its tree: removes a member, adds one, or changes a value's type.
fn edit_structure(rng: &mut Rng, bytes: &[u8]) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<Value>(bytes) else {
        return bytes.to_vec();
    };
    let replacements = [
        json!(null),
        json!(true),
        json!(-1),
        json!(1.5),
        json!(""),
        json!([]),
        json!({}),
        json!(["custom.public.fz"]),
        json!({"topic": "custom.public.fz"}),
        json!(u64::MAX),
    ];
    // A path down the tree, as a JSON pointer, chosen on a shared borrow.
    let mut pointer = String::new();
    let mut node = &value;
    for _ in 0..rng.below(4) {
        let step = match node {
            Value::Object(map) if !map.is_empty() => {
                let (key, child) = map.iter().nth(rng.below(map.len())).expect("in range");
                Some((key.replace('~', "~0").replace('/', "~1"), child))
            }
            Value::Array(items) if !items.is_empty() => {
                let at = rng.below(items.len());
                Some((at.to_string(), &items[at]))
            }
            _ => None,
        };
        let Some((token, child)) = step else {
            break;
        };
        pointer.push('/');
        pointer.push_str(&token);
        node = child;
    }
    let Some(node) = value.pointer_mut(&pointer) else {
        return bytes.to_vec();
    };
    match (rng.below(3), node) {
        (0, Value::Object(map)) if !map.is_empty() => {
            let key = map.keys().nth(rng.below(map.len())).cloned();
            if let Some(key) = key {
                map.remove(&key);
            }
        }
        (1, Value::Object(map)) => {
            let key = *rng.pick(&["id", "type", "data", "topics", "epoch", "resumeAfter", "z"]);
            map.insert(key.into(), rng.pick(&replacements).clone());
        }
        (_, node) => *node = rng.pick(&replacements).clone(),
    }
    value.to_string().into_bytes()
}

/// Random printable and JSON-ish text.
fn random_text(rng: &mut Rng) -> Vec<u8> {
    let len = rng.below(200);
    (0..len)
        .map(|_| {
            if rng.chance(50) {
                *rng.pick(JSON_BYTES)
            } else {
                b' ' + rng.below(95) as u8
            }
        })
        .collect()
}

/// The `n`-th input of the lane seeded `seed`.
fn generate(rng: &mut Rng, corpus: &[String]) -> Input {
    let seed = rng.pick(corpus).clone();
    match rng.below(100) {
        0..=4 => Input::Text(random_text(rng)),
        5..=19 => Input::Text(seed.into_bytes()),
        20..=23 => {
            let bytes = seed.into_bytes();
            let cut = 1 + rng.below(bytes.len().max(2) - 1);
            let cut = cut.min(bytes.len());
            // Split on a character boundary so each fragment joins back to valid text.
            let text = String::from_utf8(bytes).unwrap_or_default();
            let cut = (0..=cut)
                .rev()
                .find(|&c| text.is_char_boundary(c))
                .unwrap_or(0);
            let (a, b) = text.split_at(cut);
            Input::Fragmented(vec![a.as_bytes().to_vec(), b.as_bytes().to_vec()])
        }
        _ => Input::Text(mutate(rng, corpus, &seed)),
    }
}

/// What one lane saw.
#[derive(Debug, Default)]
struct Tally {
    inputs: usize,
    /// Server frames by kind.
    frames: BTreeMap<String, usize>,
    /// Closes by code.
    closes: BTreeMap<u16, usize>,
    bytes: usize,
}

/// Why a lane failed.
type Failure = String;

async fn connect(server: &rtbus_server::RunningServer) -> Ws {
    Client::dial(server, Dial::default())
        .await
        .expect("the fuzzed server still accepts connections")
        .ws
}

/// Reads until the pong answering `sync` (then `Ok(true)`) or a close frame (`Ok(false)`),
/// checking every text frame against the protocol.
async fn read_until(ws: &mut Ws, sync: &str, tally: &mut Tally) -> Result<bool, Failure> {
    loop {
        let next = tokio::time::timeout(STEP, ws.next())
            .await
            .map_err(|_| format!("no answer to {sync} within {STEP:?}"))?;
        match next {
            Some(Ok(Message::Text(text))) => {
                let message = decode_server_frame(&text)
                    .map_err(|err| format!("invalid server frame {text}: {err}"))?;
                *tally.frames.entry(message.kind().to_owned()).or_default() += 1;
                if let ServerMessage::Pong { id: Some(id), .. } = &message {
                    if id.as_str() == sync {
                        return Ok(true);
                    }
                }
            }
            Some(Ok(Message::Close(frame))) => {
                let code = frame
                    .map(|f| u16::from(f.code))
                    .ok_or("close frame without a code")?;
                if CloseCode::from_value(code).is_none() {
                    return Err(format!("undeclared close code {code}"));
                }
                *tally.closes.entry(code).or_default() += 1;
                return Ok(false);
            }
            Some(Ok(_)) => {}
            Some(Err(err)) => return Err(format!("the connection failed: {err}")),
            None => return Err("the connection ended without a close frame".into()),
        }
    }
}

async fn send(ws: &mut Ws, input: &Input) -> Result<(), Failure> {
    let result = match input {
        Input::Text(bytes) => match String::from_utf8(bytes.clone()) {
            Ok(text) => ws.send(Message::text(text)).await,
            Err(_) => {
                let frame = Frame::message(bytes.clone(), OpCode::Data(Data::Text), true);
                ws.send(Message::Frame(frame)).await
            }
        },
        Input::Fragmented(parts) => {
            let last = parts.len() - 1;
            let mut result = Ok(());
            for (at, part) in parts.iter().enumerate() {
                let opcode = if at == 0 {
                    OpCode::Data(Data::Text)
                } else {
                    OpCode::Data(Data::Continue)
                };
                let frame = Frame::message(part.clone(), opcode, at == last);
                result = ws.feed(Message::Frame(frame)).await;
                if result.is_err() {
                    break;
                }
            }
            result.and(ws.flush().await)
        }
    };
    result.map_err(|err| format!("cannot send: {err}"))
}

async fn lane(
    server: Arc<rtbus_server::RunningServer>,
    corpus: Arc<Vec<String>>,
    seed: u64,
    inputs: usize,
) -> Result<Tally, Failure> {
    let mut rng = Rng(seed);
    let mut tally = Tally::default();
    let mut ws = connect(&server).await;
    for n in 0..inputs {
        let input = generate(&mut rng, &corpus);
        tally.inputs += 1;
        tally.bytes += match &input {
            Input::Text(b) => b.len(),
            Input::Fragmented(parts) => parts.iter().map(Vec::len).sum(),
        };
        send(&mut ws, &input)
            .await
            .map_err(|e| format!("input {n} {input:?}: {e}"))?;
        let sync = format!("fz-sync-{n}");
        let ping = format!(r#"{{"type":"ping","id":"{sync}"}}"#);
        // A closing server may already refuse the ping; the read below says what happened.
        let _ = ws.send(Message::text(ping)).await;
        let open = read_until(&mut ws, &sync, &mut tally)
            .await
            .map_err(|e| format!("input {n} {:?}: {e}", shorten(&input)))?;
        if !open {
            ws = connect(&server).await;
        }
    }
    Ok(tally)
}

/// An input, cut for a failure message.
fn shorten(input: &Input) -> String {
    let bytes = match input {
        Input::Text(b) => b.clone(),
        Input::Fragmented(parts) => parts.concat(),
    };
    let text = String::from_utf8_lossy(&bytes);
    text.chars().take(300).collect()
}

fn number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|err| panic!("{name}={value}: {err}")),
        Err(_) => default,
    }
}

#[test]
fn inputs_are_the_same_for_the_same_seed() {
    let corpus = built_corpus();
    let run = |seed| {
        let mut rng = Rng(seed);
        (0..200)
            .map(|_| generate(&mut rng, &corpus))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
    assert!(
        case_corpus().len() > 100,
        "the conformance cases send frames"
    );
    assert_eq!(
        untemplate(r#"{"topic":"custom.c{{nonce}}x"}"#),
        r#"{"topic":"custom.cfzx"}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_and_mutated_frames_never_panic_the_server_and_it_serves_afterwards() {
    let inputs = number("RTBUS_FUZZ_INPUTS", 10_000) as usize;
    let seed = number("RTBUS_FUZZ_SEED", 0x5eed);
    let panics = Arc::new(AtomicUsize::new(0));
    let default_hook = std::panic::take_hook();
    let counted = Arc::clone(&panics);
    std::panic::set_hook(Box::new(move |info| {
        counted.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));

    let mut config = config();
    config.limits.max_message_bytes = MAX_MESSAGE_BYTES;
    // Guessing is the point here: keep the per-address lockout from hiding the auth path.
    config.limits.max_auth_failures_per_address = usize::MAX;
    let server = Arc::new(start(config).await);
    let mut corpus = built_corpus();
    corpus.extend(case_corpus());
    let corpus = Arc::new(corpus);

    let started = Instant::now();
    let mut lanes = Vec::new();
    for at in 0..LANES {
        let share = inputs / LANES + usize::from(at < inputs % LANES);
        let lane_seed = seed
            .wrapping_add(at as u64)
            .wrapping_mul(0x2545_f491_4f6c_dd1d);
        lanes.push(tokio::spawn(lane(
            Arc::clone(&server),
            Arc::clone(&corpus),
            lane_seed,
            share,
        )));
    }
    let mut total = Tally::default();
    for lane in lanes {
        let tally = lane
            .await
            .expect("the lane task itself never panics")
            .unwrap_or_else(|failure| panic!("seed {seed}: {failure}"));
        total.inputs += tally.inputs;
        total.bytes += tally.bytes;
        for (kind, n) in tally.frames {
            *total.frames.entry(kind).or_default() += n;
        }
        for (code, n) in tally.closes {
            *total.closes.entry(code).or_default() += n;
        }
    }
    let elapsed = started.elapsed();
    println!(
        "fuzz: {} inputs ({} bytes, {} corpus frames, seed {seed}) in {elapsed:.1?}; \
         server frames {:?}; closes {:?}",
        total.inputs,
        total.bytes,
        corpus.len(),
        total.frames,
        total.closes
    );
    assert_eq!(total.inputs, inputs, "every input was offered");
    assert!(
        total.frames.get("error").copied().unwrap_or(0) > inputs / 4,
        "most mutated frames are refused with an error: {:?}",
        total.frames
    );

    // Alive: a normal session works from start to end.
    let mut reader = Client::with_token(&server, ALICE).await;
    let reply = reader
        .request(&subscribe_with("s", [no_snapshot("custom.fz.after")]))
        .await;
    assert_reply(&reply, "subscribed", "s");
    let mut publisher = Client::connect(&server).await;
    assert_reply(
        &publisher.request(&auth("a", PUBLISHER)).await,
        "authenticated",
        "a",
    );
    let reply = publisher
        .request(&publish("p", "custom.fz.after", json!({"ok": true})))
        .await;
    assert_reply(&reply, "published", "p");
    let message = reader.recv().await;
    assert_eq!(delivery(&message).payload, json!({"ok": true}));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        panics.load(Ordering::SeqCst),
        0,
        "a panic happened in the server (see the output above)"
    );
}
