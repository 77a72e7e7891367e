//! The harness's error types, one enum per concern with variants a caller can match, each
//! carrying the place it names (file and line, JSON pointer, expression, command), and the
//! crate's [`Result`] alias. Their messages are what users read: say what, where, and what was
//! expected.
//!
//! A *verdict* is not an error: a frame that does not match ([`crate::matcher::Mismatch`]) or
//! breaks the schema ([`crate::schema::Violation`]) is what a case reports, as a
//! [`crate::runner::Failure`].

use std::fmt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use serde_json::Value;

use crate::transcript::Capability;

/// The crate's result type; the error defaults to the crate-wide [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that stops a run before or around the cases: what `rtbus-conformance run`
/// reports with exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Transcripts that do not load.
    #[error(transparent)]
    Load(#[from] LoadErrors),
    /// A contract file or `--token` flag that is not valid.
    #[error(transparent)]
    Contract(#[from] ContractError),
    /// The run itself could not go on (an unreachable server, a failing command).
    #[error(transparent)]
    Infra(#[from] InfraError),
    /// A command-line flag the harness cannot act on.
    #[error(transparent)]
    Usage(#[from] UsageError),
}

/// Something that names a JSON pointer inside a value (a transcript, a frame template, a
/// matcher) and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at {pointer}: {error}")]
pub struct AtPointer<E> {
    /// Where (JSON pointer; empty for the whole value).
    pub pointer: String,
    /// What is wrong there.
    pub error: E,
}

impl<E> AtPointer<E> {
    /// `error` at `pointer`.
    pub fn new(pointer: impl Into<String>, error: impl Into<E>) -> AtPointer<E> {
        AtPointer {
            pointer: pointer.into(),
            error: error.into(),
        }
    }

    /// The same place, with the error turned into another type.
    pub fn map<F>(self, f: impl FnOnce(E) -> F) -> AtPointer<F> {
        AtPointer {
            pointer: self.pointer,
            error: f(self.error),
        }
    }
}

/// What an expression parser wanted where it found something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedToken {
    /// An integer literal or a variable name.
    Term,
    /// `+` or `-`.
    Operator,
}

impl fmt::Display for ExpectedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExpectedToken::Term => "a number or a variable name",
            ExpectedToken::Operator => "'+' or '-'",
        })
    }
}

/// An expression (`snap + 1`) that does not parse or cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// An integer literal that does not fit an `i64`.
    #[error("number {number:?} in {expr:?} is too large")]
    TooLarge {
        /// The literal.
        number: String,
        /// The whole expression.
        expr: String,
    },
    /// A token where another kind of token belongs.
    #[error("unexpected {token:?} in expression {expr:?}; expected {expected}")]
    Unexpected {
        /// The token found.
        token: String,
        /// The whole expression.
        expr: String,
        /// What belongs there.
        expected: ExpectedToken,
    },
    /// The expression ends after an operator, or is empty.
    #[error("expression {expr:?} is incomplete; expected a number or a variable name")]
    Incomplete {
        /// The whole expression.
        expr: String,
    },
    /// A variable that holds something other than an integer.
    #[error("variable {name:?} is {value}, not an integer")]
    NotAnInteger {
        /// The variable.
        name: String,
        /// What it holds.
        value: Value,
    },
    /// A variable neither captured yet nor a contract value.
    #[error("variable {name:?} is not set (not captured yet, and not a contract value)")]
    Unset {
        /// The variable.
        name: String,
    },
    /// A count that came out below zero.
    #[error("{expr:?} is {value}, expected at least 0")]
    Negative {
        /// The expression.
        expr: String,
        /// Its value.
        value: i64,
    },
}

/// A template (`{{name}}`, `{{pad:N}}`, `{{token:NAME}}`, `$repeat`) that does not parse or
/// cannot be filled in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// An expression inside `{{...}}` or a `$repeat` count.
    #[error(transparent)]
    Expr(#[from] ExprError),
    /// A `{{` without its `}}`.
    #[error("unclosed \"{{{{\" in {text:?}; expected \"}}}}\"")]
    Unclosed {
        /// The whole template string.
        text: String,
    },
    /// `{{token:}}` without a credential name.
    #[error("\"{{{{token:}}}}\" needs a credential name, e.g. {{{{token:publisher}}}}")]
    EmptyCredentialName,
    /// `{{token:NAME}}` naming a credential the contract lacks.
    #[error("no credential {name:?} in the testee contract")]
    UnknownCredential {
        /// The credential name.
        name: String,
    },
    /// A `$repeat` count that is neither a number nor an expression string.
    #[error("\"$repeat\" is {count}; expected a count or an expression")]
    BadRepeatCount {
        /// What the count was.
        count: Value,
    },
    /// A `$repeat` object with keys besides `$repeat` and `item`, or without `item`.
    #[error("\"$repeat\" takes exactly {{\"$repeat\": COUNT, \"item\": TEMPLATE}}")]
    BadRepeatShape,
}

/// A matcher in an expected frame that is not valid (checked before the run).
#[derive(Debug, Clone, thiserror::Error)]
pub enum MatcherError {
    /// A matcher key with an argument of the wrong kind, e.g. `{"$type": "int"}`.
    #[error("{key} takes {expected}, found {found}")]
    BadArgument {
        /// The matcher key (`$type`, ...).
        key: String,
        /// What it takes.
        expected: String,
        /// What it was given.
        found: Value,
    },
    /// A `$regex` that does not compile.
    #[error("invalid regex: {0}")]
    Regex(#[from] regex::Error),
    /// An expression of `$expr`.
    #[error(transparent)]
    Expr(#[from] ExprError),
    /// A template in a string or in `$eq`.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A `$` key that is no matcher.
    #[error("unknown matcher {key}; expected one of {}", crate::matcher::KEYS.join(", "))]
    Unknown {
        /// The key.
        key: String,
    },
    /// `$extra` with a value other than `"ignore"`.
    #[error("$extra takes \"ignore\", found {found}")]
    BadExtra {
        /// What it was given.
        found: Value,
    },
}

/// A binary frame in a transcript that is not valid hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// An odd number of hex digits.
    #[error("binary frame {text:?} has an odd number of hex digits; expected pairs like \"00ff\"")]
    OddLength {
        /// The hex text.
        text: String,
    },
    /// A pair that is not two hex digits.
    #[error("binary frame has {pair:?} at byte {byte}; expected two hex digits")]
    BadDigit {
        /// The pair.
        pair: String,
        /// The 0-based byte index.
        byte: usize,
    },
}

/// A case that parses as JSON but breaks a rule of the format (found by `transcript::parse`,
/// reported at its JSON pointer).
#[derive(Debug, Clone, thiserror::Error)]
pub enum CaseError {
    /// An id with characters outside `[a-z0-9._-]`, or an empty one.
    #[error("invalid case id {id:?}: expected lowercase letters, digits, '.', '_' or '-'")]
    InvalidId {
        /// The id.
        id: String,
    },
    /// An empty `rules` list.
    #[error("a case must cite at least one rule id")]
    NoRules,
    /// A rule id that `PROTOCOL.md` does not define.
    #[error("unknown rule id {rule:?}; expected one of the ids in PROTOCOL.md, e.g. {near}")]
    UnknownRule {
        /// The id.
        rule: String,
        /// Known ids close to it, comma-separated.
        near: String,
    },
    /// A step naming a connection the case does not declare.
    #[error(
        "unknown connection {conn:?}; expected one of the keys of \"connections\": {}",
        known.join(", ")
    )]
    UnknownConnection {
        /// The connection named.
        conn: String,
        /// The declared ones.
        known: Vec<String>,
    },
    /// A `repeat` inside a `repeat`.
    #[error("repeat steps do not nest; flatten the inner repeat")]
    NestedRepeat,
    /// A step that needs a capability the case does not list in `requires`.
    #[error(
        "a {step} step needs the {:?} capability: add it to the case's \"requires\"",
        capability.name()
    )]
    MissingCapability {
        /// The step kind.
        step: &'static str,
        /// The capability.
        capability: Capability,
    },
    /// A send step with none or several of `frame`, `text`, `binary`.
    #[error("a send step needs exactly one of \"frame\", \"text\" or \"binary\"")]
    SendBody,
    /// A typed `frame` (without templates) that is not a client message.
    #[error("not a client message: {message}; use \"text\" to send malformed input on purpose")]
    NotClientMessage {
        /// What the protocol's decoder said.
        message: String,
    },
    /// A count or duration expression.
    #[error(transparent)]
    Expr(#[from] ExprError),
    /// A template in a header, text or frame.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A matcher in an expected frame.
    #[error(transparent)]
    Matcher(#[from] MatcherError),
    /// A binary frame's hex.
    #[error(transparent)]
    Hex(#[from] HexError),
}

/// Why a transcript did not load.
#[derive(Debug, thiserror::Error)]
pub enum TranscriptErrorKind {
    /// Not JSON, or JSON that does not fit the format (serde's message, without its position).
    #[error("{message}")]
    Format {
        /// What the parser said.
        message: String,
    },
    /// A rule of the format broken at a JSON pointer (boxed: errors stay small).
    #[error(transparent)]
    Invalid(Box<AtPointer<CaseError>>),
    /// An id another case of the suite already has.
    #[error("duplicate case id {id:?} (also in {}); ids must be unique", other.display())]
    DuplicateId {
        /// The id.
        id: String,
        /// The file of the other case.
        other: PathBuf,
    },
    /// The case directory could not be listed.
    #[error("cannot read the case directory: {0}")]
    ReadDir(#[source] std::io::Error),
    /// The file could not be read.
    #[error("cannot read: {0}")]
    Read(#[source] std::io::Error),
}

/// A transcript that could not be loaded, at its file, line and column.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}:{column}: {kind}", file.display())]
pub struct TranscriptError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0 when the file could not be read).
    pub line: usize,
    /// 1-based column (0 when the file could not be read).
    pub column: usize,
    /// What was wrong and what was expected.
    pub kind: TranscriptErrorKind,
}

/// Every transcript of a suite that did not load, one per line when displayed.
#[derive(Debug, thiserror::Error)]
pub struct LoadErrors(pub Vec<TranscriptError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// A contract file that could not be read, or a bad `--token` flag.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// The file could not be read.
    #[error("cannot read contract {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid contract.
    #[error("invalid contract {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What was wrong, with line and column.
        message: String,
    },
    /// A `--token` flag without `NAME=TOKEN`.
    #[error("--token {0:?}: expected NAME=TOKEN, e.g. publisher=s3cret")]
    BadToken(String),
}

/// The server command the harness runs for a `--url` target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerCommand {
    /// `--restart-command` / `restartCommand`.
    Restart,
    /// `--shutdown-command` / `shutdownCommand`.
    Shutdown,
}

impl fmt::Display for ServerCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ServerCommand::Restart => "restart",
            ServerCommand::Shutdown => "shutdown",
        })
    }
}

/// Why a TCP connection to a server could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectFailure {
    /// The OS refused or failed the connection.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// No answer in time.
    #[error("timed out")]
    TimedOut,
}

/// A problem with the run itself rather than with the server's behaviour: a case that meets
/// one fails as an infrastructure error, and the run exits with 2.
#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    /// The embedded reference server did not start.
    #[error("cannot start the embedded server: {0}")]
    Start(#[source] rtbus_server::Error),
    /// A loopback listener (a test server, a proxy) could not be set up.
    #[error("cannot listen on a loopback port: {0}")]
    Listen(#[source] std::io::Error),
    /// A `restartServer` or `shutdownServer` step on a target without that command.
    #[error(
        "no {which} command: name one with --{which}-command or {which}Command in the contract"
    )]
    NoCommand {
        /// Which command.
        which: ServerCommand,
    },
    /// The command could not be started.
    #[error("cannot run the {which} command `{command}`: {source}")]
    Spawn {
        /// Which command.
        which: ServerCommand,
        /// The shell command.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// Waiting for the command failed.
    #[error("waiting for the {which} command `{command}`: {source}")]
    Wait {
        /// Which command.
        which: ServerCommand,
        /// The shell command.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// The command ran longer than the command timeout (it was killed).
    #[error("the {which} command `{command}` did not finish within {} ms", timeout.as_millis())]
    CommandTimeout {
        /// Which command.
        which: ServerCommand,
        /// The shell command.
        command: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The command exited unsuccessfully.
    #[error(
        "the {which} command `{command}` failed ({status}){}",
        if stderr.is_empty() {
            "; it wrote nothing to stderr".to_owned()
        } else {
            format!("; stderr: {stderr}")
        }
    )]
    CommandFailed {
        /// Which command.
        which: ServerCommand,
        /// The shell command.
        command: String,
        /// How it exited.
        status: ExitStatus,
        /// The start of what it wrote to stderr, trimmed (empty: nothing).
        stderr: String,
    },
    /// After the restart command, the server did not accept TCP connections in time.
    #[error(
        "the server at {authority} did not accept connections within {} ms after the \
         restart command: {last}",
        timeout.as_millis()
    )]
    NotListening {
        /// `host:port`.
        authority: String,
        /// How long the harness waited.
        timeout: Duration,
        /// Why the last attempt failed.
        last: ConnectFailure,
    },
    /// A URL the harness cannot reach (only `ws://` is supported).
    #[error(
        "unsupported URL {url}: expected ws://host:port/path (terminate TLS in front of the server)"
    )]
    UnsupportedUrl {
        /// The URL.
        url: String,
    },
    /// Nothing accepts TCP connections at the target's address.
    #[error("server unreachable at {authority}: {cause}")]
    Unreachable {
        /// `host:port`.
        authority: String,
        /// Why.
        cause: ConnectFailure,
    },
}

/// The server-to-client schema the harness ships does not compile (a bug in the harness).
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// A schema the validator rejects.
    #[error("{0}")]
    Compile(String),
    /// Two `oneOf` branches for one message `type`.
    #[error("two oneOf branches have the `type` {name:?}")]
    DuplicateType {
        /// The message type.
        name: String,
    },
    /// `oneOf` branches without a `type` const to pick them by.
    #[error("{untyped} of {total} oneOf branches name no `type` const")]
    UntypedBranches {
        /// Branches without a `type` const.
        untyped: usize,
        /// All branches.
        total: usize,
    },
}

/// A command-line flag of `run` the harness cannot act on.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// `--report` without `json=PATH` or `junit=PATH`.
    #[error("--report {0:?}: expected json=PATH or junit=PATH")]
    BadReport(String),
    /// `--without` naming no capability.
    #[error(
        "--without {0:?}: unknown capability; expected one of {names}",
        names = Capability::ALL.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
    )]
    UnknownCapability(String),
    /// `--filter` and `--exclude` left no case.
    #[error("no case selected")]
    NoCaseSelected,
    /// A report file could not be written.
    #[error("cannot write report {}: {source}", path.display())]
    WriteReport {
        /// The report file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages users read, variant by variant: typed errors must render as the string
    /// errors they replaced did.
    #[test]
    fn messages_say_what_where_and_what_was_expected() {
        let cases: Vec<(String, &str)> = vec![
            (
                ExprError::Unexpected {
                    token: "*".into(),
                    expr: "a * 2".into(),
                    expected: ExpectedToken::Operator,
                }
                .to_string(),
                "unexpected \"*\" in expression \"a * 2\"; expected '+' or '-'",
            ),
            (
                TemplateError::Unclosed { text: "{{a".into() }.to_string(),
                "unclosed \"{{\" in \"{{a\"; expected \"}}\"",
            ),
            (
                TemplateError::EmptyCredentialName.to_string(),
                "\"{{token:}}\" needs a credential name, e.g. {{token:publisher}}",
            ),
            (
                TemplateError::BadRepeatShape.to_string(),
                "\"$repeat\" takes exactly {\"$repeat\": COUNT, \"item\": TEMPLATE}",
            ),
            (
                AtPointer::<CaseError>::new("/steps/0/do", CaseError::NestedRepeat).to_string(),
                "at /steps/0/do: repeat steps do not nest; flatten the inner repeat",
            ),
            (
                CaseError::MissingCapability {
                    step: "restartServer",
                    capability: Capability::Restart,
                }
                .to_string(),
                "a restartServer step needs the \"restart\" capability: add it to the case's \"requires\"",
            ),
            (
                InfraError::NoCommand {
                    which: ServerCommand::Restart,
                }
                .to_string(),
                "no restart command: name one with --restart-command or restartCommand in the contract",
            ),
            (
                InfraError::Unreachable {
                    authority: "h:1".into(),
                    cause: ConnectFailure::TimedOut,
                }
                .to_string(),
                "server unreachable at h:1: timed out",
            ),
            (
                UsageError::UnknownCapability("teleport".into()).to_string(),
                "--without \"teleport\": unknown capability; expected one of auth, publish, resume, \
                 public-topics, limits, heartbeat, slow-consumer, shutdown, restart, cluster",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn load_errors_list_one_file_per_line() {
        let at = |file: &str, line| TranscriptError {
            file: file.into(),
            line,
            column: 1,
            kind: TranscriptErrorKind::Format {
                message: "EOF while parsing".into(),
            },
        };
        let errors = LoadErrors(vec![at("a.json", 1), at("b.json", 2)]);
        assert_eq!(
            errors.to_string(),
            "a.json:1:1: EOF while parsing\nb.json:2:1: EOF while parsing"
        );
    }
}
