//! The HTTP side of the port: request heads, the WebSocket upgrade checks, `/healthz` and the
//! stats endpoint.
//!
//! The request head is parsed with `httparse` into a small buffer and the upgrade answered by
//! hand, so every refusal carries a status and a reason, non-upgrade routes share the port, and
//! no per-socket buffer is larger than needed.

use std::net::IpAddr;
use std::sync::Arc;

use rtbus_protocol::{ENDPOINT_PATH, SUBPROTOCOL};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::admission::{AddrKey, Full, LockedOut, Ticket};
use crate::auth::{ADMIN_ROLE, Principal};
use crate::state::Shared;
use crate::stats::Counters;

/// The path of the stats endpoint.
pub const STATS_PATH: &str = "/api/realtime/stats";
/// The path of the health endpoint.
pub const HEALTH_PATH: &str = "/healthz";

const MAX_HEAD_BYTES: usize = 8 * 1024;
const MAX_HEADERS: usize = 32;

/// An accepted WebSocket upgrade.
#[derive(Debug)]
pub(crate) struct Upgrade {
    /// Bytes the client sent after the request head.
    pub leftover: Vec<u8>,
    /// The principal of a valid `Authorization: Bearer` header.
    pub principal: Option<Arc<Principal>>,
    /// The connection's place in the connection caps.
    pub ticket: Ticket,
}

/// The HTTP statuses the server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Ok,
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    UpgradeRequired,
    TooManyRequests,
    HeaderFieldsTooLarge,
    ServiceUnavailable,
}

impl Status {
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::Unauthorized => 401,
            Status::Forbidden => 403,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::UpgradeRequired => 426,
            Status::TooManyRequests => 429,
            Status::HeaderFieldsTooLarge => 431,
            Status::ServiceUnavailable => 503,
        }
    }

    /// The reason phrase of the status line.
    pub fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::Unauthorized => "Unauthorized",
            Status::Forbidden => "Forbidden",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::UpgradeRequired => "Upgrade Required",
            Status::TooManyRequests => "Too Many Requests",
            Status::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            Status::ServiceUnavailable => "Service Unavailable",
        }
    }
}

/// Why a request gets no WebSocket (or no stats). The message is the plain-text body the client
/// reads; [`Refusal::status`] and [`Refusal::headers`] complete the response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("request head too large")]
    HeadTooLarge,
    #[error("bad HTTP request: {0}")]
    BadHead(httparse::Error),
    #[error("no such path {0:?}; WebSocket clients connect to {ENDPOINT_PATH}")]
    NoSuchPath(String),
    #[error("{ENDPOINT_PATH} takes a GET WebSocket upgrade")]
    NotGet,
    #[error("{ENDPOINT_PATH} speaks WebSocket only (Upgrade: websocket expected)")]
    NotAnUpgrade,
    #[error("unsupported Sec-WebSocket-Version (expected 13)")]
    WebSocketVersion,
    #[error("missing Sec-WebSocket-Key header")]
    MissingKey,
    #[error(
        "origin {0:?} is not allowed (only http or https origins listed in allowed_origins are)"
    )]
    Origin(String),
    #[error("more than one Origin header; a browser sends exactly one")]
    DuplicateOrigin,
    /// The offered subprotocols, as the client listed them.
    #[error("unsupported subprotocol {0}; this server speaks {SUBPROTOCOL}")]
    Subprotocol(String),
    #[error("the Authorization header must be \"Bearer <token>\"")]
    AuthorizationScheme,
    #[error("the bearer token is not accepted")]
    TokenRejected,
    #[error("the server is at its connection limit (max_connections = {limit}); retry later")]
    AtConnectionLimit { limit: usize },
    #[error(
        "the server is at its limit for anonymous connections (max_anonymous_connections = \
         {limit}); retry later, or authenticate with an Authorization: Bearer header"
    )]
    AtAnonymousLimit { limit: usize },
    #[error(
        "{key} holds {limit} connections already, the most one address may \
         (max_connections_per_address = {limit}); close one or retry later"
    )]
    AtAddressLimit { key: AddrKey, limit: usize },
    /// Too many rejected tokens from this address: its tokens go unchecked for now.
    #[error("{0}")]
    AuthLockedOut(LockedOut),
    #[error("the stats endpoint needs an admin bearer token")]
    StatsNeedsToken,
    #[error("the stats endpoint needs the admin role")]
    StatsNeedsAdmin,
}

impl Refusal {
    pub fn status(&self) -> Status {
        match self {
            Refusal::HeadTooLarge => Status::HeaderFieldsTooLarge,
            Refusal::BadHead(_)
            | Refusal::MissingKey
            | Refusal::Subprotocol(_)
            | Refusal::DuplicateOrigin => Status::BadRequest,
            Refusal::NoSuchPath(_) => Status::NotFound,
            Refusal::NotGet => Status::MethodNotAllowed,
            Refusal::NotAnUpgrade | Refusal::WebSocketVersion => Status::UpgradeRequired,
            Refusal::Origin(_) | Refusal::StatsNeedsAdmin => Status::Forbidden,
            Refusal::AuthorizationScheme | Refusal::TokenRejected | Refusal::StatsNeedsToken => {
                Status::Unauthorized
            }
            Refusal::AtConnectionLimit { .. } | Refusal::AtAnonymousLimit { .. } => {
                Status::ServiceUnavailable
            }
            Refusal::AtAddressLimit { .. } | Refusal::AuthLockedOut(_) => Status::TooManyRequests,
        }
    }

    /// Headers that tell the client what would be accepted, or when.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let header = |name, value: &str| vec![(name, value.to_owned())];
        match self {
            Refusal::NotAnUpgrade => header("Upgrade", "websocket"),
            Refusal::WebSocketVersion => header("Sec-WebSocket-Version", "13"),
            Refusal::TokenRejected | Refusal::StatsNeedsToken => {
                header("WWW-Authenticate", "Bearer")
            }
            Refusal::AuthLockedOut(locked) => {
                header("Retry-After", &locked.wait_secs().to_string())
            }
            _ => Vec::new(),
        }
    }
}

/// What an accepted upgrade answers with and starts from.
#[derive(Debug)]
struct Accepted {
    /// The client's `Sec-WebSocket-Key`.
    key: String,
    /// The subprotocol to confirm, when the client offered any.
    protocol: Option<&'static str>,
    /// The principal of a valid `Authorization: Bearer` header.
    principal: Option<Arc<Principal>>,
    /// The connection's place in the connection caps, taken when the upgrade is accepted.
    ticket: Ticket,
}

impl From<Full> for Refusal {
    fn from(full: Full) -> Refusal {
        match full {
            Full::Address { key, limit } => Refusal::AtAddressLimit { key, limit },
            Full::Total { limit } => Refusal::AtConnectionLimit { limit },
            Full::Anonymous { limit } => Refusal::AtAnonymousLimit { limit },
        }
    }
}

#[derive(Debug)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn parse(parsed: &httparse::Request<'_, '_>) -> Request {
        Request {
            method: parsed.method.unwrap_or("").to_owned(),
            path: parsed.path.unwrap_or("").to_owned(),
            headers: parsed
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_owned(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every comma-separated token of every header `name`.
    fn tokens(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect()
    }

    fn bearer(&self) -> Result<Option<&str>, Refusal> {
        let Some(value) = self.header("authorization") else {
            return Ok(None);
        };
        let mut parts = value.trim().splitn(2, ' ');
        match (parts.next(), parts.next()) {
            (Some(scheme), Some(token)) if scheme.eq_ignore_ascii_case("bearer") => {
                Ok(Some(token.trim()))
            }
            _ => Err(Refusal::AuthorizationScheme),
        }
    }
}

/// Reads a request head from `peer` and answers it, unless it is an accepted WebSocket upgrade.
pub(crate) async fn handle(
    stream: &mut TcpStream,
    shared: &Shared,
    peer: IpAddr,
) -> Option<Upgrade> {
    let mut buf = Vec::with_capacity(1024);
    let (request, head_len) = match read_head(stream, &mut buf).await {
        Ok(Some(head)) => head,
        Ok(None) => return None,
        Err(refusal) => {
            refuse(stream, &refusal).await;
            return None;
        }
    };
    let path = request.path.split('?').next().unwrap_or("");
    match path {
        ENDPOINT_PATH => {}
        HEALTH_PATH => {
            match shared.engine.health() {
                Ok(()) => respond(stream, Status::Ok, "ok", &[]).await,
                Err(why) => {
                    let body = format!("unavailable: {why}");
                    respond(stream, Status::ServiceUnavailable, &body, &[]).await;
                }
            }
            return None;
        }
        STATS_PATH => {
            stats(stream, shared, &request, AddrKey::of(peer)).await;
            return None;
        }
        _ => {
            refuse(stream, &Refusal::NoSuchPath(path.to_owned())).await;
            return None;
        }
    }
    match check_upgrade(&request, shared, AddrKey::of(peer)) {
        Ok(accepted) => {
            if stream
                .write_all(switching_protocols(&accepted).as_bytes())
                .await
                .is_err()
            {
                return None;
            }
            buf.drain(..head_len);
            Some(Upgrade {
                leftover: buf,
                principal: accepted.principal,
                ticket: accepted.ticket,
            })
        }
        Err(refusal) => {
            Counters::add(&shared.counters.handshakes_refused, 1);
            tracing::debug!(status = refusal.status().code(), reason = %refusal, "handshake refused");
            refuse(stream, &refusal).await;
            None
        }
    }
}

/// Reads into `buf` until it holds a whole request head; returns the head and its length
/// (`buf` may hold more), or `None` when the peer went away first.
async fn read_head(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Result<Option<(Request, usize)>, Refusal> {
    loop {
        match stream.read_buf(buf).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(buf) {
            Ok(httparse::Status::Complete(len)) => return Ok(Some((Request::parse(&parsed), len))),
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD_BYTES => {
                buf.reserve(1024.min(MAX_HEAD_BYTES - buf.len()));
            }
            Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                return Err(Refusal::HeadTooLarge);
            }
            Err(err) => return Err(Refusal::BadHead(err)),
        }
    }
}

fn switching_protocols(accepted: &Accepted) -> String {
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        derive_accept_key(accepted.key.as_bytes())
    );
    if let Some(protocol) = accepted.protocol {
        response.push_str(&format!("Sec-WebSocket-Protocol: {protocol}\r\n"));
    }
    response.push_str("\r\n");
    response
}

fn check_upgrade(request: &Request, shared: &Shared, peer: AddrKey) -> Result<Accepted, Refusal> {
    if request.method != "GET" {
        return Err(Refusal::NotGet);
    }
    let upgrade = request
        .tokens("upgrade")
        .iter()
        .any(|t| t.eq_ignore_ascii_case("websocket"));
    let connection = request
        .tokens("connection")
        .iter()
        .any(|t| t.eq_ignore_ascii_case("upgrade"));
    if !upgrade || !connection {
        return Err(Refusal::NotAnUpgrade);
    }
    if request.header("sec-websocket-version").map(str::trim) != Some("13") {
        return Err(Refusal::WebSocketVersion);
    }
    let Some(key) = request.header("sec-websocket-key").map(str::trim) else {
        return Err(Refusal::MissingKey);
    };
    let mut origins = request
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("origin"));
    if let Some((_, origin)) = origins.next() {
        if origins.next().is_some() {
            return Err(Refusal::DuplicateOrigin);
        }
        let config = &shared.config;
        let same_origin = config.allow_same_origin.then(|| request.header("host"));
        if !origin_allowed(origin, &config.allowed_origins, same_origin.flatten()) {
            return Err(Refusal::Origin(origin.clone()));
        }
    }
    let offered = request.tokens("sec-websocket-protocol");
    let protocol = if offered.is_empty() {
        None
    } else if offered.contains(&SUBPROTOCOL) {
        Some(SUBPROTOCOL)
    } else {
        return Err(Refusal::Subprotocol(offered.join(", ")));
    };
    let principal = match request.bearer()? {
        None => None,
        Some(token) => Some(authenticate(shared, peer, token)?),
    };
    let ticket = shared.admission.admit(peer, principal.is_none())?;
    Ok(Accepted {
        key: key.to_owned(),
        protocol,
        principal,
        ticket,
    })
}

/// Whether a browser page of `origin` may connect: an `http` or `https` origin that an
/// `allowed` entry matches, or, when same-origin is enabled, whose host and port are the request's
/// `Host` (`same_origin_host`). The `Host` header is chosen by whoever sends the request (a page
/// on a rebound DNS name sends its own name in both), so it is trusted only on request.
fn origin_allowed(origin: &str, allowed: &[String], same_origin_host: Option<&str>) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let web = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    if !web || rest.is_empty() {
        return false;
    }
    if allowed.iter().any(|a| origin_matches(a, origin)) {
        return true;
    }
    same_origin_host.is_some_and(|host| rest.eq_ignore_ascii_case(host.trim()))
}

/// One `allowed_origins` entry against a request's `Origin`: `*` matches every origin, an entry
/// ending in `:*` (`http://localhost:*`) that scheme and host on any port or none, any other
/// entry the origin exactly (ASCII case-insensitive).
fn origin_matches(allowed: &str, origin: &str) -> bool {
    if allowed == "*" || allowed.eq_ignore_ascii_case(origin) {
        return true;
    }
    let Some(base) = allowed.strip_suffix(":*") else {
        return false;
    };
    match (origin.get(..base.len()), origin.get(base.len()..)) {
        (Some(head), Some(rest)) if head.eq_ignore_ascii_case(base) => {
            rest.is_empty()
                || rest.strip_prefix(':').is_some_and(|port| {
                    !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
                })
        }
        _ => false,
    }
}

/// The principal of a bearer `token` from `peer`, unless the token is rejected (which counts
/// against the address) or the address's tokens go unchecked for now.
fn authenticate(shared: &Shared, peer: AddrKey, token: &str) -> Result<Arc<Principal>, Refusal> {
    let admission = &shared.admission;
    if let Some(locked) = admission.locked_out(peer) {
        return Err(Refusal::AuthLockedOut(locked));
    }
    shared.authority.authenticate(token).ok_or_else(|| {
        admission.auth_failed(peer);
        Refusal::TokenRejected
    })
}

async fn stats(stream: &mut TcpStream, shared: &Shared, request: &Request, peer: AddrKey) {
    let principal = match request.bearer() {
        Ok(Some(token)) => authenticate(shared, peer, token),
        _ => Err(Refusal::StatsNeedsToken),
    };
    match principal {
        Err(Refusal::AuthLockedOut(locked)) => {
            refuse(stream, &Refusal::AuthLockedOut(locked)).await;
        }
        Err(_) => refuse(stream, &Refusal::StatsNeedsToken).await,
        Ok(p) if !p.has_role(ADMIN_ROLE) => refuse(stream, &Refusal::StatsNeedsAdmin).await,
        Ok(_) => {
            let body = serde_json::to_string_pretty(&shared.stats()).unwrap_or_default();
            let headers = [("Content-Type", "application/json")];
            respond(stream, Status::Ok, &body, &headers).await;
        }
    }
}

async fn refuse(stream: &mut TcpStream, refusal: &Refusal) {
    respond(
        stream,
        refusal.status(),
        &refusal.to_string(),
        &refusal
            .headers()
            .iter()
            .map(|(n, v)| (*n, v.as_str()))
            .collect::<Vec<_>>(),
    )
    .await;
}

/// Writes a whole response (plain text unless `headers` say otherwise) and closes the stream.
async fn respond(stream: &mut TcpStream, status: Status, body: &str, headers: &[(&str, &str)]) {
    let _ = stream
        .write_all(response(status, body, headers).as_bytes())
        .await;
    // The peer may be gone already; nothing to do about it.
    let _ = stream.shutdown().await;
}

fn response(status: Status, body: &str, headers: &[(&str, &str)]) -> String {
    let mut text = format!(
        "HTTP/1.1 {} {}\r\nConnection: close\r\n",
        status.code(),
        status.reason()
    );
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        text.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    }
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = if body.ends_with('\n') {
        body.to_owned()
    } else {
        format!("{body}\n")
    };
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::auth::Authority;
    use crate::config::{Config, TokenConfig};

    #[test]
    fn every_refusal_has_its_status_headers_and_the_reason_clients_read() {
        let bad_head = httparse::Request::new(&mut [])
            .parse(b"GET / HTTP/1.1\r\nbad header\r\n\r\n")
            .unwrap_err();
        /// The refusal, its status code and reason phrase, its headers and its body.
        type Row = (
            Refusal,
            u16,
            &'static str,
            &'static [(&'static str, &'static str)],
            &'static str,
        );
        #[rustfmt::skip]
        let cases: Vec<Row> = vec![
            (Refusal::HeadTooLarge, 431, "Request Header Fields Too Large", &[], "request head too large"),
            (Refusal::BadHead(bad_head), 400, "Bad Request", &[], "bad HTTP request: invalid header name"),
            (Refusal::NoSuchPath("/x".into()), 404, "Not Found", &[], "no such path \"/x\"; WebSocket clients connect to /api/realtime"),
            (Refusal::NotGet, 405, "Method Not Allowed", &[], "/api/realtime takes a GET WebSocket upgrade"),
            (Refusal::NotAnUpgrade, 426, "Upgrade Required", &[("Upgrade", "websocket")], "/api/realtime speaks WebSocket only (Upgrade: websocket expected)"),
            (Refusal::WebSocketVersion, 426, "Upgrade Required", &[("Sec-WebSocket-Version", "13")], "unsupported Sec-WebSocket-Version (expected 13)"),
            (Refusal::MissingKey, 400, "Bad Request", &[], "missing Sec-WebSocket-Key header"),
            (Refusal::Origin("https://evil.example".into()), 403, "Forbidden", &[], "origin \"https://evil.example\" is not allowed (only http or https origins listed in allowed_origins are)"),
            (Refusal::DuplicateOrigin, 400, "Bad Request", &[], "more than one Origin header; a browser sends exactly one"),
            (Refusal::Subprotocol("rtbus.v2, chat".into()), 400, "Bad Request", &[], "unsupported subprotocol rtbus.v2, chat; this server speaks rtbus.v1"),
            (Refusal::AuthorizationScheme, 401, "Unauthorized", &[], "the Authorization header must be \"Bearer <token>\""),
            (Refusal::TokenRejected, 401, "Unauthorized", &[("WWW-Authenticate", "Bearer")], "the bearer token is not accepted"),
            (Refusal::AtConnectionLimit { limit: 9 }, 503, "Service Unavailable", &[], "the server is at its connection limit (max_connections = 9); retry later"),
            (Refusal::AtAnonymousLimit { limit: 4 }, 503, "Service Unavailable", &[], "the server is at its limit for anonymous connections (max_anonymous_connections = 4); retry later, or authenticate with an Authorization: Bearer header"),
            (Refusal::AtAddressLimit { key: AddrKey::of([10, 0, 0, 1].into()), limit: 2 }, 429, "Too Many Requests", &[], "10.0.0.1 holds 2 connections already, the most one address may (max_connections_per_address = 2); close one or retry later"),
            (Refusal::StatsNeedsToken, 401, "Unauthorized", &[("WWW-Authenticate", "Bearer")], "the stats endpoint needs an admin bearer token"),
            (Refusal::StatsNeedsAdmin, 403, "Forbidden", &[], "the stats endpoint needs the admin role"),
            (Refusal::AuthLockedOut(LockedOut { key: AddrKey::of([10, 0, 0, 1].into()), limit: 20, window: std::time::Duration::from_secs(60), wait: std::time::Duration::from_millis(1500) }), 429, "Too Many Requests", &[("Retry-After", "2")], "10.0.0.1 sent too many rejected tokens (max_auth_failures_per_address = 20 within auth_failure_window = 60000 ms); no token from it is checked for another 2 s"),
        ];
        for (refusal, code, reason, headers, body) in cases {
            assert_eq!(refusal.status().code(), code, "{refusal:?}");
            assert_eq!(refusal.status().reason(), reason, "{refusal:?}");
            let owned = refusal.headers();
            let got: Vec<(&str, &str)> = owned.iter().map(|(n, v)| (*n, v.as_str())).collect();
            assert_eq!(got, headers, "{refusal:?}");
            assert_eq!(refusal.to_string(), body, "{refusal:?}");
        }
    }

    #[test]
    fn a_response_is_plain_text_with_its_length_unless_it_says_otherwise() {
        let text = response(Status::UpgradeRequired, "nope", &[("Upgrade", "websocket")]);
        assert_eq!(
            text,
            "HTTP/1.1 426 Upgrade Required\r\nConnection: close\r\n\
             Content-Type: text/plain; charset=utf-8\r\nUpgrade: websocket\r\n\
             Content-Length: 5\r\n\r\nnope\n"
        );
        let json = response(Status::Ok, "{}\n", &[("Content-Type", "application/json")]);
        assert_eq!(
            json,
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\n\
             Content-Length: 3\r\n\r\n{}\n"
        );
    }

    fn shared() -> Shared {
        let mut admin = TokenConfig::new("good", "alice");
        admin.roles = vec![ADMIN_ROLE.into()];
        let config = Config {
            tokens: vec![admin],
            allowed_origins: vec!["https://app.example".into()],
            ..Config::default()
        };
        let authority = Authority::new(&config).unwrap();
        Shared::new(config, authority).expect("the memory engine needs no configuration")
    }

    fn upgrade(extra: &[(&str, &str)]) -> Request {
        let mut headers: Vec<(String, String)> = [
            ("Host", "localhost:8080"),
            ("Upgrade", "websocket"),
            ("Connection", "keep-alive, Upgrade"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
        for (name, value) in extra {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            if !value.is_empty() {
                headers.push(((*name).to_owned(), (*value).to_owned()));
            }
        }
        Request {
            method: "GET".into(),
            path: ENDPOINT_PATH.into(),
            headers,
        }
    }

    #[test]
    fn upgrades_are_checked_in_order_and_refused_with_the_first_reason() {
        let shared = shared();
        #[rustfmt::skip]
        let refused: Vec<(&str, Request, Refusal)> = vec![
            ("a POST", Request { method: "POST".into(), ..upgrade(&[]) }, Refusal::NotGet),
            ("no Upgrade header", upgrade(&[("Upgrade", "")]), Refusal::NotAnUpgrade),
            ("no Connection: upgrade", upgrade(&[("Connection", "close")]), Refusal::NotAnUpgrade),
            ("version 8", upgrade(&[("Sec-WebSocket-Version", "8")]), Refusal::WebSocketVersion),
            ("no key", upgrade(&[("Sec-WebSocket-Key", "")]), Refusal::MissingKey),
            ("a foreign origin", upgrade(&[("Origin", "https://evil.example")]), Refusal::Origin("https://evil.example".into())),
            ("another subprotocol", upgrade(&[("Sec-WebSocket-Protocol", "rtbus.v2, chat")]), Refusal::Subprotocol("rtbus.v2, chat".into())),
            ("basic auth", upgrade(&[("Authorization", "Basic Zm9v")]), Refusal::AuthorizationScheme),
            ("an unknown token", upgrade(&[("Authorization", "Bearer bad")]), Refusal::TokenRejected),
        ];
        for (what, request, expected) in refused {
            assert_eq!(
                check_upgrade(&request, &shared, peer()).err(),
                Some(expected),
                "{what}"
            );
        }
        let accepted = check_upgrade(
            &upgrade(&[
                ("Origin", "https://app.example"),
                ("Sec-WebSocket-Protocol", "chat, rtbus.v1"),
                ("Authorization", "bearer good"),
            ]),
            &shared,
            peer(),
        )
        .unwrap();
        assert_eq!(accepted.key, "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(accepted.protocol, Some(SUBPROTOCOL));
        assert_eq!(
            accepted.principal.as_ref().map(|p| p.name.clone()),
            Some("alice".into())
        );
        let response = switching_protocols(&check_upgrade(&upgrade(&[]), &shared, peer()).unwrap());
        assert!(
            response.ends_with("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"),
            "no subprotocol offered, none confirmed: {response}"
        );
        // Refused upgrades hold no place; accepted ones do until dropped.
        assert_eq!(shared.admission.open(), (1, 0), "alice's, with a principal");
        let held = check_upgrade(&upgrade(&[]), &shared, peer()).unwrap();
        assert_eq!(shared.admission.open(), (2, 1));
        drop((accepted, held));
        assert_eq!(shared.admission.open(), (0, 0));
    }

    fn peer() -> AddrKey {
        AddrKey::of([127, 0, 0, 1].into())
    }

    #[test]
    fn a_full_cap_refuses_the_upgrade_with_its_reason() {
        let mut admin = TokenConfig::new("good", "alice");
        admin.roles = vec![ADMIN_ROLE.into()];
        let mut config = Config {
            tokens: vec![admin],
            ..Config::default()
        };
        config.limits.max_connections = 3;
        config.limits.max_anonymous_connections = Some(1);
        config.limits.max_connections_per_address = Some(2);
        let authority = Authority::new(&config).unwrap();
        let shared =
            Shared::new(config, authority).expect("the memory engine needs no configuration");
        let bearer = upgrade(&[("Authorization", "Bearer good")]);
        let _anonymous = check_upgrade(&upgrade(&[]), &shared, peer()).unwrap();
        assert_eq!(
            check_upgrade(&upgrade(&[]), &shared, AddrKey::of([10, 0, 0, 9].into())).err(),
            Some(Refusal::AtAnonymousLimit { limit: 1 })
        );
        let _authenticated = check_upgrade(&bearer, &shared, peer()).unwrap();
        assert_eq!(
            check_upgrade(&bearer, &shared, peer()).err(),
            Some(Refusal::AtAddressLimit {
                key: peer(),
                limit: 2
            })
        );
        let other = AddrKey::of([10, 0, 0, 9].into());
        let _third = check_upgrade(&bearer, &shared, other).unwrap();
        assert_eq!(
            check_upgrade(&bearer, &shared, other).err(),
            Some(Refusal::AtConnectionLimit { limit: 3 })
        );
    }

    #[test]
    fn origins() {
        let list = vec!["https://app.example".to_owned()];
        // (origin, the Host when same-origin is enabled, allowed)
        let cases = [
            ("https://app.example", None, true),
            ("https://evil.example", None, false),
            ("http://localhost:8080", None, false),
            ("http://localhost:8080", Some("localhost:8080"), true),
            ("https://LOCALHOST:8080", Some("localhost:8080 "), true),
            ("http://localhost:8081", Some("localhost:8080"), false),
            ("foo://localhost:8080", Some("localhost:8080"), false),
            ("localhost:8080", Some("localhost:8080"), false),
            ("http://", Some(""), false),
            ("null", Some("null"), false),
        ];
        for (origin, host, expected) in cases {
            assert_eq!(origin_allowed(origin, &list, host), expected, "{origin}");
        }
        let all = ["*".to_owned()];
        assert!(origin_allowed("https://any", &all, None));
        assert!(!origin_allowed("file://any", &all, None));
        assert!(!origin_allowed("null", &all, None));
    }

    #[test]
    fn a_second_origin_header_is_refused_and_same_origin_needs_enabling() {
        let shared = shared();
        let mut twice = upgrade(&[("Origin", "https://app.example")]);
        twice
            .headers
            .push(("origin".into(), "https://evil.example".into()));
        assert_eq!(
            check_upgrade(&twice, &shared, peer()).err(),
            Some(Refusal::DuplicateOrigin)
        );
        let same = upgrade(&[("Origin", "http://localhost:8080")]);
        assert_eq!(
            check_upgrade(&same, &shared, peer()).err(),
            Some(Refusal::Origin("http://localhost:8080".into()))
        );
        let config = Config {
            allow_same_origin: true,
            ..shared.config.clone()
        };
        let authority = Authority::new(&config).unwrap();
        let enabled =
            Shared::new(config, authority).expect("the memory engine needs no configuration");
        assert!(check_upgrade(&same, &enabled, peer()).is_ok());
    }

    #[test]
    fn an_origin_ending_in_a_port_wildcard_matches_that_host_on_any_port() {
        let list = vec!["http://localhost:*".to_owned(), "http://[::1]:*".to_owned()];
        let cases = [
            ("http://localhost:5173", true),
            ("HTTP://LocalHost:1", true),
            ("http://localhost", true),
            ("http://[::1]:8081", true),
            ("http://localhost:", false),
            ("http://localhost:80a", false),
            ("http://localhost:123456", false),
            ("http://localhost.evil.example:8081", false),
            ("http://localhost:8081.evil.example", false),
            ("https://localhost:8081", false),
            ("http://127.0.0.1:8081", false),
            ("http://localhos\u{e9}", false),
        ];
        for (origin, expected) in cases {
            assert_eq!(origin_allowed(origin, &list, None), expected, "{origin}");
        }
    }
}
