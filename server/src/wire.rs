//! Wire framing: server messages encoded once as complete, unmasked WebSocket frames, and the
//! opcodes the server writes itself.
//!
//! Everything the server sends is framed here, so an event's bytes are built once and shared by
//! every connection it goes to.

use rtbus_protocol::{ErrorCode, ServerMessage};
use tokio_tungstenite::tungstenite::Bytes;

/// The opcode of a text frame.
pub(crate) const TEXT: u8 = 0x1;
/// The opcode of a ping frame.
pub(crate) const PING: u8 = 0x9;

/// Encodes `payload` as one unmasked WebSocket frame (RFC 6455 §5.2) with the given opcode.
pub(crate) fn frame(opcode: u8, payload: &[u8]) -> Bytes {
    let len = payload.len();
    let mut out = Vec::with_capacity(len + 10);
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
    Bytes::from(out)
}

/// Encodes a server message once as a complete WebSocket text frame; the result is shared by
/// every connection it goes to.
pub(crate) fn encode(message: &ServerMessage) -> Bytes {
    match serde_json::to_vec(message) {
        Ok(json) => frame(TEXT, &json),
        // Unreachable for protocol types (all map keys are strings); answer rather than panic.
        Err(err) => {
            let fallback = ServerMessage::error(
                None,
                ErrorCode::Internal,
                format!("cannot encode reply: {err}"),
            );
            frame(TEXT, &serde_json::to_vec(&fallback).unwrap_or_default())
        }
    }
}

/// The opcode and payload of one complete frame as [`frame`] builds it, for tests that read
/// what was queued.
#[cfg(test)]
pub(crate) fn unframe(bytes: &[u8]) -> Option<(u8, &[u8])> {
    let (&first, rest) = bytes.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let (len, rest) = match len {
        126 => {
            let (n, rest) = rest.split_at_checked(2)?;
            (usize::from(u16::from_be_bytes([n[0], n[1]])), rest)
        }
        127 => {
            let (n, rest) = rest.split_at_checked(8)?;
            (
                usize::try_from(u64::from_be_bytes(n.try_into().ok()?)).ok()?,
                rest,
            )
        }
        short => (usize::from(short), rest),
    };
    (rest.len() == len).then_some((first & 0x0f, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_the_rfc_6455_length_forms() {
        assert_eq!(&frame(TEXT, b"hi")[..], b"\x81\x02hi");
        let medium = frame(TEXT, &[b'x'; 300]);
        assert_eq!(&medium[..4], &[0x81, 126, 0x01, 0x2c]);
        assert_eq!(medium.len(), 304);
        let large = frame(TEXT, &vec![b'x'; 70_000]);
        assert_eq!(&large[..2], &[0x81, 127]);
        assert_eq!(&large[2..10], &70_000u64.to_be_bytes());
        assert_eq!(&frame(PING, b"")[..], &[0x89, 0]);
        for len in [0, 125, 126, 65_535, 65_536] {
            let payload = vec![b'z'; len];
            assert_eq!(
                unframe(&frame(TEXT, &payload)),
                Some((TEXT, &payload[..])),
                "{len}"
            );
        }
        assert_eq!(unframe(b"\x81\x03hi"), None, "a short frame is not a frame");
    }

    #[test]
    fn a_message_is_one_text_frame_of_its_json() {
        let message = ServerMessage::error(None, ErrorCode::BadRequest, "no");
        let json = serde_json::to_vec(&message).unwrap();
        assert_eq!(encode(&message), frame(TEXT, &json));
    }
}
