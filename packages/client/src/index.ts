// @rtbus/client: a browser and Node client for rtbus protocol v1 (see README.md).

export { createClient, RtbusError } from "./client.js";
export type {
  Client,
  ClientError,
  ClientEvents,
  ClientOptions,
  CloseInfo,
  ConnectionState,
  DeliveryMeta,
  EndInfo,
  ProtocolErrorInfo,
  Published,
  ResetInfo,
  SubscribeOptions,
  Subscription,
  SubscriptionStatus,
  WebSocketConstructor,
  WebSocketLike,
} from "./types.js";
export type { EventOf, FamilyTopic, KnownTopic, SnapshotOf } from "@rtbus/protocol";
