//! A soak subscriber: one topic, followed from its first subscription to the end of the run,
//! through churn (unsubscribe and resubscribe, close and reconnect, each resuming after the last
//! `seq` it saw), with every event checked against the one stream it must see exactly once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rtbus_protocol::{
    ClientMessage, Epoch, RequestId, Seq, ServerFrameView, ServerMessage, Start, SubscribeData,
    SubscribedTopic, SubscriptionRequest, UnsubscribeData,
};
use rtbus_socket::Inbound;
use tokio::sync::watch;

use super::{Finish, Shared};
use crate::generator::{Ws, next_message, open, send};

/// What one event's `seq` says about the subscriber's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Take {
    /// The next one.
    Next,
    /// Events `from..=to` never came before this one.
    Gap { from: u64, to: u64 },
    /// Already received.
    Duplicate,
    /// One a gap had skipped, arriving late.
    Late,
}

/// Most gaps a stream remembers (to tell a late event from a duplicate); a run with any gap
/// fails anyway.
const MAX_GAPS: usize = 64;

/// The one stream of a topic a subscriber follows: from the `seq` its first `subscribed` entry
/// named, in one epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tracked {
    pub(crate) epoch: String,
    /// The `seq` of the first `subscribed` entry: events from the next one on are expected.
    pub(crate) start: u64,
    /// The latest `seq` received (or `start`).
    pub(crate) last: u64,
    /// Distinct events received.
    pub(crate) received: u64,
    /// Ranges skipped, as `(from, to)`, oldest first.
    gaps: Vec<(u64, u64)>,
}

impl Tracked {
    pub(crate) fn new(epoch: &str, start: u64) -> Tracked {
        Tracked {
            epoch: epoch.to_owned(),
            start,
            last: start,
            received: 0,
            gaps: Vec::new(),
        }
    }

    /// Takes the event `seq` into account.
    pub(crate) fn take(&mut self, seq: u64) -> Take {
        if seq == self.last + 1 {
            self.last = seq;
            self.received += 1;
            return Take::Next;
        }
        if seq > self.last + 1 {
            let (from, to) = (self.last + 1, seq - 1);
            if self.gaps.len() < MAX_GAPS {
                self.gaps.push((from, to));
            }
            self.last = seq;
            self.received += 1;
            return Take::Gap { from, to };
        }
        if seq <= self.start {
            return Take::Duplicate;
        }
        // Behind `last`: new only when it falls in a gap, which it then splits.
        let Some(index) = self.gaps.iter().position(|&(f, t)| f <= seq && seq <= t) else {
            return Take::Duplicate;
        };
        let (from, to) = self.gaps.remove(index);
        if seq < to {
            self.gaps.insert(index, (seq + 1, to));
        }
        if from < seq {
            self.gaps.insert(index, (from, seq - 1));
        }
        self.received += 1;
        Take::Late
    }
}

/// How a subscriber ended.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Events expected: from the first subscription to the topic's last acknowledged `seq`.
    pub(crate) expected: u64,
    /// Distinct ones received.
    pub(crate) received: u64,
}

/// One subscriber connection (and its successors, for a churner).
pub(crate) struct Subscriber {
    pub(crate) shared: Arc<Shared>,
    pub(crate) addr: SocketAddr,
    pub(crate) url: String,
    pub(crate) topic: usize,
    /// The subscriber's number, which spreads churners' cycles over the churn period.
    pub(crate) index: usize,
    /// Time between churn cycles; `None` for a steady subscriber.
    pub(crate) churn: Option<Duration>,
    pub(crate) connect_timeout: Duration,
}

/// Why a read loop stopped.
enum Stop {
    /// The run is over and every expected event is in (or the drain deadline passed).
    Done,
    /// The connection broke; the error has been counted.
    Broken,
}

impl Subscriber {
    /// Subscribes, then follows the topic until the run's [`Finish`] says where its stream
    /// ends. Reports readiness (or failure) on `ready` once.
    pub(crate) async fn run(
        self,
        ready: tokio::sync::mpsc::UnboundedSender<bool>,
        mut finish: watch::Receiver<Option<Arc<Finish>>>,
    ) -> Outcome {
        let first = tokio::time::timeout(self.connect_timeout, self.subscribe(None)).await;
        let (mut ws, mut tracked) = match first {
            Ok(Ok((ws, entry))) => {
                let tracked = Tracked::new(entry.epoch.as_str(), entry.seq.get());
                (ws, tracked)
            }
            Ok(Err(e)) => {
                self.shared.error(format!("subscriber: {e}"));
                let _ = ready.send(false);
                return Outcome::default();
            }
            Err(_) => {
                self.shared.error(format!(
                    "subscriber: not subscribed within {:?}",
                    self.connect_timeout
                ));
                let _ = ready.send(false);
                return Outcome::default();
            }
        };
        let _ = ready.send(true);
        let mut cycle = 0u64;
        // Churners start their cycles at different times, so churn is spread over the period
        // (the golden ratio's fractions are evenly spread for any count).
        let phase = (self.index as f64 * 0.618_033_988_7).fract();
        let mut next_churn = self.churn.map(|c| Instant::now() + c.mul_f64(0.5 + phase));
        loop {
            if let Some(Stop::Done | Stop::Broken) = self
                .read(&mut ws, &mut tracked, &mut finish, next_churn)
                .await
            {
                break;
            }
            // Churn time: leave and come back, resuming after the last event seen.
            cycle += 1;
            let resumed = if cycle % 2 == 1 {
                self.resubscribe(&mut ws, &mut tracked).await
            } else {
                self.reconnect(&mut ws, &tracked).await
            };
            if !resumed {
                break;
            }
            next_churn = self.churn.map(|c| Instant::now() + c);
        }
        let _ = ws.close(None).await;
        // A subscriber cut off early is still owed every event up to the end of the run.
        let _ = finish.wait_for(Option::is_some).await;
        self.outcome(&tracked, &finish)
    }

    /// What the subscriber was owed and what it got, by the run's final acknowledgements.
    fn outcome(&self, tracked: &Tracked, finish: &watch::Receiver<Option<Arc<Finish>>>) -> Outcome {
        let target = finish
            .borrow()
            .as_ref()
            .and_then(|f| f.last[self.topic].clone());
        let Some((epoch, last)) = target else {
            return Outcome {
                expected: 0,
                received: tracked.received,
            };
        };
        if epoch != tracked.epoch {
            self.shared.error(format!(
                "a subscriber of {} followed epoch {}, but the publishes ended in epoch {epoch}",
                self.shared.topics[self.topic], tracked.epoch
            ));
        }
        let expected = last.saturating_sub(tracked.start);
        // Gaps were counted as they opened; what is left is the tail that never came.
        let tail = last.saturating_sub(tracked.last);
        if tail > 0 {
            self.shared.lost.fetch_add(tail, Ordering::Relaxed);
            self.shared.error(format!(
                "a subscriber of {} had seq {}..={last} still missing at the drain deadline",
                self.shared.topics[self.topic],
                tracked.last + 1
            ));
        }
        Outcome {
            expected,
            received: tracked.received.min(expected),
        }
    }

    /// Reads events until churn time (`None`), the end of the run, or a broken connection.
    async fn read(
        &self,
        ws: &mut Ws,
        tracked: &mut Tracked,
        finish: &mut watch::Receiver<Option<Arc<Finish>>>,
        churn_at: Option<Instant>,
    ) -> Option<Stop> {
        let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        loop {
            let target = finish.borrow().clone();
            if let Some(f) = &target {
                if self.caught_up(tracked, f) || Instant::now() >= f.deadline {
                    return Some(Stop::Done);
                }
            }
            // Once the run is finishing, no more churn: read until caught up.
            let churn_at = if target.is_some() { None } else { churn_at };
            let wake = target.as_ref().map_or(far, |f| f.deadline);
            let wake = churn_at.map_or(wake, |c| c.min(wake));
            tokio::select! {
                inbound = rtbus_socket::next(ws) => match inbound {
                    Inbound::Text(text) => {
                        self.on_frame(text.as_str(), tracked, false);
                    }
                    Inbound::Binary(_) => self.shared.error("subscriber: unexpected binary frame"),
                    Inbound::Close { code, reason } => {
                        self.shared.error(format!(
                            "subscriber: server closed the connection: code {code:?}, reason {reason:?}"
                        ));
                        return Some(Stop::Broken);
                    }
                    Inbound::Failed(e) => {
                        self.shared.error(format!("subscriber: {e}"));
                        return Some(Stop::Broken);
                    }
                    Inbound::Ended => {
                        self.shared.error("subscriber: connection ended");
                        return Some(Stop::Broken);
                    }
                },
                _ = tokio::time::sleep_until(wake.into()) => {
                    if churn_at.is_some_and(|c| Instant::now() >= c) {
                        return None;
                    }
                }
                _ = finish.changed() => {}
            }
        }
    }

    fn caught_up(&self, tracked: &Tracked, finish: &Finish) -> bool {
        finish.last[self.topic]
            .as_ref()
            .is_none_or(|(epoch, last)| *epoch != tracked.epoch || tracked.last >= *last)
    }

    /// Handles one text frame: an event of the topic (a replay only while resuming), nothing
    /// else. Returns whether it was an `unsubscribed` reply.
    fn on_frame(&self, text: &str, tracked: &mut Tracked, unsubscribing: bool) -> bool {
        let shared = &self.shared;
        let view: ServerFrameView<'_> = match ServerFrameView::parse(text) {
            Ok(view) => view,
            Err(e) => {
                shared.error(format!("subscriber: unreadable frame: {e}: {text}"));
                return false;
            }
        };
        match view.kind.as_ref() {
            "event" => {}
            "unsubscribed" if unsubscribing => return true,
            _ => {
                shared.error(format!("subscriber: unexpected frame {text}"));
                return false;
            }
        }
        let topic = &shared.topics[self.topic];
        let Some(data) = view.data else {
            shared.error(format!("subscriber: event without data: {text}"));
            return false;
        };
        if data.topic.as_deref() != Some(topic.as_str()) {
            shared.error(format!(
                "subscriber: event for a topic not subscribed: {text}"
            ));
            return false;
        }
        let (Some(epoch), Some(seq)) = (data.epoch, data.seq) else {
            shared.error(format!("subscriber: event without epoch or seq: {text}"));
            return false;
        };
        if epoch != tracked.epoch {
            shared.error(format!(
                "a subscriber of {topic} got seq {seq} in epoch {epoch} after epoch {}: the \
                 server reset the topic's stream mid-run",
                tracked.epoch
            ));
            return false;
        }
        shared.received.fetch_add(1, Ordering::Relaxed);
        match tracked.take(seq) {
            Take::Next => {}
            Take::Gap { from, to } => {
                shared.lost.fetch_add(to - from + 1, Ordering::Relaxed);
                shared.error(format!(
                    "a subscriber of {topic} missed seq {from}..={to} (epoch {epoch})"
                ));
            }
            Take::Duplicate => {
                shared.duplicated.fetch_add(1, Ordering::Relaxed);
                shared.error(format!(
                    "a subscriber of {topic} got seq {seq} twice (epoch {epoch})"
                ));
            }
            Take::Late => {
                shared.out_of_order.fetch_add(1, Ordering::Relaxed);
                // Counted lost when the gap opened; it came after all.
                shared.lost.fetch_sub(1, Ordering::Relaxed);
                shared.error(format!(
                    "a subscriber of {topic} got seq {seq} after {} (epoch {epoch})",
                    tracked.last
                ));
            }
        }
        false
    }

    /// Opens a connection and subscribes without a snapshot: live the first time, resuming
    /// after `resume` (epoch and seq) after a reconnect.
    async fn subscribe(
        &self,
        resume: Option<(&str, u64)>,
    ) -> Result<(Ws, SubscribedTopic), String> {
        let mut ws = open(&self.url, self.addr, false).await?;
        let entry = self.request(&mut ws, resume).await?;
        Ok((ws, entry))
    }

    /// Sends `subscribe` on `ws` and checks the `subscribed` entry: `live` without a resume,
    /// `resumed` in the same epoch with one (a refused resume means the server dropped
    /// history it should have kept).
    async fn request(
        &self,
        ws: &mut Ws,
        resume: Option<(&str, u64)>,
    ) -> Result<SubscribedTopic, String> {
        let topic = self.shared.topics[self.topic].clone();
        let mut request = match resume {
            None => SubscriptionRequest::new(topic.clone()),
            Some((epoch, seq)) => {
                let epoch = Epoch::new(epoch).map_err(|e| format!("epoch {epoch}: {e}"))?;
                let seq = Seq::new(seq).map_err(|e| format!("seq {seq}: {e}"))?;
                SubscriptionRequest::resume(topic.clone(), epoch, seq)
            }
        };
        request.snapshot = Some(false);
        let subscribe = ClientMessage::Subscribe {
            id: RequestId::new("sub").ok(),
            data: SubscribeData {
                topics: vec![request],
            },
        };
        send(ws, &subscribe).await?;
        let reply = next_message(ws).await?;
        let text = serde_json::to_string(&reply).unwrap_or_default();
        let ServerMessage::Subscribed { data, .. } = reply else {
            return Err(format!("expected `subscribed`, got {text}"));
        };
        let want = if resume.is_some() {
            Start::Resumed
        } else {
            Start::Live
        };
        match <[SubscribedTopic; 1]>::try_from(data.topics) {
            Ok([entry])
                if entry.topic == topic
                    && entry.start == want
                    && resume.is_none_or(|(epoch, _)| entry.epoch.as_str() == epoch) =>
            {
                Ok(entry)
            }
            _ => Err(format!(
                "expected `subscribed` with one entry for {topic} with start {want:?}{}, got {text}",
                resume.map_or(String::new(), |(e, s)| format!(
                    " (resume after {s} of epoch {e})"
                ))
            )),
        }
    }

    /// Churn on the same connection: `unsubscribe`, read what comes before `unsubscribed`, then
    /// subscribe again resuming after the last event seen. Returns whether it is subscribed.
    async fn resubscribe(&self, ws: &mut Ws, tracked: &mut Tracked) -> bool {
        let unsubscribe = ClientMessage::Unsubscribe {
            id: RequestId::new("unsub").ok(),
            data: UnsubscribeData {
                topics: vec![self.shared.topics[self.topic].clone()],
            },
        };
        if let Err(e) = send(ws, &unsubscribe).await {
            self.shared.error(format!("churner: {e}"));
            return false;
        }
        let left = tokio::time::timeout(self.connect_timeout, async {
            loop {
                match rtbus_socket::next(ws).await {
                    Inbound::Text(text) => {
                        if self.on_frame(text.as_str(), tracked, true) {
                            return Ok(());
                        }
                    }
                    Inbound::Binary(_) => {}
                    other => return Err(format!("connection lost while unsubscribing: {other:?}")),
                }
            }
        })
        .await;
        match left {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                self.shared.error(format!("churner: {e}"));
                return false;
            }
            Err(_) => {
                self.shared.error(format!(
                    "churner: no `unsubscribed` within {:?}",
                    self.connect_timeout
                ));
                return false;
            }
        }
        let resume = Some((tracked.epoch.as_str(), tracked.last));
        let again = tokio::time::timeout(self.connect_timeout, self.request(ws, resume)).await;
        match again {
            Ok(Ok(_)) => {
                self.shared.resubscribes.fetch_add(1, Ordering::Relaxed);
                true
            }
            Ok(Err(e)) => {
                self.shared.error(format!("churner: resubscribing: {e}"));
                false
            }
            Err(_) => {
                self.shared.error("churner: resubscribing timed out");
                false
            }
        }
    }

    /// Churn by connection: close it (with a close handshake), open a new one and subscribe
    /// resuming after the last event seen. Returns whether it is subscribed.
    async fn reconnect(&self, ws: &mut Ws, tracked: &Tracked) -> bool {
        let _ = ws.close(None).await;
        // Frames already on their way are read and dropped until the server's close reply:
        // the resume asks for them again.
        let _ = tokio::time::timeout(self.connect_timeout, async {
            while let Inbound::Text(_) | Inbound::Binary(_) = rtbus_socket::next(ws).await {}
        })
        .await;
        let resume = Some((tracked.epoch.as_str(), tracked.last));
        match tokio::time::timeout(self.connect_timeout, self.subscribe(resume)).await {
            Ok(Ok((fresh, _))) => {
                *ws = fresh;
                self.shared.reconnects.fetch_add(1, Ordering::Relaxed);
                true
            }
            Ok(Err(e)) => {
                self.shared.error(format!("churner: reconnecting: {e}"));
                false
            }
            Err(_) => {
                self.shared.error("churner: reconnecting timed out");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_seq_counts_once_and_a_late_one_fills_its_gap() {
        let mut t = Tracked::new("e1", 10);
        assert_eq!(t.take(11), Take::Next);
        assert_eq!(t.take(11), Take::Duplicate);
        assert_eq!(
            t.take(10),
            Take::Duplicate,
            "the subscription started after 10"
        );
        assert_eq!(t.take(15), Take::Gap { from: 12, to: 14 });
        assert_eq!(t.take(13), Take::Late);
        assert_eq!(t.take(13), Take::Duplicate, "13 filled its gap already");
        assert_eq!(t.take(12), Take::Late);
        assert_eq!(t.take(14), Take::Late);
        assert_eq!(t.take(14), Take::Duplicate);
        assert_eq!(t.take(16), Take::Next);
        assert_eq!((t.last, t.received), (16, 6));
        assert!(t.gaps.is_empty());
    }
}
