// @rtbus/client's key fault scenarios in headless Chromium, on the browser's own WebSocket.
//
// The client's Node tests (packages/client/test/reconnect.test.mjs, close.test.mjs) run on
// `ws`; here the same client, bundled by esbuild from test/sdk-page.ts into a temp dir, runs
// in a page served from its own loopback port. The real `rtbus-server` (no `--demo`: a config
// with test tokens, the page's origin allowed and a 300 ms auth deadline) sits behind the fault
// proxy of packages/client/test/faults.mjs, which the test drives from Node while the page
// exposes what each client recorded on `window.sdk`:
//
// 1. every connection dropped mid-stream (and new ones refused for a while): the client
//    reconnects and resumes, every published seq arrives exactly once and in order, and the
//    state equals a fresh snapshot;
// 2. forwarding paused: the heartbeat (300 + 300 ms) notices within its bound, the client
//    replaces the connection and resumes;
// 3. a close that says not to reconnect (4001, auth deadline: no token, no subscription): the
//    client is `closed` with the code and the server's reason, and makes no further attempt.
//
// Environment: RTBUS_SERVER_BIN (default target/debug/rtbus-server), CHROMIUM (default
// /usr/bin/chromium). Run: test/run.sh, or `node --test test/sdk-browser.test.mjs` once the
// SDK packages are built.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer from "puppeteer-core";
import { root } from "../build.mjs";
import { serve } from "../serve.mjs";
import { serverBinary, startServer } from "../rtbus-server.mjs";
import { startProxy } from "../../../packages/client/test/faults.mjs";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
/** The longest any one wait may take. */
const STEP_MS = 5_000;
const TOKENS = { publisher: "tok-publisher", alice: "tok-alice" };

let dir;
let site;
let server;
let browser;
let page;
const serverLog = [];
/** Console messages and page errors, for the failure messages. */
const messages = [];

const toml = (value) => JSON.stringify(value);

/** The server's config: two tokens, the page's origin, a short auth deadline. */
function config(origin) {
  return [
    `public_topics = []`,
    `allowed_origins = ${toml([origin])}`,
    "",
    "[[tokens]]",
    `token = ${toml(TOKENS.publisher)}`,
    `principal = "feeder"`,
    `roles = ["publisher"]`,
    `read = ["*"]`,
    `publish = ["*"]`,
    "",
    "[[tokens]]",
    `token = ${toml(TOKENS.alice)}`,
    `principal = "alice"`,
    `roles = []`,
    `read = ["*"]`,
    `publish = []`,
    "",
    "[limits]",
    "auth_deadline = 300",
    "",
  ].join("\n");
}

/** Bundles test/sdk-page.ts next to a page that loads it; returns the bundle's size. */
async function buildPage(out) {
  const esbuild = await import("esbuild");
  const result = await esbuild.build({
    entryPoints: [join(root, "test", "sdk-page.ts")],
    outfile: join(out, "sdk.js"),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["es2022"],
    // As build.mjs: resolve @rtbus/protocol from this project's node_modules.
    preserveSymlinks: true,
    metafile: true,
    logLevel: "warning",
  });
  await writeFile(
    join(out, "index.html"),
    '<!doctype html>\n<meta charset="utf-8">\n<title>@rtbus/client in the browser</title>\n<script type="module" src="sdk.js"></script>\n',
  );
  return Object.values(result.metafile.outputs)[0]?.bytes ?? 0;
}

/** Runs `window.sdk[method](...args)` in the page; resolves with its (JSON) result. */
function sdk(method, ...args) {
  return page.evaluate((method, args) => window.sdk[method](...args), method, args);
}

/** Polls `read()` until `done(value)` holds, for at most `timeoutMs`. */
async function waitFor(what, read, done, timeoutMs = STEP_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) {
      throw new Error(
        `waited ${timeoutMs} ms for ${what}; last seen ${JSON.stringify(value)}\n` +
          `page console:\n${messages.slice(-20).join("\n")}\nserver log:\n${serverLog.slice(-20).join("\n")}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const entry = (n) => ({ kind: "output", text: `line ${n}`, at: "2026-11-21T09:30:00.125Z" });
/** The states a client went through, repeats folded. */
const transitions = (states) => states.map((s) => s.state).filter((s, i, all) => s !== all[i - 1]);

before(async () => {
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM`);
  const binary = serverBinary();
  dir = await mkdtemp(join(tmpdir(), "rtbus-sdk-browser-"));
  const bytes = await buildPage(dir);
  assert.ok(bytes > 0, "the bundle was written");
  site = await serve({ dir, port: 0 });
  const origin = new URL(site.url).origin;
  const configPath = join(dir, "rtbus.toml");
  await writeFile(configPath, config(origin));
  server = await startServer({ binary, port: 0, demo: false, args: ["--config", configPath], log: (line) => serverLog.push(line) });
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
  });
  page = await browser.newPage();
  page.on("console", (message) => messages.push(`${message.type()}: ${message.text()}`));
  page.on("pageerror", (error) => messages.push(`pageerror: ${error?.stack ?? error}`));
  const response = await page.goto(site.url, { waitUntil: "load", timeout: STEP_MS });
  assert.equal(response?.status(), 200, `GET ${site.url}`);
  await page.waitForFunction(() => window.sdk !== undefined, { timeout: STEP_MS });
  assert.equal(await page.evaluate(() => window.sdk.nativeWebSocket), true, "the page has the browser's own WebSocket");
  // The publisher talks to the server directly, around the proxy.
  await sdk("client", "publisher", server.wsUrl, { token: TOKENS.publisher, handshakeAttempts: 1000 });
});

after(async () => {
  await page?.evaluate(() => window.sdk?.closeAll()).catch(() => {});
  await browser?.close();
  await site?.close();
  await server?.stop("SIGKILL");
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("a dropped connection reconnects and resumes: every seq once, in order, the state equals a fresh snapshot", { timeout: 20_000 }, async (t) => {
  const proxy = await startProxy({ host: "127.0.0.1", port: server.port });
  try {
    const topic = "sessions.activity:drop";
    await sdk("client", "drop", proxy.url(), { token: TOKENS.alice, handshakeAttempts: 1000 });
    await sdk("subscribe", "drop", "drop", topic);
    await sdk("publish", "publisher", topic, range(1, 20).map(entry));
    await waitFor("seq 20 before the drop", () => sdk("sub", "drop"), (s) => s.seq === 20);

    // No close frame, and new connections refused for a while: the client must retry.
    proxy.drop({ refuse: true });
    await waitFor("reconnecting after the drop", () => sdk("view", "drop"), (v) => v.state === "reconnecting");
    await sdk("publish", "publisher", topic, range(21, 40).map(entry));
    await sleep(100); // a few refused attempts
    proxy.refuse(false);
    await sdk("publish", "publisher", topic, range(41, 60).map(entry), { together: true });
    const sub = await waitFor(
      "seq 60 after the reconnect",
      async () => ({ ...(await sdk("sub", "drop")), client: (await sdk("view", "drop")).state }),
      (s) => s.seq === 60 && s.client === "open",
    );

    assert.deepEqual(sub.events.map((e) => e.seq), range(1, 60), "every seq once, in order");
    assert.ok(sub.events.filter((e) => e.seq > 20 && e.seq <= 40).every((e) => e.replay), "events published while disconnected arrive as replays");
    assert.deepEqual(sub.resets, [], "the resume was honoured: no reset");
    assert.equal(sub.snapshots.length, 1, "one snapshot, the first: a resume sends none");
    assert.deepEqual(sub.state.entries.map((e) => e.text), range(1, 60).map((n) => `line ${n}`));
    const fresh = await sdk("fresh", server.wsUrl, topic, TOKENS.alice);
    assert.deepEqual(sub.state, fresh.state, "the state equals a fresh snapshot");
    assert.equal(sub.epoch, fresh.epoch);

    const { states } = await sdk("view", "drop");
    assert.deepEqual(transitions(states).slice(0, 3), ["connecting", "open", "reconnecting"], JSON.stringify(states));
    assert.equal(states.at(-1).state, "open");
    assert.equal(states.find((s) => s.state === "reconnecting").code, 1006, "a drop without a close frame is 1006");
    t.diagnostic(`${proxy.accepted()} connections accepted by the proxy (refused ones included)`);
    assert.ok(proxy.accepted() >= 3, `refused attempts were made, then one got through (${proxy.accepted()} accepted)`);
  } finally {
    await sdk("close", "drop");
    await proxy.close();
  }
});

test("a stalled connection is noticed within heartbeat interval + timeout (300 + 300 ms), then replaced and resumed", { timeout: 20_000 }, async (t) => {
  const proxy = await startProxy({ host: "127.0.0.1", port: server.port });
  const heartbeat = { intervalMs: 300, timeoutMs: 300 };
  try {
    const topic = "custom.stall";
    await sdk("client", "stall", proxy.url(), { token: TOKENS.alice, heartbeat });
    await sdk("subscribe", "stall", "stall", topic);
    const first = await sdk("publish", "publisher", topic, [{ n: 1 }]);
    await waitFor("the first event", () => sdk("sub", "stall"), (s) => s.seq === first);

    const stalledAt = Date.now();
    proxy.pause();
    const { states } = await waitFor(
      "reconnecting after the stall",
      () => sdk("view", "stall"),
      (v) => v.states.some((s) => s.state === "reconnecting"),
      3_000,
    );
    const stale = states.find((s) => s.state === "reconnecting");
    const noticed = stale.at - stalledAt;
    const bound = heartbeat.intervalMs + heartbeat.timeoutMs;
    // Timer slack stays below one more interval: a client that needed two pings would fail.
    assert.ok(noticed <= bound + 200, `stale after ${noticed} ms; the bound is ${bound} ms (+200 ms for timers)`);
    t.diagnostic(`stale noticed ${noticed} ms after the pause (bound ${bound} ms): ${stale.reason}`);
    assert.match(stale.reason, /no pong within 300 ms/);
    assert.equal(stale.reconnect, true);

    const second = await sdk("publish", "publisher", topic, [{ n: 2 }]);
    const sub = await waitFor(
      "the event after the stall",
      async () => ({ ...(await sdk("sub", "stall")), client: (await sdk("view", "stall")).state }),
      (s) => s.seq === second && s.client === "open",
    );
    assert.deepEqual(sub.state, { n: 2 });
    assert.deepEqual(sub.resets, [], "resumed, not reset");
    assert.deepEqual(sub.events.map((e) => e.seq), [first, second]);
    assert.deepEqual(sub.state, (await sdk("fresh", server.wsUrl, topic, TOKENS.alice)).state, "the state equals a fresh snapshot");
    assert.ok(proxy.accepted() >= 2, `a second connection was made (${proxy.accepted()})`);
  } finally {
    await sdk("close", "stall");
    await proxy.close();
  }
});

test("a close that says not to reconnect (4001, auth deadline) leaves the client closed with the code and reason, no further attempt", { timeout: 20_000 }, async (t) => {
  const proxy = await startProxy({ host: "127.0.0.1", port: server.port });
  try {
    await sdk("client", "deadline", proxy.url()); // no token, no subscription: 4001 after 300 ms
    await sdk("connect", "deadline");
    const closed = await waitFor("closed", () => sdk("view", "deadline"), (v) => v.state === "closed", 3_000);
    const why = closed.states.at(-1);
    t.diagnostic(`closed ${why.code}: ${why.reason}`);
    assert.equal(why.code, 4001);
    assert.equal(why.reconnect, false);
    assert.match(why.reason, /not authenticated in time/, "the server's close reason, as the browser's CloseEvent gave it");
    await sleep(500); // more than the backoff's maximum (200 ms): a retry would have happened
    const later = await sdk("view", "deadline");
    assert.deepEqual(later.states.map((s) => s.state), ["connecting", "open", "closed"]);
    assert.equal(later.state, "closed");
    assert.equal(proxy.accepted(), 1, "no second connection was made");
    assert.deepEqual(await sdk("refusals", "deadline"), { publish: "RtbusError closed", subscribe: "RtbusError closed" });
  } finally {
    await sdk("close", "deadline");
    await proxy.close();
  }
});
