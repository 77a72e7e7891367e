// The generated folds of @rtbus/protocol (fold.ts).

import { emptySnapshot, foldEvent } from "@rtbus/protocol";
import type { ActivityEntry, SafeJsonValue, SessionsActivitySnapshot, SessionsStateSnapshot } from "@rtbus/protocol";

type Equals<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

const empty = emptySnapshot("sessions.state");
export const emptyType: Equals<typeof empty, SessionsStateSnapshot> = true;

export const folded: SessionsStateSnapshot = foldEvent("sessions.state", empty, {
  sessionId: "s-1",
  status: "running",
  updatedAt: "2026-01-01T00:00:00Z",
});
export const firstSession: string | undefined = folded.sessions[0]?.sessionId;

const entry: ActivityEntry = { kind: "message", text: "hello", at: "2026-01-01T00:00:00Z" };
export const activity: SessionsActivitySnapshot = foldEvent(
  "sessions.activity",
  emptySnapshot("sessions.activity"),
  entry,
);
export const custom: SafeJsonValue = foldEvent("custom", emptySnapshot("custom"), { any: ["json", 1] });

// @ts-expect-error a sessions.state event is not an activity entry
foldEvent("sessions.state", empty, entry);
