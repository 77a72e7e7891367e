// Losing the connection and coming back: a dropped connection resumes with no loss or
// duplicate, a stalled one is noticed within the heartbeat bound, a half-closed one is
// replaced, a restarted server (new epochs) makes every subscription reload, and a browser's
// `online` event cuts the backoff short.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import WebSocket from "ws";
import { startProxy } from "./faults.mjs";
import { TOKENS, client, freshSnapshot, next, startServer, until } from "./server.mjs";

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

const entry = (n) => ({ kind: "output", text: `line ${n}`, at: "2026-11-21T09:30:00.125Z" });

/** Subscribes and records every callback, for the assertions. */
function record(reader, topic, options = {}) {
  const seen = { events: [], snapshots: [], resets: [], ends: [] };
  const sub = reader.subscribe(topic, {
    ...options,
    onEvent: (event, _state, meta) => seen.events.push({ event, seq: meta.seq, epoch: meta.epoch, replay: meta.isReplay }),
    onSnapshot: (state, meta) => seen.snapshots.push({ state, seq: meta.seq, epoch: meta.epoch }),
    onReset: (why) => seen.resets.push(why),
    onEnd: (why) => seen.ends.push(why),
  });
  return { sub, seen };
}

test("a dropped connection reconnects and resumes: every event once, in order, the missed ones replayed", async () => {
  const proxy = await startProxy({ host: "127.0.0.1", port: server.port });
  const reader = client(proxy.url(), { getToken: () => TOKENS.alice, handshakeAttempts: 1000 });
  const states = [];
  reader.on("state", (state, why) => states.push([state, why?.code]));
  try {
    const topic = "sessions.activity:drop";
    const { sub, seen } = record(reader, topic);
    await sub.ready;
    for (let n = 1; n <= 20; n += 1) await publisher.publish(topic, entry(n));
    await until(() => sub.seq === 20, "seq 20 before the drop", { describe: () => `at ${sub.seq}` });

    proxy.drop({ refuse: true });
    await until(() => reader.state === "reconnecting", "reconnecting after the drop");
    for (let n = 21; n <= 40; n += 1) await publisher.publish(topic, entry(n));
    proxy.refuse(false);
    const more = [];
    for (let n = 41; n <= 60; n += 1) more.push(publisher.publish(topic, entry(n)));
    await Promise.all(more);
    await until(() => sub.seq === 60, "seq 60 after the reconnect", { describe: () => `at ${sub.seq}, ${reader.state}` });

    assert.deepEqual(seen.events.map((e) => e.seq), Array.from({ length: 60 }, (_, i) => i + 1), "every seq once, in order");
    assert.ok(
      seen.events.filter((e) => e.seq > 20 && e.seq <= 40).every((e) => e.replay),
      "events published while disconnected arrive as replays",
    );
    assert.deepEqual(seen.resets, [], "the resume was honoured: no reset");
    assert.equal(seen.snapshots.length, 1, "one snapshot: the first; a resume sends none");
    assert.deepEqual(sub.state.entries.map((e) => e.text), Array.from({ length: 60 }, (_, i) => `line ${i + 1}`));
    assert.deepEqual(sub.state, (await freshSnapshot(server.url(), topic)).state, "the state equals a fresh snapshot");
    assert.deepEqual(
      states.map(([s]) => s).filter((s, i, all) => s !== all[i - 1]).slice(0, 3),
      ["connecting", "open", "reconnecting"],
      `state transitions: ${JSON.stringify(states)}`,
    );
    assert.equal(states.at(-1)[0], "open");
    assert.equal(states.find(([s]) => s === "reconnecting")[1], 1006, "a drop without a close frame is 1006");
  } finally {
    reader.close();
    await proxy.close();
  }
});

test("a stalled connection is noticed within heartbeat interval + timeout, then replaced and resumed", async () => {
  const proxy = await startProxy({ host: "127.0.0.1", port: server.port });
  const heartbeat = { intervalMs: 300, timeoutMs: 200 };
  const reader = client(proxy.url(), { getToken: () => TOKENS.alice, heartbeat });
  try {
    const topic = "custom.stall";
    const { sub, seen } = record(reader, topic);
    await sub.ready;
    const first = await publisher.publish(topic, { n: 1 });
    await until(() => sub.seq === first.seq, "the first event");

    const stalled = Date.now();
    proxy.pause();
    const [, why] = await next(reader, "state", (state) => state === "reconnecting", 3_000);
    const noticed = Date.now() - stalled;
    const bound = heartbeat.intervalMs + heartbeat.timeoutMs;
    // The slack for timers stays below one more interval, so a client that needed two pings
    // to notice would fail.
    assert.ok(noticed <= bound + 200, `stale after ${noticed} ms; the bound is ${bound} ms (+200 ms for timers)`);
    assert.match(why.reason, /no pong within 200 ms/);
    assert.equal(why.reconnect, true);

    const second = await publisher.publish(topic, { n: 2 });
    await until(() => sub.seq === second.seq, "the event after the stall", { describe: () => `at ${sub.seq}` });
    assert.deepEqual(sub.state, { n: 2 });
    assert.deepEqual(seen.resets, [], "resumed, not reset");
    assert.deepEqual(seen.events.map((e) => e.seq), [first.seq, second.seq]);
  } finally {
    reader.close();
    await proxy.close();
  }
});

test("a slow link (100 ms each way) is not mistaken for a dead one, and delivers in order", async () => {
  const proxy = await startProxy({ host: "127.0.0.1", port: server.port });
  proxy.delay(100);
  let pongs = 0;
  const Counting = class extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      this.addEventListener("message", (event) => {
        if (String(event.data).startsWith('{"type":"pong"')) pongs += 1;
      });
    }
  };
  const reader = client(proxy.url(), {
    WebSocket: Counting,
    getToken: () => TOKENS.alice,
    heartbeat: { intervalMs: 100, timeoutMs: 400 },
  });
  const states = [];
  reader.on("state", (state) => states.push(state));
  try {
    const topic = "custom.slow-link";
    const { sub, seen } = record(reader, topic);
    await sub.ready;
    let last;
    for (let n = 1; n <= 5; n += 1) last = await publisher.publish(topic, { n });
    await until(() => pongs >= 3 && sub.seq === last.seq, "three heartbeats answered and every event", { describe: () => `${pongs} pongs, seq ${sub.seq}` });
    assert.deepEqual(states, ["connecting", "open"], "never reconnected");
    assert.deepEqual(seen.events.map((e) => e.event.n), [1, 2, 3, 4, 5]);
  } finally {
    reader.close();
    await proxy.close();
  }
});

test("a half-closed connection is replaced and resumed", async () => {
  const proxy = await startProxy({ host: "127.0.0.1", port: server.port });
  const reader = client(proxy.url(), { getToken: () => TOKENS.alice });
  try {
    const topic = "custom.half";
    const { sub, seen } = record(reader, topic);
    await sub.ready;
    // Published once, the topic outlives its subscribers (a never-published one is forgotten
    // when the last subscriber leaves, and would come back under a new epoch: a reset).
    const first = await publisher.publish(topic, { n: 1 });
    await until(() => sub.seq === first.seq, "the first event");
    const reconnecting = next(reader, "state", (state) => state === "reconnecting");
    proxy.halfClose();
    await reconnecting;
    const second = await publisher.publish(topic, { n: 2 });
    await until(() => sub.seq === second.seq && reader.state === "open", "the event after the half-close");
    assert.deepEqual(seen.events.map((e) => e.seq), [first.seq, second.seq]);
    assert.deepEqual(seen.resets, [], "resumed, not reset");
    assert.ok(proxy.accepted() >= 2, `a second connection was made (${proxy.accepted()})`);
  } finally {
    reader.close();
    await proxy.close();
  }
});

test("a restarted server means new epochs: every subscription is reset and reloads, nothing lost silently", async () => {
  const own = await startServer();
  const feeder = client(own.url(), { getToken: () => TOKENS.publisher, handshakeAttempts: 1000 });
  const reader = client(own.url(), { getToken: () => TOKENS.alice, handshakeAttempts: 1000 });
  try {
    const pressure = (drive, p) => ({ drive, pressure: p, threshold: 0.9 });
    const drives = record(reader, "drives.pressure");
    const custom = record(reader, "custom.restart", { snapshot: false });
    await Promise.all([drives.sub.ready, custom.sub.ready]);
    for (let n = 1; n <= 30; n += 1) await feeder.publish("drives.pressure", pressure(`d${n % 4}`, n / 100));
    await feeder.publish("custom.restart", { before: true });
    await until(() => drives.sub.seq === 30 && custom.sub.seq === 1, "the events before the restart");
    const oldEpoch = drives.sub.epoch;
    const oldCustomEpoch = custom.sub.epoch;

    await own.kill("SIGKILL");
    await until(() => reader.state === "reconnecting", "reconnecting after the kill");
    await own.restart();
    // Fewer events than before: a client that compared seqs alone would think it is ahead.
    await until(() => feeder.state === "open", "the publisher back");
    for (let n = 1; n <= 5; n += 1) await feeder.publish("drives.pressure", pressure(`e${n}`, n / 10));
    await feeder.publish("custom.restart", { after: true });

    await until(() => drives.sub.seq === 5 && drives.sub.epoch !== oldEpoch, "drives.pressure reloaded", {
      describe: () => `${drives.sub.epoch}/${drives.sub.seq}`,
    });
    await until(() => custom.sub.seq === 1 && custom.sub.status === "live" && custom.sub.epoch !== oldCustomEpoch, "custom reloaded");
    for (const { seen } of [drives, custom]) {
      assert.equal(seen.resets.length, 1, `one reset: ${JSON.stringify(seen.resets)}`);
      assert.equal(seen.resets[0].reason, "reset");
    }
    assert.equal(drives.seen.snapshots.length, 2, "a fresh snapshot after the reset");
    const truth = await freshSnapshot(own.url(), "drives.pressure");
    assert.deepEqual(drives.sub.state, truth.state, "the reloaded state equals the new server's snapshot");
    assert.equal(drives.sub.epoch, truth.epoch);
    assert.ok(!drives.sub.state.drives.some((d) => d.drive.startsWith("d")), "nothing of the old stream survives");
    // The snapshot:false subscription reloaded with a snapshot, so it holds the new stream's state.
    assert.deepEqual(custom.sub.state, { after: true });
    assert.deepEqual((await freshSnapshot(own.url(), "custom.restart")).state, custom.sub.state);
  } finally {
    reader.close();
    feeder.close();
    await own.stop();
  }
});

test("a server that shuts down (1001, going away) is reconnected to", async () => {
  const own = await startServer();
  const reader = client(own.url(), { getToken: () => TOKENS.alice, handshakeAttempts: 1000 });
  try {
    reader.connect();
    await until(() => reader.state === "open", "open");
    const away = next(reader, "state", (state) => state === "reconnecting");
    await own.kill("SIGTERM");
    const [, why] = await away;
    assert.equal(why.code, 1001);
    assert.equal(why.reconnect, true);
    await own.restart();
    await until(() => reader.state === "open", "open again after the restart");
  } finally {
    reader.close();
    await own.stop();
  }
});

test("an `online` event ends the backoff wait at once", async () => {
  const target = new EventTarget();
  const saved = { add: globalThis.addEventListener, remove: globalThis.removeEventListener };
  globalThis.addEventListener = target.addEventListener.bind(target);
  globalThis.removeEventListener = target.removeEventListener.bind(target);
  const proxy = await startProxy({ host: "127.0.0.1", port: server.port });
  const reader = client(proxy.url(), { getToken: () => TOKENS.alice, backoff: { minMs: 60_000, maxMs: 60_000 } });
  try {
    reader.connect();
    await until(() => reader.state === "open", "open");
    // Math.random() may pick a short delay; make the wait certain to be long.
    const random = Math.random;
    Math.random = () => 0.99;
    try {
      proxy.drop();
      await until(() => reader.state === "reconnecting", "reconnecting");
    } finally {
      Math.random = random;
    }
    const woke = Date.now();
    target.dispatchEvent(new Event("online"));
    await until(() => reader.state === "open", "open again after `online`", { ms: 3_000 });
    assert.ok(Date.now() - woke < 3_000, "reconnected long before the 59 s backoff");
  } finally {
    reader.close();
    await proxy.close();
    globalThis.addEventListener = saved.add;
    globalThis.removeEventListener = saved.remove;
  }
});
