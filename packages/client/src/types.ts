// The public types of @rtbus/client. Their JSDoc is the package's reference documentation.

import type {
  AuthenticatedData,
  CheckedTopic,
  Epoch,
  ErrorCode,
  EventOf,
  KnownTopic,
  PublishedData,
  Seq,
  SnapshotOf,
  Timestamp,
} from "@rtbus/protocol";

/**
 * Where the client's one connection stands.
 *
 * - `idle`: created, nothing started yet (`connect()`, `subscribe()` or `publish()` starts it).
 * - `connecting`: the first attempt: the WebSocket handshake and, with a token, the `auth` reply.
 * - `open`: connected and authenticated; subscriptions are (re)established, requests flow.
 * - `reconnecting`: the connection was lost; waiting for the next attempt (full-jitter
 *   backoff) or making it.
 * - `closed`: stopped for good, by `close()` or for a reason given with the transition.
 */
export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

/**
 * Why the connection left `open` (or never reached it): given with the transitions to
 * `reconnecting` and `closed`.
 */
export interface CloseInfo {
  /**
   * The WebSocket close code (e.g. `1001` going away, `4001` auth timeout), `1006` when the
   * connection dropped without a close frame or was never established, or `1000` when the
   * client closed it itself (`close()`, a rejected token, a failing handshake).
   */
  code: number;
  /** What happened, for a person: the server's close reason or the client's own account. */
  reason: string;
  /** Whether the client will try again (`reconnecting`) or has stopped (`closed`). */
  reconnect: boolean;
}

/**
 * Something went wrong that the application should hear about; delivered by the `error` event.
 *
 * - `handshake`: the connection failed `attempts` times in a row before reaching `open` (a
 *   refused upgrade such as a wrong path, a 403 for the page's Origin, or an unreachable
 *   server). A client that was never open has stopped; one that was open before keeps
 *   reconnecting (a server being restarted), and reports this once per outage.
 * - `auth`: the server rejected the token from `getToken` while connecting; the client has
 *   stopped.
 * - `token`: `getToken` threw or rejected; counted as a failed attempt.
 * - `server`: an `error` frame that answers no request of this client.
 * - `timeout`: a request of the client's own (a subscribe) went unanswered; the connection is
 *   presumed dead and replaced.
 */
export interface ClientError {
  /** Which kind of failure this is. */
  kind: "handshake" | "auth" | "token" | "server" | "timeout";
  /** What went wrong, where, and what was expected. */
  message: string;
  /** The server's error code, for `auth` and `server`. */
  code?: ErrorCode;
  /** How many attempts in a row failed, for `handshake`. */
  attempts?: number;
}

/**
 * A frame from the server that failed `decodeServerMessage` (or was binary): it was dropped,
 * never trusted. Delivered by the `protocolError` event.
 */
export interface ProtocolErrorInfo {
  /** The decoder's sentence: "at /data/seq: expected ..., found ...". */
  message: string;
  /** JSON pointer to the offending value ("" = the whole frame). */
  pointer: string;
  /** The frame as received (text), or a description of a non-text frame. */
  frame: string;
}

/** The events of a client, with their listeners' signatures (see `Client.on`). */
export interface ClientEvents {
  /** Every state transition; `why` comes with `reconnecting` and `closed`. */
  state: (state: ConnectionState, why?: CloseInfo) => void;
  /** A failure the application should hear about (see `ClientError`). */
  error: (error: ClientError) => void;
  /** A frame that failed to decode and was dropped. */
  protocolError: (error: ProtocolErrorInfo) => void;
  /** The server accepted a token (on every connect with a token, and on `refreshToken`). */
  authenticated: (who: AuthenticatedData) => void;
}

/**
 * A minimal WebSocket instance as the client uses it: the browser's `WebSocket` and the `ws`
 * package's both fit.
 */
export interface WebSocketLike {
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: number;
  /** Sends one text frame. */
  send(data: string): void;
  /** Starts the closing handshake. */
  close(code?: number, reason?: string): void;
  /** Called once the handshake succeeded. */
  onopen: ((event: any) => void) | null;
  /** Called per message; `event.data` is a string for text frames. */
  onmessage: ((event: any) => void) | null;
  /** Called once when the connection ended, with `event.code` and `event.reason`. */
  onclose: ((event: any) => void) | null;
  /** Called on a failure; `ws` passes an event with a `message`. */
  onerror: ((event: any) => void) | null;
}

/**
 * A WebSocket constructor: `globalThis.WebSocket` in browsers, or `WebSocket` from the `ws`
 * package under Node 20.
 */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** How `createClient` is configured. Only `url` is required. */
export interface ClientOptions {
  /** The server's endpoint, e.g. `"wss://example.com/api/realtime"`. Never put a token in it. */
  url: string;
  /**
   * Returns the bearer token to authenticate with; called before every connect and reconnect,
   * and by `refreshToken()`, so it can hand out a fresh one each time. The token is sent in an
   * `auth` frame, never in the URL. Leave it out (or return `undefined`) to read public topics
   * without authenticating.
   */
  getToken?: () => string | undefined | Promise<string | undefined>;
  /** The WebSocket constructor. Default `globalThis.WebSocket`; under Node 20 pass `ws`'s. */
  WebSocket?: WebSocketConstructor;
  /**
   * Reconnect delays: before attempt `n` (from 0) the client waits a random time in
   * `[0, min(maxMs, minMs * 2^n))` ("full jitter"). Default `{ minMs: 250, maxMs: 10000 }`.
   */
  backoff?: { minMs?: number; maxMs?: number };
  /**
   * Application-level ping/pong: a `ping` is sent `intervalMs` after the connection opened or
   * the last `pong` arrived, and a connection that does not answer within `timeoutMs` is
   * dropped and replaced, so a dead connection is noticed within `intervalMs + timeoutMs`.
   * Default `{ intervalMs: 10000, timeoutMs: 5000 }`; `false` turns it off.
   */
  heartbeat?: { intervalMs?: number; timeoutMs?: number } | false;
  /**
   * How long a request (auth, subscribe, unsubscribe, publish) and the whole connect (handshake
   * plus auth) may take before they fail. Default 10000.
   */
  requestTimeoutMs?: number;
  /**
   * After this many attempts in a row that fail before `open`, the client reports an `error` of
   * kind `handshake`. If it was never open it stops then instead of retrying forever (a wrong
   * URL or a refused Origin does not get better); if it was, it keeps reconnecting with backoff.
   * Default 5; `Infinity` never reports or stops.
   */
  handshakeAttempts?: number;
}

/** Where a published event went: the `epoch` and `seq` subscribers see on the `event`. */
export type Published = PublishedData;

/** The facts of one `snapshot` or `event` frame, given to the subscription's callbacks. */
export interface DeliveryMeta<T extends string = string> {
  /** The topic. */
  topic: T;
  /** The topic's stream; `seq` means something only together with it. */
  epoch: Epoch;
  /** The event's `seq`, or for a snapshot the `seq` of the last event folded into it. */
  seq: Seq;
  /** When the server sent the frame. */
  emittedAt: Timestamp;
  /** `true` on events re-sent because the subscription resumed after a reconnect. */
  isReplay: boolean;
}

/**
 * Why a subscription's state was discarded (`onReset`); a fresh snapshot follows.
 *
 * - `reset`: the server did not honour the resume after a reconnect (another epoch, e.g. the
 *   server restarted, or its history no longer holds the missed events).
 * - `gap`: an event's `seq` skipped ahead of the last one seen.
 * - `epoch`: an event of another stream arrived mid-stream.
 */
export interface ResetInfo {
  /** What made the client discard the state. */
  reason: "reset" | "gap" | "epoch";
  /** The details, for a person. */
  message: string;
}

/**
 * Why a subscription ended for good (`onEnd`, `Subscription.error`).
 *
 * `code` is the server's: `forbidden`/`unauthorized` when a re-authentication ended it or a
 * subscribe was refused, or any other error code that refused the subscribe (`unknown_topic`,
 * `limit_exceeded`, ...). `closed` means the client was closed.
 */
export interface EndInfo {
  /** The server's error code, or `closed`. */
  code: ErrorCode | "closed";
  /** The details, for a person. */
  message: string;
}

/** What `subscribe` does with a topic's frames. Every callback is optional. */
export interface SubscribeOptions<T extends KnownTopic> {
  /**
   * Whether to start from a snapshot of the topic's state (default `true`). With `false` the
   * state starts empty and folds only the events that follow; a resume the server does not
   * honour then reloads with a snapshot.
   */
  snapshot?: boolean;
  /** A snapshot replaced the state (first subscribe, or a reload after a reset). */
  onSnapshot?: (state: SnapshotOf<T>, meta: DeliveryMeta<T>) => void;
  /** An event arrived and was folded into `state`. */
  onEvent?: (event: EventOf<T>, state: SnapshotOf<T>, meta: DeliveryMeta<T>) => void;
  /** The state was discarded (see `ResetInfo`); a reload follows. */
  onReset?: (why: ResetInfo) => void;
  /** The subscription ended for good: refused, ended by the server, or the client closed. */
  onEnd?: (why: EndInfo) => void;
}

/**
 * Where a subscription stands.
 *
 * - `pending`: waiting for the connection or the server's answer (also after a reconnect or a
 *   reset, until the subscription is re-established).
 * - `live`: established; `state` is current up to `seq`.
 * - `ended`: over for good; `error` says why unless `unsubscribe()` ended it.
 */
export type SubscriptionStatus = "pending" | "live" | "ended";

/** One topic followed by the client, with its state kept locally. */
export interface Subscription<T extends KnownTopic> {
  /** The topic. */
  readonly topic: T;
  /**
   * The topic's state: the latest snapshot with every later event folded in by the family's
   * fold rule (the generated `foldEvent`). The family's empty state until the first snapshot.
   */
  readonly state: SnapshotOf<T>;
  /** The stream `seq` belongs to; `undefined` until the server named it, and after a reset. */
  readonly epoch: Epoch | undefined;
  /** The last `seq` folded into `state`; `undefined` until known, and after a reset. */
  readonly seq: Seq | undefined;
  /** Where the subscription stands. */
  readonly status: SubscriptionStatus;
  /** Why it ended, once `status` is `ended` for a reason other than `unsubscribe()`. */
  readonly error: EndInfo | undefined;
  /**
   * Resolves once the subscription is established the first time (its snapshot is in);
   * rejects with an `RtbusError` when the server refused it or the client closed first.
   */
  readonly ready: Promise<void>;
  /** Leaves the topic; resolves when the server confirmed it (at once when not connected). */
  unsubscribe(): Promise<void>;
}

/** An rtbus client: one WebSocket, reconnected and resumed as needed. */
export interface Client {
  /** Where the connection stands. */
  readonly state: ConnectionState;
  /** Who the connection acts as, once the server accepted a token. */
  readonly principal: AuthenticatedData | undefined;
  /** Adds a listener; returns a function that removes it. */
  on<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): () => void;
  /** Starts connecting (from `idle`; otherwise does nothing). */
  connect(): void;
  /**
   * Follows a topic; the payload types come from the topic literal (`SnapshotOf<T>`,
   * `EventOf<T>`). Starts the connection when idle. One subscription per topic: subscribing
   * again to a topic still held throws.
   */
  subscribe<T extends KnownTopic>(topic: T & CheckedTopic<T>, options?: SubscribeOptions<T>): Subscription<T>;
  /**
   * Publishes one event (needs the publisher role). Resolves with the `epoch` and `seq` it was
   * given; rejects with an `RtbusError` carrying the server's error code, `timeout`, or
   * `connection_lost` when the connection dropped after sending it (it may or may not have
   * been published). Sent when the connection is open; waits for it until the timeout.
   */
  publish<T extends KnownTopic>(topic: T & CheckedTopic<T>, payload: EventOf<T>): Promise<Published>;
  /**
   * Calls `getToken` and sends the token in an `auth` frame on the open connection, keeping
   * every subscription the principal may read. Resolves with the principal; rejects with an
   * `RtbusError` (`unauthorized`: the connection now has no principal, and the subscriptions
   * that needed one end with `onEnd`). Rejects with `not_open` unless the client is `open`: a
   * reconnect calls `getToken` by itself.
   */
  refreshToken(): Promise<AuthenticatedData>;
  /** Closes the connection for good (close code 1000) and ends every subscription. */
  close(): void;
}
