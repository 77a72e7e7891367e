//! The command line as users and CI see it: exit codes, reports, and errors that name the file,
//! the line and the expectation.

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
    let out = harness(&[
        "run",
        "--filter",
        "smoke",
        "--report",
        &format!("json={}", json.display()),
        "--report",
        &format!("junit={}", junit.display()),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["totals"]["failed"], 0);
    assert_eq!(report["totals"]["total"], 2);
    assert_eq!(report["cases"][0]["verdict"], "passed");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testcase") && xml.contains("failures=\"0\""),
        "{xml}"
    );
    assert!(text(&out).contains("2 passed"), "{}", text(&out));
}

#[test]
fn a_failing_case_exits_1_with_the_step_and_a_diff() {
    let dir = case_dir(&[("wrong.json", WRONG_PONG)]);
    let out = harness(&["run", "--cases", &dir.path().display().to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("FAIL demo.wrong-pong"), "{t}");
    assert!(t.contains("at step 3 (expect on alice)"), "{t}");
    assert!(t.contains("-   \"id\": \"p2\""), "{t}");
    assert!(t.contains("+   \"id\": \"p1\""), "{t}");
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
        "--report",
        &report,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("skip resume.replay"), "{t}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let total = report["totals"]["total"].as_u64().unwrap();
    assert!(total >= 4, "{t}");
    assert_eq!(report["totals"]["unsupported"], total, "{t}");
    assert!(t.contains(&format!("{total} unsupported")), "{t}");
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
