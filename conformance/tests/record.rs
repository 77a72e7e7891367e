//! Recording: a session proxied through `record` becomes a transcript that loads and replays
//! green against a fresh server.

use std::sync::Arc;

use rtbus_conformance::contract::Contract;
use rtbus_conformance::embedded::{Embedded, Remote, server_config};
use rtbus_conformance::record::{Recorder, to_case};
use rtbus_conformance::report::{Style, render_failure};
use rtbus_conformance::runner::{RunOptions, Verdict, run_case};
use rtbus_conformance::suite;
use rtbus_conformance::transcript::Step;

#[test]
fn a_recorded_session_replays_green() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let contract = Contract::default();
        let server = rtbus_server::start(server_config(&contract)).await.unwrap();
        let upstream = format!("ws://{}/api/realtime", server.local_addr());
        let recorder = Recorder::bind("127.0.0.1:0".parse().unwrap(), &upstream)
            .await
            .unwrap();
        let proxy = format!("ws://{}/api/realtime", recorder.local_addr().unwrap());
        let recording = tokio::spawn(recorder.run(false, std::future::pending()));

        // A real client session: the bundled resume case, played through the recorder.
        let cases = suite::bundled().unwrap();
        let session = cases.iter().find(|c| c.case.id == "resume.replay").unwrap();
        let options = RunOptions {
            contract: contract.clone(),
            ..RunOptions::default()
        };
        let live = run_case(session, &Remote { url: proxy }, &options).await;
        assert!(live.passed(), "{:?}", live.verdict);
        let events = tokio::time::timeout(std::time::Duration::from_secs(5), recording)
            .await
            .expect("the recorder stops when the last client leaves")
            .unwrap();
        server.shutdown().await;

        let case = to_case(
            &events,
            "recorded.resume",
            "Recorded resume",
            vec![],
            &contract,
        );
        let text = serde_json::to_string_pretty(&case).unwrap();
        assert!(text.contains("\"$capture\""), "{text}");
        // The topic's epoch is captured once and checked afterwards; the resume names the
        // captured one, so it resumes the replaying server's stream, not the recorded one's.
        assert!(text.contains("\"$capture\": \"ep1\""), "{text}");
        assert!(text.contains("\"$eq\": \"{{ep1}}\""), "{text}");
        let resume = case
            .steps
            .iter()
            .filter_map(|step| match step {
                Step::Send {
                    frame: Some(frame), ..
                } => frame.pointer("/data/topics/0/resumeAfter").map(|_| frame),
                _ => None,
            })
            .next()
            .expect("the session resumes");
        assert_eq!(resume["data"]["topics"][0]["epoch"], "{{ep1}}", "{text}");
        assert!(text.contains("\"$timestamp\": true"), "{text}");
        assert!(
            !text.contains("conformance-reader-token"),
            "tokens are never written: {text}"
        );
        let loaded = rtbus_conformance::parse_transcript("recorded.json".as_ref(), &text).unwrap();
        assert_eq!(loaded.case.connections.len(), 2);

        let target = Arc::new(Embedded::new(&contract));
        let replay = run_case(&loaded, target.as_ref(), &options).await;
        if let Verdict::Failed(f) = &replay.verdict {
            panic!(
                "{}\n{text}",
                render_failure(&replay, f, Style { color: false })
            );
        }
        assert!(replay.passed());
    });
}
