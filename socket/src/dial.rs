//! The dial builder: which subprotocols to offer, a bearer token, extra headers, socket options
//! (receive buffer, `TCP_NODELAY`), tungstenite's buffers and limits, one timeout over connect and
//! handshake, and optionally a subprotocol the server must select.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::error::{Error, Result, Stage};
use crate::url::{Url, UrlError};

/// A client WebSocket over plain TCP, as [`Dial`] opens it.
pub type WsStream = WebSocketStream<TcpStream>;

/// How to open a WebSocket: a builder, cheap to clone, used for any number of dials.
///
/// ```no_run
/// # async fn f() -> rtbus_socket::Result<()> {
/// use rtbus_socket::{Dial, Url};
/// let url = Url::parse("ws://127.0.0.1:4000/api/realtime")?;
/// let (ws, handshake) = Dial::new()
///     .bearer("conformance-reader-token")
///     .timeout(std::time::Duration::from_secs(2))
///     .require_subprotocol(rtbus_protocol::SUBPROTOCOL)
///     .connect(&url)
///     .await?;
/// # let _ = (ws, handshake);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Dial {
    subprotocols: Vec<String>,
    bearer: Option<String>,
    headers: Vec<(String, String)>,
    recv_buffer: Option<u32>,
    nodelay: bool,
    config: WebSocketConfig,
    timeout: Option<Duration>,
    required: Option<String>,
}

impl Default for Dial {
    fn default() -> Dial {
        Dial::new()
    }
}

impl Dial {
    /// A dial offering the rtbus subprotocol, with `TCP_NODELAY`, tungstenite's default buffers
    /// and limits, and no timeout.
    pub fn new() -> Dial {
        Dial {
            subprotocols: vec![rtbus_protocol::SUBPROTOCOL.to_owned()],
            bearer: None,
            headers: Vec::new(),
            recv_buffer: None,
            nodelay: true,
            config: WebSocketConfig::default(),
            timeout: None,
            required: None,
        }
    }

    /// Offers these subprotocols, in order, in one `Sec-WebSocket-Protocol` header; an empty
    /// list sends no such header.
    pub fn subprotocols<I, S>(mut self, list: I) -> Dial
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.subprotocols = list.into_iter().map(Into::into).collect();
        self
    }

    /// Offers no subprotocol at all.
    pub fn no_subprotocols(self) -> Dial {
        self.subprotocols(Vec::<String>::new())
    }

    /// Sends `Authorization: Bearer <token>`.
    pub fn bearer(mut self, token: impl Into<String>) -> Dial {
        self.bearer = Some(token.into());
        self
    }

    /// Adds a header to the upgrade request, replacing one of the same name (including the
    /// subprotocol and `Authorization` headers the dial writes itself).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Dial {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the socket's receive buffer (`SO_RCVBUF`) before connecting, so a client that stops
    /// reading backs up quickly.
    pub fn recv_buffer(mut self, bytes: u32) -> Dial {
        self.recv_buffer = Some(bytes);
        self
    }

    /// Sets `TCP_NODELAY` (on by default).
    pub fn nodelay(mut self, on: bool) -> Dial {
        self.nodelay = on;
        self
    }

    /// Uses this tungstenite configuration (buffers, message and frame limits).
    pub fn config(mut self, config: WebSocketConfig) -> Dial {
        self.config = config;
        self
    }

    /// Sets tungstenite's read buffer size.
    pub fn read_buffer_size(mut self, bytes: usize) -> Dial {
        self.config = self.config.read_buffer_size(bytes);
        self
    }

    /// Sets tungstenite's write buffer size (0: every frame is written at once).
    pub fn write_buffer_size(mut self, bytes: usize) -> Dial {
        self.config = self.config.write_buffer_size(bytes);
        self
    }

    /// Sets the largest message (and frame) accepted; `None` for no limit.
    pub fn max_message_size(mut self, bytes: Option<usize>) -> Dial {
        self.config = self.config.max_message_size(bytes).max_frame_size(bytes);
        self
    }

    /// Limits the whole dial (resolve, TCP connect and handshake together) to `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Dial {
        self.timeout = Some(timeout);
        self
    }

    /// Fails the dial with [`Error::Subprotocol`] unless the server selects `subprotocol`.
    pub fn require_subprotocol(mut self, subprotocol: impl Into<String>) -> Dial {
        self.required = Some(subprotocol.into());
        self
    }

    /// The headers this dial adds to an upgrade request, checked.
    pub fn headers(&self) -> Result<HeaderMap> {
        let mut headers = HeaderMap::new();
        let value = |name: &str, value: &str| {
            HeaderValue::from_str(value).map_err(|_| Error::HeaderValue {
                name: name.to_owned(),
            })
        };
        if !self.subprotocols.is_empty() {
            let list = self.subprotocols.join(", ");
            headers.insert(
                "sec-websocket-protocol",
                value("Sec-WebSocket-Protocol", &list)?,
            );
        }
        if let Some(token) = &self.bearer {
            let bearer = format!("Bearer {token}");
            headers.insert("authorization", value("Authorization", &bearer)?);
        }
        for (name, v) in &self.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::HeaderName { name: name.clone() })?;
            headers.insert(header, value(name, v)?);
        }
        Ok(headers)
    }

    /// The upgrade request for `url`: tungstenite's (`Host`, a fresh key, ...) with this dial's
    /// headers.
    pub fn request(&self, url: &Url) -> Result<Request> {
        self.prepare(url)?.request()
    }

    /// Checks the headers once and keeps the request for `url`, for dialling it many times.
    pub fn prepare(&self, url: &Url) -> Result<Dialer> {
        // `Url::parse` refused whitespace and control characters; anything else `Uri` refuses
        // is a bad path too.
        let uri: Uri = url.to_string().parse().map_err(|_| UrlError::BadPath {
            url: url.to_string(),
            path: url.path().to_owned(),
            reason: "not a valid request target",
        })?;
        Ok(Dialer {
            url: url.clone(),
            uri,
            headers: self.headers()?,
            dial: self.clone(),
        })
    }

    /// Resolves `url`'s host and dials it.
    pub async fn connect(&self, url: &Url) -> Result<(WsStream, Handshake)> {
        self.prepare(url)?.connect().await
    }

    /// Dials `addr`, with `url` giving the `Host` header and the path; nothing is resolved.
    pub async fn connect_to(&self, url: &Url, addr: SocketAddr) -> Result<(WsStream, Handshake)> {
        self.prepare(url)?.connect_to(addr).await
    }

    fn deadline(&self) -> Option<Instant> {
        self.timeout.map(|t| Instant::now() + t)
    }

    /// Runs `future`, failing with [`Error::Timeout`] at `deadline`.
    async fn within<F: Future>(
        &self,
        deadline: Option<Instant>,
        stage: Stage,
        future: F,
    ) -> Result<F::Output> {
        match (deadline, self.timeout) {
            (Some(deadline), Some(after)) => tokio::time::timeout_at(deadline, future)
                .await
                .map_err(|_| Error::Timeout { stage, after }),
            _ => Ok(future.await),
        }
    }

    async fn open_tcp(&self, addr: SocketAddr, deadline: Option<Instant>) -> Result<TcpStream> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(|source| Error::Socket {
            action: "open a socket",
            source,
        })?;
        if let Some(bytes) = self.recv_buffer {
            socket
                .set_recv_buffer_size(bytes)
                .map_err(|source| Error::Socket {
                    action: "set the receive buffer",
                    source,
                })?;
        }
        let stream = self
            .within(deadline, Stage::Connect, socket.connect(addr))
            .await?
            .map_err(|source| Error::Connect { addr, source })?;
        if self.nodelay {
            stream.set_nodelay(true).map_err(|source| Error::Socket {
                action: "set TCP_NODELAY",
                source,
            })?;
        }
        Ok(stream)
    }
}

/// A [`Dial`] bound to one URL with its headers checked: dial it, or resolved addresses of it,
/// any number of times without parsing again.
#[derive(Debug, Clone)]
pub struct Dialer {
    url: Url,
    uri: Uri,
    headers: HeaderMap,
    dial: Dial,
}

impl Dialer {
    /// The URL dialled.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// A fresh upgrade request (each has its own `Sec-WebSocket-Key`).
    pub fn request(&self) -> Result<Request> {
        let mut request = self
            .uri
            .clone()
            .into_client_request()
            .map_err(|e| Error::Handshake(Box::new(e)))?;
        for (name, value) in &self.headers {
            request.headers_mut().insert(name, value.clone());
        }
        Ok(request)
    }

    /// Resolves the URL's host and dials it; the timeout covers the lookup too.
    pub async fn connect(&self) -> Result<(WsStream, Handshake)> {
        let deadline = self.dial.deadline();
        let addr = self
            .dial
            .within(deadline, Stage::Resolve, self.url.resolve())
            .await??;
        self.open(addr, deadline).await
    }

    /// Dials `addr` (no lookup): for opening many connections to an address resolved once.
    pub async fn connect_to(&self, addr: SocketAddr) -> Result<(WsStream, Handshake)> {
        self.open(addr, self.dial.deadline()).await
    }

    async fn open(
        &self,
        addr: SocketAddr,
        deadline: Option<Instant>,
    ) -> Result<(WsStream, Handshake)> {
        let request = self.request()?;
        let stream = self.dial.open_tcp(addr, deadline).await?;
        let handshake =
            tokio_tungstenite::client_async_with_config(request, stream, Some(self.dial.config));
        let (ws, response) = self
            .dial
            .within(deadline, Stage::Handshake, handshake)
            .await?
            .map_err(Error::from_handshake)?;
        let handshake = Handshake { response };
        if let Some(expected) = &self.dial.required {
            if handshake.subprotocol() != Some(expected.as_str()) {
                return Err(Error::Subprotocol {
                    expected: expected.clone(),
                    selected: handshake.subprotocol().map(str::to_owned),
                });
            }
        }
        Ok((ws, handshake))
    }
}

/// The server's answer to a successful upgrade (status 101).
#[derive(Debug)]
pub struct Handshake {
    response: Response,
}

impl Handshake {
    /// The status (101).
    pub fn status(&self) -> StatusCode {
        self.response.status()
    }

    /// The response's headers.
    pub fn headers(&self) -> &HeaderMap {
        self.response.headers()
    }

    /// The subprotocol the server selected, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
    }

    /// The whole response.
    pub fn into_response(self) -> Response {
        self.response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn the_builder_writes_its_headers() {
        let u = url("ws://h:1/api/realtime");
        let request = Dial::new().request(&u).unwrap();
        assert_eq!(request.uri(), "ws://h:1/api/realtime");
        assert_eq!(request.headers()["host"], "h:1");
        assert_eq!(request.headers()["sec-websocket-protocol"], "rtbus.v1");
        assert!(request.headers().get("authorization").is_none());

        let request = Dial::new()
            .subprotocols(["chat", "rtbus.v1"])
            .bearer("t0k")
            .header("Origin", "http://127.0.0.1:8081")
            .request(&u)
            .unwrap();
        let h = request.headers();
        assert_eq!(h["sec-websocket-protocol"], "chat, rtbus.v1");
        assert_eq!(h["authorization"], "Bearer t0k");
        assert_eq!(h["origin"], "http://127.0.0.1:8081");

        let none = Dial::new().no_subprotocols().request(&u).unwrap();
        assert!(none.headers().get("sec-websocket-protocol").is_none());
        // An extra header replaces the dial's own.
        let replaced = Dial::new()
            .bearer("a")
            .header("authorization", "Basic eA==")
            .request(&u)
            .unwrap();
        assert_eq!(replaced.headers()["authorization"], "Basic eA==");

        // Each request of a prepared dialer has its own key.
        let dialer = Dial::new().prepare(&u).unwrap();
        let (a, b) = (dialer.request().unwrap(), dialer.request().unwrap());
        assert_ne!(
            a.headers()["sec-websocket-key"],
            b.headers()["sec-websocket-key"]
        );
        assert_eq!(a.headers()["sec-websocket-protocol"], "rtbus.v1");
    }

    #[test]
    fn bad_headers_are_typed_errors() {
        let u = url("ws://h/x");
        assert!(matches!(
            Dial::new().bearer("a\nb").request(&u),
            Err(Error::HeaderValue { name }) if name == "Authorization"
        ));
        assert!(matches!(
            Dial::new().subprotocols(["a\u{7f}"]).request(&u),
            Err(Error::HeaderValue { name }) if name == "Sec-WebSocket-Protocol"
        ));
        assert!(matches!(
            Dial::new().header("bad name", "v").request(&u),
            Err(Error::HeaderName { name }) if name == "bad name"
        ));
        assert!(matches!(
            Dial::new().header("x-ok", "\r").request(&u),
            Err(Error::HeaderValue { name }) if name == "x-ok"
        ));
    }

    /// A loopback listener answering every connection's first request with `answer`.
    async fn answering(answer: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0; 4096];
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = stream.write_all(answer.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_refusal_carries_its_status_headers_and_body() {
        let addr = answering(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 32\r\n\
             Connection: close\r\n\r\nthe bearer token is not accepted",
        )
        .await;
        let u = url(&format!("ws://{addr}/api/realtime"));
        let error = Dial::new().bearer("nope").connect(&u).await.unwrap_err();
        let Error::Refused {
            status,
            headers,
            body,
        } = &error
        else {
            panic!("{error:?}");
        };
        assert_eq!(*status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers["www-authenticate"], "Bearer");
        assert_eq!(body.as_deref(), Some("the bearer token is not accepted"));
        assert!(error.to_string().contains("HTTP 401"), "{error}");
    }

    #[tokio::test]
    async fn a_silent_listener_times_out_in_the_handshake() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Accepts (the kernel does) and never answers.
        let _keep = listener;
        let u = url(&format!("ws://{addr}/"));
        let started = std::time::Instant::now();
        let error = Dial::new()
            .timeout(Duration::from_millis(200))
            .connect_to(&u, addr)
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                Error::Timeout {
                    stage: Stage::Handshake,
                    after
                } if after == Duration::from_millis(200)
            ),
            "{error:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error_with_the_address() {
        let addr = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap()
        };
        let u = url(&format!("ws://{addr}/"));
        let error = Dial::new()
            .timeout(Duration::from_secs(2))
            .connect(&u)
            .await
            .unwrap_err();
        match &error {
            Error::Connect { addr: got, source } => {
                assert_eq!(*got, addr);
                assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
            }
            other => panic!("{other:?}"),
        }
        assert!(error.to_string().contains(&addr.to_string()), "{error}");
    }

    #[tokio::test]
    async fn a_required_subprotocol_the_server_did_not_select_fails() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                // A server that selects no subprotocol whatever is offered.
                tokio::spawn(async move {
                    if let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await {
                        use futures_util::StreamExt;
                        while let Some(Ok(_)) = ws.next().await {}
                    }
                });
            }
        });
        let u = url(&format!("ws://{addr}/api/realtime"));
        let (_, handshake) = Dial::new().no_subprotocols().connect(&u).await.unwrap();
        assert_eq!(handshake.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(handshake.subprotocol(), None);
        assert!(handshake.headers().contains_key("sec-websocket-accept"));
        let error = Dial::new()
            .no_subprotocols()
            .require_subprotocol("rtbus.v1")
            .connect(&u)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, Error::Subprotocol { expected, selected: None } if expected == "rtbus.v1"),
            "{error:?}"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_receive_buffer_is_set_before_connect() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let d = Dial::new().recv_buffer(4096);
        let stream = d.open_tcp(addr, None).await.unwrap();
        // The kernel may round up (Linux doubles), but never leaves the default 128 KiB+.
        let size = socket_recv_buffer(&stream);
        assert!(size < 64 * 1024, "{size}");
        assert!(stream.nodelay().unwrap());
    }

    #[cfg(unix)]
    fn socket_recv_buffer(stream: &TcpStream) -> usize {
        // tokio exposes SO_RCVBUF only on a TcpSocket; borrow the stream's descriptor as one.
        let std = stream_as_socket(stream);
        std.recv_buffer_size().unwrap() as usize
    }

    #[cfg(unix)]
    fn stream_as_socket(stream: &TcpStream) -> TcpSocket {
        use std::os::fd::{AsFd, BorrowedFd};
        let fd: BorrowedFd<'_> = stream.as_fd();
        TcpSocket::from_std_stream(std::net::TcpStream::from(fd.try_clone_to_owned().unwrap()))
    }
}
