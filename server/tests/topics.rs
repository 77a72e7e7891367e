//! Topic memory is bounded: topics without a subscriber or a publish for `topic_idle_timeout`
//! are forgotten (and come back under a new epoch), and all topics' histories together stay
//! under `max_history_bytes`, however many topics there are.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use rtbus_protocol::{ServerMessage, Start, decode_server_frame};
use rtbus_server::{RunningServer, Stats};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

const TOPICS: usize = 50_000;

/// Publishes one event on each of `custom.t0` … `custom.t<n-1>` over one connection, pipelined,
/// and waits for every `published`.
async fn publish_on_many(server: &RunningServer, n: usize) {
    let client = Client::with_token(server, PUBLISHER).await;
    let (mut tx, mut rx) = client.ws.split();
    let sender = tokio::spawn(async move {
        for at in 0..n {
            let frame = publish(
                &format!("p{at}"),
                &format!("custom.t{at}"),
                json!({"n": at, "text": "an event of about a hundred bytes, like a status line"}),
            );
            let text = serde_json::to_string(&frame).expect("encodable");
            tx.feed(Message::text(text)).await.expect("send");
        }
        tx.flush().await.expect("flush");
        tx
    });
    let mut published = 0;
    while published < n {
        let message = tokio::time::timeout(STEP, rx.next())
            .await
            .expect("a reply within the step timeout")
            .expect("open")
            .expect("no error");
        if let Message::Text(text) = message {
            match decode_server_frame(&text).expect("a valid frame") {
                ServerMessage::Published { .. } => published += 1,
                other => panic!("expected published, got {other:?}"),
            }
        }
    }
    drop(sender.await.expect("sender"));
}

/// Polls the stats until `done` holds for them, or fails after `within`.
async fn until(server: &RunningServer, within: Duration, done: impl Fn(&Stats) -> bool) -> Stats {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let stats = server.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not reached within {within:?}: topics {}, history {} bytes, evicted {}",
            stats.topics,
            stats.history_bytes,
            stats.topics_evicted
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_thousand_topics_with_one_event_each_are_forgotten_after_the_idle_timeout() {
    let mut config = config();
    config.limits.topic_idle_timeout = Duration::from_secs(2);
    let server = start(config).await;
    // One topic stays subscribed, and so stays.
    let mut watcher = Client::connect(&server).await;
    let reply = watcher
        .request(&subscribe_with("w", [no_snapshot("custom.public.kept")]))
        .await;
    assert_reply(&reply, "subscribed", "w");
    let mut publisher = Client::with_token(&server, PUBLISHER).await;
    let reply = publisher
        .request(&publish("k", "custom.first", json!({"n": "first"})))
        .await;
    let (first_epoch, _) = published(&reply, "k");
    publish_on_many(&server, TOPICS).await;
    let stats = server.stats();
    // Those published within the last two seconds are still held (a debug build publishes
    // 50,000 events in a few seconds); every one is either held or forgotten.
    assert!(
        stats.topics > 1000,
        "fresh topics are held: {}",
        stats.topics
    );
    assert_eq!(
        stats.topics + stats.topics_evicted,
        TOPICS as u64 + 2,
        "{stats:?}"
    );
    let stats = until(&server, Duration::from_secs(10), |s| s.topics == 1).await;
    assert_eq!(stats.topics_evicted, TOPICS as u64 + 1, "{stats:?}");
    assert_eq!(stats.history_bytes, 0, "nothing is left of their histories");
    assert_eq!(stats.subscriptions.get("custom.public.kept"), Some(&1));
    // A forgotten topic comes back under a new epoch: resuming the old one is a reset.
    let reply = publisher
        .request(&subscribe_with(
            "r",
            [resume("custom.first", &first_epoch, 1)],
        ))
        .await;
    let (epoch, seq, start) = subscribed_one(&reply, "r");
    assert_eq!((seq, start), (0, Start::Reset));
    assert_ne!(epoch, first_epoch);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_histories_together_stay_under_max_history_bytes() {
    const BOUND: usize = 1 << 20;
    let mut config = config();
    config.limits.max_history_bytes = BOUND;
    let server = start(config).await;
    let mut publisher = Client::with_token(&server, PUBLISHER).await;
    let reply = publisher
        .request(&publish("k", "custom.first", json!({"n": "first"})))
        .await;
    let (first_epoch, _) = published(&reply, "k");
    // 50,000 events of about 100 bytes of JSON each: several times the bound.
    publish_on_many(&server, TOPICS).await;
    let stats = server.stats();
    assert!(
        stats.history_bytes as usize <= BOUND,
        "{} bytes of history over a bound of {BOUND}",
        stats.history_bytes
    );
    assert!(
        stats.history_bytes as usize > BOUND / 2,
        "the bound is used, not emptied: {}",
        stats.history_bytes
    );
    assert!(
        stats.history_bytes_evicted as usize > 2 * BOUND,
        "{stats:?}"
    );
    // The oldest history went first: resuming custom.first (same epoch, the topic is still
    // held) is a reset with a fresh snapshot; the newest topic still resumes.
    let reply = publisher
        .request(&subscribe_with(
            "r",
            [resume("custom.first", &first_epoch, 0)],
        ))
        .await;
    let (epoch, _, start) = subscribed_one(&reply, "r");
    assert_eq!((epoch, start), (first_epoch, Start::Reset));
    assert_eq!(snapshot_on(&publisher.recv().await, "custom.first").0, 1);
    let last = format!("custom.t{}", TOPICS - 1);
    let reply = publisher
        .request(&subscribe_with("n", [no_snapshot(&last)]))
        .await;
    let (last_epoch, seq, _) = subscribed_one(&reply, "n");
    assert_eq!(seq, 1);
    let mut resumer = Client::with_token(&server, PUBLISHER).await;
    let reply = resumer
        .request(&subscribe_with("z", [resume(&last, &last_epoch, 0)]))
        .await;
    assert_eq!(subscribed_one(&reply, "z").2, Start::Resumed);
    assert_eq!(event_on(&resumer.recv().await, &last), (1, true));
    server.shutdown().await;
}
