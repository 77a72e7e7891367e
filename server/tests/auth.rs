//! Authentication, the auth deadline and the authorization matrix for subscribe and publish.

mod common;

use std::time::Duration;

use common::*;
use rtbus_protocol::{ErrorCode, ServerMessage};
use serde_json::json;

#[tokio::test]
async fn auth_message_and_bearer_header_name_the_principal() {
    let server = start(config()).await;
    let mut browser = Client::connect(&server).await;
    match browser.request(&auth("a", ALICE)).await {
        ServerMessage::Authenticated { id, data } => {
            assert_eq!(id, rid("a"));
            assert_eq!(data.principal, "alice");
            assert_eq!(data.roles, ["publisher"]);
        }
        other => panic!("expected authenticated, got {other:?}"),
    }
    // The header authenticates the connection too: a private topic is readable at once.
    let mut native = Client::with_token(&server, ALICE).await;
    let reply = native
        .request(&subscribe("s", &["sessions.activity:alice-1"]))
        .await;
    assert_reply(&reply, "subscribed", "s");
    server.shutdown().await;
}

#[tokio::test]
async fn a_rejected_token_leaves_the_connection_unauthenticated_and_open() {
    let server = start(config()).await;
    let mut client = Client::connect(&server).await;
    let reply = client.request(&auth("a", "not-a-token")).await;
    assert_eq!(error_code(&reply, "a"), ErrorCode::Unauthorized);
    let reply = client
        .request(&subscribe("s", &["sessions.activity:alice-1"]))
        .await;
    assert_eq!(error_code(&reply, "s"), ErrorCode::Unauthorized);
    let reply = client.request(&subscribe("p", &["drives.pressure"])).await;
    assert_reply(&reply, "subscribed", "p");
    server.shutdown().await;
}

#[tokio::test]
async fn who_may_subscribe_where() {
    let server = start(config()).await;
    // (token, topic, expected outcome)
    let cases: &[(Option<&str>, &str, Option<ErrorCode>)] = &[
        (None, "drives.pressure", None),
        (None, "custom.public.x", None),
        (None, "sessions.state", Some(ErrorCode::Unauthorized)),
        (
            None,
            "sessions.activity:alice-1",
            Some(ErrorCode::Unauthorized),
        ),
        (Some(ALICE), "sessions.activity:alice-1", None),
        (
            Some(ALICE),
            "sessions.activity:bob-1",
            Some(ErrorCode::Forbidden),
        ),
        (Some(BOB), "sessions.activity:bob-7", None),
        (
            Some(BOB),
            "sessions.activity:alice-1",
            Some(ErrorCode::Forbidden),
        ),
        (Some(BOB), "custom.private", Some(ErrorCode::Forbidden)),
        (Some(ALICE), "custom.private", None),
        (Some(BOB), "drives.pressure", None),
        (Some(PUBLISHER), "sessions.state", None),
        (Some(ALICE), "weather", Some(ErrorCode::UnknownTopic)),
        (None, "sessions.activity", Some(ErrorCode::UnknownTopic)),
    ];
    for (token, name, expected) in cases {
        let mut client = match token {
            Some(token) => Client::with_token(&server, token).await,
            None => Client::connect(&server).await,
        };
        let reply = client.request(&subscribe("s", &[name])).await;
        match expected {
            None => assert_reply(&reply, "subscribed", "s"),
            Some(code) => {
                assert_eq!(error_code(&reply, "s"), *code, "{token:?} on {name}");
                match &reply {
                    ServerMessage::Error { data, .. } => {
                        assert_eq!(data.topic.as_deref(), Some(*name), "{data:?}");
                    }
                    _ => unreachable!("error_code checked the kind"),
                }
            }
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn who_may_publish_where_and_rejected_publishes_reach_nobody() {
    let server = start(config()).await;
    let mut watcher = Client::with_token(&server, PUBLISHER).await;
    watcher
        .send(&subscribe_with(
            "w",
            [
                no_snapshot("sessions.activity:alice-1"),
                no_snapshot("custom.x"),
                no_snapshot("drives.pressure"),
            ],
        ))
        .await;
    assert_reply(&watcher.recv().await, "subscribed", "w");
    let entry = json!({"kind": "message", "text": "hi", "at": "2026-11-21T09:30:00Z"});
    let cases: &[(Option<&str>, &str, serde_json::Value, Option<ErrorCode>)] = &[
        (None, "custom.x", json!(1), Some(ErrorCode::Unauthorized)),
        // bob has a publish pattern but not the publisher role.
        (Some(BOB), "custom.x", json!(1), Some(ErrorCode::Forbidden)),
        (
            Some(ALICE),
            "sessions.activity:bob-1",
            entry.clone(),
            Some(ErrorCode::Forbidden),
        ),
        (
            Some(ALICE),
            "custom.x",
            json!(1),
            Some(ErrorCode::Forbidden),
        ),
        (
            Some(ALICE),
            "sessions.activity:alice-1",
            json!({"kind": "nope"}),
            Some(ErrorCode::InvalidPayload),
        ),
        (
            Some(PUBLISHER),
            "drives.pressure",
            json!({"drive": "sda"}),
            Some(ErrorCode::InvalidPayload),
        ),
        (
            Some(PUBLISHER),
            "weather",
            json!(1),
            Some(ErrorCode::UnknownTopic),
        ),
        (
            Some(ALICE),
            "sessions.activity:alice-1",
            entry.clone(),
            None,
        ),
    ];
    let mut delivered = 0;
    for (token, name, payload, expected) in cases {
        let mut client = match token {
            Some(token) => Client::with_token(&server, token).await,
            None => Client::connect(&server).await,
        };
        let reply = client.request(&publish("p", name, payload.clone())).await;
        match expected {
            None => {
                assert_reply(&reply, "published", "p");
                delivered += 1;
            }
            Some(code) => assert_eq!(error_code(&reply, "p"), *code, "{token:?} on {name}"),
        }
    }
    // Only the permitted publish arrives.
    assert_eq!(delivered, 1);
    let message = watcher.recv().await;
    assert_eq!(event_on(&message, "sessions.activity:alice-1"), (1, false));
    watcher.expect_silence(Duration::from_millis(50)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn subscribe_is_all_or_nothing() {
    let server = start(config()).await;
    let mut client = Client::connect(&server).await;
    let reply = client
        .request(&subscribe("s", &["drives.pressure", "sessions.state"]))
        .await;
    assert_eq!(error_code(&reply, "s"), ErrorCode::Unauthorized);
    // drives.pressure was not subscribed: an event on it does not arrive.
    let mut publisher = Client::with_token(&server, PUBLISHER).await;
    let reply = publisher
        .request(&publish("p", "drives.pressure", pressure("sda", 0.3)))
        .await;
    assert_reply(&reply, "published", "p");
    client.expect_silence(Duration::from_millis(50)).await;
    assert!(server.stats().subscriptions.is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn auth_deadline_closes_idle_unauthenticated_connections_only() {
    let mut config = config();
    config.limits.auth_deadline = Duration::from_millis(150);
    let server = start(config).await;
    let mut idle = Client::connect(&server).await;
    let mut public_reader = Client::connect(&server).await;
    let reply = public_reader
        .request(&subscribe("s", &["drives.pressure"]))
        .await;
    assert_reply(&reply, "subscribed", "s");
    let mut authed = Client::connect(&server).await;
    assert_reply(&authed.request(&auth("a", BOB)).await, "authenticated", "a");

    assert_eq!(idle.expect_close().await, 4001);
    // The others stay: they still answer a ping well after the deadline.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for client in [&mut public_reader, &mut authed] {
        let ping = rtbus_protocol::ClientMessage::Ping {
            id: rid("k"),
            data: None,
        };
        let mut reply = client.request(&ping).await;
        while reply.kind() == "snapshot" {
            reply = client.recv().await;
        }
        assert_reply(&reply, "pong", "k");
    }
    assert_eq!(server.stats().auth_timeouts, 1);
    server.shutdown().await;
}
