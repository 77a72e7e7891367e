//! The normative rules of the protocol, each with a stable id.
//!
//! The protocol reference renders every rule with an anchor `rule-<id>`; conformance cases cite
//! these ids, and the coverage table lists any rule no case checks. Ids never change meaning: a
//! rule that changes gets a new id.

/// One normative statement of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The stable id, e.g. `subscribe.ack-first`.
    pub id: &'static str,
    /// The section of the reference the rule belongs to.
    pub section: &'static str,
    /// The rule, as a sentence with MUST.
    pub text: &'static str,
}

impl Rule {
    /// The rule with id `id`.
    pub fn find(id: &str) -> Option<&'static Rule> {
        RULES.iter().find(|rule| rule.id == id)
    }

    /// The anchor of the rule in `PROTOCOL.md`.
    pub fn anchor(&self) -> String {
        format!("rule-{}", self.id.replace('.', "-"))
    }
}

macro_rules! rules {
    ($($id:literal, $section:literal: $text:literal;)+) => {
        /// Every rule, in reference order.
        pub const RULES: &[Rule] = &[$(Rule { id: $id, section: $section, text: $text }),+];
    };
}

rules! {
    "handshake.endpoint", "Connection":
        "The server MUST accept WebSocket upgrades on the path `/api/realtime`.";
    "handshake.subprotocol", "Connection":
        "When the client offers `rtbus.v1` among its subprotocols, the server MUST select it. A handshake that offers subprotocols, none of them supported, MUST be refused with HTTP status 400 before the upgrade. A handshake that offers none is treated as `rtbus.v1`.";
    "frame.schema", "Frames":
        "Every frame the server sends MUST be a text frame holding one JSON object that validates against the server-to-client schema, including the payload type of the topic's family.";
    "frame.binary", "Frames":
        "A binary frame from the client MUST make the server close the connection with close code 1003 (`unsupportedData`).";
    "frame.malformed", "Frames":
        "A text frame that is not valid JSON, has an unknown `type`, a missing or mistyped field, or an unknown field MUST be answered with an `error` frame with code `bad_request`; the connection stays open.";
    "frame.nesting", "Frames":
        "A frame that nests arrays and objects at most 64 levels deep (counting the frame's own object) MUST be read like any other; a deeper one MUST be answered with `error` code `bad_request`, carrying the frame's `id` when its top-level object holds a valid one; the connection stays open.";
    "frame.close-code", "Frames":
        "Every close code the server sends MUST be one the protocol declares (`CloseCode`), so a client knows whether to reconnect.";
    "frame.too-big", "Frames":
        "A message larger than the server's configured maximum MUST make the server close the connection with close code 1009 (`messageTooBig`).";
    "request.id", "Frames":
        "The reply or `error` to a request that carries an `id` MUST carry the same `id`, also when the frame is rejected as malformed after its top-level `id` could be read (trailing garbage, a bad field).";
    "error.keeps-open", "Frames":
        "An `error` frame MUST NOT be followed by the server closing the connection because of that error.";
    "auth.message", "Authentication":
        "An `auth` frame with a token the server accepts MUST be answered with `authenticated`, naming the principal and its roles.";
    "auth.header", "Authentication":
        "A handshake with an `Authorization: Bearer <token>` header the server accepts MUST authenticate the connection as if it had sent `auth` with that token.";
    "auth.reject", "Authentication":
        "An `auth` frame with a token the server does not accept MUST be answered with `error` code `unauthorized`; the connection stays unauthenticated.";
    "auth.refresh", "Authentication":
        "An `auth` frame on an authenticated connection MUST re-authenticate it: with a token of the same principal, every subscription stays; with a token of another principal, the subscriptions that principal may not read MUST end with one `unsubscribed` frame without `id`, with `reason` `forbidden`, naming them, and the others stay.";
    "auth.refresh-reject", "Authentication":
        "An `auth` frame whose token is not accepted on an authenticated connection MUST be answered with `error` code `unauthorized` and MUST leave the connection without a principal: the subscriptions that need one end with one `unsubscribed` frame without `id`, with `reason` `unauthorized`.";
    "auth.deadline", "Authentication":
        "A connection that is not authenticated and holds no subscription when the server's auth deadline passes MUST be closed with close code 4001 (`authTimeout`).";
    "authz.subscribe", "Authorization":
        "Subscribing to a topic the connection may not read MUST be answered with `error` code `unauthorized` (no principal) or `forbidden` (a principal without permission), naming the topic; nothing of the request is subscribed.";
    "authz.publish", "Authorization":
        "A `publish` from a connection without the publisher role or without permission for the topic MUST be answered with `error` code `unauthorized` or `forbidden`, and no subscriber receives the event.";
    "topic.invalid", "Topics":
        "A topic that breaks the topic grammar MUST be answered with `error` code `invalid_topic`, with `data.topic` set to the topic as sent.";
    "topic.unknown", "Topics":
        "A topic that follows the grammar but belongs to no family MUST be answered with `error` code `unknown_topic`, with `data.topic` set to the topic as sent.";
    "subscribe.ack-first", "Subscriptions":
        "A successful `subscribe` MUST be answered with `subscribed`, listing each topic once, in request order, before any `snapshot` or `event` of those topics.";
    "subscribe.start", "Subscriptions":
        "Each entry of `subscribed` MUST carry the topic's current `epoch` and latest `seq` and say how the topic starts (`snapshot`, `live`, `resumed` or `reset`), and what follows for the topic MUST be what that value promises: a snapshot at `seq` (`snapshot`, and `reset` unless the request opted out), replayed events ending at `seq` (`resumed`), then live events from `seq` + 1.";
    "subscribe.snapshot", "Subscriptions":
        "After `subscribed`, the server MUST send exactly one `snapshot` per topic that did not opt out and does not resume, before any `event` on that topic.";
    "subscribe.no-snapshot", "Subscriptions":
        "A topic subscribed with `snapshot: false` MUST NOT get a snapshot; only events published after the subscription follow.";
    "subscribe.atomic", "Subscriptions":
        "When any topic of a `subscribe` is rejected, the server MUST answer with one `error` naming that topic and subscribe none of the request's topics.";
    "subscribe.repeat", "Subscriptions":
        "Subscribing again to a topic the connection already holds MUST be acknowledged again and MUST NOT duplicate delivery: each event reaches the connection once. A repeated subscription with a snapshot gets a fresh snapshot.";
    "subscribe.limit", "Subscriptions":
        "A `subscribe` that would make the connection hold more topics than the server's limit MUST be answered with `error` code `limit_exceeded`; nothing of it is subscribed.";
    "delivery.fields", "Delivery":
        "Every `snapshot` and `event` MUST carry `topic`, `epoch`, `seq`, `emittedAt` and `isReplay`; `isReplay` is `true` only on events re-sent by a resume.";
    "delivery.epoch", "Delivery":
        "While a topic's `seq` numbering continues, its `subscribed` entries, `published` replies, snapshots and events MUST all carry the same `epoch`.";
    "delivery.seq", "Delivery":
        "Events of one topic MUST carry consecutive `seq` values: the first event published on a topic has `seq` 1, each next one the previous plus one, and the first live event after a snapshot with `seq` n has `seq` n + 1.";
    "delivery.fanout", "Delivery":
        "Every connection subscribed to a topic MUST receive every event published on it after the subscription was acknowledged, once, in `seq` order.";
    "delivery.snapshot-state", "Delivery":
        "A snapshot MUST equal the family's empty state with every event up to its `seq` folded in by the family's fold rule, so a late subscriber sees what was published before it arrived.";
    "resume.pair", "Resume":
        "A subscription that names `resumeAfter` without `epoch`, or `epoch` without `resumeAfter`, MUST be answered with `error` code `bad_request`; nothing of the request is subscribed.";
    "resume.replay", "Resume":
        "A subscription with `resumeAfter: n` and the topic's current `epoch`, whose every event after n the server's history still holds, MUST be acknowledged with `start: resumed` and get the events after n, in order, marked `isReplay: true`, then live events, with no gap and no duplicate, and no snapshot.";
    "resume.exhausted", "Resume":
        "A subscription with `resumeAfter: n` that the server's history no longer covers, or that is ahead of the topic's latest `seq`, MUST be acknowledged with `start: reset` and get no replayed event, and a fresh `snapshot` (with `isReplay: false`) unless it opted out.";
    "resume.up-to-date", "Resume":
        "A subscription with the topic's current `epoch` and `resumeAfter` equal to the topic's latest `seq` MUST be acknowledged with `start: resumed` and get neither a snapshot nor replayed events.";
    "resume.epoch", "Resume":
        "A topic MUST get a new `epoch`, never used before, whenever its `seq` numbering restarts or its history is lost (such as a restart of a server that keeps topics in memory); a subscription whose `epoch` is not the topic's current one MUST be acknowledged with `start: reset` and get no replayed event, whatever its `resumeAfter`.";
    "unsubscribe.stops", "Subscriptions":
        "After `unsubscribed`, the server MUST NOT send any `snapshot` or `event` of the topics left.";
    "publish.ack", "Publishing":
        "A permitted `publish` MUST be answered with `published`, carrying the `epoch` and `seq` that subscribers see on the resulting `event`.";
    "publish.payload", "Publishing":
        "A `publish` whose payload does not match the event type of the topic's family MUST be answered with `error` code `invalid_payload`, and no subscriber receives it.";
    "ping.pong", "Liveness":
        "A `ping` MUST be answered with `pong` carrying the same `id` and `data`.";
    "heartbeat.timeout", "Liveness":
        "The server MUST send WebSocket pings, and MUST close with close code 4008 (`heartbeatTimeout`) a connection that stops answering them within its heartbeat timeout.";
    "slow-consumer.cutoff", "Back-pressure":
        "When a connection's outbound queue exceeds the server's limit, the server MUST close it with close code 4009 (`slowConsumer`), and other subscribers of the same topics MUST keep receiving without waiting for it.";
    "shutdown.going-away", "Liveness":
        "A server that shuts down MUST close its connections with close code 1001 (`goingAway`).";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_rules_are_normative() {
        let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), RULES.len(), "duplicate rule id");
        for rule in RULES {
            assert!(rule.text.contains("MUST"), "{} is not normative", rule.id);
            assert_eq!(Rule::find(rule.id), Some(rule));
        }
    }
}
