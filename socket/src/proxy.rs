//! One WebSocket proxy with a tap: it accepts a client, dials upstream *inside* the client's
//! handshake (forwarding the path, the offered subprotocols and `Authorization`) so the client
//! gets upstream's answer (its refusal status, its chosen subprotocol), then pumps frames both
//! ways through a [`Tap`] that may observe, rewrite, drop or inject them.
//!
//! Pings and pongs never reach the tap: each hop's WebSocket answers its own peer's pings, so
//! they are per hop, not end to end. Close frames do reach it, and pass on (code and reason) as
//! the tap returns them.

use std::future::Future;
use std::sync::Arc;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::machine::TryParse;
use tokio_tungstenite::tungstenite::handshake::server::{Request, create_response, write_response};
use tokio_tungstenite::tungstenite::http::{HeaderMap, HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::dial::{Dial, Handshake, WsStream};
use crate::error::{Error, Result};
use crate::url::Url;

/// Which way a message travels through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the client to the server.
    ToServer,
    /// From the server to the client.
    ToClient,
}

/// What a client's upgrade request offered: what the proxy forwards upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offer {
    /// The request's path and query, e.g. `/api/realtime`.
    pub path: String,
    /// The subprotocols offered, in order, from every `Sec-WebSocket-Protocol` header.
    pub subprotocols: Vec<String>,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
}

/// How the proxy answers a client's upgrade.
#[derive(Debug)]
pub enum Answer {
    /// Upgrade the client, selecting `subprotocol`, and pump frames to and from `upstream`.
    Accept {
        /// The upstream connection.
        upstream: Box<WsStream>,
        /// The subprotocol to select in the client's 101 (upstream's choice, normally).
        subprotocol: Option<String>,
    },
    /// Refuse the client's upgrade with this HTTP answer.
    Refuse {
        /// The status, e.g. 401.
        status: StatusCode,
        /// Headers to send (hop-by-hop headers are dropped).
        headers: HeaderMap,
        /// The body, if any.
        body: Option<String>,
    },
}

impl Answer {
    /// A refusal with `status` and no body.
    pub fn refuse(status: StatusCode) -> Answer {
        Answer::Refuse {
            status,
            headers: HeaderMap::new(),
            body: None,
        }
    }

    /// The status the client sees: 101 for an accepted upgrade.
    pub fn status(&self) -> StatusCode {
        match self {
            Answer::Accept { .. } => StatusCode::SWITCHING_PROTOCOLS,
            Answer::Refuse { status, .. } => *status,
        }
    }
}

/// A message a [`Tap`] wants sent.
#[derive(Debug)]
pub enum Action {
    /// Send toward the server.
    ToServer(Message),
    /// Send toward the client.
    ToClient(Message),
}

impl Action {
    /// Sends `message` on in `direction`.
    pub fn send(direction: Direction, message: Message) -> Action {
        match direction {
            Direction::ToServer => Action::ToServer(message),
            Direction::ToClient => Action::ToClient(message),
        }
    }
}

/// Sees every message a proxied connection carries (one tap per connection, shared by both
/// directions, so state lives behind `&self`).
pub trait Tap: Send + Sync + 'static {
    /// Decides a client's upgrade. The default dials upstream with the offer as it is.
    fn handshake(&self, offer: Offer, upstream: &Upstream) -> impl Future<Output = Answer> + Send {
        async move { upstream.dial(&offer).await }
    }

    /// Called for each text, binary and close message travelling in `direction`; returns what
    /// to send (the message itself, changed, nothing, or more). The default passes it on.
    fn message(
        &self,
        direction: Direction,
        message: Message,
    ) -> impl Future<Output = Vec<Action>> + Send {
        async move { vec![Action::send(direction, message)] }
    }
}

/// A tap that passes everything on unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct Transparent;

impl Tap for Transparent {}

/// The server behind the proxy, and how to dial it.
#[derive(Debug, Clone)]
pub struct Upstream {
    url: Url,
    dial: Dial,
}

impl Upstream {
    /// The server at `url`; dialled with [`Dial::new`]'s options unless [`Upstream::dial_with`]
    /// says otherwise.
    pub fn new(url: Url) -> Upstream {
        Upstream {
            url,
            dial: Dial::new(),
        }
    }

    /// Dials with these options (socket buffers, timeout, ...); the subprotocols and
    /// `Authorization` are always the offer's.
    pub fn dial_with(mut self, dial: Dial) -> Upstream {
        self.dial = dial;
        self
    }

    /// The server's URL (its path is replaced by each offer's).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Dials upstream as `offer` asks: its path, subprotocols and `Authorization`.
    pub async fn connect(&self, offer: &Offer) -> Result<(WsStream, Handshake)> {
        let mut dial = self.dial.clone().subprotocols(offer.subprotocols.clone());
        if let Some(auth) = &offer.authorization {
            dial = dial.header("authorization", auth.clone());
        }
        let url = if offer.path.is_empty() {
            self.url.clone()
        } else {
            self.url.with_path(&offer.path)
        };
        dial.connect(&url).await
    }

    /// Dials upstream for `offer` and turns the outcome into the client's answer: upstream's
    /// refusal is the client's refusal, upstream's subprotocol the client's; a dial that fails
    /// without an HTTP answer is `502 Bad Gateway`.
    pub async fn dial(&self, offer: &Offer) -> Answer {
        match self.connect(offer).await {
            Ok((ws, handshake)) => Answer::Accept {
                subprotocol: handshake.subprotocol().map(str::to_owned),
                upstream: Box::new(ws),
            },
            Err(Error::Refused {
                status,
                headers,
                body,
            }) => Answer::Refuse {
                status,
                headers: *headers,
                body,
            },
            Err(other) => Answer::Refuse {
                status: StatusCode::BAD_GATEWAY,
                headers: HeaderMap::new(),
                body: Some(other.to_string()),
            },
        }
    }
}

/// The subprotocols a request offers, in order, from every `Sec-WebSocket-Protocol` header
/// (each may list several, comma-separated).
pub fn offered_subprotocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_owned()))
        .filter(|s| !s.is_empty())
        .collect()
}

/// The largest upgrade request the proxy reads.
const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// The proxy: one [`Proxy::serve`] call per accepted client.
#[derive(Debug, Clone)]
pub struct Proxy {
    upstream: Upstream,
    client_queue: usize,
    server_queue: usize,
    config: WebSocketConfig,
}

impl Proxy {
    /// A proxy to `upstream`. Messages wait for the client in a queue of one, so a client that
    /// stops reading holds the server back as it would without the proxy.
    pub fn new(upstream: Upstream) -> Proxy {
        Proxy {
            upstream,
            client_queue: 1,
            server_queue: 16,
            config: WebSocketConfig::default(),
        }
    }

    /// How many messages may wait for the client (at least 1).
    pub fn client_queue(mut self, messages: usize) -> Proxy {
        self.client_queue = messages.max(1);
        self
    }

    /// How many messages may wait for the server (at least 1).
    pub fn server_queue(mut self, messages: usize) -> Proxy {
        self.server_queue = messages.max(1);
        self
    }

    /// The tungstenite configuration of the client's side.
    pub fn config(mut self, config: WebSocketConfig) -> Proxy {
        self.config = config;
        self
    }

    /// The upstream server.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Serves one client: reads its upgrade, lets `tap` answer it (dialling upstream), then
    /// pumps frames until both sides have closed, or either vanished. A refused upgrade is
    /// `Ok`: the client got its answer.
    pub async fn serve<T: Tap>(&self, mut client: TcpStream, tap: T) -> Result<()> {
        let (request, tail) = read_request(&mut client).await?;
        let response = match create_response(&request) {
            Ok(response) => response,
            Err(e) => {
                let body = format!("not a WebSocket upgrade: {e}");
                respond(
                    &mut client,
                    StatusCode::BAD_REQUEST,
                    &HeaderMap::new(),
                    Some(&body),
                )
                .await;
                return Err(Error::Accept(Box::new(e)));
            }
        };
        let offer = Offer {
            path: request
                .uri()
                .path_and_query()
                .map_or("/".to_owned(), |p| p.as_str().to_owned()),
            subprotocols: offered_subprotocols(request.headers()),
            authorization: request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        };
        let tap = Arc::new(tap);
        let (upstream, subprotocol) = match tap.handshake(offer, &self.upstream).await {
            Answer::Accept {
                upstream,
                subprotocol,
            } => (upstream, subprotocol),
            Answer::Refuse {
                status,
                headers,
                body,
            } => {
                respond(&mut client, status, &headers, body.as_deref()).await;
                return Ok(());
            }
        };
        let mut response = response;
        if let Some(p) = subprotocol {
            let value = HeaderValue::from_str(&p).map_err(|_| Error::HeaderValue {
                name: "Sec-WebSocket-Protocol".into(),
            })?;
            response
                .headers_mut()
                .insert(header::SEC_WEBSOCKET_PROTOCOL, value);
        }
        let mut head = Vec::new();
        write_response(&mut head, &response).map_err(|e| Error::Accept(Box::new(e)))?;
        client.write_all(&head).await.map_err(accept_io)?;
        let client =
            WebSocketStream::from_partially_read(client, tail, Role::Server, Some(self.config))
                .await;
        self.pump(tap, client, *upstream).await;
        Ok(())
    }

    async fn pump<T: Tap>(&self, tap: Arc<T>, client: WsStream, server: WsStream) {
        let (client_sink, client_stream) = client.split();
        let (server_sink, server_stream) = server.split();
        let (to_client, client_rx) = mpsc::channel(self.client_queue);
        let (to_server, server_rx) = mpsc::channel(self.server_queue);
        let client_writer = tokio::spawn(write_out(client_sink, client_rx));
        let server_writer = tokio::spawn(write_out(server_sink, server_rx));
        let queues = Queues {
            to_client,
            to_server,
        };
        let up = relay(
            Arc::clone(&tap),
            Direction::ToServer,
            client_stream,
            queues.clone(),
        );
        let down = relay(tap, Direction::ToClient, server_stream, queues);
        tokio::pin!(up, down);
        let (first, rest_is_up) = tokio::select! {
            end = &mut up => (end, false),
            end = &mut down => (end, true),
        };
        let vanished = match first {
            End::Vanished => true,
            End::Closed if rest_is_up => up.await == End::Vanished,
            End::Closed => down.await == End::Vanished,
        };
        if vanished {
            // One side is gone without a close: drop the other too, as a direct connection
            // would have ended.
            client_writer.abort();
            server_writer.abort();
        }
        let _ = client_writer.await;
        let _ = server_writer.await;
    }
}

/// How one direction's relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// A close frame was read or sent, or the other side stopped taking messages.
    Closed,
    /// The source ended or failed without a close frame.
    Vanished,
}

#[derive(Clone)]
struct Queues {
    to_client: mpsc::Sender<Message>,
    to_server: mpsc::Sender<Message>,
}

async fn relay<T: Tap>(
    tap: Arc<T>,
    direction: Direction,
    mut source: SplitStream<WsStream>,
    queues: Queues,
) -> End {
    loop {
        let message = match source.next().await {
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(message)) => message,
            None | Some(Err(_)) => return End::Vanished,
        };
        let source_closed = matches!(message, Message::Close(_));
        let mut sent_close = false;
        for action in tap.message(direction, message).await {
            let (queue, message) = match action {
                Action::ToServer(m) => (&queues.to_server, m),
                Action::ToClient(m) => (&queues.to_client, m),
            };
            sent_close |= matches!(message, Message::Close(_));
            if queue.send(message).await.is_err() {
                return End::Closed;
            }
        }
        if source_closed || sent_close {
            return End::Closed;
        }
    }
}

/// Writes queued messages to one side until a close frame went out or the side failed.
async fn write_out(mut sink: SplitSink<WsStream, Message>, mut queue: mpsc::Receiver<Message>) {
    while let Some(message) = queue.recv().await {
        let closing = matches!(message, Message::Close(_));
        if sink.send(message).await.is_err() || closing {
            break;
        }
    }
}

fn accept_io(e: std::io::Error) -> Error {
    Error::Accept(Box::new(tungstenite::Error::Io(e)))
}

/// Reads the client's upgrade request; returns it with any bytes read past it.
async fn read_request(client: &mut TcpStream) -> Result<(Request, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        match Request::try_parse(&buf) {
            Ok(Some((len, request))) => return Ok((request, buf.split_off(len))),
            Ok(None) if buf.len() < MAX_REQUEST_BYTES => {}
            Ok(None) => {
                let body = "the upgrade request is too large";
                respond(
                    client,
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    &HeaderMap::new(),
                    Some(body),
                )
                .await;
                return Err(Error::Accept(Box::new(tungstenite::Error::Capacity(
                    tungstenite::error::CapacityError::MessageTooLong {
                        size: buf.len(),
                        max_size: MAX_REQUEST_BYTES,
                    },
                ))));
            }
            Err(e) => {
                let body = format!("malformed upgrade request: {e}");
                respond(
                    client,
                    StatusCode::BAD_REQUEST,
                    &HeaderMap::new(),
                    Some(&body),
                )
                .await;
                return Err(Error::Accept(Box::new(e)));
            }
        }
        let n = client.read(&mut chunk).await.map_err(accept_io)?;
        if n == 0 {
            return Err(Error::Accept(Box::new(tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::HandshakeIncomplete,
            ))));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Writes a refusal and ends the connection.
async fn respond(
    client: &mut TcpStream,
    status: StatusCode,
    headers: &HeaderMap,
    body: Option<&str>,
) {
    let body = body.unwrap_or("");
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        let hop_by_hop = [
            header::CONTENT_LENGTH,
            header::CONTENT_TYPE,
            header::CONNECTION,
            header::TRANSFER_ENCODING,
            header::UPGRADE,
        ]
        .contains(name);
        if let (false, Ok(value)) = (hop_by_hop, value.to_str()) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("\r\n");
    head.push_str(body);
    let _ = client.write_all(head.as_bytes()).await;
    let _ = client.shutdown().await;
}

#[cfg(test)]
// The handshake callback's error type is tungstenite's HTTP response; its size is not ours.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    use std::net::SocketAddr;
    use std::sync::Mutex;

    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Response};
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;

    use crate::inbound::{Inbound, next};

    /// An upstream that refuses a token "bad" with 401 and otherwise selects `chat` and echoes
    /// text upper-cased, sends one binary frame after the first text, and closes with 4009 on
    /// "bye".
    async fn upstream() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let callback = |req: &Request, mut resp: Response| {
                        let auth = req.headers().get("authorization");
                        if auth.is_some_and(|a| a == "Bearer bad") {
                            let mut refusal = ErrorResponse::new(Some("token not accepted".into()));
                            *refusal.status_mut() = StatusCode::UNAUTHORIZED;
                            refusal
                                .headers_mut()
                                .insert("www-authenticate", HeaderValue::from_static("Bearer"));
                            return Err(refusal);
                        }
                        assert_eq!(req.uri().path(), "/wanted");
                        if offered_subprotocols(req.headers())
                            .iter()
                            .any(|p| p == "chat")
                        {
                            resp.headers_mut()
                                .insert("sec-websocket-protocol", HeaderValue::from_static("chat"));
                        }
                        Ok(resp)
                    };
                    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await
                    else {
                        return;
                    };
                    let mut first = true;
                    while let Some(Ok(m)) = ws.next().await {
                        match m {
                            Message::Text(t) if t.as_str() == "bye" => {
                                let frame = CloseFrame {
                                    code: 4009.into(),
                                    reason: "done".into(),
                                };
                                let _ = ws.send(Message::Close(Some(frame))).await;
                            }
                            Message::Text(t) => {
                                let _ = ws.send(Message::text(t.to_uppercase())).await;
                                if first {
                                    let _ = ws.send(Message::binary(vec![7u8, 8])).await;
                                    first = false;
                                }
                            }
                            _ => {}
                        }
                    }
                });
            }
        });
        addr
    }

    /// Rewrites "secret" to "public" on the way up, drops the server's binary frames, and
    /// notes every message it sees.
    #[derive(Default)]
    struct Rewriter {
        seen: Arc<Mutex<Vec<String>>>,
        status: Arc<Mutex<Option<u16>>>,
    }

    impl Tap for Rewriter {
        async fn handshake(&self, offer: Offer, upstream: &Upstream) -> Answer {
            let answer = upstream.dial(&offer).await;
            *self.status.lock().unwrap() = Some(answer.status().as_u16());
            answer
        }

        async fn message(&self, direction: Direction, message: Message) -> Vec<Action> {
            self.seen
                .lock()
                .unwrap()
                .push(format!("{direction:?} {message:?}"));
            match (direction, message) {
                (Direction::ToServer, Message::Text(t)) if t.as_str() == "secret" => {
                    vec![Action::ToServer(Message::text("public"))]
                }
                (Direction::ToClient, Message::Binary(_)) => vec![],
                (direction, message) => vec![Action::send(direction, message)],
            }
        }
    }

    /// Starts a proxy in front of `upstream` that serves one client with `tap`.
    async fn proxy(upstream: SocketAddr, tap: Rewriter) -> Url {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let url = Url::parse(&format!("ws://{upstream}/ignored")).unwrap();
        let proxy = Proxy::new(Upstream::new(url));
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let _ = proxy.serve(stream, tap).await;
        });
        Url::parse(&format!("ws://{addr}/wanted")).unwrap()
    }

    #[tokio::test]
    async fn an_upstream_refusal_is_the_clients_refusal() {
        let tap = Rewriter::default();
        let status = Arc::clone(&tap.status);
        let url = proxy(upstream().await, tap).await;
        let error = Dial::new().bearer("bad").connect(&url).await.unwrap_err();
        let Error::Refused {
            status: got,
            headers,
            body,
        } = &error
        else {
            panic!("{error:?}");
        };
        assert_eq!(*got, StatusCode::UNAUTHORIZED);
        assert_eq!(headers["www-authenticate"], "Bearer");
        assert_eq!(body.as_deref(), Some("token not accepted"));
        assert_eq!(*status.lock().unwrap(), Some(401));
    }

    #[tokio::test]
    async fn frames_pass_through_the_tap_both_ways_and_closes_keep_their_code() {
        let tap = Rewriter::default();
        let seen = Arc::clone(&tap.seen);
        let url = proxy(upstream().await, tap).await;
        let (mut ws, handshake) = Dial::new()
            .subprotocols(["rtbus.v1", "chat"])
            .connect(&url)
            .await
            .unwrap();
        // Upstream's choice, not the proxy's.
        assert_eq!(handshake.subprotocol(), Some("chat"));
        ws.send(Message::text("secret")).await.unwrap();
        match next(&mut ws).await {
            Inbound::Text(t) => assert_eq!(t.as_str(), "PUBLIC"),
            other => panic!("{other:?}"),
        }
        ws.send(Message::text("bye")).await.unwrap();
        match next(&mut ws).await {
            Inbound::Close { code, reason } => {
                assert_eq!((code, reason.as_str()), (Some(4009), "done"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(next(&mut ws).await, Inbound::Ended));
        let seen = seen.lock().unwrap().clone();
        assert!(seen[0].starts_with("ToServer Text"), "{seen:?}");
        assert!(
            seen.iter().any(|s| s.starts_with("ToClient Binary")),
            "{seen:?}"
        );
        assert!(
            seen.iter().any(|s| s.starts_with("ToClient Close")),
            "{seen:?}"
        );
    }

    #[tokio::test]
    async fn a_request_that_is_no_upgrade_is_refused_with_400() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let url = Url::parse("ws://127.0.0.1:9/").unwrap();
        let served = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            Proxy::new(Upstream::new(url))
                .serve(stream, Transparent)
                .await
        });
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );
        assert!(matches!(served.await.unwrap(), Err(Error::Accept(_))));
    }

    #[tokio::test]
    async fn an_unreachable_upstream_is_a_bad_gateway() {
        let dead = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap()
        };
        let url = proxy(dead, Rewriter::default()).await;
        let error = Dial::new().connect(&url).await.unwrap_err();
        assert_eq!(
            error.refused_status(),
            Some(StatusCode::BAD_GATEWAY),
            "{error}"
        );
        assert!(error.to_string().contains(&dead.to_string()), "{error}");
    }
}
