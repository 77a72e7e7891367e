// Plain JavaScript under Node, no TypeScript: the packed packages import and work as ESM.
// Usage: node check.mjs [decode] [fold] [client] (the parts the packed packages contain).

import assert from "node:assert/strict";

import * as protocol from "@rtbus/protocol";

const parts = new Set(process.argv.slice(2));

assert.equal(protocol.SUBPROTOCOL, "rtbus.v1", "@rtbus/protocol: SUBPROTOCOL");
assert.equal(protocol.closeCodeInfo(1001)?.reconnect, true, "@rtbus/protocol: closeCodeInfo(1001).reconnect");
assert.equal(protocol.isKnownTopic("sessions.state"), true, "@rtbus/protocol: isKnownTopic(\"sessions.state\")");
assert.ok(protocol.FAMILIES.length > 0, "@rtbus/protocol: FAMILIES is empty");
const checked = ["constants", "codes", "topics"];

if (parts.has("decode")) {
  const ok = protocol.decodeServerMessage('{"type":"pong"}');
  assert.equal(ok.ok, true, `decodeServerMessage rejects a pong: ${JSON.stringify(ok)}`);
  const bad = protocol.decodeServerMessage('{"type":"pong","extra":1}');
  assert.equal(bad.ok, false, "decodeServerMessage accepts an unknown field");
  assert.equal(typeof bad.error.message, "string", "a decode error has a message");
  checked.push("decode");
}

if (parts.has("fold")) {
  const empty = protocol.emptySnapshot("sessions.state");
  const event = { sessionId: "s-1", status: "running", updatedAt: "2026-01-01T00:00:00Z" };
  const folded = protocol.foldEvent("sessions.state", empty, event);
  assert.deepEqual(folded, { sessions: [event] }, "foldEvent(sessions.state) into the empty snapshot");
  assert.deepEqual(empty, protocol.emptySnapshot("sessions.state"), "foldEvent mutated its snapshot");
  checked.push("fold");
}

if (parts.has("client")) {
  const client = await import("@rtbus/client");
  assert.equal(typeof client.createClient, "function", "@rtbus/client: createClient is not a function");
  checked.push("client");
}

console.log(`node: @rtbus/protocol${parts.has("client") ? " and @rtbus/client" : ""} import and work (${checked.join(", ")})`);
