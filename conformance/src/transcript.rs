//! The transcript format: one conformance case per JSON file, parsed with errors that name the
//! file, the line and what was expected.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use rtbus_protocol::rules::Rule;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::AtPointer;
pub use crate::error::{CaseError, TranscriptError, TranscriptErrorKind};
use crate::expr::{Count, Expr};
use crate::matcher;
use crate::template;

/// One conformance case: who connects, what they send, and what the server must answer.
///
/// Frames in `expect` steps are *matchers*: plain JSON values match themselves exactly (objects
/// must have exactly the same keys), and objects whose keys all start with `$` match a set of
/// values. See the format reference in `conformance/README.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Case {
    /// The JSON Schema of this format, for editors. Ignored by the runner.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// A stable id, unique in the suite, e.g. `subscribe.snapshot-before-events`.
    pub id: String,
    /// One line saying what the case checks.
    pub title: String,
    /// Longer explanation, when the title is not enough.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The protocol rules the case checks, by id (anchors `rule-<id>` in `PROTOCOL.md`).
    pub rules: Vec<String>,
    /// Free-form tags for `--filter` and `--exclude`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// What the server under test must support for the case to apply. A server that declares
    /// one of these absent gets `unsupported` instead of `failed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<Capability>,
    /// The connections the case opens, by name.
    pub connections: BTreeMap<String, ConnectionSpec>,
    /// What happens, in order.
    pub steps: Vec<Step>,
}

/// A feature of the protocol a server under test may declare absent.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// Token authentication (`auth` frame and bearer header) and authorization.
    Auth,
    /// Publishing over the socket.
    Publish,
    /// Resuming a subscription after a known `seq`.
    Resume,
    /// Topics readable without authentication.
    PublicTopics,
    /// The configured limits of the testee contract (message size, topics per connection).
    Limits,
    /// WebSocket heartbeat with a timeout.
    Heartbeat,
    /// Disconnecting slow consumers.
    SlowConsumer,
    /// A shutdown the harness can trigger (the embedded server, or a `--url` target with a
    /// shutdown command).
    Shutdown,
    /// A restart the harness can trigger, losing the server's state (the embedded server, or a
    /// `--url` target with a restart command).
    Restart,
    /// Several nodes serving one stream (two or more `--url`s), so a case can publish on one
    /// node and read on another.
    Cluster,
}

impl Capability {
    /// Every capability.
    pub const ALL: &'static [Capability] = &[
        Capability::Auth,
        Capability::Publish,
        Capability::Resume,
        Capability::PublicTopics,
        Capability::Limits,
        Capability::Heartbeat,
        Capability::SlowConsumer,
        Capability::Shutdown,
        Capability::Restart,
        Capability::Cluster,
    ];

    /// The name used in files and flags.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Auth => "auth",
            Capability::Publish => "publish",
            Capability::Resume => "resume",
            Capability::PublicTopics => "public-topics",
            Capability::Limits => "limits",
            Capability::Heartbeat => "heartbeat",
            Capability::SlowConsumer => "slow-consumer",
            Capability::Shutdown => "shutdown",
            Capability::Restart => "restart",
            Capability::Cluster => "cluster",
        }
    }

    /// Parses a capability name.
    pub fn parse(name: &str) -> Option<Capability> {
        Capability::ALL.iter().copied().find(|c| c.name() == name)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How one named connection opens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionSpec {
    /// A credential of the testee contract (`publisher`, `reader`, `narrow`, ...), sent as an
    /// `Authorization: Bearer` header at the handshake. Absent: connect anonymously.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer: Option<String>,
    /// The subprotocols offered in `Sec-WebSocket-Protocol`. Absent: `["rtbus.v1"]`; empty:
    /// offer none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subprotocols: Option<Vec<String>>,
    /// Extra handshake headers. Values are templates (`{{token:publisher}}` is a credential).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The HTTP path. Absent: `/api/realtime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The client socket's receive buffer in bytes, to make a stalled reader back up quickly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recv_buffer_bytes: Option<u32>,
    /// Against a cluster (several `--url`s): the index of the URL this connection goes to,
    /// modulo the number of URLs. Absent: the connection's position among the case's
    /// connections, by name. Ignored against a single server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<u32>,
}

/// One step of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    tag = "do",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Step {
    /// Opens the connection `conn` (a key of `connections`).
    Connect {
        /// The connection.
        conn: String,
        /// The HTTP status the handshake must end with: 101 (the default) or a refusal such as
        /// 400.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// The subprotocol the server must select. Absent: not checked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protocol: Option<String>,
    },
    /// Sends one frame: a typed client message (`frame`, a template), raw `text`, or raw
    /// `binary` (hex). Exactly one of the three.
    Send {
        /// The connection.
        conn: String,
        /// A client message, as JSON; strings may hold `{{...}}` templates.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        frame: Option<Value>,
        /// A raw text frame (a template), for malformed input.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// A raw binary frame, as hex.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        binary: Option<String>,
        /// Send it this many times; `{{i}}` counts from 1.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        repeat: Option<Count>,
    },
    /// The next frame on `conn` must match `frame`, within the timeout.
    Expect {
        /// The connection.
        conn: String,
        /// The matcher.
        frame: Value,
        /// Expect this many frames matching it in a row; `{{i}}` counts from 1.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        repeat: Option<Count>,
        /// Milliseconds to wait for each frame. Absent: the run's step timeout.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<Count>,
    },
    /// The next `frames.len()` frames on `conn` must match `frames`, in any order.
    ExpectSet {
        /// The connection.
        conn: String,
        /// The matchers.
        frames: Vec<Value>,
        /// Milliseconds to wait for all of them. Absent: the run's step timeout.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<Count>,
    },
    /// No frame, and no close, may arrive on `conn` for `forMs` milliseconds.
    ExpectNothing {
        /// The connection.
        conn: String,
        /// How long to watch.
        for_ms: Count,
    },
    /// The server must close `conn` with `code`. Frames before the close fail the step unless
    /// `skipFrames` is set (they are still checked against the schema).
    ExpectClose {
        /// The connection.
        conn: String,
        /// The close code the server must send. Absent: any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<u16>,
        /// Allow (and discard) frames before the close.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        skip_frames: bool,
        /// Milliseconds to wait. Absent: the run's step timeout.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<Count>,
    },
    /// A WebSocket ping from the server must arrive on `conn` within the timeout (the
    /// heartbeat; answered automatically).
    ExpectPing {
        /// The connection.
        conn: String,
        /// Milliseconds to wait. Absent: the run's step timeout.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<Count>,
    },
    /// Stops reading `conn` until the next expect step: frames back up in the server and
    /// WebSocket pings go unanswered.
    StopReading {
        /// The connection.
        conn: String,
    },
    /// Closes `conn` from the client side with `code` (default 1000).
    Close {
        /// The connection.
        conn: String,
        /// The close code.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<u16>,
    },
    /// Waits, e.g. to let a deadline pass.
    Wait {
        /// Milliseconds.
        ms: Count,
    },
    /// Shuts the server under test down (needs the `shutdown` capability). Open connections
    /// must be closed with 1001; the step does not wait for that, so `expectClose` steps can
    /// watch it.
    ShutdownServer {},
    /// Stops the server under test and starts it again with its state lost, as a crash and a
    /// restart of an in-memory server would (needs the `restart` capability). Connections open
    /// at the time are closed by the old process (1001); later `connect` steps reach the new
    /// one.
    RestartServer {},
    /// Runs `steps` `times` times in order, with `{{i}}` counting from 1: e.g. publish one event
    /// and wait for it, so a burst does not outrun a healthy reader. Repeats do not nest.
    Repeat {
        /// How many times (at most, with `until`).
        times: Count,
        /// The steps of one iteration.
        steps: Vec<Step>,
        /// Ends the repeat once the server has closed a connection the rounds do not read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<Until>,
    },
}

/// When a `repeat` ends early: once the server has closed `closed`, a connection that stopped
/// reading (e.g. a slow consumer), without depending on how much the socket buffers on the way
/// hold.
///
/// The rounds run in batches. The first batch ends once its `send` steps have sent more than
/// `fromBytes` bytes, each next one once it has sent twice as many as the one before. After each
/// batch the harness reads `closed` until the server closes it or nothing arrives for `quietMs`
/// (frames are discarded, but checked against the schema), then stops reading it again. The
/// repeat ends when the server has closed it (a later `expectClose` checks the code); it fails
/// when a batch that sent more than `toBytes` bytes ends without the close, when `times` rounds
/// have run, or after `withinMs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Until {
    /// The connection whose close by the server ends the repeat.
    pub closed: String,
    /// Bytes the first batch sends before `closed` is looked at (e.g. the declared queue
    /// limit, below which no server need close it).
    pub from_bytes: Count,
    /// A batch that sent more than this many bytes without the close fails the step: the bound
    /// within which every conforming server must have closed the connection.
    pub to_bytes: Count,
    /// How long reading `closed` after a batch waits for the next frame. Absent: 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_ms: Option<Count>,
    /// How long the whole repeat may take. Absent: no bound but `times` and `toBytes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_ms: Option<Count>,
}

impl Step {
    /// The connection a step acts on, if any.
    pub fn conn(&self) -> Option<&str> {
        match self {
            Step::Connect { conn, .. }
            | Step::Send { conn, .. }
            | Step::Expect { conn, .. }
            | Step::ExpectSet { conn, .. }
            | Step::ExpectNothing { conn, .. }
            | Step::ExpectClose { conn, .. }
            | Step::ExpectPing { conn, .. }
            | Step::StopReading { conn }
            | Step::Close { conn, .. } => Some(conn),
            Step::Wait { .. }
            | Step::ShutdownServer {}
            | Step::RestartServer {}
            | Step::Repeat { .. } => None,
        }
    }

    /// The step's name in files (`do`).
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Connect { .. } => "connect",
            Step::Send { .. } => "send",
            Step::Expect { .. } => "expect",
            Step::ExpectSet { .. } => "expectSet",
            Step::ExpectNothing { .. } => "expectNothing",
            Step::ExpectClose { .. } => "expectClose",
            Step::ExpectPing { .. } => "expectPing",
            Step::StopReading { .. } => "stopReading",
            Step::Close { .. } => "close",
            Step::Wait { .. } => "wait",
            Step::ShutdownServer {} => "shutdownServer",
            Step::RestartServer {} => "restartServer",
            Step::Repeat { .. } => "repeat",
        }
    }
}

/// A case together with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedCase {
    /// The case.
    pub case: Case,
    /// The file it was read from.
    pub file: PathBuf,
}

/// Parses and checks one transcript: JSON syntax, the format, rule ids, connection names,
/// matcher and template syntax, and that typed frames are client messages.
pub fn parse(file: &Path, text: &str) -> Result<LoadedCase, TranscriptError> {
    let case: Case = serde_json::from_str(text).map_err(|e| TranscriptError {
        file: file.to_owned(),
        line: e.line(),
        column: e.column(),
        kind: TranscriptErrorKind::Format {
            // serde's message ends with " at line L column C", which the error says first.
            message: e.to_string().split(" at line ").next().unwrap_or("").into(),
        },
    })?;
    check(&case).map_err(|problem| {
        let (line, column) = crate::position::locate(text, &problem.pointer);
        TranscriptError {
            file: file.to_owned(),
            line,
            column,
            kind: TranscriptErrorKind::Invalid(Box::new(problem)),
        }
    })?;
    Ok(LoadedCase {
        case,
        file: file.to_owned(),
    })
}

type Problem = AtPointer<CaseError>;

fn check(case: &Case) -> Result<(), Problem> {
    let id_ok = !case.id.is_empty()
        && case
            .id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if !id_ok {
        return Err(AtPointer::new(
            "/id",
            CaseError::InvalidId {
                id: case.id.clone(),
            },
        ));
    }
    if case.rules.is_empty() {
        return Err(AtPointer::new("/rules", CaseError::NoRules));
    }
    for (i, rule) in case.rules.iter().enumerate() {
        if Rule::find(rule).is_none() {
            return Err(AtPointer::new(
                format!("/rules/{i}"),
                CaseError::UnknownRule {
                    rule: rule.clone(),
                    near: closest_rules(rule),
                },
            ));
        }
    }
    for (name, spec) in &case.connections {
        for (header, value) in &spec.headers {
            template::check_str(value)
                .map_err(|e| AtPointer::new(format!("/connections/{name}/headers/{header}"), e))?;
        }
    }
    check_steps(case, &case.steps, "/steps", true)
}

fn check_steps(case: &Case, steps: &[Step], base: &str, top: bool) -> Result<(), Problem> {
    for (i, step) in steps.iter().enumerate() {
        let here = format!("{base}/{i}");
        if let Step::Repeat {
            times,
            steps,
            until,
        } = step
        {
            if !top {
                return Err(AtPointer::new(here, CaseError::NestedRepeat));
            }
            check_count(times, format!("{here}/times"))?;
            if let Some(until) = until {
                check_until(case, until, &format!("{here}/until"))?;
            }
            check_steps(case, steps, &format!("{here}/steps"), false)?;
            continue;
        }
        if let Some(conn) = step.conn() {
            if !case.connections.contains_key(conn) {
                return Err(AtPointer::new(
                    format!("{here}/conn"),
                    CaseError::UnknownConnection {
                        conn: conn.to_owned(),
                        known: case.connections.keys().cloned().collect(),
                    },
                ));
            }
        }
        if let Some(needed) = needed_capability(step) {
            if !case.requires.contains(&needed) {
                return Err(AtPointer::new(
                    format!("{here}/do"),
                    CaseError::MissingCapability {
                        step: step.kind(),
                        capability: needed,
                    },
                ));
            }
        }
        check_step(step, &here)?;
    }
    Ok(())
}

fn check_until(case: &Case, until: &Until, here: &str) -> Result<(), Problem> {
    if !case.connections.contains_key(&until.closed) {
        return Err(AtPointer::new(
            format!("{here}/closed"),
            CaseError::UnknownConnection {
                conn: until.closed.clone(),
                known: case.connections.keys().cloned().collect(),
            },
        ));
    }
    check_count(&until.from_bytes, format!("{here}/fromBytes"))?;
    check_count(&until.to_bytes, format!("{here}/toBytes"))?;
    if let Some(quiet) = &until.quiet_ms {
        check_count(quiet, format!("{here}/quietMs"))?;
    }
    if let Some(within) = &until.within_ms {
        check_count(within, format!("{here}/withinMs"))?;
    }
    Ok(())
}

fn check_count(count: &Count, pointer: String) -> Result<(), Problem> {
    match count {
        Count::Number(_) => Ok(()),
        Count::Expr(text) => Expr::parse(text)
            .map(|_| ())
            .map_err(|e| AtPointer::new(pointer, e)),
    }
}

fn check_step(step: &Step, here: &str) -> Result<(), Problem> {
    match step {
        Step::Send {
            frame,
            text,
            binary,
            repeat,
            ..
        } => {
            let given = [frame.is_some(), text.is_some(), binary.is_some()];
            if given.iter().filter(|g| **g).count() != 1 {
                return Err(AtPointer::new(here, CaseError::SendBody));
            }
            if let Some(frame) = frame {
                template::check_value(frame, &format!("{here}/frame"))
                    .map_err(|e| e.map(Into::into))?;
                if !template::has_placeholders(frame) {
                    let text = frame.to_string();
                    if let Err(e) = rtbus_protocol::decode_client_frame(&text) {
                        return Err(AtPointer::new(
                            format!("{here}/frame{}", e.pointer),
                            CaseError::NotClientMessage { message: e.message },
                        ));
                    }
                }
            }
            if let Some(text) = text {
                template::check_str(text).map_err(|e| AtPointer::new(format!("{here}/text"), e))?;
            }
            if let Some(hex) = binary {
                crate::hex::decode(hex).map_err(|e| AtPointer::new(format!("{here}/binary"), e))?;
            }
            if let Some(repeat) = repeat {
                check_count(repeat, format!("{here}/repeat"))?;
            }
        }
        Step::Expect {
            frame,
            repeat,
            timeout_ms,
            ..
        } => {
            matcher::check(frame, &format!("{here}/frame")).map_err(|e| e.map(Into::into))?;
            if let Some(repeat) = repeat {
                check_count(repeat, format!("{here}/repeat"))?;
            }
            if let Some(t) = timeout_ms {
                check_count(t, format!("{here}/timeoutMs"))?;
            }
        }
        Step::ExpectSet {
            frames, timeout_ms, ..
        } => {
            for (j, frame) in frames.iter().enumerate() {
                matcher::check(frame, &format!("{here}/frames/{j}"))
                    .map_err(|e| e.map(Into::into))?;
            }
            if let Some(t) = timeout_ms {
                check_count(t, format!("{here}/timeoutMs"))?;
            }
        }
        Step::ExpectNothing { for_ms, .. } => check_count(for_ms, format!("{here}/forMs"))?,
        Step::ExpectClose { timeout_ms, .. } | Step::ExpectPing { timeout_ms, .. } => {
            if let Some(t) = timeout_ms {
                check_count(t, format!("{here}/timeoutMs"))?;
            }
        }
        Step::Wait { ms } => check_count(ms, format!("{here}/ms"))?,
        Step::Connect { .. } | Step::StopReading { .. } | Step::Close { .. } => {}
        Step::ShutdownServer {} | Step::RestartServer {} | Step::Repeat { .. } => {}
    }
    Ok(())
}

impl Case {
    /// Whether a step of the case (also inside a `repeat`) stops or restarts the server, so on
    /// a server shared by every case it must run while no other case does.
    pub fn disrupts_server(&self) -> bool {
        fn any(steps: &[Step]) -> bool {
            steps.iter().any(|s| match s {
                Step::ShutdownServer {} | Step::RestartServer {} => true,
                Step::Repeat { steps, .. } => any(steps),
                _ => false,
            })
        }
        any(&self.steps)
    }

    /// Whether a step of the case shuts the server down (also inside a `repeat`).
    pub fn shuts_down_server(&self) -> bool {
        fn any(steps: &[Step]) -> bool {
            steps.iter().any(|s| match s {
                Step::ShutdownServer {} => true,
                Step::Repeat { steps, .. } => any(steps),
                _ => false,
            })
        }
        any(&self.steps)
    }
}

/// The capability a step needs that the case must list in `requires`, so a server without it
/// gets `unsupported` rather than a failure in the middle of the case.
fn needed_capability(step: &Step) -> Option<Capability> {
    match step {
        Step::ShutdownServer {} => Some(Capability::Shutdown),
        Step::RestartServer {} => Some(Capability::Restart),
        _ => None,
    }
}

fn closest_rules(wrong: &str) -> String {
    let prefix = wrong.split('.').next().unwrap_or("");
    let mut near: Vec<&str> = rtbus_protocol::rules::RULES
        .iter()
        .map(|r| r.id)
        .filter(|id| id.starts_with(prefix))
        .collect();
    if near.is_empty() {
        near = rtbus_protocol::rules::RULES
            .iter()
            .take(3)
            .map(|r| r.id)
            .collect();
    }
    near.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> TranscriptError {
        parse(Path::new("case.json"), text).unwrap_err()
    }

    const HEAD: &str = r#"{"id":"x","title":"t","rules":["ping.pong"],"connections":{"a":{}},"#;

    #[test]
    fn bad_transcripts_name_the_line_and_the_expectation() {
        /// Whether an error is of the kind a case expects.
        type IsKind<'a> = &'a dyn Fn(&TranscriptErrorKind) -> bool;
        let format = |k: &TranscriptErrorKind| matches!(k, TranscriptErrorKind::Format { .. });
        let invalid = |pointer: &'static str, is: fn(&CaseError) -> bool| {
            move |k: &TranscriptErrorKind| matches!(k, TranscriptErrorKind::Invalid(p) if p.pointer == pointer && is(&p.error))
        };
        let cases: &[(&str, usize, &str, IsKind)] = &[
            (
                "{\n\"id\": 1}",
                2,
                "invalid type: integer `1`, expected a string",
                &format,
            ),
            (
                &format!("{HEAD}\n\"steps\":[\n{{\"do\":\"jump\",\"conn\":\"a\"}}]}}"),
                3,
                "unknown variant `jump`",
                &format,
            ),
            (
                &format!("{HEAD}\n\"steps\":[\n{{\"do\":\"connect\",\n\"conn\":\"b\"}}]}}"),
                4,
                "unknown connection \"b\"",
                &invalid(
                    "/steps/0/conn",
                    |e| matches!(e, CaseError::UnknownConnection { conn, known } if conn == "b" && known == &["a"]),
                ),
            ),
            (
                "{\"id\":\"x\",\"title\":\"t\",\n\"rules\":[\"ping.pang\"],\"connections\":{},\"steps\":[]}",
                2,
                "unknown rule id \"ping.pang\"",
                &invalid("/rules/0", |e| matches!(e, CaseError::UnknownRule { .. })),
            ),
            (
                &format!(
                    "{HEAD}\n\"steps\":[\n{{\"do\":\"expect\",\"conn\":\"a\",\n\"frame\":{{\"type\":{{\"$regex\":\"(\"}}}}}}]}}"
                ),
                4,
                "invalid regex",
                &invalid("/steps/0/frame/type/$regex", |e| {
                    matches!(e, CaseError::Matcher(crate::error::MatcherError::Regex(_)))
                }),
            ),
            (
                &format!(
                    "{HEAD}\n\"steps\":[\n{{\"do\":\"send\",\"conn\":\"a\",\n\"frame\":{{\"type\":\"pong\"}}}}]}}"
                ),
                4,
                "not a client message",
                &|k| {
                    matches!(k, TranscriptErrorKind::Invalid(p)
                        if p.pointer.starts_with("/steps/0/frame")
                            && matches!(p.error, CaseError::NotClientMessage { .. }))
                },
            ),
        ];
        let unknown_until = invalid("/steps/0/until/closed", |e| {
            matches!(e, CaseError::UnknownConnection { .. })
        });
        let cases: Vec<(String, usize, &str, IsKind)> = cases
            .iter()
            .map(|(t, l, n, k)| ((*t).to_owned(), *l, *n, *k))
            .chain([(
                format!(
                    "{HEAD}\n\"steps\":[\n{{\"do\":\"repeat\",\"times\":1,\"steps\":[],\n\"until\":{{\"closed\":\"b\",\"fromBytes\":1,\"toBytes\":2}}}}]}}"
                ),
                4,
                "unknown connection \"b\"",
                &unknown_until as IsKind,
            )])
            .collect();
        for (text, line, needle, kind) in &cases {
            let e = err(text);
            assert_eq!(e.line, *line, "{e}");
            assert!(kind(&e.kind), "{e}: {:?}", e.kind);
            assert!(e.to_string().contains(needle), "{e}");
            assert!(e.to_string().starts_with("case.json:"), "{e}");
        }
    }

    #[test]
    fn damaged_transcripts_give_errors_never_panics() {
        for (name, text) in crate::suite::BUNDLED {
            let file = Path::new(name);
            // Every truncation, and every byte replaced by a character that breaks JSON or
            // changes a value.
            for cut in (0..text.trim_end().len()).step_by(13) {
                if !text.is_char_boundary(cut) {
                    continue;
                }
                let e = parse(file, &text[..cut]).unwrap_err();
                assert!(
                    e.line >= 1 && !e.kind.to_string().is_empty(),
                    "{name}@{cut}: {e}"
                );
            }
            for (at, _) in text.char_indices().step_by(37) {
                for replacement in ["\"", "}", "9", "$"] {
                    let mut damaged = text.to_string();
                    damaged.replace_range(
                        at..at + text[at..].chars().next().map_or(0, char::len_utf8),
                        replacement,
                    );
                    if let Err(e) = parse(file, &damaged) {
                        assert!(
                            e.line >= 1 && !e.kind.to_string().is_empty(),
                            "{name}@{at}: {e}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_good_transcript_loads() {
        let text = format!(
            "{HEAD}\"steps\":[{{\"do\":\"connect\",\"conn\":\"a\"}},{{\"do\":\"send\",\"conn\":\"a\",\"frame\":{{\"type\":\"ping\",\"id\":\"p\"}}}},{{\"do\":\"expect\",\"conn\":\"a\",\"frame\":{{\"type\":\"pong\",\"id\":\"p\"}}}}]}}"
        );
        let loaded = parse(Path::new("ok.json"), &text).unwrap();
        assert_eq!(loaded.case.steps.len(), 3);
    }
}
