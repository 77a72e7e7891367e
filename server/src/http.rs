//! The HTTP side of the port: request heads, the WebSocket upgrade checks, `/healthz` and the
//! stats endpoint.
//!
//! The request head is parsed with `httparse` into a small buffer and the upgrade answered by
//! hand, so every refusal carries a status and a reason, non-upgrade routes share the port, and
//! no per-socket buffer is larger than needed.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use rtbus_protocol::{ENDPOINT_PATH, SUBPROTOCOL};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::auth::{ADMIN_ROLE, Principal};
use crate::server::Shared;
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
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Request {
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

    fn bearer(&self) -> Result<Option<&str>, &'static str> {
        let Some(value) = self.header("authorization") else {
            return Ok(None);
        };
        let mut parts = value.trim().splitn(2, ' ');
        match (parts.next(), parts.next()) {
            (Some(scheme), Some(token)) if scheme.eq_ignore_ascii_case("bearer") => {
                Ok(Some(token.trim()))
            }
            _ => Err("the Authorization header must be \"Bearer <token>\""),
        }
    }
}

/// Reads a request head and answers it, unless it is an accepted WebSocket upgrade.
pub(crate) async fn handle(stream: &mut TcpStream, shared: &Shared) -> Option<Upgrade> {
    let mut buf = Vec::with_capacity(1024);
    let (request, head_len) = loop {
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let request = Request {
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
                };
                break (request, len);
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD_BYTES => {
                buf.reserve(1024.min(MAX_HEAD_BYTES - buf.len()));
            }
            Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                let reason = "request head too large";
                respond(stream, 431, "Request Header Fields Too Large", reason, &[]).await;
                return None;
            }
            Err(err) => {
                respond(
                    stream,
                    400,
                    "Bad Request",
                    &format!("bad HTTP request: {err}"),
                    &[],
                )
                .await;
                return None;
            }
        }
    };
    let path = request.path.split('?').next().unwrap_or("");
    match path {
        ENDPOINT_PATH => {}
        HEALTH_PATH => {
            respond(stream, 200, "OK", "ok", &[]).await;
            return None;
        }
        STATS_PATH => {
            stats(stream, shared, &request).await;
            return None;
        }
        _ => {
            let body =
                format!("no such path {path:?}; WebSocket clients connect to {ENDPOINT_PATH}");
            respond(stream, 404, "Not Found", &body, &[]).await;
            return None;
        }
    }
    match check_upgrade(&request, shared) {
        Ok((key, protocol, principal)) => {
            let mut response = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
                derive_accept_key(key.as_bytes())
            );
            if let Some(protocol) = protocol {
                response.push_str(&format!("Sec-WebSocket-Protocol: {protocol}\r\n"));
            }
            response.push_str("\r\n");
            if stream.write_all(response.as_bytes()).await.is_err() {
                return None;
            }
            buf.drain(..head_len);
            Some(Upgrade {
                leftover: buf,
                principal,
            })
        }
        Err(refusal) => {
            Counters::add(&shared.counters.handshakes_refused, 1);
            tracing::debug!(status = refusal.status, reason = %refusal.reason, "handshake refused");
            respond(
                stream,
                refusal.status,
                refusal.title,
                &refusal.reason,
                &refusal.headers,
            )
            .await;
            None
        }
    }
}

struct Refusal {
    status: u16,
    title: &'static str,
    reason: String,
    headers: Vec<(&'static str, &'static str)>,
}

fn refuse(status: u16, title: &'static str, reason: impl Into<String>) -> Refusal {
    Refusal {
        status,
        title,
        reason: reason.into(),
        headers: Vec::new(),
    }
}

type Accepted = (String, Option<&'static str>, Option<Arc<Principal>>);

fn check_upgrade(request: &Request, shared: &Shared) -> Result<Accepted, Refusal> {
    if request.method != "GET" {
        return Err(refuse(
            405,
            "Method Not Allowed",
            format!("{ENDPOINT_PATH} takes a GET WebSocket upgrade"),
        ));
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
        return Err(Refusal {
            headers: vec![("Upgrade", "websocket")],
            ..refuse(
                426,
                "Upgrade Required",
                format!("{ENDPOINT_PATH} speaks WebSocket only (Upgrade: websocket expected)"),
            )
        });
    }
    if request.header("sec-websocket-version").map(str::trim) != Some("13") {
        return Err(Refusal {
            headers: vec![("Sec-WebSocket-Version", "13")],
            ..refuse(
                426,
                "Upgrade Required",
                "unsupported Sec-WebSocket-Version (expected 13)",
            )
        });
    }
    let Some(key) = request.header("sec-websocket-key").map(str::trim) else {
        return Err(refuse(
            400,
            "Bad Request",
            "missing Sec-WebSocket-Key header",
        ));
    };
    if let Some(origin) = request.header("origin") {
        if !origin_allowed(
            origin,
            request.header("host"),
            &shared.config.allowed_origins,
        ) {
            return Err(refuse(
                403,
                "Forbidden",
                format!("origin {origin:?} is not allowed"),
            ));
        }
    }
    let offered = request.tokens("sec-websocket-protocol");
    let protocol = if offered.is_empty() {
        None
    } else if offered.contains(&SUBPROTOCOL) {
        Some(SUBPROTOCOL)
    } else {
        return Err(refuse(
            400,
            "Bad Request",
            format!(
                "unsupported subprotocol {}; this server speaks {SUBPROTOCOL}",
                offered.join(", ")
            ),
        ));
    };
    let principal = match request.bearer() {
        Ok(None) => None,
        Ok(Some(token)) => match shared.authority.authenticate(token) {
            Some(principal) => Some(principal),
            None => {
                return Err(Refusal {
                    headers: vec![("WWW-Authenticate", "Bearer")],
                    ..refuse(401, "Unauthorized", "the bearer token is not accepted")
                });
            }
        },
        Err(reason) => return Err(refuse(401, "Unauthorized", reason)),
    };
    if shared.open_connections.load(Ordering::Relaxed)
        >= shared.config.limits.max_connections as u64
    {
        return Err(refuse(
            503,
            "Service Unavailable",
            "the server is at its connection limit; retry later",
        ));
    }
    Ok((key.to_owned(), protocol, principal))
}

fn origin_allowed(origin: &str, host: Option<&str>, allowed: &[String]) -> bool {
    if allowed.iter().any(|a| origin_matches(a, origin)) {
        return true;
    }
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h.trim()))
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

async fn stats(stream: &mut TcpStream, shared: &Shared, request: &Request) {
    let principal = match request.bearer() {
        Ok(Some(token)) => shared.authority.authenticate(token),
        _ => None,
    };
    match principal {
        None => {
            let reason = "the stats endpoint needs an admin bearer token";
            respond(
                stream,
                401,
                "Unauthorized",
                reason,
                &[("WWW-Authenticate", "Bearer")],
            )
            .await;
        }
        Some(p) if !p.has_role(ADMIN_ROLE) => {
            let reason = "the stats endpoint needs the admin role";
            respond(stream, 403, "Forbidden", reason, &[]).await;
        }
        Some(_) => {
            let body = serde_json::to_string_pretty(&shared.stats()).unwrap_or_default();
            respond(
                stream,
                200,
                "OK",
                &body,
                &[("Content-Type", "application/json")],
            )
            .await;
        }
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    title: &str,
    body: &str,
    headers: &[(&str, &str)],
) {
    let mut text = format!("HTTP/1.1 {status} {title}\r\nConnection: close\r\n");
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
    // The peer may be gone already; nothing to do about it.
    let _ = stream.write_all(text.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let list = vec!["https://app.example".to_owned()];
        let cases = [
            ("https://app.example", None, true),
            ("https://evil.example", None, false),
            ("http://localhost:8080", Some("localhost:8080"), true),
            ("http://localhost:8081", Some("localhost:8080"), false),
        ];
        for (origin, host, expected) in cases {
            assert_eq!(origin_allowed(origin, host, &list), expected, "{origin}");
        }
        assert!(origin_allowed("https://any", None, &["*".to_owned()]));
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
            assert_eq!(origin_allowed(origin, None, &list), expected, "{origin}");
        }
    }
}
