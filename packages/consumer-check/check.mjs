// Plain JavaScript under Node, no TypeScript: the packed packages import and work as ESM.

import assert from "node:assert/strict";

import * as client from "@rtbus/client";
import * as protocol from "@rtbus/protocol";

assert.equal(protocol.SUBPROTOCOL, "rtbus.v1", "@rtbus/protocol: SUBPROTOCOL");
assert.equal(protocol.closeCodeInfo(1001)?.reconnect, true, "@rtbus/protocol: closeCodeInfo(1001).reconnect");
assert.equal(protocol.isKnownTopic("sessions.state"), true, "@rtbus/protocol: isKnownTopic(\"sessions.state\")");
assert.ok(protocol.FAMILIES.length > 0, "@rtbus/protocol: FAMILIES is empty");

{
  const ok = protocol.decodeServerMessage('{"type":"pong"}');
  assert.equal(ok.ok, true, `decodeServerMessage rejects a pong: ${JSON.stringify(ok)}`);
  const bad = protocol.decodeServerMessage('{"type":"pong","extra":1}');
  assert.equal(bad.ok, false, "decodeServerMessage accepts an unknown field");
  assert.equal(typeof bad.error.message, "string", "a decode error has a message");
}

{
  const empty = protocol.emptySnapshot("sessions.state");
  const event = { sessionId: "s-1", status: "running", updatedAt: "2026-01-01T00:00:00Z" };
  const folded = protocol.foldEvent("sessions.state", empty, event);
  assert.deepEqual(folded, { sessions: [event] }, "foldEvent(sessions.state) into the empty snapshot");
  assert.deepEqual(empty, protocol.emptySnapshot("sessions.state"), "foldEvent mutated its snapshot");
}

{
  // Created idle (nothing connects before connect(), subscribe() or publish()), closed for good.
  // Node 20 has no global WebSocket; this one is never constructed.
  class NoSocket {
    constructor() {
      throw new Error("@rtbus/client: an idle client opened a WebSocket");
    }
  }
  const c = client.createClient({ url: "ws://127.0.0.1:9/api/realtime", WebSocket: NoSocket });
  assert.equal(c.state, "idle", "@rtbus/client: a new client's state");
  c.close();
  assert.equal(c.state, "closed", "@rtbus/client: the state after close()");
}

console.log("node: @rtbus/protocol and @rtbus/client import and work (constants, codes, topics, decode, fold, createClient)");
