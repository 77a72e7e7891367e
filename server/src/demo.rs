//! `--demo`: plausible live data on the catalog's topics, published through the engine like any
//! publisher's events.

use std::sync::Arc;
use std::time::Duration;

use rtbus_protocol::catalog::{Family, TopicEvent};
use rtbus_protocol::{Timestamp, Topic};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::outbox::Dirty;
use crate::state::Shared;

/// The topic patterns the demo publishes on, made public by `rtbus-server --demo` when no public
/// topics are configured.
pub const DEMO_TOPICS: &[&str] = &["sessions.*", "terminals.state", "drives.pressure"];

/// The browser origins `rtbus-server --demo` allows when no allowed origins are configured: pages
/// served from this machine's loopback addresses on any port (such as the dashboard example,
/// `examples/dashboard`), so a page next to the demo connects without a flag. Every other
/// origin is still refused with 403.
pub const DEMO_ORIGINS: &[&str] = &["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"];

const STATES: &[&str] = &[
    "starting",
    "running",
    "waiting",
    "running",
    "idle",
    "completed",
];
const ACTIVITY: &[(&str, &str)] = &[
    ("message", "Looking at the failing test"),
    ("toolCall", "cargo test -p rtbus-server"),
    ("output", "test result: ok. 42 passed; 0 failed"),
    ("toolResult", "tests pass"),
    ("status", "writing the summary"),
];

/// A small xorshift generator: the demo needs variety, not security.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        (self.next() % 10_000) as f64 / 10_000.0
    }
}

async fn publish(shared: &Shared, topic: &str, payload: Value) {
    let Ok(topic) = Topic::new(topic) else {
        return;
    };
    let (Ok(family), Ok(event)) = (Family::of(&topic), TopicEvent::decode(&topic, &payload)) else {
        tracing::warn!(%topic, "demo payload does not fit its family");
        return;
    };
    // The demo publishes one event at a time: each is written out as the `Dirty` drops.
    let published = shared
        .engine
        .publish(&topic, family, &event, payload, &mut Dirty::default())
        .await;
    if let Err(err) = published {
        tracing::debug!(%topic, ?err, "demo event not published");
    }
}

pub(crate) async fn run(
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    _done: mpsc::Sender<()>,
) {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut sessions: Vec<(u32, usize)> = vec![(1, 0), (2, 2), (3, 4)];
    let mut next_session = 4;
    let mut pressure = [0.42_f64, 0.71];
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut round: u64 = 0;
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {}
        }
        round += 1;
        // The drive-pressure ticker: a bounded random walk per drive, every tick.
        for (drive, level) in ["/", "/var"].iter().zip(pressure.iter_mut()) {
            *level = (*level + (rng.unit() - 0.5) * 0.04).clamp(0.05, 0.99);
            let payload = json!({"drive": drive, "pressure": *level, "threshold": 0.9});
            publish(&shared, "drives.pressure", payload).await;
        }
        // The session state machine: one session moves on every other tick.
        if round % 2 == 0 {
            let at = (rng.next() as usize) % sessions.len();
            let (id, state) = &mut sessions[at];
            let session_id = format!("demo-{id}");
            *state += 1;
            let status = STATES.get(*state).copied().unwrap_or("closed");
            publish(
                &shared,
                "sessions.state",
                json!({
                    "sessionId": session_id,
                    "status": status,
                    "title": format!("Demo session {id}"),
                    "updatedAt": Timestamp::now(),
                }),
            )
            .await;
            if status == "running" {
                let (kind, text) = ACTIVITY[(rng.next() as usize) % ACTIVITY.len()];
                publish(
                    &shared,
                    &format!("sessions.activity:{session_id}"),
                    json!({"kind": kind, "text": text, "at": Timestamp::now()}),
                )
                .await;
            }
            if status == "closed" {
                sessions[at] = (next_session, 0);
                next_session += 1;
            }
        }
        // A terminal that runs a command, exits, and is replaced.
        if round % 6 == 0 {
            let n = round / 6;
            let (status, exit) = match n % 3 {
                0 => ("running", None),
                1 => ("exited", Some(0)),
                _ => ("closed", None),
            };
            let mut payload = json!({
                "terminalId": format!("term-{}", n / 3),
                "title": "cargo watch",
                "status": status,
                "cols": 120,
                "rows": 32,
            });
            if let (Some(code), Some(object)) = (exit, payload.as_object_mut()) {
                object.insert("exitCode".into(), json!(code));
            }
            publish(&shared, "terminals.state", payload).await;
        }
    }
}
