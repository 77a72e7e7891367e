//! `slow-consumer.cutoff` must pass for any server that cuts off slow consumers, whatever its
//! socket buffers. The former case (a fixed burst of 300 × 8 kB, kept in
//! `tests/fixtures/slow-consumer.cutoff.fixed-burst.json`) failed against a correct server
//! once something on the way held the burst: here a proxy that holds up to 512 messages
//! (4–8 MiB of these events) for each client before the server sees back-pressure, as a
//! large kernel send buffer does. The bundled case publishes until the close instead.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use rtbus_conformance::contract::Contract;
use rtbus_conformance::embedded::{Embedded, server_config};
use rtbus_conformance::report::{Style, render_failure};
use rtbus_conformance::runner::{
    BoxFuture, CaseResult, InfraError, Prepared, RunOptions, Target, Verdict, run_case,
};
use rtbus_conformance::transcript::{self, Capability, LoadedCase};
use rtbus_socket::{Dial, Proxy, Transparent, Upstream, Url};

/// How many messages the buffering proxy holds for a client that does not read.
const HELD_MESSAGES: usize = 512;

/// The reference server behind a proxy that buffers like a big socket buffer.
struct Buffering {
    contract: Contract,
}

impl Target for Buffering {
    fn describe(&self) -> String {
        format!("reference server behind a proxy holding {HELD_MESSAGES} messages per client")
    }

    fn absent(&self) -> Vec<Capability> {
        Vec::new()
    }

    fn prepare(&self) -> BoxFuture<'_, Result<Prepared, InfraError>> {
        Box::pin(async move {
            let server = rtbus_server::start(server_config(&self.contract))
                .await
                .map_err(InfraError::Start)?;
            let upstream_addr = server.local_addr();
            let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .map_err(InfraError::Listen)?;
            let addr = listener.local_addr().map_err(InfraError::Listen)?;
            tokio::spawn(async move {
                // Keeps the server running as long as the proxy accepts.
                let _server = server;
                while let Ok((stream, _)) = listener.accept().await {
                    let Ok(url) = Url::parse(&format!("ws://{upstream_addr}/api/realtime")) else {
                        return;
                    };
                    let upstream = Upstream::new(url).dial_with(Dial::new());
                    let proxy = Proxy::new(upstream).client_queue(HELD_MESSAGES);
                    tokio::spawn(async move { proxy.serve(stream, Transparent).await });
                }
            });
            Ok(Prepared {
                urls: vec![format!("ws://{addr}/api/realtime")],
                server: None,
            })
        })
    }
}

fn load(path: &Path) -> LoadedCase {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    transcript::parse(path, &text).unwrap_or_else(|e| panic!("{e}"))
}

fn bundled() -> LoadedCase {
    load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("cases/slow-consumer.cutoff.json"))
}

fn fixed_burst() -> LoadedCase {
    load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/slow-consumer.cutoff.fixed-burst.json"),
    )
}

fn run(case: &LoadedCase, target: &dyn Target) -> CaseResult {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let options = RunOptions {
        step_timeout: Duration::from_millis(5000),
        ..RunOptions::default()
    };
    runtime.block_on(run_case(case, target, &options))
}

fn assert_passes(result: &CaseResult) {
    if let Verdict::Failed(f) = &result.verdict {
        panic!("{}", render_failure(result, f, Style { color: false }));
    }
    assert!(result.passed(), "{:?}", result.verdict);
}

#[test]
fn the_fixed_burst_failed_behind_big_buffers_and_the_bundled_case_passes() {
    let target = Buffering {
        contract: Contract::default(),
    };
    let old = run(&fixed_burst(), &target);
    let Verdict::Failed(f) = &old.verdict else {
        panic!(
            "the fixed burst passed behind big buffers: {:?}",
            old.verdict
        );
    };
    assert_eq!(f.step_kind, "expectClose", "{f:?}");
    assert!(f.message.contains("4009"), "{}", f.message);
    let new = run(&bundled(), &target);
    assert_passes(&new);
    println!(
        "fixed burst: {}; bundled case: passed, {} frames in {} ms",
        f.message, new.frames_checked, new.duration_ms
    );
}

/// The reference server as documented by default (`SO_SNDBUF` left to the OS, which
/// autotunes it) and with the largest send buffer the kernel allows.
///
/// Filling megabytes of buffers takes seconds, and the stalled reader answers no ping
/// meanwhile: with the contract's 800 ms heartbeat timeout the server would rightly close it
/// with 4008 before its queue overflows. So this server declares a heartbeat timeout that
/// leaves the time, as a testee with big buffers must (conformance/README.md).
#[test]
fn the_bundled_case_passes_whatever_the_servers_send_buffer() {
    let mut contract = Contract::default();
    contract.limits.heartbeat_timeout_ms = 60_000;
    for send_buffer in [0, 4 << 20] {
        let mut config = server_config(&contract);
        config.limits.socket_send_buffer_bytes = send_buffer;
        let result = run(&bundled(), &Embedded::with_config(config));
        println!(
            "SO_SNDBUF {send_buffer}: {} frames in {} ms",
            result.frames_checked, result.duration_ms
        );
        assert_passes(&result);
    }
}

/// The bound is enforced: declaring socket buffers smaller than what the proxy holds makes a
/// server that did cut off (too late for that declaration) fail, saying how much went by.
#[test]
fn a_batch_beyond_the_declared_bound_without_the_close_fails() {
    let mut contract = Contract::default();
    contract.limits.socket_buffer_bytes = 256 << 10;
    let target = Buffering {
        contract: contract.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let options = RunOptions {
        step_timeout: Duration::from_millis(5000),
        contract,
        ..RunOptions::default()
    };
    let result = runtime.block_on(run_case(&bundled(), &target, &options));
    let Verdict::Failed(f) = &result.verdict else {
        panic!(
            "passed although the proxy holds more than declared: {:?}",
            result.verdict
        );
    };
    assert_eq!(f.step_kind, "repeat", "{f:?}");
    assert!(
        f.message.contains("did not close connection \"stalled\"")
            && f.message
                .contains(&format!("more than toBytes ({})", (64 << 10) + (256 << 10))),
        "{}",
        f.message
    );
}
