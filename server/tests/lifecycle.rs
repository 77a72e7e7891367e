//! The handshake (subprotocol, origin, token), HTTP routes on the same port, and graceful
//! shutdown.

mod common;

use common::*;
use rtbus_server::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends a plain HTTP GET and returns (status, body).
async fn http_get(
    server: &rtbus_server::RunningServer,
    path: &str,
    token: Option<&str>,
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    tokio::time::timeout(STEP, stream.read_to_string(&mut response))
        .await
        .expect("the server answers and closes")
        .expect("read");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn handshakes_are_refused_with_a_status_and_a_reason() {
    let server = start(Config {
        allowed_origins: vec!["https://app.example".into()],
        ..config()
    })
    .await;
    let cases: Vec<(Dial, u16, &str)> = vec![
        (
            Dial {
                protocols: Some("rtbus.v2, chat"),
                ..Dial::default()
            },
            400,
            "unsupported subprotocol",
        ),
        (
            Dial {
                origin: Some("https://evil.example"),
                ..Dial::default()
            },
            403,
            "https://evil.example",
        ),
        (
            Dial {
                token: Some("wrong"),
                ..Dial::default()
            },
            401,
            "not accepted",
        ),
        (
            Dial {
                path: Some("/elsewhere"),
                ..Dial::default()
            },
            404,
            "/api/realtime",
        ),
    ];
    for (dial, status, reason) in cases {
        let (status, reason) = (&status, &reason);
        match Client::dial(&server, dial).await {
            Err(DialError::Refused {
                status: got, body, ..
            }) => {
                assert_eq!(got.as_u16(), *status);
                let body = body.unwrap_or_default();
                assert!(body.contains(reason), "{status}: {body}");
            }
            Err(other) => panic!("expected HTTP {status}, got {other}"),
            Ok(_) => panic!("expected HTTP {status}, the handshake was accepted"),
        }
    }
    // A wrong path is not a refused upgrade.
    assert_eq!(server.stats().handshakes_refused, 3);
    server.shutdown().await;
}

#[tokio::test]
async fn handshakes_that_are_accepted() {
    let server = start(Config {
        allowed_origins: vec!["https://app.example".into()],
        ..config()
    })
    .await;
    let cases = [
        Dial {
            protocols: Some("chat, rtbus.v1"),
            ..Dial::default()
        },
        // No subprotocol offered: treated as rtbus.v1.
        Dial {
            protocols: Some(""),
            ..Dial::default()
        },
        Dial {
            origin: Some("https://app.example"),
            ..Dial::default()
        },
        Dial {
            token: Some(ALICE),
            ..Dial::default()
        },
    ];
    for dial in cases {
        let expect_header = dial.protocols != Some("");
        let (ws, response) = Client::dial_with_response(server.local_addr(), dial)
            .await
            .expect("accepted");
        let selected = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        let expected = expect_header.then(|| "rtbus.v1".to_owned());
        assert_eq!(selected, expected);
        let mut client = Client { ws };
        let ping = rtbus_protocol::ClientMessage::Ping {
            id: rid("k"),
            data: None,
        };
        assert_reply(&client.request(&ping).await, "pong", "k");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn health_and_stats_share_the_port() {
    let server = start(config()).await;
    let (status, body) = http_get(&server, "/healthz", None).await;
    assert_eq!((status, body.trim()), (200, "ok"));

    let mut reader = Client::connect(&server).await;
    let reply = reader.request(&subscribe("s", &["drives.pressure"])).await;
    assert_reply(&reply, "subscribed", "s");
    snapshot_on(&reader.recv().await, "drives.pressure");

    assert_eq!(http_get(&server, "/api/realtime/stats", None).await.0, 401);
    assert_eq!(
        http_get(&server, "/api/realtime/stats", Some(BOB)).await.0,
        403
    );
    let (status, body) = http_get(&server, "/api/realtime/stats", Some(ADMIN)).await;
    assert_eq!(status, 200, "{body}");
    let stats: serde_json::Value = serde_json::from_str(&body).expect("JSON stats");
    assert_eq!(stats["connections"], 1, "{body}");
    assert_eq!(stats["subscriptions"]["drives.pressure"], 1, "{body}");
    assert_eq!(stats["messagesIn"], 1, "{body}");
    assert_eq!(stats["messagesOut"], 2, "{body}");
    for field in ["queues", "drops", "slowConsumerDisconnects"] {
        assert!(stats.get(field).is_some(), "{field} missing in {body}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_every_connection_with_1001_and_stops_accepting() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut client = Client::connect(&server).await;
        let reply = client.request(&subscribe("s", &["drives.pressure"])).await;
        assert_reply(&reply, "subscribed", "s");
        clients.push(client);
    }
    let closing = tokio::spawn(async move {
        let mut codes = Vec::new();
        for mut client in clients {
            codes.push(client.expect_close().await);
        }
        codes
    });
    server.shutdown().await;
    assert_eq!(closing.await.expect("joined"), [1001, 1001, 1001]);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn shutdown_does_not_wait_for_sockets_still_in_the_handshake() {
    let mut config = config();
    config.limits.handshake_timeout = std::time::Duration::from_secs(60);
    config.limits.close_timeout = std::time::Duration::from_secs(30);
    let server = start(config).await;
    // Connected, but the request head never comes.
    let _silent = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let mut client = Client::connect(&server).await;
    let closing = tokio::spawn(async move { client.expect_close().await });
    // Far below both timeouts: shutdown waits for nothing but the close handshakes.
    tokio::time::timeout(STEP, server.shutdown())
        .await
        .expect("shutdown completes without waiting for the silent socket");
    assert_eq!(closing.await.expect("joined"), 1001);
}

#[tokio::test]
async fn a_client_close_is_answered_with_a_close_frame_and_pings_with_pongs() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    let server = start(config()).await;
    let mut client = Client::connect(&server).await;
    client
        .ws
        .send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .expect("ping sent");
    let pong = tokio::time::timeout(STEP, client.ws.next()).await;
    match pong {
        Ok(Some(Ok(Message::Pong(data)))) => assert_eq!(&data[..], b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "done".into(),
    };
    client.ws.close(Some(frame)).await.expect("close sent");
    let reply = tokio::time::timeout(STEP, client.ws.next()).await;
    match reply {
        Ok(Some(Ok(Message::Close(Some(frame))))) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("expected the server's close reply, got {other:?}"),
    }
    server.shutdown().await;
}
