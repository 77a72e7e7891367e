// How a client uses the generated TypeScript. Type-level assertions prove that the topic map
// resolves payload types at compile time and that the codes are runtime values.

import {
  CloseCode,
  ENDPOINT_PATH,
  ErrorCode,
  FAMILIES,
  SUBPROTOCOL,
  closeCodeInfo,
  errorCodeInfo,
  familyOf,
} from "../../generated/typescript";
import type {
  ActivityEntry,
  EventData,
  EventOf,
  JsonValue,
  KnownTopic,
  ServerMessage,
  SessionState,
  SessionsStateSnapshot,
  SnapshotOf,
} from "../../generated/typescript";

type Equals<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

export const snapshotOfSessionsState: Equals<SnapshotOf<"sessions.state">, SessionsStateSnapshot> =
  true;
export const eventOfAnyActivityTopic: Equals<
  EventOf<`sessions.activity:${string}`>,
  ActivityEntry
> = true;
export const eventOfOneActivityTopic: Equals<EventOf<"sessions.activity:abc123">, ActivityEntry> =
  true;
export const eventOfCustom: Equals<EventOf<"custom.builds.main">, JsonValue> = true;
export const eventOfSessionsState: Equals<EventOf<"sessions.state">, SessionState> = true;

// @ts-expect-error no family owns "weather"
export type Unknown = SnapshotOf<"weather">;
// @ts-expect-error sessions.activity needs a key
export const keyless: KnownTopic = "sessions.activity";

/** Codes are runtime values with their reconnect advice. */
export const slowConsumerReconnects: boolean = CloseCode.SlowConsumer.reconnect;
export const badRequest: ErrorCode = ErrorCode.BadRequest.value;
// @ts-expect-error not an error code
export const notACode: ErrorCode = "teapot";

/** A typed handler: narrowing on `type` and on the topic gives the payload type. */
export function onEvent(data: EventData<"sessions.state">): string {
  return `${data.payload.sessionId} is ${data.payload.status} (seq ${data.seq})`;
}

export function shouldReconnect(closeCode: number): boolean {
  return closeCodeInfo(closeCode)?.reconnect ?? true;
}

export function describe(message: ServerMessage): string {
  switch (message.type) {
    case "error":
      return errorCodeInfo(message.data.code)?.description ?? message.data.message;
    case "snapshot":
    case "event":
      return `${message.data.topic} -> ${familyOf(message.data.topic)?.name ?? "unknown family"}`;
    default:
      return message.type;
  }
}

export const connect = { path: ENDPOINT_PATH, protocols: [SUBPROTOCOL], families: FAMILIES.length };
