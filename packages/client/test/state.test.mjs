// The local state of typed subscriptions: after a stream of events it equals what a fresh
// subscriber gets as a snapshot (the generated fold agrees with the server's), and a stream
// that breaks its promise (a seq gap, another epoch, an undecodable frame) is re-synced or
// dropped instead of folded into wrong state.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { WebSocketServer } from "ws";
import { TOKENS, client, freshSnapshot, startServer, until } from "./server.mjs";

let server;
let publisher;

before(async () => {
  server = await startServer();
  publisher = client(server.url(), { getToken: () => TOKENS.publisher });
});

after(async () => {
  publisher?.close();
  await server?.stop();
});

const at = (n) => `2026-11-21T09:${String(30 + Math.floor(n / 60)).padStart(2, "0")}:${String(n % 60).padStart(2, "0")}.125Z`;
const sessionStatuses = ["starting", "running", "waiting", "idle", "completed", "failed", "closed"];

/** A deterministic stream of events per family: upserts, removals, appends past the cap. */
const streams = {
  "sessions.state": (n) => ({
    sessionId: `s-${(n * 7) % 9}`,
    status: sessionStatuses[(n * 5) % sessionStatuses.length],
    updatedAt: at(n),
    ...(n % 3 === 0 ? { title: `task ${n}` } : {}),
  }),
  "terminals.state": (n) => ({
    terminalId: `t-${n % 5}`,
    status: ["running", "exited", "closed"][n % 3],
    cols: 80 + n,
    rows: 24,
    ...(n % 3 === 1 ? { exitCode: n % 2 } : {}),
  }),
  "drives.pressure": (n) => ({ drive: `/mnt/${n % 6}`, pressure: (n % 10) / 10, threshold: 0.9 }),
  "sessions.activity:fold": (n) => ({
    kind: ["message", "toolCall", "toolResult", "status", "output"][n % 5],
    text: `entry ${n}`,
    at: at(n),
    ...(n % 4 === 0 ? { data: { n, nested: [n, { deep: true }] } } : {}),
  }),
  "custom.fold": (n) => (n % 2 ? { n, list: [n, "x"] } : [n, null, "y"]),
};

test("typed subscription state equals a fresh snapshot after a stream of events, for every family", async () => {
  const reader = client(server.url(), { getToken: () => TOKENS.alice });
  try {
    const subs = Object.keys(streams).map((topic) => reader.subscribe(topic));
    await Promise.all(subs.map((sub) => sub.ready));
    const count = 130; // past the activity feed's cap of 100
    const last = {};
    for (let n = 1; n <= count; n += 1) {
      await Promise.all(
        Object.entries(streams).map(async ([topic, make]) => (last[topic] = (await publisher.publish(topic, make(n))).seq)),
      );
    }
    await until(() => subs.every((sub) => sub.seq === last[sub.topic]), "every event folded", {
      describe: () => subs.map((s) => `${s.topic}@${s.seq}`).join(", "),
    });
    for (const sub of subs) {
      const truth = await freshSnapshot(server.url(), sub.topic);
      assert.equal(truth.seq, sub.seq, `${sub.topic}: same seq`);
      assert.deepEqual(sub.state, truth.state, `${sub.topic}: the folded state equals the server's snapshot`);
    }
    assert.equal(subs.find((s) => s.topic.startsWith("sessions.activity")).state.entries.length, 100, "the cap");
  } finally {
    reader.close();
  }
});

/** A scripted server: `script(message, send)` answers each client frame. */
async function fakeServer(script) {
  const wss = new WebSocketServer({ port: 0, host: "127.0.0.1", handleProtocols: () => "rtbus.v1" });
  await new Promise((resolve) => wss.once("listening", resolve));
  const received = [];
  wss.on("connection", (socket) => {
    socket.on("message", (raw) => {
      const message = JSON.parse(String(raw));
      received.push(message);
      script(message, (frame) => socket.send(typeof frame === "string" ? frame : JSON.stringify(frame)));
    });
  });
  return {
    url: `ws://127.0.0.1:${wss.address().port}/api/realtime`,
    received,
    /** Drops every connection from the server's side, without a close frame. */
    drop: () => {
      for (const socket of wss.clients) socket.terminate();
    },
    close: () => new Promise((resolve) => wss.close(resolve)),
  };
}

const delivery = (type, epoch, seq, payload) => ({
  type,
  data: { topic: "custom.fake", epoch, seq, emittedAt: "2026-11-21T09:30:00.125Z", isReplay: false, payload },
});
const subscribed = (id, epoch, seq, start) => ({ type: "subscribed", id, data: { topics: [{ topic: "custom.fake", epoch, seq, start }] } });

test("a seq gap or another epoch mid-stream re-syncs with a fresh snapshot; a bad frame is reported and dropped", async () => {
  let subscribes = 0;
  const fake = await fakeServer((message, send) => {
    if (message.type !== "subscribe") return;
    subscribes += 1;
    if (subscribes === 1) {
      send(subscribed(message.id, "e1", 5, "snapshot"));
      send(delivery("snapshot", "e1", 5, { v: 5 }));
      send(delivery("event", "e1", 6, { v: 6 }));
      send(delivery("event", "e1", 6, { v: 6 })); // a duplicate: dropped
      send('{"type":"event","data":{"topic":"custom.fake","seq":-1}}'); // undecodable
      send(delivery("event", "e1", 8, { v: 8 })); // seq 7 is missing
    } else if (subscribes === 2) {
      send(subscribed(message.id, "e1", 8, "snapshot"));
      send(delivery("snapshot", "e1", 8, { v: 8 }));
      send(delivery("event", "e2", 9, { v: 9 })); // another stream
    } else {
      send(subscribed(message.id, "e2", 9, "snapshot"));
      send(delivery("snapshot", "e2", 9, { v: 9 }));
      send(delivery("event", "e2", 10, { v: 10 }));
    }
  });
  const reader = client(fake.url);
  const protocolErrors = [];
  reader.on("protocolError", (error) => protocolErrors.push(error));
  try {
    const events = [];
    const resets = [];
    const sub = reader.subscribe("custom.fake", {
      onEvent: (event, _state, meta) => events.push(meta.seq),
      onReset: (why) => resets.push(why.reason),
    });
    await until(() => sub.seq === 10, "seq 10 after two re-syncs", { describe: () => `${sub.epoch}/${sub.seq}` });
    assert.deepEqual(sub.state, { v: 10 });
    assert.equal(sub.epoch, "e2");
    assert.deepEqual(events, [6, 10], "only events that continue the stream are folded");
    assert.deepEqual(resets, ["gap", "epoch"]);
    assert.equal(protocolErrors.length, 1, JSON.stringify(protocolErrors));
    assert.match(protocolErrors[0].message, /seq|epoch|emittedAt|isReplay|payload/);
    const requests = fake.received.filter((m) => m.type === "subscribe").map((m) => m.data.topics[0]);
    assert.deepEqual(requests, [{ topic: "custom.fake" }, { topic: "custom.fake" }, { topic: "custom.fake" }], "re-syncs do not resume");
  } finally {
    reader.close();
    await fake.close();
  }
});

test("a reset of a snapshot:false subscription reloads with a snapshot; a later reconnect resumes", async () => {
  let subscribes = 0;
  const fake = await fakeServer((message, send) => {
    if (message.type !== "subscribe") return;
    subscribes += 1;
    const request = message.data.topics[0];
    if (subscribes === 1) {
      send(subscribed(message.id, "e1", 3, "live"));
      send(delivery("event", "e1", 4, { v: 4 }));
    } else if (subscribes === 2) {
      assert.deepEqual(request, { topic: "custom.fake", snapshot: false, epoch: "e1", resumeAfter: 4 });
      send(subscribed(message.id, "e9", 2, "reset"));
    } else {
      assert.deepEqual(request, { topic: "custom.fake" }, "the reload asks for a snapshot and does not resume");
      send(subscribed(message.id, "e9", 2, "snapshot"));
      send(delivery("snapshot", "e9", 2, { v: "reloaded" }));
    }
  });
  const reader = client(fake.url);
  try {
    const resets = [];
    const sub = reader.subscribe("custom.fake", { snapshot: false, onReset: (why) => resets.push(why) });
    await until(() => sub.seq === 4, "the first live event");
    assert.deepEqual(sub.state, { v: 4 }, "a live start folds onto the empty state");
    // Drop the connection from the server's side: the client reconnects and resumes.
    fake.drop();
    await until(() => sub.seq === 2 && sub.epoch === "e9", "reloaded after the reset", { describe: () => `${sub.epoch}/${sub.seq}` });
    assert.deepEqual(sub.state, { v: "reloaded" });
    assert.equal(resets.length, 1);
    assert.equal(resets[0].reason, "reset");
    assert.match(resets[0].message, /did not resume custom\.fake at e1\/4/);
  } finally {
    reader.close();
    await fake.close();
  }
});

test("unsubscribe stops delivery; subscribing again starts afresh from a snapshot", async () => {
  const reader = client(server.url(), { getToken: () => TOKENS.alice });
  try {
    const topic = "custom.unsub";
    const events = [];
    const old = reader.subscribe(topic, { onEvent: (event) => events.push(event) });
    await old.ready;
    const first = await publisher.publish(topic, { n: 1 });
    await until(() => old.seq === first.seq, "the first event");
    await old.unsubscribe();
    assert.equal(old.status, "ended");
    assert.equal(old.error, undefined, "ended by unsubscribe(): no error");
    const second = await publisher.publish(topic, { n: 2 });
    const again = reader.subscribe(topic);
    await again.ready;
    assert.equal(again.seq, second.seq);
    assert.deepEqual(again.state, { n: 2 });
    assert.deepEqual(events, [{ n: 1 }], "nothing after unsubscribe()");
    assert.equal(old.seq, first.seq);
  } finally {
    reader.close();
  }
});
