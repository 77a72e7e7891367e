// When not to reconnect: a close code that says so, a rejected token, and handshakes that are
// refused before the connection opens (wrong path, an Origin the server does not allow) stop
// the client and say why, instead of retrying forever.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import WebSocket from "ws";
import { RtbusError } from "../dist/index.js";
import { startProxy } from "./faults.mjs";
import { TOKENS, client, next, startServer, until } from "./server.mjs";

let server;

before(async () => {
  server = await startServer({ allowedOrigins: ["https://app.example"], limits: { auth_deadline: 300 } });
});

after(async () => {
  await server?.stop();
});

/** Records the `state` and `error` events of a client. */
function watch(reader) {
  const seen = { states: [], errors: [] };
  reader.on("state", (state, why) => seen.states.push({ state, why }));
  reader.on("error", (error) => seen.errors.push(error));
  return seen;
}

test("a close code that says not to reconnect (4001, auth deadline) stops the client and says why", async () => {
  const proxy = await startProxy({ host: "127.0.0.1", port: server.port });
  const reader = client(proxy.url());
  const seen = watch(reader);
  try {
    reader.connect(); // no token, no subscription: the server closes with 4001 after 300 ms
    const [, why] = await next(reader, "state", (state) => state === "closed", 3_000);
    assert.equal(why.code, 4001);
    assert.equal(why.reconnect, false);
    assert.ok(why.reason.length > 0, "a reason is given");
    assert.deepEqual(seen.states.map((s) => s.state), ["connecting", "open", "closed"]);
    assert.equal(proxy.accepted(), 1, "no second connection was made");
    await assert.rejects(reader.publish("custom.x", 1), (error) => error instanceof RtbusError && error.code === "closed");
    assert.throws(() => reader.subscribe("custom.x"), (error) => error instanceof RtbusError && error.code === "closed");
  } finally {
    reader.close();
    await proxy.close();
  }
});

test("a rejected token stops the client with an `auth` error and the subscription ends", async () => {
  const reader = client(server.url(), { getToken: () => "not-a-token" });
  const seen = watch(reader);
  try {
    const sub = reader.subscribe("custom.secret");
    await assert.rejects(sub.ready, (error) => error instanceof RtbusError && error.code === "closed");
    assert.equal(reader.state, "closed");
    assert.equal(seen.errors.length, 1, JSON.stringify(seen.errors));
    assert.equal(seen.errors[0].kind, "auth");
    assert.equal(seen.errors[0].code, "unauthorized");
    const closed = seen.states.at(-1);
    assert.equal(closed.state, "closed");
    assert.equal(closed.why.reconnect, false);
    assert.match(closed.why.reason, /rejected the token \(unauthorized\)/);
    assert.equal(sub.status, "ended");
    assert.equal(sub.error.code, "closed");
  } finally {
    reader.close();
  }
});

test("a handshake refused before open (wrong path: 404) is reported after N attempts, then the client stops", async () => {
  const reader = client(server.url("/api/wrong"), { getToken: () => TOKENS.alice, handshakeAttempts: 3 });
  const seen = watch(reader);
  try {
    const failing = next(reader, "error", (e) => e.kind === "handshake", 3_000);
    reader.connect();
    const [error] = await failing;
    assert.equal(error.attempts, 3);
    assert.match(error.message, /3 attempts in a row/);
    assert.match(error.message, /404/, "the server's status is named");
    await until(() => reader.state === "closed", "closed");
    const states = seen.states.map((s) => s.state);
    assert.deepEqual(states, ["connecting", "reconnecting", "reconnecting", "closed"]);
    assert.equal(seen.states.at(-1).why.reconnect, false);
  } finally {
    reader.close();
  }
});

test("a handshake refused for its Origin (403) is reported, not retried forever", async () => {
  // A browser sends its page's Origin; `ws` sends the one it is given.
  const FromElsewhere = class extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols, { origin: "https://evil.example" });
    }
  };
  const reader = client(server.url(), { WebSocket: FromElsewhere, getToken: () => TOKENS.alice, handshakeAttempts: 2 });
  try {
    const failing = next(reader, "error", (e) => e.kind === "handshake", 3_000);
    reader.connect();
    const [error] = await failing;
    assert.equal(error.attempts, 2);
    assert.match(error.message, /403/);
    await until(() => reader.state === "closed", "closed");
  } finally {
    reader.close();
  }

  // The same client from an allowed origin connects.
  const FromApp = class extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols, { origin: "https://app.example" });
    }
  };
  const allowed = client(server.url(), { WebSocket: FromApp, getToken: () => TOKENS.alice });
  try {
    allowed.connect();
    await until(() => allowed.state === "open", "open from an allowed origin");
    assert.equal(allowed.principal.principal, "alice");
  } finally {
    allowed.close();
  }
});

test("a client that was open reports a failing reconnect after N attempts and keeps trying", async () => {
  const own = await startServer();
  const reader = client(own.url(), { getToken: () => TOKENS.alice, handshakeAttempts: 3 });
  const seen = watch(reader);
  try {
    reader.connect();
    await until(() => reader.state === "open", "open");
    const reported = next(reader, "error", (e) => e.kind === "handshake", 3_000);
    await own.kill("SIGKILL");
    const [error] = await reported;
    assert.equal(error.attempts, 3);
    assert.match(error.message, /3 attempts in a row/);
    assert.equal(reader.state, "reconnecting", "still trying: the server may come back");
    await own.restart();
    await until(() => reader.state === "open", "open again once the server is back");
    assert.equal(seen.errors.filter((e) => e.kind === "handshake").length, 1, "reported once per outage");
  } finally {
    reader.close();
    await own.stop();
  }
});

test("close() ends every subscription and pending request and stays closed", async () => {
  const reader = client(server.url(), { getToken: () => TOKENS.alice });
  const ends = [];
  const sub = reader.subscribe("custom.bye", { onEnd: (why) => ends.push(why) });
  await sub.ready;
  reader.close();
  assert.equal(reader.state, "closed");
  assert.equal(sub.status, "ended");
  assert.deepEqual(ends, [{ code: "closed", message: "closed by the client" }]);
  reader.close(); // idempotent
  assert.equal(reader.state, "closed");
});
