"""The fan-out subset of rtbus v1 on Python's `websockets`, as a benchmark peer.

Subscribe without auth (snapshot, opt-out, or resume with the epoch and seq seen), publish ->
`published` ack and `event` with the topic's epoch and seq, ping/pong. Each event is serialized
once and broadcast to every subscriber; the last HISTORY_LIMIT events of a topic are kept for
resumes, as the reference server does.
"""

import asyncio
import json
import os
import re
import secrets
import signal
import sys
from datetime import datetime, timezone
from http import HTTPStatus

from websockets.asyncio.server import broadcast, serve
from websockets.datastructures import Headers
from websockets.http11 import Response

ENDPOINT = "/api/realtime"
SUBPROTOCOL = "rtbus.v1"
TOPIC = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*(:[A-Za-z0-9_.~-]+)?$")
EPOCH = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_TOPIC_LEN = 200
MAX_SEQ = 2**53 - 1
ACTIVITY_LIMIT = 100
HISTORY_LIMIT = 1024
ACTIVITY_KINDS = {"message", "toolCall", "toolResult", "status", "output"}
UNPAIRED_RESUME = (
    "resumeAfter and epoch go together: send both (the last seq seen and the epoch it came "
    "with) to resume, or neither to start afresh"
)

# Epochs are `<process nonce>-<topic counter>`: a restarted peer never reuses one.
NONCE = secrets.token_hex(8)
cells_created = 0


class Topic:
    __slots__ = ("epoch", "seq", "subs", "state", "family", "history")

    def __init__(self, family):
        global cells_created
        cells_created += 1
        self.epoch = f"{NONCE}-{cells_created:x}"
        self.seq = 0
        self.subs = set()
        self.family = family
        self.state = None if family == "custom" else {"entries": []}
        # Payloads by seq % HISTORY_LIMIT: the latest HISTORY_LIMIT events.
        self.history = [None] * HISTORY_LIMIT

    def covers(self, n):
        """Whether the history still holds every event after `n` (none needed when n == seq)."""
        return n <= self.seq and self.seq - n <= min(self.seq, HISTORY_LIMIT)


topics = {}


def now():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def family(name):
    if name.startswith("custom."):
        return "custom"
    if name.startswith("sessions.activity:"):
        return "sessions.activity"
    return None


def check_topic(name):
    if not isinstance(name, str):
        return ("bad_request", "expected a topic string")
    if len(name) > MAX_TOPIC_LEN or not TOPIC.match(name):
        return ("invalid_topic", f"topic {json.dumps(name)} does not follow the topic grammar")
    if family(name) is None:
        return ("unknown_topic", f"topic {json.dumps(name)} belongs to no family this server serves (custom.*, sessions.activity:<id>)")
    return None


def topic_of(name):
    t = topics.get(name)
    if t is None:
        t = topics[name] = Topic(family(name))
    return t


def frame(kind, id_, data=None):
    out = {"type": kind}
    if id_ is not None:
        out["id"] = id_
    if data is not None:
        out["data"] = data
    return json.dumps(out, separators=(",", ":"))


def error(id_, code, message, topic=None):
    data = {"code": code, "message": message}
    if topic is not None:
        data["topic"] = topic
    return frame("error", id_, data)


def valid_activity(p):
    return (
        isinstance(p, dict)
        and p.get("kind") in ACTIVITY_KINDS
        and isinstance(p.get("text"), str)
        and isinstance(p.get("at"), str)
    )


def delivery(kind, name, t, seq, is_replay, payload):
    return frame(kind, None, {"topic": name, "epoch": t.epoch, "seq": seq, "emittedAt": now(), "isReplay": is_replay, "payload": payload})


def subscription_request(req, i):
    """Checks one entry of `subscribe`; returns None or (code, message, topic)."""
    where = f'invalid "subscribe" message at /data/topics/{i}'
    if not isinstance(req, dict):
        return ("bad_request", f"{where}: expected an object {{topic, snapshot?, resumeAfter?, epoch?}}", None)
    name = req.get("topic")
    bad = check_topic(name)
    if bad:
        return (bad[0], bad[1], name if isinstance(name, str) else None)
    if "snapshot" in req and not isinstance(req["snapshot"], bool):
        return ("bad_request", f"{where}/snapshot: expected true or false", None)
    n = req.get("resumeAfter")
    if "resumeAfter" in req and not (isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_SEQ):
        return ("bad_request", f"{where}/resumeAfter: expected a seq, a whole number from 0 to 2^53-1", None)
    epoch = req.get("epoch")
    if "epoch" in req and not (isinstance(epoch, str) and EPOCH.match(epoch)):
        return ("bad_request", f"{where}/epoch: expected 1 to 64 of A-Z, a-z, 0-9, '_', '-'", None)
    if ("resumeAfter" in req) != ("epoch" in req):
        return ("bad_request", f"{where}: topic {name}: {UNPAIRED_RESUME}", None)
    return None


def start(req, t, since):
    """How one topic starts for this connection, and the frames that follow `subscribed`."""
    name = req["topic"]
    wants_snapshot = req.get("snapshot") is not False
    snapshot = [delivery("snapshot", name, t, t.seq, False, t.state)] if wants_snapshot else []
    if "epoch" not in req:
        return ("snapshot" if wants_snapshot else "live", snapshot)
    n = req["resumeAfter"]
    if req["epoch"] == t.epoch and since is not None and since <= n <= t.seq:
        # Everything after `since` was already sent on this connection.
        return ("resumed", [])
    if req["epoch"] == t.epoch and since is None and t.covers(n):
        replay = [
            delivery("event", name, t, seq, True, t.history[seq % HISTORY_LIMIT])
            for seq in range(n + 1, t.seq + 1)
        ]
        return ("resumed", replay)
    return ("reset", snapshot)


def subscribe(ws, id_, data, held):
    """All or nothing: every entry is checked before any topic is subscribed. The reply, the
    snapshots and replays are written at once, without yielding to the event loop, so that no
    event of a topic can come between them or get lost."""
    requests = []
    for i, req in enumerate(data["topics"]):
        bad = subscription_request(req, i)
        if bad:
            broadcast([ws], error(id_, *bad))
            return
        # A topic named twice is subscribed once, with its first entry's options.
        if all(r["topic"] != req["topic"] for r in requests):
            requests.append(req)
    entries = []
    frames = []
    for req in requests:
        name = req["topic"]
        t = topic_of(name)
        how, follow = start(req, t, held.get(name))
        entries.append({"topic": name, "epoch": t.epoch, "seq": t.seq, "start": how})
        frames.extend(follow)
        held.setdefault(name, t.seq)
        t.subs.add(ws)
    broadcast([ws], frame("subscribed", id_, {"topics": entries}))
    for f in frames:
        broadcast([ws], f)


async def handle(ws, text, held):
    try:
        msg = json.loads(text)
    except ValueError as e:
        return await ws.send(error(None, "bad_request", f"frame is not valid JSON: {e}"))
    if not isinstance(msg, dict):
        return await ws.send(error(None, "bad_request", "expected a JSON object"))
    id_ = msg.get("id")
    if not (isinstance(id_, str) and 1 <= len(id_) <= 64):
        id_ = None
    kind = msg.get("type")
    data = msg.get("data")
    if kind == "ping":
        return await ws.send(frame("pong", id_, data))
    if kind == "auth":
        # No authorization in this peer: every token may read and publish.
        return await ws.send(frame("authenticated", id_, {"principal": "peer", "roles": ["publisher"]}))
    if kind in ("subscribe", "unsubscribe"):
        if not isinstance(data, dict) or not isinstance(data.get("topics"), list) or not data["topics"]:
            return await ws.send(error(id_, "bad_request", f'invalid "{kind}" message: expected data.topics, a non-empty array'))
        if kind == "unsubscribe":
            for name in data["topics"]:
                if isinstance(name, str) and name in topics:
                    topics[name].subs.discard(ws)
                    held.pop(name, None)
            return await ws.send(frame("unsubscribed", id_, {"topics": data["topics"]}))
        return subscribe(ws, id_, data, held)
    if kind == "publish":
        if not isinstance(data, dict) or "payload" not in data:
            return await ws.send(error(id_, "bad_request", 'invalid "publish" message: expected data.topic and data.payload'))
        name = data.get("topic")
        bad = check_topic(name)
        if bad:
            return await ws.send(error(id_, bad[0], bad[1], name if isinstance(name, str) else None))
        if family(name) == "sessions.activity" and not valid_activity(data["payload"]):
            return await ws.send(error(id_, "invalid_payload", "payload is not a valid sessions.activity event", name))
        t = topic_of(name)
        t.seq += 1
        t.history[t.seq % HISTORY_LIMIT] = data["payload"]
        if t.family == "custom":
            t.state = data["payload"]
        else:
            t.state["entries"].append(data["payload"])
            del t.state["entries"][:-ACTIVITY_LIMIT]
        await ws.send(frame("published", id_, {"topic": name, "epoch": t.epoch, "seq": t.seq}))
        broadcast(t.subs, delivery("event", name, t, t.seq, False, data["payload"]))
        return
    return await ws.send(error(id_, "bad_request", f"unknown message type {json.dumps(kind)}; expected one of auth, subscribe, unsubscribe, publish, ping"))


async def connection(ws):
    held = {}  # topic -> its seq when this connection first subscribed
    try:
        async for message in ws:
            if isinstance(message, bytes):
                await ws.close(1003, "rtbus v1 uses JSON text frames only")
                return
            await handle(ws, message, held)
    finally:
        for name in held:
            topics[name].subs.discard(ws)


def refuse(status, reason):
    return Response(status.value, status.phrase, Headers([("Content-Type", "text/plain")]), (reason + "\n").encode())


def check_request(_conn, request):
    if request.path.split("?")[0] != ENDPOINT:
        return refuse(HTTPStatus.NOT_FOUND, f"rtbus is served on {ENDPOINT}")
    offered = [p.strip() for v in request.headers.get_all("Sec-WebSocket-Protocol") for p in v.split(",")]
    if SUBPROTOCOL not in offered:
        return refuse(HTTPStatus.BAD_REQUEST, f"offer the WebSocket subprotocol {SUBPROTOCOL}")
    return None


async def main():
    listen = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:0"
    host, _, port = listen.rpartition(":")
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(
        connection,
        host,
        int(port),
        subprotocols=[SUBPROTOCOL],
        process_request=check_request,
        compression=None,
        max_queue=None,
        write_limit=2**20,
    ) as server:
        addr = next(s.getsockname() for s in server.sockets)
        print(f"listening ws://{addr[0]}:{addr[1]}{ENDPOINT} pid {os.getpid()}", flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main())
