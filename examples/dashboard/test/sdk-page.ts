// The page of test/sdk-browser.test.mjs: @rtbus/client bundled for the browser (esbuild), with
// the browser's own WebSocket. It exposes `window.sdk`, small helpers puppeteer calls to make
// clients and subscriptions by name, publish, and read what each recorded (every value it
// returns is plain JSON, so `page.evaluate` can hand it back). Times are `Date.now()`, the same
// clock the test reads in Node.

import { createClient, RtbusError } from "@rtbus/client";
import type { Client, ClientOptions, KnownTopic, Subscription } from "@rtbus/client";

interface Watched {
  client: Client;
  states: Array<{ state: string; at: number; code?: number; reason?: string; reconnect?: boolean }>;
  errors: Array<{ kind: string; message: string; code?: string; attempts?: number }>;
}

interface Recorded {
  sub: Subscription<KnownTopic>;
  events: Array<{ seq: number; epoch: string; replay: boolean; event: unknown }>;
  snapshots: Array<{ seq: number; epoch: string }>;
  resets: Array<{ reason: string; message: string }>;
  ends: Array<{ code: string; message: string }>;
}

const clients = new Map<string, Watched>();
const subs = new Map<string, Recorded>();

function watched(name: string): Watched {
  const found = clients.get(name);
  if (!found) throw new Error(`no client named ${name}`);
  return found;
}

const sdk = {
  /** Whether the client runs on the page's own WebSocket (no other was passed anywhere). */
  nativeWebSocket: typeof WebSocket === "function" && /\[native code\]/.test(String(WebSocket)),

  /** Makes a client with fast test settings (`options` override them) and records its events. */
  client(name: string, url: string, options: { token?: string } & Partial<Omit<ClientOptions, "url" | "getToken">> = {}): void {
    const { token, ...rest } = options;
    const client = createClient({
      url,
      ...(token === undefined ? {} : { getToken: () => token }),
      backoff: { minMs: 20, maxMs: 200 },
      requestTimeoutMs: 3_000,
      heartbeat: false,
      ...rest,
    });
    const entry: Watched = { client, states: [], errors: [] };
    client.on("state", (state, why) => entry.states.push({ state, at: Date.now(), ...why }));
    client.on("error", (error) => entry.errors.push({ ...error }));
    clients.set(name, entry);
  },

  connect(name: string): void {
    watched(name).client.connect();
  },

  /** Subscribes client `name` to `topic` and resolves once its first snapshot is in. */
  async subscribe(name: string, subName: string, topic: string): Promise<void> {
    const recorded: Partial<Recorded> & Omit<Recorded, "sub"> = { events: [], snapshots: [], resets: [], ends: [] };
    recorded.sub = watched(name).client.subscribe(topic as KnownTopic, {
      onEvent: (event, _state, meta) => recorded.events.push({ seq: meta.seq, epoch: meta.epoch, replay: meta.isReplay, event }),
      onSnapshot: (_state, meta) => recorded.snapshots.push({ seq: meta.seq, epoch: meta.epoch }),
      onReset: (why) => recorded.resets.push({ reason: why.reason, message: why.message }),
      onEnd: (why) => recorded.ends.push({ code: why.code, message: why.message }),
    });
    subs.set(subName, recorded as Recorded);
    await recorded.sub.ready;
  },

  /** Publishes each payload in turn (awaiting each `published`); resolves with the last seq. */
  async publish(name: string, topic: string, payloads: unknown[], { together = false } = {}): Promise<number> {
    const { client } = watched(name);
    const publish = (payload: unknown) => client.publish(topic as KnownTopic, payload as never);
    if (together) return Math.max(...(await Promise.all(payloads.map(publish))).map((p) => p.seq));
    let last = 0;
    for (const payload of payloads) last = (await publish(payload)).seq;
    return last;
  },

  /** What a fresh subscriber of `topic` gets as its snapshot now (a client of its own). */
  async fresh(url: string, topic: string, token: string): Promise<{ state: unknown; epoch: string; seq: number }> {
    const reader = createClient({ url, getToken: () => token, heartbeat: false, requestTimeoutMs: 3_000 });
    try {
      const sub = reader.subscribe(topic as KnownTopic);
      await sub.ready;
      return { state: sub.state, epoch: sub.epoch ?? "", seq: sub.seq ?? 0 };
    } finally {
      reader.close();
    }
  },

  /** A client's connection state and every `state` and `error` event it emitted. */
  view(name: string) {
    const { client, states, errors } = watched(name);
    return { state: client.state, states, errors };
  },

  /** A subscription's status, epoch, seq, state and every callback it got. */
  sub(subName: string) {
    const recorded = subs.get(subName);
    if (!recorded) throw new Error(`no subscription named ${subName}`);
    const { sub, events, snapshots, resets, ends } = recorded;
    return { status: sub.status, epoch: sub.epoch, seq: sub.seq, state: sub.state as unknown, events, snapshots, resets, ends };
  },

  /** Tries a publish and a subscribe on client `name`; says how each failed. */
  async refusals(name: string) {
    const { client } = watched(name);
    const how = (error: unknown) => (error instanceof RtbusError ? `RtbusError ${error.code}` : `other: ${String(error)}`);
    let publish = "resolved";
    let subscribe = "returned";
    try {
      await client.publish("custom.x" as KnownTopic, 1 as never);
    } catch (error) {
      publish = how(error);
    }
    try {
      client.subscribe("custom.x" as KnownTopic);
    } catch (error) {
      subscribe = how(error);
    }
    return { publish, subscribe };
  },

  close(name: string): void {
    clients.get(name)?.client.close();
  },

  closeAll(): void {
    for (const { client } of clients.values()) client.close();
  },
};

declare global {
  interface Window {
    sdk: typeof sdk;
  }
}
window.sdk = sdk;
