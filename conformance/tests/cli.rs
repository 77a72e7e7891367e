//! The command line as users and CI see it: exit codes, reports, and errors that name the file,
//! the line and the expectation. What a run prints and the reports it writes are golden files
//! (`tests/snapshots/`; `INSTA_UPDATE=always cargo test -p rtbus-conformance --test cli`
//! accepts a change), with durations and temporary paths normalised.

use std::path::Path;
use std::process::{Command, Output};

fn harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rtbus-conformance"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Asserts the golden file `name` for a run's output or report, with what differs between runs
/// normalised: durations, and the temporary directory `dir`.
fn golden(name: &str, text: &str, dir: &Path) {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex::escape(&dir.display().to_string()), "[dir]");
    settings.add_filter(r"\(\d+ ms\)", "([ms] ms)");
    settings.add_filter(r"\d+\.\d s\n", "[secs] s\n");
    settings.add_filter(r#""durationMs": \d+"#, r#""durationMs": "[ms]""#);
    settings.add_filter(r#"time="\d+\.\d+""#, r#"time="[secs]""#);
    settings.bind(|| insta::assert_snapshot!(name, text));
}

fn case_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp dir");
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).expect("write case");
    }
    dir
}

const WRONG_PONG: &str = r#"{
  "id": "demo.wrong-pong",
  "title": "expects the wrong pong id",
  "rules": ["ping.pong"],
  "connections": {"alice": {}},
  "steps": [
    {"do": "connect", "conn": "alice"},
    {"do": "send", "conn": "alice", "frame": {"type": "ping", "id": "p1"}},
    {"do": "expect", "conn": "alice", "frame": {"type": "pong", "id": "p2"}}
  ]
}
"#;

#[test]
fn a_passing_run_exits_0_and_writes_reports() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let junit = dir.path().join("report.xml");
    // One case at a time, so the progress lines come in suite order.
    let out = harness(&[
        "run",
        "--filter",
        "smoke",
        "-j",
        "1",
        "--report",
        &format!("json={}", json.display()),
        "--report",
        &format!("junit={}", junit.display()),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let json_text = std::fs::read_to_string(&json).unwrap();
    let report: serde_json::Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(report["totals"]["failed"], 0);
    assert_eq!(report["totals"]["total"], 2);
    assert_eq!(report["cases"][0]["verdict"], "passed");
    golden("passing_run_console", &text(&out), dir.path());
    golden("passing_run_json_report", &json_text, dir.path());
    let xml = std::fs::read_to_string(&junit).unwrap();
    golden("passing_run_junit_report", &xml, dir.path());
}

#[test]
fn a_failing_case_exits_1_with_the_step_and_a_diff() {
    let dir = case_dir(&[("wrong.json", WRONG_PONG)]);
    let out = harness(&["run", "--cases", &dir.path().display().to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    golden("failing_run_console", &text(&out), dir.path());
}

#[test]
fn a_bad_transcript_exits_2_naming_file_line_and_expectation() {
    let broken = WRONG_PONG.replace("\"do\": \"expect\"", "\"do\": \"expct\"");
    let dir = case_dir(&[("broken.json", &broken)]);
    let out = harness(&["run", "--cases", &dir.path().display().to_string()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("broken.json:9:"), "{t}");
    assert!(
        t.contains("unknown variant `expct`, expected one of"),
        "{t}"
    );
}

#[test]
fn an_unreachable_server_exits_2() {
    let out = harness(&["run", "--url", "ws://127.0.0.1:9/api/realtime"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("server unreachable"), "{}", text(&out));
}

#[test]
fn usage_errors_exit_2_and_filters_warn_when_they_match_nothing() {
    let out = harness(&["run", "--filter", "no-such-case"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("warning: --filter/--exclude \"no-such-case\" matches no case"));
    let out = harness(&["run", "--report", "xml=out"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("expected json=PATH or junit=PATH"));
    let out = harness(&["run", "--without", "teleport"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("unknown capability"));
    let out = harness(&["run", "--token", "publisher"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("expected NAME=TOKEN"));
}

#[test]
fn absent_capabilities_make_cases_unsupported_not_failed() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let report = format!("json={}", json.display());
    let out = harness(&[
        "run",
        "--filter",
        "resume.*",
        "--without",
        "resume",
        "-j",
        "1",
        "--report",
        &report,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let total = report["totals"]["total"].as_u64().unwrap();
    assert!(total >= 4, "{t}");
    assert_eq!(report["totals"]["unsupported"], total, "{t}");
    golden("unsupported_run_console", &t, dir.path());
}

#[test]
fn coverage_prints_the_table_and_list_shows_cases() {
    let out = harness(&["coverage"]);
    assert_eq!(out.status.code(), Some(0));
    let committed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../generated/CONFORMANCE.md"),
    )
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), committed);
    let out = harness(&["run", "--list", "--filter", "auth"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out).contains("auth.deadline"));
}
