//! The bundled suite against the embedded reference server: one test per case file. The
//! cases that need a cluster run against one reference server given as both nodes.

use rtbus_conformance::contract::Contract;
use rtbus_conformance::embedded::{Cluster, Embedded, ServerCommands, server_config};
use rtbus_conformance::report::{Style, render_failure};
use rtbus_conformance::runner::{RunOptions, Verdict, run_case};
use rtbus_conformance::suite;
use rtbus_conformance::transcript::Capability;

fn run(file: &str) {
    let cases = suite::bundled().unwrap_or_else(|errors| {
        panic!(
            "{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    let case = cases
        .iter()
        .find(|c| c.file.file_name().is_some_and(|n| n == file))
        .expect("the case file is bundled");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let contract = Contract::default();
    let options = RunOptions {
        step_timeout: std::time::Duration::from_millis(3000),
        contract: contract.clone(),
        ..RunOptions::default()
    };
    let result = if case.case.requires.contains(&Capability::Cluster) {
        runtime.block_on(async {
            let server = rtbus_server::start(server_config(&contract))
                .await
                .expect("the reference server starts");
            let url = format!("ws://{}/api/realtime", server.local_addr());
            let target = Cluster {
                urls: vec![url.clone(), url],
                commands: ServerCommands::from_contract(&contract),
            };
            let result = run_case(case, &target, &options).await;
            server.shutdown().await;
            result
        })
    } else {
        runtime.block_on(run_case(case, &Embedded::new(&contract), &options))
    };
    match &result.verdict {
        Verdict::Passed => {}
        Verdict::Failed(f) => panic!("{}", render_failure(&result, f, Style { color: false })),
        Verdict::Unsupported { missing } => {
            panic!("unsupported by the reference server: {missing:?}")
        }
    }
}

macro_rules! case_test {
    ($name:ident, $file:expr) => {
        #[test]
        fn $name() {
            run($file);
        }
    };
}

include!(concat!(env!("OUT_DIR"), "/case_tests.rs"));
