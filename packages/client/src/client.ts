// The client: one WebSocket, its state machine, request correlation, heartbeat and the
// subscriptions it keeps in step with the server (resume, reset, re-sync).

import {
  SUBPROTOCOL,
  closeCodeInfo,
  decodeServerMessage,
  emptySnapshot,
  familyOf,
  foldEvent,
} from "@rtbus/protocol";
import type {
  AuthenticatedData,
  Delivery,
  ErrorCode,
  FamilyName,
  KnownTopic,
  ServerMessage,
  SubscribedTopic,
  SubscriptionRequest,
} from "@rtbus/protocol";
import type {
  Client,
  ClientEvents,
  ClientOptions,
  CloseInfo,
  ConnectionState,
  EndInfo,
  Published,
  ResetInfo,
  SubscribeOptions,
  Subscription,
  SubscriptionStatus,
  WebSocketLike,
} from "./types.js";

/**
 * The error a request rejects with: the server's `error` frame (`code` is its error code,
 * `topic` the topic it names), or one of the client's own codes: `timeout` (no answer within
 * `requestTimeoutMs`), `connection_lost` (the connection dropped after the request was sent),
 * `closed` (the client is closed), `not_open` (`refreshToken` while not connected).
 */
export class RtbusError extends Error {
  /** The server's error code, or the client's own (see the class description). */
  readonly code: ErrorCode | "timeout" | "connection_lost" | "closed" | "not_open";
  /** The topic the error concerns, when there is one. */
  readonly topic: string | undefined;

  /** Makes an error; `message` says what went wrong and where. */
  constructor(code: RtbusError["code"], message: string, topic?: string) {
    super(message);
    this.name = "RtbusError";
    this.code = code;
    this.topic = topic;
  }
}

type Reply = (error: RtbusError | undefined, message?: ServerMessage) => void;

interface Pending {
  frame: string;
  sent: boolean;
  timer: ReturnType<typeof setTimeout>;
  reply: Reply;
}

/** A subscription as the client keeps it; handed out typed as `Subscription<T>`. */
interface Sub {
  topic: string;
  state: unknown;
  epoch: string | undefined;
  seq: number | undefined;
  status: SubscriptionStatus;
  error: EndInfo | undefined;
  ready: Promise<void>;
  unsubscribe(): Promise<void>;
  // Internal: the family, the options, what the subscription waits for on this connection,
  // the id of its subscribe request, and whether that request asked for a snapshot.
  family: FamilyName;
  options: SubscribeOptions<KnownTopic>;
  phase: "idle" | "ack" | "snapshot" | "live";
  requestId: string | undefined;
  askedSnapshot: boolean;
  reload: boolean;
  settle: (error?: RtbusError) => void;
}

const noop = (): void => {};

/** Calls an application callback; an exception is rethrown outside the client's own code. */
function call<A extends unknown[]>(fn: ((...args: A) => void) | undefined, ...args: A): void {
  try {
    fn?.(...args);
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}

/**
 * Creates a client for one rtbus server. It connects on `connect()` or on the first
 * `subscribe`/`publish`, and from then on keeps one WebSocket open: it reconnects with
 * full-jitter backoff, resumes every subscription after the last `seq` it saw, reloads a topic
 * whose resume the server did not honour, and stops (saying why) on close codes that say not
 * to reconnect.
 *
 * @example
 * const client = createClient({ url: "wss://example.com/api/realtime", getToken: async () => token });
 * const sessions = client.subscribe("sessions.state", { onEvent: (event, state) => render(state) });
 */
export function createClient(options: ClientOptions): Client {
  const Socket = options.WebSocket ?? (globalThis as { WebSocket?: ClientOptions["WebSocket"] }).WebSocket;
  if (!Socket) {
    throw new TypeError("createClient: no WebSocket constructor; pass one as options.WebSocket (under Node 20: the `ws` package)");
  }
  const minMs = options.backoff?.minMs ?? 250;
  const maxMs = options.backoff?.maxMs ?? 10_000;
  const heartbeat = options.heartbeat === false ? undefined : { intervalMs: 10_000, timeoutMs: 5_000, ...options.heartbeat };
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  const maxFailures = options.handshakeAttempts ?? 5;

  const listeners: { [E in keyof ClientEvents]: Set<ClientEvents[E]> } = {
    state: new Set(),
    error: new Set(),
    protocolError: new Set(),
    authenticated: new Set(),
  };
  const emit = <E extends keyof ClientEvents>(event: E, ...args: Parameters<ClientEvents[E]>): void => {
    for (const listener of listeners[event]) call(listener as (...a: typeof args) => void, ...args);
  };

  let state: ConnectionState = "idle";
  let principal: AuthenticatedData | undefined;
  let ws: WebSocketLike | undefined;
  let opened = false; // whether the current socket reached `open`
  let everOpen = false; // whether any socket did
  let generation = 0; // guards a getToken that resolves after close() or a newer attempt
  let attempt = 0; // backoff exponent
  let failures = 0; // attempts in a row that failed before `open`
  let lastError = "";
  let nextId = 0;
  let pingId: string | undefined;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let connectTimer: ReturnType<typeof setTimeout> | undefined;
  let pingTimer: ReturnType<typeof setTimeout> | undefined;
  let pongTimer: ReturnType<typeof setTimeout> | undefined;
  const pending = new Map<string, Pending>();
  const subs = new Map<string, Sub>();
  const global = globalThis as {
    addEventListener?: (type: string, fn: () => void) => void;
    removeEventListener?: (type: string, fn: () => void) => void;
    document?: {
      visibilityState?: string;
      addEventListener?: (type: string, fn: () => void) => void;
      removeEventListener?: (type: string, fn: () => void) => void;
    };
  };

  function setState(next: ConnectionState, why?: CloseInfo): void {
    if (next === state && !why) return;
    state = next;
    emit("state", next, why);
  }

  // --- requests ---

  function transmit(entry: Pending): void {
    if (ws?.readyState !== 1) return;
    ws.send(entry.frame);
    entry.sent = true;
  }

  /** Sends a request now (`direct`, or when open) or when the connection opens. */
  function send(type: string, data: unknown, reply: Reply, direct = false): string {
    const id = String(++nextId);
    const entry: Pending = {
      frame: JSON.stringify({ type, id, data }),
      sent: false,
      timer: setTimeout(() => settle(id, new RtbusError("timeout", `${type} ${id}: no answer within ${timeoutMs} ms`)), timeoutMs),
      reply,
    };
    pending.set(id, entry);
    if (direct || state === "open") transmit(entry);
    return id;
  }

  function settle(id: string, error: RtbusError | undefined, message?: ServerMessage): void {
    const entry = pending.get(id);
    if (!entry) return;
    pending.delete(id);
    clearTimeout(entry.timer);
    entry.reply(error, message);
  }

  function request<T>(type: string, data: unknown, direct = false): Promise<T> {
    if (state === "closed") return Promise.reject(new RtbusError("closed", `${type}: the client is closed`));
    connect();
    return new Promise<T>((resolve, reject) => {
      send(type, data, (error, message) => (error ? reject(error) : resolve((message as unknown as { data: T }).data)), direct);
    });
  }

  // --- connection ---

  function connect(): void {
    if (state !== "idle") return;
    setState("connecting");
    global.addEventListener?.("online", wake);
    global.document?.addEventListener?.("visibilitychange", visible);
    void open();
  }

  async function open(): Promise<void> {
    const mine = ++generation;
    lastError = "";
    let token: string | undefined;
    try {
      token = options.getToken ? await within(options.getToken(), timeoutMs, "getToken") : undefined;
    } catch (error) {
      if (mine !== generation || state === "closed") return;
      const message = `getToken failed: ${String((error as Error)?.message ?? error)}`;
      emit("error", { kind: "token", message });
      return failed(1006, message);
    }
    if (mine !== generation || state === "closed") return;
    let socket: WebSocketLike;
    try {
      socket = new Socket!(options.url, SUBPROTOCOL);
    } catch (error) {
      failures = maxFailures; // a URL the constructor refuses never gets better
      return failed(1006, `cannot open ${options.url}: ${String((error as Error)?.message ?? error)}`);
    }
    ws = socket;
    opened = false;
    connectTimer = setTimeout(() => lost(socket, 1006, `not connected and authenticated within ${timeoutMs} ms`), timeoutMs);
    socket.onerror = (event: { message?: string; error?: { message?: string } } | undefined) => {
      lastError = event?.message ?? event?.error?.message ?? "WebSocket error";
    };
    socket.onclose = (event: { code?: number; reason?: string }) => lost(socket, event.code ?? 1006, event.reason ?? "");
    socket.onmessage = (event: { data: unknown }) => receive(socket, event.data);
    socket.onopen = () => {
      if (token === undefined) return established();
      send("auth", { token }, (error, message) => {
        if (socket !== ws) return;
        if (!error) {
          authenticated((message as { data: AuthenticatedData }).data);
          return established();
        }
        if (error.code === "connection_lost" || error.code === "closed") return;
        if (error.code === "timeout") return lost(socket, 1006, error.message);
        emit("error", { kind: "auth", code: error.code as ErrorCode, message: `the server rejected the token: ${error.message}` });
        stop({ code: 1000, reason: `the server rejected the token (${error.code}): ${error.message}`, reconnect: false });
      }, true);
    };
  }

  function authenticated(who: AuthenticatedData): void {
    principal = who;
    emit("authenticated", who);
  }

  function established(): void {
    clearTimeout(connectTimer);
    opened = everOpen = true;
    failures = 0;
    attempt = 0;
    setState("open");
    schedulePing();
    for (const sub of subs.values()) subscribeNow(sub);
    for (const entry of pending.values()) if (!entry.sent) transmit(entry);
  }

  /** Detaches a socket: nothing it reports reaches the client any more. */
  function detach(socket: WebSocketLike, graceful: boolean): void {
    socket.onopen = socket.onmessage = socket.onclose = null;
    socket.onerror = noop; // `ws` throws on an "error" event nobody listens to
    const terminate = (socket as { terminate?: () => void }).terminate;
    try {
      if (!graceful && typeof terminate === "function") terminate.call(socket);
      else socket.close(1000);
    } catch {
      // Closing a socket that is already gone: nothing left to do.
    }
  }

  /** Forgets the current socket and everything tied to it. */
  function release(graceful: boolean): void {
    if (ws) detach(ws, graceful);
    ws = undefined;
    clearTimeout(connectTimer);
    clearTimeout(pingTimer);
    clearTimeout(pongTimer);
    pingId = undefined;
    for (const [id, entry] of pending) {
      if (entry.sent) settle(id, new RtbusError("connection_lost", "the connection dropped before the answer arrived"));
    }
    for (const sub of subs.values()) {
      sub.phase = "idle";
      sub.status = "pending";
    }
  }

  /** The one way a connection ends, whoever noticed it. */
  function lost(socket: WebSocketLike, code: number, reason: string): void {
    if (socket !== ws) return;
    const wasOpen = opened;
    opened = false;
    release(false);
    if (state === "closed") return;
    const info = closeCodeInfo(code);
    if (info && !info.reconnect) {
      return stop({ code, reason: reason || info.description, reconnect: false });
    }
    if (!wasOpen) return failed(code, reason || lastError || "the connection closed before it opened");
    retry({ code, reason: reason || info?.description || lastError || "the connection dropped", reconnect: true });
  }

  /**
   * An attempt failed before `open`. After `maxFailures` in a row it is reported; a client
   * that was never open stops then (a wrong URL, a refused Origin), one that was keeps trying
   * (a server being restarted or deployed).
   */
  function failed(code: number, reason: string): void {
    failures += 1;
    if (failures >= maxFailures && (failures === maxFailures || !everOpen)) {
      const message = `could not connect to ${options.url} in ${failures} attempts in a row; the last: ${reason}`;
      emit("error", { kind: "handshake", attempts: failures, message });
      if (!everOpen) return stop({ code, reason: message, reconnect: false });
    }
    retry({ code, reason, reconnect: true });
  }

  function retry(why: CloseInfo): void {
    setState("reconnecting", why);
    const delay = Math.random() * Math.min(maxMs, minMs * 2 ** attempt);
    attempt += 1;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void open();
    }, delay);
  }

  function stop(why: CloseInfo): void {
    if (state === "closed") return;
    state = "closed";
    generation += 1;
    for (const id of [...pending.keys()]) settle(id, new RtbusError("closed", `the client closed: ${why.reason}`));
    release(true);
    clearTimeout(retryTimer);
    retryTimer = undefined;
    global.removeEventListener?.("online", wake);
    global.document?.removeEventListener?.("visibilitychange", visible);
    emit("state", "closed", why);
    for (const sub of [...subs.values()]) end(sub, { code: "closed", message: why.reason });
  }

  /** A browser came back online or to the foreground: try now instead of waiting. */
  function wake(): void {
    if (state === "reconnecting" && retryTimer !== undefined) {
      clearTimeout(retryTimer);
      retryTimer = undefined;
      void open();
    } else if (state === "open") {
      ping();
    }
  }

  function visible(): void {
    if (global.document?.visibilityState === "visible") wake();
  }

  // --- heartbeat ---

  function schedulePing(): void {
    clearTimeout(pingTimer);
    if (heartbeat) pingTimer = setTimeout(ping, heartbeat.intervalMs);
  }

  function ping(): void {
    const socket = ws;
    if (!heartbeat || !socket || state !== "open" || pingId !== undefined) return;
    clearTimeout(pingTimer);
    pingId = `ping-${++nextId}`;
    pongTimer = setTimeout(
      () => lost(socket, 1006, `no pong within ${heartbeat.timeoutMs} ms: the connection is stale`),
      heartbeat.timeoutMs,
    );
    socket.send(JSON.stringify({ type: "ping", id: pingId }));
  }

  // --- frames ---

  function receive(socket: WebSocketLike, data: unknown): void {
    if (socket !== ws) return;
    if (typeof data !== "string") {
      emit("protocolError", { message: "a binary frame: rtbus servers send only text frames", pointer: "", frame: "(binary frame)" });
      return;
    }
    const decoded = decodeServerMessage(data);
    if (!decoded.ok) {
      emit("protocolError", { message: decoded.error.message, pointer: decoded.error.pointer, frame: data });
      return;
    }
    const message = decoded.value;
    switch (message.type) {
      case "pong":
        if (message.id !== undefined && message.id === pingId) {
          clearTimeout(pongTimer);
          pingId = undefined;
          schedulePing();
        }
        return;
      case "snapshot":
      case "event": {
        const sub = subs.get(message.data.topic);
        if (sub) (message.type === "snapshot" ? snapshot : event)(sub, message.data);
        return;
      }
      case "error":
        if (message.id !== undefined && pending.has(message.id)) {
          const { code, message: text, topic } = message.data;
          settle(message.id, new RtbusError(code, text, topic));
        } else {
          emit("error", { kind: "server", code: message.data.code, message: message.data.message });
        }
        return;
      case "unsubscribed":
        if (message.id === undefined) {
          const code = message.data.reason ?? "forbidden";
          for (const topic of message.data.topics) {
            const sub = subs.get(topic);
            if (sub) end(sub, { code, message: `the server ended the subscription to ${topic} (${code})` });
          }
          return;
        }
        break;
      default:
        break;
    }
    if (message.id !== undefined) settle(message.id, undefined, message);
  }

  // --- subscriptions ---

  function subscribeNow(sub: Sub): void {
    const request: SubscriptionRequest = { topic: sub.topic };
    sub.askedSnapshot = sub.reload || sub.options.snapshot !== false;
    if (!sub.askedSnapshot) request.snapshot = false;
    if (sub.epoch !== undefined && sub.seq !== undefined) {
      request.epoch = sub.epoch;
      request.resumeAfter = sub.seq;
    }
    sub.phase = "ack";
    sub.status = "pending";
    const id = send("subscribe", { topics: [request] }, (error, message) => {
      if (subs.get(sub.topic) !== sub || sub.requestId !== id) return;
      if (!error) {
        const entry = (message as { data: { topics: SubscribedTopic[] } }).data.topics[0];
        if (entry) return subscribed(sub, entry);
        error = new RtbusError("bad_request", `subscribed ${id}: no entry for ${sub.topic}`, sub.topic);
      }
      // The next connection subscribes again; close() ends the subscription itself.
      if (error.code === "connection_lost" || error.code === "closed") return;
      if (error.code === "timeout") {
        emit("error", { kind: "timeout", message: `${error.message}; replacing the connection` });
        if (ws) lost(ws, 1006, error.message);
        return;
      }
      end(sub, { code: error.code as EndInfo["code"], message: error.message });
    });
    sub.requestId = id;
  }

  function subscribed(sub: Sub, entry: SubscribedTopic): void {
    const before = sub.epoch === undefined ? "" : ` at ${sub.epoch}/${String(sub.seq)}`;
    sub.epoch = entry.epoch;
    if (entry.start === "snapshot") {
      sub.phase = "snapshot";
    } else if (entry.start === "live") {
      sub.seq = entry.seq;
      sub.state = emptySnapshot(sub.family);
      live(sub);
    } else if (entry.start === "resumed") {
      live(sub);
    } else {
      discard(sub, {
        reason: "reset",
        message: `the server did not resume ${sub.topic}${before}; its stream is now ${entry.epoch} at ${entry.seq}`,
      });
      if (sub.askedSnapshot) {
        sub.epoch = entry.epoch;
        sub.phase = "snapshot";
      } else {
        subscribeNow(sub);
      }
    }
  }

  function live(sub: Sub): void {
    sub.phase = "live";
    sub.status = "live";
    sub.reload = false;
    sub.settle();
  }

  /** Drops the state; the next subscribe asks for a snapshot and does not resume. */
  function discard(sub: Sub, why: ResetInfo): void {
    sub.state = emptySnapshot(sub.family);
    sub.epoch = sub.seq = undefined;
    sub.reload = true;
    call(sub.options.onReset, why);
  }

  function resync(sub: Sub, why: ResetInfo): void {
    discard(sub, why);
    if (state === "open") subscribeNow(sub);
    else sub.phase = "idle";
  }

  function meta(data: Delivery): Parameters<NonNullable<SubscribeOptions<KnownTopic>["onSnapshot"]>>[1] {
    const { topic, epoch, seq, emittedAt, isReplay } = data;
    return { topic: topic as KnownTopic, epoch, seq, emittedAt, isReplay };
  }

  function snapshot(sub: Sub, data: Delivery): void {
    if (sub.phase !== "snapshot" && sub.phase !== "live") return;
    sub.state = data.payload;
    sub.epoch = data.epoch;
    sub.seq = data.seq;
    live(sub);
    call(sub.options.onSnapshot as (state: unknown, meta: unknown) => void, sub.state, meta(data));
  }

  function event(sub: Sub, data: Delivery): void {
    if (sub.phase !== "live" || sub.seq === undefined) return;
    if (data.epoch !== sub.epoch) {
      return resync(sub, { reason: "epoch", message: `${sub.topic}: an event of stream ${data.epoch} on stream ${String(sub.epoch)}` });
    }
    if (data.seq <= sub.seq) return; // already folded in
    if (data.seq !== sub.seq + 1) {
      return resync(sub, { reason: "gap", message: `${sub.topic}: seq ${data.seq} after ${sub.seq}` });
    }
    sub.state = (foldEvent as (f: FamilyName, s: unknown, e: unknown) => unknown)(sub.family, sub.state, data.payload);
    sub.seq = data.seq;
    call(sub.options.onEvent as (event: unknown, state: unknown, meta: unknown) => void, data.payload, sub.state, meta(data));
  }

  function end(sub: Sub, why: EndInfo): void {
    if (subs.get(sub.topic) === sub) subs.delete(sub.topic);
    sub.status = "ended";
    sub.phase = "idle";
    sub.error = why;
    sub.settle(new RtbusError(why.code, why.message, sub.topic));
    call(sub.options.onEnd, why);
  }

  function subscribe<T extends KnownTopic>(topic: T, subOptions: SubscribeOptions<T> = {}): Subscription<T> {
    if (state === "closed") throw new RtbusError("closed", `subscribe ${topic}: the client is closed`, topic);
    if (subs.has(topic)) throw new Error(`subscribe ${topic}: already subscribed; unsubscribe first`);
    const family = familyOf(topic)?.name;
    if (!family) throw new RtbusError("unknown_topic", `subscribe ${topic}: no topic family of the catalog matches it`, topic);
    let settleReady: (error?: RtbusError) => void = noop;
    const ready = new Promise<void>((resolve, reject) => {
      settleReady = (error) => {
        settleReady = noop;
        if (error) reject(error);
        else resolve();
      };
    });
    ready.catch(noop); // an application that never awaits `ready` hears of failures via onEnd
    const sub: Sub = {
      topic,
      state: emptySnapshot(family),
      epoch: undefined,
      seq: undefined,
      status: "pending",
      error: undefined,
      ready,
      family,
      options: subOptions as SubscribeOptions<KnownTopic>,
      phase: "idle",
      requestId: undefined,
      askedSnapshot: true,
      reload: false,
      settle: (error) => settleReady(error),
      unsubscribe: async () => {
        if (subs.get(topic) !== sub) return;
        subs.delete(topic);
        sub.status = "ended";
        sub.phase = "idle";
        sub.settle(new RtbusError("closed", `${topic}: unsubscribed before it was established`, topic));
        if (state !== "open") return;
        // A connection that drops first has left the topic too: the next one does not subscribe.
        await request("unsubscribe", { topics: [topic] }).catch((error: RtbusError) => {
          if (error.code !== "connection_lost" && error.code !== "closed") throw error;
        });
      },
    };
    subs.set(topic, sub);
    if (state === "open") subscribeNow(sub);
    else connect();
    return sub as unknown as Subscription<T>;
  }

  return {
    get state() {
      return state;
    },
    get principal() {
      return principal;
    },
    on(event, listener) {
      listeners[event].add(listener);
      return () => void listeners[event].delete(listener);
    },
    connect,
    subscribe: subscribe as Client["subscribe"],
    publish: (topic, payload) => request<Published>("publish", { topic, payload }),
    async refreshToken() {
      if (state !== "open") throw new RtbusError("not_open", `refreshToken: the client is ${state}, not open`);
      const token = options.getToken ? await within(options.getToken(), timeoutMs, "getToken") : undefined;
      if (token === undefined) throw new RtbusError("unauthorized", "refreshToken: getToken returned no token");
      if (state !== "open") throw new RtbusError("not_open", `refreshToken: the client is ${state}, not open`);
      try {
        const who = await request<AuthenticatedData>("auth", { token }, true);
        authenticated(who);
        return who;
      } catch (error) {
        if ((error as RtbusError).code === "unauthorized") principal = undefined;
        throw error;
      }
    },
    close() {
      stop({ code: 1000, reason: "closed by the client", reconnect: false });
    },
  };
}

/** `value`, or a rejection naming `what` once `ms` pass first: a hung `getToken` must not stall
 * every (re)connect forever. */
function within<T>(value: T | Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([Promise.resolve(value), late]).finally(() => clearTimeout(timer));
}
