"""The fan-out subset of rtbus v1 on Python's `websockets`, as a benchmark peer.

Subscribe without auth (snapshot or opt-out), publish -> `published` ack and `event` with a
per-topic seq, ping/pong. Each event is serialized once and broadcast to every subscriber.
"""

import asyncio
import json
import os
import re
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
MAX_TOPIC_LEN = 200
ACTIVITY_LIMIT = 100
ACTIVITY_KINDS = {"message", "toolCall", "toolResult", "status", "output"}


class Topic:
    __slots__ = ("seq", "subs", "state", "family")

    def __init__(self, family):
        self.seq = 0
        self.subs = set()
        self.family = family
        self.state = None if family == "custom" else {"entries": []}


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
                    held.discard(name)
            return await ws.send(frame("unsubscribed", id_, {"topics": data["topics"]}))
        for req in data["topics"]:
            name = req.get("topic") if isinstance(req, dict) else None
            bad = check_topic(name)
            if bad:
                return await ws.send(error(id_, bad[0], bad[1], name if isinstance(name, str) else None))
        await ws.send(frame("subscribed", id_, {"topics": [r["topic"] for r in data["topics"]]}))
        for req in data["topics"]:
            t = topic_of(req["topic"])
            t.subs.add(ws)
            held.add(req["topic"])
            if req.get("snapshot") is not False:
                await ws.send(frame("snapshot", None, {"topic": req["topic"], "seq": t.seq, "emittedAt": now(), "isReplay": False, "payload": t.state}))
        return
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
        if t.family == "custom":
            t.state = data["payload"]
        else:
            t.state["entries"].append(data["payload"])
            del t.state["entries"][:-ACTIVITY_LIMIT]
        await ws.send(frame("published", id_, {"topic": name, "seq": t.seq}))
        broadcast(t.subs, frame("event", None, {"topic": name, "seq": t.seq, "emittedAt": now(), "isReplay": False, "payload": data["payload"]}))
        return
    return await ws.send(error(id_, "bad_request", f"unknown message type {json.dumps(kind)}; expected one of auth, subscribe, unsubscribe, publish, ping"))


async def connection(ws):
    held = set()
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
