//! The suite against one long-lived server reached by URL, as a team runs it against its own
//! server: cases share the server, so they must not depend on each other's state.

use std::sync::Arc;
use std::time::Duration;

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
                assert_eq!(missing, &[Capability::Shutdown], "{}", r.id);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let unsupported: Vec<&str> = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Unsupported { .. }))
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(unsupported, ["shutdown.going-away"]);
}
