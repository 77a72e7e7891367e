//! Every limit and its close code or error, bad input of each kind, the slow consumer and the
//! heartbeat.

mod common;

use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use rtbus_protocol::{ClientMessage, ErrorCode, ServerMessage};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

fn ping(id: &str) -> ClientMessage {
    ClientMessage::Ping {
        id: rid(id),
        data: None,
    }
}

#[tokio::test]
async fn bad_frames_get_the_documented_error_and_the_connection_stays_open() {
    let server = start(config()).await;
    let mut client = Client::connect(&server).await;
    // (frame, expected code, id the error must carry, topic it must name)
    let cases: &[(&str, ErrorCode, Option<&str>, Option<&str>)] = &[
        ("{not json", ErrorCode::BadRequest, None, None),
        ("[1,2]", ErrorCode::BadRequest, None, None),
        (r#"{"type":"subscribe"}"#, ErrorCode::BadRequest, None, None),
        (
            r#"{"type":"launch","id":"x1"}"#,
            ErrorCode::BadRequest,
            Some("x1"),
            None,
        ),
        (
            r#"{"type":"subscribe","id":"x2","data":{"topics":[{"topic":"drives.pressure","snapshot":"yes"}]}}"#,
            ErrorCode::BadRequest,
            Some("x2"),
            None,
        ),
        (
            r#"{"type":"ping","id":"x3","extra":true}"#,
            ErrorCode::BadRequest,
            Some("x3"),
            None,
        ),
        (
            r#"{"type":"subscribe","id":"x4","data":{"topics":[]}}"#,
            ErrorCode::BadRequest,
            Some("x4"),
            None,
        ),
        (
            r#"{"type":"subscribe","id":"x5","data":{"topics":[{"topic":"Drives..x"}]}}"#,
            ErrorCode::InvalidTopic,
            Some("x5"),
            Some("Drives..x"),
        ),
        (
            r#"{"type":"publish","id":"x6","data":{"topic":"bad topic","payload":1}}"#,
            ErrorCode::InvalidTopic,
            Some("x6"),
            Some("bad topic"),
        ),
        (
            r#"{"type":"subscribe","id":"x7","data":{"topics":[{"topic":"weather"}]}}"#,
            ErrorCode::UnknownTopic,
            Some("x7"),
            Some("weather"),
        ),
    ];
    for (frame, code, id, topic) in cases {
        client.send_raw(frame).await;
        match client.recv().await {
            ServerMessage::Error { id: got, data } => {
                assert_eq!(data.code, *code, "{frame}: {}", data.message);
                assert_eq!(got.as_ref().map(|i| i.as_str()), *id, "{frame}");
                assert_eq!(data.topic.as_deref(), *topic, "{frame}");
                assert!(!data.message.is_empty());
            }
            other => panic!("{frame}: expected an error, got {other:?}"),
        }
    }
    assert_reply(&client.request(&ping("alive")).await, "pong", "alive");
    server.shutdown().await;
}

#[tokio::test]
async fn binary_frames_close_with_1003() {
    let server = start(config()).await;
    let mut client = Client::connect(&server).await;
    client
        .ws
        .send(Message::binary(vec![1, 2, 3]))
        .await
        .expect("sent");
    assert_eq!(client.expect_close().await, 1003);
    server.shutdown().await;
}

#[tokio::test]
async fn text_that_is_not_utf8_closes_with_1007() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let server = start(config()).await;
    let mut client = Client::connect(&server).await;
    let frame = Frame::message(vec![b'{', 0xff, b'}'], OpCode::Data(Data::Text), true);
    client.ws.send(Message::Frame(frame)).await.expect("sent");
    assert_eq!(client.expect_close().await, 1007);
    server.shutdown().await;
}

#[tokio::test]
async fn messages_over_the_limit_close_with_1009() {
    let mut config = config();
    config.limits.max_message_bytes = 1024;
    let server = start(config).await;
    let mut client = Client::connect(&server).await;
    // Just under the limit is fine.
    let padding = "x".repeat(1024 - r#"{"type":"ping","id":"a","data":""}"#.len());
    let fits = format!(r#"{{"type":"ping","id":"a","data":"{padding}"}}"#);
    assert_eq!(fits.len(), 1024);
    client.send_raw(&fits).await;
    assert_reply(&client.recv().await, "pong", "a");
    let too_big = format!(r#"{{"type":"ping","id":"b","data":"{padding}x"}}"#);
    client.send_raw(&too_big).await;
    assert_eq!(client.expect_close().await, 1009);
    server.shutdown().await;
}

#[tokio::test]
async fn topics_per_connection_are_limited() {
    let mut config = config();
    config.limits.max_topics_per_connection = 2;
    let server = start(config).await;
    let mut client = Client::connect(&server).await;
    let three = subscribe_with(
        "a",
        [
            no_snapshot("custom.public.a"),
            no_snapshot("custom.public.b"),
            no_snapshot("custom.public.c"),
        ],
    );
    assert_eq!(
        error_code(&client.request(&three).await, "a"),
        ErrorCode::LimitExceeded
    );
    let two = subscribe_with(
        "b",
        [
            no_snapshot("custom.public.a"),
            no_snapshot("custom.public.b"),
        ],
    );
    assert_reply(&client.request(&two).await, "subscribed", "b");
    // Holding the topic again does not count twice; a third topic does.
    let again = subscribe_with("c", [no_snapshot("custom.public.a")]);
    assert_reply(&client.request(&again).await, "subscribed", "c");
    let third = subscribe_with("d", [no_snapshot("custom.public.c")]);
    assert_eq!(
        error_code(&client.request(&third).await, "d"),
        ErrorCode::LimitExceeded
    );
    // After leaving one there is room again.
    assert_reply(
        &client
            .request(&unsubscribe("e", &["custom.public.b"]))
            .await,
        "unsubscribed",
        "e",
    );
    assert_reply(&client.request(&third).await, "subscribed", "d");
    server.shutdown().await;
}

#[tokio::test]
async fn a_stalled_reader_is_cut_off_while_a_healthy_reader_keeps_receiving() {
    const EVENTS: u64 = 64;
    let mut config = config();
    config.limits.max_message_bytes = 1 << 20;
    config.limits.max_pending_bytes = 256 * 1024;
    config.limits.socket_send_buffer_bytes = 16 * 1024;
    config.limits.close_timeout = Duration::from_secs(10);
    let server = start(config).await;
    let topic_name = "custom.public.flood";

    let dial = Dial {
        recv_buffer: Some(4096),
        ..Dial::default()
    };
    let mut stalled = Client::dial(&server, dial).await.expect("handshake");
    stalled
        .send(&subscribe_with("s", [no_snapshot(topic_name)]))
        .await;
    assert_reply(&stalled.recv().await, "subscribed", "s");
    let mut healthy = Client::connect(&server).await;
    healthy
        .send(&subscribe_with("s", [no_snapshot(topic_name)]))
        .await;
    assert_reply(&healthy.recv().await, "subscribed", "s");

    // 64 events of 64 KiB: far more than the stalled reader's buffers and queue hold.
    let mut publisher = Client::with_token(&server, PUBLISHER).await;
    let blob = "x".repeat(64 * 1024);
    for n in 1..=EVENTS {
        let reply = publisher
            .request(&publish(&format!("p{n}"), topic_name, json!(blob)))
            .await;
        assert_reply(&reply, "published", &format!("p{n}"));
        // The healthy reader gets each event while the stalled one is still stalled.
        assert_eq!(event_on(&healthy.recv().await, topic_name), (n, false));
    }
    let stats = server.stats();
    assert_eq!(stats.slow_consumer_disconnects, 1, "{stats:?}");
    assert!(stats.drops > 0, "{stats:?}");
    assert_eq!(stats.subscriptions.get(topic_name), Some(&1), "{stats:?}");
    // Once it reads again, it finds the close code after whatever was already sent.
    assert_eq!(stalled.expect_close().await, 4009);
    drop((healthy, publisher));
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_is_closed_with_4008() {
    let mut config = config();
    config.limits.heartbeat_interval = Duration::from_millis(50);
    config.limits.heartbeat_timeout = Duration::from_millis(150);
    let server = start(config).await;
    let mut silent = Client::with_token(&server, BOB).await;
    let mut lively = Client::with_token(&server, BOB).await;
    // Reading answers pings (the WebSocket layer pongs); the silent client reads nothing
    // until the server has given up on it.
    lively.expect_silence(Duration::from_millis(400)).await;
    assert_eq!(silent.expect_close().await, 4008);
    assert_reply(&lively.request(&ping("k")).await, "pong", "k");
    assert_eq!(server.stats().heartbeat_timeouts, 1);
    server.shutdown().await;
}
