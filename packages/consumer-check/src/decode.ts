// The generated decoders of @rtbus/protocol (decode.ts).

import { checkClientMessage, checkServerMessage, decodeClientMessage, decodeServerMessage } from "@rtbus/protocol";
import type { ClientMessage, DecodeError, DecodeResult, ServerMessage } from "@rtbus/protocol";

export const pong: DecodeResult<ServerMessage> = decodeServerMessage('{"type":"pong"}');
export const ping: DecodeResult<ClientMessage> = decodeClientMessage('{"type":"ping"}');
export const parsed: DecodeResult<ServerMessage> = checkServerMessage(JSON.parse('{"type":"pong"}'));
export const parsedClient: DecodeResult<ClientMessage> = checkClientMessage({ type: "ping" });

/** The seq of an event frame, or where and why the frame is bad. */
export function seqOf(text: string): number | DecodeError | undefined {
  const result = decodeServerMessage(text);
  if (!result.ok) {
    const { pointer, expected, message } = result.error;
    return { pointer, expected, message };
  }
  return result.value.type === "event" ? result.value.data.seq : undefined;
}
