// The rtbus live dashboard: one @rtbus/client connection, four topics, plain DOM.
//
// Sessions (`sessions.state`), the activity feed of the first session
// (`sessions.activity:<id>`), terminals (`terminals.state`) and drive pressure gauges
// (`drives.pressure`), each rendered from the subscription's folded state whenever a snapshot
// or an event arrives. The server is `?server=ws://host:port/api/realtime`, by default port
// 8080 on the page's own host (where `rtbus-server --demo` listens).
//
// Every panel carries what it shows as data attributes (`data-epoch`, `data-seq`,
// `data-updates`, `data-resets`), so a person can inspect them and the browser test can wait
// for them.

import { createClient } from "@rtbus/client";
import type { Client, ClientError, CloseInfo, ConnectionState, DeliveryMeta, FamilyTopic, ResetInfo, Subscription } from "@rtbus/client";
import type { ActivityEntry, DrivePressure, SessionState, TerminalState } from "@rtbus/protocol";

type ActivityTopic = FamilyTopic<"sessions.activity">;

const params = new URLSearchParams(location.search);
const serverUrl = params.get("server") ?? `ws://${location.hostname || "127.0.0.1"}:8080/api/realtime`;

/** The element with `id`; the page is broken without it, so say which one is missing. */
function byId(id: string): HTMLElement {
  const element = document.getElementById(id);
  if (!element) throw new Error(`dashboard: index.html has no element #${id}`);
  return element;
}

/** A new element with a class and text. */
function el(tag: string, className?: string, text?: string): HTMLElement {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  return element;
}

/** A table cell holding `child`. */
function cell(child: HTMLElement): HTMLElement {
  const td = document.createElement("td");
  td.append(child);
  return td;
}

function time(timestamp: string): string {
  const date = new Date(timestamp);
  return Number.isNaN(date.getTime()) ? timestamp : date.toLocaleTimeString();
}

function percent(ratio: number): string {
  return `${(ratio * 100).toFixed(1)} %`;
}

function cssPercent(ratio: number): string {
  return `${(Math.min(1, Math.max(0, ratio)) * 100).toFixed(1)}%`;
}

/** Bookkeeping shown on a panel and in its footer line: stream, position, counters. */
function track(panel: HTMLElement, meta: DeliveryMeta | undefined): void {
  const updates = Number(panel.dataset.updates ?? "0") + 1;
  panel.dataset.updates = String(updates);
  if (meta) {
    panel.dataset.epoch = meta.epoch;
    panel.dataset.seq = String(meta.seq);
  }
  const footer = panel.querySelector(".meta");
  if (footer) {
    const resets = panel.dataset.resets ?? "0";
    footer.textContent = `${panel.dataset.topic ?? ""} · epoch ${panel.dataset.epoch ?? "?"} · seq ${panel.dataset.seq ?? "?"} · updates ${updates} · resets ${resets}`;
  }
}

function countReset(panel: HTMLElement, why: ResetInfo): void {
  panel.dataset.resets = String(Number(panel.dataset.resets ?? "0") + 1);
  panel.dataset.lastReset = why.reason;
}

// ---- Rendering, one function per panel, each from the whole folded state ----

function renderSessions(sessions: readonly SessionState[]): void {
  const list = byId("sessions-list");
  list.replaceChildren(
    ...sessions.map((session) => {
      const item = el("li", `session status-${session.status}`);
      item.dataset.sessionId = session.sessionId;
      item.append(
        el("span", "badge", session.status),
        el("span", "title", session.title ?? session.sessionId),
        el("span", "id", session.sessionId),
        el("time", "when", time(session.updatedAt)),
      );
      return item;
    }),
  );
  if (sessions.length === 0) list.append(el("li", "empty", "No sessions yet."));
  byId("sessions").dataset.count = String(sessions.length);
}

function renderActivity(sessionId: string | undefined, entries: readonly ActivityEntry[]): void {
  byId("activity-of").textContent = sessionId ?? "no session";
  const list = byId("activity-list");
  const latest = entries.slice(-20).reverse();
  list.replaceChildren(
    ...latest.map((entry) => {
      const item = el("li", `entry kind-${entry.kind}`);
      item.append(el("time", "when", time(entry.at)), el("span", "kind", entry.kind), el("span", "text", entry.text));
      return item;
    }),
  );
  if (latest.length === 0) list.append(el("li", "empty", "Nothing yet: the demo writes activity while a session runs."));
  byId("activity").dataset.count = String(entries.length);
}

function renderTerminals(terminals: readonly TerminalState[]): void {
  const body = byId("terminals-body");
  body.replaceChildren(
    ...terminals.map((terminal) => {
      const row = el("tr", `terminal status-${terminal.status}`);
      row.dataset.terminalId = terminal.terminalId;
      const exit = terminal.exitCode === undefined ? "" : `exit ${terminal.exitCode}`;
      row.append(
        el("td", "id", terminal.terminalId),
        el("td", "title", terminal.title ?? ""),
        cell(el("span", "badge", terminal.status)),
        el("td", "size", `${terminal.cols}×${terminal.rows}`),
        el("td", "exit", exit),
      );
      return row;
    }),
  );
  if (terminals.length === 0) {
    const row = el("tr", "empty");
    const cell = el("td", undefined, "No terminals yet.");
    cell.setAttribute("colspan", "5");
    row.append(cell);
    body.append(row);
  }
  byId("terminals").dataset.count = String(terminals.length);
}

/** Gauges are kept per drive and updated in place, so a value can be watched changing. */
function renderDrives(drives: readonly DrivePressure[]): void {
  const box = byId("drives-list");
  const seen = new Set<string>();
  for (const drive of drives) {
    seen.add(drive.drive);
    let gauge = box.querySelector<HTMLElement>(`[data-drive="${CSS.escape(drive.drive)}"]`);
    if (!gauge) {
      gauge = el("div", "gauge");
      gauge.dataset.drive = drive.drive;
      const bar = el("div", "bar");
      bar.append(el("div", "fill"), el("div", "threshold"));
      gauge.append(el("span", "name", drive.drive), bar, el("span", "value"));
      box.append(gauge);
    }
    const hot = drive.pressure >= drive.threshold;
    gauge.classList.toggle("hot", hot);
    gauge.dataset.pressure = String(drive.pressure);
    gauge.dataset.threshold = String(drive.threshold);
    (gauge.querySelector(".fill") as HTMLElement).style.width = cssPercent(drive.pressure);
    (gauge.querySelector(".threshold") as HTMLElement).style.left = cssPercent(drive.threshold);
    (gauge.querySelector(".value") as HTMLElement).textContent = `${percent(drive.pressure)}${hot ? " ⚠" : ""}`;
    gauge.title = `${drive.drive}: ${percent(drive.pressure)} full, under pressure from ${percent(drive.threshold)}`;
  }
  for (const gauge of Array.from(box.querySelectorAll<HTMLElement>(".gauge"))) {
    if (!seen.has(gauge.dataset.drive ?? "")) gauge.remove();
  }
  byId("drives").dataset.count = String(drives.length);
}

// ---- The connection and the subscriptions ----

function showConnection(state: ConnectionState, why?: CloseInfo): void {
  document.documentElement.dataset.connection = state;
  const badge = byId("connection");
  badge.dataset.state = state;
  badge.textContent = why && state !== "open" ? `${state} (${why.code}: ${why.reason || "no reason given"})` : state;
}

function showProblem(text: string | undefined, canRetry: boolean): void {
  const box = byId("problem");
  box.hidden = text === undefined;
  byId("problem-text").textContent = text ?? "";
  byId("retry").hidden = !canRetry;
}

let client: Client | undefined;
let activity: Subscription<ActivityTopic> | undefined;

/** Follows the activity of `sessionId` (the first session listed), switching when it changes. */
function followActivity(current: Client, sessionId: string | undefined): void {
  const topic = sessionId === undefined ? undefined : (`sessions.activity:${sessionId}` as ActivityTopic);
  if (activity ? activity.topic === topic && activity.status !== "ended" : topic === undefined) return;
  const previous = activity;
  activity = undefined;
  void previous?.unsubscribe().catch(() => {});
  const panel = byId("activity");
  panel.dataset.topic = topic ?? "";
  renderActivity(sessionId, []);
  if (topic === undefined) return;
  activity = current.subscribe(topic, {
    onSnapshot: (state, meta) => {
      renderActivity(sessionId, state.entries);
      track(panel, meta);
    },
    onEvent: (_event, state, meta) => {
      renderActivity(sessionId, state.entries);
      track(panel, meta);
    },
    onReset: (why) => countReset(panel, why),
    onEnd: (why) => {
      if (why.code !== "closed") showProblem(`${topic} ended: ${why.message}`, false);
    },
  });
}

function start(): void {
  showProblem(undefined, false);
  byId("server").textContent = serverUrl;
  const current = createClient({
    url: serverUrl,
    backoff: { minMs: 100, maxMs: 2_000 },
    heartbeat: { intervalMs: 10_000, timeoutMs: 5_000 },
    handshakeAttempts: 10,
  });
  client = current;
  current.on("state", (state, why) => {
    showConnection(state, why);
    if (state === "open") showProblem(undefined, false);
  });
  current.on("error", (error: ClientError) => {
    const stopped = error.kind === "handshake" || error.kind === "auth";
    const hint =
      error.kind === "handshake"
        ? ` Is \`rtbus-server --demo\` running at ${serverUrl}? A page served from another host than loopback needs \`--allow-origin\`.`
        : "";
    showProblem(`${error.kind}: ${error.message}.${hint}`, stopped);
  });
  current.on("protocolError", (info) => {
    // A frame the decoder refused is a bug somewhere: make it loud.
    console.error(`rtbus protocol error: ${info.message}`, info.frame);
    showProblem(`A frame from the server was dropped: ${info.message}`, false);
  });

  const sessions = byId("sessions");
  current.subscribe("sessions.state", {
    onSnapshot: (state, meta) => {
      renderSessions(state.sessions);
      track(sessions, meta);
      followActivity(current, state.sessions[0]?.sessionId);
    },
    onEvent: (_event, state, meta) => {
      renderSessions(state.sessions);
      track(sessions, meta);
      followActivity(current, state.sessions[0]?.sessionId);
    },
    onReset: (why) => countReset(sessions, why),
  });

  const terminals = byId("terminals");
  current.subscribe("terminals.state", {
    onSnapshot: (state, meta) => {
      renderTerminals(state.terminals);
      track(terminals, meta);
    },
    onEvent: (_event, state, meta) => {
      renderTerminals(state.terminals);
      track(terminals, meta);
    },
    onReset: (why) => countReset(terminals, why),
  });

  const drives = byId("drives");
  current.subscribe("drives.pressure", {
    onSnapshot: (state, meta) => {
      renderDrives(state.drives);
      track(drives, meta);
    },
    onEvent: (_event, state, meta) => {
      renderDrives(state.drives);
      track(drives, meta);
    },
    onReset: (why) => countReset(drives, why),
  });
}

byId("retry").addEventListener("click", () => {
  client?.close();
  activity = undefined;
  start();
});

start();
