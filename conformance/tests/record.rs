//! Recording: a session proxied through `record` becomes a transcript that loads and replays
//! green against a fresh server; the client sees upstream's own handshake answer, and every
//! frame the server sends (binary ones too) is recorded. The recorder's output is a golden file.

// Test support code: a listener or a runtime that cannot start is a bug in the test, and the
// handshake callback's error type is tungstenite's.
#![allow(clippy::unwrap_used, clippy::result_large_err)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rtbus_conformance::contract::Contract;
use rtbus_conformance::embedded::{Embedded, Remote, server_config};
use rtbus_conformance::record::{Event, Recorder, to_case};
use rtbus_conformance::report::{Style, render_failure};
use rtbus_conformance::runner::{RunOptions, Verdict, run_case};
use rtbus_conformance::suite;
use rtbus_conformance::transcript::Step;
use rtbus_socket::{Dial, Error, Message, StatusCode, Url};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

type Recording = tokio::task::JoinHandle<Vec<Event>>;

/// A recorder in front of `upstream` (a `ws://` URL), recording until its last client leaves:
/// the URL clients dial, and the recording.
async fn recorder(upstream: &str) -> (String, Recording) {
    let (proxy, recording, _) = recorder_until(upstream, false).await;
    (proxy, recording)
}

/// A recorder that, with `keep_listening`, records until the returned sender fires.
async fn recorder_until(
    upstream: &str,
    keep_listening: bool,
) -> (String, Recording, tokio::sync::oneshot::Sender<()>) {
    let upstream = Url::parse(upstream).unwrap();
    let recorder = Recorder::bind("127.0.0.1:0".parse().unwrap(), upstream)
        .await
        .unwrap();
    let proxy = format!("ws://{}/api/realtime", recorder.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let stopped = async move {
        // A dropped sender never stops it.
        if stopped.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let recording = tokio::spawn(recorder.run(keep_listening, stopped));
    (proxy, recording, stop)
}

async fn finished(recording: Recording) -> Vec<Event> {
    tokio::time::timeout(Duration::from_secs(5), recording)
        .await
        .expect("the recorder stops when the last client leaves")
        .unwrap()
}

/// Plays the bundled case `id` through a recorder in front of a fresh reference server and
/// returns the recorded transcript's text.
async fn record_bundled(id: &str, contract: &Contract) -> String {
    let server = rtbus_server::start(server_config(contract)).await.unwrap();
    let (proxy, recording) = recorder(&format!("ws://{}/api/realtime", server.local_addr())).await;
    let cases = suite::bundled().unwrap();
    let session = cases.iter().find(|c| c.case.id == id).unwrap();
    let options = RunOptions {
        contract: contract.clone(),
        ..RunOptions::default()
    };
    let live = run_case(session, &Remote { url: proxy }, &options).await;
    assert!(live.passed(), "{:?}", live.verdict);
    let events = finished(recording).await;
    server.shutdown().await;
    let case = to_case(
        &events,
        &format!("recorded.{id}"),
        "Recorded",
        vec![],
        contract,
    );
    serde_json::to_string_pretty(&case).unwrap()
}

/// Replays a recorded transcript against a fresh embedded server; panics with the report on a
/// failure.
async fn replays_green(text: &str, contract: &Contract) {
    let loaded = rtbus_conformance::parse_transcript("recorded.json".as_ref(), text).unwrap();
    let options = RunOptions {
        contract: contract.clone(),
        ..RunOptions::default()
    };
    let target = Arc::new(Embedded::new(contract));
    let replay = run_case(&loaded, target.as_ref(), &options).await;
    if let Verdict::Failed(f) = &replay.verdict {
        panic!(
            "{}\n{text}",
            render_failure(&replay, f, Style { color: false })
        );
    }
    assert!(replay.passed());
}

#[test]
fn a_recorded_session_replays_green() {
    runtime().block_on(async {
        let contract = Contract::default();
        let server = rtbus_server::start(server_config(&contract)).await.unwrap();
        let (proxy, recording) =
            recorder(&format!("ws://{}/api/realtime", server.local_addr())).await;

        // A real client session: the bundled resume case, played through the recorder.
        let cases = suite::bundled().unwrap();
        let session = cases.iter().find(|c| c.case.id == "resume.replay").unwrap();
        let options = RunOptions {
            contract: contract.clone(),
            ..RunOptions::default()
        };
        let live = run_case(session, &Remote { url: proxy }, &options).await;
        assert!(live.passed(), "{:?}", live.verdict);
        let events = finished(recording).await;
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
        replays_green(&text, &contract).await;
    });
}

/// The recorder's whole output for one session, as a golden file. One connection, so the order
/// of the recorded frames is the session's own; the topics' nonces are normalised.
#[test]
fn the_recorded_transcript_is_golden() {
    runtime().block_on(async {
        let contract = Contract::default();
        let text = record_bundled("subscribe.ack-first", &contract).await;
        replays_green(&text, &contract).await;
        let nonce = regex::Regex::new(r"(custom\.[a-z])[0-9a-f]{10}").unwrap();
        let text = nonce.replace_all(&text, "${1}[nonce]");
        insta::assert_snapshot!("recorded_subscribe_ack_first", text);
    });
}

/// A client the upstream refuses sees upstream's refusal, and the recording says the same
/// status; an accepted one sees the subprotocol upstream selected.
#[test]
fn the_client_sees_the_handshake_answer_the_recording_names() {
    runtime().block_on(async {
        let contract = Contract::default();
        let server = rtbus_server::start(server_config(&contract)).await.unwrap();
        let (proxy, recording, stop) =
            recorder_until(&format!("ws://{}/api/realtime", server.local_addr()), true).await;
        let proxy = Url::parse(&proxy).unwrap();
        let dial = Dial::new().timeout(Duration::from_secs(5));
        let attempts = [
            (dial.clone().bearer("not-a-token"), 401),
            (dial.clone().subprotocols(["rtbus.v2"]), 400),
        ];
        for (attempt, want) in attempts {
            match attempt.connect(&proxy).await {
                Err(Error::Refused { status, body, .. }) => {
                    assert_eq!(status.as_u16(), want, "{body:?}");
                    // Upstream's own reason, passed on.
                    assert!(body.is_some_and(|b| !b.is_empty()));
                }
                Err(other) => panic!("expected HTTP {want}, got {other}"),
                Ok((_, handshake)) => panic!(
                    "expected HTTP {want}, the client was upgraded (HTTP {})",
                    handshake.status()
                ),
            }
        }
        let (mut ws, handshake) = dial
            .subprotocols(["chat", rtbus_protocol::SUBPROTOCOL])
            .connect(&proxy)
            .await
            .unwrap();
        assert_eq!(handshake.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(handshake.subprotocol(), Some(rtbus_protocol::SUBPROTOCOL));
        ws.close(None).await.unwrap();
        while let Some(Ok(_)) = ws.next().await {}
        stop.send(()).unwrap();
        let events = finished(recording).await;
        server.shutdown().await;
        let statuses: Vec<u16> = events
            .iter()
            .filter_map(|e| match e {
                Event::Connect { status, .. } => Some(*status),
                _ => None,
            })
            .collect();
        assert_eq!(statuses, [401, 400, 101], "{events:?}");
    });
}

/// An upstream (not an rtbus server) that answers the first text frame with a binary frame
/// and then a text one.
async fn binary_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                // Selects the rtbus subprotocol, as the client requires.
                let select = |_: &Request, mut response: Response| {
                    let protocol = HeaderValue::from_static(rtbus_protocol::SUBPROTOCOL);
                    response
                        .headers_mut()
                        .insert("sec-websocket-protocol", protocol);
                    Ok(response)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, select).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    if message.is_text() {
                        let _ = ws.send(Message::binary(vec![0x07, 0xfe])).await;
                        let _ = ws.send(Message::text(r#"{"type":"pong"}"#)).await;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn binary_frames_from_the_server_are_recorded() {
    runtime().block_on(async {
        let upstream = binary_upstream().await;
        let (proxy, recording) = recorder(&format!("ws://{upstream}/api/realtime")).await;
        let (mut ws, _) = Dial::new()
            .connect(&Url::parse(&proxy).unwrap())
            .await
            .unwrap();
        ws.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
        // Forwarded: the client gets the binary frame, then the text one.
        let binary = ws.next().await.unwrap().unwrap();
        assert_eq!(binary, Message::binary(vec![0x07, 0xfe]));
        assert!(ws.next().await.unwrap().unwrap().is_text());
        ws.close(None).await.unwrap();
        while let Some(Ok(_)) = ws.next().await {}
        let events = finished(recording).await;
        let case = to_case(&events, "r", "t", vec![], &Contract::default());
        let steps = serde_json::to_value(&case.steps).unwrap();
        let kinds: Vec<String> = steps
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["do"].as_str().unwrap_or("").to_owned())
            .collect();
        assert_eq!(
            kinds,
            [
                "connect",
                "send",
                "expect",
                "expect",
                "close",
                "expectClose"
            ],
            "{steps}"
        );
        assert_eq!(
            steps[2]["frame"],
            serde_json::json!({"$literal": {"binary": "07fe"}}),
            "{steps}"
        );
        assert_eq!(steps[3]["frame"]["type"], "pong", "{steps}");
        // The transcript still loads.
        let text = serde_json::to_string(&case).unwrap();
        rtbus_conformance::parse_transcript("r.json".as_ref(), &text).unwrap();
    });
}
