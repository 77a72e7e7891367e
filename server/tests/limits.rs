//! Every limit and its close code or error, bad input of each kind, the slow consumer and the
//! heartbeat.

mod common;

use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use rtbus_protocol::{ErrorCode, MAX_NESTING_DEPTH, ServerMessage};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

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
        (
            r#"{"type":"ping","id":"x8"} trailing"#,
            ErrorCode::BadRequest,
            Some("x8"),
            None,
        ),
        (
            r#"{"type":"subscribe","id":"x9","data":{"topics":[{"topic":"custom.public.a","resumeAfter":3}]}}"#,
            ErrorCode::BadRequest,
            Some("x9"),
            None,
        ),
        (
            r#"{"type":"subscribe","id":"x10","data":{"topics":[{"topic":"custom.public.a","snapshot":null}]}}"#,
            ErrorCode::BadRequest,
            Some("x10"),
            None,
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

#[tokio::test]
async fn frames_nest_up_to_the_limit_and_deeper_ones_get_bad_request_with_their_id() {
    let server = start(config()).await;
    let mut client = Client::with_token(&server, PUBLISHER).await;
    // The frame, `data` and the payload's own arrays: 2 + n levels.
    let frame = |id: &str, n: usize| {
        format!(
            r#"{{"type":"publish","id":"{id}","data":{{"topic":"custom.deep","payload":{}1{}}}}}"#,
            "[".repeat(n),
            "]".repeat(n)
        )
    };
    client.send_raw(&frame("fits", MAX_NESTING_DEPTH - 2)).await;
    assert_reply(&client.recv().await, "published", "fits");
    for n in [MAX_NESTING_DEPTH - 1, 10_000] {
        client.send_raw(&frame("deep", n)).await;
        assert_eq!(
            error_code(&client.recv().await, "deep"),
            ErrorCode::BadRequest
        );
    }
    assert_reply(&client.request(&ping("alive")).await, "pong", "alive");
    server.shutdown().await;
}

/// The `error` answering `id`, as (code, message, topic).
fn error_data(message: &ServerMessage, id: &str) -> (ErrorCode, String, Option<String>) {
    let code = error_code(message, id);
    match message {
        ServerMessage::Error { data, .. } => (code, data.message.clone(), data.topic.clone()),
        _ => unreachable!("error_code checked the kind"),
    }
}

#[tokio::test]
async fn numbers_beyond_2_53_in_a_payload_are_refused_with_a_pointer_and_reach_nobody() {
    let server = start(config()).await;
    let mut watcher = Client::connect(&server).await;
    let reply = watcher
        .request(&subscribe_with("w", [no_snapshot("custom.public.big")]))
        .await;
    assert_reply(&reply, "subscribed", "w");
    let mut publisher = Client::with_token(&server, PUBLISHER).await;
    let cases = [
        (r#"{"n":[1,18446744073709551616]}"#, "/data/payload/n/1"),
        (r#"{"a/b":-9007199254740992}"#, "/data/payload/a~1b"),
        ("9007199254740992", "/data/payload"),
    ];
    for (payload, pointer) in cases {
        let frame = format!(
            r#"{{"type":"publish","id":"b","data":{{"topic":"custom.public.big","payload":{payload}}}}}"#
        );
        publisher.send_raw(&frame).await;
        let (code, message, topic) = error_data(&publisher.recv().await, "b");
        assert_eq!(code, ErrorCode::InvalidPayload, "{payload}: {message}");
        assert!(
            message.starts_with(&format!("at {pointer}:")),
            "{payload}: {message}"
        );
        assert_eq!(topic.as_deref(), Some("custom.public.big"));
    }
    // The largest safe integer is relayed exactly.
    let reply = publisher
        .request(&publish(
            "ok",
            "custom.public.big",
            json!(9_007_199_254_740_991_u64),
        ))
        .await;
    assert_reply(&reply, "published", "ok");
    let message = watcher.recv().await;
    assert_eq!(event_on(&message, "custom.public.big"), (1, false));
    assert_eq!(delivery(&message).payload, json!(9_007_199_254_740_991_u64));
    server.shutdown().await;
}

#[tokio::test]
async fn null_is_not_a_value_for_an_optional_payload_field() {
    let server = start(config()).await;
    let mut publisher = Client::with_token(&server, PUBLISHER).await;
    let now = "2026-11-21T09:30:00.125Z";
    let cases = [
        (
            "sessions.state",
            json!({"sessionId": "a", "status": "idle", "title": null, "updatedAt": now}),
        ),
        (
            "terminals.state",
            json!({"terminalId": "t", "title": null, "status": "running", "cols": 80, "rows": 24}),
        ),
    ];
    for (name, payload) in cases {
        let reply = publisher.request(&publish("n", name, payload)).await;
        let (code, message, _) = error_data(&reply, "n");
        assert_eq!(code, ErrorCode::InvalidPayload, "{name}: {message}");
    }
    // Absent is how an optional field is left out.
    let reply = publisher
        .request(&publish(
            "ok",
            "sessions.state",
            json!({"sessionId": "a", "status": "idle", "updatedAt": now}),
        ))
        .await;
    assert_reply(&reply, "published", "ok");
    server.shutdown().await;
}

#[tokio::test]
async fn a_websocket_protocol_violation_closes_with_1002() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let server = start(config()).await;
    let mut client = Client::connect(&server).await;
    // A reserved bit set without a negotiated extension (RFC 6455 5.2).
    let mut frame = Frame::message(b"{}".to_vec(), OpCode::Data(Data::Text), true);
    frame.header_mut().rsv1 = true;
    client.ws.send(Message::Frame(frame)).await.expect("sent");
    assert_eq!(client.expect_close().await, 1002);
    server.shutdown().await;
}
