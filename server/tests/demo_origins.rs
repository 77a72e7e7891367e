//! `rtbus-server --demo` lets browser pages served from loopback connect (the dashboard example
//! runs on its own port), and nothing else: other origins, and the same origins without
//! `--demo` or with allowed origins configured, are refused with 403.

mod common;

use common::{Client, Dial, DialError, ServerProcess};

/// The HTTP status of a handshake from `origin` (101 when accepted), with the refusal's body.
async fn handshake_status(server: &ServerProcess, origin: &str) -> (u16, String) {
    let dial = Dial {
        origin: Some(origin),
        ..Dial::default()
    };
    match Client::dial_with_response(server.addr(), dial).await {
        Ok((_, response)) => (response.status().as_u16(), String::new()),
        Err(DialError::Refused { status, body, .. }) => (status.as_u16(), body.unwrap_or_default()),
        Err(other) => panic!("handshake from {origin}: expected an HTTP answer, got {other}"),
    }
}

const LOOPBACK_PAGES: &[&str] = &[
    "http://127.0.0.1:8081",
    "http://localhost:8081",
    "http://127.0.0.1:39123",
    "http://[::1]:5173",
];

#[tokio::test]
async fn demo_accepts_pages_served_from_loopback_on_any_port() {
    let server =
        ServerProcess::spawn(&["--listen", "127.0.0.1:0", "--demo", "--log", "warn"]).await;
    for origin in LOOPBACK_PAGES {
        let (status, body) = handshake_status(&server, origin).await;
        assert_eq!(
            status, 101,
            "--demo, Origin {origin}: expected the upgrade, got {status} {body:?}"
        );
    }
    for origin in [
        "https://evil.example",
        "http://127.0.0.1.evil.example:8081",
        "http://localhost.evil.example",
        "https://localhost:8081",
    ] {
        let (status, body) = handshake_status(&server, origin).await;
        assert_eq!(
            status, 403,
            "--demo, Origin {origin}: expected 403, got {status} {body:?}"
        );
        assert!(
            body.contains(origin),
            "the refusal names the origin {origin}: {body:?}"
        );
    }
}

#[tokio::test]
async fn without_demo_or_with_configured_origins_loopback_pages_are_refused() {
    let plain = ServerProcess::spawn(&["--listen", "127.0.0.1:0", "--log", "warn"]).await;
    let configured = ServerProcess::spawn(&[
        "--listen",
        "127.0.0.1:0",
        "--demo",
        "--allow-origin",
        "https://app.example",
        "--log",
        "warn",
    ])
    .await;
    for (name, server) in [
        ("no --demo", &plain),
        ("--demo --allow-origin", &configured),
    ] {
        for origin in LOOPBACK_PAGES {
            let (status, body) = handshake_status(server, origin).await;
            assert_eq!(
                status, 403,
                "{name}, Origin {origin}: expected 403, got {status} {body:?}"
            );
        }
    }
    let (status, body) = handshake_status(&configured, "https://app.example").await;
    assert_eq!(
        status, 101,
        "--allow-origin https://app.example is honoured: {status} {body:?}"
    );
}
