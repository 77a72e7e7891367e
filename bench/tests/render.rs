//! Golden files of the suite's rendered results: `results.md` and `chart.svg` of a real full run
//! (a committed copy of its `results.json`), so that a change to the tables or the chart shows
//! up as a reviewed snapshot diff. Accept one with `INSTA_UPDATE=always cargo test -p rtbus-bench`.

use rtbus_bench::render::{chart, markdown};
use rtbus_bench::suite::SuiteResults;

fn full_run() -> SuiteResults {
    serde_json::from_str(include_str!("fixtures/full-run.json"))
        .expect("the fixture is results.json")
}

#[test]
fn results_markdown_of_a_full_run() {
    insta::assert_snapshot!("full_run_results_md", markdown(&full_run()));
}

#[test]
fn chart_of_a_full_run() {
    insta::assert_snapshot!("full_run_chart_svg", chart(&full_run()));
}
