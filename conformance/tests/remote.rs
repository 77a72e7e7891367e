//! The suite against one long-lived server reached by URL, as a team runs it against its own
//! server: cases share the server, so they must not depend on each other's state. What a run
//! prints is a golden file (`tests/snapshots/`), with ports and durations normalised.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtbus_conformance::contract::Contract;
use rtbus_conformance::embedded::Remote;
use rtbus_conformance::report::{Style, render_failure};
use rtbus_conformance::runner::{RunOptions, Verdict, run_suite};
use rtbus_conformance::suite;
use rtbus_conformance::transcript::Capability;

#[test]
fn the_suite_passes_against_a_shared_server_configured_from_the_contract_toml() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let contract = Contract::default();
    // The configuration a team would start the reference server with, from the printed TOML.
    let config = rtbus_server::Config::from_toml(&contract.server_toml("127.0.0.1:0"))
        .expect("the printed server configuration parses");
    let results = runtime.block_on(async {
        let server = rtbus_server::start(config).await.unwrap();
        let url = format!("ws://{}/api/realtime", server.local_addr());
        let options = RunOptions {
            step_timeout: Duration::from_secs(3),
            jobs: 6,
            contract,
            ..RunOptions::default()
        };
        let results = run_suite(
            suite::bundled().unwrap(),
            Arc::new(Remote { url }),
            options,
            |_, _, _| {},
        )
        .await;
        server.shutdown().await;
        results
    });
    let mut failures = Vec::new();
    for r in &results {
        match &r.verdict {
            Verdict::Passed => {}
            Verdict::Failed(f) => failures.push(render_failure(r, f, Style { color: false })),
            Verdict::Unsupported { missing } => {
                assert!(
                    missing.iter().all(|c| [
                        Capability::Shutdown,
                        Capability::Restart,
                        Capability::Cluster
                    ]
                    .contains(c)),
                    "{}: {missing:?}",
                    r.id
                );
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let unsupported: Vec<&str> = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Unsupported { .. }))
        .map(|r| r.id.as_str())
        .collect();
    // Without commands, exactly the cases that stop or restart the server cannot run, and
    // with one URL the cross-node ones.
    let disruptive: Vec<String> = suite::bundled()
        .unwrap()
        .into_iter()
        .filter(|c| c.case.disrupts_server() || c.case.requires.contains(&Capability::Cluster))
        .map(|c| c.case.id)
        .collect();
    assert!(disruptive.len() >= 4, "{disruptive:?}");
    assert_eq!(unsupported, disruptive);
}

/// A `--url` server the harness restarts and shuts down through shell scripts, as a team
/// would wire its own server: `rtbus-conformance serve` plays the server process.
struct ScriptedServer {
    dir: tempfile::TempDir,
    url: String,
}

impl ScriptedServer {
    fn start() -> ScriptedServer {
        let dir = tempfile::tempdir().expect("a temp dir");
        // A free port for every incarnation of the server; the restart script reuses it.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let path = dir.path().display().to_string();
        let stop = format!(
            "if [ -f {path}/pid ]; then\n  pid=$(cat {path}/pid); rm {path}/pid\n  kill -TERM \"$pid\" 2>/dev/null\n  \
             while kill -0 \"$pid\" 2>/dev/null; do sleep 0.05; done\nfi\n"
        );
        let restart = format!(
            "{stop}{bin} serve --listen {addr} >>{path}/server.log 2>&1 &\necho $! > {path}/pid\n",
            bin = env!("CARGO_BIN_EXE_rtbus-conformance"),
        );
        std::fs::write(dir.path().join("stop.sh"), stop).expect("write stop.sh");
        std::fs::write(dir.path().join("restart.sh"), restart).expect("write restart.sh");
        let server = ScriptedServer {
            url: format!("ws://{addr}/api/realtime"),
            dir,
        };
        let status = Command::new("sh")
            .arg(server.script("restart.sh"))
            .status()
            .expect("sh runs");
        assert!(status.success());
        server.wait_listening();
        server
    }

    fn script(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn wait_listening(&self) {
        let addr = self
            .url
            .trim_start_matches("ws://")
            .trim_end_matches("/api/realtime");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "the served server never listened"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn run(&self, extra: &[&str]) -> (Option<i32>, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_rtbus-conformance"))
            .args(["run", "--url", &self.url, "--step-timeout", "3000"])
            .args(extra)
            .env("NO_COLOR", "1")
            .output()
            .expect("the harness runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        let _ = Command::new("sh").arg(self.script("stop.sh")).status();
    }
}

#[test]
fn restart_and_shutdown_cases_run_against_a_url_target_with_commands() {
    let server = ScriptedServer::start();
    let report = server.dir.path().join("report.json");
    let (restart, shutdown) = (
        format!("sh {}", server.script("restart.sh")),
        format!("sh {}", server.script("stop.sh")),
    );
    let (code, text) = server.run(&[
        "--restart-command",
        &restart,
        "--shutdown-command",
        &shutdown,
        "--filter",
        "shutdown.going-away",
        "--filter",
        "resume.restart-*",
        "--report",
        &format!("json={}", report.display()),
    ]);
    assert_eq!(code, Some(0), "{text}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["totals"]["passed"], 4, "{text}");
    assert_eq!(report["totals"]["unsupported"], 0, "{text}");
    let ran: Vec<&str> = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert!(ran.contains(&"shutdown.going-away"), "{ran:?}");
    // The shutdown case ran last; the restart command brought the server back after it.
    server.wait_listening();
}

#[test]
fn a_failing_restart_command_is_an_infrastructure_error_with_its_status_and_stderr() {
    let server = ScriptedServer::start();
    let (code, text) = server.run(&[
        "--restart-command",
        "echo 'cannot find my-server' >&2; exit 3",
        "--filter",
        "resume.restart-below",
    ]);
    assert_eq!(code, Some(2), "{text}");
    golden("failing_restart_command_console", &text);
    // Without commands, the same case is unsupported, not failed.
    let (code, text) = server.run(&["--filter", "resume.restart-below"]);
    assert_eq!(code, Some(0), "{text}");
    golden("without_commands_console", &text);
}

/// Asserts the golden file `name` for a run's output, with what differs between runs
/// normalised: the server's port and durations.
fn golden(name: &str, text: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[port]");
    settings.add_filter(r"\(\d+ ms\)", "([ms] ms)");
    settings.add_filter(r"\d+\.\d s\n", "[secs] s\n");
    settings.bind(|| insta::assert_snapshot!(name, text));
}
