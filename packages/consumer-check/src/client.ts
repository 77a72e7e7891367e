// @rtbus/client as an application uses it, with payload types from the topic literal.

import { createClient } from "@rtbus/client";
import type { SessionState, SessionsStateSnapshot } from "@rtbus/protocol";

export function start(token: string): () => void {
  const client = createClient({
    url: "ws://127.0.0.1:8080/api/realtime",
    getToken: async () => token,
    backoff: { minMs: 250, maxMs: 10_000 },
  });
  const seen: string[] = [];
  client.on("state", (state) => {
    seen.push(state);
  });
  const sub = client.subscribe("sessions.state", {
    onSnapshot(state: SessionsStateSnapshot) {
      seen.push(`${state.sessions.length} sessions`);
    },
    onEvent(event: SessionState, state: SessionsStateSnapshot) {
      seen.push(`${event.sessionId}: ${state.sessions.length}`);
    },
  });
  const current: SessionsStateSnapshot | undefined = sub.state;
  void current;
  void client.publish("custom.builds.main", { ok: true }).then(({ epoch, seq }) => {
    seen.push(`${epoch}/${seq}`);
  });
  return () => client.close();
}
