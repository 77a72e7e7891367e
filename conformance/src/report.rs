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
    for r in results {
        if let Verdict::Failed(f) = &r.verdict {
            out.push('\n');
            out.push_str(&render_failure(r, f, style));
        }
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
        format!(
            "{}, {}",
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
pub fn json_report(results: &[CaseResult], target: &str) -> String {
    #[derive(Serialize)]
    struct Report<'a> {
        target: &'a str,
        totals: Totals,
        cases: &'a [CaseResult],
    }
    let report = Report {
        target,
        totals: totals(results),
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
        vec![
            result("ping.pong", Verdict::Passed),
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
        let text = json_report(&results(), "embedded rtbus-server (reference)");
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
    fn totals_count_each_verdict_and_close_issue() {
        assert_eq!(
            totals(&results()),
            Totals {
                total: 8,
                passed: 2,
                failed: 5,
                unsupported: 1,
                close_issues: 2,
                frames_checked: 12,
            }
        );
    }
}
