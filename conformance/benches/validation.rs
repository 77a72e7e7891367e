//! Cost of judging a received event frame against the published server-to-client JSON Schema,
//! as the harness does for every frame of every case.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rtbus_conformance::schema::{check_text, check_value};
use rtbus_protocol::{Delivery, Epoch, Seq, ServerMessage, Timestamp, Topic};
use serde_json::json;

fn event_text() -> String {
    let event = ServerMessage::Event {
        id: None,
        data: Delivery {
            topic: Topic::new("custom.bench.0").expect("valid topic"),
            epoch: Epoch::new("3f9a0c2e71d4b856-2a").expect("valid epoch"),
            seq: Seq::new(41_337).expect("in range"),
            emitted_at: Timestamp::parse("2026-11-21T09:30:00.125Z").expect("valid timestamp"),
            is_replay: false,
            payload: json!({ "t": 123_456_789_012_u64, "s": 3, "pad": "x".repeat(60) }),
        },
    };
    serde_json::to_string(&event).expect("serializable")
}

fn validation(c: &mut Criterion) {
    let text = event_text();
    let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert!(check_value(&value).is_ok(), "the bench frame must be valid");
    let mut group = c.benchmark_group("harness");
    group.bench_function("schema-validate event (parsed)", |b| {
        b.iter(|| check_value(black_box(&value)))
    });
    group.bench_function("parse + schema-validate event", |b| {
        b.iter(|| check_text(black_box(&text)))
    });
    group.finish();
}

criterion_group!(benches, validation);
criterion_main!(benches);
