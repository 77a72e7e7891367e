//! One classification of what a WebSocket delivers: a text or binary frame, the peer's close
//! (code and reason), the end of the stream, or a failure; pings and pongs go to a callback.
//!
//! The load generator reads millions of frames through [`next`]: classifying moves the frame's
//! bytes, it never copies them.

use futures_util::{Stream, StreamExt};
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message, Utf8Bytes};

/// What the next read on a WebSocket brought.
#[derive(Debug)]
pub enum Inbound {
    /// A text frame.
    Text(Utf8Bytes),
    /// A binary frame.
    Binary(Bytes),
    /// The peer's close frame: its code (none for an empty close frame) and reason.
    Close {
        /// The close code, if the frame had one.
        code: Option<u16>,
        /// The reason (empty when none was given).
        reason: Utf8Bytes,
    },
    /// The stream ended without (or after) a close frame: the connection is gone.
    Ended,
    /// Reading failed (a protocol violation, a reset, an oversized message, ...).
    Failed(WsError),
}

/// A control frame [`next_with`] hands to its callback instead of returning it.
#[derive(Debug)]
pub enum Control {
    /// A ping (tungstenite answers it with a pong on the next read or write).
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
}

impl Inbound {
    /// Whether the connection is over: a close, the end, or a failure.
    pub fn is_end(&self) -> bool {
        matches!(
            self,
            Inbound::Close { .. } | Inbound::Ended | Inbound::Failed(_)
        )
    }

    /// Classifies one item of a WebSocket stream: `Err` for a control frame. A stream that
    /// ended, or ended with `ConnectionClosed`/`AlreadyClosed`, is [`Inbound::Ended`].
    pub fn classify(item: Option<Result<Message, WsError>>) -> Result<Inbound, Control> {
        Ok(match item {
            Some(Ok(Message::Text(text))) => Inbound::Text(text),
            Some(Ok(Message::Binary(bytes))) => Inbound::Binary(bytes),
            Some(Ok(Message::Close(frame))) => match frame {
                Some(frame) => Inbound::Close {
                    code: Some(u16::from(frame.code)),
                    reason: frame.reason,
                },
                None => Inbound::Close {
                    code: None,
                    reason: Utf8Bytes::default(),
                },
            },
            Some(Ok(Message::Ping(data))) => return Err(Control::Ping(data)),
            Some(Ok(Message::Pong(data))) => return Err(Control::Pong(data)),
            // Reading never yields a raw frame; treat one as a pong so it is skipped.
            Some(Ok(Message::Frame(_))) => return Err(Control::Pong(Bytes::new())),
            None | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => Inbound::Ended,
            Some(Err(e)) => Inbound::Failed(e),
        })
    }
}

/// The next frame, close or end on `stream`, skipping pings and pongs. Cancel-safe: dropping the
/// future loses nothing.
pub async fn next<S>(stream: &mut S) -> Inbound
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    next_with(stream, |_| {}).await
}

/// Like [`next`], handing every ping and pong to `on_control` on the way.
pub async fn next_with<S>(stream: &mut S, mut on_control: impl FnMut(Control)) -> Inbound
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    loop {
        match Inbound::classify(stream.next().await) {
            Ok(inbound) => return inbound,
            Err(control) => on_control(control),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;

    #[tokio::test]
    async fn items_are_classified_and_control_frames_counted() {
        let items: Vec<Result<Message, WsError>> = vec![
            Ok(Message::Ping(Bytes::from_static(b"p"))),
            Ok(Message::text("hi")),
            Ok(Message::Pong(Bytes::new())),
            Ok(Message::binary(vec![1, 2])),
            Ok(Message::Close(Some(CloseFrame {
                code: 4009.into(),
                reason: "slow".into(),
            }))),
            Ok(Message::Close(None)),
            Err(WsError::Utf8("bad".into())),
            Err(WsError::ConnectionClosed),
        ];
        let mut stream = futures_util::stream::iter(items);
        let mut controls = 0;
        let mut read = Vec::new();
        loop {
            let inbound = next_with(&mut stream, |_| controls += 1).await;
            let ended = matches!(inbound, Inbound::Ended);
            read.push(format!("{inbound:?}"));
            if ended {
                break;
            }
        }
        assert_eq!(controls, 2);
        assert_eq!(read.len(), 6, "{read:?}");
        assert!(
            read[0].starts_with("Text(") && read[0].contains("hi"),
            "{read:?}"
        );
        assert!(read[1].starts_with("Binary("), "{read:?}");
        assert!(
            read[2].contains("Some(4009)") && read[2].contains("slow"),
            "{read:?}"
        );
        assert!(read[3].contains("code: None"), "{read:?}");
        assert!(read[4].starts_with("Failed("), "{read:?}");
        assert_eq!(read[5], "Ended");
        assert!(matches!(next(&mut stream).await, Inbound::Ended));
        assert!(Inbound::Ended.is_end() && !Inbound::Text("x".into()).is_end());
    }
}
