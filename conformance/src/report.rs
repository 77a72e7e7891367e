//! Reports: console progress and summary with coloured diffs, JSON, and JUnit XML.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;
use similar::{ChangeTag, TextDiff};

use crate::runner::{CaseResult, CloseVerdict, Failure, Verdict};

/// Terminal styling, off when output is not a terminal or `NO_COLOR` is set.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Whether to emit ANSI colours.
    pub color: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    fn green(self, t: &str) -> String {
        self.paint("32", t)
    }
    fn red(self, t: &str) -> String {
        self.paint("31", t)
    }
    fn yellow(self, t: &str) -> String {
        self.paint("33", t)
    }
    fn dim(self, t: &str) -> String {
        self.paint("2", t)
    }
    fn bold(self, t: &str) -> String {
        self.paint("1", t)
    }
}

/// One progress line for a finished case.
pub fn progress_line(r: &CaseResult, done: usize, total: usize, style: Style) -> String {
    let width = total.to_string().len();
    let mark = match &r.verdict {
        Verdict::Passed => style.green("pass"),
        Verdict::Failed(_) => style.red("FAIL"),
        Verdict::Unsupported { .. } => style.yellow("skip"),
    };
    let close = match r.close_verdict {
        CloseVerdict::Ok | CloseVerdict::None => String::new(),
        other => style.yellow(&format!("  close: {}", close_name(other))),
    };
    format!(
        "[{done:>width$}/{total}] {mark} {} {}{close}",
        r.id,
        style.dim(&format!("({} ms)", r.duration_ms))
    )
}

fn close_name(v: CloseVerdict) -> &'static str {
    match v {
        CloseVerdict::Ok => "ok",
        CloseVerdict::Unclean => "unclean",
        CloseVerdict::Unexpected => "unexpected",
        CloseVerdict::None => "-",
    }
}

/// Explains a failure: the step, the message, and a coloured expected-vs-actual diff.
pub fn render_failure(r: &CaseResult, f: &Failure, style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} — {}",
        style.red("✗"),
        style.bold(&r.id),
        r.title
    );
    let _ = writeln!(out, "  file:  {}", r.file);
    let _ = writeln!(out, "  rules: {}", r.rules.join(", "));
    let step = if f.step == 0 {
        "before the first step".to_owned()
    } else {
        format!(
            "at step {} ({}{})",
            f.step,
            f.step_kind,
            f.conn
                .as_ref()
                .map_or(String::new(), |c| format!(" on {c}"))
        )
    };
    let broke = if f.infrastructure {
        "infrastructure error (the run broke, not the server): "
    } else {
        ""
    };
    let _ = writeln!(out, "  {step}: {broke}{}", f.message);
    match (&f.expected, &f.actual) {
        (Some(e), Some(a)) => {
            let _ = writeln!(
                out,
                "  {} {}",
                style.red("- expected"),
                style.green("+ actual")
            );
            out.push_str(&diff(e, a, style));
        }
        (None, Some(a)) => {
            let _ = writeln!(out, "  received: {}", compact(a));
        }
        (Some(e), None) => {
            let _ = writeln!(out, "  expected: {}", compact(e));
        }
        (None, None) => {}
    }
    out
}

fn compact(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 400 {
        format!("{}… ({} bytes)", crate::prefix(&s, 400), s.len())
    } else {
        s
    }
}

fn pretty(v: &Value) -> String {
    let s = serde_json::to_string_pretty(v).unwrap_or_default();
    if s.len() > 4000 {
        format!("{}\n… ({} bytes)", crate::prefix(&s, 4000), s.len())
    } else {
        s
    }
}

/// A line diff of two JSON values, pretty-printed.
pub fn diff(expected: &Value, actual: &Value, style: Style) -> String {
    let (e, a) = (pretty(expected), pretty(actual));
    let mut out = String::new();
    for change in TextDiff::from_lines(&e, &a).iter_all_changes() {
        let line = change.to_string_lossy();
        let line = line.trim_end_matches('\n');
        let _ = writeln!(
            out,
            "    {}",
            match change.tag() {
                ChangeTag::Delete => style.red(&format!("- {line}")),
                ChangeTag::Insert => style.green(&format!("+ {line}")),
                ChangeTag::Equal => style.dim(&format!("  {line}")),
            }
        );
    }
    out
}

/// Failures that share one first cause: one mistake in a server, however many cases it fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cause {
    /// The cause, with the values particular to a case (nonces, ids, seqs) left out.
    pub cause: String,
    /// The failed cases, in suite order; the first is the example rendered in full.
    pub cases: Vec<String>,
    /// The rules those cases cite, sorted, each once.
    pub rules: Vec<String>,
    /// Whether the run broke rather than the server (`infrastructure error`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub infrastructure: bool,
}

/// The `type` of a frame, when it is a plain string (not a matcher).
fn frame_type(frame: Option<&Value>) -> Option<&str> {
    frame?.get("type")?.as_str()
}

/// A message with what is particular to one case run left out: a word that mixes digits with
/// letters (a nonce, an id like `s1`, a topic's unique part) becomes `…`, and an array index in
/// a JSON pointer becomes `*`. Plain numbers (close codes, statuses, timeouts) stay.
fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let mut after_slash = false;
    let flush = |word: &mut String, out: &mut String, after_slash: bool| {
        let digits = word.chars().any(|c| c.is_ascii_digit());
        let letters = word.chars().any(|c| c.is_ascii_alphabetic());
        if digits && letters {
            out.push('…');
        } else if digits && after_slash {
            out.push('*');
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out, after_slash);
            after_slash = c == '/';
            out.push(c);
        }
    }
    flush(&mut word, &mut out, after_slash);
    out
}

/// The first cause of a failure: what two cases failing for the same mistake have in common.
///
/// A frame of another type than the step expected is keyed by the type that arrived (one
/// unexpected frame type fails every case that meets it, whatever each expected); a frame that
/// does not match, or violates the schema, by where (the value found there is the case's own);
/// anything else by its message, normalised.
pub fn cause_of(f: &Failure) -> String {
    let kind = &f.step_kind;
    if f.infrastructure {
        return format!("{kind}: infrastructure error: {}", normalise(&f.message));
    }
    let got = frame_type(f.actual.as_ref());
    if let Some(got) = got {
        if frame_type(f.expected.as_ref()).is_some_and(|want| want != got) {
            return format!(
                "{kind}: a frame of type `{got}` arrived where the case expected another"
            );
        }
    }
    let what = match (&f.pointer, f.message.split_once(": ")) {
        (Some(_), Some((at, _))) => normalise(at),
        _ => normalise(&f.message),
    };
    match got {
        Some(got) if f.expected.is_none() => format!("{kind}: {what} (a `{got}` frame)"),
        _ => format!("{kind}: {what}"),
    }
}

/// Groups the failed cases by their first cause, the causes in the order of their first case.
pub fn causes(results: &[CaseResult]) -> Vec<Cause> {
    let mut causes: Vec<Cause> = Vec::new();
    for r in results {
        let Verdict::Failed(f) = &r.verdict else {
            continue;
        };
        let key = cause_of(f);
        let at = match causes.iter().position(|c| c.cause == key) {
            Some(at) => at,
            None => {
                causes.push(Cause {
                    cause: key,
                    cases: Vec::new(),
                    rules: Vec::new(),
                    infrastructure: f.infrastructure,
                });
                causes.len() - 1
            }
        };
        let cause = &mut causes[at];
        cause.cases.push(r.id.clone());
        cause.rules.extend(r.rules.iter().cloned());
        cause.rules.sort();
        cause.rules.dedup();
    }
    causes
}

/// Counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    /// Cases run or skipped.
    pub total: usize,
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
    /// Unsupported.
    pub unsupported: usize,
    /// Cases whose close behaviour was not `ok`.
    pub close_issues: usize,
    /// Frames checked against the schema.
    pub frames_checked: usize,
}

/// Counts the results.
pub fn totals(results: &[CaseResult]) -> Totals {
    let mut t = Totals {
        total: results.len(),
        ..Totals::default()
    };
    for r in results {
        match r.verdict {
            Verdict::Passed => t.passed += 1,
            Verdict::Failed(_) => t.failed += 1,
            Verdict::Unsupported { .. } => t.unsupported += 1,
        }
        if matches!(
            r.close_verdict,
            CloseVerdict::Unclean | CloseVerdict::Unexpected
        ) {
            t.close_issues += 1;
        }
        t.frames_checked += r.frames_checked;
    }
    t
}

/// The summary printed after the run: failures in full, then one line of totals.
pub fn summary(results: &[CaseResult], target: &str, elapsed_ms: u128, style: Style) -> String {
    let mut out = String::new();
    let causes = causes(results);
    for (n, cause) in causes.iter().enumerate() {
        let first = cause
            .cases
            .first()
            .and_then(|id| results.iter().find(|r| &r.id == id));
        let Some((r, Verdict::Failed(f))) = first.map(|r| (r, &r.verdict)) else {
            continue;
        };
        let count = match cause.cases.len() {
            1 => "1 case".to_owned(),
            n => format!("{n} cases"),
        };
        let _ = writeln!(
            out,
            "\n{} {}",
            style.bold(&format!("cause {} of {}, {count}:", n + 1, causes.len())),
            cause.cause
        );
        if cause.cases.len() > 1 {
            let _ = writeln!(out, "  cases: {}", cause.cases.join(", "));
            let _ = writeln!(out, "  rules: {}", cause.rules.join(", "));
            let _ = writeln!(out, "  first case:");
        }
        out.push_str(&render_failure(r, f, style));
    }
    let unsupported: Vec<String> = results
        .iter()
        .filter_map(|r| match &r.verdict {
            Verdict::Unsupported { missing } => Some(format!(
                "{} (needs {})",
                r.id,
                missing
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            _ => None,
        })
        .collect();
    if !unsupported.is_empty() {
        let _ = writeln!(out, "\n{}", style.yellow("unsupported by this server:"));
        for u in unsupported {
            let _ = writeln!(out, "  {u}");
        }
    }
    let closes: Vec<String> = results
        .iter()
        .filter(|r| {
            matches!(
                r.close_verdict,
                CloseVerdict::Unclean | CloseVerdict::Unexpected
            )
        })
        .map(|r| {
            let detail: Vec<String> = r
                .closes
                .iter()
                .map(|c| {
                    format!(
                        "{}: closed by {}, {}, code {}{}",
                        c.conn,
                        c.initiator,
                        if c.clean { "clean" } else { "unclean" },
                        c.code.map_or("none".to_owned(), |c| c.to_string()),
                        if c.expected {
                            ""
                        } else {
                            ", not expected by the case"
                        }
                    )
                })
                .collect();
            format!(
                "{} [{}]: {}",
                r.id,
                close_name(r.close_verdict),
                detail.join("; ")
            )
        })
        .collect();
    if !closes.is_empty() {
        let _ = writeln!(out, "\n{}", style.yellow("close behaviour:"));
        for c in closes {
            let _ = writeln!(out, "  {c}");
        }
    }
    let t = totals(results);
    let headline = if t.failed == 0 {
        style.green(&format!("{} passed", t.passed))
    } else {
        let causes = match causes.len() {
            1 => "1 cause".to_owned(),
            n => format!("{n} causes"),
        };
        format!(
            "{} ({causes}), {}",
            style.red(&format!("{} failed", t.failed)),
            format_args!("{} passed", t.passed)
        )
    };
    let _ = writeln!(
        out,
        "\n{headline}, {} unsupported, {} with close issues — {} cases, {} frames checked against the schema, {:.1} s\ntarget: {target}",
        t.unsupported,
        t.close_issues,
        t.total,
        t.frames_checked,
        elapsed_ms as f64 / 1000.0
    );
    out
}

/// The JSON report (`--report json=PATH`).
pub fn json_report(results: &[CaseResult], target: &str, nodes: &[String]) -> String {
    #[derive(Serialize)]
    struct Report<'a> {
        target: &'a str,
        /// The URLs of the shared server or cluster's nodes, in order (absent: a server per case).
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        nodes: &'a [String],
        totals: Totals,
        causes: Vec<Cause>,
        cases: &'a [CaseResult],
    }
    let report = Report {
        target,
        nodes,
        totals: totals(results),
        causes: causes(results),
        cases: results,
    };
    let mut s = serde_json::to_string_pretty(&report).unwrap_or_default();
    s.push('\n');
    s
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => {}
            c => out.push(c),
        }
    }
    out
}

/// The JUnit XML report (`--report junit=PATH`), one test case per conformance case.
pub fn junit_report(results: &[CaseResult]) -> String {
    let t = totals(results);
    let seconds: f64 = results.iter().map(|r| r.duration_ms as f64 / 1000.0).sum();
    let errors = results
        .iter()
        .filter(|r| matches!(&r.verdict, Verdict::Failed(f) if f.infrastructure))
        .count();
    let counts = format!(
        "tests=\"{}\" failures=\"{}\" errors=\"{errors}\" skipped=\"{}\" time=\"{seconds:.3}\"",
        t.total,
        t.failed - errors,
        t.unsupported
    );
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(out, "<testsuites name=\"rtbus-conformance\" {counts}>");
    let _ = writeln!(out, "  <testsuite name=\"rtbus-conformance\" {counts}>");
    let plain = Style { color: false };
    for r in results {
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\" time=\"{:.3}\"",
            xml_escape(r.rules.first().map_or("rtbus", String::as_str)),
            xml_escape(&r.id),
            xml_escape(&r.file),
            r.duration_ms as f64 / 1000.0
        );
        match &r.verdict {
            Verdict::Passed => out.push_str("/>\n"),
            Verdict::Failed(f) => {
                // JUnit tells a broken test run (`error`) from a failed assertion (`failure`).
                let element = if f.infrastructure { "error" } else { "failure" };
                let _ = writeln!(
                    out,
                    ">\n      <{element} message=\"{}\">{}</{element}>\n    </testcase>",
                    xml_escape(&f.message),
                    xml_escape(&render_failure(r, f, plain))
                );
            }
            Verdict::Unsupported { missing } => {
                let names: Vec<String> = missing.iter().map(ToString::to_string).collect();
                let _ = writeln!(
                    out,
                    ">\n      <skipped message=\"unsupported: needs {}\"/>\n    </testcase>",
                    xml_escape(&names.join(", "))
                );
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    //! Golden files of every report over fixed, hand-built results: one of each verdict and
    //! close grade. `INSTA_UPDATE=always cargo test -p rtbus-conformance` accepts a change.

    use super::*;
    use crate::runner::CloseRecord;
    use crate::transcript::Capability;
    use serde_json::json;

    const PLAIN: Style = Style { color: false };

    fn result(id: &str, verdict: Verdict) -> CaseResult {
        CaseResult {
            id: id.into(),
            title: format!("what {id} checks"),
            rules: vec!["ping.pong".into()],
            tags: vec![],
            file: format!("cases/{id}.json"),
            verdict,
            close_verdict: CloseVerdict::Ok,
            closes: vec![close("alice", "client", true, Some(1000), true)],
            frames_checked: 2,
            duration_ms: 5,
        }
    }

    fn close(
        conn: &str,
        initiator: &str,
        clean: bool,
        code: Option<u16>,
        expected: bool,
    ) -> CloseRecord {
        CloseRecord {
            conn: conn.into(),
            initiator: initiator.into(),
            clean,
            code,
            expected,
            url: None,
        }
    }

    fn mismatch() -> Failure {
        Failure {
            step: 3,
            step_kind: "expect".into(),
            conn: Some("alice".into()),
            message: "frame does not match at /id: expected \"p\", found \"q\"".into(),
            pointer: Some("/id".into()),
            expected: Some(json!({"type": "pong", "id": "p"})),
            actual: Some(json!({"type": "pong", "id": "q"})),
            infrastructure: false,
        }
    }

    /// A run with every verdict and close grade, in suite order.
    fn results() -> Vec<CaseResult> {
        let restart_failed = Failure {
            step: 2,
            step_kind: "restartServer".into(),
            conn: None,
            message: "could not restart the server: the restart command `./restart.sh` failed \
                      (exit status: 3); stderr: cannot find my-server"
                .into(),
            pointer: None,
            expected: None,
            actual: None,
            infrastructure: true,
        };
        let no_frame = Failure {
            step: 4,
            step_kind: "expect".into(),
            conn: Some("bob".into()),
            message: "no frame arrived within 2000 ms".into(),
            pointer: None,
            expected: Some(json!({"type": "event", "data": {"seq": {"$expr": "snap + 1"}}})),
            actual: None,
            infrastructure: false,
        };
        let schema = Failure {
            step: 2,
            step_kind: "expect".into(),
            conn: Some("alice".into()),
            message: "received frame violates the server-to-client schema at /type: \"pang\" \
                      is not a server message type"
                .into(),
            pointer: Some("/type".into()),
            expected: None,
            actual: Some(json!({"type": "pang", "id": "p"})),
            infrastructure: false,
        };
        let unprepared = Failure {
            step: 0,
            step_kind: "prepare".into(),
            conn: None,
            message: "could not prepare the server: cannot start the embedded server: cannot \
                      listen on 127.0.0.1:4000: Address already in use (os error 98)"
                .into(),
            pointer: None,
            expected: None,
            actual: None,
            infrastructure: true,
        };
        // One mistake, three cases: an `authenticated` frame nobody asked for, wherever it lands.
        let announced = |step: usize, want: Value| Failure {
            step,
            step_kind: "expect".into(),
            conn: Some("carol".into()),
            message: "frame does not match at /type: expected \"x\", found \"authenticated\""
                .into(),
            pointer: Some("/type".into()),
            expected: Some(want),
            actual: Some(json!({"type": "authenticated", "data": {"principal": "carol"}})),
            infrastructure: false,
        };
        let other_id = Failure {
            message: "frame does not match at /id: expected \"s1-3fa9c01b2e\", found \"s2\"".into(),
            expected: Some(json!({"type": "pong", "id": "s1-3fa9c01b2e"})),
            actual: Some(json!({"type": "pong", "id": "s2"})),
            ..mismatch()
        };
        vec![
            result("ping.pong", Verdict::Passed),
            result(
                "subscribe.ack-first",
                Verdict::Failed(Box::new(announced(
                    3,
                    json!({"type": "subscribed", "id": "s1"}),
                ))),
            ),
            result(
                "publish.ack",
                Verdict::Failed(Box::new(announced(
                    5,
                    json!({"type": "published", "id": "p1"}),
                ))),
            ),
            CaseResult {
                rules: vec!["request.id".into()],
                ..result("ping.other-id", Verdict::Failed(Box::new(other_id)))
            },
            CaseResult {
                title: "a title with <markup> & \"quotes\"".into(),
                ..result("ping.wrong-id", Verdict::Failed(Box::new(mismatch())))
            },
            result("resume.restart", Verdict::Failed(Box::new(restart_failed))),
            CaseResult {
                close_verdict: CloseVerdict::None,
                closes: vec![],
                frames_checked: 0,
                duration_ms: 0,
                ..result(
                    "resume.replay",
                    Verdict::Unsupported {
                        missing: vec![Capability::Resume, Capability::Publish],
                    },
                )
            },
            CaseResult {
                close_verdict: CloseVerdict::Unclean,
                closes: vec![close("alice", "server", false, None, true)],
                ..result("heartbeat.timeout", Verdict::Passed)
            },
            CaseResult {
                close_verdict: CloseVerdict::Unexpected,
                closes: vec![
                    close("alice", "server", true, Some(4009), false),
                    close("bob", "client", true, Some(1000), true),
                ],
                duration_ms: 2003,
                ..result("publish.fanout", Verdict::Failed(Box::new(no_frame)))
            },
            result("frame.schema", Verdict::Failed(Box::new(schema))),
            result(
                "auth.header",
                Verdict::Failed(Box::new(announced(2, json!({"type": "pong", "id": "a"})))),
            ),
            CaseResult {
                close_verdict: CloseVerdict::None,
                closes: vec![],
                frames_checked: 0,
                ..result("handshake.endpoint", Verdict::Failed(Box::new(unprepared)))
            },
        ]
    }

    /// ANSI escapes made visible, so a coloured snapshot reads as text.
    fn visible(text: &str) -> String {
        text.replace('\x1b', "␛")
    }

    #[test]
    fn console_progress_lines() {
        let results = results();
        let lines: Vec<String> = results
            .iter()
            .enumerate()
            .map(|(i, r)| progress_line(r, i + 1, results.len(), PLAIN))
            .collect();
        insta::assert_snapshot!(lines.join("\n"));
    }

    #[test]
    fn console_summary() {
        insta::assert_snapshot!(summary(
            &results(),
            "embedded rtbus-server (reference)",
            2345,
            PLAIN
        ));
    }

    #[test]
    fn console_summary_in_colour() {
        let text = summary(
            &results(),
            "ws://127.0.0.1:8080/api/realtime",
            2345,
            Style { color: true },
        );
        insta::assert_snapshot!(visible(&text));
    }

    #[test]
    fn console_summary_of_a_green_run() {
        let results = vec![
            result("ping.pong", Verdict::Passed),
            result("handshake.endpoint", Verdict::Passed),
        ];
        insta::assert_snapshot!(summary(
            &results,
            "embedded rtbus-server (reference)",
            80,
            PLAIN
        ));
    }

    #[test]
    fn json_report_golden() {
        let text = json_report(&results(), "embedded rtbus-server (reference)", &[]);
        insta::assert_snapshot!(text);
        // The report is JSON whose totals agree with the cases it lists.
        let report: Value = serde_json::from_str(&text).expect("the JSON report parses");
        assert_eq!(
            report["cases"].as_array().map(Vec::len),
            Some(results().len())
        );
        assert_eq!(report["totals"]["total"], results().len());
    }

    #[test]
    fn junit_report_golden() {
        insta::assert_snapshot!(junit_report(&results()));
    }

    #[test]
    fn one_mistake_is_one_cause() {
        let causes = causes(&results());
        let summary: Vec<(usize, &str)> = causes
            .iter()
            .map(|c| (c.cases.len(), c.cause.as_str()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    3,
                    "expect: a frame of type `authenticated` arrived where the case expected another"
                ),
                (2, "expect: frame does not match at /id"),
                (
                    1,
                    "restartServer: infrastructure error: could not restart the server: the \
                     restart command `./restart.sh` failed (exit status: 3); stderr: cannot find \
                     my-server"
                ),
                (1, "expect: no frame arrived within 2000 ms"),
                (
                    1,
                    "expect: received frame violates the server-to-client schema at /type (a `pang` frame)"
                ),
                (
                    1,
                    "prepare: infrastructure error: could not prepare the server: cannot start \
                     the embedded server: cannot listen on 127.0.0.1:4000: Address already in \
                     use (os error 98)"
                ),
            ]
        );
        assert_eq!(
            causes[0].cases,
            ["subscribe.ack-first", "publish.ack", "auth.header"]
        );
        assert_eq!(causes[1].rules, ["ping.pong", "request.id"]);
    }

    #[test]
    fn normalising_leaves_out_what_is_particular_to_a_case() {
        assert_eq!(
            normalise("unknown topic \"custom.c3fa9c01b2e\" at /data/topics/12/seq, code 4009"),
            "unknown topic \"custom.…\" at /data/topics/*/seq, code 4009"
        );
    }

    #[test]
    fn totals_count_each_verdict_and_close_issue() {
        assert_eq!(
            totals(&results()),
            Totals {
                total: 12,
                passed: 2,
                failed: 9,
                unsupported: 1,
                close_issues: 2,
                frames_checked: 20,
            }
        );
    }
}
