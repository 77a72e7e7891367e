// The dashboard in headless Chromium against the real `rtbus-server --demo`.
//
// The page is served from its own loopback port, so the handshake carries a cross-port Origin
// that `--demo` must allow. The test waits (bounded) until the DOM shows live data, saves
// target/dashboard.png, then kills the server with SIGKILL and starts a new one on the same
// port: the page's client must reconnect, be told `reset` (new epochs), reload every topic and
// show live data again, with no console error other than the browser's own report of the
// failed reconnect attempts while the server was down.
//
// Environment: RTBUS_SERVER_BIN (default target/debug/rtbus-server), CHROMIUM (default
// /usr/bin/chromium). Run: `npm test` in examples/dashboard, or test/run.sh for everything.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import puppeteer from "puppeteer-core";
import { build } from "../build.mjs";
import { serve } from "../serve.mjs";
import { repo, serverBinary, startServer } from "../rtbus-server.mjs";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const SCREENSHOT = join(repo, "target", "dashboard.png");
const SCREENSHOT_AFTER_RESTART = join(repo, "target", "dashboard-after-restart.png");
/** The longest any one wait may take. */
const STEP_MS = 15_000;

let binary;
let server;
let page;
let site;
let browser;
const serverLog = [];
/** Every console message and page error, with when it came: `{ at, type, text }`. */
const messages = [];

function ms() {
  return Math.round(performance.now());
}

/** Polls `read()` in the page until `done(value)` holds, for at most `timeoutMs`. */
async function waitFor(what, read, done, timeoutMs = STEP_MS) {
  const deadline = Date.now() + timeoutMs;
  let value;
  for (;;) {
    value = await page.evaluate(read);
    if (done(value)) return value;
    if (Date.now() > deadline) {
      throw new Error(`waited ${timeoutMs} ms for ${what}; last seen ${JSON.stringify(value)}\nserver log:\n${serverLog.slice(-20).join("\n")}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** What the panels show, read from their data attributes. */
function panels() {
  const panel = (id) => {
    const element = document.getElementById(id);
    const data = element?.dataset ?? {};
    return {
      topic: data.topic ?? "",
      epoch: data.epoch,
      seq: data.seq === undefined ? undefined : Number(data.seq),
      updates: Number(data.updates ?? 0),
      resets: Number(data.resets ?? 0),
      lastReset: data.lastReset,
      count: Number(data.count ?? 0),
    };
  };
  const gauge = document.querySelector('#drives-list .gauge[data-drive="/"]');
  return {
    connection: document.documentElement.dataset.connection,
    // The problem banner as a person sees it: its text when it is displayed at all.
    problem: (() => {
      const box = document.getElementById("problem");
      return box && getComputedStyle(box).display !== "none" ? (box.textContent ?? "").trim() : undefined;
    })(),
    sessions: panel("sessions"),
    activity: panel("activity"),
    terminals: panel("terminals"),
    drives: panel("drives"),
    firstSession: document.querySelector("#sessions-list [data-session-id]")?.getAttribute("data-session-id") ?? undefined,
    sessionRows: document.querySelectorAll("#sessions-list [data-session-id]").length,
    gauges: document.querySelectorAll("#drives-list .gauge").length,
    rootPressure: gauge?.getAttribute("data-pressure") ?? undefined,
    rootPressureText: gauge?.querySelector(".value")?.textContent ?? undefined,
  };
}

/** Waits until the `/` gauge has shown `changes` new values after the current one. */
async function pressureChanges(changes) {
  const seen = [];
  await waitFor(
    `the "/" drive gauge to change ${changes} times`,
    () => document.querySelector('#drives-list .gauge[data-drive="/"]')?.getAttribute("data-pressure") ?? null,
    (value) => {
      if (value !== null && seen.at(-1) !== value) seen.push(value);
      return seen.length > changes;
    },
  );
  return seen;
}

before(async () => {
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM`);
  binary = serverBinary();
  await build();
  server = await startServer({ binary, port: 0, log: (line) => serverLog.push(line) });
  site = await serve({ port: 0 });
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true, // the new headless mode (--headless=new)
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
  });
  page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 860 });
  page.on("console", (message) => {
    messages.push({ at: ms(), type: message.type(), text: message.text() });
  });
  page.on("pageerror", (error) => messages.push({ at: ms(), type: "pageerror", text: String(error?.stack ?? error) }));
  page.on("requestfailed", (request) =>
    messages.push({ at: ms(), type: "requestfailed", text: `${request.url()}: ${request.failure()?.errorText}` }),
  );
});

after(async () => {
  await browser?.close();
  await site?.close();
  await server?.stop();
});

test("the dashboard shows live demo data, from a page on another port", { timeout: 60_000 }, async () => {
  const url = `${site.url}?server=${encodeURIComponent(server.wsUrl)}`;
  const response = await page.goto(url, { waitUntil: "load", timeout: STEP_MS });
  assert.equal(response?.status(), 200, `GET ${url}`);

  const live = await waitFor(
    "the connection to open and every topic's snapshot",
    panels,
    (p) => p.connection === "open" && p.sessions.epoch && p.terminals.epoch && p.drives.epoch && p.activity.epoch && p.sessionRows > 0,
  );
  assert.equal(live.problem, undefined, "no problem banner");
  assert.equal(live.gauges, 2, `the demo's two drives have a gauge each: ${JSON.stringify(live)}`);
  assert.equal(live.activity.topic, `sessions.activity:${live.firstSession}`, "the activity feed follows the first session listed");

  const values = await pressureChanges(2);
  assert.equal(new Set(values).size, values.length, `each value differs from the one before: ${values}`);
  const later = await waitFor(
    "a terminal event and more session events",
    panels,
    (p) => p.terminals.updates >= 2 && p.terminals.count > 0 && p.sessions.updates >= live.sessions.updates + 2,
  );
  assert.match(later.rootPressureText ?? "", /^\d+\.\d %/, "the gauge shows a percentage");
  assert.ok(later.drives.seq > live.drives.seq, `drives.pressure seq moved on: ${live.drives.seq} -> ${later.drives.seq}`);

  await mkdir(join(repo, "target"), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  assert.ok(existsSync(SCREENSHOT), `screenshot written to ${SCREENSHOT}`);

  const errors = messages.filter((m) => m.type === "error" || m.type === "pageerror" || m.type === "requestfailed");
  assert.deepEqual(errors, [], "no console errors, page errors or failed requests");
});

const FIXED_TOPICS = ["sessions", "terminals", "drives"];

/** The process part of an rtbus-server epoch, `<process nonce>-<counter>` (server/README.md). */
function nonceOf(epoch) {
  return String(epoch).split("-")[0];
}

test("after a server restart the page reconnects, is reset to the new epochs and shows live data again", { timeout: 60_000 }, async () => {
  const before = await page.evaluate(panels);
  assert.equal(before.connection, "open", "the first test left the page connected");
  const downAt = ms();
  await server.stop("SIGKILL");
  await waitFor("the page to notice the server is gone", panels, (p) => p.connection === "reconnecting", 5_000);

  // A new process on the same port: every topic starts afresh under a new epoch.
  const port = server.port;
  let restarted;
  for (let attempt = 1; !restarted; attempt++) {
    try {
      restarted = await startServer({ binary, port, log: (line) => serverLog.push(line) });
    } catch (error) {
      if (attempt >= 20) throw new Error(`cannot restart rtbus-server on port ${port}: ${error.message}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  server = restarted;
  const upAt = ms();

  const recovered = await waitFor(
    "the page to reconnect and reload every topic from the new server",
    panels,
    (p) =>
      p.connection === "open" &&
      FIXED_TOPICS.every((id) => p[id].epoch && p[id].epoch !== before[id].epoch && p[id].resets > before[id].resets) &&
      // The activity feed follows the first session, which may have changed with the restart
      // (then it is a new subscription, not a reset one): it must be on the new server's stream.
      p.activity.epoch !== before.activity.epoch &&
      nonceOf(p.activity.epoch) === nonceOf(p.sessions.epoch) &&
      p.activity.topic === `sessions.activity:${p.firstSession}` &&
      p.sessionRows > 0,
  );
  for (const id of FIXED_TOPICS) {
    assert.equal(recovered[id].lastReset, "reset", `${id}: the resume was answered reset (new epoch), not a gap or mid-stream epoch change`);
  }
  assert.notEqual(nonceOf(recovered.sessions.epoch), nonceOf(before.sessions.epoch), "the new server names its streams with a new process nonce");
  assert.equal(recovered.problem, undefined, "no problem banner after the recovery");
  await pressureChanges(2);
  await page.screenshot({ path: SCREENSHOT_AFTER_RESTART, fullPage: true });

  // While the server was down the browser itself reports each failed WebSocket attempt; that
  // is the only error allowed, and only in that window.
  const errors = messages.filter((m) => m.type === "error" || m.type === "pageerror" || m.type === "requestfailed");
  const unexpected = errors.filter((m) => !(m.at >= downAt && m.at <= upAt + 2_000 && /^WebSocket connection to 'ws:\/\/[^']+' failed/.test(m.text)));
  assert.deepEqual(unexpected, [], "no console errors but the failed reconnect attempts while the server was down");
});
