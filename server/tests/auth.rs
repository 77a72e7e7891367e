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

#[tokio::test]
async fn header_authentication_is_not_answered_by_an_authenticated_frame() {
    let server = start(config()).await;
    let mut native = Client::with_token(&server, ALICE).await;
    // The first frame the connection gets is the reply to its first request.
    assert_reply(&native.request(&ping("k")).await, "pong", "k");
    server.shutdown().await;
}

/// Subscribes `client` to `names` (no snapshots) and checks the acknowledgement.
async fn hold(client: &mut Client, names: &[&str]) {
    let requests: Vec<_> = names.iter().map(|n| no_snapshot(n)).collect();
    let reply = client.request(&subscribe_with("s", requests)).await;
    assert_eq!(subscribed(&reply, "s").len(), names.len());
}

/// Publishes one event on each of `names` (in order), as the publisher.
async fn publish_each(publisher: &mut Client, names: &[&str]) {
    for name in names {
        let payload = if name.starts_with("sessions.activity") {
            json!({"kind": "message", "text": "hi", "at": "2026-11-21T09:30:00Z"})
        } else if name.starts_with("drives") {
            pressure("sda", 0.5)
        } else {
            json!(name)
        };
        let reply = publisher.request(&publish("p", name, payload)).await;
        assert_reply(&reply, "published", "p");
    }
}

#[tokio::test]
async fn re_authenticating_as_the_same_principal_keeps_every_subscription() {
    let server = start(config()).await;
    let mut publisher = Client::with_token(&server, PUBLISHER).await;
    let mut client = Client::connect(&server).await;
    assert_reply(
        &client.request(&auth("a", ALICE)).await,
        "authenticated",
        "a",
    );
    let names = ["sessions.activity:alice-1", "custom.x", "drives.pressure"];
    hold(&mut client, &names).await;
    assert_reply(
        &client.request(&auth("b", ALICE)).await,
        "authenticated",
        "b",
    );
    publish_each(&mut publisher, &names).await;
    for name in names {
        assert_eq!(event_on(&client.recv().await, name), (1, false));
    }
    client.expect_silence(Duration::from_millis(30)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn re_authenticating_as_another_principal_ends_what_it_may_not_read() {
    let server = start(config()).await;
    let mut publisher = Client::with_token(&server, PUBLISHER).await;
    // Authenticated by the header first: a refresh works the same after either kind.
    let mut client = Client::with_token(&server, ALICE).await;
    let names = ["sessions.activity:alice-1", "custom.x", "drives.pressure"];
    hold(&mut client, &names).await;
    // Events in flight when the principal changes: the ended topics' are withdrawn.
    publish_each(&mut publisher, &names).await;
    client.send(&auth("b", BOB)).await;
    let mut seen = Vec::new();
    let ended = loop {
        let message = client.recv().await;
        match message {
            ServerMessage::Authenticated { ref id, ref data } => {
                assert_eq!((id.clone(), data.principal.as_str()), (rid("b"), "bob"));
                let message = client.recv().await;
                break unsubscribed(&message, None);
            }
            other => seen.push((
                delivery(&other).topic.to_string(),
                delivery(&other).seq.get(),
            )),
        }
    };
    let topics: Vec<&str> = ended.topics.iter().map(|t| t.as_str()).collect();
    assert_eq!(topics, ["sessions.activity:alice-1", "custom.x"]);
    assert_eq!(ended.reason, Some(ErrorCode::Forbidden));
    // Queued before the reply, the kept topic's event came first; the ended topics' events
    // came only if they were on their way already.
    assert!(
        seen.contains(&("drives.pressure".to_owned(), 1)),
        "{seen:?}"
    );
    // Only the topic bob may read goes on.
    publish_each(&mut publisher, &names).await;
    assert_eq!(
        event_on(&client.recv().await, "drives.pressure"),
        (2, false)
    );
    client.expect_silence(Duration::from_millis(50)).await;
    assert_eq!(server.stats().subscriptions.get("custom.x"), None);
    server.shutdown().await;
}

#[tokio::test]
async fn a_rejected_re_authentication_leaves_no_principal_and_ends_what_needed_one() {
    let server = start(config()).await;
    let mut publisher = Client::with_token(&server, PUBLISHER).await;
    let mut client = Client::connect(&server).await;
    assert_reply(
        &client.request(&auth("a", PUBLISHER)).await,
        "authenticated",
        "a",
    );
    let names = ["sessions.state", "drives.pressure", "custom.public.kept"];
    hold(&mut client, &names).await;
    let reply = client.request(&auth("b", "not-a-token")).await;
    assert_eq!(error_code(&reply, "b"), ErrorCode::Unauthorized);
    let ended = unsubscribed(&client.recv().await, None);
    let topics: Vec<&str> = ended.topics.iter().map(|t| t.as_str()).collect();
    assert_eq!(topics, ["sessions.state"]);
    assert_eq!(ended.reason, Some(ErrorCode::Unauthorized));
    // The connection has no principal: it may not publish any more.
    let reply = client
        .request(&publish("p", "custom.public.kept", json!(1)))
        .await;
    assert_eq!(error_code(&reply, "p"), ErrorCode::Unauthorized);
    let now = "2026-11-21T09:30:00.125Z";
    let session = json!({"sessionId": "a", "status": "idle", "updatedAt": now});
    let reply = publisher
        .request(&publish("q", "sessions.state", session))
        .await;
    assert_reply(&reply, "published", "q");
    publish_each(&mut publisher, &["drives.pressure"]).await;
    assert_eq!(
        event_on(&client.recv().await, "drives.pressure"),
        (1, false)
    );
    client.expect_silence(Duration::from_millis(50)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_rejected_token_on_an_anonymous_connection_changes_nothing_else() {
    let server = start(config()).await;
    let mut publisher = Client::with_token(&server, PUBLISHER).await;
    let mut client = Client::connect(&server).await;
    hold(&mut client, &["drives.pressure"]).await;
    let reply = client.request(&auth("b", "not-a-token")).await;
    assert_eq!(error_code(&reply, "b"), ErrorCode::Unauthorized);
    publish_each(&mut publisher, &["drives.pressure"]).await;
    // No `unsubscribed` came in between: the next frame is the event.
    assert_eq!(
        event_on(&client.recv().await, "drives.pressure"),
        (1, false)
    );
    server.shutdown().await;
}
