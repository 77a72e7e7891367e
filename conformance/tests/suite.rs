//! The bundled suite against the embedded reference server: one test per case file.

use rtbus_conformance::contract::Contract;
use rtbus_conformance::embedded::Embedded;
use rtbus_conformance::report::{Style, render_failure};
use rtbus_conformance::runner::{RunOptions, Verdict, run_case};
use rtbus_conformance::suite;

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
    let target = Embedded::new(&contract);
    let options = RunOptions {
        step_timeout: std::time::Duration::from_millis(3000),
        contract,
        ..RunOptions::default()
    };
    let result = runtime.block_on(run_case(case, &target, &options));
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
