// Tokens and requests: getToken before every connect, a refresh on the open socket that keeps
// the subscriptions (or ends, visibly, those another principal may not read), and publish
// resolving to the epoch and seq subscribers see, or rejecting with the server's error.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { RtbusError } from "../dist/index.js";
import { startProxy } from "./faults.mjs";
import { TOKENS, client, startServer, until } from "./server.mjs";

let server;
let publisher;

before(async () => {
  server = await startServer({ publicTopics: ["custom.public.*"] });
  publisher = client(server.url(), { getToken: () => TOKENS.publisher });
});

after(async () => {
  publisher?.close();
  await server?.stop();
});

test("publish resolves to the epoch and seq the subscriber sees; errors reject with the server's code", async () => {
  const reader = client(server.url(), { getToken: () => TOKENS.alice });
  try {
    const metas = [];
    const sub = reader.subscribe("custom.pub", { onEvent: (event, _state, meta) => metas.push({ event, ...meta }) });
    await sub.ready;
    const published = await publisher.publish("custom.pub", { hello: "world" });
    assert.equal(published.topic, "custom.pub");
    assert.equal(typeof published.epoch, "string");
    assert.equal(published.seq, 1);
    await until(() => metas.length === 1, "the event");
    assert.equal(metas[0].epoch, published.epoch);
    assert.equal(metas[0].seq, published.seq);
    assert.deepEqual(metas[0].event, { hello: "world" });
    assert.equal(sub.epoch, published.epoch);

    await assert.rejects(
      publisher.publish("drives.pressure", { drive: "/", pressure: 7, threshold: 0.9 }),
      (error) => error instanceof RtbusError && error.code === "invalid_payload" && /pressure/.test(error.message),
    );
    await assert.rejects(
      reader.publish("custom.pub", { from: "alice" }),
      (error) => error instanceof RtbusError && error.code === "forbidden" && error.topic === "custom.pub",
    );
  } finally {
    reader.close();
  }
});

test("a publish made while reconnecting is sent once the connection is back", async () => {
  const proxy = await startProxy({ host: "127.0.0.1", port: server.port });
  const feeder = client(proxy.url(), { getToken: () => TOKENS.publisher, handshakeAttempts: 1000 });
  try {
    feeder.connect();
    await until(() => feeder.state === "open", "open");
    proxy.drop({ refuse: true });
    await until(() => feeder.state === "reconnecting", "reconnecting");
    const queued = feeder.publish("custom.queued", { n: 1 });
    proxy.refuse(false);
    const published = await queued;
    assert.equal(published.topic, "custom.queued");
    assert.ok(published.seq >= 1);
  } finally {
    feeder.close();
    await proxy.close();
  }
});

test("getToken is called before every connect and the token is sent as `auth`", async () => {
  const proxy = await startProxy({ host: "127.0.0.1", port: server.port });
  let calls = 0;
  const reader = client(proxy.url(), {
    getToken: async () => {
      calls += 1;
      return TOKENS.alice;
    },
    handshakeAttempts: 1000,
  });
  const principals = [];
  reader.on("authenticated", (who) => principals.push(who.principal));
  try {
    reader.connect();
    await until(() => reader.state === "open", "open");
    proxy.drop();
    await until(() => principals.length === 2 && reader.state === "open", "open again");
    assert.ok(calls >= 2, `getToken called per connect (${calls})`);
    assert.deepEqual(principals, ["alice", "alice"]);
    assert.deepEqual(reader.principal, { principal: "alice", roles: [] });
  } finally {
    reader.close();
    await proxy.close();
  }
});

test("a getToken that never settles is reported after requestTimeoutMs and retried", async () => {
  let calls = 0;
  const reader = client(server.url(), {
    getToken: () => {
      calls += 1;
      return calls === 1 ? new Promise(() => {}) : TOKENS.alice;
    },
    requestTimeoutMs: 200,
    handshakeAttempts: 1000,
  });
  const errors = [];
  reader.on("error", (error) => errors.push(error));
  try {
    reader.connect();
    await until(() => reader.state === "open", "open after the hung getToken");
    assert.equal(errors[0]?.kind, "token");
    assert.match(errors[0]?.message ?? "", /getToken did not settle within 200 ms/);
    assert.ok(calls >= 2, `getToken asked again (${calls})`);
  } finally {
    reader.close();
  }
});

test("refreshToken keeps every subscription; a refresh as another principal ends what it may not read, visibly", async () => {
  let token = TOKENS.alice;
  const reader = client(server.url(), { getToken: () => token });
  try {
    const ends = [];
    const drives = reader.subscribe("drives.pressure", { onEnd: (why) => ends.push(why) });
    const custom = reader.subscribe("custom.refresh");
    await Promise.all([drives.ready, custom.ready]);

    token = TOKENS.alice2;
    assert.deepEqual(await reader.refreshToken(), { principal: "alice", roles: [] });
    const a = await publisher.publish("custom.refresh", { n: 1 });
    const b = await publisher.publish("drives.pressure", { drive: "/r", pressure: 0.5, threshold: 0.9 });
    await until(() => custom.seq === a.seq && drives.seq === b.seq, "both topics still delivered after the refresh");
    assert.equal(drives.status, "live");
    assert.deepEqual(ends, []);

    token = TOKENS.bob; // reads only custom.*
    assert.deepEqual(await reader.refreshToken(), { principal: "bob", roles: [] });
    await until(() => drives.status === "ended", "drives.pressure ended by the server");
    assert.deepEqual(ends.map((e) => e.code), ["forbidden"]);
    assert.equal(drives.error.code, "forbidden");
    const c = await publisher.publish("custom.refresh", { n: 2 });
    await until(() => custom.seq === c.seq, "custom.* still delivered to bob");
    assert.equal(custom.status, "live");
    assert.deepEqual(custom.state, { n: 2 });

    token = "revoked";
    await assert.rejects(reader.refreshToken(), (error) => error instanceof RtbusError && error.code === "unauthorized");
    assert.equal(reader.principal, undefined);
    await until(() => custom.status === "ended", "custom.refresh ended: it needs a principal");
    assert.equal(custom.error.code, "unauthorized");
    assert.equal(reader.state, "open", "a rejected refresh leaves the connection open");
  } finally {
    reader.close();
  }
});

test("public topics need no token; refreshToken is refused unless open", async () => {
  const reader = client(server.url());
  try {
    await assert.rejects(reader.refreshToken(), (error) => error instanceof RtbusError && error.code === "not_open");
    const sub = reader.subscribe("custom.public.feed");
    await sub.ready;
    const published = await publisher.publish("custom.public.feed", "hi");
    await until(() => sub.seq === published.seq, "the public event");
    assert.equal(sub.state, "hi");
    assert.equal(reader.principal, undefined);
  } finally {
    reader.close();
  }
});

test("a refused subscribe rejects `ready` and ends the subscription with the server's code", async () => {
  const reader = client(server.url(), { getToken: () => TOKENS.bob }); // reads only custom.*
  try {
    const ends = [];
    const sub = reader.subscribe("drives.pressure", { onEnd: (why) => ends.push(why) });
    await assert.rejects(sub.ready, (error) => error instanceof RtbusError && error.code === "forbidden" && error.topic === "drives.pressure");
    assert.equal(sub.status, "ended");
    assert.deepEqual(ends.map((e) => e.code), ["forbidden"]);
    // The topic is free again, and the connection still serves what bob may read.
    const custom = reader.subscribe("custom.ok");
    await custom.ready;
    assert.equal(custom.status, "live");
  } finally {
    reader.close();
  }
});

test("a request with no answer times out; one in flight when the connection drops is `connection_lost`", async () => {
  const proxy = await startProxy({ host: "127.0.0.1", port: server.port });
  const feeder = client(proxy.url(), { getToken: () => TOKENS.publisher, requestTimeoutMs: 300, handshakeAttempts: 1000 });
  try {
    feeder.connect();
    await until(() => feeder.state === "open", "open");
    proxy.pause();
    const started = Date.now();
    await assert.rejects(feeder.publish("custom.slow", 1), (error) => error instanceof RtbusError && error.code === "timeout");
    assert.ok(Date.now() - started < 1_000, "rejected near requestTimeoutMs");
    const inFlight = feeder.publish("custom.slow", 2);
    proxy.drop();
    await assert.rejects(inFlight, (error) => error instanceof RtbusError && error.code === "connection_lost");
    await until(() => feeder.state === "open", "open again");
    assert.equal((await feeder.publish("custom.slow", 3)).topic, "custom.slow");
  } finally {
    feeder.close();
    await proxy.close();
  }
});
