//! Runs cases against a target: opens the named connections, plays the steps, checks every
//! received frame against the schema, and grades the case and its close behaviour.

// A `Failure` is the cold path, built once per failed case; boxing it everywhere would only
// add noise.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use rtbus_socket::{Control, Dial, Error as SocketError, Inbound, Url};
use serde::Serialize;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;

use crate::contract::Contract;
use crate::expr::{Count, Vars};
use crate::matcher::{self, State};
use crate::schema;
use crate::template;
use crate::transcript::{Capability, Case, ConnectionSpec, LoadedCase, Step, Until};

/// Which of `nodes` URLs the connection `conn` of `case` goes to: the connection's `node`
/// when it names one, else its position among the case's connections in the order of their
/// names (the order the `connections` object's keys sort in), in both cases modulo `nodes`.
/// With two URLs, the first, third, … connection goes to the first URL and the second,
/// fourth, … to the second, so a publisher and a subscriber usually sit on different nodes.
pub fn node_of(case: &Case, conn: &str, nodes: usize) -> usize {
    if nodes <= 1 {
        return 0;
    }
    let position = case.connections.keys().position(|name| name == conn);
    let wanted = case
        .connections
        .get(conn)
        .and_then(|spec| spec.node)
        .map(|n| n as usize)
        .or(position)
        .unwrap_or(0);
    wanted % nodes
}

/// A boxed future, for the object-safe [`Target`] trait.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A server the harness can run a case against.
pub trait Target: Send + Sync {
    /// A line describing the target, for reports.
    fn describe(&self) -> String;
    /// Capabilities the target cannot offer whatever the contract says (e.g. `shutdown` for a
    /// remote server without a shutdown command).
    fn absent(&self) -> Vec<Capability>;
    /// Gets a server ready for one case: a fresh embedded server, or the shared remote one.
    fn prepare(&self) -> BoxFuture<'_, Result<Prepared, InfraError>>;
    /// Whether every case meets the same server, so a case that restarts or shuts it down must
    /// run while no other case does.
    fn shared(&self) -> bool {
        false
    }
    /// The nodes every case meets, for reports: the URLs of a shared server or cluster; empty
    /// when each case gets a server of its own.
    fn nodes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A server the harness controls during one case.
pub trait ServerHandle: Send {
    /// Shuts the server down gracefully (a `shutdownServer` step). The case goes on while the
    /// future runs, watching its connections close, so the future owns what it needs.
    fn shutdown(&mut self) -> BoxFuture<'static, Result<(), InfraError>>;
    /// Stops the server, if it runs, and starts a fresh one with its state lost (a
    /// `restartServer` step; every node of a cluster). Resolves, once the new server accepts
    /// connections, to the URLs later `connect` steps use (one per node, in order).
    fn restart(&mut self) -> BoxFuture<'_, Result<Vec<String>, InfraError>>;
    /// Releases the server after the case: an embedded one is stopped; a shared one that the
    /// case shut down is started again for the cases that follow.
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), InfraError>>;
}

/// A server ready for one case.
pub struct Prepared {
    /// The WebSocket endpoints, e.g. `ws://127.0.0.1:4000/api/realtime`: one, or one per node
    /// of a cluster serving one stream. The case's connections are spread across them by
    /// [`node_of`].
    pub urls: Vec<String>,
    /// The server's handle when the harness can stop or restart it (released after the case).
    pub server: Option<Box<dyn ServerHandle>>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("urls", &self.urls)
            .field("owned", &self.server.is_some())
            .finish()
    }
}

pub use crate::error::InfraError;

/// How a run behaves.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The default time an expect step waits.
    pub step_timeout: Duration,
    /// How long a clean close may take.
    pub close_timeout: Duration,
    /// Cases run at once.
    pub jobs: usize,
    /// What the server under test provides.
    pub contract: Contract,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            step_timeout: Duration::from_secs(2),
            close_timeout: Duration::from_secs(1),
            jobs: 4,
            contract: Contract::default(),
        }
    }
}

/// Why a case failed: the step, what was expected and what arrived.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    /// 1-based index of the step in the file (0: before the first step, e.g. preparing the
    /// server; one past the last step: at the end of the case).
    pub step: usize,
    /// The step's kind (`expect`, ...).
    pub step_kind: String,
    /// The connection, if the step had one.
    pub conn: Option<String>,
    /// What went wrong.
    pub message: String,
    /// Where in the frame (JSON pointer), when a frame is at fault.
    pub pointer: Option<String>,
    /// The expected frame (matcher), when there is one.
    pub expected: Option<Value>,
    /// The frame that arrived, when there is one.
    pub actual: Option<Value>,
    /// The run itself broke (a restart command failed, the server could not be started), not
    /// the server's behaviour: the run exits with 2.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub infrastructure: bool,
}

/// The grade of one case.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "camelCase")]
pub enum Verdict {
    /// Every step held and every frame fit the schema.
    Passed,
    /// A step did not hold.
    Failed(Box<Failure>),
    /// The server declares a capability the case needs absent.
    Unsupported {
        /// The missing capabilities.
        missing: Vec<Capability>,
    },
}

/// Who closed a connection and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CloseRecord {
    /// The connection.
    pub conn: String,
    /// `server`, `client` (a close step or the end of the case), or `none` (never opened).
    pub initiator: String,
    /// Whether both close frames were exchanged before the TCP connection ended.
    pub clean: bool,
    /// The close code the server sent, if any.
    pub code: Option<u16>,
    /// Whether the case expected this close (an `expectClose` step, or a client close).
    pub expected: bool,
    /// The node the connection went to, when the case ran against a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// The close-behaviour grade of a case, apart from its verdict (as Autobahn grades it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CloseVerdict {
    /// Every connection ended with a close handshake the case expected.
    Ok,
    /// A connection ended without a close handshake (TCP dropped).
    Unclean,
    /// The server closed a connection the case did not expect it to close.
    Unexpected,
    /// Not graded (unsupported case, or no connection was opened).
    None,
}

/// The result of one case.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseResult {
    /// The case id.
    pub id: String,
    /// The case title.
    pub title: String,
    /// The rules it checks.
    pub rules: Vec<String>,
    /// Its tags.
    pub tags: Vec<String>,
    /// The transcript file.
    pub file: String,
    /// The grade.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The close-behaviour grade.
    pub close_verdict: CloseVerdict,
    /// How each connection closed.
    pub closes: Vec<CloseRecord>,
    /// Frames received and checked against the schema.
    pub frames_checked: usize,
    /// Wall time.
    pub duration_ms: u64,
}

impl CaseResult {
    /// Whether the case passed.
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Passed
    }
}

/// Runs every case, `jobs` at a time, calling `progress` as each finishes (in completion
/// order); returns the results in suite order.
///
/// On a [shared](Target::shared) server, the cases that restart or shut the server down run
/// after the others, one at a time, the shutdowns last: a restart in the middle of another
/// case would fail it, and without a restart command nothing brings a shut-down server back.
pub async fn run_suite(
    cases: Vec<LoadedCase>,
    target: Arc<dyn Target>,
    options: RunOptions,
    mut progress: impl FnMut(&CaseResult, usize, usize),
) -> Vec<CaseResult> {
    let total = cases.len();
    let shared = target.shared();
    let (mut alone, together): (Vec<_>, Vec<_>) = cases
        .into_iter()
        .enumerate()
        .partition(|(_, c)| shared && c.case.disrupts_server());
    // Stable: restarts keep their suite order, before every shutdown.
    alone.sort_by_key(|(_, c)| c.case.shuts_down_server());
    let jobs = options.jobs.max(1);
    let options = Arc::new(options);
    let mut results: Vec<Option<CaseResult>> = vec![None; total];
    let mut done = 0;
    let mut finished = |index: usize, result: CaseResult| {
        done += 1;
        progress(&result, done, total);
        results[index] = Some(result);
    };
    run_batch(together, jobs, &target, &options, &mut finished).await;
    run_batch(alone, 1, &target, &options, &mut finished).await;
    results.into_iter().flatten().collect()
}

/// Runs `cases` (with their suite index), `jobs` at a time, handing each result to
/// `finished` as it completes. Cases start in suite order, so with one job they also finish
/// in it.
async fn run_batch(
    cases: Vec<(usize, LoadedCase)>,
    jobs: usize,
    target: &Arc<dyn Target>,
    options: &Arc<RunOptions>,
    finished: &mut dyn FnMut(usize, CaseResult),
) {
    let mut waiting = cases.into_iter();
    let mut set = tokio::task::JoinSet::new();
    let mut by_task = std::collections::HashMap::new();
    loop {
        while set.len() < jobs {
            let Some((index, case)) = waiting.next() else {
                break;
            };
            let placeholder = blank_result(&case);
            let target = Arc::clone(target);
            let options = Arc::clone(options);
            let handle =
                set.spawn(async move { (index, run_case(&case, target.as_ref(), &options).await) });
            by_task.insert(handle.id(), (index, placeholder));
        }
        let Some(joined) = set.join_next_with_id().await else {
            return;
        };
        match joined {
            Ok((_, (index, result))) => finished(index, result),
            Err(e) => {
                // A panic in a case is a harness bug: report it as that case's failure rather
                // than dropping the case from the results.
                let Some((index, mut result)) = by_task.remove(&e.id()) else {
                    continue;
                };
                result.verdict = Verdict::Failed(Box::new(Failure {
                    step: 0,
                    step_kind: "harness".into(),
                    conn: None,
                    message: format!("internal error in the harness (please report it): {e}"),
                    pointer: None,
                    expected: None,
                    actual: None,
                    infrastructure: false,
                }));
                finished(index, result);
            }
        }
    }
}

/// The result of `loaded` before it ran: passed, nothing checked.
fn blank_result(loaded: &LoadedCase) -> CaseResult {
    let case = &loaded.case;
    CaseResult {
        id: case.id.clone(),
        title: case.title.clone(),
        rules: case.rules.clone(),
        tags: case.tags.clone(),
        file: loaded.file.display().to_string(),
        verdict: Verdict::Passed,
        close_verdict: CloseVerdict::None,
        closes: Vec::new(),
        frames_checked: 0,
        duration_ms: 0,
    }
}

static NONCE: AtomicU64 = AtomicU64::new(0);

fn nonce() -> String {
    let time = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let count = NONCE.fetch_add(1, Ordering::Relaxed);
    let mixed =
        (time ^ (count.wrapping_mul(0x9E37_79B9_7F4A_7C15))).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    format!("{:010x}", mixed >> 24)
}

/// Runs one case against a freshly prepared server.
pub async fn run_case(
    loaded: &LoadedCase,
    target: &dyn Target,
    options: &RunOptions,
) -> CaseResult {
    let case = &loaded.case;
    let started = Instant::now();
    let mut result = blank_result(loaded);
    let mut absent = options.contract.absent.clone();
    absent.extend(target.absent());
    let missing: Vec<Capability> = case
        .requires
        .iter()
        .copied()
        .filter(|c| absent.contains(c))
        .collect();
    if !missing.is_empty() {
        result.verdict = Verdict::Unsupported { missing };
        return result;
    }
    let prepared = match target.prepare().await {
        Ok(p) => p,
        Err(e) => {
            result.verdict = Verdict::Failed(Box::new(infra_failure(
                0,
                "prepare",
                format!("could not prepare the server: {e}"),
            )));
            return result;
        }
    };
    let mut vars = options.contract.vars();
    vars.insert("nonce".into(), Value::from(nonce()));
    let mut run = CaseRun {
        case,
        urls: prepared.urls.clone(),
        server: prepared.server,
        stopping: None,
        options,
        state: State {
            vars,
            series: BTreeMap::new(),
        },
        conns: BTreeMap::new(),
        closes: Vec::new(),
        frames_checked: 0,
        sent_bytes: 0,
    };
    let outcome = run.play().await;
    let leftover = run.finish().await;
    let closes = check_declared_close_codes(&run.closes, case.steps.len() + 1);
    let end = case.steps.len() + 1;
    let stopped = run.await_shutdown(end).await;
    let released = match run.server.take() {
        Some(server) => server.release().await.map_err(|e| {
            infra_failure(
                end,
                "end of case",
                format!("could not release the server after the case: {e}"),
            )
        }),
        None => Ok(()),
    };
    result.verdict = match outcome.and(leftover).and(closes).and(stopped).and(released) {
        Err(f) => Verdict::Failed(Box::new(f)),
        Ok(()) => Verdict::Passed,
    };
    result.frames_checked = run.frames_checked;
    result.close_verdict = grade_closes(&run.closes);
    result.closes = run.closes;
    result.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    result
}

/// A failure of the run itself rather than of the server's behaviour.
fn infra_failure(step: usize, kind: &str, message: String) -> Failure {
    Failure {
        step,
        step_kind: kind.into(),
        conn: None,
        message,
        pointer: None,
        expected: None,
        actual: None,
        infrastructure: true,
    }
}

/// Fails on the first close code a server sent that `CloseCode` does not declare
/// (rule `frame.close-code`), whether or not a step looked at it: a client reading it could
/// not know whether to reconnect. A code echoed back to the client's own close is not the
/// server's to choose, so only closes the server started count.
fn check_declared_close_codes(closes: &[CloseRecord], step: usize) -> Result<(), Failure> {
    let Some((record, code)) = closes.iter().find_map(|c| {
        c.code
            .filter(|code| {
                c.initiator == "server" && rtbus_protocol::CloseCode::from_value(*code).is_none()
            })
            .map(|code| (c, code))
    }) else {
        return Ok(());
    };
    let declared: Vec<String> = rtbus_protocol::CloseCode::ALL
        .iter()
        .map(|c| c.value().to_string())
        .collect();
    Err(Failure {
        step,
        step_kind: "end of case".into(),
        conn: Some(record.conn.clone()),
        message: format!(
            "frame.close-code: the server closed connection {:?} with code {code}, which is not \
             declared by the protocol's CloseCode ({}); a client cannot know whether to reconnect",
            record.conn,
            declared.join(", ")
        ),
        pointer: None,
        expected: None,
        actual: None,
        infrastructure: false,
    })
}

fn grade_closes(closes: &[CloseRecord]) -> CloseVerdict {
    let opened: Vec<&CloseRecord> = closes.iter().filter(|c| c.initiator != "none").collect();
    if opened.is_empty() {
        CloseVerdict::None
    } else if opened.iter().any(|c| !c.expected) {
        CloseVerdict::Unexpected
    } else if opened.iter().any(|c| !c.clean) {
        CloseVerdict::Unclean
    } else {
        CloseVerdict::Ok
    }
}

/// What the reader task saw.
#[derive(Debug)]
enum Incoming {
    Frame {
        text: String,
        checked: Result<Value, (Option<Value>, schema::Violation)>,
    },
    Binary(usize),
    Close(Option<u16>, String),
    End(Option<String>),
}

type Ws = WebSocketStream<TcpStream>;

struct Conn {
    sink: SplitSink<Ws, Message>,
    rx: mpsc::UnboundedReceiver<Incoming>,
    gate: watch::Sender<bool>,
    pings: watch::Receiver<u64>,
    /// The server's close, once seen: (code, clean).
    closed: Option<(Option<u16>, bool)>,
    close_expected: bool,
    client_closed: bool,
    frames: usize,
    /// The node's URL, against a cluster.
    url: Option<String>,
}

struct CaseRun<'a> {
    case: &'a Case,
    /// The nodes' URLs (one for a single server).
    urls: Vec<String>,
    server: Option<Box<dyn ServerHandle>>,
    /// A shutdown under way (a `shutdownServer` step), awaited before a restart and at the end.
    stopping: Option<tokio::task::JoinHandle<Result<(), InfraError>>>,
    options: &'a RunOptions,
    state: State,
    conns: BTreeMap<String, Conn>,
    closes: Vec<CloseRecord>,
    frames_checked: usize,
    /// Bytes sent by `send` steps so far (what a `repeat` with `until` counts).
    sent_bytes: u64,
}

/// Where a failure happened: the step's 1-based index in the file (an inner step of a
/// `repeat` reports its `repeat`'s index), its kind and its connection.
struct StepCtx {
    index: usize,
    kind: &'static str,
    conn: Option<String>,
}

impl StepCtx {
    /// The context of `step`, reported as step `index`.
    fn of(index: usize, step: &Step) -> StepCtx {
        StepCtx {
            index,
            kind: step.kind(),
            conn: step.conn().map(str::to_owned),
        }
    }

    fn fail(&self, message: impl std::fmt::Display) -> Failure {
        Failure {
            step: self.index,
            step_kind: self.kind.into(),
            conn: self.conn.clone(),
            message: message.to_string(),
            pointer: None,
            expected: None,
            actual: None,
            infrastructure: false,
        }
    }

    fn infra(&self, message: impl std::fmt::Display) -> Failure {
        Failure {
            infrastructure: true,
            ..self.fail(message)
        }
    }
}

/// What one round of a repeated step does: the inner steps of a `repeat` step, or the one
/// frame of a send or expect step with a `repeat` count.
enum Round<'s> {
    /// The inner steps of a `repeat` step, in order.
    Steps(&'s [Step]),
    /// Sends one frame.
    Send { conn: &'s str, body: Body<'s> },
    /// Waits up to `wait` for one frame and matches it against `frame`.
    Expect {
        conn: &'s str,
        frame: &'s Value,
        wait: Duration,
    },
}

/// What a send step sends: exactly one of `frame`, `text` and `binary` (checked when the case
/// loads).
enum Body<'s> {
    /// A client message, a template.
    Frame(&'s Value),
    /// A raw text frame, a template.
    Text(&'s str),
    /// A raw binary frame, as hex.
    Binary(&'s str),
}

impl<'s> Body<'s> {
    fn of(frame: Option<&'s Value>, text: Option<&'s str>, binary: Option<&'s str>) -> Body<'s> {
        match (frame, text) {
            (Some(frame), _) => Body::Frame(frame),
            (None, Some(text)) => Body::Text(text),
            (None, None) => Body::Binary(binary.unwrap_or("")),
        }
    }
}

/// Which round of a repeated step is running: `{{i}}` = `i`, counting from 1 to `n`.
#[derive(Debug, Clone, Copy)]
struct Pass {
    i: u64,
    n: u64,
}

impl CaseRun<'_> {
    fn count(&self, count: &Count, ctx: &StepCtx) -> Result<u64, Failure> {
        count
            .eval(&self.state.vars)
            .map_err(|e| ctx.fail(format!("cannot evaluate {count:?}: {e}")))
    }

    fn timeout(&self, t: Option<&Count>, ctx: &StepCtx) -> Result<Duration, Failure> {
        Ok(match t {
            Some(c) => Duration::from_millis(self.count(c, ctx)?),
            None => self.options.step_timeout,
        })
    }

    async fn play(&mut self) -> Result<(), Failure> {
        for (i, step) in self.case.steps.iter().enumerate() {
            self.step(step, &StepCtx::of(i + 1, step)).await?;
        }
        Ok(())
    }

    async fn step(&mut self, step: &Step, ctx: &StepCtx) -> Result<(), Failure> {
        match step {
            Step::Connect {
                conn,
                status,
                protocol,
            } => self.connect(conn, *status, protocol.as_deref(), ctx).await,
            Step::Send {
                conn,
                frame,
                text,
                binary,
                repeat,
            } => {
                let body = Body::of(frame.as_ref(), text.as_deref(), binary.as_deref());
                self.repeat(repeat.as_ref(), Round::Send { conn, body }, ctx)
                    .await
            }
            Step::Expect {
                conn,
                frame,
                repeat,
                timeout_ms,
            } => {
                let wait = self.timeout(timeout_ms.as_ref(), ctx)?;
                self.repeat(repeat.as_ref(), Round::Expect { conn, frame, wait }, ctx)
                    .await
            }
            Step::ExpectSet {
                conn,
                frames,
                timeout_ms,
            } => {
                let wait = self.timeout(timeout_ms.as_ref(), ctx)?;
                self.expect_set(conn, frames, wait, ctx).await
            }
            Step::ExpectNothing { conn, for_ms } => {
                let wait = Duration::from_millis(self.count(for_ms, ctx)?);
                self.expect_nothing(conn, wait, ctx).await
            }
            Step::ExpectClose {
                conn,
                code,
                skip_frames,
                timeout_ms,
            } => {
                let wait = self.timeout(timeout_ms.as_ref(), ctx)?;
                self.expect_close(conn, *code, *skip_frames, wait, ctx)
                    .await
            }
            Step::ExpectPing { conn, timeout_ms } => {
                let wait = self.timeout(timeout_ms.as_ref(), ctx)?;
                self.expect_ping(conn, wait, ctx).await
            }
            Step::StopReading { conn } => {
                let c = self.conn(conn, ctx)?;
                let _ = c.gate.send(false);
                Ok(())
            }
            Step::Close { conn, code } => {
                let code = code.unwrap_or(1000);
                self.client_close(conn, code, ctx).await
            }
            Step::Wait { ms } => {
                tokio::time::sleep(Duration::from_millis(self.count(ms, ctx)?)).await;
                Ok(())
            }
            Step::ShutdownServer {} => self.shutdown_server(ctx),
            Step::RestartServer {} => self.restart_server(ctx).await,
            Step::Repeat {
                times,
                steps,
                until: None,
            } => self.repeat(Some(times), Round::Steps(steps), ctx).await,
            Step::Repeat {
                times,
                steps,
                until: Some(until),
            } => self.repeat_until(times, steps, until, ctx).await,
        }
    }

    /// Runs `round` `times` times (once without a count), with `{{i}}` counting from 1 when
    /// there is a count: the one loop behind `repeat` steps and the `repeat` of send and
    /// expect steps.
    async fn repeat(
        &mut self,
        times: Option<&Count>,
        round: Round<'_>,
        ctx: &StepCtx,
    ) -> Result<(), Failure> {
        let n = match times {
            Some(count) => self.count(count, ctx)?,
            None => 1,
        };
        for i in 1..=n {
            if times.is_some() {
                self.state.vars.insert("i".into(), Value::from(i));
            }
            let pass = Pass { i, n };
            match &round {
                Round::Steps(steps) => self.play_round(steps, pass, ctx).await?,
                Round::Send { conn, body } => self.send_one(conn, body, ctx).await?,
                Round::Expect { conn, frame, wait } => {
                    self.expect_one(conn, frame, *wait, pass, ctx).await?;
                }
            }
        }
        Ok(())
    }

    /// A `repeat` step with `until`: rounds in batches of doubling size (by bytes sent), each
    /// followed by a look at the connection `until.closed` (see [`Until`]).
    async fn repeat_until(
        &mut self,
        times: &Count,
        steps: &[Step],
        until: &Until,
        ctx: &StepCtx,
    ) -> Result<(), Failure> {
        let n = self.count(times, ctx)?;
        let from = self.count(&until.from_bytes, ctx)?.max(1);
        let to = self.count(&until.to_bytes, ctx)?;
        let quiet = Duration::from_millis(match &until.quiet_ms {
            Some(q) => self.count(q, ctx)?,
            None => 300,
        });
        let deadline = match &until.within_ms {
            Some(w) => Some(Instant::now() + Duration::from_millis(self.count(w, ctx)?)),
            None => None,
        };
        let name = until.closed.as_str();
        let started = self.sent_bytes;
        let mut batch = from;
        let mut batch_start = self.sent_bytes;
        let mut rounds = 0;
        for i in 1..=n {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(ctx.fail(format!(
                    "the server did not close connection {name:?} within withinMs: {} round(s) \
                     sent {} bytes",
                    rounds,
                    self.sent_bytes - started
                )));
            }
            self.state.vars.insert("i".into(), Value::from(i));
            self.play_round(steps, Pass { i, n }, ctx).await?;
            rounds = i;
            let sent = self.sent_bytes - batch_start;
            if sent <= batch && i < n {
                continue;
            }
            if self.read_until_closed_or_quiet(name, quiet, ctx).await? {
                return Ok(());
            }
            if sent > to {
                return Err(ctx.fail(format!(
                    "the server did not close connection {name:?}, which was not reading, \
                     although one batch of rounds sent {sent} bytes for it, more than toBytes \
                     ({to}); {} bytes in {rounds} round(s) in all",
                    self.sent_bytes - started
                )));
            }
            // The last batch sends just more than `toBytes`: enough, and not twice that.
            batch = batch.saturating_mul(2).min(to);
            batch_start = self.sent_bytes;
        }
        Err(ctx.fail(format!(
            "the server did not close connection {name:?} in {n} round(s) ({} bytes sent)",
            self.sent_bytes - started
        )))
    }

    /// Reads `name` until the server closes it (`true`) or no frame has arrived for `quiet`
    /// (`false`; it stops reading again). Frames are discarded after the schema check.
    async fn read_until_closed_or_quiet(
        &mut self,
        name: &str,
        quiet: Duration,
        ctx: &StepCtx,
    ) -> Result<bool, Failure> {
        loop {
            let c = self.conn(name, ctx)?;
            if c.closed.is_some() {
                return Ok(true);
            }
            let _ = c.gate.send(true);
            let Ok(incoming) = tokio::time::timeout(quiet, c.rx.recv()).await else {
                let _ = c.gate.send(false);
                return Ok(false);
            };
            match incoming.unwrap_or(Incoming::End(None)) {
                Incoming::Frame { text, checked } => {
                    self.frames_checked += 1;
                    if let Err((value, violation)) = checked {
                        return Err(schema_failure(ctx, text, value, &violation));
                    }
                }
                Incoming::Binary(n) => {
                    return Err(ctx.fail(format!(
                        "connection {name:?}: the server sent a binary frame of {n} bytes"
                    )));
                }
                Incoming::Close(code, _) => {
                    self.mark_closed(name, code, true);
                    return Ok(true);
                }
                Incoming::End(_) => {
                    self.mark_closed(name, None, false);
                    return Ok(true);
                }
            }
        }
    }

    /// One round of a `repeat` step: its inner steps in order, each starting with `{{i}}` =
    /// the round (an inner step's own `repeat` counts `{{i}}` itself). A failure names the
    /// round and the inner step.
    ///
    /// Boxed, because a round runs steps and a step may repeat rounds.
    fn play_round<'r>(
        &'r mut self,
        steps: &'r [Step],
        pass: Pass,
        ctx: &'r StepCtx,
    ) -> BoxFuture<'r, Result<(), Failure>> {
        Box::pin(async move {
            for (j, inner) in steps.iter().enumerate() {
                self.state.vars.insert("i".into(), Value::from(pass.i));
                let inner_ctx = StepCtx::of(ctx.index, inner);
                let outcome = if let Step::Repeat { .. } = inner {
                    Err(inner_ctx.fail("repeat steps do not nest"))
                } else {
                    self.step(inner, &inner_ctx).await
                };
                outcome.map_err(|mut f| {
                    f.message = format!(
                        "in round {} of {}, inner step {} ({}): {}",
                        pass.i,
                        pass.n,
                        j + 1,
                        inner.kind(),
                        f.message
                    );
                    f
                })?;
            }
            Ok(())
        })
    }

    /// Sends one frame of a send step.
    async fn send_one(
        &mut self,
        conn: &str,
        body: &Body<'_>,
        ctx: &StepCtx,
    ) -> Result<(), Failure> {
        let message = self.message(body, ctx)?;
        self.sent_bytes += message.len() as u64;
        let c = self.conn(conn, ctx)?;
        c.sink
            .send(message)
            .await
            .map_err(|e| ctx.fail(format!("could not send: {e}")))
    }

    /// The WebSocket message a send step's body stands for, with its templates filled in.
    fn message(&self, body: &Body<'_>, ctx: &StepCtx) -> Result<Message, Failure> {
        let vars = &self.state.vars;
        match body {
            Body::Frame(frame) => {
                let value = template::render_value(frame, vars)
                    .map_err(|e| ctx.fail(format!("cannot fill in the frame: {e}")))?;
                let text = value.to_string();
                if let Err(e) = rtbus_protocol::decode_client_frame(&text) {
                    return Err(ctx.fail(format!(
                        "transcript error: the filled-in frame is not a client message ({e}): {text}"
                    )));
                }
                Ok(Message::text(text))
            }
            Body::Text(text) => template::render_str(text, vars)
                .map(Message::text)
                .map_err(|e| ctx.fail(format!("cannot fill in the text: {e}"))),
            Body::Binary(hex) => crate::hex::decode(hex)
                .map(Message::binary)
                .map_err(|e| ctx.fail(e)),
        }
    }

    /// Waits for one frame of an expect step and matches it; the failure says which frame of
    /// a repeated expect it was.
    async fn expect_one(
        &mut self,
        conn: &str,
        frame: &Value,
        wait: Duration,
        pass: Pass,
        ctx: &StepCtx,
    ) -> Result<(), Failure> {
        let actual = self.next_frame(conn, wait, ctx, frame).await?;
        matcher::matches(frame, &actual, &mut self.state).map_err(|m| {
            let which = if pass.n > 1 {
                format!(" (frame {} of {})", pass.i, pass.n)
            } else {
                String::new()
            };
            Failure {
                pointer: Some(m.pointer.clone()),
                expected: Some(frame.clone()),
                actual: Some(actual),
                ..ctx.fail(format!(
                    "frame does not match{which} at {}: {}",
                    display_pointer(&m.pointer),
                    m.message
                ))
            }
        })
    }

    /// An `expectSet` step: as many frames as matchers, within `wait` together, matching in
    /// any order.
    async fn expect_set(
        &mut self,
        conn: &str,
        frames: &[Value],
        wait: Duration,
        ctx: &StepCtx,
    ) -> Result<(), Failure> {
        let deadline = Instant::now() + wait;
        let mut got = Vec::new();
        let placeholder = Value::Array(frames.to_vec());
        for _ in frames {
            let left = deadline.saturating_duration_since(Instant::now());
            got.push(self.next_frame(conn, left, ctx, &placeholder).await?);
        }
        matcher::match_set(frames, &got, &mut self.state).map_err(|m| Failure {
            pointer: Some(m.pointer.clone()),
            expected: Some(placeholder.clone()),
            actual: Some(Value::Array(got.clone())),
            ..ctx.fail(format!("frames do not match in any order: {}", m.message))
        })
    }

    /// An `expectNothing` step: neither a frame nor a close for `wait`.
    async fn expect_nothing(
        &mut self,
        conn: &str,
        wait: Duration,
        ctx: &StepCtx,
    ) -> Result<(), Failure> {
        let c = self.conn(conn, ctx)?;
        let _ = c.gate.send(true);
        let Ok(incoming) = tokio::time::timeout(wait, c.rx.recv()).await else {
            return Ok(());
        };
        let incoming = incoming.unwrap_or(Incoming::End(None));
        let (message, actual) = self.describe_incoming(conn, incoming);
        Err(Failure {
            actual,
            ..ctx.fail(format!(
                "expected nothing for {} ms, but {message}",
                wait.as_millis()
            ))
        })
    }

    /// An `expectPing` step: a WebSocket ping from the server within `wait`.
    async fn expect_ping(
        &mut self,
        conn: &str,
        wait: Duration,
        ctx: &StepCtx,
    ) -> Result<(), Failure> {
        let c = self.conn(conn, ctx)?;
        let _ = c.gate.send(true);
        c.pings.mark_unchanged();
        match tokio::time::timeout(wait, c.pings.changed()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(ctx.fail("expected a WebSocket ping, but the connection ended")),
            Err(_) => Err(ctx.fail(format!(
                "expected a WebSocket ping from the server within {} ms; none arrived",
                wait.as_millis()
            ))),
        }
    }

    fn shutdown_server(&mut self, ctx: &StepCtx) -> Result<(), Failure> {
        let Some(server) = self.server.as_mut() else {
            return Err(ctx.fail(
                "this target cannot be shut down by the harness (declare the `shutdown` capability absent)",
            ));
        };
        // Not awaited here: the connections' closes are what the next steps watch.
        self.stopping = Some(tokio::spawn(server.shutdown()));
        Ok(())
    }

    async fn restart_server(&mut self, ctx: &StepCtx) -> Result<(), Failure> {
        self.await_shutdown(ctx.index).await?;
        let Some(server) = self.server.as_mut() else {
            return Err(ctx.fail(
                "this target cannot be restarted by the harness (declare the `restart` capability absent)",
            ));
        };
        let urls = server
            .restart()
            .await
            .map_err(|e| ctx.infra(format!("could not restart the server: {e}")))?;
        self.urls = urls;
        Ok(())
    }

    /// Waits for a shutdown a `shutdownServer` step started, failing if it broke.
    async fn await_shutdown(&mut self, step: usize) -> Result<(), Failure> {
        let Some(stopping) = self.stopping.take() else {
            return Ok(());
        };
        let message = match stopping.await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => format!("could not shut the server down: {e}"),
            Err(e) => format!("the shutdown task failed: {e}"),
        };
        Err(infra_failure(step, "shutdownServer", message))
    }

    fn conn(&mut self, name: &str, ctx: &StepCtx) -> Result<&mut Conn, Failure> {
        self.conns.get_mut(name).ok_or_else(|| {
            ctx.fail(format!(
                "connection {name:?} is not open (add a connect step)"
            ))
        })
    }

    async fn connect(
        &mut self,
        name: &str,
        status: Option<u16>,
        protocol: Option<&str>,
        ctx: &StepCtx,
    ) -> Result<(), Failure> {
        let default = ConnectionSpec::default();
        let spec = self.case.connections.get(name).unwrap_or(&default);
        let want_status = status.unwrap_or(101);
        let node = node_of(self.case, name, self.urls.len());
        let Some(node_url) = self.urls.get(node) else {
            return Err(ctx.infra("the target named no URL to connect to"));
        };
        let base = Url::parse(node_url).map_err(|e| ctx.fail(format!("invalid URL: {e}")))?;
        let cluster_url = (self.urls.len() > 1).then(|| node_url.clone());
        let url = match &spec.path {
            Some(path) => base.with_path(path),
            None => base,
        };
        let mut dial = Dial::new().timeout(self.options.step_timeout);
        if let Some(offered) = &spec.subprotocols {
            dial = dial.subprotocols(offered.clone());
        }
        if let Some(cred) = &spec.bearer {
            let token = self
                .options
                .contract
                .credentials
                .get(cred)
                .map(|c| c.token.clone())
                .ok_or_else(|| {
                    ctx.fail(format!("the testee contract has no credential {cred:?}"))
                })?;
            dial = dial.bearer(token);
        }
        for (k, v) in &spec.headers {
            let v = template::render_str(v, &self.state.vars)
                .map_err(|e| ctx.fail(format!("header {k}: {e}")))?;
            dial = dial.header(k.clone(), v);
        }
        if let Some(bytes) = spec.recv_buffer_bytes {
            dial = dial.recv_buffer(bytes);
        }
        let handshake = dial.connect(&url).await;
        match handshake {
            Ok((ws, response)) => {
                if want_status != 101 {
                    self.closes.push(CloseRecord {
                        conn: name.to_owned(),
                        initiator: "none".into(),
                        clean: true,
                        code: None,
                        expected: true,
                        url: cluster_url.clone(),
                    });
                    return Err(ctx.fail(format!(
                        "expected the handshake to be refused with HTTP {want_status}, but the server upgraded the connection"
                    )));
                }
                let selected = response.subprotocol().map(str::to_owned);
                let (sink, stream) = ws.split();
                let (tx, rx) = mpsc::unbounded_channel();
                let (gate, gate_rx) = watch::channel(true);
                let (ping_tx, pings) = watch::channel(0);
                tokio::spawn(read_loop(stream, tx, gate_rx, ping_tx));
                self.conns.insert(
                    name.to_owned(),
                    Conn {
                        sink,
                        rx,
                        gate,
                        pings,
                        closed: None,
                        close_expected: false,
                        client_closed: false,
                        frames: 0,
                        url: cluster_url.clone(),
                    },
                );
                if let Some(want) = protocol {
                    if selected.as_deref() != Some(want) {
                        return Err(ctx.fail(format!(
                            "expected the server to select subprotocol {want:?}, it selected {}",
                            selected.map_or("none".to_owned(), |s| format!("{s:?}"))
                        )));
                    }
                }
                Ok(())
            }
            Err(SocketError::Refused { status, .. }) => {
                let got = status.as_u16();
                self.closes.push(CloseRecord {
                    conn: name.to_owned(),
                    initiator: "none".into(),
                    clean: true,
                    code: None,
                    expected: true,
                    url: cluster_url,
                });
                if got == want_status {
                    Ok(())
                } else {
                    Err(ctx.fail(format!(
                        "expected the handshake to end with HTTP {want_status}, the server answered HTTP {got}"
                    )))
                }
            }
            Err(SocketError::HeaderValue { name }) if name == "Authorization" => {
                Err(ctx.fail(format!(
                    "credential {:?} is not a valid header value",
                    spec.bearer.as_deref().unwrap_or_default()
                )))
            }
            Err(e) => Err(ctx.fail(e.to_string())),
        }
    }

    /// Describes an incoming item that was not the frame a step wanted, recording closes.
    fn describe_incoming(&mut self, name: &str, incoming: Incoming) -> (String, Option<Value>) {
        match incoming {
            Incoming::Frame { text, checked } => {
                self.frames_checked += 1;
                let value = match checked {
                    Ok(v) | Err((Some(v), _)) => v,
                    Err((None, _)) => Value::String(text),
                };
                ("a frame arrived".into(), Some(value))
            }
            Incoming::Binary(n) => (format!("the server sent a binary frame of {n} bytes"), None),
            Incoming::Close(code, reason) => {
                self.mark_closed(name, code, true);
                (
                    format!(
                        "the server closed the connection with {}{}",
                        code.map_or("no code".to_owned(), |c| format!("code {c}")),
                        if reason.is_empty() {
                            String::new()
                        } else {
                            format!(" ({reason})")
                        }
                    ),
                    None,
                )
            }
            Incoming::End(error) => {
                self.mark_closed(name, None, false);
                (
                    format!(
                        "the connection ended without a close frame{}",
                        error.map_or(String::new(), |e| format!(": {e}"))
                    ),
                    None,
                )
            }
        }
    }

    fn mark_closed(&mut self, name: &str, code: Option<u16>, clean: bool) {
        if let Some(c) = self.conns.get_mut(name) {
            if c.closed.is_none() {
                c.closed = Some((code, clean));
            }
        }
    }

    /// Waits for the next frame on `name`, failing on a schema violation, a close or a timeout.
    async fn next_frame(
        &mut self,
        name: &str,
        wait: Duration,
        ctx: &StepCtx,
        expected: &Value,
    ) -> Result<Value, Failure> {
        let c = self.conn(name, ctx)?;
        let _ = c.gate.send(true);
        let incoming = match tokio::time::timeout(wait, c.rx.recv()).await {
            Err(_) => {
                return Err(Failure {
                    expected: Some(expected.clone()),
                    ..ctx.fail(format!("no frame arrived within {} ms", wait.as_millis()))
                });
            }
            Ok(incoming) => incoming.unwrap_or(Incoming::End(None)),
        };
        if let Incoming::Frame { text, checked } = incoming {
            self.frames_checked += 1;
            if let Some(c) = self.conns.get_mut(name) {
                c.frames += 1;
            }
            return match checked {
                Ok(value) => Ok(value),
                Err((value, violation)) => Err(schema_failure(ctx, text, value, &violation)),
            };
        }
        let (message, actual) = self.describe_incoming(name, incoming);
        Err(Failure {
            expected: Some(expected.clone()),
            actual,
            ..ctx.fail(format!("expected a frame, but {message}"))
        })
    }

    async fn expect_close(
        &mut self,
        name: &str,
        code: Option<u16>,
        skip_frames: bool,
        wait: Duration,
        ctx: &StepCtx,
    ) -> Result<(), Failure> {
        let deadline = Instant::now() + wait;
        loop {
            let c = self.conn(name, ctx)?;
            c.close_expected = true;
            if let Some((got, clean)) = c.closed {
                return check_close_code(ctx, code, got, clean);
            }
            let _ = c.gate.send(true);
            let left = deadline.saturating_duration_since(Instant::now());
            let incoming = match tokio::time::timeout(left, c.rx.recv()).await {
                Err(_) => {
                    return Err(ctx.fail(format!(
                        "expected the server to close the connection{} within {} ms; it did not",
                        code.map_or(String::new(), |c| format!(" with code {c}")),
                        wait.as_millis()
                    )));
                }
                Ok(incoming) => incoming.unwrap_or(Incoming::End(None)),
            };
            match incoming {
                Incoming::Frame { text, checked } => {
                    self.frames_checked += 1;
                    match checked {
                        Err((value, violation)) => {
                            return Err(schema_failure(ctx, text, value, &violation));
                        }
                        Ok(value) if !skip_frames => {
                            return Err(Failure {
                                actual: Some(value),
                                ..ctx.fail(format!(
                                    "expected the server to close the connection{}, but a frame arrived",
                                    code.map_or(String::new(), |c| format!(" with code {c}"))
                                ))
                            });
                        }
                        Ok(_) => {}
                    }
                }
                Incoming::Binary(n) => {
                    return Err(ctx.fail(format!(
                        "expected a close, the server sent a binary frame of {n} bytes"
                    )));
                }
                Incoming::Close(got, _) => {
                    self.mark_closed(name, got, true);
                }
                Incoming::End(_) => {
                    self.mark_closed(name, None, false);
                }
            }
        }
    }

    async fn client_close(&mut self, name: &str, code: u16, ctx: &StepCtx) -> Result<(), Failure> {
        let close_timeout = self.options.close_timeout;
        let c = self.conn(name, ctx)?;
        c.client_closed = true;
        c.close_expected = true;
        let _ = c.gate.send(true);
        let frame = CloseFrame {
            code: WsCloseCode::from(code),
            reason: "".into(),
        };
        let _ = c.sink.send(Message::Close(Some(frame))).await;
        let deadline = Instant::now() + close_timeout;
        let mut in_flight = 0;
        while c.closed.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, c.rx.recv()).await {
                Err(_) => {
                    c.closed = Some((None, false));
                }
                Ok(None) | Ok(Some(Incoming::End(_))) => c.closed = Some((None, false)),
                Ok(Some(Incoming::Close(got, _))) => c.closed = Some((got, true)),
                Ok(Some(Incoming::Frame { .. } | Incoming::Binary(_))) => {
                    // Frames in flight before the server saw our close are allowed.
                    in_flight += 1;
                }
            }
        }
        self.frames_checked += in_flight;
        Ok(())
    }

    /// Fails on frames nobody expected, then closes what is still open and records how every
    /// connection ended.
    async fn finish(&mut self) -> Result<(), Failure> {
        let mut outcome = Ok(());
        let names: Vec<String> = self.conns.keys().cloned().collect();
        let step = self.case.steps.len() + 1;
        for name in names {
            let ctx = StepCtx {
                index: step,
                kind: "end of case",
                conn: Some(name.clone()),
            };
            // Items that already arrived but no step consumed.
            let mut unread = VecDeque::new();
            if let Some(c) = self.conns.get_mut(&name) {
                while let Ok(item) = c.rx.try_recv() {
                    unread.push_back(item);
                }
            }
            for item in unread {
                match item {
                    Incoming::Frame { text, checked } => {
                        self.frames_checked += 1;
                        if outcome.is_ok() {
                            outcome = Err(match checked {
                                Err((value, violation)) => schema_failure(&ctx, text, value, &violation),
                                Ok(value) => Failure {
                                    actual: Some(value),
                                    ..ctx.fail("an unexpected frame arrived after the last step for this connection")
                                },
                            });
                        }
                    }
                    Incoming::Binary(n) => {
                        if outcome.is_ok() {
                            outcome = Err(ctx.fail(format!(
                                "the server sent a binary frame of {n} bytes after the last step"
                            )));
                        }
                    }
                    Incoming::Close(code, _) => self.mark_closed(&name, code, true),
                    Incoming::End(_) => self.mark_closed(&name, None, false),
                }
            }
            let open = self.conns.get(&name).is_some_and(|c| c.closed.is_none());
            if open {
                let _ = self.client_close(&name, 1000, &ctx).await;
            }
            if let Some(c) = self.conns.get(&name) {
                let (code, clean) = c.closed.unwrap_or((None, false));
                self.closes.push(CloseRecord {
                    conn: name.clone(),
                    initiator: if c.client_closed { "client" } else { "server" }.into(),
                    clean,
                    code,
                    expected: c.close_expected,
                    url: c.url.clone(),
                });
            }
        }
        outcome
    }
}

fn schema_failure(
    ctx: &StepCtx,
    text: String,
    value: Option<Value>,
    v: &schema::Violation,
) -> Failure {
    Failure {
        pointer: Some(v.pointer.clone()),
        actual: Some(value.unwrap_or(Value::String(text))),
        ..ctx.fail(format!(
            "received frame violates the server-to-client schema at {}: {}",
            display_pointer(&v.pointer),
            v.message
        ))
    }
}

fn check_close_code(
    ctx: &StepCtx,
    want: Option<u16>,
    got: Option<u16>,
    clean: bool,
) -> Result<(), Failure> {
    match (want, got) {
        (None, _) => Ok(()),
        (Some(w), Some(g)) if w == g => Ok(()),
        (Some(w), got) => Err(ctx.fail(format!(
            "expected close code {w} ({}), the server closed {}",
            describe_code(w),
            match (got, clean) {
                (Some(g), _) => format!("with code {g} ({})", describe_code(g)),
                (None, true) => "without a code".into(),
                (None, false) => "the TCP connection without a close frame".into(),
            }
        ))),
    }
}

fn describe_code(code: u16) -> &'static str {
    rtbus_protocol::CloseCode::from_value(code).map_or("not an rtbus close code", |c| c.name())
}

fn display_pointer(p: &str) -> &str {
    if p.is_empty() { "the whole frame" } else { p }
}

async fn read_loop(
    mut stream: SplitStream<Ws>,
    tx: mpsc::UnboundedSender<Incoming>,
    mut gate: watch::Receiver<bool>,
    pings: watch::Sender<u64>,
) {
    loop {
        while !*gate.borrow_and_update() {
            if gate.changed().await.is_err() {
                return;
            }
        }
        let count_pings = |control: Control| {
            if matches!(control, Control::Ping(_)) {
                pings.send_modify(|n| *n += 1);
            }
        };
        let next = tokio::select! {
            biased;
            changed = gate.changed() => {
                if changed.is_err() { return; }
                continue;
            }
            next = rtbus_socket::next_with(&mut stream, count_pings) => next,
        };
        let item = match next {
            Inbound::Text(text) => {
                let text = text.to_string();
                let checked = schema::check_text(&text);
                Incoming::Frame { text, checked }
            }
            Inbound::Binary(b) => Incoming::Binary(b.len()),
            Inbound::Close { code, reason } => Incoming::Close(code, reason.to_string()),
            Inbound::Ended => {
                let _ = tx.send(Incoming::End(None));
                return;
            }
            Inbound::Failed(e) => {
                let _ = tx.send(Incoming::End(Some(e.to_string())));
                return;
            }
        };
        if tx.send(item).is_err() {
            return;
        }
    }
}

/// The variables a case starts with, for tools that render templates outside a run.
pub fn initial_vars(contract: &Contract) -> Vars {
    let mut vars = contract.vars();
    vars.insert("nonce".into(), Value::from(nonce()));
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_fit_topics() {
        let n = nonce();
        assert!(
            rtbus_protocol::Topic::new(&format!("custom.t{n}")).is_ok(),
            "{n}"
        );
        assert_ne!(n, nonce());
    }

    /// A server that answers each connection with a close frame of `code` right after the
    /// handshake (0: never closes, echoes the client's close).
    struct Closer(u16);

    impl Target for Closer {
        fn describe(&self) -> String {
            format!("a server closing with {}", self.0)
        }

        fn absent(&self) -> Vec<Capability> {
            Vec::new()
        }

        fn prepare(&self) -> BoxFuture<'_, Result<Prepared, InfraError>> {
            let code = self.0;
            Box::pin(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .map_err(InfraError::Listen)?;
                let addr = listener.local_addr().map_err(InfraError::Listen)?;
                tokio::spawn(async move {
                    while let Ok((stream, _)) = listener.accept().await {
                        tokio::spawn(async move {
                            let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                                return;
                            };
                            if code != 0 {
                                let frame = CloseFrame {
                                    code: WsCloseCode::from(code),
                                    reason: "".into(),
                                };
                                let _ = ws.send(Message::Close(Some(frame))).await;
                            }
                            while let Some(Ok(_)) = ws.next().await {}
                        });
                    }
                });
                Ok(Prepared {
                    urls: vec![format!("ws://{addr}/api/realtime")],
                    server: None,
                })
            })
        }
    }

    fn closing_case(steps: &str) -> LoadedCase {
        let text = format!(
            r#"{{"id":"x","title":"t","rules":["frame.close-code"],"connections":{{"a":{{"subprotocols":[]}}}},"steps":[{{"do":"connect","conn":"a"}},{steps}]}}"#
        );
        crate::transcript::parse(std::path::Path::new("x.json"), &text).unwrap()
    }

    #[test]
    fn an_undeclared_close_code_fails_the_case_even_when_a_step_accepts_it() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let options = RunOptions::default();
        for steps in [
            r#"{"do":"expectClose","conn":"a","code":4999}"#,
            r#"{"do":"expectClose","conn":"a","skipFrames":true}"#,
        ] {
            let result = runtime.block_on(run_case(&closing_case(steps), &Closer(4999), &options));
            let Verdict::Failed(f) = &result.verdict else {
                panic!("{steps}: {:?}", result.verdict);
            };
            assert!(
                f.message.contains("code 4999")
                    && f.message
                        .contains("not declared by the protocol's CloseCode")
                    && f.message.contains("whether to reconnect"),
                "{}",
                f.message
            );
            assert_eq!(f.conn.as_deref(), Some("a"));
            assert!(!f.infrastructure);
        }
        // Declared codes pass, and so does the echo of a client's own code.
        let declared = closing_case(r#"{"do":"expectClose","conn":"a","code":4009}"#);
        let result = runtime.block_on(run_case(&declared, &Closer(4009), &options));
        assert!(result.passed(), "{:?}", result.verdict);
        let echoed = closing_case(r#"{"do":"close","conn":"a","code":4321}"#);
        let result = runtime.block_on(run_case(&echoed, &Closer(0), &options));
        assert!(result.passed(), "{:?}", result.verdict);
        assert_eq!(result.closes[0].code, Some(4321));
    }

    #[test]
    fn with_one_job_cases_finish_in_suite_order() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let cases: Vec<LoadedCase> = crate::suite::bundled()
            .unwrap()
            .into_iter()
            .filter(|c| c.case.requires.contains(&Capability::Resume))
            .collect();
        let ids: Vec<String> = cases.iter().map(|c| c.case.id.clone()).collect();
        assert!(ids.len() >= 4, "{ids:?}");
        let mut options = RunOptions {
            jobs: 1,
            ..RunOptions::default()
        };
        // Unsupported: the cases finish at once, without a server, so only the scheduling
        // decides their order.
        options.contract.absent.push(Capability::Resume);
        for _ in 0..20 {
            let mut order = Vec::new();
            runtime.block_on(run_suite(
                cases.clone(),
                Arc::new(Closer(1000)),
                options.clone(),
                |r, _, _| order.push(r.id.clone()),
            ));
            assert_eq!(order, ids);
        }
    }

    #[test]
    fn connections_go_to_the_urls_in_turn_by_name_unless_they_name_a_node() {
        let text = r#"{"id":"x","title":"t","rules":["ping.pong"],
            "connections":{"carol":{},"alice":{},"bob":{},"dave":{"node":3}},"steps":[]}"#;
        let case = crate::transcript::parse(std::path::Path::new("x.json"), text)
            .unwrap()
            .case;
        let nodes = |n: usize| -> Vec<usize> {
            ["alice", "bob", "carol", "dave", "nobody"]
                .iter()
                .map(|c| node_of(&case, c, n))
                .collect()
        };
        // By name: alice 0, bob 1, carol 2; dave names node 3; an unknown name takes node 0.
        assert_eq!(nodes(1), [0, 0, 0, 0, 0]);
        assert_eq!(nodes(2), [0, 1, 0, 1, 0]);
        assert_eq!(nodes(3), [0, 1, 2, 0, 0]);
        assert_eq!(nodes(4), [0, 1, 2, 3, 0]);
        assert_eq!(nodes(0), [0, 0, 0, 0, 0]);
    }

    #[test]
    fn close_grades() {
        let rec = |initiator: &str, clean, expected| CloseRecord {
            conn: "a".into(),
            initiator: initiator.into(),
            clean,
            code: None,
            expected,
            url: None,
        };
        assert_eq!(grade_closes(&[]), CloseVerdict::None);
        assert_eq!(grade_closes(&[rec("client", true, true)]), CloseVerdict::Ok);
        assert_eq!(
            grade_closes(&[rec("server", true, false)]),
            CloseVerdict::Unexpected
        );
        assert_eq!(
            grade_closes(&[rec("server", false, true)]),
            CloseVerdict::Unclean
        );
    }
}
