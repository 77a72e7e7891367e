//! Cluster mode: the suite against several URLs serving one stream, each case's connections
//! spread across them by `runner::node_of`.
//!
//! `RTBUS_CONFORMANCE_CLUSTER_URLS=ws://a/api/realtime,ws://b/api/realtime` (and the tokens in
//! `RTBUS_CONFORMANCE_TOKEN_<NAME>`) runs the bundled suite against a real cluster:
//! `cargo test -p rtbus-conformance --test cluster`. Without it, one reference server given
//! twice stands in for a cluster of two nodes that share everything.
//!
//! `the_suite_passes_on_two_reference_nodes_sharing_a_real_redis` is the reference cluster
//! itself: a `redis-server` on a free loopback port (Debian's package; `cargo xtask test`
//! installs it when missing) and two reference servers on the Redis engine.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rtbus_conformance::contract::Contract;
use rtbus_conformance::embedded::{Cluster, ServerCommands, server_config};
use rtbus_conformance::report::{Style, render_failure};
use rtbus_conformance::runner::{CaseResult, RunOptions, Target, Verdict, run_suite};
use rtbus_conformance::suite;

/// The environment variable naming the nodes of a cluster to test, comma-separated.
const CLUSTER_URLS: &str = "RTBUS_CONFORMANCE_CLUSTER_URLS";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Runs the bundled cases `filter` selects (all with an empty one) against the nodes `urls`.
async fn run_on(urls: Vec<String>, contract: Contract, filter: &[String]) -> Vec<CaseResult> {
    let cases = suite::bundled().expect("the bundled cases load");
    let (cases, _) = suite::select(cases, filter, &[]);
    let target: Arc<dyn Target> = Arc::new(Cluster {
        urls,
        commands: ServerCommands::from_contract(&contract),
    });
    let options = RunOptions {
        step_timeout: Duration::from_millis(3000),
        contract,
        ..RunOptions::default()
    };
    run_suite(cases, target, options, |_, _, _| {}).await
}

fn failures(results: &[CaseResult]) -> Vec<String> {
    results
        .iter()
        .filter_map(|r| match &r.verdict {
            Verdict::Failed(f) => Some(render_failure(r, f, Style { color: false })),
            _ => None,
        })
        .collect()
}

#[test]
fn the_suite_passes_on_the_nodes_given() {
    let mut contract = Contract::default();
    contract.apply_env();
    let runtime = runtime();
    let given: Vec<String> = std::env::var(CLUSTER_URLS)
        .map(|urls| urls.split(',').map(|u| u.trim().to_owned()).collect())
        .unwrap_or_default();
    let results = runtime.block_on(async {
        if given.len() >= 2 {
            return run_on(given, contract, &[]).await;
        }
        // One long-lived reference server as both nodes.
        let server = rtbus_server::start(server_config(&contract))
            .await
            .expect("the reference server starts");
        let url = format!("ws://{}/api/realtime", server.local_addr());
        let results = run_on(vec![url.clone(), url], contract, &[]).await;
        server.shutdown().await;
        results
    });
    let failed = failures(&results);
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    let cluster: Vec<&CaseResult> = results
        .iter()
        .filter(|r| r.tags.iter().any(|t| t == "cluster"))
        .collect();
    assert!(
        cluster.len() >= 2,
        "{:?}",
        results.iter().map(|r| &r.id).collect::<Vec<_>>()
    );
    assert!(
        cluster.iter().all(|r| r.passed()),
        "the cluster cases ran and passed"
    );
}

/// Two independent reference servers are no cluster: the cross-node case must notice, which
/// shows its connections really went to different URLs, as the report says.
#[test]
fn connections_are_spread_across_the_urls() {
    let contract = Contract::default();
    let runtime = runtime();
    let (results, urls) = runtime.block_on(async {
        let a = rtbus_server::start(server_config(&contract))
            .await
            .expect("node a");
        let b = rtbus_server::start(server_config(&contract))
            .await
            .expect("node b");
        let urls = vec![
            format!("ws://{}/api/realtime", a.local_addr()),
            format!("ws://{}/api/realtime", b.local_addr()),
        ];
        let filter = ["cluster.publish-snapshot".to_owned()];
        let results = run_on(urls.clone(), contract, &filter).await;
        a.shutdown().await;
        b.shutdown().await;
        (results, urls)
    });
    let [result] = results.as_slice() else {
        panic!("one case: {results:?}");
    };
    let Verdict::Failed(f) = &result.verdict else {
        panic!(
            "two unrelated servers passed as a cluster: {:?}",
            result.verdict
        );
    };
    // bob publishes on node 0 under its epoch; live, subscribed on node 1, saw another.
    assert_eq!(
        (f.conn.as_deref(), f.pointer.as_deref()),
        (Some("bob"), Some("/data/epoch")),
        "{f:?}"
    );
    let node = |conn: &str| {
        result
            .closes
            .iter()
            .find(|c| c.conn == conn)
            .and_then(|c| c.url.clone())
    };
    assert_eq!(node("bob"), Some(urls[0].clone()));
    assert_eq!(node("live"), Some(urls[1].clone()));
}

/// A `redis-server` on a free loopback port, without persistence; killed when dropped.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "cannot run redis-server ({err}): this test needs a real Redis; install \
                     Debian's redis-server package (apt-get install redis-server)"
                )
            });
        let redis = Redis { child, port };
        for _ in 0..100 {
            if redis.ping() {
                return redis;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not answer PING on port {port}");
    }

    fn ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0u8; 16];
        stream.write_all(b"PING\r\n").is_ok()
            && stream
                .read(&mut reply)
                .is_ok_and(|n| reply[..n].starts_with(b"+PONG"))
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The whole bundled suite against two reference nodes on one Redis: every case passes
/// (those that restart or shut a server down are unsupported, as for any `--url` target without
/// the contract's commands), and the cross-node cases run and pass.
#[test]
fn the_suite_passes_on_two_reference_nodes_sharing_a_real_redis() {
    let redis = Redis::start();
    let contract = Contract::default();
    let runtime = runtime();
    let results = runtime.block_on(async {
        let redis_url = format!("redis://127.0.0.1:{}", redis.port);
        // Returns once both nodes have reached Redis.
        let cluster =
            rtbus_server::start_cluster(server_config(&contract), &redis_url, "conformance:", 2)
                .await
                .expect("two nodes on the Redis engine start");
        let results = run_on(cluster.urls(), contract.clone(), &[]).await;
        cluster.shutdown().await;
        results
    });
    let failed = failures(&results);
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    let passed = results.iter().filter(|r| r.passed()).count();
    let cluster = results
        .iter()
        .filter(|r| r.tags.iter().any(|t| t == "cluster") && r.passed())
        .count();
    assert!(cluster >= 2, "the cross-node cases ran and passed");
    // Only the restart and shutdown cases may be left out.
    let unsupported: Vec<&str> = results
        .iter()
        .filter(|r| !r.passed())
        .map(|r| r.id.as_str())
        .collect();
    assert!(
        unsupported
            .iter()
            .all(|id| id.starts_with("resume.restart") || id.starts_with("shutdown.")),
        "unsupported beyond restart/shutdown: {unsupported:?}"
    );
    assert!(
        passed + unsupported.len() == results.len() && passed > 60,
        "{passed} passed"
    );
}
