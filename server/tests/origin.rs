//! The `Origin` check on raw handshakes: only the configured allow-list is trusted (the `Host`
//! header is the client's to choose, so a same-origin comparison is opt-in), the scheme must be
//! `http` or `https`, and a request with two `Origin` headers is refused.

mod common;

use common::*;
use rtbus_server::{Config, RunningServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends an upgrade request with `headers` (beside the WebSocket ones) and returns the status
/// and the body of the answer.
async fn upgrade(server: &RunningServer, headers: &[(&str, &str)]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let mut request = String::from(
        "GET /api/realtime HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = tokio::time::timeout(STEP, stream.read(&mut chunk))
            .await
            .expect("an answer within the step timeout")
            .expect("read");
        response.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&response);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("no status line in {head:?}"));
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length || n == 0 {
                return (status, body.to_owned());
            }
        }
        assert!(n > 0, "the server closed mid-answer: {text:?}");
    }
}

fn allowing(origins: &[&str]) -> Config {
    Config {
        allowed_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
        ..config()
    }
}

#[tokio::test]
async fn a_dns_rebinding_shaped_request_is_refused_when_an_allow_list_is_set() {
    let server = start(allowing(&["https://app.example"])).await;
    let (status, body) = upgrade(
        &server,
        &[("Host", "evil.example"), ("Origin", "http://evil.example")],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("http://evil.example"), "{body}");
    let (status, body) = upgrade(
        &server,
        &[("Host", "evil.example"), ("Origin", "https://app.example")],
    )
    .await;
    assert_eq!(status, 101, "the listed origin, whatever the Host: {body}");
    server.shutdown().await;
}

#[tokio::test]
async fn same_origin_is_trusted_only_when_enabled_and_only_for_http_and_https() {
    let plain = start(config()).await;
    let host = plain.local_addr().to_string();
    let same = format!("http://{host}");
    let (status, body) = upgrade(&plain, &[("Host", &host), ("Origin", &same)]).await;
    assert_eq!(status, 403, "same origin without allow_same_origin: {body}");
    plain.shutdown().await;

    let enabled = start(Config {
        allow_same_origin: true,
        ..config()
    })
    .await;
    let host = enabled.local_addr().to_string();
    for (origin, expected) in [
        (format!("http://{host}"), 101),
        (format!("https://{host}"), 101),
        (format!("HTTP://{host}"), 101),
        (format!("foo://{host}"), 403),
        (format!("ws://{host}"), 403),
        (host.clone(), 403),
        (format!("http://{host}.evil.example"), 403),
        ("null".to_owned(), 403),
    ] {
        let (status, body) = upgrade(&enabled, &[("Host", &host), ("Origin", &origin)]).await;
        assert_eq!(status, expected, "Origin {origin}: {body}");
        if expected == 403 {
            assert!(body.contains(&origin), "the refusal names {origin}: {body}");
        }
    }
    enabled.shutdown().await;
}

#[tokio::test]
async fn an_allow_list_entry_matches_only_http_and_https_origins() {
    let server = start(allowing(&["*"])).await;
    for (origin, expected) in [
        ("https://anything.example", 101),
        ("http://127.0.0.1:9", 101),
        ("foo://127.0.0.1:9", 403),
        ("chrome-extension://abc", 403),
        ("null", 403),
    ] {
        let (status, body) = upgrade(&server, &[("Host", "localhost"), ("Origin", origin)]).await;
        assert_eq!(status, expected, "Origin {origin} with \"*\": {body}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn two_origin_headers_are_refused_whichever_comes_first() {
    let server = start(allowing(&["https://app.example"])).await;
    for pair in [
        ["https://app.example", "https://evil.example"],
        ["https://evil.example", "https://app.example"],
        ["https://app.example", "https://app.example"],
    ] {
        let (status, body) = upgrade(
            &server,
            &[
                ("Host", "localhost"),
                ("Origin", pair[0]),
                ("Origin", pair[1]),
            ],
        )
        .await;
        assert_eq!(status, 400, "{pair:?}: {body}");
        assert!(body.contains("Origin"), "{body}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn the_binary_enables_same_origin_with_its_flag_and_keeps_the_allow_list_beside_it() {
    let server = ServerProcess::spawn(&[
        "--listen",
        "127.0.0.1:0",
        "--allow-origin",
        "https://app.example",
        "--allow-same-origin",
        "--log",
        "warn",
    ])
    .await;
    let host = server.addr().to_string();
    for (origin, expected) in [
        (format!("http://{host}"), 101),
        ("https://app.example".to_owned(), 101),
        ("http://evil.example".to_owned(), 403),
    ] {
        let dial = Dial {
            origin: Some(&origin),
            ..Dial::default()
        };
        let status = match Client::dial_with_response(server.addr(), dial).await {
            Ok((_, response)) => response.status().as_u16(),
            Err(DialError::Refused { status, .. }) => status.as_u16(),
            Err(other) => panic!("{origin}: {other}"),
        };
        assert_eq!(status, expected, "Origin {origin}");
    }
}
