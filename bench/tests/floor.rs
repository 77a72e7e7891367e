//! `rtbus-bench --floor`: the loopback floor counts every record it writes and
//! times it, and refuses plans it cannot measure.

use std::process::{Command, Output};

use rtbus_bench::Report;

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rtbus-bench"))
        .args(args)
        .env_remove("RTBUS_URL")
        .env_remove("RTBUS_PUBLISHER_TOKEN")
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

#[test]
fn a_short_floor_run_delivers_every_record_once_with_sane_latency() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let json = dir.path().join("floor.json");
    let out = bench(&[
        "--floor",
        "--subscribers",
        "50",
        "--rate",
        "20",
        "--step-secs",
        "0.5",
        "--drain-secs",
        "2",
        "--json",
        &json.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: Report =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the report")).expect("JSON");
    let floor = report.floor.as_ref().expect("a floor section");
    let step = &report.steps[0];
    // 0.5 s at 20 bursts/s: bursts due at 0, 50, …, 450 ms.
    assert_eq!(step.published, 10, "{}", text(&out));
    assert_eq!(floor.bursts, 10);
    assert_eq!(step.expected, 10 * 50);
    assert_eq!(step.delivered, step.expected, "{}", text(&out));
    assert_eq!(step.latency.count, step.delivered);
    assert_eq!(
        (
            report.lost,
            report.undelivered,
            report.out_of_order,
            report.errors
        ),
        (0, 0, 0, 0),
        "{}",
        text(&out)
    );
    assert!(step.saturated.is_none(), "{}", text(&out));
    // A record is timed from its burst's intended start: more than nothing, far less than the
    // 50 ms between bursts plus scheduling noise on a busy machine.
    assert!(step.latency.p50_us > 0.0, "{}", text(&out));
    assert!(step.latency.max_us < 1_000_000.0, "{}", text(&out));
    assert!(floor.writer_cpu_us_per_record > 0.0, "{}", text(&out));
    assert!(floor.burst_write.count == 10, "{}", text(&out));
    assert!(text(&out).contains("lost events: 0"), "{}", text(&out));
    assert!(text(&out).contains("epoch changes: 0"), "{}", text(&out));
    assert!(report.is_clean(), "{}", text(&out));
}

#[test]
fn the_floor_refuses_what_it_cannot_measure() {
    for (args, says) in [
        (&["--floor"][..], "--rate"),
        (
            &["--floor", "--rate", "10", "--payload-bytes", "8"][..],
            "--payload-bytes 8: a floor record needs at least 16 bytes",
        ),
        (
            &["--floor", "--rate=-1"][..],
            "--rate -1: expected a positive number",
        ),
        (
            &[
                "--floor",
                "--rate",
                "10",
                "--url",
                "ws://127.0.0.1:1/api/realtime",
            ][..],
            "cannot be used with",
        ),
    ] {
        let out = bench(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(says), "{args:?}: {}", text(&out));
    }
}
