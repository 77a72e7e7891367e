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
  isKnownTopic,
} from "../../generated/typescript/index.js";
import type {
  ActivityEntry,
  CheckedTopic,
  FamilyTopic,
  EventData,
  EventOf,
  KnownTopic,
  SafeJsonValue,
  ServerMessage,
  SessionState,
  SessionsStateSnapshot,
  SnapshotOf,
} from "../../generated/typescript/index.js";

type Equals<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

export const snapshotOfSessionsState: Equals<SnapshotOf<"sessions.state">, SessionsStateSnapshot> =
  true;
export const eventOfAnyActivityTopic: Equals<
  EventOf<FamilyTopic<"sessions.activity">>,
  ActivityEntry
> = true;
// @ts-expect-error a string-typed key may be empty: check it with isKnownTopic first
export type WideKey = EventOf<`sessions.activity:${string}`>;
/** A topic built at run time becomes a KnownTopic through the generated guard. */
export function activityTopic(sessionId: string): KnownTopic | undefined {
  const topic = `sessions.activity:${sessionId}`;
  return isKnownTopic(topic) ? topic : undefined;
}
export const eventOfOneActivityTopic: Equals<EventOf<"sessions.activity:abc123">, ActivityEntry> =
  true;
export const eventOfCustom: Equals<EventOf<"custom.builds.main">, SafeJsonValue> = true;
export const eventOfSessionsState: Equals<EventOf<"sessions.state">, SessionState> = true;

// @ts-expect-error no family owns "weather"
export type Unknown = SnapshotOf<"weather">;
// @ts-expect-error sessions.activity needs a key
export const keyless: KnownTopic = "sessions.activity";
// @ts-expect-error a key is not empty
export const emptyKey: KnownTopic = "sessions.activity:";
// @ts-expect-error segments are lowercase
export const upperSegment: KnownTopic = "custom.Has Spaces";
export const customTopic: FamilyTopic<"custom"> = "custom.builds.main:k1";

/** `CheckedTopic` refuses what a template type cannot: a bad character after the first. */
function subscribeChecked<T extends string>(topic: T & CheckedTopic<T>): T {
  return topic;
}
export const checked = subscribeChecked("custom.builds.main:release-1.2");
export const checkedWide = subscribeChecked(`sessions.activity:${String(42)}`);
// @ts-expect-error a space is not allowed in a segment
export const spaced = subscribeChecked("custom.has spaces");
// @ts-expect-error two dots make an empty segment
export const emptySegment = subscribeChecked("custom..x");
// @ts-expect-error a key is not empty
export const emptyCheckedKey = subscribeChecked("sessions.activity:");
// @ts-expect-error '/' is not allowed in a key
export const slashKey = subscribeChecked("sessions.activity:a/b");

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
