//! A reader cut off as a slow consumer gets its 4009 when it reads again within the documented
//! window (`slow_consumer_linger`), however long that is after `close_timeout`; after the window
//! its socket is reset and its place in the connection caps given back.

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use rtbus_server::RunningServer;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

const TOPIC: &str = "custom.public.flood";

/// A server whose stalled readers overflow quickly: a small queue and a small kernel send
/// buffer, a short close handshake.
fn flood_config() -> rtbus_server::Config {
    let mut config = config();
    config.limits.max_message_bytes = 1 << 20;
    config.limits.max_pending_bytes = 256 * 1024;
    config.limits.socket_send_buffer_bytes = 16 * 1024;
    config.limits.close_timeout = Duration::from_millis(300);
    config
}

/// Subscribes a client with a 4 KiB receive buffer that then reads nothing, and publishes until
/// the server has cut it off.
async fn stalled_reader(server: &RunningServer) -> Client {
    let dial = Dial {
        recv_buffer: Some(4096),
        ..Dial::default()
    };
    let mut stalled = Client::dial(server, dial).await.expect("handshake");
    let reply = stalled
        .request(&subscribe_with("s", [no_snapshot(TOPIC)]))
        .await;
    assert_reply(&reply, "subscribed", "s");
    let mut publisher = Client::with_token(server, PUBLISHER).await;
    let blob = "x".repeat(64 * 1024);
    for n in 1..=64 {
        let reply = publisher
            .request(&publish(&format!("p{n}"), TOPIC, json!(blob)))
            .await;
        assert_reply(&reply, "published", &format!("p{n}"));
    }
    assert_eq!(server.stats().slow_consumer_disconnects, 1);
    stalled
}

/// How a connection ended for a reader that reads everything: the events before the end, and
/// the close code, or `None` when the stream ended without a close frame (EOF or reset).
async fn read_to_the_end(client: &mut Client) -> (usize, Option<u16>) {
    let mut events = 0;
    loop {
        match tokio::time::timeout(STEP, client.ws.next())
            .await
            .expect("the connection ends within the step timeout")
        {
            Some(Ok(Message::Text(_))) => events += 1,
            Some(Ok(Message::Close(frame))) => {
                let code = frame.map(|f| u16::from(f.code));
                return (events, code);
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return (events, None),
        }
    }
}

#[tokio::test]
async fn a_reader_that_resumes_after_close_timeout_but_within_the_window_gets_4009() {
    let server = start(flood_config()).await;
    let mut stalled = stalled_reader(&server).await;
    // Well past close_timeout (300 ms), within the default window.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (events, code) = read_to_the_end(&mut stalled).await;
    assert_eq!(
        code,
        Some(4009),
        "after {events} frames already on their way, the close code must come"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn after_the_window_the_socket_is_reset_and_its_place_given_back() {
    let mut config = flood_config();
    config.limits.slow_consumer_linger = Duration::from_millis(300);
    let server = start(config).await;
    let mut stalled = stalled_reader(&server).await;
    // The publisher is still open; the stalled reader's place is released once the window ends.
    let deadline = tokio::time::Instant::now() + STEP;
    while server.stats().connections > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stalled connection still counts after its window: {:?}",
            server.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // What had reached the reader's side before the reset is still read (the close frame too,
    // when it fit); then the stream ends, without waiting for anything more.
    let (_, code) = read_to_the_end(&mut stalled).await;
    assert!(matches!(code, None | Some(4009)), "{code:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_shutdown_does_not_wait_for_a_lingering_slow_consumer() {
    let mut config = flood_config();
    config.limits.slow_consumer_linger = Duration::from_secs(60);
    let server = start(config).await;
    let _stalled = stalled_reader(&server).await;
    let started = tokio::time::Instant::now();
    server.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "shutdown took {:?}",
        started.elapsed()
    );
}
