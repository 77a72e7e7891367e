//! Subscribe, snapshot, publish, fan-out, ordering, resume and unsubscribe over real sockets.

mod common;

use std::time::Duration;

use common::*;
use rtbus_protocol::{Epoch, JsonValue, ServerMessage, Start};
use serde_json::json;

#[tokio::test]
async fn subscribe_acks_then_snapshots_then_live_events_in_seq_order() {
    let server = start(config()).await;
    let mut publisher = Client::with_token(&server, PUBLISHER).await;
    let reply = publisher
        .request(&publish("p1", "drives.pressure", pressure("sda", 0.5)))
        .await;
    let (epoch, seq) = published(&reply, "p1");
    assert_eq!(seq, 1);

    let mut reader = Client::connect(&server).await;
    reader
        .send(&subscribe("s1", &["drives.pressure", "custom.public.feed"]))
        .await;
    let entries = subscribed(&reader.recv().await, "s1");
    let names: Vec<&str> = entries.iter().map(|t| t.topic.as_str()).collect();
    assert_eq!(names, ["drives.pressure", "custom.public.feed"]);
    assert_eq!(entries[0].epoch, epoch);
    assert_eq!(
        (entries[0].seq.get(), entries[0].start),
        (1, Start::Snapshot)
    );
    assert_eq!(
        (entries[1].seq.get(), entries[1].start),
        (0, Start::Snapshot)
    );
    // Every topic has its own stream.
    assert_ne!(entries[1].epoch, epoch);
    // The late subscriber sees what was published before it arrived.
    let message = reader.recv().await;
    let (seq, state) = snapshot_on(&message, "drives.pressure");
    assert_eq!(seq, 1);
    assert_eq!(delivery(&message).epoch, epoch);
    assert_eq!(state, json!({"drives": [pressure("sda", 0.5)]}));
    let message = reader.recv().await;
    let (seq, state) = snapshot_on(&message, "custom.public.feed");
    assert_eq!((seq, state), (0, json!(null)));
    assert_eq!(delivery(&message).epoch, entries[1].epoch);

    for (i, level) in [0.6, 0.7, 0.8].into_iter().enumerate() {
        let reply = publisher
            .request(&publish(
                &format!("p{}", i + 2),
                "drives.pressure",
                pressure("sdb", level),
            ))
            .await;
        let id = format!("p{}", i + 2);
        assert_eq!(published(&reply, &id), (epoch.clone(), i as u64 + 2));
    }
    for expected in 2..=4 {
        let message = reader.recv().await;
        assert_eq!(event_on(&message, "drives.pressure"), (expected, false));
        assert_eq!(delivery(&message).epoch, epoch);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn every_subscriber_receives_every_event_once_in_order() {
    const SUBSCRIBERS: usize = 50;
    const EVENTS: u64 = 40;
    let server = start(config()).await;
    let mut readers = Vec::new();
    for i in 0..SUBSCRIBERS {
        let mut reader = Client::connect(&server).await;
        reader
            .send(&subscribe_with(
                &format!("s{i}"),
                [no_snapshot("custom.public.fanout")],
            ))
            .await;
        assert_reply(&reader.recv().await, "subscribed", &format!("s{i}"));
        readers.push(reader);
    }
    let mut publisher = Client::with_token(&server, PUBLISHER).await;
    for n in 1..=EVENTS {
        publisher
            .send(&publish(
                &format!("p{n}"),
                "custom.public.fanout",
                json!({"n": n}),
            ))
            .await;
    }
    for n in 1..=EVENTS {
        assert_reply(&publisher.recv().await, "published", &format!("p{n}"));
    }
    for reader in &mut readers {
        for n in 1..=EVENTS {
            let message = reader.recv().await;
            assert_eq!(event_on(&message, "custom.public.fanout"), (n, false));
            if let ServerMessage::Event { data, .. } = message {
                assert_eq!(data.payload, json!({"n": n}));
            }
        }
        reader.expect_silence(Duration::from_millis(20)).await;
    }
    assert_eq!(server.stats().events_published, EVENTS);
    server.shutdown().await;
}

/// Publishes `n` events `{"i": 0}`, `{"i": 1}`, ... on `name`; returns the topic's epoch.
async fn publish_n(publisher: &mut Client, name: &str, n: u64) -> Epoch {
    let mut epoch = None;
    for i in 0..n {
        let id = format!("p{i}");
        let reply = publisher
            .request(&publish(&id, name, json!({"i": i})))
            .await;
        let (got, _) = published(&reply, &id);
        assert!(epoch.as_ref().is_none_or(|e| *e == got), "epoch changed");
        epoch = Some(got);
    }
    epoch.expect("at least one event published")
}

#[tokio::test]
async fn resume_replays_missed_events_then_continues_live_without_gap_or_duplicate() {
    let server = start(config()).await;
    let mut publisher = Client::with_token(&server, PUBLISHER).await;
    let epoch = publish_n(&mut publisher, "custom.public.r", 5).await;

    let mut reader = Client::connect(&server).await;
    reader
        .send(&subscribe_with("s", [resume("custom.public.r", &epoch, 2)]))
        .await;
    let ack = subscribed_one(&reader.recv().await, "s");
    assert_eq!(ack, (epoch.clone(), 5, Start::Resumed));
    for seq in 3..=5 {
        let message = reader.recv().await;
        assert_eq!(event_on(&message, "custom.public.r"), (seq, true));
        assert_eq!(delivery(&message).epoch, epoch);
        assert_eq!(delivery(&message).payload, json!({"i": seq - 1}));
    }
    publisher
        .send(&publish("live", "custom.public.r", json!("live")))
        .await;
    assert_eq!(
        event_on(&reader.recv().await, "custom.public.r"),
        (6, false)
    );
    reader.expect_silence(Duration::from_millis(50)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn resume_beyond_the_history_or_ahead_of_the_topic_is_reset_with_a_fresh_snapshot() {
    let mut config = config();
    config.limits.history_per_topic = 3;
    let server = start(config).await;
    let mut publisher = Client::with_token(&server, PUBLISHER).await;
    let epoch = publish_n(&mut publisher, "custom.public.h", 6).await;

    // History holds 4..=6: resuming after 3 is covered, after 2 is not.
    let cases = [(3, Some(4)), (2, None), (99, None), (6, Some(0))];
    for (after, replay_from) in cases {
        let mut reader = Client::connect(&server).await;
        reader
            .send(&subscribe_with(
                "s",
                [resume("custom.public.h", &epoch, after)],
            ))
            .await;
        let start = if replay_from.is_some() {
            Start::Resumed
        } else {
            Start::Reset
        };
        let ack = subscribed_one(&reader.recv().await, "s");
        assert_eq!(ack, (epoch.clone(), 6, start), "resume after {after}");
        match replay_from {
            Some(0) => {}
            Some(first) => {
                for seq in first..=6 {
                    assert_eq!(
                        event_on(&reader.recv().await, "custom.public.h"),
                        (seq, true),
                        "resume after {after}"
                    );
                }
            }
            None => {
                let (seq, state) = snapshot_on(&reader.recv().await, "custom.public.h");
                assert_eq!((seq, state), (6, json!({"i": 5})), "resume after {after}");
            }
        }
        reader.expect_silence(Duration::from_millis(30)).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn snapshot_opt_out_gets_only_later_events() {
    let server = start(config()).await;
    let mut publisher = Client::with_token(&server, PUBLISHER).await;
    publish_n(&mut publisher, "custom.public.o", 2).await;
    let mut reader = Client::connect(&server).await;
    reader
        .send(&subscribe_with("s", [no_snapshot("custom.public.o")]))
        .await;
    assert_reply(&reader.recv().await, "subscribed", "s");
    publisher
        .send(&publish("p", "custom.public.o", json!(3)))
        .await;
    assert_eq!(
        event_on(&reader.recv().await, "custom.public.o"),
        (3, false)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn repeat_subscribe_is_acked_again_with_a_fresh_snapshot_and_no_duplicates() {
    let server = start(config()).await;
    let mut publisher = Client::with_token(&server, PUBLISHER).await;
    let mut reader = Client::connect(&server).await;
    reader.send(&subscribe("a", &["custom.public.rep"])).await;
    assert_reply(&reader.recv().await, "subscribed", "a");
    snapshot_on(&reader.recv().await, "custom.public.rep");
    publish_n(&mut publisher, "custom.public.rep", 1).await;
    assert_eq!(
        event_on(&reader.recv().await, "custom.public.rep"),
        (1, false)
    );

    reader.send(&subscribe("b", &["custom.public.rep"])).await;
    assert_reply(&reader.recv().await, "subscribed", "b");
    assert_eq!(snapshot_on(&reader.recv().await, "custom.public.rep").0, 1);
    publisher
        .send(&publish("p", "custom.public.rep", json!("x")))
        .await;
    assert_eq!(
        event_on(&reader.recv().await, "custom.public.rep"),
        (2, false)
    );
    reader.expect_silence(Duration::from_millis(50)).await;
    assert_eq!(
        server.stats().subscriptions.get("custom.public.rep"),
        Some(&1)
    );

    // Named twice in one request: listed once, started once.
    reader
        .send(&subscribe(
            "c",
            &["custom.public.twice", "custom.public.twice"],
        ))
        .await;
    let (_, seq, start) = subscribed_one(&reader.recv().await, "c");
    assert_eq!((seq, start), (0, Start::Snapshot));
    assert_eq!(
        snapshot_on(&reader.recv().await, "custom.public.twice").0,
        0
    );
    reader.expect_silence(Duration::from_millis(50)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn unsubscribe_stops_delivery_immediately() {
    let server = start(config()).await;
    let mut publisher = Client::with_token(&server, PUBLISHER).await;
    let mut reader = Client::connect(&server).await;
    reader
        .send(&subscribe_with(
            "s",
            [
                no_snapshot("custom.public.u"),
                no_snapshot("drives.pressure"),
            ],
        ))
        .await;
    assert_reply(&reader.recv().await, "subscribed", "s");
    // Queue events, then leave while they may still be in flight.
    for i in 0..20 {
        publisher
            .send(&publish(&format!("p{i}"), "custom.public.u", json!(i)))
            .await;
    }
    reader.send(&unsubscribe("u", &["custom.public.u"])).await;
    let mut last_seq = 0;
    loop {
        let message = reader.recv().await;
        if message.kind() == "unsubscribed" {
            assert_reply(&message, "unsubscribed", "u");
            break;
        }
        let (seq, _) = event_on(&message, "custom.public.u");
        assert_eq!(seq, last_seq + 1);
        last_seq = seq;
    }
    publisher
        .send(&publish("after", "custom.public.u", json!("after")))
        .await;
    publisher
        .send(&publish("other", "drives.pressure", pressure("sda", 0.1)))
        .await;
    // The next frame is the other topic's event: nothing of the topic left came in between.
    assert_eq!(
        event_on(&reader.recv().await, "drives.pressure"),
        (1, false)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn ping_gets_pong_with_the_same_id_and_data() {
    let server = start(config()).await;
    let mut client = Client::connect(&server).await;
    let data = JsonValue::new(json!({"t": 1.5})).expect("safe numbers");
    let ping = rtbus_protocol::ClientMessage::Ping {
        id: rid("k"),
        data: Some(data.clone()),
    };
    match client.request(&ping).await {
        ServerMessage::Pong { id, data: got } => {
            assert_eq!(id, rid("k"));
            assert_eq!(got, Some(data));
        }
        other => panic!("expected pong, got {other:?}"),
    }
    // `null` is a value and is echoed; a number beyond 2^53-1 is refused.
    client
        .send_raw(r#"{"type":"ping","id":"n","data":null}"#)
        .await;
    match client.recv().await {
        ServerMessage::Pong { data, .. } => assert_eq!(data, Some(JsonValue::default())),
        other => panic!("expected pong, got {other:?}"),
    }
    client
        .send_raw(r#"{"type":"ping","id":"b","data":[9007199254740992]}"#)
        .await;
    let reply = client.recv().await;
    assert_eq!(
        error_code(&reply, "b"),
        rtbus_protocol::ErrorCode::BadRequest
    );
    server.shutdown().await;
}

#[tokio::test]
async fn snapshots_fold_events_per_family() {
    let server = start(config()).await;
    let mut publisher = Client::with_token(&server, PUBLISHER).await;
    let now = "2026-11-21T09:30:00.125Z";
    let events = [
        json!({"sessionId": "b", "status": "running", "updatedAt": now}),
        json!({"sessionId": "a", "status": "idle", "updatedAt": now}),
        json!({"sessionId": "b", "status": "closed", "updatedAt": now}),
    ];
    for (i, event) in events.into_iter().enumerate() {
        let reply = publisher
            .request(&publish(&format!("p{i}"), "sessions.state", event))
            .await;
        assert_reply(&reply, "published", &format!("p{i}"));
    }
    let mut reader = Client::with_token(&server, PUBLISHER).await;
    reader.send(&subscribe("s", &["sessions.state"])).await;
    assert_reply(&reader.recv().await, "subscribed", "s");
    let (seq, state) = snapshot_on(&reader.recv().await, "sessions.state");
    assert_eq!(seq, 3);
    assert_eq!(
        state,
        json!({"sessions": [{"sessionId": "a", "status": "idle", "updatedAt": now}]})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn topics_that_hold_nothing_are_forgotten_when_left() {
    let server = start(config()).await;
    let mut publisher = Client::with_token(&server, PUBLISHER).await;
    publish_n(&mut publisher, "custom.public.kept", 1).await;
    let mut reader = Client::connect(&server).await;
    for i in 0..20 {
        let name = format!("custom.public.n{i}");
        let reply = reader
            .request(&subscribe_with("s", [no_snapshot(&name)]))
            .await;
        assert_reply(&reply, "subscribed", "s");
    }
    assert_eq!(server.stats().topics, 21);
    for i in 0..10 {
        let name = format!("custom.public.n{i}");
        let reply = reader.request(&unsubscribe("u", &[&name])).await;
        assert_reply(&reply, "unsubscribed", "u");
    }
    assert_eq!(server.stats().topics, 11);
    // Leaving by disconnecting forgets the rest; a topic with a published event stays.
    drop(reader);
    let mut probe = Client::connect(&server).await;
    let deadline = tokio::time::Instant::now() + STEP;
    while server.stats().topics != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            server.stats()
        );
        // Round-trips on another connection give the server's tasks turns to finish.
        let ping = rtbus_protocol::ClientMessage::Ping {
            id: rid("k"),
            data: None,
        };
        assert_reply(&probe.request(&ping).await, "pong", "k");
    }
    // The forgotten topic starts afresh; the kept one still has its state.
    let reply = probe
        .request(&subscribe("s", &["custom.public.kept"]))
        .await;
    assert_reply(&reply, "subscribed", "s");
    assert_eq!(snapshot_on(&probe.recv().await, "custom.public.kept").0, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn repeat_subscribe_with_resume_re_sends_nothing_already_queued() {
    let server = start(config()).await;
    let mut publisher = Client::with_token(&server, PUBLISHER).await;
    let epoch = publish_n(&mut publisher, "custom.public.rr", 2).await;
    let mut reader = Client::connect(&server).await;
    reader.send(&subscribe("a", &["custom.public.rr"])).await;
    assert_reply(&reader.recv().await, "subscribed", "a");
    assert_eq!(snapshot_on(&reader.recv().await, "custom.public.rr").0, 2);
    publish_n(&mut publisher, "custom.public.rr", 1).await;
    assert_eq!(
        event_on(&reader.recv().await, "custom.public.rr"),
        (3, false)
    );
    // (resumeAfter, whether a fresh snapshot follows): 2 and 3 are covered by the subscription
    // (everything after them was queued); 1 predates it and 9 is ahead of the topic.
    for (after, snapshot) in [(2, false), (3, false), (1, true), (9, true)] {
        reader
            .send(&subscribe_with(
                "r",
                [resume("custom.public.rr", &epoch, after)],
            ))
            .await;
        let start = if snapshot {
            Start::Reset
        } else {
            Start::Resumed
        };
        let ack = subscribed_one(&reader.recv().await, "r");
        assert_eq!(ack, (epoch.clone(), 3, start), "resume after {after}");
        if snapshot {
            let (seq, _) = snapshot_on(&reader.recv().await, "custom.public.rr");
            assert_eq!(seq, 3, "resume after {after}");
        }
        reader.expect_silence(Duration::from_millis(30)).await;
    }
    publish_n(&mut publisher, "custom.public.rr", 1).await;
    assert_eq!(
        event_on(&reader.recv().await, "custom.public.rr"),
        (4, false)
    );
    reader.expect_silence(Duration::from_millis(30)).await;
    server.shutdown().await;
}

/// The frames after an acknowledgement, up to the reply to a ping: everything the subscribe
/// queued, and nothing later.
async fn frames_until_pong(client: &mut Client) -> Vec<ServerMessage> {
    client.send(&ping("end")).await;
    let mut frames = Vec::new();
    for _ in 0..100 {
        let message = client.recv().await;
        if message.kind() == "pong" {
            return frames;
        }
        frames.push(message);
    }
    panic!("no pong after 100 frames: {frames:?}");
}

#[tokio::test]
async fn each_subscribed_entry_says_how_its_topic_starts_and_that_is_what_follows() {
    let server = start(config()).await;
    let mut publisher = Client::with_token(&server, PUBLISHER).await;
    let names = ["custom.public.s1", "custom.public.s2", "custom.public.s3"];
    let mut epochs = Vec::new();
    for name in names {
        epochs.push(publish_n(&mut publisher, name, 4).await);
    }
    let mut reader = Client::connect(&server).await;
    let requests = [
        rtbus_protocol::SubscriptionRequest::new(topic(names[0])),
        no_snapshot(names[1]),
        resume(names[2], &epochs[2], 2),
        // Ahead of the topic: reset, with a snapshot, and with none when opted out.
        resume("custom.public.s4", &foreign_epoch(), 0),
        rtbus_protocol::SubscriptionRequest {
            snapshot: Some(false),
            ..resume("custom.public.s5", &foreign_epoch(), 7)
        },
    ];
    reader.send(&subscribe_with("s", requests)).await;
    let entries = subscribed(&reader.recv().await, "s");
    let starts: Vec<(u64, Start)> = entries.iter().map(|e| (e.seq.get(), e.start)).collect();
    use Start::*;
    assert_eq!(
        starts,
        [
            (4, Snapshot),
            (4, Live),
            (4, Resumed),
            (0, Reset),
            (0, Reset)
        ]
    );
    for (entry, epoch) in entries.iter().zip(&epochs) {
        assert_eq!(entry.epoch, *epoch, "{entry:?}");
    }
    // In request order: the snapshot of the first, nothing for the second, the replay of the
    // third, a fresh snapshot for the fourth, nothing for the fifth.
    let frames = frames_until_pong(&mut reader).await;
    let seen: Vec<(&str, &str, u64, bool)> = frames
        .iter()
        .map(|m| {
            let d = delivery(m);
            (m.kind(), d.topic.as_str(), d.seq.get(), d.is_replay)
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("snapshot", names[0], 4, false),
            ("event", names[2], 3, true),
            ("event", names[2], 4, true),
            ("snapshot", "custom.public.s4", 0, false),
        ]
    );
    for (frame, entry) in frames.iter().zip([0, 2, 2, 3]) {
        assert_eq!(delivery(frame).epoch, entries[entry].epoch);
    }
    // Then live events from seq + 1 on every topic.
    for (at, entry) in entries.iter().enumerate() {
        let reply = publisher
            .request(&publish("l", entry.topic.as_str(), json!(at)))
            .await;
        assert_eq!(
            published(&reply, "l"),
            (entry.epoch.clone(), entry.seq.get() + 1)
        );
        let message = reader.recv().await;
        assert_eq!(
            event_on(&message, entry.topic.as_str()),
            (entry.seq.get() + 1, false)
        );
        assert_eq!(delivery(&message).epoch, entry.epoch);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_resume_with_another_epoch_replays_nothing() {
    let server = start(config()).await;
    let mut publisher = Client::with_token(&server, PUBLISHER).await;
    let name = "custom.public.ep";
    let epoch = publish_n(&mut publisher, name, 5).await;
    // Whatever the seq, an epoch that is not the topic's is never resumed.
    for after in [0, 2, 5, 9] {
        for snapshot in [true, false] {
            let mut reader = Client::connect(&server).await;
            let request = rtbus_protocol::SubscriptionRequest {
                snapshot: Some(snapshot),
                ..resume(name, &foreign_epoch(), after)
            };
            reader.send(&subscribe_with("s", [request])).await;
            let ack = subscribed_one(&reader.recv().await, "s");
            assert_eq!(ack, (epoch.clone(), 5, Start::Reset), "after {after}");
            let frames = frames_until_pong(&mut reader).await;
            if snapshot {
                assert_eq!(frames.len(), 1, "{frames:?}");
                let (seq, state) = snapshot_on(&frames[0], name);
                assert_eq!((seq, state), (5, json!({"i": 4})));
                assert_eq!(delivery(&frames[0]).epoch, epoch);
            } else {
                assert!(frames.is_empty(), "after {after}: {frames:?}");
            }
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_topic_forgotten_and_created_again_has_a_new_epoch() {
    let server = start(config()).await;
    let mut reader = Client::connect(&server).await;
    let name = "custom.public.gone";
    let reply = reader
        .request(&subscribe_with("a", [no_snapshot(name)]))
        .await;
    let (first, seq, _) = subscribed_one(&reply, "a");
    assert_eq!(seq, 0);
    let reply = reader.request(&unsubscribe("u", &[name])).await;
    assert_reply(&reply, "unsubscribed", "u");
    // Nothing was published and nobody holds it: the topic is forgotten, and its stream with it.
    let reply = reader
        .request(&subscribe_with("b", [resume(name, &first, 0)]))
        .await;
    let (second, seq, start) = subscribed_one(&reply, "b");
    assert_ne!(first, second);
    assert_eq!((seq, start), (0, Start::Reset));
    assert_eq!(snapshot_on(&reader.recv().await, name).0, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn a_topic_named_twice_is_listed_once_and_started_by_its_first_entry() {
    let server = start(config()).await;
    let mut reader = Client::connect(&server).await;
    let requests = [
        no_snapshot("custom.public.d1"),
        rtbus_protocol::SubscriptionRequest::new(topic("custom.public.d2")),
        rtbus_protocol::SubscriptionRequest::new(topic("custom.public.d1")),
        no_snapshot("custom.public.d2"),
    ];
    reader.send(&subscribe_with("s", requests)).await;
    let entries = subscribed(&reader.recv().await, "s");
    let listed: Vec<(&str, Start)> = entries
        .iter()
        .map(|e| (e.topic.as_str(), e.start))
        .collect();
    assert_eq!(
        listed,
        [
            ("custom.public.d1", Start::Live),
            ("custom.public.d2", Start::Snapshot)
        ]
    );
    let frames = frames_until_pong(&mut reader).await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    snapshot_on(&frames[0], "custom.public.d2");
    assert_eq!(
        server.stats().subscriptions.get("custom.public.d1"),
        Some(&1)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_repeat_subscription_without_a_snapshot_is_live_and_sends_nothing() {
    let server = start(config()).await;
    let mut publisher = Client::with_token(&server, PUBLISHER).await;
    let name = "custom.public.again";
    let epoch = publish_n(&mut publisher, name, 2).await;
    let mut reader = Client::connect(&server).await;
    let reply = reader.request(&subscribe("a", &[name])).await;
    assert_eq!(
        subscribed_one(&reply, "a"),
        (epoch.clone(), 2, Start::Snapshot)
    );
    snapshot_on(&reader.recv().await, name);
    let reply = reader
        .request(&subscribe_with("b", [no_snapshot(name)]))
        .await;
    assert_eq!(subscribed_one(&reply, "b"), (epoch.clone(), 2, Start::Live));
    // A resume the subscription does not cover, with snapshot: false: reset, nothing sent.
    let late = rtbus_protocol::SubscriptionRequest {
        snapshot: Some(false),
        ..resume(name, &epoch, 1)
    };
    let reply = reader.request(&subscribe_with("c", [late])).await;
    assert_eq!(
        subscribed_one(&reply, "c"),
        (epoch.clone(), 2, Start::Reset)
    );
    assert!(frames_until_pong(&mut reader).await.is_empty());
    publish_n(&mut publisher, name, 1).await;
    assert_eq!(event_on(&reader.recv().await, name), (3, false));
    reader.expect_silence(Duration::from_millis(30)).await;
    server.shutdown().await;
}
