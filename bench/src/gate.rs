//! The suite's conformance gate: a server is benchmarked only if it passes the harness's fan-out
//! cases, so that every server in a comparison does the same work. The cases run in-process
//! through the `rtbus-conformance` library, judged by the published contract alone.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, bail, ensure};
use rtbus_conformance::contract::Contract;
use rtbus_conformance::embedded::{self, Embedded, Scripted, ServerCommands};
use rtbus_conformance::report::{self, Style};
use rtbus_conformance::runner::{self, RunOptions, Target, Verdict};

/// The tag of the bundled cases that every benchmarked server must pass.
pub const GATE_TAG: &str = "fanout";

/// The credentials of the testee contract a peer is given. Peers implement no authorization, so
/// any token is accepted.
const PEER_CREDENTIALS: [&str; 3] = ["publisher", "reader", "narrow"];

/// Runs the bundled cases tagged [`GATE_TAG`], as `rtbus-conformance run --filter fanout` does:
/// against the server at `url`, or, without one, against the reference server as the harness
/// embeds it (a fresh one per case, with the testee contract's tokens). `Err` says which cases
/// failed and why.
pub async fn fanout_cases(url: Option<&str>) -> anyhow::Result<()> {
    let cases = rtbus_conformance::suite::bundled().map_err(|errors| {
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("the bundled cases do not load:\n{}", errors.join("\n"))
    })?;
    let (cases, _) = rtbus_conformance::suite::select(cases, &[GATE_TAG.to_owned()], &[]);
    ensure!(!cases.is_empty(), "no bundled case is tagged {GATE_TAG}");
    let mut contract = Contract::default();
    contract.apply_env();
    let target: Arc<dyn Target> = match url {
        Some(url) => {
            for credential in PEER_CREDENTIALS {
                contract.set_token(&format!("{credential}=peer"))?;
            }
            embedded::probe(url)
                .await
                .with_context(|| format!("reaching {url}"))?;
            Arc::new(Scripted {
                url: url.to_owned(),
                commands: ServerCommands::from_contract(&contract),
            })
        }
        None => Arc::new(Embedded::new(&contract)),
    };
    let description = target.describe();
    let options = RunOptions {
        contract,
        ..RunOptions::default()
    };
    let started = Instant::now();
    let results = runner::run_suite(cases, target, options, |_, _, _| {}).await;
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Failed(_)))
        .map(|r| r.id.as_str())
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    let broken = results
        .iter()
        .filter(|r| matches!(&r.verdict, Verdict::Failed(f) if f.infrastructure))
        .count();
    let broken = if broken > 0 {
        format!("; the run itself broke in {broken}")
    } else {
        String::new()
    };
    let summary = report::summary(
        &results,
        &description,
        started.elapsed().as_millis(),
        Style { color: false },
    );
    // The first line says which cases failed (a results table shows only that line).
    bail!(
        "failed {} of {} fan-out conformance cases ({}){broken}\n{summary}",
        failed.len(),
        results.len(),
        failed.join(", ")
    )
}
