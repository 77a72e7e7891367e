//! Encode/decode cost per frame in the protocol crate: the event envelope every subscriber
//! receives and the publish frame every publisher sends.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rtbus_protocol::{
    ClientMessage, Delivery, Epoch, PublishData, Seq, ServerMessage, Timestamp, Topic,
    decode_client_frame, decode_server_frame,
};
use serde_json::json;

/// An event of about 100 payload bytes, as in the fan-out benchmark.
fn event() -> ServerMessage {
    ServerMessage::Event {
        id: None,
        data: Delivery {
            topic: Topic::new("custom.bench.0").expect("valid topic"),
            epoch: Epoch::new("m3k9x2a7c1d4e5f6-1").expect("valid epoch"),
            seq: Seq::new(41_337).expect("in range"),
            emitted_at: Timestamp::parse("2026-11-21T09:30:00.125Z").expect("valid timestamp"),
            is_replay: false,
            payload: json!({ "t": 123_456_789_012_u64, "s": 3, "pad": "x".repeat(60) }),
        },
    }
}

fn publish() -> ClientMessage {
    ClientMessage::Publish {
        id: None,
        data: PublishData {
            topic: Topic::new("custom.bench.0").expect("valid topic"),
            payload: json!({ "t": 123_456_789_012_u64, "s": 3, "pad": "x".repeat(60) }),
        },
    }
}

fn frames(c: &mut Criterion) {
    let event = event();
    let event_text = serde_json::to_string(&event).expect("serializable");
    let publish = publish();
    let publish_text = serde_json::to_string(&publish).expect("serializable");
    let mut group = c.benchmark_group("protocol");
    group.bench_function("encode event", |b| {
        b.iter(|| serde_json::to_string(black_box(&event)))
    });
    group.bench_function("decode event (decode_server_frame)", |b| {
        b.iter(|| decode_server_frame(black_box(&event_text)))
    });
    group.bench_function("encode publish", |b| {
        b.iter(|| serde_json::to_string(black_box(&publish)))
    });
    group.bench_function("decode publish (decode_client_frame)", |b| {
        b.iter(|| decode_client_frame(black_box(&publish_text)))
    });
    group.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
