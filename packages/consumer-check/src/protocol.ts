// Types and runtime values of @rtbus/protocol as an application imports them from the packed
// tarball, checked under strict, exactOptionalPropertyTypes and noUncheckedIndexedAccess.

import {
  CLOSE_CODES,
  CloseCode,
  ENDPOINT_PATH,
  ErrorCode,
  FAMILIES,
  MAX_SAFE_INTEGER,
  PROTOCOL_VERSION,
  SUBPROTOCOL,
  closeCodeInfo,
  familyOf,
  isKnownTopic,
} from "@rtbus/protocol";
import type {
  ActivityEntry,
  ClientMessage,
  EventData,
  EventOf,
  FamilyName,
  FamilyTopic,
  KnownTopic,
  ServerMessage,
  SessionState,
  SessionsStateSnapshot,
  SnapshotOf,
  SubscriptionRequest,
} from "@rtbus/protocol";

type Equals<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

export const snapshotType: Equals<SnapshotOf<"sessions.state">, SessionsStateSnapshot> = true;
export const eventType: Equals<EventOf<FamilyTopic<"sessions.activity">>, ActivityEntry> = true;
export const eventOfState: Equals<EventOf<"sessions.state">, SessionState> = true;

// exactOptionalPropertyTypes: an optional field is left out, never set to undefined.
export const subscribe: ClientMessage = {
  type: "subscribe",
  id: "1",
  data: { topics: [{ topic: "sessions.state" } satisfies SubscriptionRequest] },
};
// @ts-expect-error an absent optional field is not `undefined`
export const explicitUndefined: SubscriptionRequest = { topic: "sessions.state", epoch: undefined };

// noUncheckedIndexedAccess: the first family may be absent.
const first = FAMILIES[0];
export const firstFamily: FamilyName | undefined = first?.name;

export function activityTopic(sessionId: string): KnownTopic | undefined {
  const topic = `sessions.activity:${sessionId}`;
  return isKnownTopic(topic) ? topic : undefined;
}

export function onEvent(data: EventData<"sessions.state">): string {
  return `${data.payload.sessionId} is ${data.payload.status} (seq ${data.seq})`;
}

export function describe(message: ServerMessage): string {
  switch (message.type) {
    case "snapshot":
    case "event":
      return familyOf(message.data.topic)?.name ?? "unknown family";
    case "error":
      return message.data.message;
    default:
      return message.type;
  }
}

export const facts = {
  version: PROTOCOL_VERSION satisfies number,
  url: `ws://127.0.0.1:8080${ENDPOINT_PATH}`,
  protocols: [SUBPROTOCOL],
  maxSafe: MAX_SAFE_INTEGER,
  reconnectOnGoingAway: CloseCode.GoingAway.reconnect,
  closeCodes: CLOSE_CODES.length,
  badRequest: ErrorCode.BadRequest.value,
  shouldReconnect: (code: number): boolean => closeCodeInfo(code)?.reconnect ?? true,
};
